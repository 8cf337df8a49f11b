//! Hostile input the event loop (`sockeye::event_loop`) meets in ways the
//! tokio server does not: one thread serves every connection, one read
//! buffer is shared by all of them, and nothing waits for room. So: a
//! client that never reads (and one that floods) must not stall the loop
//! for the others; thousands of half-open handshakes sit in its slab and
//! timer heap while others are served; requests and frames dribbled a
//! byte at a time on many connections at once must not mix in the shared
//! buffer; a refused client that keeps writing must not hold the loop;
//! and `Socket::send` must keep a connection's buffer within
//! `max_buffered_bytes`, calling `writable` when it drains (the loop's
//! counterpart of `slow_reader.rs`).
//!
//! The hostile suites (`hostile_*.rs`, `advisories_server.rs`, ...) run
//! against the loop as well, under `SOCKEYE_TEST_SERVER=event-loop`; these
//! run against it always.
#![cfg(feature = "event-loop")]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hostile::{
    CloseSeen, HANG_GUARD, Lcg, client_frame, closed_within, open, read_close, read_frame,
    read_response_head, valid_request, within,
};
use sockeye::event_loop::{ConnId, EventLoop, Handler, LoopContext, Opening, Running, Socket};
use sockeye::proto::{Closed, Config};
use sockeye::{ClientBuilder, DeflateConfig, Error, Message, SendStatus, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a round trip may take on a loop that is not stalled: far more
/// than it takes (a millisecond), far less than a stall.
const PROMPT: Duration = Duration::from_secs(2);

/// What the handler saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// The most each connection had buffered after a send, by path.
    max_buffered: Mutex<Vec<(String, usize)>>,
    /// Sends handed back (`SendStatus::Dropped`).
    dropped: AtomicUsize,
    /// `writable` calls.
    writable: AtomicUsize,
    /// Ends: `close` calls, with the connection's path.
    closed: Mutex<Vec<(ConnId, String, Closed)>>,
    /// `refused` calls.
    refused: Mutex<Vec<Error>>,
    /// Messages the firehose queued.
    fired: AtomicUsize,
    /// Messages `/stream` queued.
    streamed: AtomicUsize,
}

/// Per connection: its path, and for `/firehose` the message it could not
/// send yet.
struct Conn {
    path: String,
    held: Option<Message>,
}

/// Echoes, except on `/firehose`: sends [`FIREHOSE`] messages of 64 KiB
/// as fast as `Socket::send` takes them, keeping one that is handed back
/// until `writable`; and on `/stream`: sends one [`STREAM_MESSAGE`]
/// message on open and one more on each `writable`, [`STREAM`] in all.
struct Probe {
    seen: Arc<Seen>,
}

/// How many messages a firehose sends: 40 x 64 KiB, many times the bound.
const FIREHOSE: usize = 40;
/// A firehose message's payload.
const FIRE_MESSAGE: usize = 64 * 1024;
/// Its frame: 2 header bytes and a 64-bit length (65,536 does not fit in
/// 16 bits).
const FIRE_FRAME: usize = FIRE_MESSAGE + 10;

/// How many messages `/stream` sends.
const STREAM: usize = 200;
/// Each of them: past the default `high_water_bytes` (256 KiB), so that
/// every send answers `Backpressure` and `writable` follows its write.
const STREAM_MESSAGE: usize = 300 * 1024;

