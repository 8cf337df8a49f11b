//! The server's opening handshake over loopback TCP (RFC 6455 section 4.2):
//! a real `ServerBuilder` on a `TcpListener`, raw TCP clients that send
//! handcrafted requests, and the exact answer on the wire: status line,
//! key headers, the refusal's body, and what `accept` returns.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use sockeye::proto::handshake::{HandshakeErrorKind, rejection};
use sockeye::proto::{Config, Connection};
use sockeye::{Error, Message, Role, ServerBuilder, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this: a hang is a failure, not
/// a stuck CI job.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// The key of RFC 6455 section 1.3 and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

type Accepted = Result<(WebSocket<TcpStream>, Request<()>), Error>;

/// A server that accepts one TCP connection on an ephemeral loopback port
/// and runs `builder.accept_with_request` on it.
async fn serve(builder: ServerBuilder) -> (SocketAddr, JoinHandle<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        builder.accept_with_request(tcp).await
    });
    (addr, task)
}

/// The result of the server's `accept`, within the hang guard.
async fn outcome(task: JoinHandle<Accepted>) -> Accepted {
    tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("accept finished")
        .expect("accept did not panic")
}

/// The server's refusal: its status and its `HandshakeErrorKind`.
async fn refusal(task: JoinHandle<Accepted>) -> (StatusCode, HandshakeErrorKind) {
    match outcome(task).await {
        Err(Error::Handshake(error)) => {
            assert!(error.is_server_side());
            (error.status().expect("a status"), error.kind().clone())
        }
        Err(other) => panic!("expected a handshake refusal, got {other:?}"),
        Ok(_) => panic!("expected a handshake refusal, the request was accepted"),
    }
}

