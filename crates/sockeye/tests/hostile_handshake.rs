//! Hostile opening handshakes against a real sockeye server over loopback
//! (RFC 6455 section 4.2, issue 8): oversized and endless heads, requests
//! written a byte at a time, broken keys, extension offers RFC 7692 says to
//! decline, clients that never finish, and thousands of connections.
//!
//! The attacker writes raw bytes. Each test bounds its time (a hang is a
//! failure) and checks the exact status; memory is bounded when the server
//! answers 431 long before the attacker has finished sending. The server
//! is the tokio one or the event loop (`SOCKEYE_TEST_SERVER`, see
//! `common::front`).

mod common;

use std::time::Duration;

use common::hostile::*;
use sockeye::ServerBuilder;
use sockeye::proto::extension::deflate::DeflateConfig;
use sockeye::proto::handshake::parse_extension_list;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` to a fresh default server and returns the status
/// answered, checked against what `accept` returned.
async fn status_of(
    builder: ServerBuilder,
    request: impl FnOnce(std::net::SocketAddr) -> Vec<u8>,
) -> u16 {
    let mut server = TestServer::start(builder).await;
    let answer = exchange(server.addr, &request(server.addr)).await;
    if answer.status != 101 {
        let outcome = server.outcome().await;
        assert_eq!(outcome.status(), Some(answer.status), "{outcome:?}");
    }
    answer.status
}

// ----- size limits --------------------------------------------------------

#[tokio::test]
async fn ten_thousand_headers_before_upgrade_get_431() {
    let status = status_of(ServerBuilder::new(), |addr| {
        request_with(addr, |headers| {
            let mut many: Vec<(&'static str, String)> =
                (0..10_000).map(|i| ("X-Filler", i.to_string())).collect();
            many.append(headers);
            *headers = many;
        })
    })
    .await;
    assert_eq!(status, 431);
}

#[tokio::test]
async fn ten_thousand_headers_after_upgrade_get_431() {
    let status = status_of(ServerBuilder::new(), |addr| {
        request_with(addr, |headers| {
            headers.extend((0..10_000).map(|i| ("X-Filler", i.to_string())));
        })
    })
    .await;
    assert_eq!(status, 431);
}

/// With room for the bytes, the header count limit itself answers 431.
#[tokio::test]
async fn ten_thousand_tiny_headers_hit_the_count_limit() {
    let builder = ServerBuilder::new().max_head_size(1 << 20);
    let status = status_of(builder, |addr| {
        request_with(addr, |headers| {
            headers.extend((0..10_000).map(|_| ("a", "b".to_owned())));
        })
    })
    .await;
    assert_eq!(status, 431);
}

#[tokio::test]
async fn a_one_mebibyte_header_line_gets_431() {
    let status = status_of(ServerBuilder::new(), |addr| {
        request_with(addr, |headers| headers.push(("X-Big", "a".repeat(1 << 20))))
    })
    .await;
    assert_eq!(status, 431);
}

/// A gibibyte without a line break, streamed: the server answers 431 once
/// it has seen its 16 KiB limit, and the attacker cannot push more than the
/// kernel's socket buffers hold before it is cut off.
#[tokio::test]
async fn a_gibibyte_without_a_line_break_is_cut_off() {
    let mut server = TestServer::start(ServerBuilder::new()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, writer) = tcp.into_split();
    let chunk = vec![b'a'; 64 * 1024];
    let mut chunks = vec![b"GET /".to_vec()];
    chunks.extend(std::iter::repeat_n(chunk, (1 << 30) / (64 * 1024)));
    let sender = write_in_background(writer, chunks);

    let (answer, elapsed) =
        timed(within(HANG_GUARD, "a 431", read_response_head(&mut reader))).await;
    let answer = answer.expect("a response before the connection ended");
    assert_eq!(answer.status, 431);
    // The server closes; the attacker's writes fail soon after.
    let sent = within(HANG_GUARD, "the writer stopped", sender)
        .await
        .unwrap();
    assert!(
        sent < 64 << 20,
        "the server took {sent} bytes of an endless line before closing"
    );
    assert!(elapsed < Duration::from_secs(5), "431 after {elapsed:?}");
    assert_eq!(server.outcome().await.status(), Some(431));
}

/// `a`, 60 KiB of spaces, `b`: over the default head size it is 431; with
/// room for it, the token-list parser refuses it (a missing comma) in
/// linear time with 400.
#[tokio::test]
async fn a_protocol_list_with_60_kib_of_spaces_is_refused() {
    let value = format!("a{}b", " ".repeat(60 * 1024));
    let long = value.clone();
    let status = status_of(ServerBuilder::new(), move |addr| {
        request_with(addr, |headers| {
            headers.push(("Sec-WebSocket-Protocol", long))
        })
    })
    .await;
    assert_eq!(status, 431);

    let builder = ServerBuilder::new()
        .max_head_size(256 * 1024)
        .subprotocols(["a", "b"]);
    let (status, elapsed) = timed(status_of(builder, move |addr| {
        request_with(addr, |headers| {
            headers.push(("Sec-WebSocket-Protocol", value))
        })
    }))
    .await;
    assert_eq!(status, 400);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

/// 1 MiB of request in writes of 1 to 16 bytes: 431 once 16 KiB arrived.
#[tokio::test]
async fn a_mebibyte_in_tiny_writes_gets_431() {
    let mut server = TestServer::start(ServerBuilder::new()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut reader, writer) = tcp.into_split();
    let mut request = valid_request(server.addr);
    request.truncate(request.len() - 2);
    while request.len() < 1 << 20 {
        request.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let mut random = Lcg(8);
    let mut chunks = Vec::new();
    let mut rest = &request[..];
    while !rest.is_empty() {
        let size = (random.next() % 16 + 1) as usize;
        let (now, later) = rest.split_at(size.min(rest.len()));
        chunks.push(now.to_vec());
        rest = later;
    }
    let sender = write_in_background(writer, chunks);
    let answer = within(HANG_GUARD, "a 431", read_response_head(&mut reader))
        .await
        .expect("a response");
    assert_eq!(answer.status, 431);
    let sent = within(HANG_GUARD, "the writer stopped", sender)
        .await
        .unwrap();
    assert!(sent < request.len(), "the whole mebibyte was taken");
    assert_eq!(server.outcome().await.status(), Some(431));
}

/// A legitimate request written one byte per write is accepted, and the
/// connection then works.
#[tokio::test]
async fn a_small_request_one_byte_per_write_succeeds() {
    let builder = ServerBuilder::new().handshake_timeout(Duration::from_secs(5));
    let server = TestServer::start(builder).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let request = valid_request(server.addr);
    within(HANG_GUARD, "the request written", async {
        for byte in &request {
            tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
            tokio::task::yield_now().await;
        }
    })
    .await;
    let answer = within(HANG_GUARD, "a 101", read_response_head(&mut tcp))
        .await
        .expect("a response");
    assert_eq!(answer.status, 101);
    tcp.write_all(&client_frame(true, 1, b"still here"))
        .await
        .unwrap();
    let echo = within(HANG_GUARD, "the echo", read_frame(&mut tcp))
        .await
        .expect("a frame");
    assert_eq!((echo.opcode, &echo.payload[..]), (1, &b"still here"[..]));
}

// ----- keys and Upgrade ---------------------------------------------------

#[tokio::test]
async fn duplicate_empty_and_wrong_length_keys_get_400() {
    let cases: [(&str, Vec<&str>); 6] = [
        ("duplicate", vec![KEY, KEY]),
        (
            "duplicate, one valid",
            vec![KEY, "AQIDBAUGBwgJCgsMDQ4PEA=="],
        ),
        ("empty", vec![""]),
        ("15 bytes", vec!["AQIDBAUGBwgJCgsMDQ4P"]),
        ("17 bytes", vec!["AQIDBAUGBwgJCgsMDQ4PEBE="]),
        ("no padding", vec!["AQIDBAUGBwgJCgsMDQ4PEA"]),
    ];
    for (what, keys) in cases {
        let status = status_of(ServerBuilder::new(), |addr| {
            request_with(addr, |headers| {
                headers.retain(|(name, _)| *name != "Sec-WebSocket-Key");
                for key in keys {
                    headers.push(("Sec-WebSocket-Key", key.to_owned()));
                }
            })
        })
        .await;
        assert_eq!(status, 400, "{what}");
    }
    let missing = status_of(ServerBuilder::new(), |addr| {
        request_with(addr, |headers| {
            headers.retain(|(name, _)| *name != "Sec-WebSocket-Key")
        })
    })
    .await;
    assert_eq!(missing, 400, "missing");
}

/// `Upgrade` is a list of protocols the client can switch to (RFC 7230
/// section 6.7); one of them being `websocket` is what RFC 6455 section
/// 4.2.1 item 3 asks, and the answer names only `websocket`.
#[tokio::test]
async fn upgrade_listing_websocket_among_others_is_accepted() {
    let server = TestServer::start(ServerBuilder::new()).await;
    let request = request_with(server.addr, |headers| {
        headers.retain(|(name, _)| *name != "Upgrade");
        headers.push(("Upgrade", "websocket, foo".to_owned()));
    });
    let answer = exchange(server.addr, &request).await;
    assert_eq!(answer.status, 101);
    assert_eq!(answer.header("upgrade"), Some("websocket"));

    let foo_only = request_with(server.addr, |headers| {
        headers.retain(|(name, _)| *name != "Upgrade");
        headers.push(("Upgrade", "foo, websocket2".to_owned()));
    });
    assert_eq!(exchange(server.addr, &foo_only).await.status, 426);
}

// ----- extension offers ---------------------------------------------------

/// The two servers extension offers are tried against: the default one,
/// which negotiates permessage-deflate, and one with it turned off.
fn extension_servers() -> [(&'static str, ServerBuilder); 2] {
    [
        ("default", ServerBuilder::new()),
        (
            "deflate off",
            ServerBuilder::new().deflate(DeflateConfig::new().enabled(false)),
        ),
    ]
}

/// Sends one `Sec-WebSocket-Extensions` value (or several fields) and
/// returns the answer: RFC 7692 section 5 has a server decline an offer
/// it cannot accept, so a well-formed list is never refused; only a value
/// that breaks the grammar of RFC 6455 section 9.1 gets 400. Never 500,
/// never a hang.
async fn offer(builder: ServerBuilder, values: &[&str]) -> ResponseHead {
    let server = TestServer::start(builder).await;
    let request = request_with(server.addr, |headers| {
        for value in values {
            headers.push(("Sec-WebSocket-Extensions", (*value).to_owned()));
        }
    });
    let answer = exchange(server.addr, &request).await;
    assert!(
        answer.status == 101 || answer.status == 400,
        "{values:?}: {answer:?}"
    );
    answer
}

/// Offers that must be declined: the handshake succeeds without the
/// extension, whichever server.
#[tokio::test]
async fn invalid_extension_offers_are_declined() {
    let declined = [
        "x-unknown",
        "x-unknown; a=1, x-other",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=15.0",
        "permessage-deflate; client_max_window_bits=\"16\"",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; mystery",
    ];
    for value in declined {
        for (name, builder) in extension_servers() {
            let answer = offer(builder, &[value]).await;
            assert_eq!(answer.status, 101, "{name} server, {value:?}: {answer:?}");
            assert_eq!(
                answer.header("sec-websocket-extensions"),
                None,
                "{name} server accepted the invalid offer {value:?}"
            );
        }
    }
}

/// Valid offers, including duplicate offers (a fallback list) and quoted
/// values: the default server answers one of them, once; with deflate
/// off, none.
#[tokio::test]
async fn valid_extension_offers_get_one_answer() {
    // The server's default windows are 12 bits (DEFAULT_SERVER_WINDOW_BITS).
    let accepted = [
        (
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits=\"15\"",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; server_max_window_bits=\"10\"",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=8",
        ),
        (
            "x-unknown, permessage-deflate; mystery, permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
    ];
    for (value, answered) in accepted {
        let [(_, default), (_, off)] = extension_servers();
        let answer = offer(off, &[value]).await;
        assert_eq!(answer.status, 101, "{value:?}");
        assert_eq!(answer.header("sec-websocket-extensions"), None, "{value:?}");

        let answer = offer(default, &[value]).await;
        assert_eq!(answer.status, 101, "{value:?}");
        let header = answer
            .header("sec-websocket-extensions")
            .unwrap_or_else(|| panic!("{value:?} was declined"));
        let parsed = parse_extension_list(header.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 1, "{header}");
        assert_eq!(
            parsed,
            parse_extension_list(answered.as_bytes()).unwrap(),
            "{value:?}"
        );
    }
    // Repeated header fields are one list (RFC 6455 section 9.1).
    let [(_, default), _] = extension_servers();
    let answer = offer(default, &["x-unknown", "permessage-deflate"]).await;
    assert_eq!(
        answer.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_max_window_bits=12")
    );
}

/// Values that break the header grammar are refused with 400.
#[tokio::test]
async fn malformed_extension_headers_get_400() {
    for value in [
        "permessage-deflate;",
        "permessage-deflate; client_max_window_bits=\"1 5\"",
        "permessage-deflate; client_max_window_bits=\"15",
        ";permessage-deflate",
        "permessage-deflate; a=b=c",
    ] {
        for (name, builder) in extension_servers() {
            let answer = offer(builder, &[value]).await;
            assert_eq!(answer.status, 400, "{name} server, {value:?}");
        }
    }
}

/// 10,000 parameters: over the default head size that is 431; with room
/// for them, the extension parser stops at its bound of 32 parameters
/// (400) in bounded time.
#[tokio::test]
async fn ten_thousand_extension_parameters_are_refused() {
    let value = format!("permessage-deflate{}", "; a".repeat(10_000));
    let header = value.clone();
    let status = status_of(ServerBuilder::new(), move |addr| {
        request_with(addr, |headers| {
            headers.push(("Sec-WebSocket-Extensions", header))
        })
    })
    .await;
    assert_eq!(status, 431);

    for (name, builder) in extension_servers() {
        let builder = builder.max_head_size(256 * 1024);
        let (answer, elapsed) = timed(offer(builder, &[&value])).await;
        assert_eq!(answer.status, 400, "{name}");
        assert!(elapsed < Duration::from_secs(2), "{name}: {elapsed:?}");
    }
}

// ----- slow and abandoned handshakes ---------------------------------------

/// A client that sends one byte per second never completes its request:
/// the server drops it when the handshake timeout expires, without an
/// answer.
#[tokio::test]
async fn a_dribbling_client_is_dropped_at_the_handshake_timeout() {
    let timeout = Duration::from_millis(1500);
    let mut server = TestServer::start(ServerBuilder::new().handshake_timeout(timeout)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let request = valid_request(server.addr);
    let dribble = tokio::spawn(async move {
        for byte in request {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (read, elapsed) = timed(within(HANG_GUARD, "the server closing", async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    }))
    .await;
    dribble.abort();
    assert!(
        read.is_empty(),
        "the server answered {:?}",
        String::from_utf8_lossy(&read)
    );
    assert!(
        elapsed >= timeout - Duration::from_millis(100)
            && elapsed < timeout + Duration::from_secs(2),
        "dropped after {elapsed:?} with a {timeout:?} timeout"
    );
    assert!(matches!(
        server.outcome().await,
        Outcome::Refused(sockeye::Error::OpenTimeout)
    ));
}

/// How many connections the resource tests open: 2,000 (4,000 file
/// descriptors with the server's ends), fewer if `ulimit -n` is lower.
fn connection_count() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse::<usize>().ok())
        .unwrap_or(1024);
    let count = 2000.min(limit.saturating_sub(200) / 2);
    if count < 2000 {
        eprintln!("ulimit -n is {limit}: opening {count} connections instead of 2000");
    }
    count
}

/// 2,000 connections that send half a request and stall are all dropped
/// within the handshake timeout (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_all_dropped() {
    let count = connection_count();
    let timeout = Duration::from_secs(1);
    let mut server = TestServer::start(ServerBuilder::new().handshake_timeout(timeout)).await;
    let addr = server.addr;
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let mut tcp = within(HANG_GUARD, "connect", TcpStream::connect(addr))
            .await
            .unwrap();
        tcp.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        clients.push(tcp);
    }
    let opened = std::time::Instant::now();
    for (index, mut tcp) in clients.into_iter().enumerate() {
        let left = (timeout + Duration::from_secs(5)).saturating_sub(opened.elapsed());
        assert!(
            closed_within(&mut tcp, left).await,
            "connection {index} still open {:?} after the last one opened",
            opened.elapsed()
        );
    }
    for _ in 0..count {
        assert!(matches!(
            server.outcome().await,
            Outcome::Refused(sockeye::Error::OpenTimeout)
        ));
    }
}

/// 2,000 idle connections after their handshake do not stop the server
/// from serving a new client promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stays_responsive_with_thousands_of_idle_connections() {
    let count = connection_count();
    let server = TestServer::start(ServerBuilder::new()).await;
    let addr = server.addr;
    let mut idle = Vec::with_capacity(count);
    let mut batch = tokio::task::JoinSet::new();
    for index in 0..count {
        batch.spawn(open(addr));
        if batch.len() == 64 || index + 1 == count {
            while let Some(tcp) = batch.join_next().await {
                idle.push(tcp.unwrap());
            }
        }
    }
    assert_eq!(idle.len(), count);
    let (_, elapsed) = timed(within(HANG_GUARD, "a new client served", async {
        let mut tcp = open(addr).await;
        tcp.write_all(&client_frame(true, 2, b"ping?"))
            .await
            .unwrap();
        let echo = read_frame(&mut tcp).await.expect("an echo");
        assert_eq!(echo.payload, b"ping?");
    }))
    .await;
    assert!(elapsed < Duration::from_secs(2), "served after {elapsed:?}");
    // The idle ones are still open and still served.
    let last = idle.last_mut().unwrap();
    last.write_all(&client_frame(true, 2, b"still"))
        .await
        .unwrap();
    let echo = within(HANG_GUARD, "an echo", read_frame(last))
        .await
        .unwrap();
    assert_eq!(echo.payload, b"still");
}
