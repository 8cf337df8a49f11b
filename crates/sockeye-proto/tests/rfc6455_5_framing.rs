//! RFC 6455 section 5: framing, masking, fragmentation, control frames.

mod common;

use common::*;
use sockeye_proto::{
    CloseCode, Config, Connection, Error, Event, Message, ProtocolError, Role, State,
};

fn closed_with(events: &[Event], code: u16) -> bool {
    matches!(events.last(), Some(Event::Closed(closed)) if closed.code().as_u16() == code)
}

#[test]
fn single_frame_text_and_binary() {
    let mut server = server();
    let mut input = client_frame(true, 1, b"hello");
    input.extend(client_frame(true, 2, &[0, 1, 2]));
    let events = feed(&mut server, &input);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("hello")),
            Event::Message(Message::binary(vec![0, 1, 2])),
        ]
    );
}

#[test]
fn an_idle_connection_holds_no_input_buffer() {
    let mut server = server();
    // A front-end reads into spare room in the engine's buffer...
    let buffer = server.receive_buffer();
    buffer.reserve(64 * 1024);
    buffer.extend_from_slice(&client_frame(true, 2, &[7; 3000]));
    let events: Vec<Event> = std::iter::from_fn(|| server.next_event()).collect();
    assert_eq!(events, vec![Event::Message(Message::binary(vec![7; 3000]))]);
    // ...which is given back once everything in it was parsed (the
    // message keeps its own bytes).
    assert_eq!(server.receive_buffer().capacity(), 0);
}

#[test]
fn the_engine_tells_how_much_of_a_frame_is_missing() {
    let mut server = server();
    assert_eq!(server.frame_bytes_missing(), 0);
    let input = client_frame(true, 2, &[1; 100_000]);
    // The header (2 + 8 + 4 bytes) and 1,000 payload bytes.
    assert!(feed(&mut server, &input[..14 + 1000]).is_empty());
    assert_eq!(server.frame_bytes_missing(), 99_000);
    // The next bytes make room for the whole frame at once: the rest
    // arrives without the buffer moving.
    assert!(feed(&mut server, &input[14 + 1000..14 + 2000]).is_empty());
    let room = server.receive_buffer().as_ptr();
    assert!(feed(&mut server, &input[14 + 2000..input.len() - 1]).is_empty());
    assert_eq!(server.receive_buffer().as_ptr(), room);
    assert_eq!(server.frame_bytes_missing(), 1);
    assert_eq!(feed(&mut server, &input[input.len() - 1..]).len(), 1);
    assert_eq!(server.frame_bytes_missing(), 0);
}

#[test]
fn a_frame_larger_than_its_first_read_gets_its_room_at_once() {
    let mut server = server();
    let input = client_frame(true, 2, &[3; 100_000]);
    // The first read brings the header and a little payload: the room for
    // the whole frame is reserved then, so the buffer never moves.
    assert!(feed(&mut server, &input[..5000]).is_empty());
    // (With room past its end for a control frame that follows it, up to
    // 2 + 4 + 125 bytes, so a front-end reading into the spare room reads
    // that with the frame's last bytes.)
    assert!(server.receive_buffer().capacity() >= 100_000 + 131);
    let room = server.receive_buffer().as_ptr();
    assert!(feed(&mut server, &input[5000..input.len() - 1]).is_empty());
    assert_eq!(server.receive_buffer().as_ptr(), room);
    let events = feed(&mut server, &input[input.len() - 1..]);
    assert_eq!(
        events,
        vec![Event::Message(Message::binary(vec![3; 100_000]))]
    );
    // A header the engine will refuse reserves nothing for its payload.
    let mut server = Connection::new(Role::Server, Config::new().max_frame_size(1000));
    let input = client_frame(true, 2, &[3; 100_000]);
    server.receive_data(&input[..14]);
    assert!(server.receive_buffer().capacity() < 1000);
    let events: Vec<Event> = std::iter::from_fn(|| server.next_event()).collect();
    assert!(closed_with(&events, 1009), "{events:?}");
}