/// A request head: `request_line`, then `headers`, then the blank line.
fn head(request_line: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("{request_line}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// The headers of a valid handshake request to `addr`.
fn valid_headers(addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("Host", addr.to_string()),
        ("Upgrade", "websocket".into()),
        ("Connection", "Upgrade".into()),
        ("Sec-WebSocket-Key", KEY.into()),
        ("Sec-WebSocket-Version", "13".into()),
    ]
}

/// A valid request, edited by `edit` (remove, replace, add headers).
fn request_with(addr: SocketAddr, edit: impl FnOnce(&mut Vec<(&'static str, String)>)) -> Vec<u8> {
    let mut headers = valid_headers(addr);
    edit(&mut headers);
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    head("GET /chat HTTP/1.1", &borrowed)
}

fn without(headers: &mut Vec<(&'static str, String)>, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

fn replace(headers: &mut Vec<(&'static str, String)>, name: &'static str, value: &str) {
    without(headers, name);
    headers.push((name, value.to_owned()));
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct Answer {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(bytes)));
        let text = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Answer {
            status_line,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    /// The one value of header `name` (lowercase); panics if repeated.
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "header {name} repeated: {self:?}");
        first
    }

    /// Checks what every refusal has: the body announced by
    /// Content-Length, and `close` in Connection.
    fn assert_refusal_framing(&self) {
        let length: usize = self
            .header("content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        assert_eq!(length, self.body.len(), "{self:?}");
        let connection = self.header("connection").expect("a Connection header");
        assert!(
            connection
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close")),
            "{self:?}"
        );
    }
}

/// Connects, writes `request` in one write, and reads everything until the
/// server closes the connection (what a refused client sees).
async fn send_and_read_to_end(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(HANG_GUARD, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection after its refusal")
        .expect("the refusal was read without a reset");
    Answer::parse(&answer)
}

/// Reads a response head (up to and including the blank line) and returns
/// it with whatever followed it in the same reads.
async fn read_head(tcp: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 1024];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(HANG_GUARD, tcp.read(&mut buffer))
            .await
            .expect("a response head")
            .unwrap();
        assert_ne!(read, 0, "EOF before the end of the head: {bytes:?}");
        bytes.extend_from_slice(&buffer[..read]);
    }
    Answer::parse(&bytes)
}

/// A masked client frame carrying `text`, as a client engine writes it.
fn client_text_frame(text: &str) -> Vec<u8> {
    let mut conn = Connection::new(Role::Client, Config::default());
    conn.send_text(text.to_owned()).unwrap();
    let mut out = Vec::new();
    conn.data_to_send(&mut out);
    out
}

/// Sends `request`, expects a refusal with `status`, and returns what the
/// client saw and what `accept` returned.
async fn refused(
    builder: ServerBuilder,
    request: impl FnOnce(SocketAddr) -> Vec<u8>,
    status: u16,
) -> (Answer, HandshakeErrorKind) {
    let (addr, task) = serve(builder).await;
    let answer = send_and_read_to_end(addr, &request(addr)).await;
    let (server_status, kind) = refusal(task).await;
    let reason = StatusCode::from_u16(status).unwrap();
    assert_eq!(
        answer.status_line,
        format!(
            "HTTP/1.1 {status} {}",
            reason.canonical_reason().unwrap_or("")
        ),
        "{answer:?}"
    );
    assert_eq!(server_status.as_u16(), status, "accept's error status");
    (answer, kind)
}

// ----- success ----------------------------------------------------------

#[tokio::test]
async fn valid_request_is_switched_with_the_accept_key_of_section_1_3() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&request_with(addr, |_| {})).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    assert_eq!(answer.header("connection"), Some("Upgrade"));
    assert_eq!(answer.header("sec-websocket-accept"), Some(ACCEPT));
    assert_eq!(answer.header("sec-websocket-protocol"), None);
    assert_eq!(answer.header("sec-websocket-extensions"), None);
    assert!(answer.body.is_empty(), "nothing after the 101 head");

    let (mut ws, request) = outcome(task).await.expect("accepted");
    assert_eq!(request.uri().path(), "/chat");
    // The connection works: a frame from the raw client arrives.
    tcp.write_all(&client_text_frame("hi")).await.unwrap();
    let message = tokio::time::timeout(HANG_GUARD, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message.as_text(), Some("hi"));
}

#[tokio::test]
async fn the_accept_function_uses_the_default_policy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        sockeye::accept(tcp).await.map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&request_with(addr, |_| {})).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn accept_with_request_returns_path_query_and_headers() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut headers = valid_headers(addr);
    headers.push(("Cookie", "session=abc".into()));
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    tcp.write_all(&head("GET /rooms/7?user=ann&x=1 HTTP/1.1", &borrowed))
        .await
        .unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    let (_ws, request) = outcome(task).await.expect("accepted");
    assert_eq!(request.uri().path(), "/rooms/7");
    assert_eq!(request.uri().query(), Some("user=ann&x=1"));
    assert_eq!(request.headers()["cookie"], "session=abc");
    assert_eq!(request.headers()["host"], addr.to_string().as_str());
}

#[tokio::test]
async fn subprotocol_is_chosen_in_the_servers_order_and_named_in_the_101() {
    let builder = ServerBuilder::new().subprotocols(["chat.v2", "chat.v1"]);
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |h| {
        h.push(("Sec-WebSocket-Protocol", "chat.v1, chat.v2".into()))
    });
    tcp.write_all(&request).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("sec-websocket-protocol"), Some("chat.v2"));
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn no_common_subprotocol_is_accepted_without_one() {
    // RFC 6455 section 4.2.2 item 5.4: the server may answer without a
    // subprotocol; the client decides whether to go on.
    let builder = ServerBuilder::new().subprotocols(["chat.v2"]);
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |h| h.push(("Sec-WebSocket-Protocol", "mqtt".into())));
    tcp.write_all(&request).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("sec-websocket-protocol"), None);
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn extra_header_from_the_builder_is_in_the_101() {
    let builder = ServerBuilder::new().header(
        http::header::SET_COOKIE,
        HeaderValue::from_static("session=42; HttpOnly"),
    );
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&request_with(addr, |_| {})).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("set-cookie"), Some("session=42; HttpOnly"));
    assert_eq!(answer.header("sec-websocket-accept"), Some(ACCEPT));
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn request_written_one_byte_at_a_time_is_accepted() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    for byte in request_with(addr, |_| {}) {
        tcp.write_all(&[byte]).await.unwrap();
        tcp.flush().await.unwrap();
        // Let the server see each byte on its own.
        tokio::task::yield_now().await;
    }
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("sec-websocket-accept"), Some(ACCEPT));
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn frame_in_the_same_write_as_the_request_is_not_lost() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut bytes = request_with(addr, |_| {});
    bytes.extend_from_slice(&client_text_frame("early bird"));
    bytes.extend_from_slice(&client_text_frame("second"));
    tcp.write_all(&bytes).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    let (mut ws, _) = outcome(task).await.expect("accepted");
    for expected in ["early bird", "second"] {
        let message = tokio::time::timeout(HANG_GUARD, ws.recv())
            .await
            .expect("the frames sent with the request arrive")
            .unwrap()
            .unwrap();
        assert_eq!(message, Message::text(expected));
    }
}

