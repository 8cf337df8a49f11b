//! The deflate runner's self-test: deliberately broken in-memory testees
//! (`sockeye_conformance::deflate::testee::Sabotage`) must fail their
//! cases, for the right reason, in both roles; the unbroken one passes.

use sockeye_conformance::deflate::cases::DeflateCase;
use sockeye_conformance::deflate::report::select;
use sockeye_conformance::deflate::run::run_case;
use sockeye_conformance::deflate::testee::{InMemory, Sabotage};
use sockeye_proto::Role;
use sockeye_proto::extension::deflate::DeflateConfig;

fn case(id: &str) -> DeflateCase {
    let mut cases = select(&[id.to_string()]);
    assert_eq!(cases.len(), 1, "{id}");
    cases.remove(0)
}

/// Runs `id` in `role` against a testee broken by `sabotage`; returns the
/// problems, which must mention `expected`.
fn caught(id: &str, role: Role, sabotage: Sabotage, expected: &str) {
    let targets = InMemory {
        sabotage: Some(sabotage.clone()),
    };
    let outcome = run_case(&case(id), role, &targets);
    assert!(!outcome.passed(), "{role:?} {id} with {sabotage:?} passed");
    let problems = outcome.problems.join("; ");
    assert!(
        problems.contains(expected),
        "{role:?} {id} with {sabotage:?}: expected {expected:?} in {problems}"
    );
}

#[test]
fn the_unbroken_testee_passes() {
    for id in ["12.1.4", "12.3.11", "13.2.5", "13.3.12", "13.7.2", "13.9.6"] {
        for role in [Role::Server, Role::Client] {
            let outcome = run_case(&case(id), role, &InMemory::default());
            assert!(outcome.passed(), "{role:?} {id}: {:?}", outcome.problems);
        }
    }
}

#[test]
fn a_wrong_echo_is_caught() {
    for role in [Role::Server, Role::Client] {
        caught("12.1.4", role, Sabotage::WrongEcho(3), "echo 3 differs");
        caught("12.2.5", role, Sabotage::WrongEcho(0), "echo 0 differs");
        caught("12.3.11", role, Sabotage::WrongEcho(7), "echo 7 differs");
    }
}

#[test]
fn a_missing_rsv1_is_caught() {
    for role in [Role::Server, Role::Client] {
        caught("12.1.4", role, Sabotage::ClearRsv1, "RSV1 is missing");
        caught("13.2.12", role, Sabotage::ClearRsv1, "RSV1 is missing");
    }
}

#[test]
fn rsv1_on_a_continuation_frame_is_caught() {
    for role in [Role::Server, Role::Client] {
        caught(
            "12.1.11",
            role,
            Sabotage::Rsv1OnContinuation,
            "only a message's first frame",
        );
    }
}

#[test]
fn a_wrong_negotiated_parameter_is_caught() {
    // The answer on the wire.
    let policy = DeflateConfig::new().server_no_context_takeover(true);
    caught(
        "13.1.5",
        Role::Server,
        Sabotage::Policy(policy),
        "the testee answered Sec-WebSocket-Extensions",
    );
    caught(
        "13.9.5",
        Role::Server,
        Sabotage::Policy(DeflateConfig::new().server_max_window_bits(Some(12))),
        "server_max_window_bits=12",
    );
    // The offer on the wire.
    caught(
        "13.4.5",
        Role::Client,
        Sabotage::Policy(DeflateConfig::new().client_max_window_bits(Some(10))),
        "the testee offered Sec-WebSocket-Extensions",
    );
    // The engine's parameters: context kept while the answer said no
    // context takeover. The runner's fresh window per message cannot
    // resolve references into the previous message.
    for role in [Role::Server, Role::Client] {
        caught(
            "13.2.5",
            role,
            Sabotage::EngineParams("permessage-deflate"),
            "without context takeover: it does not inflate",
        );
        caught(
            "13.2.5",
            role,
            Sabotage::EngineParams("permessage-deflate"),
            "the testee's engine uses",
        );
    }
}
