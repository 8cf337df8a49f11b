//! The conformance suite against the in-memory engine, in both roles.
//!
//! `cargo test -p sockeye-conformance --test autobahn [-- FILTER...] [--role server|client]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance.md`, and exits non-zero if a case failed.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::report::{markdown, run_all, totals};
use sockeye_conformance::target::{InMemory, TargetFactory};

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let factory = InMemory;
    let started = Instant::now();
    let results = run_all(&args.cases(), &args.roles, &factory, |result| {
        println!("{}", result.line())
    });
    write_summary(
        "conformance.md",
        &markdown(&results, factory.name(), started.elapsed()),
    );
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
