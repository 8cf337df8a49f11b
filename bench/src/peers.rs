//! The benchmark's echo servers built on other implementations, plus the
//! raw TCP floor. Each is what a user of that crate would write from its
//! documentation: read a message, send it back, on one thread.
//!
//! - `raw`: no WebSocket at all. It writes back what it reads, through one
//!   read buffer shared by every connection of the thread (what an
//!   optimized server keeps per idle connection: nothing), so it is the
//!   floor on CPU and memory for moving the same bytes. It is a tokio task
//!   per connection, like the WebSocket servers here.
//! - `raw-mio`: the same echo on one mio event loop, connections in a
//!   slab, no task and no runtime ([`crate::raw_mio`]): the floor for an
//!   event-loop server.
//! - `raw-readiness`: a prototype of the same loop as one tokio task
//!   driving every socket through tokio's readiness API
//!   ([`crate::raw_readiness`]).
//! - `tokio-tungstenite`: `accept_async_with_config` on the TCP stream,
//!   `next()` and `send()` (no permessage-deflate: tungstenite has none).
//! - `fastwebsockets`: `WebSocket::after_handshake` on the TCP stream (the
//!   HTTP handshake is answered here, as its docs leave it to the user),
//!   in a `FragmentCollector`, `read_frame()` and `write_frame()`
//!   (no permessage-deflate either).
//! - `yawc`: its server path, `WebSocket::upgrade_with_options` under
//!   hyper's HTTP/1.1 server, `next()` and `send()`; permessage-deflate at
//!   level 1 with context takeover (sockeye's defaults) when asked.
//!
//! Every server sets TCP_NODELAY, validates UTF-8 in text messages (the
//! RFC requires it; yawc needs it switched on) and accepts messages up to
//! 64 MiB.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest message the servers accept.
pub const MAX_MESSAGE: usize = 64 << 20;

/// An echo server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// TCP echo, no WebSocket: a tokio task per connection.
    Raw,
    /// TCP echo on one mio event loop ([`crate::raw_mio`]).
    RawMio,
    /// TCP echo as one tokio task driving every socket through tokio's
    /// readiness API, a prototype ([`crate::raw_readiness`]).
    RawReadiness,
    /// tokio-tungstenite.
    Tungstenite,
    /// fastwebsockets.
    Fastwebsockets,
    /// yawc.
    Yawc,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 6] = [
        Peer::Raw,
        Peer::RawMio,
        Peer::RawReadiness,
        Peer::Tungstenite,
        Peer::Fastwebsockets,
        Peer::Yawc,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Raw => "raw",
            Peer::RawMio => "raw-mio",
            Peer::RawReadiness => "raw-readiness",
            Peer::Tungstenite => "tokio-tungstenite",
            Peer::Fastwebsockets => "fastwebsockets",
            Peer::Yawc => "yawc",
        }
    }

    /// The peer called `name`.
    pub fn from_name(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|peer| peer.name() == name)
    }

    /// Whether it can negotiate permessage-deflate.
    pub fn supports_deflate(self) -> bool {
        self == Peer::Yawc
    }
}

/// Listens on `listen`, prints `listening on ADDR` and serves forever on
/// a single-threaded runtime (`raw-mio`: on its own event loop, without
/// one).
pub fn run(peer: Peer, listen: &str, deflate: bool) -> io::Result<()> {
    if deflate && !peer.supports_deflate() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no permessage-deflate", peer.name()),
        ));
    }
    match peer {
        Peer::RawMio => return crate::raw_mio::run(listen),
        Peer::RawReadiness => return crate::raw_readiness::run(listen),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(peer, listener, deflate).await
    })
}

/// Accepts connections on `listener` and echoes on each, forever.
/// `raw-mio` runs no tokio: it is an error here ([`run`] starts it).
pub async fn serve(peer: Peer, listener: TcpListener, deflate: bool) -> io::Result<()> {
    match peer {
        Peer::RawMio => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "raw-mio runs its own event loop, not on tokio",
            ));
        }
        Peer::RawReadiness => return crate::raw_readiness::serve(listener).await,
        _ => {}
    }
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to close.
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // One spawn per peer: a task is as large as its future, and one
        // future matching on the peer would be as large as the largest.
        match peer {
            Peer::Raw => tokio::spawn(report(raw_echo(tcp))),
            Peer::RawMio | Peer::RawReadiness => unreachable!("served above"),
            Peer::Tungstenite => tokio::spawn(report(tungstenite_echo(tcp))),
            Peer::Fastwebsockets => tokio::spawn(report(fastwebsockets_echo(tcp))),
            Peer::Yawc => tokio::spawn(report(yawc_serve(tcp, deflate))),
        };
    }
}

