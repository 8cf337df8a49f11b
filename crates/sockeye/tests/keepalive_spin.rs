//! Regression (issue 14): with a keepalive interval shorter than the Pong
//! timeout, a peer that never answered made the engine hand out a Ping
//! deadline already past; the tokio front-end looped on it at a full core
//! without yielding (starving every other connection on its thread), the
//! blocking one without blocking. These tests count how often each
//! front-end touches its transport while a silent peer is timed out.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use sockeye::proto::{Config, Timeout};
use sockeye::{Error, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};

/// Far more transport calls than timing out a silent peer takes; a
/// front-end that spins passes it in microseconds, and panics here rather
/// than hanging the test.
const SPIN: usize = 10_000;

/// A stream that counts every call the front-end makes on it.
struct Counted<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S> Counted<S> {
    fn count(&self) {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(calls < SPIN, "the front-end spins: {calls} transport calls");
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.count();
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.count();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.count();
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.count();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn keepalive(interval: Duration, timeout: Duration) -> Config {
    Config::new()
        .keepalive_interval(Some(interval))
        .keepalive_timeout(timeout)
}

/// A server with `--ping-interval 5s` and the default 20 s Pong timeout,
/// on paused time, against a peer that never reads or answers: one Ping
/// at 5 s, Close 1011 at 25 s, in a few dozen transport calls.
#[tokio::test(start_paused = true)]
async fn tokio_a_silent_peer_is_timed_out_without_spinning() {
    let (server_side, mut peer): (DuplexStream, DuplexStream) = tokio::io::duplex(64 * 1024);
    let calls = Arc::new(AtomicUsize::new(0));
    let stream = Counted {
        inner: server_side,
        calls: calls.clone(),
    };
    let config = keepalive(Duration::from_secs(5), Duration::from_secs(20));
    let mut ws = sockeye::WebSocket::from_raw(stream, Role::Server, config, &[]);
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(120), ws.recv())
        .await
        .expect("timed out within the keepalive timeout");
    assert!(
        matches!(result, Some(Err(Error::Timeout(Timeout::Keepalive)))),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(25));
    let calls = calls.load(Ordering::Relaxed);
    assert!(calls <= 40, "{calls} transport calls");
    // What the peer was sent: the Ping, then Close 1011.
    let mut sent = Vec::new();
    peer.read_to_end(&mut sent).await.unwrap();
    assert_eq!(sent[0], 0x89, "a Ping first");
    let close = &sent[2 + usize::from(sent[1])..];
    assert_eq!(close[0], 0x88);
    assert_eq!(close[2..4], 1011u16.to_be_bytes());
}

/// Many silent peers on one thread: none of them holds the thread, so a
/// live connection beside them is served all along.
#[tokio::test(start_paused = true)]
async fn tokio_silent_peers_do_not_starve_a_live_connection() {
    let mut silent = Vec::new();
    for _ in 0..50 {
        let (server_side, peer) = tokio::io::duplex(64 * 1024);
        let config = keepalive(Duration::from_secs(5), Duration::from_secs(20));
        let mut ws = sockeye::WebSocket::from_raw(server_side, Role::Server, config, &[]);
        silent.push(peer);
        tokio::spawn(async move { while let Some(Ok(_)) = ws.recv().await {} });
    }
    let (server_side, client_side) = tokio::io::duplex(64 * 1024);
    let config = keepalive(Duration::from_secs(5), Duration::from_secs(20));
    let mut server = sockeye::WebSocket::from_raw(server_side, Role::Server, config, &[]);
    tokio::spawn(async move {
        while let Some(Ok(message)) = server.recv().await {
            if server.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut client =
        sockeye::WebSocket::from_raw(client_side, Role::Client, Config::default(), &[]);
    // Every second for 40 s of the silent peers' lives, across the Pings
    // at 5 s and the drops at 25 s, an echo comes back within the second.
    for second in 0..40 {
        let text = format!("echo {second}");
        client
            .send(sockeye::Message::text(text.clone()))
            .await
            .unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(1), client.recv())
            .await
            .expect("answered")
            .unwrap()
            .unwrap();
        assert_eq!(echo.as_text(), Some(text.as_str()));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(silent);
}

/// A blocking-transport wrapper that counts reads, writes, flushes and
/// timeouts set.
struct CountedTcp {
    inner: TcpStream,
    calls: usize,
}

impl CountedTcp {
    fn count(&mut self) {
        self.calls += 1;
        assert!(self.calls < SPIN, "the front-end spins");
    }
}

impl Read for CountedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.count();
        self.inner.read(buf)
    }
}

impl Write for CountedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count();
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.count();
        self.inner.flush()
    }
}

impl sockeye::blocking::Transport for CountedTcp {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.count();
        sockeye::blocking::Transport::set_read_timeout(&mut self.inner, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        sockeye::blocking::Transport::shutdown(&mut self.inner)
    }
}

/// The blocking front-end against a peer that never answers, over real
/// loopback TCP and short real timers (a 50 ms interval, a 300 ms Pong
/// timeout): it blocks in reads until the deadline, and does not loop.
#[test]
fn blocking_a_silent_peer_is_timed_out_without_spinning() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let stream = CountedTcp {
        inner: tcp,
        calls: 0,
    };
    let config = keepalive(Duration::from_millis(50), Duration::from_millis(300));
    let mut ws = sockeye::blocking::WebSocket::from_raw(stream, Role::Server, config, &[]);
    let result = ws.recv();
    assert!(
        matches!(result, Some(Err(Error::Timeout(Timeout::Keepalive)))),
        "{result:?}"
    );
    let calls = ws.get_ref().calls;
    // A few calls per wake-up (set the timeout, read, write, flush), and
    // a few wake-ups: Ping, drop; a spurious early wake-up or two.
    assert!(calls <= 60, "{calls} transport calls");
    drop(peer);
}
