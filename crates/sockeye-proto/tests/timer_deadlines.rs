//! The engine's timers never hand out a deadline that is already past once
//! `handle_timeout` ran for that time (the keepalive spin of issue 14: a
//! Ping waiting for its Pong left the next Ping's deadline in the past, and
//! a front-end that sleeps until the deadline looped at a full core).
//!
//! A property test over random configs (keepalive interval below, equal to
//! and above the Pong timeout; idle, close and message timeouts on and
//! off; zero durations), random clocks and peers, and closes scheduled
//! with `Connection::close_at` (in the past, now, or later), plus
//! regression tests for the silent peer and the scheduled close.

mod common;

use std::time::{Duration, Instant};

use common::{client_frame, close_payload, feed, output, server_frame};
use proptest::prelude::*;
use sockeye_proto::{CloseCode, Config, Connection, Error, Event, Role, State, Timeout};

/// What happens between two looks at the clock.
#[derive(Debug, Clone)]
enum Step {
    /// The clock moves on by this many milliseconds.
    Advance(u64),
    /// The front-end sleeps until the engine's deadline.
    Sleep,
    /// The peer answers the last Ping we sent.
    Pong,
    /// The peer sends a whole message.
    Message,
    /// The peer sends one more byte of a frame it never finishes.
    Dribble,
    /// The peer sends a Close.
    PeerClose,
    /// The application closes.
    LocalClose,
    /// The application schedules a close this many milliseconds from now
    /// (negative: in the past), as a server's drain does.
    ScheduleClose(i64),
    /// The transport ends.
    Eof,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..40_000).prop_map(Step::Advance),
        6 => Just(Step::Sleep),
        2 => Just(Step::Pong),
        2 => Just(Step::Message),
        2 => Just(Step::Dribble),
        1 => Just(Step::PeerClose),
        1 => Just(Step::LocalClose),
        2 => (-2_000i64..40_000).prop_map(Step::ScheduleClose),
        1 => Just(Step::Eof),
    ]
}

fn optional_millis() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Duration::ZERO)),
        6 => (1u64..40_000).prop_map(|ms| Some(Duration::from_millis(ms))),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        optional_millis(),
        0u64..40_000,
        0u64..20_000,
        optional_millis(),
        optional_millis(),
        0u8..3,
    )
        .prop_map(|(interval, timeout, close, idle, message, relation)| {
            // Cover the interval below, equal to and above the timeout.
            let timeout = Duration::from_millis(timeout);
            let interval = interval.map(|interval| match relation {
                0 => interval.min(timeout),
                1 => timeout,
                _ => interval,
            });
            Config::new()
                .keepalive_interval(interval)
                .keepalive_timeout(timeout)
                .close_timeout(Duration::from_millis(close))
                .idle_timeout(idle)
                .message_timeout(message)
        })
}

/// A frame from the peer of an engine playing `role`.
fn peer_frame(role: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => client_frame(fin, opcode, payload),
        Role::Client => server_frame(fin, opcode, payload),
    }
}

