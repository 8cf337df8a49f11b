//! `ServerBuilder::memory_budget` over loopback, against a real server
//! with echo tasks: ten clients each send one 8 MiB message and never
//! read the echo (the 10 x 64 MiB against 256 MiB, scaled down),
//! with a 32 MiB budget. The server's accounted memory must stay within
//! the budget (plus one read per connection), a well-behaved client must
//! keep being served, and the offenders must be stalled or closed with
//! 1013 (try again later), not before the budget's timeout.
//!
//! Kernel socket buffers are small (64 KiB) on both ends, so that what the
//! server holds is what sockeye holds, not what the kernel absorbs.
//!
//! Against the tokio server or the event loop (`SOCKEYE_TEST_SERVER`, see
//! `common::front`).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::front::{Front, LoopEnd, LoopServer, Serving, front};
use sockeye::proto::Config;
use sockeye::{CloseCode, Error, Event, Message, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BUDGET: usize = 32 << 20;
const MESSAGE: usize = 8 << 20;
const OFFENDERS: usize = 10;
/// How long offenders may stall the budget before the largest are shed.
const BUDGET_TIMEOUT: Duration = Duration::from_millis(500);
/// How far the accounted total may pass the budget: each connection's
/// last read before it was counted (64 KiB) and one read per worker
/// thread admitted just before the total reached the budget.
const OVERSHOOT: usize = (OFFENDERS + 1 + 2) * 128 * 1024;
const SOCKET_BUFFER: u32 = 64 * 1024;
/// Every wait is bounded by this.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// How a server connection ended, and when.
#[derive(Debug)]
struct Ending {
    peer: SocketAddr,
    at: Instant,
    aborted: bool,
}

/// An echo server with the budget under test, on an ephemeral port.
struct Server {
    addr: SocketAddr,
    builder: ServerBuilder,
    endings: mpsc::UnboundedReceiver<Ending>,
    _serving: Serving,
}

async fn start_server() -> Server {
    let builder = ServerBuilder::new()
        .config(
            Config::new()
                .max_message_size(16 << 20)
                .max_frame_size(16 << 20),
        )
        .memory_budget(BUDGET)
        .memory_budget_timeout(BUDGET_TIMEOUT);
    if front() == Front::EventLoop {
        let (sender, endings) = mpsc::unbounded_channel();
        let server = LoopServer::start(builder.clone(), Some(SOCKET_BUFFER), move |end| {
            // Refusals are not reported, as the tokio server's are not.
            if let LoopEnd::Ended { remote, closed } = end {
                let aborted = matches!(
                    closed.error,
                    Some(sockeye::proto::Error::Aborted(code)) if code == CloseCode::TRY_AGAIN_LATER
                );
                let _ = sender.send(Ending {
                    peer: remote,
                    at: Instant::now(),
                    aborted,
                });
            }
        });
        return Server {
            addr: server.addr,
            builder,
            endings,
            _serving: Serving::EventLoop(server),
        };
    }
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener: TcpListener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, endings) = mpsc::unbounded_channel();
    let server = builder.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let server = server.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept(tcp).await else {
                    return;
                };
                let aborted = loop {
                    match ws.recv_event().await {
                        Some(Ok(Event::Message(message))) => {
                            if ws.send(message).await.is_err() {
                                break false;
                            }
                        }
                        Some(Ok(Event::Closed(closed))) => {
                            break matches!(closed.error, Some(sockeye::proto::Error::Aborted(_)));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(Error::Aborted(code))) => {
                            break code == CloseCode::TRY_AGAIN_LATER;
                        }
                        Some(Err(_)) | None => break false,
                    }
                };
                let _ = sender.send(Ending {
                    peer,
                    at: Instant::now(),
                    aborted,
                });
            });
        }
    });
    Server {
        addr,
        builder,
        endings,
        _serving: Serving::Tokio(task),
    }
}

/// A client that sends one large message and reads nothing until told.
struct Offender {
    local: SocketAddr,
    read: OwnedReadHalf,
    /// Ends when the whole message was written (the server read it) or the
    /// connection failed (the server closed it).
    writer: JoinHandle<(OwnedWriteHalf, bool)>,
}

async fn offender(addr: SocketAddr) -> Offender {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    let mut tcp: TcpStream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "EOF in the 101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    let local = tcp.local_addr().unwrap();
    let (read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        // One binary frame, masked with a zero key (so the payload goes
        // as is).
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(MESSAGE as u64).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.resize(frame.len() + MESSAGE, 0x5a);
        let done = write.write_all(&frame).await.is_ok();
        (write, done)
    });
    Offender {
        local,
        read,
        writer,
    }
}

