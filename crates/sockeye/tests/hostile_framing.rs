//! Hostile frames against a real sockeye server over loopback (RFC 6455
//! sections 5 and 7, issue 8): announced lengths no one sends, message
//! budgets attacked with a million fragments, malformed Close frames, a
//! ping flood from a client that never reads; and the masking keys of a
//! real sockeye client (section 10.3).
//!
//! The attacker writes raw frames after a hand-made handshake. Each test
//! bounds its time and checks the exact close code; memory is bounded when
//! the server fails the connection on a frame header alone, or stops
//! reading. The server is the tokio one or the event loop
//! (`SOCKEYE_TEST_SERVER`, see `common::front`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::front::tokio_only;
use common::hostile::*;
use sockeye::proto::{Config, Error as ProtoError, ProtocolError};
use sockeye::{ClientBuilder, Message, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

/// How long a prompt close may take.
const PROMPT: Duration = Duration::from_secs(2);

/// Opens a connection to a server built with `builder`, writes `bytes`
/// (the server may stop taking them), and returns the close code the
/// server sent and how the server saw the end.
async fn close_after(builder: ServerBuilder, bytes: Vec<u8>) -> (CloseSeen, Outcome) {
    let mut server = TestServer::start(builder).await;
    let tcp = open(server.addr).await;
    let (mut reader, writer) = tcp.into_split();
    let sender = write_in_background(writer, vec![bytes]);
    let (seen, elapsed) = timed(within(HANG_GUARD, "a Close", read_close(&mut reader))).await;
    assert!(elapsed < PROMPT, "the Close took {elapsed:?}");
    sender.abort();
    (seen, server.outcome().await)
}

/// The protocol error the server failed the connection with.
fn protocol_error(outcome: &Outcome) -> Option<&ProtocolError> {
    match outcome {
        Outcome::Ended(closed) => match &closed.error {
            Some(ProtoError::Protocol(error)) => Some(error),
            _ => None,
        },
        _ => None,
    }
}

// ----- announced lengths --------------------------------------------------

/// A header alone announcing a payload past the limits fails the
/// connection at once: 1009 for a length the limit refuses, 1002 for a
/// 64-bit length with its most significant bit set (section 5.2). Nothing
/// of the payload is waited for or buffered.
#[tokio::test]
async fn huge_announced_lengths_fail_on_the_header() {
    let max_frame = Config::default().get_max_frame_size() as u64;
    let cases = [
        ((1u64 << 63) - 1, 1009),
        (1 << 63, 1002),
        (u64::MAX, 1002),
        (1 << 32, 1009),
        (max_frame + 1, 1009),
    ];
    for (len, code) in cases {
        for opcode in [1, 2] {
            let header = frame_header(true, opcode, len, true);
            let (seen, outcome) = close_after(ServerBuilder::new(), header).await;
            assert_eq!(seen, CloseSeen::Code(code), "length {len}, opcode {opcode}");
            assert!(protocol_error(&outcome).is_some(), "{outcome:?}");
        }
    }
    // A smaller configured limit is enforced the same way.
    let builder = ServerBuilder::new().config(Config::new().max_frame_size(1024));
    let (seen, _) = close_after(builder, frame_header(true, 2, 1025, true)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
    // A 16-bit length just past the limit, too.
    let builder = ServerBuilder::new().config(Config::new().max_frame_size(125));
    let (seen, _) = close_after(builder, frame_header(true, 2, 126, true)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
}

/// Continuation frames announcing lengths whose sum with what came before
/// overflows: the message budget is checked with saturating sums on each
/// header, so the continuation fails at once (1009), or with 1002 when its
/// length has the top bit set. Even with no frame size limit at all.
#[tokio::test]
async fn continuation_lengths_cannot_overflow_the_budget() {
    let unlimited_frames = || {
        ServerBuilder::new().config(
            Config::new()
                .max_frame_size(usize::MAX)
                .max_message_size(1 << 20),
        )
    };
    let cases = [
        (unlimited_frames(), (1u64 << 63) - 1, 1009),
        (unlimited_frames(), u64::MAX - 10, 1002),
        (unlimited_frames(), (1 << 20) - 10, 1009),
        (ServerBuilder::new(), (1u64 << 63) - 1, 1009),
        (ServerBuilder::new(), 1 << 62, 1009),
    ];
    for (builder, len, code) in cases {
        let mut bytes = client_frame(false, 1, b"0123456789");
        bytes.extend(client_frame(false, 0, b"0123456789"));
        bytes.extend(frame_header(false, 0, len, true));
        let (seen, _) = close_after(builder, bytes).await;
        assert_eq!(seen, CloseSeen::Code(code), "continuation of {len}");
    }
    // A first frame of 2^63-1 with no frame limit hits the message limit.
    let (seen, _) = close_after(
        unlimited_frames(),
        frame_header(false, 2, (1 << 63) - 1, true),
    )
    .await;
    assert_eq!(seen, CloseSeen::Code(1009));
}

// ----- the fragment budget --------------------------------------------------

/// One text message as `fragments` frames of zero and one byte: the
/// one-byte fragments carry "€" (three UTF-8 bytes) a byte at a time, so
/// the validator must carry code points across fragments, and never
/// rescan. Never finished (no FIN).
fn tiny_fragments(fragments: usize) -> Vec<u8> {
    let euro = "€".as_bytes();
    let mut bytes = client_frame(false, 1, b"");
    let empty = client_frame(false, 0, b"");
    let ones: Vec<Vec<u8>> = euro
        .iter()
        .map(|byte| client_frame(false, 0, &[*byte]))
        .collect();
    bytes.reserve(fragments * 7);
    for index in 1..fragments {
        if index % 2 == 0 {
            bytes.extend_from_slice(&empty);
        } else {
            bytes.extend_from_slice(&ones[(index / 2) % 3]);
        }
    }
    bytes
}

/// Sends `bytes` in 1 MiB writes and returns the server's Close, how long
/// it took, and how the server saw the end. (After failing a connection
/// the server drains what the peer still sends, into a small scratch
/// buffer, so that a reset does not destroy its Close: the attacker's
/// writes go on succeeding, and the bound on memory is that the Close
/// comes as soon as the budget is spent.)
async fn flood(builder: ServerBuilder, bytes: Vec<u8>) -> (CloseSeen, Duration, Outcome) {
    let mut server = TestServer::start(builder).await;
    let tcp = open(server.addr).await;
    let (mut reader, mut writer) = tcp.into_split();
    let sender = tokio::spawn(async move {
        for chunk in bytes.chunks(1 << 20) {
            if writer.write_all(chunk).await.is_err() {
                return;
            }
        }
        // The message stays unfinished and the connection open: only the
        // server's budget can end it.
        std::future::pending::<()>().await;
    });
    let (seen, elapsed) = timed(within(HANG_GUARD, "a Close", read_close(&mut reader))).await;
    drop(reader);
    sender.abort();
    (seen, elapsed, server.outcome().await)
}

/// Issue 8 as written: a million zero- and one-byte fragments must be
/// stopped by the default budget with 1009.
#[tokio::test]
async fn a_million_tiny_fragments_hit_the_default_budget() {
    let (seen, elapsed, _) = flood(ServerBuilder::new(), tiny_fragments(1_000_000)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

/// The fragment budget stops a message of tiny fragments with 1009, in
/// time linear in the fragments: with the default config past about
/// 1,040,000 fragments, and with a 1 MiB message limit after about 16,000.
#[tokio::test]
async fn tiny_fragments_are_stopped_by_the_budget_in_linear_time() {
    let (seen, elapsed, outcome) = flood(ServerBuilder::new(), tiny_fragments(1_200_000)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
    assert!(
        matches!(
            protocol_error(&outcome),
            Some(ProtocolError::MessageTooLarge { .. })
        ),
        "{outcome:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "1009 after {elapsed:?}");

    let small = ServerBuilder::new().config(Config::new().max_message_size(1 << 20));
    let (seen, elapsed, outcome) = flood(small, tiny_fragments(1_000_000)).await;
    assert_eq!(seen, CloseSeen::Code(1009));
    assert!(
        matches!(
            protocol_error(&outcome),
            Some(ProtocolError::MessageTooLarge { max }) if *max == 1 << 20
        ),
        "{outcome:?}"
    );
    assert!(elapsed < PROMPT, "1009 after {elapsed:?}");
}

// ----- Close frames -------------------------------------------------------

fn close_frame(payload: &[u8]) -> Vec<u8> {
    client_frame(true, 8, payload)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// Close payloads of section 5.5.1: empty and a code with up to 123 bytes
/// of reason are answered (the code echoed); one byte, a 124-byte reason
/// (a 126-byte control frame, section 5.5) and a code that may not be
/// sent are 1002; a reason cut inside a code point is 1007 (section
/// 8.1).
#[tokio::test]
async fn close_payloads_are_checked() {
    let reason_123 = vec![b'r'; 123];
    let reason_124 = vec![b'r'; 124];
    let cases: Vec<(&str, Vec<u8>, CloseSeen)> = vec![
        ("empty", vec![], CloseSeen::Empty),
        ("code only", close_payload(1000, b""), CloseSeen::Code(1000)),
        ("1 byte", vec![0x03], CloseSeen::Code(1002)),
        (
            "123-byte reason",
            close_payload(1000, &reason_123),
            CloseSeen::Code(1000),
        ),
        (
            "124-byte reason",
            close_payload(1000, &reason_124),
            CloseSeen::Code(1002),
        ),
        (
            "cut after the lead byte",
            close_payload(1000, "é".as_bytes().split_last().unwrap().1),
            CloseSeen::Code(1007),
        ),
        (
            "cut inside a 4-byte code point",
            close_payload(4000, &"ok 🦀".as_bytes()[..5]),
            CloseSeen::Code(1007),
        ),
        ("code 1005", close_payload(1005, b""), CloseSeen::Code(1002)),
        ("code 999", close_payload(999, b""), CloseSeen::Code(1002)),
        (
            "code 4999",
            close_payload(4999, b"x"),
            CloseSeen::Code(4999),
        ),
    ];
    for (what, payload, expected) in cases {
        let (seen, outcome) = close_after(ServerBuilder::new(), close_frame(&payload)).await;
        assert_eq!(seen, expected, "{what}");
        let failed = protocol_error(&outcome).is_some();
        assert_eq!(
            failed,
            matches!(expected, CloseSeen::Code(1002 | 1007)),
            "{what}: {outcome:?}"
        );
    }
}

// ----- ping flood -----------------------------------------------------------

/// A client that floods Pings and never reads the Pongs: once the Pongs
/// the server cannot write exceed `max_queued_control_bytes` (64 KiB), the
/// server stops reading, so the attacker's writes stall after little more
/// than the sockets' buffers (64 KiB each way here). When the attacker
/// reads again, every Ping is answered and the connection closes cleanly.
#[tokio::test]
async fn a_ping_flood_without_reading_stalls_the_attacker() {
    let mut server = TestServer::start_with_buffers(ServerBuilder::new(), Some(FLOOD_BUFFER)).await;
    ping_flood(server.addr).await;
    match server.outcome().await {
        Outcome::Ended(closed) => assert!(closed.is_clean(), "{closed:?}"),
        other => panic!("{other:?}"),
    }
}

/// The same flood against the blocking front-end: its thread blocks
/// writing Pongs and so stops reading, which stalls the attacker the same
/// way.
#[tokio::test]
async fn a_ping_flood_stalls_the_attacker_of_a_blocking_server_too() {
    if tokio_only(
        "a_ping_flood_stalls_the_attacker_of_a_blocking_server_too",
        "tests the blocking front-end, not the server under test",
    ) {
        return;
    }
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(FLOOD_BUFFER).unwrap();
    socket.set_send_buffer_size(FLOOD_BUFFER).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap().into_std().unwrap();
    listener.set_nonblocking(false).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = sockeye::blocking::accept(tcp).unwrap();
        while let Some(message) = ws.recv() {
            ws.send(message.unwrap()).unwrap();
        }
        ws.closed().cloned()
    });
    ping_flood(addr).await;
    let closed = within(HANG_GUARD, "the blocking server's end", async {
        tokio::task::spawn_blocking(move || server.join().unwrap())
            .await
            .unwrap()
    })
    .await;
    assert!(closed.as_ref().is_some_and(|c| c.is_clean()), "{closed:?}");
}

/// Kernel send and receive buffer asked for on both ends of a flood.
const FLOOD_BUFFER: u32 = 64 * 1024;

/// Floods the server at `addr` with Pings without reading until its writes
/// stall, checks how much it took, then reads every Pong and closes.
async fn ping_flood(addr: std::net::SocketAddr) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(FLOOD_BUFFER).unwrap();
    socket.set_send_buffer_size(FLOOD_BUFFER).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(&valid_request(addr)).await.unwrap();
    let answer = within(HANG_GUARD, "a 101", read_response_head(&mut tcp))
        .await
        .unwrap();
    assert_eq!(answer.status, 101);

    let ping = client_frame(true, 9, &[b'p'; 125]);
    let batch: Vec<u8> = ping.repeat(64);
    // Bytes of the endless stream of Pings written so far; written with
    // try_write so the count is exact when the writes stall.
    let mut written = 0usize;
    let ((), elapsed) = timed(within(HANG_GUARD, "the flood stalls", async {
        loop {
            if tokio::time::timeout(Duration::from_millis(500), tcp.writable())
                .await
                .is_err()
            {
                return;
            }
            if written >= 16 << 20 {
                // Far past any buffer: the server keeps reading. Stop
                // here rather than feed it gigabytes.
                return;
            }
            let offset = written % ping.len();
            match tcp.try_write(&batch[offset..]) {
                Ok(count) => written += count,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => panic!("the server dropped the connection: {error}"),
            }
        }
    }))
    .await;
    // Two sockets' buffers each way (the kernel doubles what was asked),
    // the server's read buffer and 64 KiB of queued Pongs.
    assert!(
        written < 4 << 20,
        "the server took {written} bytes of Pings without their Pongs being read"
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "stalled after {elapsed:?}"
    );

    // Reading again unblocks everything: the cut Ping is finished, a Close
    // follows, and every Ping gets its Pong before the Close's echo.
    let (mut reader, mut writer) = tcp.into_split();
    let counter = tokio::spawn(async move {
        let mut pongs = 0usize;
        loop {
            match read_frame(&mut reader).await {
                Some(frame) if frame.opcode == 10 => pongs += 1,
                Some(frame) if frame.opcode == 8 => {
                    // The server closes TCP after its Close (section 7.1.1).
                    let eof = closed_within_reader(&mut reader).await;
                    return (pongs, Some(frame.payload), eof);
                }
                Some(frame) => panic!("unexpected frame {frame:?}"),
                None => return (pongs, None, true),
            }
        }
    });
    let cut = written % ping.len();
    let pings = written.div_ceil(ping.len());
    within(HANG_GUARD, "the rest of the flood and a Close", async {
        if cut != 0 {
            writer.write_all(&ping[cut..]).await.unwrap();
        }
        writer
            .write_all(&close_frame(&close_payload(1000, b"")))
            .await
            .unwrap();
    })
    .await;
    let (pongs, close, eof) = within(HANG_GUARD, "the Pongs", counter).await.unwrap();
    assert_eq!(pongs, pings, "every Ping is answered");
    assert_eq!(close, Some(close_payload(1000, b"")));
    assert!(
        eof,
        "the server did not close TCP after the closing handshake"
    );
}

/// Whether the server ends the stream within the prompt delay.
async fn closed_within_reader(reader: &mut tokio::net::tcp::OwnedReadHalf) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(PROMPT, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

// ----- masking keys -------------------------------------------------------

/// A raw server that completes one handshake by hand and returns the
/// masking key of each of the first `frames` frames the client sends.
async fn collect_keys(listener: &TcpListener, frames: usize) -> Vec<[u8; 4]> {
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let key = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a key");
    let accept = sockeye::proto::handshake::accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await.unwrap();
    let mut keys = Vec::with_capacity(frames);
    for _ in 0..frames {
        let mut header = [0u8; 6];
        tcp.read_exact(&mut header).await.unwrap();
        assert_eq!(header[1] & 0x80, 0x80, "a client frame must be masked");
        let len = usize::from(header[1] & 0x7f);
        assert!(len < 126);
        keys.push([header[2], header[3], header[4], header[5]]);
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.unwrap();
    }
    keys
}

/// RFC 6455 section 10.3: masking keys must be unpredictable, drawn from
/// a strong source of entropy, fresh for every frame. 10,000 keys from 100
/// connections of a real sockeye client: no more repeats than chance
/// allows (the birthday bound gives about 1% for one repeat among 10,000
/// 32-bit keys), no arithmetic pattern, and byte values spread evenly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_masking_keys_look_random() {
    if tokio_only(
        "client_masking_keys_look_random",
        "tests the client (against a hand-made server): it runs once",
    ) {
        return;
    }
    const CONNECTIONS: usize = 100;
    const FRAMES: usize = 100;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut keys = Vec::with_capacity(CONNECTIONS * FRAMES);
    within(Duration::from_secs(30), "10,000 frames", async {
        for _ in 0..CONNECTIONS {
            let collector = collect_keys(&listener, FRAMES);
            let client = async {
                let (mut ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
                for index in 0..FRAMES {
                    ws.send(Message::binary(vec![index as u8; 8]))
                        .await
                        .unwrap();
                }
                ws
            };
            let (connection_keys, ws) = tokio::join!(collector, client);
            drop(ws);
            keys.extend(connection_keys);
        }
    })
    .await;
    assert_eq!(keys.len(), CONNECTIONS * FRAMES);

    let mut seen: HashMap<[u8; 4], usize> = HashMap::new();
    for key in &keys {
        *seen.entry(*key).or_default() += 1;
    }
    let repeats = keys.len() - seen.len();
    assert!(
        repeats <= 2,
        "{repeats} repeated masking keys among {}",
        keys.len()
    );

    let uniform = keys
        .iter()
        .filter(|key| key.iter().all(|byte| *byte == key[0]))
        .count();
    assert!(uniform <= 1, "{uniform} keys of four equal bytes");
    let arithmetic = keys
        .windows(2)
        .filter(|pair| {
            let (a, b) = (u32::from_be_bytes(pair[0]), u32::from_be_bytes(pair[1]));
            let (c, d) = (u32::from_le_bytes(pair[0]), u32::from_le_bytes(pair[1]));
            b.wrapping_sub(a) <= 16 || a.wrapping_sub(b) <= 16 || d.wrapping_sub(c) <= 16
        })
        .count();
    assert!(
        arithmetic <= 2,
        "{arithmetic} consecutive keys differ by at most 16"
    );

    // Chi-square of the 40,000 key bytes over 256 values: 255 degrees of
    // freedom, mean 255 and standard deviation about 22.6; a good source
    // stays under 400 (more than 6 deviations) essentially always.
    let mut histogram = [0usize; 256];
    for byte in keys.iter().flatten() {
        histogram[usize::from(*byte)] += 1;
    }
    let expected = (keys.len() * 4) as f64 / 256.0;
    let chi_square: f64 = histogram
        .iter()
        .map(|&count| (count as f64 - expected).powi(2) / expected)
        .sum();
    assert!(
        chi_square < 400.0,
        "chi-square {chi_square:.1} over key bytes"
    );
    // Each of the four key positions is spread as well (no fixed byte).
    for position in 0..4 {
        let distinct: std::collections::HashSet<u8> =
            keys.iter().map(|key| key[position]).collect();
        assert!(
            distinct.len() > 240,
            "position {position}: {} values",
            distinct.len()
        );
    }
}
