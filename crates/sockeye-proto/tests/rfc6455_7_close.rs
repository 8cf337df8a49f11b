//! RFC 6455 section 7: the closing handshake, close codes and reasons.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sockeye_proto::{
    CloseCode, Config, Connection, Error, Event, Initiator, Message, ProtocolError, Role, State,
    Timeout,
};

fn closed(events: &[Event]) -> &sockeye_proto::Closed {
    match events.last() {
        Some(Event::Closed(closed)) => closed,
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn peer_closes_first_and_the_code_is_echoed() {
    let mut server = server();
    let events = feed(
        &mut server,
        &client_frame(true, 8, &close_payload(1000, "bye")),
    );
    let closed = closed(&events);
    assert_eq!(closed.initiated_by, Initiator::Remote);
    assert_eq!(closed.code(), CloseCode::NORMAL);
    assert_eq!(closed.reason(), "bye");
    assert!(closed.is_clean());
    assert_eq!(server.state(), State::Closed);
    let out = output(&mut server);
    assert_eq!(
        out,
        vec![Decoded {
            fin: true,
            rsv: 0,
            opcode: 8,
            masked: false,
            payload: close_payload(1000, "")
        }]
    );
    // The server closes TCP first.
    assert!(server.should_close_transport());
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(true, 8, b""));
    assert_eq!(closed(&events).code(), CloseCode::NO_STATUS);
    assert_eq!(output(&mut server)[0].payload, b"");
}

#[test]
fn we_close_first() {
    let mut client = client();
    client.send(Message::text("last words")).unwrap();
    client.send_close(CloseCode::GOING_AWAY, "leaving").unwrap();
    assert_eq!(client.state(), State::Closing);
    assert_eq!(
        client.send(Message::text("more")),
        Err(Error::AlreadyClosed)
    );
    let out = output(&mut client);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].payload, b"last words");
    assert_eq!(out[1].payload, close_payload(1001, "leaving"));
    // Messages still arrive while closing.
    let mut input = server_frame(true, 1, b"still here");
    input.extend(server_frame(true, 8, &close_payload(1001, "")));
    let events = feed(&mut client, &input);
    assert_eq!(events[0], Event::Message(Message::text("still here")));
    let closed = closed(&events);
    assert_eq!(closed.initiated_by, Initiator::Local);
    assert!(closed.is_clean());
    assert!(output(&mut client).is_empty(), "no second Close");
    // The client waits for the server to close TCP.
    assert!(!client.should_close_transport());
    client.receive_eof();
    assert!(client.should_close_transport());
}

#[test]
fn simultaneous_close() {
    let mut client = client();
    let mut server = server();
    client.send_close(CloseCode::NORMAL, "").unwrap();
    server.send_close(CloseCode::NORMAL, "").unwrap();
    let mut to_server = Vec::new();
    client.data_to_send(&mut to_server);
    let mut to_client = Vec::new();
    server.data_to_send(&mut to_client);
    let client_events = feed(&mut client, &to_client);
    let server_events = feed(&mut server, &to_server);
    for events in [&client_events, &server_events] {
        let closed = closed(events);
        assert!(closed.is_clean());
        assert_eq!(closed.initiated_by, Initiator::Local);
    }
    assert!(output(&mut client).is_empty());
    assert!(output(&mut server).is_empty());
    assert!(server.should_close_transport());
}

#[test]
fn close_inside_a_fragmented_message_closes_normally() {
    let mut server = server();
    let mut input = client_frame(false, 1, b"half");
    input.extend(client_frame(true, 8, &close_payload(1000, "")));
    input.extend(client_frame(true, 0, b"ignored"));
    let events = feed(&mut server, &input);
    assert_eq!(events.len(), 1);
    assert!(closed(&events).is_clean());
    assert_eq!(output(&mut server)[0].payload, close_payload(1000, ""));
}

#[test]
fn data_after_close_is_dropped() {
    let mut server = server();
    let mut input = client_frame(true, 8, &close_payload(1000, ""));
    input.extend(client_frame(true, 1, b"after"));
    input.extend(client_frame(true, 9, b"ping"));
    let events = feed(&mut server, &input);
    assert_eq!(events.len(), 1);
    assert_eq!(output(&mut server).len(), 1);
    assert!(feed(&mut server, &client_frame(true, 1, b"later")).is_empty());
}

