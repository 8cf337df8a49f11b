//! Shared by the hostile-input tests (`hostile_*.rs`): a real sockeye
//! server on loopback (tokio or the event loop, see `front`) that reports
//! how each connection ended, and the raw pieces an attacker writes by
//! hand (request heads, masked frames) and reads back (response heads,
//! Close frames).
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockeye::proto::Closed;
use sockeye::{Error, Event, ServerBuilder};

use super::front::{Front, LoopEnd, LoopServer, Serving, front};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Every wait is bounded by this: a hang is a failure, not a stuck CI job.
pub const HANG_GUARD: Duration = Duration::from_secs(10);

/// The key of RFC 6455 section 1.3.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The mask every hand-written client frame uses (RFC 6455 section 5.7).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// How a connection to the test server ended.
#[derive(Debug)]
pub enum Outcome {
    /// `accept` failed: refused (with the status it answered), timed out,
    /// or the client went away.
    Refused(Error),
    /// The handshake succeeded and the connection ended so.
    Ended(Closed),
    /// The handshake succeeded and the connection failed with an error
    /// outside the protocol (I/O).
    Failed(Error),
}

impl Outcome {
    /// The HTTP status `accept` answered, for a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Refused(Error::Handshake(error)) => error.status().map(|s| s.as_u16()),
            _ => None,
        }
    }
}

/// A sockeye server on an ephemeral loopback port that echoes data
/// messages until each connection ends, and reports every ending on
/// `outcomes`. Which server is [`front()`]'s choice: the tokio one (each
/// connection accepted with the builder in its own task) or the event
/// loop (one loop thread, an echo `Handler`).
pub struct TestServer {
    pub addr: SocketAddr,
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    _server: Serving,
}

impl TestServer {
    /// A server with `builder`, a listen backlog of 4096, and default
    /// socket buffers.
    pub async fn start(builder: ServerBuilder) -> TestServer {
        TestServer::start_with_buffers(builder, None).await
    }

    /// A server whose accepted sockets get `buffer` bytes of kernel send
    /// and receive buffer (inherited from the listener), so that tests of
    /// backpressure measure sockeye and not the kernel's autotuning.
    pub async fn start_with_buffers(builder: ServerBuilder, buffer: Option<u32>) -> TestServer {
        if front() == Front::EventLoop {
            return TestServer::start_event_loop(builder, buffer);
        }
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = buffer {
            socket.set_recv_buffer_size(size).unwrap();
            socket.set_send_buffer_size(size).unwrap();
        }
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let builder = builder.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let outcome = serve(builder, tcp).await;
                    let _ = sender.send(outcome);
                });
            }
        });
        TestServer {
            addr,
            outcomes,
            _server: Serving::Tokio(task),
        }
    }

    /// The event-loop server: `Handler::close` reports
    /// [`Outcome::Ended`], `Handler::refused` [`Outcome::Refused`]. (The
    /// loop hands every end to `close` with its `Closed`, I/O failures
    /// included, so it never reports [`Outcome::Failed`].)
    fn start_event_loop(builder: ServerBuilder, buffer: Option<u32>) -> TestServer {
        let (sender, outcomes) = mpsc::unbounded_channel();
        let server = LoopServer::start(builder, buffer, move |end| {
            let outcome = match end {
                LoopEnd::Refused { error, .. } => Outcome::Refused(error),
                LoopEnd::Ended { closed, .. } => Outcome::Ended(closed),
            };
            let _ = sender.send(outcome);
        });
        TestServer {
            addr: server.addr,
            outcomes,
            _server: Serving::EventLoop(server),
        }
    }

    /// The next connection's outcome, within the hang guard.
    pub async fn outcome(&mut self) -> Outcome {
        within(HANG_GUARD, "a connection outcome", self.outcomes.recv())
            .await
            .expect("the server is running")
    }
}

