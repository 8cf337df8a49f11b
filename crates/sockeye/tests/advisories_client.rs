//! The 2026 advisories of other WebSocket implementations against
//! clients, replayed against sockeye's over loopback (issue 14 item 8):
//! each test has a hostile raw server send what the advisory's attacker
//! sent to the real client (`ClientBuilder`), or gives the client the
//! options the attacker chose, and checks the exact outcome: error
//! variant, handshake error kind, the Close the client sends. undici
//! (three advisories) and websocket-driver; the advisories against
//! servers are in `advisories_server.rs`.
//!
//! No test depends on how long anything takes; every wait is bounded by
//! the hang guard.

mod common;

use std::net::SocketAddr;

use common::advisories::*;
use common::hostile::*;
use sockeye::proto::handshake::{HandshakeErrorKind, accept_key};
use sockeye::proto::{Config, ProtocolError};
use sockeye::{ClientBuilder, Error, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// ----- a hostile server for the client --------------------------------------

/// A raw TCP server for one connection: it reads the client's request,
/// answers with a correct `101` (its `Sec-WebSocket-Accept` derived from
/// the client's key) plus the `extra` header lines (each ending in CRLF),
/// writes `then` right after it, and hands the connection to the test.
async fn hostile_server(extra: String, then: Vec<u8>) -> (SocketAddr, JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let key = read_request_key(&mut tcp).await;
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            accept_key(key.as_bytes())
        )
        .into_bytes();
        answer.extend_from_slice(&then);
        tcp.write_all(&answer).await.unwrap();
        tcp
    });
    (addr, task)
}

/// Reads a request head byte by byte (what follows stays in the stream)
/// and returns its `Sec-WebSocket-Key`.
async fn read_request_key(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.expect("a request head");
        head.push(byte[0]);
        assert!(head.len() < 64 * 1024, "a request head over 64 KiB");
    }
    String::from_utf8(head)
        .unwrap()
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("the client sent a key")
}

/// The hostile server's connection, within the hang guard.
async fn server_side(task: JoinHandle<TcpStream>) -> TcpStream {
    within(HANG_GUARD, "the hostile server", task)
        .await
        .expect("the hostile server did not panic")
}

