//! The client's opening handshake over loopback TCP (RFC 6455 section
//! 4.1): `ClientBuilder::connect` against a raw TCP "server" that answers
//! handcrafted responses. Checks what the client sends (request line,
//! Host, Authorization, Origin, custom headers) and how each response the
//! client must refuse makes `connect` fail.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use sockeye::proto::handshake::{HandshakeError, HandshakeErrorKind, accept_key};
use sockeye::proto::{Config, Connection, Event};
use sockeye::{ClientBuilder, DeflateConfig, Error, Message, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this: a hang is a failure.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// What the raw server does after writing its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Closes the connection.
    Close,
    /// Keeps it open and hands it to the test.
    Keep,
}

/// A request as the raw server read it.
#[derive(Debug)]
struct Received {
    request_line: String,
    /// Names lowercased, in order.
    headers: Vec<(String, String)>,
}

impl Received {
    fn parse(head: &str) -> Received {
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap().to_owned();
        let headers = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Received {
            request_line,
            headers,
        }
    }

    /// All values of header `name` (lowercase).
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of header `name`; panics if repeated.
    fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "header {name} repeated: {self:?}");
        all.first().copied()
    }
}

/// A raw server on an ephemeral loopback port: accepts one connection,
/// reads the request head, writes `respond(accept)` (`accept` being the
/// right `Sec-WebSocket-Accept` for the request's key) in one write, then
/// closes or keeps the connection.
async fn raw_server(
    after: After,
    respond: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, JoinHandle<(Received, Option<TcpStream>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        // Byte by byte, so nothing after the head is consumed here.
        while !head.ends_with(b"\r\n\r\n") {
            let read = tcp.read(&mut byte).await.unwrap();
            assert_eq!(read, 1, "EOF inside the request head");
            head.push(byte[0]);
        }
        let received = Received::parse(std::str::from_utf8(&head).unwrap());
        let key = received
            .header("sec-websocket-key")
            .expect("the client sent a key")
            .to_owned();
        let response = respond(&accept_key(key.as_bytes()));
        tcp.write_all(&response).await.unwrap();
        match after {
            After::Close => {
                let _ = tcp.shutdown().await;
                (received, None)
            }
            After::Keep => (received, Some(tcp)),
        }
    });
    (addr, task)
}

/// The raw server's view, within the hang guard.
async fn received(
    task: JoinHandle<(Received, Option<TcpStream>)>,
) -> (Received, Option<TcpStream>) {
    tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("the raw server finished")
        .expect("the raw server did not panic")
}