async fn serve(builder: ServerBuilder, tcp: TcpStream) -> Outcome {
    let mut ws = match builder.accept(tcp).await {
        Ok(ws) => ws,
        Err(error) => return Outcome::Refused(error),
    };
    loop {
        match ws.recv_event().await {
            Some(Ok(Event::Message(message))) => {
                if let Err(error) = ws.send(message).await {
                    return Outcome::Failed(error);
                }
            }
            Some(Ok(Event::Closed(closed))) => return Outcome::Ended(closed),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Outcome::Failed(error),
            None => return Outcome::Failed(Error::AlreadyClosed),
        }
    }
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

/// A request head: `GET target HTTP/1.1`, `headers`, the blank line.
pub fn head(target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("GET {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// The header fields of a valid handshake request (no Origin).
pub fn valid_headers(host: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Host", host.to_owned()),
        ("Upgrade", "websocket".to_owned()),
        ("Connection", "Upgrade".to_owned()),
        ("Sec-WebSocket-Key", KEY.to_owned()),
        ("Sec-WebSocket-Version", "13".to_owned()),
    ]
}

/// A valid request to `addr`, with `edit` applied to its header fields.
pub fn request_with(
    addr: SocketAddr,
    edit: impl FnOnce(&mut Vec<(&'static str, String)>),
) -> Vec<u8> {
    let mut headers = valid_headers(&addr.to_string());
    edit(&mut headers);
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    head("/chat", &borrowed)
}

/// A valid request to `addr`.
pub fn valid_request(addr: SocketAddr) -> Vec<u8> {
    request_with(addr, |_| {})
}

/// A response head as read off the wire.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// Lowercase names, trimmed values, in order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// Every value of header `name` (lowercase).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of header `name`, if present once; panics if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(values.len() <= 1, "{name} repeated in {self:?}");
        values.first().copied()
    }
}

/// Reads a response head; `None` if the connection ended (EOF or reset)
/// before a complete head arrived. Never reads more than 64 KiB.
pub async fn read_response_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<ResponseHead> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: what follows the head (frames) stays in the stream.
    while !bytes.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => bytes.push(byte[0]),
            Ok(_) | Err(_) => return None,
        }
        assert!(bytes.len() < 64 * 1024, "a response head over 64 KiB");
    }
    let text = String::from_utf8(bytes).expect("an ASCII response head");
    let mut lines = text.trim_end().split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Some(ResponseHead { status, headers })
}

/// Connects, writes `request` whole, and reads the response head.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> ResponseHead {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    // The server may answer before the whole request is written (and
    // reset the connection); what counts is its answer.
    let _ = tcp.write_all(request).await;
    within(HANG_GUARD, "a response head", read_response_head(&mut tcp))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the connection ended before a response to {:?}",
                String::from_utf8_lossy(&request[..request.len().min(300)])
            )
        })
}

/// Opens a WebSocket connection by hand: a valid request, a 101 checked.
pub async fn open(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(&valid_request(addr)).await.unwrap();
    let answer = within(HANG_GUARD, "a 101", read_response_head(&mut tcp))
        .await
        .expect("a response");
    assert_eq!(answer.status, 101, "{answer:?}");
    tcp
}

/// A frame header: FIN, opcode, mask bit and key, payload length in its
/// shortest encoding (or the 64-bit one when `long` is set).
pub fn frame_header(fin: bool, opcode: u8, len: u64, masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&MASK);
    }
    out
}

/// A whole masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, true);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ MASK[index % 4]),
    );
    out
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one unmasked server frame; `None` at EOF or reset.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Option<ServerFrame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    assert_eq!(head[1] & 0x80, 0, "a server frame must not be masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.ok()?;
            u64::from(u16::from_be_bytes(len))
        }
        127 => {
            let mut len = [0u8; 8];
            stream.read_exact(&mut len).await.ok()?;
            u64::from_be_bytes(len)
        }
        len => u64::from(len),
    };
    assert!(len <= 1 << 24, "a server frame of {len} bytes");
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(ServerFrame {
        fin: head[0] & 0x80 != 0,
        opcode: head[0] & 0x0f,
        payload,
    })
}

/// What the server's Close said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseSeen {
    /// A Close frame with this code.
    Code(u16),
    /// A Close frame without a payload.
    Empty,
    /// The connection ended without a Close frame.
    NoClose,
}

/// Reads server frames, skipping data and Pongs, until a Close frame or the
/// end of the connection; returns what the Close carried.
pub async fn read_close<S: AsyncRead + Unpin>(stream: &mut S) -> CloseSeen {
    loop {
        match read_frame(stream).await {
            None => return CloseSeen::NoClose,
            Some(frame) if frame.opcode == 8 => {
                return match frame.payload.len() {
                    0 => CloseSeen::Empty,
                    1 => panic!("the server sent a one-byte Close payload"),
                    _ => CloseSeen::Code(u16::from_be_bytes([frame.payload[0], frame.payload[1]])),
                };
            }
            Some(_) => {}
        }
    }
}

/// Writes `bytes` in the background while the caller reads; returns how
/// many bytes went out before the server stopped taking them (an error),
/// or all of them.
pub fn write_in_background<W>(mut writer: W, chunks: Vec<Vec<u8>>) -> JoinHandle<usize>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut sent = 0;
        for chunk in chunks {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    })
}

/// Measures how long `future` takes.
pub async fn timed<T>(future: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let value = future.await;
    (value, start.elapsed())
}

/// A small deterministic generator (no dependency for a test's chunk sizes).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Whether the connection was closed by the server: a read returns EOF or
/// a reset within `limit`, after discarding anything it sent.
pub async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}
