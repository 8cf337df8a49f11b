//! The permessage-deflate cases (Autobahn sections 12 and 13) against the
//! in-memory engine with the sans-I/O handshake, in both roles.
//!
//! `cargo test -p sockeye-conformance --test autobahn_deflate [-- FILTER...] [--role server|client]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance-deflate.md`, and exits non-zero if a
//! case failed.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::deflate::report::{markdown, run_all, select, totals};
use sockeye_conformance::deflate::testee::{DeflateTargets, InMemory};

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let targets = InMemory::default();
    // Two threads: the cases are independent and CPU-bound.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let started = Instant::now();
    let results = run_all(
        &select(&args.filters),
        &args.roles,
        &targets,
        workers,
        |result| println!("{}", result.line()),
    );
    write_summary(
        "conformance-deflate.md",
        &markdown(&results, targets.name(), started.elapsed()),
    );
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
