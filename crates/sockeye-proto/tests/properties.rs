//! Property tests: round trips through arbitrary chunking, and no panics on
//! arbitrary input.

use proptest::prelude::*;
use sockeye_proto::utf8::Utf8Validator;
use sockeye_proto::{Config, Connection, Event, Message, Role};

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::binary),
        // Long enough for 16-bit lengths.
        (126usize..70_000).prop_map(|len| Message::binary(vec![0xa5; len])),
    ]
}

/// Cuts `bytes` at the given points (taken modulo the length).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| cut % (bytes.len() + 1))
        .chain([0, bytes.len()])
        .collect();
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|pair| bytes[pair[0]..pair[1]].to_vec())
        .collect()
}

fn round_trip(sender_role: Role, messages: &[Message], frame_size: usize, cuts: &[usize]) {
    let receiver_role = match sender_role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut sender = Connection::new(sender_role, Config::new().outgoing_frame_size(frame_size));
    let mut receiver = Connection::new(receiver_role, Config::default());
    for message in messages {
        sender.send(message.clone()).unwrap();
    }
    let mut wire = Vec::new();
    sender.data_to_send(&mut wire);
    let mut received = Vec::new();
    for chunk in chunks(&wire, cuts) {
        receiver.receive_data(&chunk);
        while let Some(event) = receiver.next_event() {
            match event {
                Event::Message(message) => received.push(message),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(received, messages);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn messages_survive_any_chunking_client_to_server(
        messages in proptest::collection::vec(message(), 0..8),
        frame_size in 1usize..200,
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        round_trip(Role::Client, &messages, frame_size, &cuts);
    }

    #[test]
    fn messages_survive_any_chunking_server_to_client(
        messages in proptest::collection::vec(message(), 0..8),
        frame_size in 1usize..200,
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        round_trip(Role::Server, &messages, frame_size, &cuts);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        server in any::<bool>(),
        eof in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let config = Config::new().max_frame_size(512).max_message_size(1024);
        let mut conn = Connection::new(role, config);
        let mut closed = 0;
        for chunk in chunks(&bytes, &cuts) {
            conn.receive_data(&chunk);
            while let Some(event) = conn.next_event() {
                closed += usize::from(matches!(event, Event::Closed(_)));
            }
            let mut out = Vec::new();
            conn.data_to_send(&mut out);
        }
        if eof {
            conn.receive_eof();
            while let Some(event) = conn.next_event() {
                closed += usize::from(matches!(event, Event::Closed(_)));
            }
            prop_assert_eq!(closed, 1, "an ended transport always reports one Closed");
        }
        prop_assert!(closed <= 1);
    }

    #[test]
    fn utf8_validator_agrees_with_std(
        bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), 0x80u8..0xc0, 0xc2u8..0xf5], 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut validator = Utf8Validator::new();
        let mut ok = true;
        for chunk in chunks(&bytes, &cuts) {
            ok = ok && validator.feed(&chunk).is_ok();
        }
        ok = ok && validator.finish().is_ok();
        prop_assert_eq!(ok, std::str::from_utf8(&bytes).is_ok());
    }

    #[test]
    fn utf8_validator_fails_exactly_where_std_says(
        text in any::<String>(),
        junk in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        // Feed byte by byte: the validator must fail on the first byte
        // after which the bytes are no longer a prefix of valid UTF-8
        // (according to std), never earlier, never later.
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&junk);
        let fail_at = (0..bytes.len()).find(|&i| {
            matches!(std::str::from_utf8(&bytes[..=i]), Err(e) if e.error_len().is_some())
        });
        let mut validator = Utf8Validator::new();
        for (i, byte) in bytes.iter().enumerate() {
            let result = validator.feed(std::slice::from_ref(byte));
            if Some(i) == fail_at {
                prop_assert!(result.is_err(), "did not fail at {}", i);
                break;
            }
            prop_assert!(result.is_ok(), "failed early at {}", i);
        }
    }
}
