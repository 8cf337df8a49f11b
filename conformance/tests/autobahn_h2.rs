//! The conformance suite over HTTP/2 streams (RFC 8441), in both roles:
//! the cases of sections 1-10 and then the permessage-deflate cases of
//! sections 12 and 13, each WebSocket a stream of a shared HTTP/2
//! connection.
//!
//! `cargo test -p sockeye-conformance --test autobahn_h2 [-- FILTER...]
//! [--role server|client] [--quiet-ms N] [--patience-ms N] [--workers N]`
//!
//! Cases run [`WORKERS`] at a time (`--workers`), each on its own stream:
//! the run is mostly waiting for the testee to stay quiet, and the
//! streams of one connection are meant to be independent (the runner
//! checks after every case that a failure ended only its own stream).
//!
//! Prints one line per case, `N passed, M failed` for each suite and for
//! both together (the last line), writes markdown summaries to
//! `target/conformance-h2.md` and `target/conformance-deflate-h2.md`, and
//! exits non-zero if a case failed. See `sockeye_conformance::http2` for
//! how the cases are played over HTTP/2.

use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cli::{Args, write_summary};
use sockeye_conformance::deflate::report as deflate_report;
use sockeye_conformance::deflate::testee::DeflateTargets;
use sockeye_conformance::http2::H2;
use sockeye_conformance::http2::deflate::H2Deflate;
use sockeye_conformance::report::{markdown, run_all_parallel, totals};
use sockeye_conformance::target::{TargetFactory, Timing};
use sockeye_conformance::tcp::Tcp;

/// Cases at a time, unless `--workers` says otherwise.
const WORKERS: usize = 4;

fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    // The TCP run's pacing, unchanged.
    let timing = Timing {
        quiet: args.quiet.unwrap_or(Tcp::TIMING.quiet),
        patience: args.patience.unwrap_or(Tcp::TIMING.patience),
    };
    let workers = args.workers.unwrap_or(WORKERS);
    let (mut passed, mut total) = (0, 0);

    let cases = args.cases();
    if !cases.is_empty() {
        let factory = match H2::new(timing) {
            Ok(factory) => factory,
            Err(error) => {
                eprintln!("could not start the runtimes: {error}");
                return ExitCode::FAILURE;
            }
        };
        let started = Instant::now();
        let results = run_all_parallel(&cases, &args.roles, &factory, workers, |result| {
            println!("{}", result.line())
        });
        let elapsed = started.elapsed();
        let (connections, streams) = factory.connections();
        let name = format!(
            "{} (quiet {} ms, patience {} ms, {workers} cases at a time; {streams} WebSockets \
             over {connections} HTTP/2 connections)",
            factory.name(),
            timing.quiet.as_millis(),
            timing.patience.as_millis()
        );
        drop(factory);
        write_summary("conformance-h2.md", &markdown(&results, &name, elapsed));
        println!(
            "sections 1-10 over HTTP/2: {} ({streams} WebSockets over {connections} HTTP/2 \
             connections, {:.1} s)",
            totals(&results),
            elapsed.as_secs_f64()
        );
        passed += results.iter().filter(|result| result.passed()).count();
        total += results.len();
    }

    let deflate_cases = deflate_report::select(&args.filters);
    if !deflate_cases.is_empty() {
        let targets = match H2Deflate::new() {
            Ok(targets) => targets,
            Err(error) => {
                eprintln!("could not start the runtimes: {error}");
                return ExitCode::FAILURE;
            }
        };
        let started = Instant::now();
        let results =
            deflate_report::run_all(&deflate_cases, &args.roles, &targets, workers, |result| {
                println!("{}", result.line())
            });
        let elapsed = started.elapsed();
        let (connections, streams) = targets.connections();
        let name = format!(
            "{} ({workers} cases at a time; {streams} WebSockets over {connections} HTTP/2 \
             connections)",
            targets.name()
        );
        drop(targets);
        write_summary(
            "conformance-deflate-h2.md",
            &deflate_report::markdown(&results, &name, elapsed),
        );
        println!(
            "sections 12-13 over HTTP/2: {} ({streams} WebSockets over {connections} HTTP/2 \
             connections, {:.1} s)",
            deflate_report::totals(&results),
            elapsed.as_secs_f64()
        );
        passed += results.iter().filter(|result| result.passed()).count();
        total += results.len();
    }

    println!("{passed} passed, {} failed", total - passed);
    if passed == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