#[test]
fn invalid_close_payloads() {
    for (payload, code, error) in [
        (vec![0x03], 1002, ProtocolError::InvalidClosePayload),
        (
            close_payload(999, ""),
            1002,
            ProtocolError::InvalidCloseCode(999),
        ),
        (
            close_payload(1004, ""),
            1002,
            ProtocolError::InvalidCloseCode(1004),
        ),
        (
            close_payload(1005, ""),
            1002,
            ProtocolError::InvalidCloseCode(1005),
        ),
        (
            close_payload(1006, ""),
            1002,
            ProtocolError::InvalidCloseCode(1006),
        ),
        (
            close_payload(1015, ""),
            1002,
            ProtocolError::InvalidCloseCode(1015),
        ),
        (
            close_payload(2999, ""),
            1002,
            ProtocolError::InvalidCloseCode(2999),
        ),
        (
            close_payload(5000, ""),
            1002,
            ProtocolError::InvalidCloseCode(5000),
        ),
        (
            vec![0x03, 0xe8, 0xce, 0xba, 0xed, 0xa0, 0x80],
            1007,
            ProtocolError::InvalidCloseReason,
        ),
    ] {
        let mut server = server();
        let events = feed(&mut server, &client_frame(true, 8, &payload));
        let closed = closed(&events);
        assert_eq!(closed.error, Some(Error::Protocol(error)));
        assert_eq!(closed.sent.as_ref().unwrap().code.as_u16(), code);
        let out = output(&mut server);
        assert_eq!(out[0].payload[..2], code.to_be_bytes());
        assert!(server.should_close_transport());
    }
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ] {
        let mut server = server();
        let events = feed(
            &mut server,
            &client_frame(true, 8, &close_payload(code, "x")),
        );
        assert!(closed(&events).is_clean(), "{code}");
        assert_eq!(output(&mut server)[0].payload, code.to_be_bytes(), "{code}");
    }
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut server = server();
    feed(&mut server, &client_frame(false, 1, b"part"));
    server.receive_eof();
    let event = server.next_event().unwrap();
    let Event::Closed(closed) = event else {
        panic!()
    };
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert_eq!(closed.error, Some(Error::UnexpectedEof));
    assert!(server.should_close_transport());
    assert!(server.next_event().is_none());
}

#[test]
fn messages_before_eof_are_delivered_first() {
    let mut server = server();
    server.receive_data(&client_frame(true, 1, b"one"));
    server.receive_eof();
    assert_eq!(
        server.next_event(),
        Some(Event::Message(Message::text("one")))
    );
    assert!(matches!(server.next_event(), Some(Event::Closed(_))));
}

#[test]
fn close_timeout_gives_up_on_a_silent_peer() {
    let config = Config::new().close_timeout(Duration::from_secs(5));
    let mut client = Connection::new(Role::Client, config);
    let start = Instant::now();
    client.send_close(CloseCode::NORMAL, "").unwrap();
    output(&mut client);
    let deadline = client.poll_timeout(start).expect("close timer runs");
    assert_eq!(deadline, start + Duration::from_secs(5));
    client.handle_timeout(start + Duration::from_secs(4));
    assert_eq!(client.state(), State::Closing);
    client.handle_timeout(deadline);
    let Some(Event::Closed(closed)) = client.next_event() else {
        panic!()
    };
    assert_eq!(closed.error, Some(Error::Timeout(Timeout::Close)));
    assert!(client.should_close_transport());
}

#[test]
fn client_closes_tcp_itself_if_the_server_does_not() {
    let config = Config::new().close_timeout(Duration::from_secs(2));
    let mut client = Connection::new(Role::Client, config);
    let start = Instant::now();
    feed(
        &mut client,
        &server_frame(true, 8, &close_payload(1000, "")),
    );
    output(&mut client);
    assert!(!client.should_close_transport());
    let deadline = client.poll_timeout(start).unwrap();
    client.handle_timeout(deadline);
    assert!(client.should_close_transport());
}

