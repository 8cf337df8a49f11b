//! The tokio front-end over in-memory pipes: echo, auto-pong flushing,
//! closing handshakes, split halves, cancel safety, backpressure, corking.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use sockeye::proto::{Config, Connection};
use sockeye::{CloseCode, Error, Event, Message, Role, WebSocket};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, duplex,
};

fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = duplex(1 << 20);
    (
        WebSocket::from_raw(a, Role::Client, Config::default(), &[]),
        WebSocket::from_raw(b, Role::Server, Config::default(), &[]),
    )
}

/// Raw client-side engine bytes for `messages`.
fn client_bytes(build: impl FnOnce(&mut Connection)) -> Vec<u8> {
    let mut conn = Connection::new(Role::Client, Config::default());
    build(&mut conn);
    let mut out = Vec::new();
    conn.data_to_send(&mut out);
    out
}

#[tokio::test]
async fn echo_round_trip_and_clean_close() {
    let (mut client, mut server) = pair();
    let echo = tokio::spawn(async move {
        while let Some(message) = server.recv().await {
            server.send(message.unwrap()).await.unwrap();
        }
        server.closed().cloned()
    });
    for text in ["one", "two", "κόσμε"] {
        client.send(Message::text(text)).await.unwrap();
        let back = client.recv().await.unwrap().unwrap();
        assert_eq!(back.as_text(), Some(text));
    }
    client
        .send(Message::binary(vec![7; 200_000]))
        .await
        .unwrap();
    assert_eq!(client.recv().await.unwrap().unwrap().len(), 200_000);
    let closed = client.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(closed.is_clean());
    let server_closed = echo.await.unwrap().unwrap();
    assert_eq!(server_closed.code(), CloseCode::NORMAL);
    assert_eq!(server_closed.reason(), "done");
    assert!(client.recv().await.is_none());
}

#[tokio::test]
async fn pongs_are_written_while_receiving() {
    let (raw, b) = duplex(1 << 16);
    let mut server = WebSocket::from_raw(b, Role::Server, Config::default(), &[]);
    let (mut raw_read, mut raw_write) = tokio::io::split(raw);
    let input = client_bytes(|c| {
        c.send_ping(&b"are you there"[..]).unwrap();
    });
    raw_write.write_all(&input).await.unwrap();
    // The server is only receiving; nothing else makes it write.
    let recv = tokio::spawn(async move { server.recv().await.map(|m| m.is_ok()) });
    let mut pong = [0u8; 15];
    tokio::time::timeout(Duration::from_secs(5), raw_read.read_exact(&mut pong))
        .await
        .expect("pong written without any send or flush")
        .unwrap();
    assert_eq!(&pong[..2], &[0x8a, 13]);
    assert_eq!(&pong[2..], b"are you there");
    recv.abort();
}

