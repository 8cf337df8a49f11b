//! sockeye's conformance runner: the ground of the Autobahn Testsuite
//! (sections 1-7, 9 and 10), strict where Autobahn is lenient, run in both
//! roles against the sans-I/O engine, against the tokio server and client
//! over loopback TCP, and over HTTP/2 streams.
//!
//! - [`wire`]: the peer's own frame encoder, apart from sockeye-proto's,
//!   able to write invalid frames.
//! - [`parse`]: a strict parser of what the testee sends.
//! - [`target`]: what a case runs against ([`target::Target`]); the
//!   in-memory echo application on a `Connection` is the first.
//! - [`tcp`]: the second: sockeye's tokio server and client, echoing,
//!   over loopback TCP; `pace` says when the runner may send the next
//!   chunk to a testee that runs on its own.
//! - [`http2`]: the third: the same over HTTP/2 streams (RFC 8441), each
//!   case's WebSocket a stream of a shared connection, and the deflate
//!   cases too ([`http2::deflate`]).
//! - [`case`]: a case's frames, chunking and exact expected outcome.
//! - [`cases`]: the case tables, one module per section.
//! - [`run`]: runs a case; `check` compares, to the chunk.
//! - [`report`]: the suite, its lines and its markdown summary; [`cli`]:
//!   the test binaries' arguments.
//!
//! Run it with `cargo test -p sockeye-conformance --test autobahn` (in
//! memory), `--test autobahn_tcp` (over TCP) or `--test autobahn_h2`
//! (over HTTP/2, deflate cases included); add `-- 6.4` to run the
//! cases whose id starts with `6.4`, or `-- --role server`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod case;
pub mod cases;
mod check;
pub mod cli;
pub mod deflate;
pub mod http2;
mod pace;
pub mod parse;
pub mod report;
pub mod run;
pub mod target;
pub mod tcp;
pub mod wire;
