//! The conformance suite against sockeye's event-loop server
//! (`sockeye::event_loop`, an echo `Handler`) over loopback TCP, in the
//! server role: the same cases, checks and pacing as `autobahn_tcp`'s
//! server role against the tokio server. (The event loop has no client;
//! the client role is `autobahn_tcp`'s.)
//!
//! `cargo test -p sockeye-conformance --test autobahn_loop [-- FILTER...]
//! [--quiet-ms N] [--patience-ms N]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance-loop.md`, and exits non-zero if a case
//! failed or an event loop failed. See `sockeye_conformance::tcp` for how
//! the cases are played over a socket.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::report::{markdown, run_all, totals};
use sockeye_conformance::target::{TargetFactory, Timing};
use sockeye_conformance::tcp::{FrontEnd, Tcp};
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
        eprintln!("the event loop is a server only: --role client is autobahn_tcp's");
        return ExitCode::FAILURE;
    }
    let timing = Timing {
        quiet: args.quiet.unwrap_or(Tcp::TIMING.quiet),
        patience: args.patience.unwrap_or(Tcp::TIMING.patience),
    };
    let mut factory = match Tcp::with_front_end(FrontEnd::EventLoop, timing) {
        Ok(factory) => factory,
        Err(error) => {
            eprintln!("could not set up the testee: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let results = run_all(&args.cases(), &[Role::Server], &factory, |result| {
        println!("{}", result.line())
    });
    let elapsed = started.elapsed();
    let name = format!(
        "{} (quiet {} ms, patience {} ms)",
        factory.name(),
        timing.quiet.as_millis(),
        timing.patience.as_millis()
    );
    let stopped = factory.stop();
    write_summary("conformance-loop.md", &markdown(&results, &name, elapsed));
    println!("{}", totals(&results));
    if let Err(error) = &stopped {
        println!("{error}");
    }
    if stopped.is_ok() && results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
