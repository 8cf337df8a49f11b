//! The conformance suite against sockeye's tokio server and client over
//! loopback TCP, in both roles.
//!
//! `cargo test -p sockeye-conformance --test autobahn_tcp [-- FILTER...]
//! [--role server|client] [--quiet-ms N] [--patience-ms N]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance-tcp.md`, and exits non-zero if a case
//! failed. See `sockeye_conformance::tcp` for how the cases are played
//! over a socket.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::report::{markdown, run_all, totals};
use sockeye_conformance::target::{TargetFactory, Timing};
use sockeye_conformance::tcp::Tcp;

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let timing = Timing {
        quiet: args.quiet.unwrap_or(Tcp::TIMING.quiet),
        patience: args.patience.unwrap_or(Tcp::TIMING.patience),
    };
    let factory = match Tcp::new(timing) {
        Ok(factory) => factory,
        Err(error) => {
            eprintln!("could not start the testee's runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let results = run_all(&args.cases(), &args.roles, &factory, |result| {
        println!("{}", result.line())
    });
    let elapsed = started.elapsed();
    let name = format!(
        "{} (quiet {} ms, patience {} ms)",
        factory.name(),
        timing.quiet.as_millis(),
        timing.patience.as_millis()
    );
    drop(factory);
    write_summary("conformance-tcp.md", &markdown(&results, &name, elapsed));
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