/// Reads the client's frames (masked, as section 5.3 requires) until its
/// Close, and returns the Close's code; `None` if the connection ended
/// without one.
async fn client_close_code(tcp: &mut TcpStream) -> Option<u16> {
    within(HANG_GUARD, "the client's Close", async {
        loop {
            let mut head = [0u8; 2];
            tcp.read_exact(&mut head).await.ok()?;
            assert_eq!(head[1] & 0x80, 0x80, "a client frame must be masked");
            let len = match head[1] & 0x7f {
                126 => {
                    let mut len = [0u8; 2];
                    tcp.read_exact(&mut len).await.ok()?;
                    u64::from(u16::from_be_bytes(len))
                }
                127 => {
                    let mut len = [0u8; 8];
                    tcp.read_exact(&mut len).await.ok()?;
                    u64::from_be_bytes(len)
                }
                len => u64::from(len),
            };
            assert!(len <= 1 << 20, "a client frame of {len} bytes");
            let mut key = [0u8; 4];
            tcp.read_exact(&mut key).await.ok()?;
            let mut payload = vec![0u8; len as usize];
            tcp.read_exact(&mut payload).await.ok()?;
            for (index, byte) in payload.iter_mut().enumerate() {
                *byte ^= key[index % 4];
            }
            if head[0] & 0x0f == 8 {
                assert!(payload.len() >= 2, "a Close without a code");
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    })
    .await
}

/// Whether the peer sends nothing more and ends the connection (EOF or
/// reset) within the hang guard.
async fn ends_without_a_byte(tcp: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match within(HANG_GUARD, "the end", tcp.read_to_end(&mut rest)).await {
        Ok(_) => rest.is_empty(),
        Err(_) => true,
    }
}

// ----- undici CVE-2026-1528: an overflowing 64-bit length -----------------

/// undici CVE-2026-1528 (2026): a server frame whose 64-bit length
/// overflowed the client's arithmetic (most significant bit set, or near
/// `u64::MAX` / `usize::MAX`) crashed it or made it allocate the length.
/// sockeye's client fails on the header alone (the hostile server sends no
/// payload and keeps the connection open): 1002, `InvalidLength`, for a
/// length with the most significant bit set (RFC 6455 section 5.2); 1009,
/// `FrameTooLarge` or `MessageTooLarge`, for the others; and sends its
/// Close with that code. Sums over fragments saturate, even with no frame
/// size limit.
#[tokio::test]
async fn undici_cve_2026_1528_overflowing_lengths_fail_the_client_on_the_header() {
    let max_frame = Config::default().get_max_frame_size();
    let no_frame_limit = Config::new().max_frame_size(usize::MAX);
    // A first fragment of 10 bytes (binary, FIN=0), unmasked.
    let first = || [&[0x02, 10][..], b"0123456789"].concat();
    // On a 64-bit target usize::MAX has the top bit set.
    let usize_max_error = if usize::MAX as u64 >> 63 == 1 {
        ProtocolError::InvalidLength
    } else {
        ProtocolError::FrameTooLarge {
            size: usize::MAX as u64,
            max: max_frame,
        }
    };
    let cases: Vec<(&str, Config, Vec<u8>, ProtocolError)> = vec![
        (
            "1 << 63",
            Config::default(),
            frame_header(true, 2, 1 << 63, false),
            ProtocolError::InvalidLength,
        ),
        (
            "u64::MAX",
            Config::default(),
            frame_header(true, 2, u64::MAX, false),
            ProtocolError::InvalidLength,
        ),
        (
            "usize::MAX",
            Config::default(),
            frame_header(true, 1, usize::MAX as u64, false),
            usize_max_error,
        ),
        (
            "u64::MAX - 1, in a continuation",
            no_frame_limit.clone(),
            [first(), frame_header(true, 0, u64::MAX - 1, false)].concat(),
            ProtocolError::InvalidLength,
        ),
        (
            "(1 << 63) - 1",
            Config::default(),
            frame_header(true, 2, (1 << 63) - 1, false),
            ProtocolError::FrameTooLarge {
                size: (1 << 63) - 1,
                max: max_frame,
            },
        ),
        (
            "1 << 32",
            Config::default(),
            frame_header(true, 2, 1 << 32, false),
            ProtocolError::FrameTooLarge {
                size: 1 << 32,
                max: max_frame,
            },
        ),
        (
            "(1 << 63) - 1 with no frame limit",
            no_frame_limit.clone(),
            frame_header(true, 2, (1 << 63) - 1, false),
            ProtocolError::MessageTooLarge { max: 64 << 20 },
        ),
        (
            "(1 << 63) - 11, in a continuation, with no frame limit",
            no_frame_limit,
            [first(), frame_header(true, 0, (1 << 63) - 11, false)].concat(),
            ProtocolError::MessageTooLarge { max: 64 << 20 },
        ),
    ];
    for (what, config, frames, expected) in cases {
        let (addr, task) = hostile_server(String::new(), frames).await;
        let mut ws = connect(client(addr).config(config))
            .await
            .expect("the handshake is valid");
        let received = within(HANG_GUARD, "the client's failure", ws.recv()).await;
        match received {
            Some(Err(Error::Protocol(error))) => assert_eq!(error, expected, "{what}"),
            other => panic!("{what}: expected {expected:?}, got {other:?}"),
        }
        let mut tcp = server_side(task).await;
        assert_eq!(
            client_close_code(&mut tcp).await,
            Some(expected.close_code().as_u16()),
            "{what}"
        );
    }
}

// ----- undici CVE-2026-2229: server_max_window_bits out of range -----------

/// undici CVE-2026-2229 (2026): a `server_max_window_bits` outside 8..=15
/// in the 101's `Sec-WebSocket-Extensions` was passed on to zlib, which
/// crashed or misbehaved. sockeye's client fails the handshake with
/// `InvalidExtension` for `permessage-deflate` (a value outside 8..=15, or
/// not `1*DIGIT` without leading zeros, RFC 7692 section 7.1.2.1; no
/// value; the parameter twice), or `InvalidHeader` for
/// `Sec-WebSocket-Extensions` when the value breaks the header grammar
/// (an empty value). `connect` fails, and the client sends nothing after
/// its request: no frame, no Close, just the end of the connection. The
/// bounds themselves, 8 and 15, are accepted, and a compressed message
/// then inflates.
#[tokio::test]
async fn undici_cve_2026_2229_window_bits_outside_8_to_15_fail_the_client_handshake() {
    let invalid_extension = [
        "=0",
        "=7",
        "=16",
        "=255",
        "=256",
        "=99999999999999999999",
        "=-1",
        "=+9",
        "=08",
        "=010",
        "=0x9",
        "=15.0",
        "=1e1",
        "=abc",
        "=\"16\"",
        "",
        "=10; server_max_window_bits=10",
        "=10; SERVER_MAX_WINDOW_BITS=9",
    ];
    let malformed_header = ["=", "=\"\"", "= 1 0", "=\"1 0\""];
    let cases = invalid_extension
        .iter()
        .map(|value| (*value, true))
        .chain(malformed_header.iter().map(|value| (*value, false)));
    for (value, parsed) in cases {
        let header = format!(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits{value}\r\n"
        );
        let (addr, task) = hostile_server(header, Vec::new()).await;
        let result = connect(client(addr)).await;
        let error = match result {
            Err(Error::Handshake(error)) => error,
            Err(other) => panic!("{value:?}: expected a handshake error, got {other:?}"),
            Ok(_) => panic!("{value:?}: the client opened the connection"),
        };
        if parsed {
            assert!(
                matches!(
                    error.kind(),
                    HandshakeErrorKind::InvalidExtension { name, reason }
                        if name == "permessage-deflate" && reason.contains("server_max_window_bits")
                ),
                "{value:?}: {:?}",
                error.kind()
            );
        } else {
            assert!(
                matches!(error.kind(), HandshakeErrorKind::InvalidHeader { name, .. } if name == "sec-websocket-extensions"),
                "{value:?}: {:?}",
                error.kind()
            );
        }
        assert_eq!(error.status(), None, "{value:?}");
        let mut tcp = server_side(task).await;
        assert!(
            ends_without_a_byte(&mut tcp).await,
            "{value:?}: the client sent bytes after its request"
        );
    }

    // The whole extension twice, the second time with 16: the same
    // extension accepted twice is refused before its parameters are read.
    let header = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n\
                  Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n";
    let (addr, task) = hostile_server(header.to_owned(), Vec::new()).await;
    match connect(client(addr)).await {
        Err(Error::Handshake(error)) => assert_eq!(
            error.kind(),
            &HandshakeErrorKind::UnofferedExtension("permessage-deflate".into())
        ),
        other => panic!("expected a handshake error, got {:?}", other.map(|_| ())),
    }
    assert!(ends_without_a_byte(&mut server_side(task).await).await);

    for bits in [8, 15] {
        let hello = deflated(b"hello");
        let mut frame = vec![0xc1, hello.len() as u8];
        frame.extend_from_slice(&hello);
        let header = format!(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits={bits}\r\n"
        );
        let (addr, task) = hostile_server(header, frame).await;
        let mut ws = connect(client(addr))
            .await
            .unwrap_or_else(|error| panic!("{bits} bits: {error:?}"));
        let message = within(HANG_GUARD, "the compressed message", ws.recv()).await;
        assert_eq!(message.unwrap().unwrap(), Message::text("hello"), "{bits}");
        server_side(task).await;
    }
}

/// `data` as a permessage-deflate payload: raw DEFLATE, sync-flushed, the
/// final `00 00 ff ff` removed (RFC 7692 section 7.2.1).
fn deflated(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.flush().unwrap();
    let mut out = encoder.get_ref().clone();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

// ----- undici CVE-2026-1527: CR, LF or NUL in the application's options ------

/// undici CVE-2026-1527 (2026): header values, names, subprotocols or an
/// Origin given by the application were written into the request as they
/// were, so a CR LF in one injected headers (or a whole request). sockeye
/// refuses each with `Error::Handshake` of kind `InvalidOption` (and a URL
/// holding them with `Error::InvalidUrl`) before it opens any connection:
/// after all the refusals, the first connection the listener accepts is
/// the valid client that follows them.
#[tokio::test]
async fn undici_cve_2026_1527_cr_lf_or_nul_in_client_options_are_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    type SetOption = fn(ClientBuilder) -> ClientBuilder;
    let invalid_header: &[(&str, SetOption)] = &[
        ("value with CR LF", |b| {
            b.header("x-trace", "1\r\nX-Injected: 1")
        }),
        ("value with LF", |b| b.header("x-trace", "1\nX-Injected: 1")),
        ("value with CR", |b| b.header("x-trace", "1\rX-Injected: 1")),
        ("value with NUL", |b| b.header("x-trace", "1\0")),
        ("value ending in CR LF CR LF", |b| {
            b.header("cookie", "a=b\r\n\r\nGET /smuggled HTTP/1.1")
        }),
        ("Host value with CR LF", |b| {
            b.header("host", "example.com\r\nX-Injected: 1")
        }),
        ("name with CR LF", |b| b.header("x-a\r\nx-injected", "1")),
        ("name with LF", |b| b.header("x-a\nx-b", "1")),
        ("name with NUL", |b| b.header("x-a\0", "1")),
        ("name with a colon", |b| b.header("x-a: 1\r\nx-b", "1")),
        ("value with CR LF, as bytes", |b| {
            b.header("x-trace", &b"1\r\nX-Injected: 1"[..])
        }),
    ];
    let invalid_origin: &[(&str, SetOption)] = &[
        ("Origin with CR LF", |b| {
            b.origin("https://app.example\r\nX-Injected: 1")
        }),
        ("Origin with LF", |b| b.origin("https://app.example\n")),
        ("Origin with NUL", |b| b.origin("https://app\0.example")),
    ];
    let invalid_subprotocol: &[(&str, SetOption)] = &[
        ("subprotocol with CR LF", |b| {
            b.subprotocols(["chat\r\nX-Injected: 1"])
        }),
        ("second subprotocol with LF", |b| {
            b.subprotocols(["chat", "v2\nX-Injected: 1"])
        }),
        ("subprotocol with NUL", |b| b.subprotocols(["chat\0"])),
    ];
    let invalid_extension: &[(&str, SetOption)] = &[("extension offer with CR LF", |b| {
        b.extensions_header("permessage-deflate\r\nX-Injected: 1")
    })];
    let cases = [
        (invalid_header, "invalid header name or value"),
        (invalid_origin, "invalid origin"),
        (invalid_subprotocol, "subprotocols must be tokens"),
        (invalid_extension, "malformed extension offer"),
    ];
    for (options, reason) in cases {
        for (what, option) in options {
            let result = connect(option(client(addr))).await;
            match result {
                Err(Error::Handshake(error)) => assert_eq!(
                    error.kind(),
                    &HandshakeErrorKind::InvalidOption(reason),
                    "{what}"
                ),
                Err(other) => panic!("{what}: expected a handshake error, got {other:?}"),
                Ok(_) => panic!("{what}: the client connected"),
            }
        }
    }
    for url in [
        format!("ws://{addr}/chat\r\nX-Injected: 1"),
        format!("ws://{addr}/chat\nX-Injected: 1"),
        format!("ws://{addr}/chat\0"),
        format!("ws://{addr}/chat HTTP/1.1\r\nX-Injected: 1\r\n"),
    ] {
        let result = connect(ClientBuilder::new(&url).no_proxy()).await;
        assert!(
            matches!(result, Err(Error::InvalidUrl(_))),
            "{url:?}: {:?}",
            result.map(|_| ())
        );
    }

    // Nothing reached the listener: the first connection in its queue is
    // this valid client's, and its request is clean.
    let probe = tokio::spawn(connect(client(addr).header("x-probe", "valid")));
    let (mut tcp, _) = within(HANG_GUARD, "a connection", listener.accept())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        within(HANG_GUARD, "the probe's request", tcp.read_exact(&mut byte))
            .await
            .expect("a request head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.lines()
            .any(|line| line.eq_ignore_ascii_case("x-probe: valid")),
        "the first connection was not the valid client's: {head:?}"
    );
    assert!(!head.to_ascii_lowercase().contains("injected"), "{head:?}");
    probe.abort();
}

// ----- websocket-driver CVE-2026-54466: over-long length fields ------------

/// websocket-driver CVE-2026-54466 (2026) against the client: a hostile
/// server's frames with over-long length fields are read exactly (the
/// payload that is itself a frame arrives whole, the next frame is the
/// next message), and a length past the client's `max_frame_size` fails
/// it at the header with `FrameTooLarge` and a Close of 1009, no message
/// delivered from the bytes that follow.
#[tokio::test]
async fn websocket_driver_cve_2026_54466_over_long_lengths_do_not_desync_the_client() {
    // Unmasked, as a server sends it.
    let smuggled = frame_with_length(1, 8, Length::Short, false, b"INJECTED");
    for (what, encoding) in [("16-bit", Length::Bits16), ("64-bit", Length::Bits64)] {
        let mut frames = frame_with_length(2, smuggled.len() as u64, encoding, false, &smuggled);
        frames.extend(frame_with_length(1, 5, Length::Short, false, b"after"));
        let (addr, task) = hostile_server(String::new(), frames).await;
        let mut ws = connect(client(addr)).await.expect("the handshake is valid");
        let first = within(HANG_GUARD, "the first message", ws.recv()).await;
        assert_eq!(
            first.unwrap().unwrap(),
            Message::binary(smuggled.clone()),
            "{what}"
        );
        let second = within(HANG_GUARD, "the second message", ws.recv()).await;
        assert_eq!(second.unwrap().unwrap(), Message::text("after"), "{what}");
        server_side(task).await;
    }

    for (what, encoding) in [("16-bit", Length::Bits16), ("64-bit", Length::Bits64)] {
        let mut frames = frame_with_length(2, 1025, encoding, false, &[]);
        for _ in 0..8 {
            frames.extend_from_slice(&smuggled);
        }
        let (addr, task) = hostile_server(String::new(), frames).await;
        let config = Config::new().max_frame_size(1024);
        let mut ws = connect(client(addr).config(config))
            .await
            .expect("the handshake is valid");
        let received = within(HANG_GUARD, "the client's failure", ws.recv()).await;
        match received {
            Some(Err(Error::Protocol(error))) => assert_eq!(
                error,
                ProtocolError::FrameTooLarge {
                    size: 1025,
                    max: 1024
                },
                "{what}"
            ),
            other => panic!("{what}: expected FrameTooLarge, got {other:?}"),
        }
        assert!(
            within(HANG_GUARD, "the end", ws.recv()).await.is_none(),
            "{what}: a message after the failure"
        );
        let mut tcp = server_side(task).await;
        assert_eq!(client_close_code(&mut tcp).await, Some(1009), "{what}");
    }
}