#[test]
fn a_buffer_handed_over_becomes_the_input_without_a_copy() {
    let mut server = server();
    let input = client_frame(true, 2, &[5; 50_000]);
    // A front-end that read 20,000 bytes into a buffer it gives away.
    let mut read = bytes::BytesMut::with_capacity(64 * 1024);
    read.extend_from_slice(&input[..20_000]);
    let at = read.as_ptr();
    server.receive_bytes(read);
    assert_eq!(server.receive_buffer().as_ptr(), at);
    assert!(server.next_event().is_none());
    // The rest goes into the same buffer's spare room...
    let mut rest = bytes::BytesMut::new();
    rest.extend_from_slice(&input[20_000..]);
    server.receive_bytes(rest);
    // ...and the message is the very bytes that were handed over.
    let Some(Event::Message(message)) = server.next_event() else {
        panic!("no message");
    };
    assert_eq!(message.as_bytes().len(), 50_000);
    assert!(message.as_bytes().iter().all(|byte| *byte == 5));
    // (Header: 2 bytes, a 16-bit length, the masking key.)
    assert_eq!(message.as_bytes().as_ptr(), at.wrapping_add(8));
    // A closed engine takes nothing.
    let mut closed = Connection::new(Role::Server, Config::default());
    feed(&mut closed, &client_frame(true, 8, &[]));
    let mut late = bytes::BytesMut::new();
    late.extend_from_slice(&client_frame(true, 1, b"late"));
    closed.receive_bytes(late);
    assert_eq!(closed.state(), State::Closed);
    assert!(closed.receive_buffer().is_empty());
}

#[test]
fn every_length_encoding_is_accepted() {
    for len in [0, 1, 125, 126, 127, 128, 65535, 65536, 100_000] {
        let payload = vec![b'x'; len];
        let mut server = server();
        let events = feed(&mut server, &client_frame(true, 2, &payload));
        assert_eq!(
            events,
            vec![Event::Message(Message::binary(payload))],
            "{len}"
        );
    }
}

#[test]
fn bytes_arriving_one_at_a_time_decode_the_same() {
    let mut server = server();
    let mut input = client_frame(false, 1, "κόσ".as_bytes());
    input.extend(client_frame(true, 9, b"ping"));
    input.extend(client_frame(true, 0, "με".as_bytes()));
    let mut events = Vec::new();
    for byte in input {
        events.extend(feed(&mut server, &[byte]));
    }
    assert_eq!(
        events,
        vec![
            Event::Ping(b"ping"[..].into()),
            Event::Message(Message::text("κόσμε")),
        ]
    );
    assert_eq!(
        output(&mut server),
        vec![Decoded {
            fin: true,
            rsv: 0,
            opcode: 10,
            masked: false,
            payload: b"ping".to_vec()
        }]
    );
}

#[test]
fn server_rejects_unmasked_and_client_rejects_masked() {
    let mut server = server();
    let events = feed(&mut server, &server_frame(true, 1, b"x"));
    assert!(closed_with(&events, 1002));
    assert!(matches!(
        &events[0],
        Event::Closed(c) if c.error == Some(Error::Protocol(ProtocolError::UnmaskedFrame))
    ));

    let mut client = client();
    let events = feed(&mut client, &client_frame(true, 1, b"x"));
    assert!(matches!(
        &events[0],
        Event::Closed(c) if c.error == Some(Error::Protocol(ProtocolError::MaskedFrame))
    ));
    let out = output(&mut client);
    assert_eq!(out.len(), 1);
    assert!(out[0].masked, "a client masks even its Close");
    assert_eq!(out[0].payload[..2], 1002u16.to_be_bytes());
    assert!(client.should_close_transport());
}

