//! The client over HTTP/2 (RFC 8441) against an HTTP/2 server written in
//! this test with the `h2` crate: several WebSockets on one connection,
//! the fallback to HTTP/1.1 and the error when HTTP/2 is required, a
//! refusal, a reset stream, flow control per stream, END_STREAM on close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use bytes::Bytes;
use h2::ext::Protocol;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{Request, Response, StatusCode, Version};
use rustls::ServerConfig;
use sockeye::http2::{H2Stream, Http2Session};
use sockeye::proto::extension::deflate::DeflateNegotiator;
use sockeye::proto::handshake::ServerHandshake;
use sockeye::proto::{Config, Connection};
use sockeye::{
    ClientBuilder, CloseCode, DeflateConfig, Error, HttpVersion, Message, Role, ServerBuilder,
    WebSocket,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// Every wait in these tests is bounded by this: a hang is a failure.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Each flood message's size.
const FLOOD_MESSAGE: usize = 16 * 1024;

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("finished within the hang guard")
}

/// What the server does and what it saw.
#[derive(Clone)]
struct Server {
    /// Advertise SETTINGS_ENABLE_CONNECT_PROTOCOL.
    connect_protocol: bool,
    /// TCP connections accepted.
    connections: Arc<AtomicUsize>,
    /// Bytes of flood messages the server could send.
    flooded: Arc<AtomicUsize>,
    /// How `/close` streams ended: "end_stream" or "reset".
    events: mpsc::UnboundedSender<&'static str>,
}

struct Running {
    addr: SocketAddr,
    server: Server,
    events: mpsc::UnboundedReceiver<&'static str>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.server.connections.load(Ordering::SeqCst)
    }
}

/// An HTTP/2 server, cleartext (prior knowledge) or TLS with `alpn`; over
/// TLS, a connection whose ALPN is `http/1.1` gets sockeye's HTTP/1.1
/// echo server.
async fn start(connect_protocol: bool, tls: Option<Arc<ServerConfig>>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (events, received) = mpsc::unbounded_channel();
    let server = Server {
        connect_protocol,
        connections: Arc::default(),
        flooded: Arc::default(),
        events,
    };
    let accepting = server.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            accepting.connections.fetch_add(1, Ordering::SeqCst);
            let server = accepting.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => server.serve_h2(tcp).await,
                    Some(config) => {
                        let Ok(tls) = TlsAcceptor::from(config).accept(tcp).await else {
                            return;
                        };
                        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                            server.serve_h2(tls).await;
                        } else if let Ok(ws) = ServerBuilder::new().accept(tls).await {
                            echo(ws).await;
                        }
                    }
                }
            });
        }
    });
    Running {
        addr,
        server,
        events: received,
    }
}