impl Probe {
    /// Sends `/stream`'s next message.
    fn stream(&self, socket: &mut Socket<'_>) {
        let index = self.seen.streamed.load(Ordering::SeqCst);
        if index < STREAM {
            let status = socket.send(Message::binary(vec![index as u8; STREAM_MESSAGE]));
            assert!(matches!(status, SendStatus::Backpressure), "{status:?}");
            self.seen.streamed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn record(&self, socket: &Socket<'_>, conn: &Conn) {
        let buffered = socket.buffered_amount();
        let mut max = self.seen.max_buffered.lock().unwrap();
        match max.iter_mut().find(|(path, _)| *path == conn.path) {
            Some((_, most)) => *most = (*most).max(buffered),
            None => max.push((conn.path.clone(), buffered)),
        }
    }

    /// Sends the firehose's messages until one is handed back.
    fn fire(&self, socket: &mut Socket<'_>, conn: &mut Conn) {
        loop {
            let message = match conn.held.take() {
                Some(message) => message,
                None if self.seen.fired.load(Ordering::SeqCst) < FIREHOSE => {
                    let index = self.seen.fired.load(Ordering::SeqCst);
                    Message::binary(vec![index as u8; FIRE_MESSAGE])
                }
                None => return,
            };
            match socket.send(message) {
                SendStatus::Dropped(message) => {
                    self.seen.dropped.fetch_add(1, Ordering::SeqCst);
                    conn.held = Some(message);
                    return;
                }
                _ => {
                    self.seen.fired.fetch_add(1, Ordering::SeqCst);
                    self.record(socket, conn);
                }
            }
        }
    }
}

impl Handler for Probe {
    type Data = Conn;

    fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> Conn {
        let mut conn = Conn {
            path: opening.request().uri().path().to_owned(),
            held: None,
        };
        if conn.path == "/firehose" {
            self.fire(socket, &mut conn);
        }
        if conn.path == "/stream" {
            self.stream(socket);
        }
        conn
    }

    fn message(&mut self, socket: &mut Socket<'_>, conn: &mut Conn, message: Message) {
        if let SendStatus::Dropped(_) = socket.send(message) {
            self.seen.dropped.fetch_add(1, Ordering::SeqCst);
        }
        self.record(socket, conn);
    }

    fn writable(&mut self, socket: &mut Socket<'_>, conn: &mut Conn) {
        self.seen.writable.fetch_add(1, Ordering::SeqCst);
        if conn.path == "/firehose" {
            self.fire(socket, conn);
        }
        if conn.path == "/stream" {
            self.stream(socket);
        }
    }

    fn close(&mut self, id: ConnId, conn: Conn, closed: &Closed) {
        self.seen
            .closed
            .lock()
            .unwrap()
            .push((id, conn.path, closed.clone()));
    }

    fn refused(&mut self, _remote: SocketAddr, error: &Error) {
        self.seen
            .refused
            .lock()
            .unwrap()
            .push(common::front::owned_error(error));
    }
}

/// A one-loop server with `builder`; `buffer`: kernel send and receive
/// buffer of the accepted sockets. Stopped when dropped.
struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
    running: Option<Running>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.handle().stop();
            let joined = running.join();
            if !std::thread::panicking() {
                joined.unwrap();
            }
        }
    }
}

fn start(builder: ServerBuilder, buffer: Option<u32>) -> Server {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = buffer {
        socket.set_recv_buffer_size(size as usize).unwrap();
        socket.set_send_buffer_size(size as usize).unwrap();
    }
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(4096).unwrap();
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    let running = EventLoop::new(builder)
        .threads(1)
        .listen(listener, move |_: LoopContext| Probe {
            seen: shared.clone(),
        })
        .unwrap();
    Server {
        addr,
        seen,
        running: Some(running),
    }
}

/// A connection with `buffer` bytes of kernel buffer each way, opened
/// with a valid request for `path`.
async fn open_small(addr: SocketAddr, path: &str, buffer: u32) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(buffer).unwrap();
    socket.set_send_buffer_size(buffer).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut request = valid_request(addr);
    let line_end = request.iter().position(|&byte| byte == b'\r').unwrap();
    request.splice(..line_end, format!("GET {path} HTTP/1.1").bytes());
    tcp.write_all(&request).await.unwrap();
    let answer = within(HANG_GUARD, "a 101", read_response_head(&mut tcp))
        .await
        .expect("a response");
    assert_eq!(answer.status, 101, "{answer:?}");
    tcp
}

