//! The conformance suite against the in-memory engine, in both roles.
//!
//! `cargo test -p sockeye-conformance --test autobahn [-- FILTER...] [--role server|client]`
//!
//! Prints one line per case and `N passed, M failed`, writes a markdown
//! summary to `target/conformance.md`, and exits non-zero if a case failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sockeye_conformance::cases;
use sockeye_conformance::report::{markdown, run_all, totals};
use sockeye_conformance::target::{InMemory, TargetFactory};
use sockeye_proto::Role;

fn main() -> ExitCode {
    let mut filters = Vec::new();
    let mut roles = vec![Role::Server, Role::Client];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--role" => match args.next().as_deref() {
                Some("server") => roles = vec![Role::Server],
                Some("client") => roles = vec![Role::Client],
                other => {
                    eprintln!("--role takes server or client, not {other:?}");
                    return ExitCode::FAILURE;
                }
            },
            // Flags cargo or a user may pass to a libtest harness.
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter.to_string()),
        }
    }
    let cases: Vec<_> = cases::all()
        .into_iter()
        .filter(|case| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|filter| case.id == *filter || case.id.starts_with(&format!("{filter}.")))
        })
        .collect();
    let factory = InMemory;
    let started = Instant::now();
    let results = run_all(&cases, &roles, &factory, |result| {
        println!("{}", result.line())
    });
    let elapsed = started.elapsed();
    let summary = markdown(&results, factory.name(), elapsed);
    let path = target_dir().join("conformance.md");
    match std::fs::write(&path, summary) {
        Ok(()) => eprintln!("summary written to {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
    println!("{}", totals(&results));
    if results.iter().all(|result| result.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}
