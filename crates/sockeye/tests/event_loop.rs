//! The event-loop server (`sockeye::event_loop`) against sockeye's tokio
//! client over loopback: echo, topics across loops, sends from other
//! threads, the server policy's refusals, plain HTTP answers, the drain.
#![cfg(feature = "event-loop")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use sockeye::event_loop::{ConnId, EventLoop, Handler, LoopContext, Opening, Running, Socket};
use sockeye::{ClientBuilder, CloseCode, Closed, DrainConfig, Error, Message, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

/// What the test handler saw, shared with the test.
#[derive(Default)]
struct Seen {
    opened: Vec<ConnId>,
    closed: Vec<(ConnId, Option<u16>, bool)>,
    refused: Vec<Option<u16>>,
}

/// Echo on `/`, a chat room on `/room` (subscribed to "room"; each message
/// published to the others), subscribed to topics "a" and "b" on `/both`,
/// plain HTTP on `/hello`.
struct App {
    seen: Arc<Mutex<Seen>>,
}

impl Handler for App {
    type Data = bool;

    fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> bool {
        self.seen.lock().unwrap().opened.push(socket.id());
        let path = opening.request().uri().path();
        let room = path == "/room";
        if room {
            socket.subscribe("room");
        }
        if path == "/both" {
            socket.subscribe("a");
            socket.subscribe("b");
        }
        room
    }

    fn message(&mut self, socket: &mut Socket<'_>, room: &mut bool, message: Message) {
        if *room {
            socket.publish("room", message);
        } else {
            let _ = socket.send(message);
        }
    }

    fn close(&mut self, id: ConnId, _room: bool, closed: &Closed) {
        let code = closed.received.as_ref().map(|frame| u16::from(frame.code));
        self.seen
            .lock()
            .unwrap()
            .closed
            .push((id, code, closed.is_clean()));
    }

    fn refused(&mut self, _remote: SocketAddr, error: &Error) {
        let status = match error {
            Error::Handshake(refusal) => refusal.status().map(|status| status.as_u16()),
            _ => None,
        };
        self.seen.lock().unwrap().refused.push(status);
    }

    fn http(&mut self, request: &Request<()>, _remote: SocketAddr) -> Option<Response<Bytes>> {
        (request.uri().path() == "/hello").then(|| {
            Response::builder()
                .status(StatusCode::OK)
                .body(Bytes::from_static(b"hello from the loop"))
                .unwrap()
        })
    }
}

fn start(builder: ServerBuilder, threads: usize) -> (Running, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    let running = EventLoop::new(builder)
        .threads(threads)
        .bind("127.0.0.1:0".parse().unwrap(), move |_: LoopContext| App {
            seen: shared.clone(),
        })
        .unwrap();
    (running, seen)
}

/// Connects `count` clients to `url` and waits until the loops opened
/// (and so subscribed) every one of them, so that no publish is missed.
async fn open_members(
    url: &str,
    count: usize,
    seen: &Mutex<Seen>,
) -> Vec<sockeye::WebSocket<sockeye::ClientStream>> {
    let mut members = Vec::new();
    for _ in 0..count {
        let (ws, _) = ClientBuilder::new(url).connect().await.unwrap();
        members.push(ws);
    }
    let deadline = tokio::time::Instant::now() + GUARD;
    while seen.lock().unwrap().opened.len() < count {
        assert!(tokio::time::Instant::now() < deadline, "not all opened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    members
}

fn stop(running: Running) {
    running.handle().stop();
    running.join().unwrap();
}

#[tokio::test]
async fn echoes_many_messages_and_closes_cleanly() {
    let (running, seen) = start(ServerBuilder::new(), 1);
    let url = format!("ws://{}/", running.local_addr());
    let (mut ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
    for i in 0..1000u32 {
        ws.send(Message::text(format!("message {i}")))
            .await
            .unwrap();
    }
    ws.send(Message::binary(vec![7u8; 300_000])).await.unwrap();
    for i in 0..1000u32 {
        let message = timeout(GUARD, ws.recv()).await.unwrap().unwrap().unwrap();
        assert_eq!(message, Message::text(format!("message {i}")));
    }
    let big = timeout(GUARD, ws.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(big.len(), 300_000);
    let closed = ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert!(closed.is_clean());
    // The server's side ends too, cleanly, and says so.
    let deadline = tokio::time::Instant::now() + GUARD;
    while seen.lock().unwrap().closed.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no close callback");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.lock().unwrap().closed[0].1, Some(1000));
    assert!(seen.lock().unwrap().closed[0].2);
    stop(running);
}

#[tokio::test]
async fn publishes_reach_subscribers_on_every_loop() {
    let (running, seen) = start(ServerBuilder::new(), 2);
    let url = format!("ws://{}/room", running.local_addr());
    let mut members = open_members(&url, 8, &seen).await;
    let loops: std::collections::HashSet<usize> = seen
        .lock()
        .unwrap()
        .opened
        .iter()
        .map(|id| id.loop_index())
        .collect();
    members[0].send(Message::text("hello room")).await.unwrap();
    for member in &mut members[1..] {
        let message = timeout(GUARD, member.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(message, Message::text("hello room"));
    }
    // From outside the loops: to everyone, and to one connection.
    running
        .handle()
        .publish("room", Message::text("announcement"));
    for member in &mut members {
        let message = timeout(GUARD, member.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(message, Message::text("announcement"));
    }
    let first = seen.lock().unwrap().opened[3];
    assert!(running.handle().send(first, Message::text("just you")));
    let message = timeout(GUARD, members[3].recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::text("just you"));
    eprintln!("members spread over loops {loops:?}");
    stop(running);
}

#[tokio::test]
async fn publishes_to_several_topics_arrive_in_publish_order() {
    // Publishes a loop takes in one iteration are written to each
    // subscriber in runs by topic: a subscriber of both topics still gets
    // them in the order they were published.
    let (running, seen) = start(ServerBuilder::new(), 2);
    let url = format!("ws://{}/both", running.local_addr());
    let mut members = open_members(&url, 4, &seen).await;
    let handle = running.handle();
    let topics = ["a", "a", "b", "a", "b", "b", "b", "a"];
    let count = 400;
    for i in 0..count {
        let topic = topics[i % topics.len()];
        handle.publish(topic, Message::text(format!("{topic} {i}")));
    }
    for member in &mut members {
        for i in 0..count {
            let message = timeout(GUARD, member.recv())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let topic = topics[i % topics.len()];
            assert_eq!(message, Message::text(format!("{topic} {i}")));
        }
    }
    stop(running);
}

#[tokio::test]
async fn refusals_and_plain_http_are_answered() {
    let builder = ServerBuilder::new().allow_origins(["https://good.example"]);
    let (running, seen) = start(builder, 1);
    let url = format!("ws://{}/", running.local_addr());
    let refused = ClientBuilder::new(&url)
        .header(
            http::header::ORIGIN,
            http::HeaderValue::from_static("https://evil.example"),
        )
        .connect()
        .await;
    match refused {
        Err(Error::Handshake(error)) => assert_eq!(error.status(), Some(StatusCode::FORBIDDEN)),
        other => panic!("expected 403, got {other:?}"),
    }
    // A plain request the handler answers; one it does not gets 426.
    let mut tcp = tokio::net::TcpStream::connect(running.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    timeout(GUARD, tcp.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello from the loop"), "{answer}");
    let mut tcp = tokio::net::TcpStream::connect(running.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    timeout(GUARD, tcp.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    let refused = seen.lock().unwrap().refused.clone();
    assert_eq!(refused, vec![Some(403), Some(426)]);
    stop(running);
}

#[tokio::test]
async fn a_drain_closes_every_connection_with_its_code() {
    let builder = ServerBuilder::new();
    let drain = builder.drain_handle();
    let (running, _seen) = start(builder, 2);
    let url = format!("ws://{}/", running.local_addr());
    let mut clients = Vec::new();
    for _ in 0..10 {
        let (ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
        clients.push(ws);
    }
    // Echo once, so every connection is open on the server.
    for ws in &mut clients {
        ws.send(Message::text("ping")).await.unwrap();
        timeout(GUARD, ws.recv()).await.unwrap().unwrap().unwrap();
    }
    assert!(drain.start(DrainConfig::new().window(Duration::from_millis(100))));
    for mut ws in clients {
        let end = timeout(GUARD, ws.next()).await.unwrap();
        assert!(end.is_none(), "expected the end, got {end:?}");
        let closed = ws.closed().expect("closed").clone();
        assert_eq!(closed.code(), CloseCode::GOING_AWAY);
        assert!(closed.is_clean());
    }
    let report = timeout(GUARD, drain.wait()).await.unwrap();
    assert_eq!(report.connections, 10);
    assert_eq!(report.clean, 10);
    // New connections are refused with 503 while draining.
    match ClientBuilder::new(&url).connect().await {
        Err(Error::Handshake(error)) => {
            assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE))
        }
        other => panic!("expected 503, got {other:?}"),
    }
    stop(running);
}

/// Panics in `open` on `/open`, in `http` for any plain request, in
/// `close` always; echoes otherwise.
struct Panicky;

impl Handler for Panicky {
    type Data = ();

    fn open(&mut self, _socket: &mut Socket<'_>, opening: &Opening<'_>) {
        if opening.request().uri().path() == "/open" {
            panic!("test: open panics");
        }
    }

    fn message(&mut self, socket: &mut Socket<'_>, _data: &mut (), message: Message) {
        let _ = socket.send(message);
    }

    fn close(&mut self, _id: ConnId, _data: (), _closed: &Closed) {
        panic!("test: close panics");
    }

    fn http(&mut self, _request: &Request<()>, _remote: SocketAddr) -> Option<Response<Bytes>> {
        panic!("test: http panics");
    }
}

#[tokio::test]
async fn a_panicking_callback_ends_at_most_its_own_connection() {
    // One loop: if a panic ended it, nothing after would be served.
    let running = EventLoop::new(ServerBuilder::new())
        .threads(1)
        .bind("127.0.0.1:0".parse().unwrap(), |_: LoopContext| Panicky)
        .unwrap();
    let addr = running.local_addr();
    for _ in 0..3 {
        // `open` panics: 1011 right after the 101.
        let (mut ws, _) = ClientBuilder::new(&format!("ws://{addr}/open"))
            .connect()
            .await
            .unwrap();
        let end = timeout(GUARD, ws.recv_event()).await.unwrap();
        assert!(
            matches!(&end, Some(Ok(sockeye::Event::Closed(closed)))
                if closed.received.as_ref().map(|frame| frame.code) == Some(CloseCode::INTERNAL_ERROR)),
            "{end:?}"
        );
        // `http` panics: 500.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        timeout(GUARD, tcp.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
        // An echo still works, and its `close` panics after it.
        let (mut ws, _) = ClientBuilder::new(&format!("ws://{addr}/"))
            .connect()
            .await
            .unwrap();
        ws.send(Message::text("still here")).await.unwrap();
        let echo = timeout(GUARD, ws.recv()).await.unwrap().unwrap().unwrap();
        assert_eq!(echo, Message::text("still here"));
        assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
    }
    stop(running);
}