// ----- a request the caller read itself ----------------------------------

/// A server that reads the request head itself (as one serving plain HTTP
/// on the same port does) and hands it to `accept_request`.
async fn serve_read_request(
    builder: ServerBuilder,
) -> (SocketAddr, JoinHandle<Result<WebSocket<TcpStream>, Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut parser = sockeye::proto::handshake::RequestParser::new();
        let mut buffer = [0u8; 4096];
        let (request, leftover) = loop {
            let read = tcp.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "EOF before the request head");
            match parser.parse(&buffer[..read]) {
                Ok(Some(parsed)) => break (parsed.head, buffer[parsed.consumed..read].to_vec()),
                Ok(None) => {}
                Err(error) => {
                    sockeye::answer_refusal(&mut tcp, &error).await;
                    return Err(Error::Handshake(error));
                }
            }
        };
        assert_eq!(request.uri().path(), "/chat");
        builder.accept_request(tcp, &request, &leftover).await
    });
    (addr, task)
}

#[tokio::test]
async fn a_request_read_by_the_caller_is_switched_and_keeps_its_early_frames() {
    let (addr, task) = serve_read_request(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut bytes = request_with(addr, |_| {});
    bytes.extend_from_slice(&client_text_frame("sent with the request"));
    tcp.write_all(&bytes).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(answer.header("sec-websocket-accept"), Some(ACCEPT));
    let mut ws = tokio::time::timeout(HANG_GUARD, task)
        .await
        .unwrap()
        .unwrap()
        .expect("accepted");
    let message = tokio::time::timeout(HANG_GUARD, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::text("sent with the request"));
    ws.send(Message::text("back")).await.unwrap();
    let mut echo = [0u8; 6];
    tokio::time::timeout(HANG_GUARD, tcp.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"\x81\x04back");
}

/// Sends `request` to a server that reads it itself, expects the refusal
/// `status_line` on the wire, and returns what `accept_request` (or the
/// parser) failed with.
async fn refused_read_request(
    builder: ServerBuilder,
    request: impl FnOnce(SocketAddr) -> Vec<u8>,
    status_line: &str,
) -> (Answer, sockeye::proto::handshake::HandshakeError) {
    let (addr, task) = serve_read_request(builder).await;
    let answer = send_and_read_to_end(addr, &request(addr)).await;
    assert_eq!(answer.status_line, status_line, "{answer:?}");
    answer.assert_refusal_framing();
    match tokio::time::timeout(HANG_GUARD, task)
        .await
        .unwrap()
        .unwrap()
    {
        Err(Error::Handshake(error)) => (answer, error),
        other => panic!("expected a handshake refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_read_by_the_caller_is_refused_with_its_status() {
    let builder = ServerBuilder::new().allow_origins(["https://good.example"]);
    let request = |addr| {
        request_with(addr, |headers| {
            headers.push(("Origin", "https://evil.example".into()));
        })
    };
    let (_, error) = refused_read_request(builder, request, "HTTP/1.1 403 Forbidden").await;
    assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn a_request_that_fails_to_parse_is_answered_with_its_status() {
    let request = |_| b"GET /chat HTTP/1.1\r\nno colon here\r\n\r\n".to_vec();
    let status = "HTTP/1.1 400 Bad Request";
    refused_read_request(ServerBuilder::new(), request, status).await;
}

#[tokio::test]
async fn a_request_read_by_the_caller_counts_against_the_connection_limit() {
    let builder = ServerBuilder::new().max_connections(0);
    let request = |addr| request_with(addr, |_| {});
    let status = "HTTP/1.1 503 Service Unavailable";
    let (answer, _) = refused_read_request(builder, request, status).await;
    assert_eq!(answer.header("retry-after"), Some("1"));
}

// ----- handshake timeout ------------------------------------------------

#[tokio::test]
async fn client_dribbling_slower_than_the_handshake_timeout_is_dropped() {
    let builder = ServerBuilder::new().handshake_timeout(Duration::from_millis(300));
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |_| {});
    let dribble = tokio::spawn(async move {
        // One byte every 50 ms: the whole request would take seconds.
        for byte in request {
            if tcp.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tcp
    });
    let started = std::time::Instant::now();
    let result = outcome(task).await;
    assert!(
        matches!(result, Err(Error::OpenTimeout)),
        "expected OpenTimeout, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up within the timeout's order of magnitude"
    );
    // What the dropped client sees is checked in
    // `dropped_dribbler_sees_the_connection_closed`.
    dribble.abort();
    let _ = dribble.await;
}

#[tokio::test]
async fn dropped_dribbler_sees_the_connection_closed() {
    let builder = ServerBuilder::new().handshake_timeout(Duration::from_millis(300));
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // Half a request, then silence.
    let request = request_with(addr, |_| {});
    tcp.write_all(&request[..20]).await.unwrap();
    assert!(matches!(outcome(task).await, Err(Error::OpenTimeout)));
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(HANG_GUARD, tcp.read(&mut buffer))
        .await
        .expect("the server closed the connection");
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "no answer expected, got {:?}",
            String::from_utf8_lossy(&buffer[..n])
        ),
    }
}

#[tokio::test]
async fn client_closing_before_the_end_of_the_head_fails_accept_without_hanging() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    drop(tcp);
    let result = outcome(task).await;
    assert!(
        matches!(result, Err(Error::UnexpectedEof)),
        "expected UnexpectedEof, got {result:?}"
    );
}

// ----- refusals: request line -------------------------------------------

#[tokio::test]
async fn post_is_405_with_allow_get() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            let headers = valid_headers(addr);
            let borrowed: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            head("POST /chat HTTP/1.1", &borrowed)
        },
        405,
    )
    .await;
    assert_eq!(answer.header("allow"), Some("GET"));
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::MethodNotAllowed);
}