/// A valid 101 for `accept`, plus `extra` header lines (each ending in
/// CRLF).
fn switching(accept: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// `connect` within the hang guard.
async fn connect(
    builder: ClientBuilder,
) -> Result<
    (
        sockeye::WebSocket<sockeye::ClientStream>,
        http::Response<()>,
    ),
    Error,
> {
    tokio::time::timeout(HANG_GUARD, builder.connect())
        .await
        .expect("connect finished")
}

/// The handshake error of a failed `connect`.
async fn handshake_error(builder: ClientBuilder) -> HandshakeError {
    match connect(builder).await {
        Err(Error::Handshake(error)) => {
            assert!(!error.is_server_side());
            error
        }
        Err(other) => panic!("expected a handshake error, got {other:?}"),
        Ok(_) => panic!("expected a handshake error, the handshake succeeded"),
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

// ----- what the client sends --------------------------------------------

#[tokio::test]
async fn request_has_the_path_query_host_with_port_and_handshake_headers() {
    let (addr, task) = raw_server(After::Keep, |accept| switching(accept, "")).await;
    let (_ws, response) = connect(ClientBuilder::new(&url(addr, "/chat/room?user=ann")))
        .await
        .expect("connected");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let (request, _) = received(task).await;
    assert_eq!(request.request_line, "GET /chat/room?user=ann HTTP/1.1");
    // RFC 6455 section 4.1 item 4: the port, since it is not the default.
    assert_eq!(
        request.header("host"),
        Some(format!("127.0.0.1:{}", addr.port()).as_str())
    );
    assert!(
        request
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    );
    assert!(
        request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade"))
    );
    assert_eq!(request.header("sec-websocket-version"), Some("13"));
    let key = request.header("sec-websocket-key").unwrap();
    assert!(
        sockeye::proto::handshake::is_valid_key(key.as_bytes()),
        "{key:?}"
    );
    // permessage-deflate is offered by default, as browsers do.
    assert_eq!(
        request.header("sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits")
    );
    // Nothing that was not asked for.
    for absent in ["origin", "authorization", "sec-websocket-protocol"] {
        assert_eq!(request.header(absent), None, "{absent}");
    }
}

#[tokio::test]
async fn root_url_without_a_path_requests_slash() {
    let (addr, task) = raw_server(After::Keep, |accept| switching(accept, "")).await;
    connect(ClientBuilder::new(&format!("ws://{addr}")))
        .await
        .expect("connected");
    let (request, _) = received(task).await;
    assert_eq!(request.request_line, "GET / HTTP/1.1");
}

#[tokio::test]
async fn each_connection_sends_a_fresh_key() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (addr, task) = raw_server(After::Keep, |accept| switching(accept, "")).await;
        connect(ClientBuilder::new(&url(addr, "/")))
            .await
            .expect("connected");
        let (request, _) = received(task).await;
        keys.push(request.header("sec-websocket-key").unwrap().to_owned());
    }
    assert_ne!(
        keys[0], keys[1],
        "RFC 6455 section 4.1 item 7: a random key"
    );
}

#[tokio::test]
async fn userinfo_becomes_basic_authorization() {
    let (addr, task) = raw_server(After::Keep, |accept| switching(accept, "")).await;
    let url = format!("ws://user:pa%20ss@127.0.0.1:{}/secret", addr.port());
    connect(ClientBuilder::new(&url)).await.expect("connected");
    let (request, _) = received(task).await;
    // base64("user:pa ss")
    assert_eq!(
        request.header("authorization"),
        Some("Basic dXNlcjpwYSBzcw==")
    );
    assert_eq!(request.request_line, "GET /secret HTTP/1.1");
    // The credentials never reach Host.
    assert_eq!(
        request.header("host"),
        Some(format!("127.0.0.1:{}", addr.port()).as_str())
    );
}

#[tokio::test]
async fn origin_subprotocols_extensions_and_custom_headers_are_sent() {
    let (addr, task) = raw_server(After::Keep, |accept| switching(accept, "")).await;
    let builder = ClientBuilder::new(&url(addr, "/"))
        .origin("https://app.example")
        .subprotocols(["chat.v2", "chat.v1"])
        .extensions_header("x-test; level=2")
        .header("cookie", "session=abc")
        .header("x-trace-id", "42");
    connect(builder).await.expect("connected");
    let (request, _) = received(task).await;
    assert_eq!(request.header("origin"), Some("https://app.example"));
    assert_eq!(
        request.header("sec-websocket-protocol"),
        Some("chat.v2, chat.v1")
    );
    assert_eq!(
        request.header("sec-websocket-extensions"),
        Some("x-test; level=2")
    );
    assert_eq!(request.header("cookie"), Some("session=abc"));
    assert_eq!(request.header("x-trace-id"), Some("42"));
}

// ----- success ----------------------------------------------------------

#[tokio::test]
async fn chosen_subprotocol_is_in_the_response() {
    let (addr, task) = raw_server(After::Keep, |accept| {
        switching(accept, "Sec-WebSocket-Protocol: chat.v1\r\n")
    })
    .await;
    let builder = ClientBuilder::new(&url(addr, "/")).subprotocols(["chat.v2", "chat.v1"]);
    let (_ws, response) = connect(builder).await.expect("connected");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    received(task).await;
}

#[tokio::test]
async fn frame_right_after_the_101_is_delivered_and_the_connection_works() {
    // The server's first frame rides in the same write as its 101.
    let mut server = Connection::new(Role::Server, Config::default());
    server.send_text("welcome").unwrap();
    let mut first_frame = Vec::new();
    server.data_to_send(&mut first_frame);
    let (addr, task) = raw_server(After::Keep, move |accept| {
        let mut bytes = switching(accept, "");
        bytes.extend_from_slice(&first_frame);
        bytes
    })
    .await;
    let (mut ws, _) = connect(ClientBuilder::new(&url(addr, "/")))
        .await
        .expect("connected");
    let message = tokio::time::timeout(HANG_GUARD, ws.recv())
        .await
        .expect("the first frame was kept")
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::text("welcome"));

    // And the other way: the client's (masked) frame reaches the server.
    let (_, tcp) = received(task).await;
    let mut tcp = tcp.unwrap();
    ws.send(Message::text("thanks")).await.unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(HANG_GUARD, tcp.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buffer[1] & 0x80, 0x80, "client frames are masked");
    server.receive_data(&buffer[..read]);
    match server.next_event() {
        Some(Event::Message(message)) => assert_eq!(message, Message::text("thanks")),
        other => panic!("expected the client's message, got {other:?}"),
    }
}

// ----- refusals the client reports ---------------------------------------
//
// Most raw servers below close the connection after a bad 101, so the
// client's wait for a refusal body ends at once; see
// `refused_101_does_not_wait_for_a_body` for a server that stays.

