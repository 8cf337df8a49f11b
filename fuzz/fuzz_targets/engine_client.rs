//! The engine as a client: arbitrary server bytes, split into arbitrary
//! chunks, interleaved with sends, timers and reads (see `src/lib.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::Role;

fuzz_target!(|data: &[u8]| sockeye_fuzz::run_engine(Role::Client, data));