#[tokio::test]
async fn peer_violation_is_reported_after_earlier_messages() {
    let (raw, b) = duplex(1 << 16);
    let mut server = WebSocket::from_raw(b, Role::Server, Config::default(), &[]);
    let (mut raw_read, mut raw_write) = tokio::io::split(raw);
    let mut input = client_bytes(|c| c.send(Message::text("first")).unwrap());
    input.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // unmasked: a violation
    raw_write.write_all(&input).await.unwrap();
    assert_eq!(
        server.recv().await.unwrap().unwrap().as_text(),
        Some("first")
    );
    match server.recv().await {
        Some(Err(Error::Protocol(error))) => assert_eq!(error.close_code().as_u16(), 1002),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(server.recv().await.is_none());
    let mut close = Vec::new();
    raw_read.read_to_end(&mut close).await.unwrap();
    assert_eq!(
        &close[..4],
        &[0x88, close[1], 0x03, 0xea],
        "close 1002, then TCP closed"
    );
}

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    let (client, mut server) = pair();
    let server_task = tokio::spawn(async move {
        let mut count = 0;
        while let Some(message) = server.recv().await {
            server.send(message.unwrap()).await.unwrap();
            count += 1;
        }
        count
    });
    let (mut receiver, mut sender) = client.split();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = receiver.recv().await {
            seen.push(message.unwrap().as_text().unwrap().to_owned());
        }
        seen
    });
    for i in 0..100 {
        sender.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    sender.close(CloseCode::NORMAL, "").await.unwrap();
    let seen = reader.await.unwrap();
    assert_eq!(seen.len(), 100);
    assert_eq!(seen[99], "m99");
    assert_eq!(server_task.await.unwrap(), 100);
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let (mut client, mut server) = pair();
    let sender = tokio::spawn(async move {
        for i in 0..50u32 {
            client
                .send(Message::binary(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        client.close(CloseCode::NORMAL, "").await.unwrap();
    });
    let mut received = Vec::new();
    loop {
        tokio::select! {
            message = server.recv() => match message {
                Some(message) => received.push(message.unwrap()),
                None => break,
            },
            // Cancel the pending recv again and again.
            _ = tokio::task::yield_now() => {}
        }
    }
    sender.await.unwrap();
    let expected: Vec<Message> = (0..50u32)
        .map(|i| Message::binary(i.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn send_waits_when_the_peer_does_not_read() {
    // A 64 KiB pipe that nobody reads: sends must stop completing, and
    // the engine's queue must stay bounded.
    let (a, _unread) = duplex(64 * 1024);
    let mut client = WebSocket::from_raw(a, Role::Client, Config::default(), &[]);
    let payload = vec![0u8; 16 * 1024];
    let mut sent = 0;
    loop {
        let send = client.send(Message::binary(payload.clone()));
        match tokio::time::timeout(Duration::from_millis(200), send).await {
            Ok(result) => {
                result.unwrap();
                sent += 1;
                assert!(sent < 100, "sends never blocked");
            }
            Err(_) => break,
        }
    }
    assert!(sent >= 3, "the pipe's capacity was usable: {sent}");
    let queued = client.connection().buffered_amount();
    assert!(
        queued <= 16 * 1024 + 14,
        "memory grew: {queued} bytes queued"
    );
}

/// Counts writes that reach the transport.
struct CountingStream {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn replies_to_a_burst_leave_in_one_write() {
    let (raw, b) = duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let stream = CountingStream {
        inner: b,
        writes: writes.clone(),
    };
    let mut server = WebSocket::from_raw(stream, Role::Server, Config::default(), &[]);
    let (mut raw_read, mut raw_write) = tokio::io::split(raw);
    let burst = client_bytes(|c| {
        for i in 0..8 {
            c.send(Message::text(format!("msg {i}"))).unwrap();
        }
    });
    raw_write.write_all(&burst).await.unwrap();
    for _ in 0..8 {
        let message = server.recv().await.unwrap().unwrap();
        server.send(message).await.unwrap();
    }
    assert_eq!(writes.load(Ordering::SeqCst), 1, "eight echoes, one write");
    let mut echoes = vec![0u8; 8 * 7];
    raw_read.read_exact(&mut echoes).await.unwrap();
    assert_eq!(&echoes[2..7], b"msg 0");
}

#[tokio::test]
async fn stream_and_sink_interfaces() {
    let (mut client, mut server) = pair();
    let echo = tokio::spawn(async move {
        while let Some(Ok(message)) = server.next().await {
            server.send(message).await.unwrap();
        }
    });
    let messages = futures_util::stream::iter((0..10).map(|i| Ok(Message::text(format!("{i}")))));
    client.send_all(&mut messages.boxed()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(client.next().await.unwrap().unwrap());
    }
    assert_eq!(got[9].as_text(), Some("9"));
    SinkExt::close(&mut client).await.unwrap();
    echo.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keepalive_detects_a_dead_peer() {
    let (a, _silent_peer) = duplex(1 << 16);
    let config = Config::new()
        .keepalive_interval(Some(Duration::from_secs(10)))
        .keepalive_timeout(Duration::from_secs(5));
    let mut client = WebSocket::from_raw(a, Role::Client, config, &[]);
    let started = tokio::time::Instant::now();
    match client.recv().await {
        Some(Err(Error::Timeout(_))) => {}
        other => panic!("expected a keepalive timeout, got {other:?}"),
    }
    // Virtual time: one interval plus the timeout, to the timer's 1 ms grain.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(15) && elapsed < Duration::from_millis(15_010),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_on_a_silent_peer() {
    let (a, _silent_peer) = duplex(1 << 16);
    let config = Config::new().close_timeout(Duration::from_secs(3));
    let mut client = WebSocket::from_raw(a, Role::Client, config, &[]);
    let started = tokio::time::Instant::now();
    let closed = client.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(!closed.is_clean());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_millis(3_010),
        "{elapsed:?}"
    );
}

/// Regression: `SendHalf::close` queued the Close while the receiving half
/// slept until its next keepalive deadline, so a peer that never answered
/// (nor read) held the connection until then instead of the close timeout.
#[tokio::test(start_paused = true)]
async fn split_close_is_bounded_by_the_close_timeout_while_the_receiver_waits() {
    let (a, _silent_peer) = duplex(1 << 16);
    let config = Config::new()
        .keepalive_interval(Some(Duration::from_secs(60)))
        .close_timeout(Duration::from_secs(3));
    let server = WebSocket::from_raw(a, Role::Server, config, &[]);
    let (mut receiver, mut sender) = server.split();
    let receiving = tokio::spawn(async move {
        let result = receiver.recv().await;
        (result, tokio::time::Instant::now())
    });
    // The receiving half now waits, its timer set for the keepalive Ping.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    sender.close(CloseCode::NORMAL, "bye").await.unwrap();
    let (result, ended) = tokio::time::timeout(Duration::from_secs(30), receiving)
        .await
        .expect("the receiving half ends within the close timeout, not at the keepalive")
        .unwrap();
    match result {
        Some(Err(Error::Timeout(sockeye::proto::Timeout::Close))) => {}
        other => panic!("expected the close timeout, got {other:?}"),
    }
    let elapsed = ended - started;
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_millis(3_010),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn events_include_pings_and_pongs() {
    let (mut client, mut server) = pair();
    client.ping(&b"hi"[..]).await.unwrap();
    assert_eq!(
        server.recv_event().await.unwrap().unwrap(),
        Event::Ping(b"hi"[..].into())
    );
    assert_eq!(
        client.recv_event().await.unwrap().unwrap(),
        Event::Pong(b"hi"[..].into())
    );
}

#[tokio::test]
async fn into_parts_keeps_what_was_read_and_what_was_not_written() {
    // A pipe that holds 64 bytes: most of a 1,000-byte frame stays unwritten.
    let (a, mut peer) = duplex(64);
    // Two server messages arrive in one write; the client delivers one.
    peer.write_all(b"\x81\x03one\x81\x03two").await.unwrap();
    let mut client = WebSocket::from_raw(a, Role::Client, Config::default(), &[]);
    assert_eq!(client.recv().await.unwrap().unwrap().as_text(), Some("one"));
    client
        .feed(Message::binary(vec![9u8; 1000]))
        .now_or_never()
        .expect("queued without waiting")
        .unwrap();
    assert!(client.flush().now_or_never().is_none(), "the pipe is full");

    let sockeye::Parts {
        mut stream,
        mut connection,
        unwritten,
        ..
    } = client.into_parts();
    match connection.next_event() {
        Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("two")),
        other => panic!("the second message stayed in the engine, got {other:?}"),
    }
    // What was written, then what was not, make the whole frame.
    let mut wire = vec![0u8; 64];
    peer.read_exact(&mut wire).await.unwrap();
    let rest: usize = unwritten.iter().map(|chunk| chunk.len()).sum();
    assert_eq!(64 + rest, 2 + 2 + 4 + 1000);
    let reader = tokio::spawn(async move {
        let mut all = wire;
        let mut more = vec![0u8; rest];
        peer.read_exact(&mut more).await.unwrap();
        all.extend_from_slice(&more);
        (peer, all)
    });
    for chunk in &unwritten {
        stream.write_all(chunk).await.unwrap();
    }
    let (mut peer, wire) = reader.await.unwrap();
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive_data(&wire);
    match server.next_event() {
        Some(Event::Message(message)) => assert_eq!(message.as_bytes(), &[9u8; 1000][..]),
        other => panic!("expected the binary message, got {other:?}"),
    }

    // Put back together, it goes on as before.
    let mut client = WebSocket::from_engine(stream, connection, &[]);
    peer.write_all(b"\x81\x05three").await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap().as_text(),
        Some("three")
    );
}