#[test]
fn keepalive_pings_and_fails_without_pong() {
    let config = Config::new()
        .keepalive_interval(Some(Duration::from_secs(10)))
        .keepalive_timeout(Duration::from_secs(3));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    assert_eq!(server.poll_timeout(t0), Some(t0 + Duration::from_secs(10)));
    server.handle_timeout(t0 + Duration::from_secs(10));
    let ping = output(&mut server);
    assert_eq!(ping.len(), 1);
    assert_eq!(ping[0].opcode, 9);
    // The pong arrives: no failure at the deadline.
    feed(&mut server, &client_frame(true, 10, &ping[0].payload));
    let next = server.poll_timeout(t0 + Duration::from_secs(10)).unwrap();
    assert_eq!(next, t0 + Duration::from_secs(20));
    server.handle_timeout(next);
    let ping = output(&mut server);
    assert_eq!(ping[0].opcode, 9);
    // No pong this time.
    let deadline = server.poll_timeout(next).unwrap();
    assert_eq!(deadline, next + Duration::from_secs(3));
    server.handle_timeout(deadline);
    let Some(Event::Closed(closed)) = server.next_event() else {
        panic!()
    };
    assert_eq!(closed.error, Some(Error::Timeout(Timeout::Keepalive)));
    assert_eq!(output(&mut server)[0].payload[..2], 1011u16.to_be_bytes());
    assert!(server.should_close_transport());
}

#[test]
fn no_timers_without_keepalive_or_closing() {
    let config = Config::new().keepalive_interval(None);
    let mut server = Connection::new(Role::Server, config);
    assert_eq!(server.poll_timeout(Instant::now()), None);
    assert_eq!(client().poll_timeout(Instant::now()), None);
}

#[test]
fn idle_connections_are_closed_with_1001() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .idle_timeout(Some(secs(30)))
        .keepalive_interval(None);
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    assert_eq!(server.poll_timeout(t0), Some(t0 + secs(30)));
    // Input moves the deadline, whichever way it arrives.
    feed(&mut server, &client_frame(true, 1, b"hi"));
    assert_eq!(server.poll_timeout(t0 + secs(20)), Some(t0 + secs(50)));
    server
        .receive_buffer()
        .extend_from_slice(&client_frame(true, 9, b""));
    assert!(matches!(server.next_event(), Some(Event::Ping(_))));
    assert_eq!(server.poll_timeout(t0 + secs(40)), Some(t0 + secs(70)));
    output(&mut server);
    // A timer firing early changes nothing.
    server.handle_timeout(t0 + secs(69));
    assert!(output(&mut server).is_empty());
    // Silence: Close 1001, then the closing handshake as usual.
    server.handle_timeout(t0 + secs(70));
    let close = output(&mut server);
    assert_eq!(close[0].opcode, 8);
    assert_eq!(close[0].payload[..2], 1001u16.to_be_bytes());
    assert_eq!(server.state(), State::Closing);
    // The close timer now bounds the wait for the peer's Close.
    assert_eq!(server.poll_timeout(t0 + secs(70)), Some(t0 + secs(80)));
    let events = feed(
        &mut server,
        &client_frame(true, 8, &close_payload(1001, "")),
    );
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(closed.initiated_by, Initiator::Local);
    assert_eq!(closed.code(), CloseCode::GOING_AWAY);
    assert_eq!(closed.error, Some(Error::Timeout(Timeout::Idle)));
    assert!(server.should_close_transport());
}

#[test]
fn keepalive_pongs_keep_a_connection_from_idling() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .idle_timeout(Some(secs(25)))
        .keepalive_interval(Some(secs(10)))
        .keepalive_timeout(secs(5));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    let mut now = t0;
    for _ in 0..10 {
        now = server.poll_timeout(now).unwrap();
        server.handle_timeout(now);
        let frames = output(&mut server);
        assert_eq!(frames.len(), 1, "only pings, no close");
        assert_eq!(frames[0].opcode, 9);
        feed(&mut server, &client_frame(true, 10, &frames[0].payload));
    }
    assert_eq!(server.state(), State::Open);
    assert!(now >= t0 + secs(100));
}
