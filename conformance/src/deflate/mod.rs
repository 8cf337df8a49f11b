//! The ground of Autobahn sections 12 and 13: permessage-deflate (RFC
//! 7692), in both roles, in memory and over loopback TCP.
//!
//! - [`payload`]: the five payload kinds, synthesized in code.
//! - [`cases`]: the case tables (message lengths and counts, fragment
//!   sizes, the negotiations of section 13 in both roles).
//! - [`handshake`]: the runner's own opening handshake on raw bytes, which
//!   checks the testee's offer or answer itself.
//! - [`codec`]: the runner's own compression, flate2 used directly (not
//!   sockeye's codec), so sockeye is not checked against itself.
//! - [`testee`]: what a case runs against; [`testee::InMemory`] (the
//!   engine and the sans-I/O handshake, optionally sabotaged for the
//!   runner's self-test) and [`tcp::Tcp`] (the tokio server and client,
//!   or the event-loop server: `event_loop`).
//! - [`run`]: one case; [`report`]: the suite, its lines and summary.
//!
//! Run it with `cargo test -p sockeye-conformance --test autobahn_deflate`
//! (in memory) or `--test autobahn_deflate_tcp`; add `-- 13.3` to run the
//! cases whose id starts with `13.3`, or `-- --role client`.

pub mod cases;
pub mod codec;
mod event_loop;
pub mod handshake;
pub mod payload;
pub mod report;
pub mod run;
pub mod tcp;
pub mod testee;
