//! sockeye's conformance runner: the ground of the Autobahn Testsuite
//! (sections 1-7, 9 and 10), strict where Autobahn is lenient, run against
//! the sans-I/O engine in both roles.
//!
//! - [`wire`]: the peer's own frame encoder, apart from sockeye-proto's,
//!   able to write invalid frames.
//! - [`parse`]: a strict parser of what the testee sends.
//! - [`target`]: what a case runs against ([`target::Target`]); the
//!   in-memory echo application on a `Connection` is the first.
//! - [`case`]: a case's frames, chunking and exact expected outcome.
//! - [`cases`]: the case tables, one module per section.
//! - [`run`]: runs a case; `check` compares, to the chunk.
//! - [`report`]: the suite, its lines and its markdown summary.
//!
//! Run it with `cargo test -p sockeye-conformance --test autobahn`; add
//! `-- 6.4` to run the cases whose id starts with `6.4`, or
//! `-- --role server`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod case;
pub mod cases;
mod check;
pub mod parse;
pub mod report;
pub mod run;
pub mod target;
pub mod wire;