#[tokio::test]
async fn non_101_status_carries_the_status_head_and_body() {
    // Content-Length says 7; the bytes after are not part of the body.
    let (addr, task) = raw_server(After::Keep, |_| {
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Reason: test\r\n\
          Content-Length: 7\r\n\r\ngo awayEXTRA"
            .to_vec()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(error.kind(), &HandshakeErrorKind::UnexpectedStatus);
    assert_eq!(error.body().map(|b| &b[..]), Some(&b"go away"[..]));
    assert_eq!(error.response().unwrap().headers()["x-reason"], "test");
    received(task).await;
}

#[tokio::test]
async fn non_101_body_without_length_is_read_until_the_server_closes() {
    let (addr, task) = raw_server(After::Close, |_| {
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\ntry later".to_vec()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(error.body().map(|b| &b[..]), Some(&b"try later"[..]));
    received(task).await;
}

#[tokio::test]
async fn plain_http_200_is_refused() {
    let (addr, task) = raw_server(After::Close, |_| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.status(), Some(StatusCode::OK));
    assert_eq!(error.kind(), &HandshakeErrorKind::UnexpectedStatus);
    received(task).await;
}

#[tokio::test]
async fn wrong_accept_is_refused() {
    let (addr, task) = raw_server(After::Close, |_| {
        // The accept value of another key (RFC 6455 section 1.3's).
        switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "")
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidAccept);
    assert_eq!(error.status(), None, "a 101 with bad headers has no status");
    received(task).await;
}

#[tokio::test]
async fn missing_accept_is_refused() {
    let (addr, task) = raw_server(After::Close, |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_vec()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidAccept);
    received(task).await;
}

#[tokio::test]
async fn repeated_accept_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        switching(accept, &format!("Sec-WebSocket-Accept: {accept}\r\n"))
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidAccept);
    received(task).await;
}

#[tokio::test]
async fn missing_upgrade_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidUpgrade);
    assert_eq!(error.status(), None);
    received(task).await;
}

#[tokio::test]
async fn upgrade_to_another_protocol_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidUpgrade);
    received(task).await;
}

#[tokio::test]
async fn missing_connection_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidConnection);
    assert_eq!(error.status(), None);
    received(task).await;
}

#[tokio::test]
async fn refused_101_does_not_wait_for_a_body() {
    // A 101 with a wrong accept value, from a server that keeps the
    // connection open: the refusal needs nothing more from the server.
    let (addr, task) = raw_server(After::Keep, |_| {
        switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "")
    })
    .await;
    let started = std::time::Instant::now();
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidAccept);
    assert_eq!(error.body(), None);
    // Nothing to wait for: well under the 2 s the body read allows.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "connect waited {:?} for a body after a 101",
        started.elapsed()
    );
    received(task).await;
}

#[tokio::test]
async fn http_1_0_switching_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        format!(
            "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.kind(), &HandshakeErrorKind::UnsupportedHttpVersion);
    received(task).await;
}

#[tokio::test]
async fn unoffered_subprotocol_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        switching(accept, "Sec-WebSocket-Protocol: mqtt\r\n")
    })
    .await;
    let builder = ClientBuilder::new(&url(addr, "/")).subprotocols(["chat.v2", "chat.v1"]);
    let error = handshake_error(builder).await;
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::UnofferedSubprotocol("mqtt".into())
    );
    received(task).await;
}

#[tokio::test]
async fn subprotocol_when_none_was_offered_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        switching(accept, "Sec-WebSocket-Protocol: chat\r\n")
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::UnofferedSubprotocol("chat".into())
    );
    received(task).await;
}

#[tokio::test]
async fn unoffered_extension_is_refused() {
    let (addr, task) = raw_server(After::Close, |accept| {
        switching(accept, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    })
    .await;
    let builder = ClientBuilder::new(&url(addr, "/")).deflate(DeflateConfig::new().enabled(false));
    let error = handshake_error(builder).await;
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::UnofferedExtension("permessage-deflate".into())
    );
    received(task).await;
}