#[tokio::test]
async fn http_1_0_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            let headers = valid_headers(addr);
            let borrowed: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            head("GET /chat HTTP/1.0", &borrowed)
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::UnsupportedHttpVersion);
}

#[tokio::test]
async fn relative_request_target_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            let headers = valid_headers(addr);
            let borrowed: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            head("GET * HTTP/1.1", &borrowed)
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidRequestTarget);
}

#[tokio::test]
async fn bare_lf_line_endings_are_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            format!(
                "GET / HTTP/1.1\nHost: {addr}\nUpgrade: websocket\nConnection: Upgrade\n\
                 Sec-WebSocket-Key: {KEY}\nSec-WebSocket-Version: 13\n\r\n\r\n"
            )
            .into_bytes()
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert!(
        matches!(kind, HandshakeErrorKind::MalformedHead(_)),
        "{kind:?}"
    );
}

// ----- refusals: headers ------------------------------------------------

#[tokio::test]
async fn missing_host_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| without(h, "Host")),
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidHost);
}

#[tokio::test]
async fn repeated_host_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| h.push(("Host", "other.example".into()))),
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidHost);
}

#[tokio::test]
async fn missing_key_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| without(h, "Sec-WebSocket-Key")),
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidKey);
}

#[tokio::test]
async fn repeated_key_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            request_with(addr, |h| {
                h.push(("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA==".into()))
            })
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidKey);
}

#[tokio::test]
async fn short_key_is_400() {
    // Valid base64, but of 5 bytes, not 16 (RFC 6455 section 4.2.1 item 5).
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| replace(h, "Sec-WebSocket-Key", "c2hvcnQ=")),
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidKey);
}