impl Server {
    async fn serve_h2<T>(self, io: T)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = h2::server::Builder::new();
        if self.connect_protocol {
            builder.enable_connect_protocol();
        }
        let Ok(mut connection) = builder.handshake::<_, Bytes>(io).await else {
            return;
        };
        while let Some(Ok((request, respond))) = connection.accept().await {
            let server = self.clone();
            tokio::spawn(async move { server.stream(request, respond).await });
        }
    }

    /// One extended CONNECT: what happens depends on the path.
    async fn stream(self, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
        let (parts, recv) = request.into_parts();
        let protocol = parts.extensions.get::<Protocol>().map(Protocol::as_str);
        let head = Request::from_parts(parts.clone(), ());
        let policy = ServerHandshake::new()
            .subprotocols(["chat"])
            .extensions(DeflateNegotiator::new(DeflateConfig::new()));
        let accepted = match policy.accept_extended_connect(&head, protocol, Some(false)) {
            Ok(accepted) => accepted,
            Err(error) => {
                let status = error.status().unwrap_or(StatusCode::BAD_REQUEST);
                let refusal = Response::builder().status(status).body(()).unwrap();
                let _ = respond.send_response(refusal, true);
                return;
            }
        };
        match head.uri().path() {
            "/forbidden" => {
                let refusal = Response::builder().status(403).body(()).unwrap();
                let mut send = respond.send_response(refusal, false).unwrap();
                let _ = send.send_data(Bytes::from_static(b"go away"), true);
            }
            "/silent" => {
                tokio::time::sleep(HANG_GUARD).await;
                drop(respond);
            }
            "/reset" => {
                let mut recv = recv;
                let mut send = respond.send_response(accepted.response, false).unwrap();
                // The first message, then a reset of this stream only.
                let _ = recv.data().await;
                send.send_reset(Reason::INTERNAL_ERROR);
            }
            "/close" => self.watch_close(accepted.response, respond, recv).await,
            path => {
                let send = respond.send_response(accepted.response, false).unwrap();
                let mut engine = Connection::new(Role::Server, Config::default());
                if let Some(params) = accepted.negotiated.deflate {
                    engine.enable_deflate(params, &DeflateConfig::new());
                }
                let ws = WebSocket::from_engine(H2Stream::new(send, recv), engine, &[]);
                if path == "/flood" {
                    self.flood(ws).await;
                } else {
                    echo(ws).await;
                }
            }
        }
    }

    /// Sends messages until the client stops taking them, counting them.
    async fn flood(&self, mut ws: WebSocket<H2Stream>) {
        // Incompressible, so that permessage-deflate does not shrink it.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let payload: Bytes = (0..FLOOD_MESSAGE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        while ws.send(Message::binary(payload.clone())).await.is_ok() {
            self.flooded.fetch_add(FLOOD_MESSAGE, Ordering::SeqCst);
        }
    }

    /// Answers the client's Close frame with its own and the end of this
    /// side, then reports how the client's side of the stream ended.
    async fn watch_close(
        &self,
        response: Response<()>,
        mut respond: SendResponse<Bytes>,
        mut recv: RecvStream,
    ) {
        let mut send = respond.send_response(response, false).unwrap();
        let mut received = Vec::new();
        let ending = loop {
            match recv.data().await {
                Some(Ok(data)) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    received.extend_from_slice(&data);
                    // A masked Close frame: 0x88, then 0x80 | length.
                    if received.first() == Some(&0x88) {
                        let reply = Bytes::from_static(&[0x88, 0x02, 0x03, 0xe8]);
                        let _ = send.send_data(reply, true);
                        received.clear();
                    }
                }
                None => break "end_stream",
                Some(Err(_)) => break "reset",
            }
        };
        let _ = self.events.send(ending);
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) {
    while let Some(Ok(message)) = ws.recv().await {
        if ws.send(message).await.is_err() {
            return;
        }
    }
}

/// Sends a text and a binary message and expects them back.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocket<S>, tag: &str) {
    ws.send(Message::text(tag.to_owned())).await.unwrap();
    let echoed = within(ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed.as_text(), Some(tag));
    let binary = Bytes::from(vec![tag.len() as u8; 70_000]);
    ws.send(Message::binary(binary.clone())).await.unwrap();
    let echoed = within(ws.recv()).await.unwrap().unwrap();
    assert!(echoed.is_binary());
    assert_eq!(echoed.as_bytes(), &binary[..]);
}

