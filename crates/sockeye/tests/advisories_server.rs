//! The 2026 advisories of other WebSocket implementations against
//! servers, replayed against sockeye's over loopback (issue 14 item 8):
//! each test sends what the advisory's attacker sent to a real sockeye
//! server (`ServerBuilder`'s tokio server, or the event loop under
//! `SOCKEYE_TEST_SERVER=event-loop`, see `common::front`) and checks the
//! exact outcome: close code, error variant. Node ws#2331 and ws#2333, Bandit, websocket-driver; the
//! advisories against clients are in `advisories_client.rs`.
//!
//! Where an advisory is about memory, the bound is shown by where the
//! connection fails: a Ping sent right after the last fragment that fits
//! the budget is answered (so everything up to it was accepted), and the
//! next fragment gets 1009. Where it is about time (a message dribbled
//! for ever), the server's message-completion timeout is set short and
//! the close only has to come before the dribble ends. Every wait is
//! bounded by the hang guard.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::advisories::*;
use common::hostile::*;
use sockeye::proto::{Config, Error as ProtoError, Initiator, ProtocolError, Timeout};
use sockeye::{CloseCode, Message, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

// ----- helpers --------------------------------------------------------------

/// The protocol error a server connection ended with.
fn protocol_error(outcome: &Outcome) -> Option<&ProtocolError> {
    match outcome {
        Outcome::Ended(closed) => match &closed.error {
            Some(ProtoError::Protocol(error)) => Some(error),
            _ => None,
        },
        _ => None,
    }
}

/// A fresh sockeye client gets its message echoed by the server at `addr`
/// and closes cleanly: the server is still serving.
async fn assert_serves_a_fresh_client(addr: SocketAddr) {
    let mut ws = connect(client(addr))
        .await
        .expect("a fresh client connects");
    ws.send(Message::text("still serving?")).await.unwrap();
    let echo = within(HANG_GUARD, "the echo", ws.recv()).await;
    assert_eq!(echo.unwrap().unwrap(), Message::text("still serving?"));
    let closed = within(HANG_GUARD, "the close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(closed.is_clean(), "{closed:?}");
}

/// Sends a Ping on a hand-made connection and reads the next frame, which
/// must be its Pong: the server is still reading this connection and has
/// accepted every frame sent before the Ping.
async fn ping_is_answered(tcp: &mut TcpStream, payload: &[u8]) {
    tcp.write_all(&client_frame(true, 9, payload))
        .await
        .unwrap();
    let frame = within(HANG_GUARD, "a Pong", read_frame(tcp))
        .await
        .expect("the server closed instead of answering the Ping");
    assert_eq!(
        (frame.opcode, &frame.payload[..]),
        (10, payload),
        "expected the Pong, got {frame:?}"
    );
}

/// How many continuation frames of `payload` bytes fit the budget after a
/// first frame of `first` bytes: each costs its payload plus the
/// fragment overhead against `max_message_size` (see `Config`).
fn continuations_within_budget(config: &Config, first: usize, payload: usize) -> usize {
    (config.get_max_message_size() - first) / (payload + config.get_fragment_overhead())
}

/// Reads server frames until a Close or the end of the connection;
/// returns the data frames seen before it, and the Close.
async fn frames_until_close<S: AsyncRead + Unpin>(tcp: &mut S) -> (Vec<ServerFrame>, CloseSeen) {
    within(HANG_GUARD, "a Close", async {
        let mut data = Vec::new();
        loop {
            match read_frame(tcp).await {
                None => return (data, CloseSeen::NoClose),
                Some(frame) if frame.opcode == 8 => {
                    let seen = match frame.payload.len() {
                        0 => CloseSeen::Empty,
                        _ => CloseSeen::Code(u16::from_be_bytes([
                            frame.payload[0],
                            frame.payload[1],
                        ])),
                    };
                    return (data, seen);
                }
                Some(frame) => data.push(frame),
            }
        }
    })
    .await
}

// ----- Node ws#2331: a message of 131,000 one-byte fragments ---------------

/// The fragments of Node ws#2331: a text frame of one byte with FIN=0,
/// then `count` one-byte continuation frames, none with FIN.
fn one_byte_continuations(count: usize) -> Vec<u8> {
    let continuation = client_frame(false, 0, b"a");
    let mut bytes = Vec::with_capacity(count * continuation.len());
    for _ in 0..count {
        bytes.extend_from_slice(&continuation);
    }
    bytes
}

/// Node ws#2331 (2026): a text frame with FIN=0 followed by about 131,000
/// one-byte continuation frames, never finished, made the receiver hold
/// per-fragment bookkeeping far larger than the payload. sockeye charges
/// each continuation its payload plus `fragment_overhead` (72 bytes)
/// against `max_message_size`: with a 1 MiB limit, the 14,364
/// continuations that fit are accepted (a Ping after them is answered)
/// and the very next one fails the connection with 1009,
/// `MessageTooLarge`, while the engine holds about 14 KB of payload: the
/// other 116,000 of the 131,000 are never needed.
#[tokio::test]
async fn ws_2331_one_byte_fragments_hit_the_fragment_budget_with_1009() {
    let config = Config::new().max_message_size(1 << 20);
    let fitting = continuations_within_budget(&config, 1, 1);
    assert_eq!(fitting, 14_364, "(1 MiB - 1) / (1 + 72)");
    let mut server = TestServer::start(ServerBuilder::new().config(config)).await;
    let mut tcp = open(server.addr).await;

    let mut bytes = client_frame(false, 1, b"a");
    bytes.extend(one_byte_continuations(fitting));
    within(HANG_GUARD, "the fragments written", tcp.write_all(&bytes))
        .await
        .unwrap();
    ping_is_answered(&mut tcp, b"all fit").await;

    // One more, and nothing after it: that one passes the budget.
    tcp.write_all(&one_byte_continuations(1)).await.unwrap();
    let seen = within(HANG_GUARD, "a Close", read_close(&mut tcp)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
    let outcome = server.outcome().await;
    assert_eq!(
        protocol_error(&outcome),
        Some(&ProtocolError::MessageTooLarge { max: 1 << 20 }),
        "{outcome:?}"
    );
}

/// Node ws#2331 (2026) with the default limits: 131,000 one-byte
/// continuations cost 1 + 131,000 x 73 bytes, about 9.6 MB, under the
/// 64 MiB message limit, so the never-finished message is not failed by
/// the budget. The server reads all of it (a Ping after the last
/// fragment is answered on that connection) and goes on serving: a fresh
/// client is echoed while the attacker is still connected, and the
/// attacker's connection still answers Pings.
#[tokio::test]
async fn ws_2331_one_byte_fragments_under_the_default_budget_leave_the_server_serving() {
    const FRAGMENTS: usize = 131_000;
    let defaults = Config::default();
    assert!(
        continuations_within_budget(&defaults, 1, 1) > FRAGMENTS,
        "the default budget admits the whole message"
    );
    let server = TestServer::start(ServerBuilder::new()).await;
    let mut tcp = open(server.addr).await;

    let mut bytes = client_frame(false, 1, b"a");
    bytes.extend(one_byte_continuations(FRAGMENTS));
    within(
        HANG_GUARD,
        "131,000 fragments written",
        tcp.write_all(&bytes),
    )
    .await
    .unwrap();
    ping_is_answered(&mut tcp, b"after 131,000").await;

    assert_serves_a_fresh_client(server.addr).await;
    ping_is_answered(&mut tcp, b"still connected").await;
}

// ----- Node ws#2331 against the message-completion timeout -----------------

/// The message-completion timeout of the tests below: far shorter than
/// the dribbles they send (several seconds), far longer than a timer's
/// lateness.
const MESSAGE_TIMEOUT: Duration = Duration::from_millis(300);

/// How long the attacker waits between two dribbled chunks.
const DRIBBLE_PACE: Duration = Duration::from_millis(20);

/// Starts a server whose `message_timeout` is [`MESSAGE_TIMEOUT`], writes
/// `first` to it on a fresh connection and then each of `dribbled`, one
/// every [`DRIBBLE_PACE`], never completing what `first` began. Checks
/// that the server closes with 1008 while the dribble goes on, having
/// echoed nothing, reports `Timeout::Message`, and goes on serving.
async fn closed_at_the_message_timeout(first: Vec<u8>, dribbled: Vec<Vec<u8>>) {
    let config = Config::new().message_timeout(Some(MESSAGE_TIMEOUT));
    let mut server = TestServer::start(ServerBuilder::new().config(config)).await;
    let (mut reader, mut writer) = open(server.addr).await.into_split();
    let total = dribbled.len();
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    let attacker = tokio::spawn(async move {
        writer.write_all(&first).await.unwrap();
        for chunk in dribbled {
            tokio::time::sleep(DRIBBLE_PACE).await;
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            count.fetch_add(1, Ordering::Relaxed);
        }
        // Never finished: the connection stays open until the test ends.
        std::future::pending::<()>().await;
    });

    let (data, close) = frames_until_close(&mut reader).await;
    let dribbled_before_close = written.load(Ordering::Relaxed);
    attacker.abort();
    assert!(data.is_empty(), "echoed {data:?}");
    assert_eq!(close, CloseSeen::Code(1008));
    assert!(
        dribbled_before_close < total,
        "the server closed only after all {total} chunks"
    );
    match server.outcome().await {
        Outcome::Ended(closed) => {
            assert_eq!(
                closed.error,
                Some(ProtoError::Timeout(Timeout::Message)),
                "{closed:?}"
            );
            assert_eq!(closed.initiated_by, Initiator::Local, "{closed:?}");
            assert_eq!(closed.code(), CloseCode::POLICY_VIOLATION, "{closed:?}");
        }
        other => panic!("{other:?}"),
    }
    drop(reader);

    assert_serves_a_fresh_client(server.addr).await;
}

/// Node ws#2331 (2026) with a `message_timeout`: a text frame with FIN=0,
/// then one-byte continuations, one every 20 ms, for ever. Each frame is
/// whole, so no frame timer runs out, and the budget is far off; the
/// message, though, is not finished within the timeout (300 ms), and the
/// server closes with 1008 while the continuations still come, its
/// connection ending with `Timeout::Message`.
#[tokio::test]
async fn ws_2331_one_byte_fragments_never_finished_are_closed_with_1008_at_the_message_timeout() {
    // 250 continuations take 5 s at 20 ms each.
    let dribbled = (0..250).map(|_| client_frame(false, 0, b"a")).collect();
    closed_at_the_message_timeout(client_frame(false, 1, b"a"), dribbled).await;
}

/// Node ws#2331 (2026) within a single frame: a header announcing 100
/// bytes of payload, then the payload one byte every 20 ms (2 s for the
/// whole frame). The frame is not finished within the message timeout
/// (300 ms): the server closes with 1008, `Timeout::Message`, before the
/// last byte.
#[tokio::test]
async fn a_frame_dribbled_a_byte_at_a_time_is_closed_with_1008_at_the_message_timeout() {
    let frame = client_frame(true, 2, &[0x61; 100]);
    let header_len = frame_header(true, 2, 100, true).len();
    let (header, payload) = frame.split_at(header_len);
    let dribbled = payload.iter().map(|byte| vec![*byte]).collect();
    closed_at_the_message_timeout(header.to_vec(), dribbled).await;
}

// ----- Node ws#2333: ordinary traffic trips no fragment counter -------------

/// The limit of the ws#2333 tests: far below what 20,000 messages add up
/// to (in payload and in fragment overhead), so any count that outlived
/// its message would trip it.
const PER_MESSAGE_LIMIT: usize = 4096;

/// Writes `messages` (each already split into frames) on one connection
/// to a server with a 4 KiB message limit, reads every echo in order,
/// and closes cleanly.
async fn all_echoed(messages: Vec<(String, Vec<Vec<u8>>)>) {
    let config = Config::new().max_message_size(PER_MESSAGE_LIMIT);
    let mut server = TestServer::start(ServerBuilder::new().config(config)).await;
    let tcp = open(server.addr).await;
    let (reader, writer) = tcp.into_split();
    let mut reader = BufReader::new(reader);
    let wire: Vec<u8> = messages
        .iter()
        .flat_map(|(_, frames)| frames.iter().flatten().copied())
        .collect();
    let total: usize = messages.iter().map(|(text, _)| text.len()).sum();
    assert!(total > PER_MESSAGE_LIMIT * 10);
    let sender = tokio::spawn(async move {
        let mut writer = writer;
        writer.write_all(&wire).await.unwrap();
        writer
    });
    within(HANG_GUARD, "every echo", async {
        for (index, (text, _)) in messages.iter().enumerate() {
            let echo = read_frame(&mut reader)
                .await
                .unwrap_or_else(|| panic!("the connection ended before echo {index}"));
            assert_eq!(
                (echo.fin, echo.opcode, &echo.payload[..]),
                (true, 1, text.as_bytes()),
                "echo {index}"
            );
        }
    })
    .await;
    let mut writer = within(HANG_GUARD, "the writer", sender)
        .await
        .unwrap()
        .reunite(reader.into_inner())
        .unwrap();
    writer
        .write_all(&client_frame(true, 8, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(
        within(HANG_GUARD, "the Close", read_close(&mut writer)).await,
        CloseSeen::Code(1000)
    );
    match server.outcome().await {
        Outcome::Ended(closed) => assert!(closed.is_clean(), "{closed:?}"),
        other => panic!("{other:?}"),
    }
}

/// Node ws#2333 (2026), the counterpart of ws#2331: its fix for #2331
/// counted fragments per connection, so ordinary traffic (many small
/// complete messages) was eventually refused. 20,000 small text messages
/// with FIN=1 on one connection are all echoed, in order, and the
/// connection closes cleanly with 1000, although together they are about
/// 50 times the server's 4 KiB message limit.
#[tokio::test]
async fn ws_2333_twenty_thousand_complete_messages_are_all_echoed() {
    let messages = (0..20_000)
        .map(|index| {
            let text = format!("message {index:05}");
            let frame = client_frame(true, 1, text.as_bytes());
            (text, vec![frame])
        })
        .collect();
    all_echoed(messages).await;
}

/// Node ws#2333 (2026), fragmented: 20,000 text messages each in two or
/// three fragments are all echoed whole, in order, and the connection
/// closes cleanly: the fragment budget is per message (20,000 x 2 x 72
/// bytes of overhead would be 700 times the 4 KiB limit).
#[tokio::test]
async fn ws_2333_twenty_thousand_fragmented_messages_are_all_echoed() {
    let messages = (0..20_000)
        .map(|index| {
            let text = format!("fragmented message {index:05}");
            let bytes = text.as_bytes();
            let cuts: &[usize] = if index % 2 == 0 { &[10] } else { &[5, 12] };
            let mut frames = Vec::new();
            let mut start = 0;
            for &cut in cuts {
                let opcode = if start == 0 { 1 } else { 0 };
                frames.push(client_frame(false, opcode, &bytes[start..cut]));
                start = cut;
            }
            frames.push(client_frame(true, 0, &bytes[start..]));
            (text, frames)
        })
        .collect();
    all_echoed(messages).await;
}

// ----- Bandit CVE-2026-42786: endless continuation frames -----------------

/// Bandit CVE-2026-42786 (2026): after a binary frame with FIN=0,
/// continuation frames kept coming and the server buffered them without
/// end. With a 1 MiB message limit, sockeye accepts exactly the 1 KiB
/// continuations that fit (each costs 1 KiB + 72 bytes; a Ping after the
/// last one is answered), and fails the connection with 1009,
/// `MessageTooLarge`, on the first one past the budget, while the
/// attacker's stream goes on. The server then serves a fresh client.
#[tokio::test]
async fn bandit_cve_2026_42786_endless_continuations_are_closed_with_1009() {
    const PAYLOAD: usize = 1024;
    let config = Config::new().max_message_size(1 << 20);
    let fitting = continuations_within_budget(&config, PAYLOAD, PAYLOAD);
    assert_eq!(fitting, 955, "(1 MiB - 1 KiB) / (1 KiB + 72)");
    let mut server = TestServer::start(ServerBuilder::new().config(config)).await;
    let mut tcp = open(server.addr).await;

    let continuation = client_frame(false, 0, &[0x5a; PAYLOAD]);
    let mut bytes = client_frame(false, 2, &[0xa5; PAYLOAD]);
    for _ in 0..fitting {
        bytes.extend_from_slice(&continuation);
    }
    within(HANG_GUARD, "the fragments written", tcp.write_all(&bytes))
        .await
        .unwrap();
    ping_is_answered(&mut tcp, b"at the budget").await;

    // Endless from here: the writer stops only when the test ends it (or,
    // should the server never close, after 64 MiB).
    let (mut reader, mut writer) = tcp.into_split();
    let sender = tokio::spawn(async move {
        let batch = continuation.repeat(64);
        let mut sent = 0usize;
        while sent < 64 << 20 && writer.write_all(&batch).await.is_ok() {
            sent += batch.len();
        }
        std::future::pending::<()>().await;
    });
    let seen = within(HANG_GUARD, "a Close", read_close(&mut reader)).await;
    sender.abort();
    assert_eq!(seen, CloseSeen::Code(1009));
    let outcome = server.outcome().await;
    assert_eq!(
        protocol_error(&outcome),
        Some(&ProtocolError::MessageTooLarge { max: 1 << 20 }),
        "{outcome:?}"
    );
    drop(reader);

    assert_serves_a_fresh_client(server.addr).await;
}

// ----- websocket-driver CVE-2026-54466: over-long length fields ------------

/// A masked client frame, 14 bytes, that a receiver which lost track of
/// frame boundaries would parse and echo as a message of its own.
fn smuggled() -> Vec<u8> {
    client_frame(true, 1, b"INJECTED")
}

/// websocket-driver CVE-2026-54466 (2026): a length field longer than
/// needed (a 64-bit length for a payload under 65,536 bytes, a 16-bit one
/// under 126) desynchronised the parser, whose later reads took payload
/// bytes for frame headers. RFC 6455 section 5.2 makes the minimal
/// encoding the sender's duty; sockeye's receiver accepts the longer
/// encodings on purpose (conformance cases 1.5.8 to 1.5.11) and reads
/// them exactly: a payload that is itself a frame is echoed whole as one
/// binary message, never as `INJECTED`, and the frame after it is the
/// next message. A length past `max_frame_size`, in any encoding, fails
/// the connection with 1009 at the header: nothing after it is taken as a
/// frame (the payload that follows, a whole frame, is never echoed).
#[tokio::test]
async fn websocket_driver_cve_2026_54466_over_long_lengths_do_not_desync_the_server() {
    let smuggled = smuggled();
    let long_300: Vec<u8> = smuggled.iter().copied().cycle().take(300).collect();
    let accepted = [
        ("16-bit length of 14", Length::Bits16, smuggled.clone()),
        ("64-bit length of 14", Length::Bits64, smuggled.clone()),
        ("64-bit length of 300", Length::Bits64, long_300),
    ];
    for (what, encoding, payload) in accepted {
        let mut server = TestServer::start(ServerBuilder::new()).await;
        let mut tcp = open(server.addr).await;
        let mut bytes = frame_with_length(2, payload.len() as u64, encoding, true, &payload);
        bytes.extend(client_frame(true, 1, b"after"));
        bytes.extend(client_frame(true, 8, &1000u16.to_be_bytes()));
        tcp.write_all(&bytes).await.unwrap();
        let (data, close) = frames_until_close(&mut tcp).await;
        let echoed: Vec<(u8, &[u8])> = data
            .iter()
            .map(|frame| (frame.opcode, &frame.payload[..]))
            .collect();
        assert_eq!(echoed, [(2, &payload[..]), (1, &b"after"[..])], "{what}");
        assert_eq!(close, CloseSeen::Code(1000), "{what}");
        match server.outcome().await {
            Outcome::Ended(closed) => assert!(closed.is_clean(), "{what}: {closed:?}"),
            other => panic!("{what}: {other:?}"),
        }
    }

    let small_frames = || ServerBuilder::new().config(Config::new().max_frame_size(1024));
    let max_frame = Config::default().get_max_frame_size() as u64;
    let refused = [
        (
            "16-bit length of 1025",
            small_frames(),
            1025,
            Length::Bits16,
            1024,
        ),
        (
            "64-bit length of 1025",
            small_frames(),
            1025,
            Length::Bits64,
            1024,
        ),
        (
            "7-bit length of 125",
            ServerBuilder::new().config(Config::new().max_frame_size(124)),
            125,
            Length::Short,
            124,
        ),
        (
            "64-bit length past the default",
            ServerBuilder::new(),
            max_frame + 1,
            Length::Bits64,
            max_frame as usize,
        ),
    ];
    for (what, builder, announced, encoding, max) in refused {
        let mut server = TestServer::start(builder).await;
        let mut tcp = open(server.addr).await;
        let mut bytes = frame_with_length(2, announced, encoding, true, &[]);
        // Frames where the announced payload would be: never parsed.
        for _ in 0..8 {
            bytes.extend_from_slice(&smuggled);
        }
        tcp.write_all(&bytes).await.unwrap();
        let (data, close) = frames_until_close(&mut tcp).await;
        assert!(data.is_empty(), "{what}: echoed {data:?}");
        assert_eq!(close, CloseSeen::Code(1009), "{what}");
        let outcome = server.outcome().await;
        assert_eq!(
            protocol_error(&outcome),
            Some(&ProtocolError::FrameTooLarge {
                size: announced,
                max
            }),
            "{what}"
        );
    }
}