#[tokio::test]
async fn non_base64_key_is_400() {
    // 24 characters, the right length, but not base64.
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            request_with(addr, |h| {
                replace(h, "Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==")
            })
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidKey);
}

#[tokio::test]
async fn connection_without_upgrade_token_is_400() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| replace(h, "Connection", "keep-alive")),
        400,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidConnection);
}

#[tokio::test]
async fn connection_listing_upgrade_among_others_is_accepted() {
    let (addr, task) = serve(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |h| replace(h, "Connection", "keep-alive, Upgrade"));
    tcp.write_all(&request).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn version_8_is_426_naming_version_13() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| replace(h, "Sec-WebSocket-Version", "8")),
        426,
    )
    .await;
    // RFC 6455 section 4.4.
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::UnsupportedVersion);
}

#[tokio::test]
async fn missing_version_is_426_naming_version_13() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| without(h, "Sec-WebSocket-Version")),
        426,
    )
    .await;
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::UnsupportedVersion);
}

#[tokio::test]
async fn no_upgrade_header_is_426_naming_websocket() {
    // A plain HTTP GET: told what this resource speaks (RFC 7231 section
    // 6.5.15).
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| {
            request_with(addr, |h| {
                without(h, "Upgrade");
                replace(h, "Connection", "keep-alive");
            })
        },
        426,
    )
    .await;
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::InvalidUpgrade);
}

#[tokio::test]
async fn request_with_a_body_is_400() {
    let (answer, _) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| h.push(("Content-Length", "5".into()))),
        400,
    )
    .await;
    answer.assert_refusal_framing();
}

// ----- refusals: origin policy ------------------------------------------

#[tokio::test]
async fn foreign_origin_is_403_under_the_default_policy() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| h.push(("Origin", "https://evil.example".into()))),
        403,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::OriginRefused);
}

#[tokio::test]
async fn null_origin_is_403_under_the_default_policy() {
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| h.push(("Origin", "null".into()))),
        403,
    )
    .await;
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::OriginRefused);
}

#[tokio::test]
async fn origin_not_in_the_allow_list_is_403() {
    let builder = ServerBuilder::new().allow_origins(["https://good.example"]);
    let (_, kind) = refused(
        builder,
        |addr| request_with(addr, |h| h.push(("Origin", "https://evil.example".into()))),
        403,
    )
    .await;
    assert_eq!(kind, HandshakeErrorKind::OriginRefused);
}