#[tokio::test]
async fn several_websockets_share_one_connection_and_close_independently() {
    let server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    assert_eq!(session.origin(), format!("ws://{}", server.addr));
    let (mut first, response) = within(session.builder("/echo").subprotocols(["chat"]).connect())
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert_eq!(
        response.extensions().get::<Request<()>>().unwrap().method(),
        "CONNECT"
    );
    let (mut second, _) = within(session.connect(&ClientBuilder::new(&server.url("/echo"))))
        .await
        .unwrap();
    let builder = ClientBuilder::new(&server.url("/echo")).http2_session(&session);
    let (mut third, _) = within(builder.connect()).await.unwrap();
    for (ws, tag) in [
        (&mut first, "one"),
        (&mut second, "two"),
        (&mut third, "three"),
    ] {
        round_trip(ws, tag).await;
    }
    // Closing the second ends only its stream.
    let closed = within(second.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert_eq!(closed.code(), CloseCode::NORMAL);
    round_trip(&mut first, "one again").await;
    round_trip(&mut third, "three again").await;
    within(first.close(CloseCode::NORMAL, "")).await.unwrap();
    round_trip(&mut third, "three, last").await;
    within(third.close(CloseCode::NORMAL, "")).await.unwrap();
    assert_eq!(server.connections(), 1, "one TCP connection for all three");
    assert!(!session.is_closed());
    // Another origin is refused by the strict form.
    let elsewhere = ClientBuilder::new("ws://127.0.0.1:1/echo");
    assert!(matches!(
        session.connect(&elsewhere).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn permessage_deflate_is_negotiated_over_http2() {
    let server = start(true, None).await;
    let builder = ClientBuilder::new(&server.url("/echo")).http_version(HttpVersion::Http2);
    let (mut ws, response) = within(builder.connect()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let extensions = response.headers()["sec-websocket-extensions"]
        .to_str()
        .unwrap();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    round_trip(&mut ws, "compressed").await;
    within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
}

#[tokio::test]
async fn a_refusal_carries_its_status_and_body() {
    let server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    let Err(Error::Handshake(error)) = within(session.builder("/forbidden").connect()).await else {
        panic!("a 403 is a handshake error");
    };
    assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(error.body().unwrap().as_ref(), b"go away");
    assert!(error.to_string().contains("instead of 200 OK"), "{error}");
    // The connection is still there for the next WebSocket.
    let (mut ws, _) = within(session.builder("/echo").connect()).await.unwrap();
    round_trip(&mut ws, "after the refusal").await;
}

#[tokio::test]
async fn a_reset_stream_ends_only_its_websocket() {
    let server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    let (mut reset, _) = within(session.builder("/reset").connect()).await.unwrap();
    let (mut other, _) = within(session.builder("/echo").connect()).await.unwrap();
    reset.send(Message::text("hello")).await.unwrap();
    match within(reset.recv()).await {
        Some(Err(Error::Io(error))) => {
            assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}")
        }
        other => panic!("expected the reset as an I/O error, got {other:?}"),
    }
    round_trip(&mut other, "still here").await;
    assert!(!session.is_closed());
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_reader_that_does_not_read_stalls_only_its_own_stream() {
    let server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    let (mut flooded, _) = within(session.builder("/flood").connect()).await.unwrap();
    let (mut other, _) = within(session.builder("/echo").connect()).await.unwrap();
    // The flood stops once the stream's window (and the buffers before
    // it) are full.
    let mut stalled_at = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = server.server.flooded.load(Ordering::SeqCst);
        if now == stalled_at && now > 0 {
            break;
        }
        stalled_at = now;
    }
    assert!(stalled_at > 0, "the flood started");
    // 256 KiB of stream window, and the server's buffers before it.
    assert!(
        stalled_at < 1 << 20,
        "the flood stalled, at {stalled_at} bytes"
    );
    // Its neighbour is not affected, in both directions.
    for round in 0..8 {
        round_trip(&mut other, &format!("round {round}")).await;
    }
    assert_eq!(server.server.flooded.load(Ordering::SeqCst), stalled_at);
    // Reading resumes the flood.
    for _ in 0..64 {
        let message = within(flooded.recv()).await.unwrap().unwrap();
        assert_eq!(message.as_bytes().len(), FLOOD_MESSAGE);
    }
    within(async {
        while server.server.flooded.load(Ordering::SeqCst) == stalled_at {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn close_ends_the_stream_with_end_stream() {
    let mut server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    let (mut ws, _) = within(session.builder("/close").connect()).await.unwrap();
    let closed = within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
    assert_eq!(closed.code(), CloseCode::NORMAL);
    assert_eq!(within(server.events.recv()).await, Some("end_stream"));
    drop(ws);
    let (mut next, _) = within(session.builder("/echo").connect()).await.unwrap();
    round_trip(&mut next, "the connection lives on").await;
}

#[tokio::test]
async fn the_open_timeout_covers_an_unanswered_connect() {
    let server = start(true, None).await;
    let session = within(Http2Session::open(&ClientBuilder::new(&server.url("/"))))
        .await
        .unwrap();
    let builder = session
        .builder("/silent")
        .open_timeout(Duration::from_millis(300));
    let result = within(builder.connect()).await;
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
}

#[tokio::test]
async fn required_http2_without_the_setting_is_a_clear_error() {
    let server = start(false, None).await;
    let builder = ClientBuilder::new(&server.url("/echo")).http_version(HttpVersion::Http2);
    let error = within(builder.clone().connect()).await.unwrap_err();
    assert!(
        matches!(error, Error::Http2Unsupported(why) if why.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL")),
        "{error}"
    );
    let error = within(Http2Session::open(&builder)).await.unwrap_err();
    assert!(matches!(error, Error::Http2Unsupported(_)), "{error}");
}

#[tokio::test]
async fn prior_knowledge_to_an_http1_server_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = ServerBuilder::new().accept_tcp(tcp).await;
            });
        }
    });
    let builder = ClientBuilder::new(&format!("ws://{addr}/")).http_version(HttpVersion::Http2);
    let error = within(builder.connect()).await.unwrap_err();
    assert!(matches!(error, Error::Http2Unsupported(_)), "{error}");
}

/// A TLS server offering `alpn`, and a client trusting it.
async fn start_tls(connect_protocol: bool, alpn: &[&[u8]]) -> (Running, ClientBuilder) {
    let pki = common::pki(&["localhost"]);
    let mut config = (*pki.server_config()).clone();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let server = start(connect_protocol, Some(Arc::new(config))).await;
    let url = format!("wss://localhost:{}/echo", server.addr.port());
    let builder = ClientBuilder::new(&url)
        .tls_config(pki.client_config())
        .no_proxy();
    (server, builder)
}

#[tokio::test]
async fn auto_uses_http2_over_tls_when_the_server_offers_it() {
    let (server, builder) = start_tls(true, &[b"h2", b"http/1.1"]).await;
    let (mut ws, response) = within(builder.connect()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    round_trip(&mut ws, "over h2").await;
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn auto_falls_back_to_http1_on_a_new_connection_without_the_setting() {
    let (server, builder) = start_tls(false, &[b"h2", b"http/1.1"]).await;
    let (mut ws, response) = within(builder.clone().connect()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    round_trip(&mut ws, "fell back").await;
    assert_eq!(server.connections(), 2, "h2 first, then HTTP/1.1");
    let required = builder.http_version(HttpVersion::Http2);
    let error = within(required.connect()).await.unwrap_err();
    assert!(matches!(error, Error::Http2Unsupported(_)), "{error}");
}

#[tokio::test]
async fn auto_keeps_the_connection_when_alpn_chooses_http1() {
    let (server, builder) = start_tls(true, &[b"http/1.1"]).await;
    let (mut ws, response) = within(builder.clone().connect()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    round_trip(&mut ws, "same connection").await;
    assert_eq!(server.connections(), 1);
    let (mut forbidden, _) = within(builder.clone().http_version(HttpVersion::Http1).connect())
        .await
        .unwrap();
    round_trip(&mut forbidden, "http1 only").await;
    let error = within(builder.http_version(HttpVersion::Http2).connect())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Http2Unsupported(why) if why.contains("ALPN")),
        "{error}"
    );
}

/// An HTTP proxy that answers CONNECT and relays; counts its tunnels.
async fn http_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counted = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                // The head, byte by byte: nothing of the tunnel is read.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (url, tunnels)
}

#[tokio::test]
async fn a_session_goes_through_the_builders_proxy() {
    let server = start(true, None).await;
    let (proxy, tunnels) = http_proxy().await;
    let builder = ClientBuilder::new(&server.url("/"))
        .proxy(sockeye::proxy::Proxy::from_url(&proxy).unwrap());
    let session = within(Http2Session::open(&builder)).await.unwrap();
    let (mut first, _) = within(session.builder("/echo").connect()).await.unwrap();
    let (mut second, _) = within(session.builder("/echo").connect()).await.unwrap();
    round_trip(&mut first, "through the proxy").await;
    round_trip(&mut second, "through it too").await;
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "one tunnel");
    assert_eq!(server.connections(), 1);
    // The builder's own HTTP/2 connection takes the proxy too.
    let required = ClientBuilder::new(&server.url("/echo"))
        .proxy(sockeye::proxy::Proxy::from_url(&proxy).unwrap())
        .http_version(HttpVersion::Http2);
    let (mut third, response) = within(required.connect()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    round_trip(&mut third, "a connection of its own").await;
    assert_eq!(tunnels.load(Ordering::SeqCst), 2);
}