/// Everything the engine has to say, and the payload of its last Ping.
fn drain(conn: &mut Connection, last_ping: &mut Option<Vec<u8>>) {
    while conn.next_event().is_some() {}
    for frame in output(conn) {
        if frame.opcode == 9 {
            *last_ping = Some(frame.payload.to_vec());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_deadline_is_past_once_handled(
        config in config(),
        server in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut conn = Connection::new(role, config);
        let start = Instant::now();
        let mut now = start;
        let mut last_ping: Option<Vec<u8>> = None;
        // The frame a dribbling peer never finishes: its header says 100
        // bytes, and one comes at a time.
        let unfinished = peer_frame(role, true, 2, &[7; 100]);
        let mut dribbled = 0;
        for step in steps {
            match step {
                Step::Advance(ms) => now += Duration::from_millis(ms),
                Step::Sleep => {
                    if let Some(deadline) = conn.poll_timeout(now) {
                        now = now.max(deadline);
                    }
                }
                Step::Pong => {
                    if let Some(ping) = &last_ping {
                        feed(&mut conn, &peer_frame(role, true, 10, ping));
                    }
                }
                Step::Message => {
                    if dribbled == 0 {
                        feed(&mut conn, &peer_frame(role, true, 2, b"data"));
                    }
                }
                Step::Dribble => {
                    if dribbled < unfinished.len() - 1 {
                        feed(&mut conn, &unfinished[dribbled..=dribbled]);
                        dribbled += 1;
                    }
                }
                Step::PeerClose => {
                    if dribbled == 0 {
                        feed(&mut conn, &peer_frame(role, true, 8, &close_payload(1000, "")));
                    }
                }
                Step::LocalClose => {
                    let _ = conn.send_close(CloseCode::NORMAL, "");
                }
                Step::ScheduleClose(ms) => {
                let at = if ms < 0 {
                    now.checked_sub(Duration::from_millis(ms.unsigned_abs()))
                        .unwrap_or(now)
                } else {
                    now + Duration::from_millis(ms as u64)
                };
                let _ = conn.close_at(at, CloseCode::GOING_AWAY, "draining");
            }
                Step::Eof => conn.receive_eof(),
            }
            drain(&mut conn, &mut last_ping);
            // What every front-end does when it wakes: handle the time,
            // then ask for the next deadline.
            conn.handle_timeout(now);
            drain(&mut conn, &mut last_ping);
            if let Some(deadline) = conn.poll_timeout(now) {
                prop_assert!(
                    deadline > now,
                    "deadline {:?} is not after now ({:?} in) in {:?}",
                    deadline - start,
                    now - start,
                    conn.state()
                );
            }
        }
    }
}

/// A front-end's loop over simulated time against a peer that never
/// answers: how many times the engine is woken up in `span`.
fn wakeups_with_a_silent_peer(config: Config, span: Duration) -> (usize, Connection) {
    let mut conn = Connection::new(Role::Server, config);
    let start = Instant::now();
    let mut now = start;
    let mut wakeups = 0;
    while let Some(deadline) = conn.poll_timeout(now) {
        assert!(deadline > now, "a deadline already past: the spin");
        now = deadline;
        if now - start > span {
            break;
        }
        wakeups += 1;
        conn.handle_timeout(now);
        while conn.next_event().is_some() {}
        output(&mut conn);
        if conn.should_close_transport() {
            break;
        }
    }
    (wakeups, conn)
}

#[test]
fn a_silent_peer_with_the_interval_shorter_than_the_timeout_is_woken_for_a_few_times() {
    // The case of the bug report: `--ping-interval 5s` with the default
    // 20 s Pong timeout. One Ping at 5 s, the drop at 25 s, and the close
    // timer: a handful of wake-ups, not millions.
    let config = Config::new()
        .keepalive_interval(Some(Duration::from_secs(5)))
        .keepalive_timeout(Duration::from_secs(20));
    let (wakeups, mut conn) = wakeups_with_a_silent_peer(config, Duration::from_secs(60));
    assert!(wakeups <= 3, "{wakeups} wake-ups");
    assert_eq!(conn.state(), State::Closed);
    let closed = std::iter::from_fn(|| conn.next_event()).last();
    assert!(closed.is_none() || matches!(closed, Some(Event::Closed(_))));
}

#[test]
fn the_next_ping_is_one_interval_after_the_pong() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .keepalive_interval(Some(secs(5)))
        .keepalive_timeout(secs(20));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    assert_eq!(server.poll_timeout(t0), Some(t0 + secs(5)));
    server.handle_timeout(t0 + secs(5));
    let ping = output(&mut server);
    assert_eq!(ping[0].opcode, 9);
    // While the Pong is awaited, the only deadline is the Pong's.
    assert_eq!(server.poll_timeout(t0 + secs(11)), Some(t0 + secs(25)));
    feed(&mut server, &client_frame(true, 10, &ping[0].payload));
    assert_eq!(server.poll_timeout(t0 + secs(12)), Some(t0 + secs(17)));
}

#[test]
fn servers_ping_by_default_and_clients_do_not() {
    let t0 = Instant::now();
    let mut server = Connection::new(Role::Server, Config::default());
    assert_eq!(server.poll_timeout(t0), Some(t0 + Duration::from_secs(20)));
    let mut client = Connection::new(Role::Client, Config::default());
    assert_eq!(client.poll_timeout(t0), None);
    let mut quiet = Connection::new(Role::Server, Config::new().keepalive_interval(None));
    assert_eq!(quiet.poll_timeout(t0), None);
}

#[test]
fn a_dribbled_frame_is_closed_with_1008_at_the_message_timeout() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .keepalive_interval(None)
        .message_timeout(Some(secs(30)));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    let frame = client_frame(true, 1, b"never finished, one byte at a time");
    feed(&mut server, &frame[..1]);
    assert_eq!(server.poll_timeout(t0), Some(t0 + secs(30)));
    // More bytes do not move the deadline.
    for (i, byte) in frame[1..10].iter().enumerate() {
        feed(&mut server, std::slice::from_ref(byte));
        let now = t0 + secs(i as u64 + 1);
        server.handle_timeout(now);
        assert_eq!(server.poll_timeout(now), Some(t0 + secs(30)));
    }
    server.handle_timeout(t0 + secs(30));
    let close = output(&mut server);
    assert_eq!(close[0].opcode, 8);
    assert_eq!(close[0].payload[..2], 1008u16.to_be_bytes());
    let Some(Event::Closed(closed)) = server.next_event() else {
        panic!("not closed")
    };
    assert_eq!(closed.error, Some(Error::Timeout(Timeout::Message)));
    assert!(server.should_close_transport());
}