#[test]
fn reserved_bits_and_opcodes_fail_with_1002() {
    for (rsv, opcode) in [(4, 1), (2, 2), (1, 9), (0, 3), (0, 7), (0, 11), (0, 15)] {
        let mut server = server();
        let mut input = client_frame(true, 1, b"before");
        input.extend(frame(true, rsv, opcode, Some(KEY), b""));
        input.extend(client_frame(true, 1, b"after"));
        let events = feed(&mut server, &input);
        assert_eq!(events.len(), 2, "rsv {rsv} opcode {opcode}");
        assert_eq!(events[0], Event::Message(Message::text("before")));
        assert!(closed_with(&events, 1002));
        assert!(!server.should_close_transport(), "output not yet taken");
        let out = output(&mut server);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].opcode, 8);
        assert!(server.should_close_transport());
    }
}

#[test]
fn control_frames_must_be_final_and_short() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(false, 9, b""));
    assert!(closed_with(&events, 1002));
    let mut server = common::server();
    let events = feed(&mut server, &client_frame(true, 9, &[0; 126]));
    assert!(closed_with(&events, 1002));
    let mut server = common::server();
    let events = feed(&mut server, &client_frame(true, 9, &[7; 125]));
    assert_eq!(events, vec![Event::Ping(vec![7; 125].into())]);
}

#[test]
fn fragmentation_rules() {
    // Continuation without a start.
    let mut s = server();
    assert!(closed_with(
        &feed(&mut s, &client_frame(true, 0, b"x")),
        1002
    ));
    // A new message inside an unfinished one.
    let mut s = server();
    let mut input = client_frame(false, 1, b"a");
    input.extend(client_frame(true, 1, b"b"));
    assert!(closed_with(&feed(&mut s, &input), 1002));
    // Control frames between fragments are fine.
    let mut s = server();
    let mut input = client_frame(false, 2, b"a");
    input.extend(client_frame(true, 10, b"pong"));
    input.extend(client_frame(false, 0, b"b"));
    input.extend(client_frame(true, 9, b""));
    input.extend(client_frame(true, 0, b"c"));
    assert_eq!(
        feed(&mut s, &input),
        vec![
            Event::Pong(b"pong"[..].into()),
            Event::Ping(b""[..].into()),
            Event::Message(Message::binary(&b"abc"[..])),
        ]
    );
}

#[test]
fn invalid_utf8_fails_fast_before_the_frame_completes() {
    let mut server = server();
    let mut input = client_frame(true, 1, b"abc\xff def and much more text");
    input.truncate(2 + 4 + 4); // header, key and "abc\xff" only
    let events = feed(&mut server, &input);
    assert!(closed_with(&events, 1007), "{events:?}");
}

#[test]
fn invalid_utf8_fails_fast_before_the_message_completes() {
    let mut server = server();
    let mut input = client_frame(false, 1, "ok ".as_bytes());
    input.extend(client_frame(false, 0, b"\xed\xa0")); // a surrogate starts
    let events = feed(&mut server, &input);
    assert!(closed_with(&events, 1007), "{events:?}");
}

#[test]
fn text_ending_inside_a_code_point_fails_with_1007() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(true, 1, b"\xe2\x82"));
    assert!(closed_with(&events, 1007));
}

#[test]
fn limits_fail_with_1009_before_payload_arrives() {
    let config = Config::new().max_frame_size(1000).max_message_size(1500);
    // A frame announced too long: only its header arrives.
    let mut server = Connection::new(Role::Server, config.clone());
    let header = &client_frame(true, 2, &[0; 1001])[..8];
    assert!(closed_with(&feed(&mut server, header), 1009));
    // A 2^63-1 byte announcement costs nothing and fails at once.
    let mut server = Connection::new(Role::Server, config.clone());
    let mut huge = vec![0x82, 0xff];
    huge.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    huge.extend_from_slice(&KEY);
    assert!(closed_with(&feed(&mut server, &huge), 1009));
    // The top bit set is a protocol error.
    let mut server = Connection::new(Role::Server, config.clone());
    let mut bad = vec![0x82, 0xff];
    bad.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bad.extend_from_slice(&KEY);
    assert!(closed_with(&feed(&mut server, &bad), 1002));
    // Fragments add up.
    let mut server = Connection::new(Role::Server, config);
    let mut input = client_frame(false, 2, &[0; 1000]);
    input.extend(client_frame(true, 0, &[0; 500]));
    assert!(closed_with(&feed(&mut server, &input), 1009));
}

