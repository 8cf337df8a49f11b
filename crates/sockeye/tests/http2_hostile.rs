//! Hostile and malformed input to the HTTP/2 server (RFC 8441 over RFC
//! 9113, RFC 6455 inside the streams): refusals with their status on a
//! connection that goes on, a stream's failure confined to its stream,
//! stream floods and rapid resets bounded, flow control per stream, drain
//! and idle connections closed. Nothing may panic, and every connection's
//! serving future must end.
//!
//! Where the `h2` crate's client cannot be made to misbehave (more streams
//! than the server allows, a request written before the server's SETTINGS
//! are read, a flood of HEADERS + RST_STREAM, a client that never answers
//! a PING), the test writes raw frames (see [`Raw`]).
#![cfg(feature = "http2")]

use std::future::poll_fn;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::{Method, Request, Response, StatusCode};
use sockeye::http2::H2Stream;
use sockeye::{CloseCode, Event, Message, Role, ServerBuilder, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const WITHIN: Duration = Duration::from_secs(5);

// --- the server ------------------------------------------------------------

/// How a server-side WebSocket ended, as its handler saw it.
#[derive(Debug)]
struct Outcome {
    path: String,
    /// The Close code the engine reports (1006 when no Close was
    /// exchanged).
    code: Option<u16>,
    /// The error, if it ended abnormally.
    error: Option<String>,
}

/// A loopback server serving every connection with `serve_tcp`. Paths:
/// `/stall` holds its WebSocket without reading for 30 s; anything else
/// echoes. Every WebSocket's end goes to `outcomes`.
struct Harness {
    address: SocketAddr,
    server: ServerBuilder,
    /// Connections whose `serve_tcp` has returned.
    served: Arc<AtomicUsize>,
    /// Panics caught in `serve_tcp` or a handler.
    panics: Arc<AtomicUsize>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl Harness {
    async fn start(server: ServerBuilder) -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let panics = Arc::new(AtomicUsize::new(0));
        let (report, outcomes) = mpsc::unbounded_channel();
        let (accepted, counted, caught) = (server.clone(), served.clone(), panics.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (server, served, panics) = (accepted.clone(), counted.clone(), caught.clone());
                let report = report.clone();
                let handler_panics = panics.clone();
                tokio::spawn(async move {
                    let serve = server.serve_tcp(tcp, move |ws, request| {
                        let report = report.clone();
                        let panics = handler_panics.clone();
                        async move {
                            let handled = AssertUnwindSafe(handle(ws, request, report));
                            if handled.catch_unwind().await.is_err() {
                                panics.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                    if AssertUnwindSafe(serve).catch_unwind().await.is_err() {
                        panics.fetch_add(1, Ordering::SeqCst);
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Harness {
            address,
            server,
            served,
            panics,
            outcomes,
        }
    }

    fn authority(&self) -> String {
        self.address.to_string()
    }

    /// The next WebSocket end the handlers reported.
    async fn outcome(&mut self) -> Outcome {
        tokio::time::timeout(WITHIN, self.outcomes.recv())
            .await
            .expect("no WebSocket ended on the server")
            .unwrap()
    }

    /// Waits until no WebSocket is open and `connections` serving futures
    /// have returned; then checks nothing panicked.
    async fn settles(&self, connections: usize) {
        let settled = tokio::time::timeout(WITHIN, async {
            while self.server.open_connections() != 0
                || self.served.load(Ordering::SeqCst) < connections
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "not settled: {} WebSockets open, {} of {connections} connections served",
            self.server.open_connections(),
            self.served.load(Ordering::SeqCst)
        );
        assert_eq!(self.panics.load(Ordering::SeqCst), 0, "a panic was caught");
    }
}

async fn handle(
    mut ws: WebSocket<sockeye::ServerStream>,
    request: Request<()>,
    report: mpsc::UnboundedSender<Outcome>,
) {
    let path = request.uri().path().to_owned();
    if path == "/stall" {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let outcome = loop {
        match ws.recv_event().await {
            Some(Ok(Event::Message(message))) => {
                if let Err(error) = ws.send(message).await {
                    break (None, Some(error.to_string()));
                }
            }
            Some(Ok(Event::Closed(closed))) => {
                break (
                    Some(closed.code().as_u16()),
                    closed.error.as_ref().map(ToString::to_string),
                );
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => break (None, Some(error.to_string())),
            None => break (None, Some("ended without a Closed event".into())),
        }
    };
    let _ = report.send(Outcome {
        path,
        code: outcome.0,
        error: outcome.1,
    });
}

// --- an h2-crate client ----------------------------------------------------

async fn h2_client(address: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send.ready().await.unwrap()
}

fn extended_connect(authority: &str, path: &str) -> http::request::Builder {
    let mut builder = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{authority}{path}"))
        .header("sec-websocket-version", "13");
    builder
        .extensions_mut()
        .unwrap()
        .insert(h2::ext::Protocol::from_static("websocket"));
    builder
}

/// Sends `request` (its stream left open) and waits for the response.
async fn request(
    send: &mut SendRequest<Bytes>,
    request: Request<()>,
) -> (Response<RecvStream>, SendStream<Bytes>) {
    let (response, stream) = send.send_request(request, false).unwrap();
    let response = tokio::time::timeout(WITHIN, response)
        .await
        .expect("no response")
        .unwrap();
    (response, stream)
}

/// A response's status, and its body as text.
async fn refusal(send: &mut SendRequest<Bytes>, request: Request<()>) -> (StatusCode, String) {
    let (response, _stream) = self::request(send, request).await;
    let status = response.status();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WITHIN, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Opens a WebSocket on `send`'s connection, asserting the 200.
async fn open(send: &mut SendRequest<Bytes>, authority: &str, path: &str) -> WebSocket<H2Stream> {
    let request = extended_connect(authority, path).body(()).unwrap();
    let (response, stream) = self::request(send, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let transport = H2Stream::new(stream, response.into_body());
    WebSocket::from_raw(transport, Role::Client, Default::default(), &[])
}

async fn echoes(ws: &mut WebSocket<H2Stream>, message: Message) {
    ws.send(message.clone()).await.unwrap();
    let echoed = tokio::time::timeout(WITHIN, ws.recv())
        .await
        .expect("no echo")
        .unwrap()
        .unwrap();
    assert_eq!(echoed, message);
}

// --- WebSocket frames by hand ----------------------------------------------

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A single-frame message (FIN set), masked with `mask` if given.
fn ws_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => frame.push(masked | n as u8),
        n if n <= 0xffff => {
            frame.push(masked | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(masked | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => frame.extend_from_slice(payload),
    }
    frame
}

/// A frame from the server: (opcode, payload). Asserts it is unmasked
/// and whole-message (FIN).
fn parse_ws_frame(buffer: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buffer.len() < 2 {
        return None;
    }
    assert_eq!(buffer[1] & 0x80, 0, "a server frame was masked");
    let (length, start) = match buffer[1] & 0x7f {
        126 if buffer.len() >= 4 => (u16::from_be_bytes([buffer[2], buffer[3]]) as usize, 4),
        127 if buffer.len() >= 10 => (
            u64::from_be_bytes(buffer[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buffer.len() < start + length {
        return None;
    }
    let opcode = buffer[0] & 0x0f;
    let payload = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    Some((opcode, payload))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

// --- HTTP/2 frames by hand -------------------------------------------------

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The `:status` of a HEADERS frame, when HPACK sent it as one of the
    /// static table's entries (200, 204, 206, 304, 400, 404, 500: the
    /// first field of every response h2 encodes).
    fn status(&self) -> Option<u16> {
        assert_eq!(self.kind, HEADERS);
        match self.payload.first()? {
            0x88 => Some(200),
            0x8c => Some(400),
            0x8d => Some(404),
            0x8e => Some(500),
            _ => None,
        }
    }

    fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks(6)
            .map(|entry| {
                (
                    u16::from_be_bytes([entry[0], entry[1]]),
                    u32::from_be_bytes(entry[2..6].try_into().unwrap()),
                )
            })
            .collect()
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `prefix`-bit prefix (RFC 7541 section 5.1).
fn hpack_integer(out: &mut Vec<u8>, first: u8, prefix: u32, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// Header fields as literals without indexing, new names, no Huffman
/// (RFC 7541 section 6.2.2): the simplest valid header block.
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        hpack_integer(&mut block, 0, 7, name.len());
        block.extend_from_slice(name.as_bytes());
        hpack_integer(&mut block, 0, 7, value.len());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

fn connect_headers(stream: u32, authority: &str, path: &str) -> Vec<u8> {
    let block = header_block(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("sec-websocket-version", "13"),
    ]);
    frame(HEADERS, END_HEADERS, stream, &block)
}

/// A client speaking HTTP/2 by hand over TCP.
struct Raw {
    tcp: TcpStream,
    input: Vec<u8>,
    /// Answer the server's PINGs (a client that does not is hostile).
    answer_pings: bool,
}

/// What reading a frame came to.
#[derive(Debug)]
enum Read {
    Frame(Frame),
    /// The server closed the connection (or reset it).
    Closed,
    TimedOut,
}

impl Raw {
    /// Connects and sends the preface and an empty SETTINGS, nothing else.
    async fn connect(address: SocketAddr) -> Raw {
        let mut raw = Raw::tcp(address).await;
        let mut hello = sockeye::http2::PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        raw.send(&hello).await;
        raw
    }

    async fn tcp(address: SocketAddr) -> Raw {
        Raw {
            tcp: TcpStream::connect(address).await.unwrap(),
            input: Vec::new(),
            answer_pings: true,
        }
    }

    /// Writes `bytes`; a write error (the server closed) is ignored: what
    /// follows reads the outcome.
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// The next frame within `within`, answering SETTINGS, PINGs and
    /// giving back window for DATA on the way (the frame is returned
    /// too).
    async fn read(&mut self, within: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.input.len() >= 9 {
                let length = u32::from_be_bytes([0, self.input[0], self.input[1], self.input[2]]);
                let end = 9 + length as usize;
                if self.input.len() >= end {
                    let frame = Frame {
                        kind: self.input[3],
                        flags: self.input[4],
                        stream: u32::from_be_bytes(self.input[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.input[9..end].to_vec(),
                    };
                    self.input.drain(..end);
                    if std::env::var_os("H2_TRACE").is_some() {
                        eprintln!("<- {frame:?}");
                    }
                    self.answer(&frame).await;
                    return Read::Frame(frame);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk)).await {
                Err(_) => return Read::TimedOut,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(n)) => self.input.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn answer(&mut self, frame: &Frame) {
        match frame.kind {
            SETTINGS if frame.flags & ACK == 0 => {
                self.send(&self::frame(SETTINGS, ACK, 0, &[])).await
            }
            PING if frame.flags & ACK == 0 && self.answer_pings => {
                self.send(&self::frame(PING, ACK, 0, &frame.payload)).await
            }
            DATA if !frame.payload.is_empty() => {
                let increment = (frame.payload.len() as u32).to_be_bytes();
                let mut updates = self::frame(WINDOW_UPDATE, 0, 0, &increment);
                updates.extend(self::frame(WINDOW_UPDATE, 0, frame.stream, &increment));
                self.send(&updates).await;
            }
            _ => {}
        }
    }

    /// The next frame, which must come within [`WITHIN`].
    async fn next(&mut self) -> Frame {
        match self.read(WITHIN).await {
            Read::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Reads until the server has sent its SETTINGS and acknowledged
    /// ours; returns its SETTINGS.
    async fn settle(&mut self) -> Frame {
        let (mut theirs, mut acked) = (None, false);
        while theirs.is_none() || !acked {
            let frame = self.next().await;
            match (frame.kind, frame.flags & ACK) {
                (SETTINGS, 0) => theirs = Some(frame),
                (SETTINGS, _) => acked = true,
                _ => {}
            }
        }
        theirs.unwrap()
    }

    /// Reads frames until each of `streams` got its response HEADERS;
    /// returns their statuses, in the order of `streams`.
    async fn statuses(&mut self, streams: &[u32]) -> Vec<Option<u16>> {
        let mut statuses = vec![None; streams.len()];
        let mut missing = streams.len();
        while missing > 0 {
            let frame = self.next().await;
            let Some(index) = streams.iter().position(|&stream| stream == frame.stream) else {
                continue;
            };
            assert_ne!(frame.kind, RST_STREAM, "a stream was reset: {frame:?}");
            if frame.kind == HEADERS && statuses[index].is_none() {
                statuses[index] = Some(frame.status());
                missing -= 1;
            }
        }
        statuses.into_iter().map(Option::unwrap).collect()
    }

    /// Sends `message` as a masked text frame on `stream` and reads until
    /// its echo comes back.
    async fn echoes(&mut self, stream: u32, message: &str) {
        let data = ws_frame(0x1, message.as_bytes(), Some(MASK));
        self.send(&frame(DATA, 0, stream, &data)).await;
        let mut buffer = Vec::new();
        loop {
            let frame = self.next().await;
            if frame.stream != stream || frame.kind != DATA {
                continue;
            }
            buffer.extend_from_slice(&frame.payload);
            if let Some((opcode, payload)) = parse_ws_frame(&mut buffer) {
                assert_eq!((opcode, payload.as_slice()), (0x1, message.as_bytes()));
                return;
            }
        }
    }
}

// --- the tests --------------------------------------------------------------

/// RFC 8441 section 4: a WebSocket is opened by an *extended* CONNECT; a
/// plain CONNECT (no `:protocol`) asks for a TCP tunnel, which this server
/// does not offer. It gets a 4xx with a reason, and the connection goes on.
#[tokio::test]
async fn plain_connect_without_protocol_is_refused_and_the_connection_goes_on() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri(authority.as_str())
        .body(())
        .unwrap();
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}");
    assert!(!reason.trim().is_empty(), "the refusal gives no reason");
    let mut ws = open(&mut send, &authority, "/after").await;
    echoes(&mut ws, Message::text("still serving")).await;
    assert_eq!(harness.server.stats().refused_total(), 1);
}

/// RFC 8441 section 3: the server sends SETTINGS_ENABLE_CONNECT_PROTOCOL
/// in its first SETTINGS, before it reads anything, so a client that
/// writes its extended CONNECT at once, before it has read the server's
/// SETTINGS, is still served. (A client must not send `:protocol` before
/// it has seen the setting; a server that enabled it receives such a
/// request only after having sent it, so accepting is correct. Whether
/// sockeye's *client* waits for the setting is tested on its side.)
#[tokio::test]
async fn extended_connect_written_before_the_servers_settings_is_served() {
    let mut harness = Harness::start(ServerBuilder::new()).await;
    let mut raw = Raw::tcp(harness.address).await;
    let mut hello = sockeye::http2::PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    hello.extend(connect_headers(1, &harness.authority(), "/early"));
    raw.send(&hello).await;
    let first = raw.next().await;
    assert_eq!((first.kind, first.flags), (SETTINGS, 0), "{first:?}");
    let settings = first.settings();
    assert!(
        settings.contains(&(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1)),
        "{settings:?}"
    );
    assert!(
        settings.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 100)),
        "{settings:?}"
    );
    assert_eq!(raw.statuses(&[1]).await, [Some(200)]);
    raw.echoes(1, "early bird").await;
    let close = ws_frame(0x8, &close_payload(1000, ""), Some(MASK));
    raw.send(&frame(DATA, END_STREAM, 1, &close)).await;
    let outcome = harness.outcome().await;
    assert_eq!((outcome.code, outcome.error), (Some(1000), None));
    drop(raw);
    harness.settles(1).await;
}

/// RFC 8441 section 5 and RFC 6455 section 4.2: the headers a WebSocket
/// CONNECT must and must not carry, the server's Host and Origin policy,
/// and subprotocol negotiation, each refused with its status on one
/// connection that goes on serving.
#[tokio::test]
async fn header_refusals_have_their_status_and_subprotocols_are_negotiated() {
    let harness = Harness::start(
        ServerBuilder::new()
            .allowed_hosts(["127.0.0.1", "localhost"])
            .allow_origins(["https://good.example"])
            .subprotocols(["chat.v2", "chat.v1"]),
    )
    .await;
    let authority = harness.authority();
    let port = harness.address.port();
    let mut send = h2_client(harness.address).await;

    let mut request = extended_connect(&authority, "/").body(()).unwrap();
    request.headers_mut().remove("sec-websocket-version");
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no version: {reason}");

    let mut request = extended_connect(&authority, "/").body(()).unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-version", "8".parse().unwrap());
    let (response, _) = self::request(&mut send, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "version 8");
    assert_eq!(
        response.headers().get("sec-websocket-version").unwrap(),
        "13",
        "the refusal of version 8 names 13"
    );

    let request = extended_connect(&authority, "/")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a key: {reason}");

    let request = extended_connect(&format!("evil.example:{port}"), "/")
        .body(())
        .unwrap();
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(
        status,
        StatusCode::MISDIRECTED_REQUEST,
        "a foreign :authority: {reason}"
    );

    let request = extended_connect(&authority, "/")
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a foreign origin: {reason}");

    let request = extended_connect(&format!("localhost:{port}"), "/")
        .header("origin", "https://good.example")
        .header("sec-websocket-protocol", "x-unknown, chat.v1, chat.v2")
        .body(())
        .unwrap();
    let (response, stream) = self::request(&mut send, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat.v2",
        "the server's preference among those offered"
    );
    let transport = H2Stream::new(stream, response.into_body());
    let mut ws = WebSocket::from_raw(transport, Role::Client, Default::default(), &[]);
    echoes(&mut ws, Message::text("negotiated")).await;
    let stats = harness.server.stats();
    assert_eq!(stats.refused_total(), 5, "{stats:?}");
    assert_eq!(stats.accepted_http2, 1);
}

/// RFC 8441 section 4 / RFC 9113 section 8.5: the CONNECT stream is the
/// tunnel, so a CONNECT whose HEADERS end the stream, or that announces a
/// body, is not a WebSocket request: 400.
#[tokio::test]
async fn connect_with_end_stream_or_a_body_is_400() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let request = extended_connect(&authority, "/").body(()).unwrap();
    let (response, _) = send.send_request(request, true).unwrap();
    let response = tokio::time::timeout(WITHIN, response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "END_STREAM");

    let request = extended_connect(&authority, "/")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let (status, reason) = refusal(&mut send, request).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "content-length 5: {reason}"
    );

    let mut ws = open(&mut send, &authority, "/after").await;
    echoes(&mut ws, Message::text("still serving")).await;
}

/// RFC 9113 section 5.1.2: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS
/// are refused with RST_STREAM(REFUSED_STREAM), and the ones within it
/// work.
#[tokio::test]
async fn streams_beyond_max_http2_streams_are_refused() {
    let harness = Harness::start(ServerBuilder::new().max_http2_streams(4)).await;
    let authority = harness.authority();
    let mut raw = Raw::connect(harness.address).await;
    let settings = raw.settle().await.settings();
    assert!(
        settings.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 4)),
        "{settings:?}"
    );
    let mut flood = Vec::new();
    for stream in (1..=11).step_by(2) {
        flood.extend(connect_headers(stream, &authority, "/flood"));
    }
    raw.send(&flood).await;
    let (mut opened, mut refused) = (Vec::new(), Vec::new());
    while opened.len() + refused.len() < 6 {
        let frame = raw.next().await;
        match frame.kind {
            HEADERS => {
                assert_eq!(frame.status(), Some(200), "{frame:?}");
                opened.push(frame.stream);
            }
            RST_STREAM => {
                assert_eq!(frame.error_code(), REFUSED_STREAM, "{frame:?}");
                refused.push(frame.stream);
            }
            _ => {}
        }
    }
    opened.sort_unstable();
    assert_eq!(opened, [1, 3, 5, 7]);
    assert_eq!(refused, [9, 11]);
    for stream in opened {
        raw.echoes(stream, &format!("stream {stream}")).await;
    }
    assert_eq!(harness.server.stats().accepted_http2, 4);
    drop(raw);
    harness.settles(1).await;
}

/// CVE-2023-44487 ("rapid reset"): a client that opens streams and resets
/// them at once never holds more than the stream limit, yet makes the
/// server work for each. The connection must be cut or stay bounded, the
/// server must go on serving other connections, and every WebSocket
/// admitted for the flood must be given back.
#[tokio::test]
async fn rapid_reset_is_bounded_and_other_connections_are_served() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut raw = Raw::connect(harness.address).await;
    raw.settle().await;
    const STREAMS: u32 = 20_000;
    let mut batch = Vec::new();
    for index in 0..STREAMS {
        let stream = 2 * index + 1;
        batch.extend(connect_headers(stream, &authority, "/reset"));
        batch.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
        if batch.len() > 64 * 1024 {
            raw.send(&batch).await;
            batch.clear();
        }
    }
    raw.send(&batch).await;
    // What the server did: a GOAWAY, then the connection closed.
    let mut go_away = None;
    loop {
        match raw.read(Duration::from_secs(10)).await {
            Read::Frame(frame) if frame.kind == GOAWAY => go_away = Some(frame.error_code()),
            Read::Frame(_) => {}
            Read::Closed => break,
            Read::TimedOut => panic!("the connection was neither closed nor quiet"),
        }
    }
    let stats = harness.server.stats();
    assert_eq!(
        go_away,
        Some(ENHANCE_YOUR_CALM),
        "the server's GOAWAY ({stats:?})"
    );
    assert!(
        stats.accepted_http2 < u64::from(STREAMS) / 10,
        "the server admitted {} of {STREAMS} reset streams before cutting the connection",
        stats.accepted_http2
    );
    // Other connections are served.
    let mut send = h2_client(harness.address).await;
    let mut ws = open(&mut send, &authority, "/healthy").await;
    echoes(&mut ws, Message::text("healthy")).await;
    let _ = ws.close(CloseCode::NORMAL, "").await;
    drop((send, ws));
    harness.settles(2).await;
}

/// The slow form of the same: streams reset after their 200, each a
/// WebSocket admitted and then torn down, 50 at a time. Each is given
/// back (its place under the connection limits, its count) and ends
/// abnormally, and the connection goes on.
#[tokio::test]
async fn streams_reset_after_their_200_are_all_given_back() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut raw = Raw::connect(harness.address).await;
    raw.settle().await;
    let mut next_stream = 1;
    for _ in 0..10 {
        let streams: Vec<u32> = (0..50).map(|index| next_stream + 2 * index).collect();
        next_stream += 100;
        let mut opening = Vec::new();
        for &stream in &streams {
            opening.extend(connect_headers(stream, &authority, "/reset"));
        }
        raw.send(&opening).await;
        assert!(raw.statuses(&streams).await.iter().all(|s| *s == Some(200)));
        let mut resets = Vec::new();
        for &stream in &streams {
            resets.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
        }
        raw.send(&resets).await;
    }
    raw.send(&connect_headers(next_stream, &authority, "/last"))
        .await;
    assert_eq!(raw.statuses(&[next_stream]).await, [Some(200)]);
    raw.echoes(next_stream, "the connection goes on").await;
    drop(raw);
    harness.settles(1).await;
    let stats = harness.server.stats();
    assert_eq!(stats.accepted_http2, 501, "{stats:?}");
    assert_eq!(stats.closed_abnormal, 501, "{stats:?}");
}

/// A client may send DATA on the CONNECT stream before the 200 arrives
/// (RFC 8441 section 5 lets it send frames once it has the 200, but a
/// client that does not wait sends nothing harmful): the bytes wait in
/// the stream, and are read as WebSocket frames after the 200, as the
/// bytes that follow an HTTP/1.1 Upgrade request are.
#[tokio::test]
async fn data_before_the_200_is_processed_after_it() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let request = extended_connect(&authority, "/eager").body(()).unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    stream
        .send_data(Bytes::from(ws_frame(0x1, b"before 200", Some(MASK))), false)
        .unwrap();
    let response = tokio::time::timeout(WITHIN, response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let transport = H2Stream::new(stream, response.into_body());
    let mut ws = WebSocket::from_raw(transport, Role::Client, Default::default(), &[]);
    let echoed = tokio::time::timeout(WITHIN, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::text("before 200"));
    echoes(&mut ws, Message::text("after 200")).await;
}

/// RFC 8441 section 5: RST_STREAM is a WebSocket's TCP reset. A client
/// that resets its stream in the middle of a frame ends that WebSocket
/// (abnormally, on the server), and its neighbour on the same connection
/// goes on.
#[tokio::test]
async fn rst_stream_mid_message_ends_only_that_websocket() {
    let mut harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let mut neighbour = open(&mut send, &authority, "/neighbour").await;
    let request = extended_connect(&authority, "/reset").body(()).unwrap();
    let (response, mut stream) = self::request(&mut send, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let frame = ws_frame(0x2, &[7u8; 1000], Some(MASK));
    stream
        .send_data(Bytes::copy_from_slice(&frame[..500]), false)
        .unwrap();
    echoes(&mut neighbour, Message::text("the half frame is out")).await;
    stream.send_reset(h2::Reason::CANCEL);
    let outcome = harness.outcome().await;
    assert_eq!(outcome.path, "/reset");
    assert!(
        outcome.error.is_some(),
        "a reset is an abnormal end: {outcome:?}"
    );
    echoes(&mut neighbour, Message::binary(vec![1u8; 70_000])).await;
    let closed = neighbour.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert!(closed.error.is_none(), "{closed:?}");
    let outcome = harness.outcome().await;
    assert_eq!(
        (outcome.path.as_str(), outcome.code),
        ("/neighbour", Some(1000))
    );
    drop((send, stream, response, neighbour));
    harness.settles(1).await;
    let stats = harness.server.stats();
    assert_eq!(
        (stats.closed_abnormal, stats.closed_clean),
        (1, 1),
        "{stats:?}"
    );
}

/// RFC 6455 section 5.1: an unmasked client frame fails the WebSocket
/// with 1002; over HTTP/2 that WebSocket's stream ends (END_STREAM after
/// the Close, or RST_STREAM), and only it: the neighbour goes on.
#[tokio::test]
async fn an_unmasked_frame_fails_only_its_stream_with_1002() {
    let mut harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let mut neighbour = open(&mut send, &authority, "/neighbour").await;
    let request = extended_connect(&authority, "/unmasked").body(()).unwrap();
    let (response, mut stream) = self::request(&mut send, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    stream
        .send_data(Bytes::from(ws_frame(0x1, b"naked", None)), false)
        .unwrap();
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let mut close = None;
    let ended = tokio::time::timeout(WITHIN, async {
        loop {
            match body.data().await {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    buffer.extend_from_slice(&chunk);
                    while let Some((opcode, payload)) = parse_ws_frame(&mut buffer) {
                        assert_eq!(opcode, 0x8, "only a Close may follow");
                        close = Some(u16::from_be_bytes([payload[0], payload[1]]));
                    }
                }
                // END_STREAM.
                None => return None,
                Some(Err(error)) => return error.reason(),
            }
        }
    })
    .await
    .expect("the failed WebSocket's stream did not end");
    assert_eq!(close, Some(1002));
    assert!(
        matches!(ended, None | Some(h2::Reason::CANCEL)),
        "the stream ended with {ended:?}"
    );
    let outcome = harness.outcome().await;
    assert_eq!(
        (outcome.path.as_str(), outcome.code),
        ("/unmasked", Some(1002))
    );
    echoes(&mut neighbour, Message::text("unaffected")).await;
}

/// RFC 9113 section 5.2 as the WebSocket's backpressure: a server
/// WebSocket that does not read stops its own stream after one window
/// (64 KiB) while its neighbour on the connection goes on.
#[tokio::test]
async fn a_websocket_that_does_not_read_stalls_only_its_own_stream() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut send = h2_client(harness.address).await;
    let mut neighbour = open(&mut send, &authority, "/neighbour").await;
    let request = extended_connect(&authority, "/stall").body(()).unwrap();
    let (response, mut stream) = self::request(&mut send, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut sent = 0usize;
    loop {
        stream.reserve_capacity(16 * 1024);
        let capacity = tokio::time::timeout(
            Duration::from_millis(500),
            poll_fn(|cx| stream.poll_capacity(cx)),
        )
        .await;
        match capacity {
            Ok(Some(Ok(0))) => {}
            Ok(Some(Ok(n))) => {
                stream.send_data(Bytes::from(vec![0u8; n]), false).unwrap();
                sent += n;
                assert!(
                    sent <= 65_535,
                    "sent {sent} bytes to a WebSocket that does not read"
                );
            }
            Ok(other) => panic!("capacity: {other:?}"),
            Err(_) => break,
        }
    }
    assert!(sent >= 60_000, "the stream stalled after only {sent} bytes");
    echoes(&mut neighbour, Message::binary(vec![3u8; 100_000])).await;
    drop(response);
}

/// A drain (RFC 6455 section 7.4.1's 1001, RFC 9113 section 6.8's GOAWAY):
/// every WebSocket of the connection gets Close 1001, the connection
/// sends GOAWAY, and once the closes are answered it ends.
#[tokio::test]
async fn a_drain_closes_every_websocket_with_1001_and_sends_goaway() {
    let harness = Harness::start(ServerBuilder::new()).await;
    let authority = harness.authority();
    let mut raw = Raw::connect(harness.address).await;
    raw.settle().await;
    let mut opening = connect_headers(1, &authority, "/one");
    opening.extend(connect_headers(3, &authority, "/two"));
    raw.send(&opening).await;
    assert_eq!(raw.statuses(&[1, 3]).await, [Some(200), Some(200)]);
    for stream in [1, 3] {
        raw.echoes(stream, "before the drain").await;
    }
    harness
        .server
        .drain_handle()
        .start(sockeye::DrainConfig::new().window(Duration::ZERO));
    let (mut closes, mut go_away, mut ended) = (Vec::new(), None, Vec::new());
    let mut buffers = [Vec::new(), Vec::new()];
    while closes.len() < 2 || go_away.is_none() || ended.len() < 2 {
        let frame = raw.next().await;
        match frame.kind {
            GOAWAY => go_away = Some(frame.error_code()),
            RST_STREAM => panic!("a drained stream was reset: {frame:?}"),
            DATA => {
                let buffer = &mut buffers[(frame.stream / 2) as usize];
                buffer.extend_from_slice(&frame.payload);
                if let Some((opcode, payload)) = parse_ws_frame(buffer) {
                    assert_eq!(opcode, 0x8);
                    closes.push((frame.stream, u16::from_be_bytes([payload[0], payload[1]])));
                    let reply = ws_frame(0x8, &payload[..2], Some(MASK));
                    raw.send(&self::frame(DATA, END_STREAM, frame.stream, &reply))
                        .await;
                }
                if frame.flags & END_STREAM != 0 {
                    ended.push(frame.stream);
                }
            }
            _ => {}
        }
    }
    closes.sort_unstable();
    assert_eq!(closes, [(1, 1001), (3, 1001)]);
    assert_eq!(go_away, Some(0), "GOAWAY NO_ERROR");
    assert!(
        matches!(raw.read(WITHIN).await, Read::Closed | Read::Frame(_)),
        "the connection did not end"
    );
    harness.settles(1).await;
}

/// RFC 9113 section 6.8 and the server's handshake timeout: an HTTP/2
/// connection that opens no stream is sent GOAWAY after the handshake
/// timeout and closed, as an HTTP/1.1 connection that sends no request is.
#[tokio::test]
async fn an_idle_connection_is_closed_after_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let harness = Harness::start(ServerBuilder::new().handshake_timeout(timeout)).await;
    let mut raw = Raw::connect(harness.address).await;
    raw.settle().await;
    let started = tokio::time::Instant::now();
    let mut go_away = None;
    loop {
        match raw.read(WITHIN).await {
            Read::Frame(frame) if frame.kind == GOAWAY => go_away = Some(started.elapsed()),
            Read::Frame(_) => {}
            Read::Closed => break,
            Read::TimedOut => panic!("the idle connection was not closed"),
        }
    }
    let go_away = go_away.expect("no GOAWAY");
    assert!(go_away >= timeout / 2, "GOAWAY after {go_away:?}");
    assert!(
        started.elapsed() < timeout * 4,
        "closed after {:?}",
        started.elapsed()
    );
    harness.settles(1).await;
}

/// As above, with a client that never answers the server's PING: h2's
/// graceful shutdown waits for that PING's answer before its last GOAWAY,
/// so the connection must be cut by the server's own bound.
#[tokio::test]
async fn an_idle_connection_that_ignores_pings_is_still_closed() {
    let timeout = Duration::from_millis(300);
    let harness = Harness::start(ServerBuilder::new().handshake_timeout(timeout)).await;
    let mut raw = Raw::connect(harness.address).await;
    raw.answer_pings = false;
    raw.settle().await;
    let started = tokio::time::Instant::now();
    loop {
        match raw.read(WITHIN).await {
            Read::Frame(_) => {}
            Read::Closed => break,
            Read::TimedOut => panic!("the idle connection that ignores PINGs was not closed"),
        }
    }
    assert!(
        started.elapsed() < timeout * 6,
        "closed after {:?}",
        started.elapsed()
    );
    harness.settles(1).await;
}

/// A connection that never sends the preface, or sends it and then
/// nothing (no SETTINGS), is closed within the handshake timeout (twice
/// it at most: one for telling the version, one for HTTP/2's own
/// handshake).
#[tokio::test]
async fn a_connection_without_preface_or_settings_is_closed() {
    let timeout = Duration::from_millis(300);
    let harness = Harness::start(ServerBuilder::new().handshake_timeout(timeout)).await;
    let mut silent = Raw::tcp(harness.address).await;
    let mut preface_only = Raw::tcp(harness.address).await;
    preface_only.answer_pings = false;
    preface_only.send(sockeye::http2::PREFACE).await;
    let started = tokio::time::Instant::now();
    for raw in [&mut silent, &mut preface_only] {
        loop {
            match raw.read(WITHIN).await {
                Read::Frame(_) => {}
                Read::Closed => break,
                Read::TimedOut => panic!("the connection was not closed"),
            }
        }
    }
    assert!(
        started.elapsed() < timeout * 6,
        "closed after {:?}",
        started.elapsed()
    );
    harness.settles(2).await;
}