/// Runs a connection; prints how it failed when `SOCKEYE_BENCH_DEBUG` is
/// set.
async fn report(connection: impl Future<Output = io::Result<()>>) {
    if let Err(error) = connection.await
        && std::env::var_os("SOCKEYE_BENCH_DEBUG").is_some()
    {
        eprintln!("connection: {error}");
    }
}

/// Bytes read at once by the raw server.
const RAW_READ: usize = 64 * 1024;

thread_local! {
    /// The raw server's read buffer, shared by the thread's connections.
    static RAW_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; RAW_READ]);
}

/// Writes back what it reads. The read buffer is the thread's; only what
/// the socket would not take at once is copied into the connection's own
/// memory and written before the next read.
async fn raw_echo(mut tcp: TcpStream) -> io::Result<()> {
    loop {
        tcp.readable().await?;
        let rest = RAW_BUFFER.with_borrow_mut(|buffer| -> io::Result<Option<Vec<u8>>> {
            let read = match tcp.try_read(buffer) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) => return Err(error),
            };
            let mut written = 0;
            while written < read {
                match tcp.try_write(&buffer[written..read]) {
                    Ok(count) => written += count,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error),
                }
            }
            Ok((written < read).then(|| buffer[written..read].to_vec()))
        });
        match rest {
            Ok(Some(rest)) => tcp.write_all(&rest).await?,
            Ok(None) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

async fn tungstenite_echo(tcp: TcpStream) -> io::Result<()> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config))
        .await
        .map_err(io::Error::other)?;
    while let Some(message) = ws.next().await {
        let message = message.map_err(io::Error::other)?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await.map_err(io::Error::other)?;
        }
    }
    Ok(())
}

async fn fastwebsockets_echo(mut tcp: TcpStream) -> io::Result<()> {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    accept_handshake(&mut tcp).await?;
    let mut ws = WebSocket::after_handshake(tcp, Role::Server);
    ws.set_max_message_size(MAX_MESSAGE);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await.map_err(io::Error::other)?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => {
                ws.write_frame(frame).await.map_err(io::Error::other)?;
            }
            _ => {}
        }
    }
}

/// Answers a WebSocket upgrade request with 101 (for fastwebsockets,
/// which leaves the HTTP side to its user). The client must wait for the
/// answer before it sends frames.
pub async fn accept_handshake(tcp: &mut TcpStream) -> io::Result<()> {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let read = tcp.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(at) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(invalid("request head too large"));
        }
    };
    if end != head.len() {
        return Err(invalid("bytes after the request head"));
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    request
        .parse(&head)
        .map_err(|error| invalid(&error.to_string()))?;
    let key = request
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("sec-websocket-key"))
        .ok_or_else(|| invalid("no Sec-WebSocket-Key"))?
        .value;
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await
}

async fn yawc_serve(tcp: TcpStream, deflate: bool) -> io::Result<()> {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let service = service_fn(move |mut request| async move {
        let mut options = yawc::Options::default()
            .with_limits(MAX_MESSAGE + 1, 2 * MAX_MESSAGE)
            .with_utf8();
        if deflate {
            options = options.with_compression_level(yawc::CompressionLevel::fast());
        }
        let (response, upgrade) = yawc::WebSocket::upgrade_with_options(&mut request, options)?;
        tokio::spawn(async move {
            if let Ok(ws) = upgrade.await {
                let _ = yawc_echo(ws).await;
            }
        });
        Ok::<_, yawc::WebSocketError>(response)
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await
        .map_err(io::Error::other)
}

async fn yawc_echo(mut ws: yawc::HttpWebSocket) -> Result<(), yawc::WebSocketError> {
    use yawc::OpCode;
    while let Some(frame) = ws.next().await {
        if matches!(frame.opcode(), OpCode::Text | OpCode::Binary) {
            ws.send(frame).await?;
        }
    }
    Ok(())
}

/// Starts `peer` on a thread of its own for tests: its address.
pub fn spawn_for_test(peer: Peer, deflate: bool) -> io::Result<SocketAddr> {
    if peer == Peer::RawMio {
        return crate::raw_mio::spawn_for_test();
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("a listener");
            let _ = serve(peer, listener, deflate).await;
        });
    });
    Ok(address)
}