#[test]
fn many_tiny_fragments_exhaust_the_budget() {
    let config = Config::new()
        .max_message_size(64 * 1024)
        .fragment_overhead(64);
    let mut server = Connection::new(Role::Server, config);
    let mut input = client_frame(false, 1, b"");
    for _ in 0..2000 {
        input.extend(client_frame(false, 0, b""));
    }
    let events = feed(&mut server, &input);
    assert!(closed_with(&events, 1009));
}

#[test]
fn a_16_mib_message_in_64_byte_fragments_fits_the_defaults() {
    let mut server = server();
    let fragment = [b'a'; 64];
    let count = (16 << 20) / 64;
    let mut input = Vec::with_capacity(count * 72);
    for i in 0..count {
        let opcode = if i == 0 { 1 } else { 0 };
        input.extend(client_frame(i == count - 1, opcode, &fragment));
    }
    let events = feed(&mut server, &input);
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], Event::Message(m) if m.len() == 16 << 20));
}

#[test]
fn pongs_are_echoed_and_jump_ahead_of_queued_data() {
    let mut server = server();
    server.send(Message::binary(vec![1; 10])).unwrap();
    feed(&mut server, &client_frame(true, 9, b"are you there"));
    let out = output(&mut server);
    assert_eq!(out[0].opcode, 10);
    assert_eq!(out[0].payload, b"are you there");
    assert_eq!(out[1].opcode, 2);
}

#[test]
fn auto_pong_can_be_turned_off() {
    let mut server = Connection::new(Role::Server, Config::new().auto_pong(false));
    let events = feed(&mut server, &client_frame(true, 9, b"p"));
    assert_eq!(events, vec![Event::Ping(b"p"[..].into())]);
    assert!(output(&mut server).is_empty());
    server.send_pong(&b"p"[..]).unwrap();
    assert_eq!(output(&mut server)[0].opcode, 10);
}

#[test]
fn outgoing_messages_are_fragmented_at_the_configured_size() {
    let mut server = Connection::new(Role::Server, Config::new().outgoing_frame_size(4));
    server.send(Message::text("0123456789")).unwrap();
    let out = output(&mut server);
    let shape: Vec<(bool, u8, usize)> = out
        .iter()
        .map(|f| (f.fin, f.opcode, f.payload.len()))
        .collect();
    assert_eq!(shape, vec![(false, 1, 4), (false, 0, 4), (true, 0, 2)]);
}

#[test]
fn control_payloads_over_125_bytes_are_refused_locally() {
    let mut client = client();
    assert!(matches!(
        client.send_ping(vec![0; 126]),
        Err(Error::InvalidInput(_))
    ));
    assert!(client.send_ping(vec![0; 125]).is_ok());
    assert_eq!(client.state(), State::Open);
    assert!(matches!(
        client.send_close(CloseCode::new(1005), ""),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn ping_flood_without_reading_is_bounded() {
    let config = Config::new().max_queued_control_bytes(1024);
    let mut server = Connection::new(Role::Server, config);
    let mut input = Vec::new();
    for _ in 0..1000 {
        input.extend(client_frame(true, 9, &[0; 100]));
    }
    let events = feed(&mut server, &input);
    // Parsing stops once a little over 1 KiB of pongs wait.
    assert!(events.len() < 20, "{}", events.len());
    assert!(!server.wants_read());
    assert!(server.buffered_amount() <= 1024 + 102);
    // Once written, parsing resumes.
    output(&mut server);
    assert!(server.wants_read());
    assert!(server.next_event().is_some());
}