/// `rounds` round trips of a small message on a fresh connection; returns
/// the slowest. Each is bounded by the hang guard.
async fn round_trips(addr: SocketAddr, rounds: usize) -> Duration {
    let mut tcp = open(addr).await;
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let text = format!("round {round}");
        let started = Instant::now();
        tcp.write_all(&client_frame(true, 1, text.as_bytes()))
            .await
            .unwrap();
        let echo = within(HANG_GUARD, "an echo", read_frame(&mut tcp))
            .await
            .expect("an echo");
        assert_eq!(echo.payload, text.as_bytes());
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// A client that never reads (its echoes pile up until the loop stops
/// parsing and reading what it sends: its writes stall, nothing is
/// dropped) and one that floods without pause share the loop with a
/// polite client: the polite one's round trips stay prompt, the
/// non-reader's buffer stays within `max_buffered_bytes` plus one
/// message, and when the non-reader resets its connection with a backlog
/// queued, the loop ends it once and goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_stall_the_others() {
    const MESSAGE: usize = 64 * 1024;
    let max_buffered = 256 * 1024;
    let builder = ServerBuilder::new().config(Config::new().max_buffered_bytes(max_buffered));
    let server = start(builder, Some(64 * 1024));
    let addr = server.addr;

    // The non-reader: writes up to 8 MiB of messages (for at most a few
    // seconds: the loop stops reading it) and reads nothing.
    const DEAF_MESSAGES: usize = 128;
    let deaf = open_small(addr, "/deaf", 64 * 1024).await;
    let (deaf_read, mut deaf_write) = deaf.into_split();
    let deaf_writer = tokio::spawn(async move {
        let frame = client_frame(true, 2, &[0xd5; MESSAGE]);
        let mut written = 0;
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while written < DEAF_MESSAGES {
                if deaf_write.write_all(&frame).await.is_err() {
                    break;
                }
                written += 1;
            }
        })
        .await;
        (deaf_write, written)
    });
    // The flooder: writes messages without pause for the whole test,
    // and reads its echoes.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        let tcp = open(addr).await;
        tokio::spawn(async move {
            let (mut read, mut write) = tcp.into_split();
            let reader = tokio::spawn(async move {
                let mut sink = vec![0u8; 1 << 16];
                while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
            });
            let frame = client_frame(true, 2, &[0xf1; 16 * 1024]);
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if write.write_all(&frame).await.is_err() {
                    break;
                }
                sent += 1;
            }
            reader.abort();
            sent
        })
    };

    // The polite client, meanwhile.
    let slowest = round_trips(addr, 200).await;
    assert!(slowest < PROMPT, "a round trip took {slowest:?}");
    stop.store(true, Ordering::Relaxed);
    let flooded = within(HANG_GUARD, "the flooder", flooder).await.unwrap();
    assert!(flooded > 0);

    // The non-reader's echoes were held to the bound, and its writes
    // stalled: the loop stopped reading it, and dropped nothing.
    let (deaf_write, deaf_written) = within(HANG_GUARD, "the non-reader's writes", deaf_writer)
        .await
        .unwrap();
    assert!(
        deaf_written < DEAF_MESSAGES,
        "the loop read all {deaf_written} messages of a client that reads nothing"
    );
    let deaf_max = server
        .seen
        .max_buffered
        .lock()
        .unwrap()
        .iter()
        .find(|(path, _)| path == "/deaf")
        .map(|(_, most)| *most)
        .expect("the non-reader was echoed");
    let frame = MESSAGE + 10;
    assert!(
        deaf_max < max_buffered + frame,
        "the non-reader's buffer reached {deaf_max} bytes"
    );
    assert_eq!(server.seen.dropped.load(Ordering::SeqCst), 0);

    // The non-reader resets its connection with a backlog queued.
    let deaf = deaf_read.reunite(deaf_write).unwrap();
    deaf.set_zero_linger().unwrap();
    drop(deaf);
    within(HANG_GUARD, "the non-reader's end", async {
        loop {
            let ends = server
                .seen
                .closed
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, path, _)| path == "/deaf")
                .count();
            if ends > 0 {
                assert_eq!(ends, 1, "closed more than once");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let slowest = round_trips(addr, 20).await;
    assert!(
        slowest < PROMPT,
        "after the reset: a round trip took {slowest:?}"
    );
}

/// How many connections the resource tests open: 2,000, fewer if
/// `ulimit -n` is lower (each takes two descriptors here).
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

/// Thousands of half-open handshakes (half send nothing at all, half
/// stop in the middle of their request) wait in the loop's slab and
/// timer heap: a client is served promptly meanwhile, and every one of
/// them is dropped at the handshake timeout and reported as
/// `OpenTimeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_half_open_handshakes_wait_without_stalling_the_loop() {
    let count = connection_count();
    let timeout = Duration::from_secs(2);
    let server = start(ServerBuilder::new().handshake_timeout(timeout), None);
    let addr = server.addr;
    let mut pending = Vec::with_capacity(count);
    for index in 0..count {
        let mut tcp = within(HANG_GUARD, "connect", TcpStream::connect(addr))
            .await
            .unwrap();
        if index % 2 == 1 {
            tcp.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgr")
                .await
                .unwrap();
        }
        pending.push(tcp);
    }
    let opened = Instant::now();
    let slowest = round_trips(addr, 10).await;
    assert!(
        opened.elapsed() < timeout,
        "the client was served only after the handshake timeout"
    );
    assert!(slowest < PROMPT, "a round trip took {slowest:?}");
    for (index, mut tcp) in pending.into_iter().enumerate() {
        let left = (timeout + Duration::from_secs(5)).saturating_sub(opened.elapsed());
        assert!(
            closed_within(&mut tcp, left).await,
            "connection {index} still open {:?} after the last one opened",
            opened.elapsed()
        );
    }
    within(HANG_GUARD, "every refusal reported", async {
        while server.seen.refused.lock().unwrap().len() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let refused = server.seen.refused.lock().unwrap();
    assert_eq!(refused.len(), count);
    assert!(
        refused
            .iter()
            .all(|error| matches!(error, Error::OpenTimeout)),
        "{:?}",
        refused
            .iter()
            .find(|error| !matches!(error, Error::OpenTimeout))
    );
}

/// Fifty connections each write their request and a first frame one
/// byte per write, taking turns, so that every read of the loop's shared
/// buffer holds one byte of one connection between another's: each gets
/// its own `101` and its own echo. Then the same with the request and
/// the frame in one write (the frame arrives with the head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_dribbled_a_byte_at_a_time_on_many_connections_do_not_mix() {
    const CONNECTIONS: usize = 50;
    let server = start(
        ServerBuilder::new().handshake_timeout(Duration::from_secs(20)),
        None,
    );
    let addr = server.addr;
    let mut streams = Vec::with_capacity(CONNECTIONS);
    let mut wires = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        streams.push(tcp);
        let mut wire = valid_request(addr);
        wire.extend(client_frame(true, 1, format!("client {index}").as_bytes()));
        wires.push(wire);
    }
    let longest = wires.iter().map(Vec::len).max().unwrap();
    within(Duration::from_secs(60), "the dribble", async {
        for at in 0..longest {
            for (tcp, wire) in streams.iter_mut().zip(&wires) {
                if let Some(byte) = wire.get(at) {
                    tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
                }
            }
            // Let the loop read this round before the next.
            if at % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await;
    for (index, tcp) in streams.iter_mut().enumerate() {
        let answer = within(HANG_GUARD, "a 101", read_response_head(tcp))
            .await
            .expect("a response");
        assert_eq!(answer.status, 101, "connection {index}: {answer:?}");
        let echo = within(HANG_GUARD, "an echo", read_frame(tcp))
            .await
            .expect("an echo");
        assert_eq!(
            (echo.opcode, echo.payload),
            (1, format!("client {index}").into_bytes()),
            "connection {index}"
        );
    }
    // The request and its first frames in one write.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut wire = valid_request(addr);
    wire.extend(client_frame(true, 1, b"with the head"));
    wire.extend(client_frame(true, 2, &[0xab; 70_000]));
    tcp.write_all(&wire).await.unwrap();
    let answer = within(HANG_GUARD, "a 101", read_response_head(&mut tcp))
        .await
        .expect("a response");
    assert_eq!(answer.status, 101);
    let first = within(HANG_GUARD, "an echo", read_frame(&mut tcp))
        .await
        .unwrap();
    assert_eq!(first.payload, b"with the head");
    let second = within(HANG_GUARD, "an echo", read_frame(&mut tcp))
        .await
        .unwrap();
    assert_eq!(second.payload, vec![0xab; 70_000]);
}

/// Four clients send messages of random sizes (one byte to 300 KiB:
/// reads copied into the engines, and reads large enough that the loop
/// hands its buffer over and takes a new one) at the same time: every
/// echo is the message sent, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_read_buffer_keeps_connections_apart() {
    const CLIENTS: u64 = 4;
    const MESSAGES: usize = 40;
    // Room for every echo (the loop hands back what does not fit): this
    // is about the bytes, not backpressure.
    let builder = ServerBuilder::new()
        .deflate(DeflateConfig::new().enabled(false))
        .config(Config::new().max_buffered_bytes(64 << 20));
    let server = start(builder, None);
    let url = format!("ws://{}/", server.addr);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let url = url.clone();
        clients.spawn(async move {
            let (ws, _) = ClientBuilder::new(&url)
                .no_proxy()
                .deflate(DeflateConfig::new().enabled(false))
                .connect()
                .await
                .unwrap();
            let mut sizes = Lcg(client + 1);
            let messages: Vec<Message> = (0..MESSAGES)
                .map(|index| {
                    let size = match sizes.next() % 4 {
                        0 => 1 + (sizes.next() % 100) as usize,
                        1 => 16 * 1024 + (sizes.next() % 64) as usize - 32,
                        _ => 1 + (sizes.next() % (300 * 1024)) as usize,
                    };
                    let payload: Vec<u8> = (0..size)
                        .map(|at| (at as u64 * 31 + client * 7 + index as u64) as u8)
                        .collect();
                    Message::binary(payload)
                })
                .collect();
            // All sent before any echo is read, while the others do so.
            let (mut receiver, mut sender) = ws.split();
            let sent = messages.clone();
            let writer = tokio::spawn(async move {
                for message in sent {
                    sender.send(message).await.unwrap();
                }
                sender
            });
            for (index, message) in messages.iter().enumerate() {
                let echo = within(HANG_GUARD, "an echo", receiver.recv())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(echo == *message, "client {client}, message {index}");
            }
            writer.await.unwrap();
        });
    }
    within(Duration::from_secs(60), "every echo", async {
        while let Some(done) = clients.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(server.seen.dropped.load(Ordering::SeqCst), 0);
}

/// A refused client that goes on writing (an endless request line, 431
/// at the head limit) while the loop reads and drops what it sends
/// before closing: the loop keeps serving the others, and cuts the
/// attacker off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_that_keeps_writing_does_not_hold_the_loop() {
    let server = start(ServerBuilder::new(), None);
    let addr = server.addr;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let attacker = tokio::spawn(async move {
        writer.write_all(b"GET /").await.unwrap();
        let chunk = vec![b'a'; 256 * 1024];
        let mut sent = 0usize;
        // At most 4 GiB: a server that never cuts it off fails below.
        while sent < 4 << 30 {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let answer = within(HANG_GUARD, "a 431", read_response_head(&mut reader))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 431);
    let slowest = round_trips(addr, 50).await;
    assert!(slowest < PROMPT, "a round trip took {slowest:?}");
    let sent = within(HANG_GUARD, "the attacker cut off", attacker)
        .await
        .unwrap();
    assert!(sent < 64 << 20, "the loop took {sent} bytes after its 431");
    drop(reader);
}

/// A client that breaks the protocol (an unmasked frame: 1002) and goes
/// on writing while the loop lingers, reading and dropping what it sends
/// so that a reset does not destroy the Close: the loop keeps serving the
/// others meanwhile, and closes at the end of the linger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_client_that_keeps_writing_does_not_hold_the_loop() {
    let server = start(ServerBuilder::new(), None);
    let addr = server.addr;
    let (mut reader, mut writer) = open(addr).await.into_split();
    let attacker = tokio::spawn(async move {
        let mut unmasked = client_frame(true, 2, b"unmasked");
        unmasked[1] &= 0x7f;
        unmasked.drain(2..6);
        writer.write_all(&unmasked).await.unwrap();
        let chunk = vec![0u8; 256 * 1024];
        let mut sent = 0usize;
        while sent < 4 << 30 {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let seen = within(HANG_GUARD, "a Close", read_close(&mut reader)).await;
    assert_eq!(seen, CloseSeen::Code(1002));
    let slowest = round_trips(addr, 50).await;
    assert!(slowest < PROMPT, "a round trip took {slowest:?}");
    let sent = within(HANG_GUARD, "the attacker cut off", attacker)
        .await
        .unwrap();
    eprintln!("the attacker wrote {sent} bytes before it was cut off");
    drop(reader);
}

/// The loop's counterpart of `slow_reader.rs`: a handler sends 64 KiB
/// messages to a peer that reads nothing. `Socket::send` hands messages
/// back once `max_buffered_bytes` is buffered, so the connection never
/// holds more than that plus one message; when the peer reads,
/// `writable` comes, the rest is sent, and the peer gets every message,
/// whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_stays_within_max_buffered_bytes_and_resumes_on_writable() {
    const MAX_BUFFERED: usize = 256 * 1024;
    let builder = ServerBuilder::new().config(Config::new().max_buffered_bytes(MAX_BUFFERED));
    let server = start(builder, Some(64 * 1024));
    let mut tcp = open_small(server.addr, "/firehose", 64 * 1024).await;

    // The peer does not read: the firehose stops, far from done.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fired = server.seen.fired.load(Ordering::SeqCst);
    assert!(fired < FIREHOSE, "all {fired} messages were taken");
    assert!(server.seen.dropped.load(Ordering::SeqCst) > 0);
    let most = server.seen.max_buffered.lock().unwrap()[0].1;
    eprintln!("stalled after {fired} messages, {most} bytes buffered at most");
    assert!(
        most < MAX_BUFFERED + FIRE_FRAME,
        "the connection held {most} bytes"
    );

    // The peer reads: every message arrives, in order.
    for index in 0..FIREHOSE {
        let frame = within(HANG_GUARD, "a message", read_frame(&mut tcp))
            .await
            .unwrap_or_else(|| panic!("the connection ended before message {index}"));
        assert_eq!(frame.opcode, 2);
        assert_eq!(frame.payload.len(), FIRE_MESSAGE, "message {index}");
        assert!(
            frame.payload.iter().all(|&byte| byte == index as u8),
            "message {index}"
        );
    }
    assert_eq!(server.seen.fired.load(Ordering::SeqCst), FIREHOSE);
    assert!(server.seen.writable.load(Ordering::SeqCst) > 0);
    let most = server.seen.max_buffered.lock().unwrap()[0].1;
    assert!(
        most < MAX_BUFFERED + FIRE_FRAME,
        "the connection held {most} bytes"
    );
}

/// A handler that sends its next message from `writable` to a client
/// that reads as fast as it can: the socket takes each write whole, so
/// the loop writes, calls `writable`, writes again, round after round,
/// and no readiness comes from the socket in between. All 200 messages
/// (60 MB) arrive, none stalled waiting for an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_streaming_from_writable_to_a_fast_reader_never_stalls() {
    let server = start(ServerBuilder::new(), None);
    let mut tcp = open_small(server.addr, "/stream", 4 << 20).await;
    within(HANG_GUARD, "every message", async {
        for index in 0..STREAM {
            let frame = read_frame(&mut tcp)
                .await
                .unwrap_or_else(|| panic!("the connection ended before message {index}"));
            assert_eq!(frame.payload.len(), STREAM_MESSAGE, "message {index}");
            assert_eq!(frame.payload[0], index as u8, "message {index}");
        }
    })
    .await;
    assert_eq!(server.seen.streamed.load(Ordering::SeqCst), STREAM);
}
