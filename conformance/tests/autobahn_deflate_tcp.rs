//! The permessage-deflate cases (Autobahn sections 12 and 13) against
//! sockeye's tokio server and client over loopback TCP, in both roles.
//!
//! `cargo test -p sockeye-conformance --test autobahn_deflate_tcp [-- FILTER...] [--role server|client]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance-deflate-tcp.md`, and exits non-zero if
//! a case failed.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::deflate::report::{markdown, run_all, select, totals};
use sockeye_conformance::deflate::tcp::Tcp;
use sockeye_conformance::deflate::testee::DeflateTargets;

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let targets = match Tcp::new() {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("could not start the testee's runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let results = run_all(&select(&args.filters), &args.roles, &targets, 1, |result| {
        println!("{}", result.line())
    });
    let elapsed = started.elapsed();
    let name = targets.name().to_string();
    drop(targets);
    write_summary(
        "conformance-deflate-tcp.md",
        &markdown(&results, &name, elapsed),
    );
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