#[test]
fn a_steady_stream_of_whole_messages_never_hits_the_message_timeout() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .keepalive_interval(None)
        .message_timeout(Some(secs(30)));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    // Each look at the clock finds half a message in the buffer, for far
    // longer than the timeout: only a message that takes 30 s counts.
    let frame = client_frame(true, 2, &[1; 64]);
    feed(&mut server, &frame[..10]);
    for second in 1..200 {
        let mut bytes = frame[10..].to_vec();
        bytes.extend_from_slice(&frame[..10]);
        let events = feed(&mut server, &bytes);
        assert_eq!(events.len(), 1, "{events:?}");
        let now = t0 + secs(second);
        server.handle_timeout(now);
        assert!(server.poll_timeout(now).unwrap() > now + secs(29));
    }
    assert_eq!(server.state(), State::Open);
}

#[test]
fn a_fragmented_message_must_be_finished_within_the_timeout() {
    let secs = Duration::from_secs;
    let config = Config::new()
        .keepalive_interval(None)
        .message_timeout(Some(secs(30)));
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    feed(&mut server, &client_frame(false, 1, b"a"));
    assert_eq!(server.poll_timeout(t0), Some(t0 + secs(30)));
    // Whole continuation frames (and Pings between them) keep coming, the
    // message never ends.
    for second in 1..30 {
        feed(&mut server, &client_frame(false, 0, b"a"));
        feed(&mut server, &client_frame(true, 9, b""));
        server.handle_timeout(t0 + secs(second));
        output(&mut server);
    }
    server.handle_timeout(t0 + secs(30));
    assert_eq!(output(&mut server)[0].payload[..2], 1008u16.to_be_bytes());
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn a_scheduled_close_goes_out_at_its_time_and_ends_cleanly_when_answered() {
    let millis = Duration::from_millis;
    let config = Config::new().keepalive_interval(None);
    let mut server = Connection::new(Role::Server, config);
    let t0 = Instant::now();
    server
        .close_at(t0 + millis(250), CloseCode::SERVICE_RESTART, "restarting")
        .unwrap();
    assert_eq!(server.scheduled_close(), Some(t0 + millis(250)));
    assert_eq!(server.poll_timeout(t0), Some(t0 + millis(250)));
    // Not yet: messages still flow.
    server.handle_timeout(t0 + millis(249));
    assert!(output(&mut server).is_empty());
    assert_eq!(server.state(), State::Open);
    server.handle_timeout(t0 + millis(250));
    let close = output(&mut server);
    assert_eq!(close.len(), 1);
    assert_eq!(close[0].opcode, 8);
    assert_eq!(close[0].payload[..], close_payload(1012, "restarting")[..]);
    assert_eq!(server.state(), State::Closing);
    assert_eq!(server.scheduled_close(), None);
    // Now the close timer runs, later than now.
    let next = server.poll_timeout(t0 + millis(250)).unwrap();
    assert!(next > t0 + millis(250));
    let events = feed(
        &mut server,
        &client_frame(true, 8, &close_payload(1012, "")),
    );
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("not closed: {events:?}")
    };
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(
        closed.sent.as_ref().map(|frame| frame.code),
        Some(CloseCode::SERVICE_RESTART)
    );
}

#[test]
fn a_scheduled_close_in_the_past_fires_at_the_next_look_at_the_clock() {
    let mut server = Connection::new(Role::Server, Config::default());
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(5);
    server.close_at(t0, CloseCode::GOING_AWAY, "").unwrap();
    assert_eq!(server.poll_timeout(now), Some(t0));
    server.handle_timeout(now);
    assert_eq!(output(&mut server)[0].payload[..2], 1001u16.to_be_bytes());
    assert!(server.poll_timeout(now).unwrap() > now);
}

#[test]
fn a_scheduled_close_is_dropped_when_the_connection_closes_first() {
    let secs = Duration::from_secs;
    let mut server = Connection::new(Role::Server, Config::new().keepalive_interval(None));
    let t0 = Instant::now();
    server
        .close_at(t0 + secs(1), CloseCode::GOING_AWAY, "")
        .unwrap();
    feed(
        &mut server,
        &client_frame(true, 8, &close_payload(1000, "")),
    );
    output(&mut server);
    assert_eq!(server.state(), State::Closed);
    assert_eq!(server.scheduled_close(), None);
    server.handle_timeout(t0 + secs(1));
    assert!(output(&mut server).is_empty(), "no second Close");
    // Closing already: nothing more can be scheduled.
    assert_eq!(
        server.close_at(t0, CloseCode::GOING_AWAY, ""),
        Err(Error::AlreadyClosed)
    );
    let mut other = Connection::new(Role::Server, Config::default());
    assert!(matches!(
        other.close_at(t0, CloseCode::ABNORMAL, ""),
        Err(Error::InvalidInput(_))
    ));
}
