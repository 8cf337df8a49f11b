//! The runner must be able to fail over HTTP/2 too. Faulty testees
//! (`sockeye_conformance::http2::Fault`) must be caught by the cases that
//! guard the rule they break, and a case that fails must leave the shared
//! HTTP/2 connection serving the next one.

use sockeye_conformance::case::Case;
use sockeye_conformance::cases;
use sockeye_conformance::http2::{Fault, H2};
use sockeye_conformance::report::{CaseResult, run_all};
use sockeye_conformance::tcp::Tcp;
use sockeye_proto::Role;

fn case(id: &str) -> Case {
    cases::all()
        .into_iter()
        .find(|case| case.id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn run(factory: &H2, ids: &[&str], role: Role) -> Vec<CaseResult> {
    let cases: Vec<Case> = ids.iter().map(|id| case(id)).collect();
    run_all(&cases, &[role], factory, |_| {})
}

/// Asserts that `result` failed with a problem mentioning `expected`.
fn caught(result: &CaseResult, expected: &str) {
    let problems = result.problems.join("; ");
    assert!(
        !result.passed() && problems.contains(expected),
        "{:?} {}: expected a failure mentioning {expected:?}, got {problems:?}",
        result.role,
        result.id
    );
}

#[test]
fn the_healthy_testee_passes_the_cases_used_below() {
    let factory = H2::new(Tcp::TIMING).unwrap();
    for role in [Role::Server, Role::Client] {
        for result in run(&factory, &["1.1.2", "4.1.1", "7.1.1", "7.1.2"], role) {
            assert!(result.passed(), "{}", result.line());
        }
    }
}

#[test]
fn a_testee_that_does_not_echo_is_caught_and_its_connection_goes_on() {
    let factory = H2::with_fault(Tcp::TIMING, Fault::NoEcho).unwrap();
    for role in [Role::Server, Role::Client] {
        // 7.1.2 needs no echo: it passes on the connection the failure of
        // 1.1.2 left behind.
        let results = run(&factory, &["1.1.2", "7.1.2"], role);
        caught(&results[0], "expected 1 echoed message(s), got 0");
        assert!(results[1].passed(), "{}", results[1].line());
    }
    // One connection per role: no case needed a new one.
    assert_eq!(factory.connections(), (2, 4));
}

#[test]
fn a_client_that_never_ends_its_stream_is_caught() {
    let factory = H2::with_fault(Tcp::TIMING, Fault::KeepsStreamOpen).unwrap();
    let results = run(&factory, &["7.1.1", "4.1.1"], Role::Client);
    // After the closing handshake, the peer's END_STREAM must be answered
    // by the testee's.
    caught(
        &results[0],
        "a client keeps the transport open until the server closes it",
    );
    // A failing testee must end its stream at once.
    caught(
        &results[1],
        "after failing, the transport must close at once",
    );
}
