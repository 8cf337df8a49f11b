//! `ServerBuilder::stats`: the counters add up in scripted scenarios:
//! messages and WebSocket bytes each way (tokio, split halves, blocking),
//! how connections ended, and one refusal of each reason.
//!
//! Against the tokio server or the event loop (`SOCKEYE_TEST_SERVER`, see
//! `common::front`): under the event loop the same counts are checked
//! with the loop serving (the refusals over TCP); the blocking case is
//! the tokio run's.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::front::{Front, LoopServer, front, tokio_only};
use common::hostile::{head, read_response_head, within};
use http::{Request, Response, StatusCode};
use sockeye::{
    ClientBuilder, CloseCode, ConnectionInfo, DeflateConfig, Message, RefusalReason, ServerBuilder,
    ServerStats,
};
use tokio::net::TcpListener;

const GUARD: Duration = Duration::from_secs(10);

/// Messages each client sends (and gets back).
const N: u64 = 10;

/// Each message's payload: 20 bytes, so a frame header of 2 bytes, plus a
/// 4-byte mask from the client.
fn payload(index: u64) -> String {
    format!("message number {index:05}")
}

/// Waits until `done` holds for the server's stats (connections are
/// counted closed when the server's side is dropped, a moment after the
/// client saw the end).
async fn stats_when(server: &ServerBuilder, done: impl Fn(&ServerStats) -> bool) -> ServerStats {
    for _ in 0..500 {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stats never settled: {:?}", server.stats());
}

/// Serves two connections with `server`: the first echoes as one
/// WebSocket, the second through split halves in two tasks. Returns the
/// URL.
async fn serve_whole_then_split(server: ServerBuilder) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for split in [false, true] {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = server.accept_tcp(tcp).await.unwrap();
            if !split {
                tokio::spawn(async move {
                    while let Some(Ok(message)) = ws.recv().await {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                continue;
            }
            let (mut receiver, mut sender) = ws.split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    if sender.send(message).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(Ok(message)) = receiver.recv().await {
                    let _ = tx.send(message);
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn messages_and_bytes_add_up_over_tokio_and_split_halves() {
    tokio::time::timeout(GUARD, async {
        // No compression: the bytes on the wire are known exactly.
        let server = ServerBuilder::new().deflate(DeflateConfig::new().enabled(false));
        // Under the event loop, the loop echoes both connections (split
        // halves are the tokio front-end's).
        let (url, _serving) = match front() {
            Front::Tokio => (serve_whole_then_split(server.clone()).await, None),
            Front::EventLoop => {
                let running = LoopServer::start(server.clone(), None, |_| {});
                (running.url(), Some(running))
            }
        };
        for _ in 0..2 {
            let (mut client, _) = ClientBuilder::new(&url)
                .deflate(DeflateConfig::new().enabled(false))
                .connect()
                .await
                .unwrap();
            // A burst, then the echoes.
            for index in 0..N {
                client.send(Message::text(payload(index))).await.unwrap();
            }
            for index in 0..N {
                let echoed = client.recv().await.unwrap().unwrap();
                assert_eq!(echoed.as_text(), Some(payload(index).as_str()));
            }
            let closed = client.close(CloseCode::NORMAL, "").await.unwrap();
            assert!(closed.is_clean());
        }
        let stats = stats_when(&server, |stats| stats.open == 0 && stats.closed_clean == 2).await;
        assert_eq!(stats.accepted, 2);
        assert_eq!(stats.closed_abnormal, 0);
        assert_eq!(stats.refused_total(), 0);
        assert_eq!(stats.messages_in, 2 * N);
        assert_eq!(stats.messages_out, 2 * N);
        // Per connection: N masked frames of 6 + 20 bytes and a masked
        // Close with its code (6 + 2) in; N frames of 2 + 20 and the
        // Close reply (2 + 2) out.
        assert_eq!(stats.bytes_in, 2 * (N * 26 + 8));
        assert_eq!(stats.bytes_out, 2 * (N * 22 + 4));
    })
    .await
    .expect("within the guard");
}

#[test]
fn messages_and_bytes_add_up_over_the_blocking_front_end() {
    if tokio_only(
        "messages_and_bytes_add_up_over_the_blocking_front_end",
        "tests the blocking front-end",
    ) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = ServerBuilder::new().deflate(DeflateConfig::new().enabled(false));
    let accepting = server.clone();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let (mut ws, _) = sockeye::blocking::accept_with(&accepting, stream).unwrap();
        while let Some(Ok(message)) = ws.recv() {
            ws.send(message).unwrap();
        }
    });
    let (mut client, _) = sockeye::blocking::connect(&url).unwrap();
    for index in 0..N {
        client.send(Message::text(payload(index))).unwrap();
        assert!(client.recv().unwrap().is_ok());
    }
    assert!(client.close(CloseCode::NORMAL, "").unwrap().is_clean());
    thread.join().unwrap();
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open, stats.closed_clean), (1, 0, 1));
    assert_eq!((stats.messages_in, stats.messages_out), (N, N));
    // The blocking client offers no compression by default either way:
    // the server declined it.
    assert_eq!(stats.bytes_in, N * 26 + 8);
    assert_eq!(stats.bytes_out, N * 22 + 4);
}

/// A WebSocket request for `path` on `host`, from `peer`.
fn request(path: &str, host: &str, peer: [u8; 4]) -> Request<()> {
    let mut request = Request::get(path)
        .header("host", host)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let peer = SocketAddr::from((peer, 40000));
    request
        .extensions_mut()
        .insert(ConnectionInfo::new(Some(peer), None));
    request
}

/// Answers `request` on an in-memory stream: the status sent, and the
/// connection if it was admitted (with the client's end, kept open).
async fn answer(
    server: &ServerBuilder,
    request: Request<()>,
) -> (StatusCode, Option<impl Sized + use<>>) {
    let (client, stream) = tokio::io::duplex(1 << 16);
    match server.accept_request(stream, &request, &[]).await {
        Ok(ws) => (StatusCode::SWITCHING_PROTOCOLS, Some((ws, client))),
        Err(sockeye::Error::Handshake(refusal)) => (refusal.status().unwrap(), None),
        Err(other) => panic!("not a refusal: {other}"),
    }
}

/// The server `every_refusal_is_counted_by_its_reason` refuses with.
fn refusing_server() -> ServerBuilder {
    ServerBuilder::new()
        .max_connections(3)
        .max_connections_per_address(Some(2))
        .allowed_hosts(["good.example"])
        .allow_origins(["https://good.example"])
        .filter_request(|request| {
            (request.uri().path() == "/private").then(|| {
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .body(Bytes::from_static(b"who are you?"))
                    .unwrap()
            })
        })
}

#[tokio::test]
async fn every_refusal_is_counted_by_its_reason() {
    if front() == Front::EventLoop {
        return every_refusal_over_the_event_loop_is_counted_by_its_reason().await;
    }
    tokio::time::timeout(GUARD, async {
        let server = refusing_server();
        let (one, two, three) = ([192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]);
        let good = || request("/", "good.example", one);

        assert_eq!(
            answer(&server, request("/", "evil.example", one)).await.0,
            421
        );
        let mut from_evil = good();
        from_evil
            .headers_mut()
            .insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(answer(&server, from_evil).await.0, 403);
        assert_eq!(
            answer(&server, request("/private", "good.example", one))
                .await
                .0,
            401
        );
        let mut keyless = good();
        keyless.headers_mut().remove("sec-websocket-key");
        assert_eq!(answer(&server, keyless).await.0, 400);
        let mut old = good();
        old.headers_mut()
            .insert("sec-websocket-version", "8".parse().unwrap());
        assert_eq!(answer(&server, old).await.0, 426);
        // A head that does not parse, read by the builder itself.
        let (mut client, stream) = tokio::io::duplex(1 << 16);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"NOT HTTP AT ALL\r\n\r\n")
            .await
            .unwrap();
        assert!(server.accept(stream).await.is_err());

        // Two from one address, then that address is full.
        let (status, first) = answer(&server, good()).await;
        assert_eq!(status, 101);
        let (status, second) = answer(&server, good()).await;
        assert_eq!(status, 101);
        assert_eq!(answer(&server, good()).await.0, 503);
        // A third from another address fills the server.
        let (status, third) = answer(&server, request("/", "good.example", two)).await;
        assert_eq!(status, 101);
        assert_eq!(
            answer(&server, request("/", "good.example", three)).await.0,
            503
        );
        // A refusal the application makes itself.
        server.record_refusal(RefusalReason::Application);

        let stats = server.stats();
        assert_eq!((stats.accepted, stats.open), (3, 3));
        drop((first, second, third));
        server.drain_handle().start(sockeye::DrainConfig::new());
        assert_eq!(answer(&server, good()).await.0, 503);

        let stats = server.stats();
        assert_eq!(stats.refused(RefusalReason::HostNotAllowed), 1);
        assert_eq!(stats.refused(RefusalReason::OriginRefused), 1);
        assert_eq!(stats.refused(RefusalReason::Application), 2);
        assert_eq!(stats.refused(RefusalReason::BadRequest), 3);
        assert_eq!(stats.refused(RefusalReason::AddressLimit), 1);
        assert_eq!(stats.refused(RefusalReason::ConnectionLimit), 1);
        assert_eq!(stats.refused(RefusalReason::Draining), 1);
        assert_eq!(stats.refused_total(), 10);
        // Dropped without a closing handshake: abnormal ends.
        assert_eq!((stats.accepted, stats.open), (3, 0));
        assert_eq!((stats.closed_clean, stats.closed_abnormal), (0, 3));
        assert_eq!((stats.messages_in, stats.bytes_in), (0, 0));
    })
    .await
    .expect("within the guard");
}

/// Sends `request` (whole, raw) from local address `from` to `addr` and
/// returns the status answered, with the connection if it was admitted
/// (kept open by the caller).
async fn answer_over_tcp(
    addr: SocketAddr,
    from: [u8; 4],
    request: &[u8],
) -> (u16, Option<tokio::net::TcpStream>) {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let answer = within(GUARD, "an answer", read_response_head(&mut tcp))
        .await
        .expect("an answer before the end of the connection");
    let admitted = (answer.status == 101).then_some(tcp);
    (answer.status, admitted)
}

/// A WebSocket request head for `path` on `host`, with `extra` header
/// fields and without the ones named in `without`.
fn request_bytes(path: &str, host: &str, extra: &[(&str, &str)], without: &[&str]) -> Vec<u8> {
    let mut headers = vec![
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    headers.retain(|(name, _)| !without.contains(name));
    for (name, value) in extra {
        headers.retain(|(existing, _)| existing != name);
        headers.push((name, value));
    }
    head(path, &headers)
}

/// `every_refusal_is_counted_by_its_reason` against the event loop: the
/// same refusals, over TCP (loopback addresses 127.0.0.1 to 127.0.0.3 as
/// the three clients), and the same counts.
async fn every_refusal_over_the_event_loop_is_counted_by_its_reason() {
    tokio::time::timeout(GUARD, async {
        let server = refusing_server();
        let running = LoopServer::start(server.clone(), None, |_| {});
        let addr = running.addr;
        let (one, two, three) = ([127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]);
        let good = || request_bytes("/", "good.example", &[], &[]);

        let evil_host = request_bytes("/", "evil.example", &[], &[]);
        assert_eq!(answer_over_tcp(addr, one, &evil_host).await.0, 421);
        let from_evil = request_bytes(
            "/",
            "good.example",
            &[("Origin", "https://evil.example")],
            &[],
        );
        assert_eq!(answer_over_tcp(addr, one, &from_evil).await.0, 403);
        let private = request_bytes("/private", "good.example", &[], &[]);
        assert_eq!(answer_over_tcp(addr, one, &private).await.0, 401);
        let keyless = request_bytes("/", "good.example", &[], &["Sec-WebSocket-Key"]);
        assert_eq!(answer_over_tcp(addr, one, &keyless).await.0, 400);
        let old = request_bytes("/", "good.example", &[("Sec-WebSocket-Version", "8")], &[]);
        assert_eq!(answer_over_tcp(addr, one, &old).await.0, 426);
        // A head that does not parse (refused, whatever the status).
        let (status, admitted) = answer_over_tcp(addr, one, b"NOT HTTP AT ALL\r\n\r\n").await;
        assert!(status >= 400 && admitted.is_none(), "{status}");

        // Two from one address, then that address is full.
        let (status, first) = answer_over_tcp(addr, one, &good()).await;
        assert_eq!(status, 101);
        let (status, second) = answer_over_tcp(addr, one, &good()).await;
        assert_eq!(status, 101);
        assert_eq!(answer_over_tcp(addr, one, &good()).await.0, 503);
        // A third from another address fills the server.
        let (status, third) = answer_over_tcp(addr, two, &good()).await;
        assert_eq!(status, 101);
        assert_eq!(answer_over_tcp(addr, three, &good()).await.0, 503);
        // A refusal the application makes itself.
        server.record_refusal(RefusalReason::Application);

        let stats = server.stats();
        assert_eq!((stats.accepted, stats.open), (3, 3));
        drop((first, second, third));
        // The loop sees the three ends when it reads them.
        stats_when(&server, |stats| stats.open == 0).await;
        server.drain_handle().start(sockeye::DrainConfig::new());
        assert_eq!(answer_over_tcp(addr, one, &good()).await.0, 503);

        let stats = server.stats();
        assert_eq!(stats.refused(RefusalReason::HostNotAllowed), 1);
        assert_eq!(stats.refused(RefusalReason::OriginRefused), 1);
        assert_eq!(stats.refused(RefusalReason::Application), 2);
        assert_eq!(stats.refused(RefusalReason::BadRequest), 3);
        assert_eq!(stats.refused(RefusalReason::AddressLimit), 1);
        assert_eq!(stats.refused(RefusalReason::ConnectionLimit), 1);
        assert_eq!(stats.refused(RefusalReason::Draining), 1);
        assert_eq!(stats.refused_total(), 10);
        // Dropped without a closing handshake: abnormal ends.
        assert_eq!((stats.accepted, stats.open), (3, 0));
        assert_eq!((stats.closed_clean, stats.closed_abnormal), (0, 3));
        assert_eq!((stats.messages_in, stats.bytes_in), (0, 0));
    })
    .await
    .expect("within the guard");
}
