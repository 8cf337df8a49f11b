//! The permessage-deflate cases (Autobahn sections 12 and 13) against
//! sockeye's event-loop server (`sockeye::event_loop` with
//! `ServerBuilder::deflate`, an echo `Handler`) over loopback TCP, in the
//! server role: the same cases and checks as `autobahn_deflate_tcp`'s
//! server role against the tokio server. (The event loop has no client;
//! the client role is `autobahn_deflate_tcp`'s.)
//!
//! `cargo test -p sockeye-conformance --test autobahn_deflate_loop [-- FILTER...]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance-deflate-loop.md`, and exits non-zero if
//! a case failed.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::deflate::report::{markdown, run_all, select, totals};
use sockeye_conformance::deflate::tcp::{FrontEnd, Tcp};
use sockeye_conformance::deflate::testee::DeflateTargets;
use sockeye_proto::Role;

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if !args.roles.contains(&Role::Server) {
        eprintln!("the event loop is a server only: --role client is autobahn_deflate_tcp's");
        return ExitCode::FAILURE;
    }
    let targets = match Tcp::with_front_end(FrontEnd::EventLoop) {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("could not set up the testee: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let results = run_all(
        &select(&args.filters),
        &[Role::Server],
        &targets,
        1,
        |result| println!("{}", result.line()),
    );
    let elapsed = started.elapsed();
    let name = targets.name().to_string();
    drop(targets);
    write_summary(
        "conformance-deflate-loop.md",
        &markdown(&results, &name, elapsed),
    );
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