#[tokio::test]
async fn invalid_deflate_answers_are_refused() {
    // RFC 7692 section 7.1: a client fails the connection on a response
    // that does not fit its offer.
    for answer in [
        // Window bits outside 8..=15 or without a value.
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; x-unknown",
        "permessage-deflate; client_no_context_takeover=1",
    ] {
        let header = format!("Sec-WebSocket-Extensions: {answer}\r\n");
        let (addr, task) = raw_server(After::Close, move |accept| switching(accept, &header)).await;
        let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
        assert!(
            matches!(error.kind(), HandshakeErrorKind::InvalidExtension { name, .. } if name == "permessage-deflate"),
            "{answer}: {error}"
        );
        received(task).await;
    }
    // The server may not ignore server_no_context_takeover when asked.
    let (addr, task) = raw_server(After::Close, |accept| {
        switching(accept, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    })
    .await;
    let builder = ClientBuilder::new(&url(addr, "/"))
        .deflate(DeflateConfig::new().server_no_context_takeover(true));
    let error = handshake_error(builder).await;
    assert!(
        matches!(error.kind(), HandshakeErrorKind::InvalidExtension { .. }),
        "{error}"
    );
    received(task).await;
}

#[tokio::test]
async fn malformed_response_is_refused() {
    // A status code that is not three digits.
    let (addr, task) = raw_server(After::Close, |_| {
        b"HTTP/1.1 1O1 Switching Protocols\r\n\r\n".to_vec()
    })
    .await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert!(
        matches!(error.kind(), HandshakeErrorKind::MalformedHead(_)),
        "{:?}",
        error.kind()
    );
    received(task).await;
}

#[tokio::test]
async fn non_http_answer_is_refused() {
    let (addr, task) = raw_server(After::Close, |_| b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()).await;
    let error = handshake_error(ClientBuilder::new(&url(addr, "/"))).await;
    assert_eq!(error.status(), None, "{error:?}");
    received(task).await;
}

#[tokio::test]
async fn server_closing_without_an_answer_is_unexpected_eof() {
    let (addr, task) = raw_server(After::Close, |_| Vec::new()).await;
    let result = connect(ClientBuilder::new(&url(addr, "/"))).await;
    assert!(
        matches!(result, Err(Error::UnexpectedEof)),
        "expected UnexpectedEof, got {:?}",
        result.map(|_| ())
    );
    received(task).await;
}

// ----- failures before the handshake --------------------------------------

#[tokio::test]
async fn http_url_is_invalid_url() {
    let result = connect(ClientBuilder::new("http://127.0.0.1:9/")).await;
    assert!(
        matches!(result, Err(Error::InvalidUrl(_))),
        "expected InvalidUrl, got {:?}",
        result.map(|_| ())
    );
}

#[tokio::test]
async fn url_without_host_is_invalid_url() {
    for url in ["ws:///chat", "ws://:9001/", "127.0.0.1:9001"] {
        let result = connect(ClientBuilder::new(url)).await;
        assert!(
            matches!(result, Err(Error::InvalidUrl(_))),
            "{url}: expected InvalidUrl, got {:?}",
            result.map(|_| ())
        );
    }
}

#[tokio::test]
async fn bad_urls_fail_before_any_connection_attempt() {
    // Whatever the variant, these fail at once and never reach the network.
    for url in [
        "http://127.0.0.1:9/",
        "ws:///chat",
        "127.0.0.1:9001",
        "ws://127.0.0.1:9/#fragment",
    ] {
        let result = connect(ClientBuilder::new(url).open_timeout(HANG_GUARD)).await;
        match result {
            Err(Error::InvalidUrl(_)) => {}
            Err(Error::Handshake(error)) => assert!(
                matches!(error.kind(), HandshakeErrorKind::InvalidUri(_)),
                "{url}: {error:?}"
            ),
            other => panic!("{url}: expected a URL error, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn connection_refused_is_io() {
    // A port that was just free: bind, note it, close.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let result = connect(ClientBuilder::new(&url(addr, "/"))).await;
    match result {
        Err(Error::Io(error)) => assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused),
        other => panic!(
            "expected Io(ConnectionRefused), got {:?}",
            other.map(|_| ())
        ),
    }
}

#[tokio::test]
async fn silent_server_makes_connect_fail_with_handshake_timeout() {
    // Accepts TCP (the kernel does, from the backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(HANG_GUARD * 2).await;
        drop(tcp);
    });
    let builder = ClientBuilder::new(&url(addr, "/")).open_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let result = connect(builder).await;
    // Connected, request sent, no answer: not a connection failure.
    assert!(
        matches!(result, Err(Error::HandshakeTimeout)),
        "expected HandshakeTimeout, got {:?}",
        result.map(|_| ())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the open timeout bounds connect"
    );
    silent.abort();
}

#[tokio::test]
async fn server_stalling_inside_the_response_head_makes_connect_time_out() {
    // Half a 101, then silence: the timeout covers reading the head too.
    let (addr, task) = raw_server(After::Keep, |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs".to_vec()
    })
    .await;
    let builder = ClientBuilder::new(&url(addr, "/")).open_timeout(Duration::from_millis(300));
    let result = connect(builder).await;
    // Connected, request sent, no answer: not a connection failure.
    assert!(
        matches!(result, Err(Error::HandshakeTimeout)),
        "expected HandshakeTimeout, got {:?}",
        result.map(|_| ())
    );
    received(task).await;
}