/// What an offender finally received: the close code of a Close frame, if
/// one came after whatever echo it got.
async fn close_code_received(read: &mut OwnedReadHalf) -> Option<u16> {
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), read.read_to_end(&mut bytes)).await;
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let opcode = bytes[at] & 0x0f;
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 if at + 4 <= bytes.len() => (
                u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                4,
            ),
            127 if at + 10 <= bytes.len() => (
                u64::from_be_bytes(bytes[at + 2..at + 10].try_into().unwrap()) as usize,
                10,
            ),
            len @ 0..=125 => (len as usize, 2),
            _ => return None,
        };
        let payload = at + header;
        if opcode == 0x8 && payload + 2 <= bytes.len() {
            return Some(u16::from_be_bytes([bytes[payload], bytes[payload + 1]]));
        }
        at = payload + len;
    }
    None
}

/// Samples the server's accounted memory until stopped; returns the peak.
fn watch_peak(builder: ServerBuilder, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let peak = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(builder.memory_in_use(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        peak.load(Ordering::Relaxed)
    })
}

async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offenders_are_held_to_the_budget_while_others_are_served() {
    let mut server = start_server().await;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_peak(server.builder.clone(), stop.clone());
    let started = Instant::now();
    let mut offenders = Vec::new();
    for _ in 0..OFFENDERS {
        offenders.push(offender(server.addr).await);
    }

    // The offenders fill the budget.
    within(HANG_GUARD, "the budget filling up", async {
        while server.builder.memory_in_use() < BUDGET - 2 * MESSAGE {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    // A well-behaved client is served meanwhile: small messages at once
    // (well within the budget's timeout), then a 1 MiB echo, which may
    // wait for the largest holders to be shed.
    let url = format!("ws://{}/", server.addr);
    let (mut client, _) = within(HANG_GUARD, "connecting", sockeye::connect(&url))
        .await
        .unwrap();
    let small_start = Instant::now();
    for round in 0..50 {
        let text = format!("small message {round}");
        client.send(Message::text(text.clone())).await.unwrap();
        let echo = within(BUDGET_TIMEOUT, "a small echo", client.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echo.as_text(), Some(text.as_str()));
    }
    let small_echoes = small_start.elapsed();
    let large = Message::binary(vec![7u8; 1 << 20]);
    client.send(large.clone()).await.unwrap();
    let echo = within(HANG_GUARD, "a 1 MiB echo", client.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, large);

    // Every offender is either shed (the server aborted it with 1013,
    // and if a Close frame reached it, that is its code) or still
    // stalled (its message not read whole, or its echo queued and not
    // read). An offender shed while its echo was being written gets no
    // Close: none may follow the frame it does not read.
    // Time for a few rounds of shedding.
    tokio::time::sleep(4 * BUDGET_TIMEOUT).await;
    let mut endings = HashMap::new();
    while let Ok(ending) = server.endings.try_recv() {
        endings.insert(ending.peer, ending);
    }
    let mut fates = Vec::new();
    for offender in &mut offenders {
        let sending = !offender.writer.is_finished();
        match endings.get(&offender.local) {
            None if sending => fates.push("stalled while sending"),
            None => fates.push("sent, echo unread"),
            Some(ending) => {
                assert!(ending.aborted, "an offender ended otherwise: {ending:?}");
                let after = ending.at - started;
                assert!(after >= BUDGET_TIMEOUT, "shed after only {after:?}");
                let code = close_code_received(&mut offender.read).await;
                assert!(matches!(code, None | Some(1013)), "{code:?}");
                fates.push(match code {
                    Some(_) => "shed, received 1013",
                    None => "shed inside the echo",
                });
            }
        }
    }
    assert!(
        fates.iter().any(|fate| fate.starts_with("shed")),
        "nobody was shed: {fates:?}"
    );
    assert!(
        endings.values().all(|ending| ending.aborted),
        "a connection ended otherwise: {endings:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    assert!(
        peak <= BUDGET + OVERSHOOT,
        "accounted memory peaked at {peak} bytes, budget {BUDGET}"
    );
    eprintln!(
        "peak {peak} B of {BUDGET} B; small echoes in {small_echoes:?}; offenders: {fates:?}"
    );

    // Everything given back once the connections are gone.
    drop(client);
    drop(offenders);
    within(HANG_GUARD, "the budget emptying", async {
        while server.builder.memory_in_use() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_with_room_changes_nothing() {
    // The default budget (a quarter of the machine's memory): an 8 MiB
    // echo goes through at once, and the count returns to zero.
    let server = start_server_default().await;
    let url = format!("ws://{}/", server.0);
    let (mut client, _) = sockeye::connect(&url).await.unwrap();
    let message = Message::binary(vec![3u8; MESSAGE]);
    client.send(message.clone()).await.unwrap();
    let echo = within(HANG_GUARD, "an 8 MiB echo", client.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, message);
    client.close(CloseCode::NORMAL, "").await.unwrap();
    within(HANG_GUARD, "the budget emptying", async {
        while server.1.memory_in_use() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(server.1.get_memory_budget() >= 16 << 20);
}

async fn start_server_default() -> (SocketAddr, ServerBuilder, Serving) {
    let builder = ServerBuilder::new();
    if front() == Front::EventLoop {
        let server = LoopServer::start(builder.clone(), None, |_| {});
        return (server.addr, builder, Serving::EventLoop(server));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = builder.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept(tcp).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, builder, Serving::Tokio(task))
}