/// Sends a valid request with `origin` to a server built by `builder` and
/// expects a 101.
async fn accepted_with_origin(builder: ServerBuilder, origin: Option<&str>) {
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let origin = origin.map(|origin| origin.replace("{addr}", &addr.to_string()));
    let request = request_with(addr, |h| {
        if let Some(origin) = origin {
            h.push(("Origin", origin));
        }
    });
    tcp.write_all(&request).await.unwrap();
    let answer = read_head(&mut tcp).await;
    assert_eq!(answer.status_line, "HTTP/1.1 101 Switching Protocols");
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn listed_origin_is_accepted_with_allow_origins() {
    let builder = ServerBuilder::new().allow_origins(["https://evil.example"]);
    accepted_with_origin(builder, Some("https://evil.example")).await;
}

#[tokio::test]
async fn any_origin_is_accepted_with_allow_any_origin() {
    accepted_with_origin(
        ServerBuilder::new().allow_any_origin(),
        Some("https://evil.example"),
    )
    .await;
}

#[tokio::test]
async fn same_host_origin_is_accepted_under_the_default_policy() {
    accepted_with_origin(ServerBuilder::new(), Some("http://{addr}")).await;
}

#[tokio::test]
async fn request_without_origin_is_accepted_under_the_default_policy() {
    accepted_with_origin(ServerBuilder::new(), None).await;
}

#[tokio::test]
async fn repeated_origin_is_400() {
    let (answer, _) = refused(
        ServerBuilder::new().allow_any_origin(),
        |addr| {
            request_with(addr, |h| {
                h.push(("Origin", "https://a.example".into()));
                h.push(("Origin", "https://b.example".into()));
            })
        },
        400,
    )
    .await;
    answer.assert_refusal_framing();
}

// ----- refusals: limits (RFC 6585 section 5) ----------------------------

#[tokio::test]
async fn head_over_the_size_limit_is_431() {
    // The default limit is 16 KiB; this head is 17 KiB of cookie. The
    // client writes it all before reading, as a real client does.
    let (answer, kind) = refused(
        ServerBuilder::new(),
        |addr| request_with(addr, |h| h.push(("Cookie", "a".repeat(17 * 1024)))),
        431,
    )
    .await;
    answer.assert_refusal_framing();
    assert!(
        matches!(kind, HandshakeErrorKind::HeadTooLarge { max: 16384 }),
        "{kind:?}"
    );
}

#[tokio::test]
async fn head_over_a_configured_size_limit_is_431() {
    let builder = ServerBuilder::new().max_head_size(512);
    let (answer, kind) = refused(
        builder,
        |addr| request_with(addr, |h| h.push(("Cookie", "a".repeat(600)))),
        431,
    )
    .await;
    answer.assert_refusal_framing();
    assert!(
        matches!(kind, HandshakeErrorKind::HeadTooLarge { max: 512 }),
        "{kind:?}"
    );
}

#[tokio::test]
async fn too_many_header_fields_is_431() {
    // The default limit is 64 fields; this request has 5 + 70.
    let names: Vec<&'static str> = (0..70)
        .map(|i| &*Box::leak(format!("X-Filler-{i}").into_boxed_str()))
        .collect();
    let (answer, kind) = refused(
        ServerBuilder::new(),
        move |addr| {
            request_with(addr, |h| {
                for name in names {
                    h.push((name, "x".into()));
                }
            })
        },
        431,
    )
    .await;
    answer.assert_refusal_framing();
    assert!(
        matches!(kind, HandshakeErrorKind::TooManyHeaders { max: 64 }),
        "{kind:?}"
    );
}

#[tokio::test]
async fn too_many_header_fields_for_a_configured_limit_is_431() {
    let builder = ServerBuilder::new().max_headers(6);
    let (answer, kind) = refused(
        builder,
        |addr| {
            request_with(addr, |h| {
                h.push(("X-One", "1".into()));
                h.push(("X-Two", "2".into()));
            })
        },
        431,
    )
    .await;
    answer.assert_refusal_framing();
    assert!(
        matches!(kind, HandshakeErrorKind::TooManyHeaders { max: 6 }),
        "{kind:?}"
    );
}

// ----- refusals: the application's filter -------------------------------

#[tokio::test]
async fn filter_request_refuses_with_its_own_401() {
    let builder = ServerBuilder::new().filter_request(|request| {
        let authorized = request
            .headers()
            .get("authorization")
            .is_some_and(|value| value == "Bearer let-me-in");
        if authorized {
            return None;
        }
        let mut response: Response<Bytes> = rejection(StatusCode::UNAUTHORIZED, "who are you?");
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"chat\""),
        );
        Some(response)
    });
    let (answer, kind) = refused(builder.clone(), |addr| request_with(addr, |_| {}), 401).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"chat\"")
    );
    assert_eq!(answer.body, b"who are you?\n");
    answer.assert_refusal_framing();
    assert_eq!(kind, HandshakeErrorKind::Refused);

    // The same filter lets an authorized request through.
    let (addr, task) = serve(builder).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |h| {
        h.push(("Authorization", "Bearer let-me-in".into()))
    });
    tcp.write_all(&request).await.unwrap();
    assert_eq!(
        read_head(&mut tcp).await.status_line,
        "HTTP/1.1 101 Switching Protocols"
    );
    outcome(task).await.expect("accepted");
}

#[tokio::test]
async fn filter_is_not_consulted_for_invalid_requests() {
    // Protocol checks come first: a broken request is 400 even when the
    // filter would refuse everything with 401.
    let builder =
        ServerBuilder::new().filter_request(|_| Some(rejection(StatusCode::UNAUTHORIZED, "no")));
    let (_, kind) = refused(
        builder,
        |addr| request_with(addr, |h| without(h, "Sec-WebSocket-Key")),
        400,
    )
    .await;
    assert_eq!(kind, HandshakeErrorKind::InvalidKey);
}
