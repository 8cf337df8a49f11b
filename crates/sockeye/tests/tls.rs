//! `wss://` end to end over loopback: a test CA and a server certificate
//! generated at test time with rcgen, a `ServerBuilder::tls` server taking
//! TCP connections with `accept_tcp`, and `ClientBuilder` clients that
//! trust the CA (or do not).

use std::net::SocketAddr;
use std::time::Duration;

mod common;

use common::{Pki, pki};
use rustls::CertificateError;
use sockeye::proto::handshake::HandshakeErrorKind;
use sockeye::{ClientBuilder, CloseCode, Error, Message, ServerBuilder, ServerStream, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this: a hang is a failure.
const HANG_GUARD: Duration = Duration::from_secs(20);

type Accepted = Result<WebSocket<ServerStream>, Error>;

/// A server accepting one connection with `builder.accept_tcp`.
async fn serve(builder: ServerBuilder) -> (SocketAddr, JoinHandle<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        builder.accept_tcp(tcp).await
    });
    (addr, task)
}

/// An echo server: accepts one connection and echoes until the end;
/// returns how the connection ended (code and reason).
async fn echo_server(builder: ServerBuilder) -> (SocketAddr, JoinHandle<(CloseCode, String)>) {
    let (addr, accepted) = serve(builder).await;
    let task = tokio::spawn(async move {
        let mut ws = accepted.await.unwrap().expect("the TLS server accepted");
        assert!(
            matches!(ws.get_ref(), ServerStream::Tls(_)),
            "accept_tcp with a TLS config serves TLS"
        );
        while let Some(message) = ws.recv().await {
            ws.send(message.expect("a valid message")).await.unwrap();
        }
        let closed = ws.closed().expect("ended").clone();
        (closed.code(), closed.reason().to_owned())
    });
    (addr, task)
}

async fn with_guard<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("finished within the hang guard")
}

/// The rustls error inside a TLS failure.
fn rustls_error(error: &Error) -> &rustls::Error {
    let Error::Tls(io) = error else {
        panic!("expected Error::Tls, got {error:?}");
    };
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("expected a rustls error inside {io:?}"))
}

async fn echo_session(url: String, pki: &Pki) {
    let (mut ws, response) = with_guard(
        ClientBuilder::new(&url)
            .tls_config(pki.client_config())
            .connect(),
    )
    .await
    .expect("connected over TLS");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert!(matches!(ws.get_ref(), sockeye::ClientStream::Tls(_)));

    ws.send(Message::text("hello over TLS")).await.unwrap();
    let back = with_guard(ws.recv()).await.unwrap().unwrap();
    assert_eq!(back, Message::text("hello over TLS"));

    let small: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(small.clone())).await.unwrap();
    let back = with_guard(ws.recv()).await.unwrap().unwrap();
    assert_eq!(back, Message::binary(small));

    // 1 MiB: many TLS records each way.
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let back = with_guard(ws.recv()).await.unwrap().unwrap();
    assert!(back.is_binary());
    assert_eq!(back.len(), big.len());
    assert!(back.as_bytes() == &big[..], "the 1 MiB echo is intact");

    let closed = with_guard(ws.close(CloseCode::NORMAL, "bye"))
        .await
        .expect("clean close");
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.code(), CloseCode::NORMAL);
    assert!(with_guard(ws.recv()).await.is_none());
}

#[tokio::test]
async fn wss_echo_text_binary_and_clean_close_by_name() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let (addr, server) = echo_server(ServerBuilder::new().tls(pki.server_config())).await;
    echo_session(format!("wss://localhost:{}/echo", addr.port()), &pki).await;
    let (code, reason) = with_guard(server).await.unwrap();
    assert_eq!(code, CloseCode::NORMAL);
    assert_eq!(reason, "bye");
}

#[tokio::test]
async fn wss_echo_by_ip_address() {
    // The certificate names 127.0.0.1 as an IP address SAN.
    let pki = pki(&["localhost", "127.0.0.1"]);
    let (addr, server) = echo_server(ServerBuilder::new().tls(pki.server_config())).await;
    echo_session(format!("wss://{addr}/echo"), &pki).await;
    let (code, _) = with_guard(server).await.unwrap();
    assert_eq!(code, CloseCode::NORMAL);
}

#[tokio::test]
async fn default_client_config_does_not_trust_the_test_ca() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let (addr, server) = serve(ServerBuilder::new().tls(pki.server_config())).await;
    // No tls_config: the Mozilla roots.
    let result =
        with_guard(ClientBuilder::new(&format!("wss://localhost:{}/", addr.port())).connect())
            .await;
    let error = result.expect_err("the handshake failed");
    assert!(
        matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{error:?}"
    );
    // The server sees the client's alert as a TLS failure too.
    let server_result = with_guard(server).await.unwrap();
    assert!(
        matches!(server_result, Err(Error::Tls(_))),
        "server: {:?}",
        server_result.map(|_| ())
    );
}

#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    // Signed by a trusted CA, but for another host.
    let pki = pki(&["other.example"]);
    let (addr, server) = serve(ServerBuilder::new().tls(pki.server_config())).await;
    let result = with_guard(
        ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
            .tls_config(pki.client_config())
            .connect(),
    )
    .await;
    let error = result.expect_err("the handshake failed");
    assert!(
        matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{error:?}"
    );
    let _ = with_guard(server).await;
}

#[tokio::test]
async fn ip_address_not_in_the_certificate_is_refused() {
    // The certificate names localhost only; connecting by IP must not pass.
    let pki = pki(&["localhost"]);
    let (addr, server) = serve(ServerBuilder::new().tls(pki.server_config())).await;
    let result = with_guard(
        ClientBuilder::new(&format!("wss://{addr}/"))
            .tls_config(pki.client_config())
            .connect(),
    )
    .await;
    let error = result.expect_err("the handshake failed");
    assert!(
        matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{error:?}"
    );
    let _ = with_guard(server).await;
}

#[tokio::test]
async fn wss_client_against_a_plain_server_fails_with_tls() {
    // The server speaks plain HTTP: it reads the ClientHello as a broken
    // request head and refuses it with 400, which is no TLS record.
    let (addr, server) = serve(ServerBuilder::new()).await;
    let pki = pki(&["localhost"]);
    let result = with_guard(
        ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
            .tls_config(pki.client_config())
            .connect(),
    )
    .await;
    assert!(
        matches!(result, Err(Error::Tls(_))),
        "client: {:?}",
        result.map(|_| ())
    );
    match with_guard(server).await.unwrap() {
        Err(Error::Handshake(error)) => {
            assert_eq!(error.status(), Some(http::StatusCode::BAD_REQUEST))
        }
        other => panic!(
            "server: expected a 400 refusal, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[tokio::test]
async fn plain_client_against_a_tls_server_is_refused_by_the_server() {
    let pki = pki(&["localhost"]);
    let (addr, server) = serve(ServerBuilder::new().tls(pki.server_config())).await;
    let result = with_guard(ClientBuilder::new(&format!("ws://{addr}/")).connect()).await;
    assert!(
        result.is_err(),
        "a plain client cannot talk to a TLS server"
    );
    let server_result = with_guard(server).await.unwrap();
    assert!(
        matches!(server_result, Err(Error::Tls(_))),
        "server: {:?}",
        server_result.map(|_| ())
    );
}

#[tokio::test]
async fn silent_client_hits_the_servers_handshake_timeout_during_tls() {
    let pki = pki(&["localhost"]);
    let builder = ServerBuilder::new()
        .tls(pki.server_config())
        .handshake_timeout(Duration::from_millis(300));
    let (addr, server) = serve(builder).await;
    // TCP only: no ClientHello ever comes.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let result = with_guard(server).await.unwrap();
    assert!(
        matches!(result, Err(Error::OpenTimeout)),
        "expected OpenTimeout, got {:?}",
        result.map(|_| ())
    );
    // The server let go of the connection.
    let mut buffer = [0u8; 16];
    let read = with_guard(tcp.read(&mut buffer)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn client_stalling_after_tls_hits_the_handshake_timeout() {
    // The TLS handshake completes, then the HTTP request never comes: the
    // one handshake timeout covers both.
    let pki = pki(&["localhost"]);
    let builder = ServerBuilder::new()
        .tls(pki.server_config())
        .handshake_timeout(Duration::from_millis(500));
    let (addr, server) = serve(builder).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki.client_config());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = with_guard(connector.connect(name, tcp)).await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tls.flush().await.unwrap();
    let result = with_guard(server).await.unwrap();
    assert!(
        matches!(result, Err(Error::OpenTimeout)),
        "expected OpenTimeout, got {:?}",
        result.map(|_| ())
    );
}

#[tokio::test]
async fn handshake_refusals_travel_inside_tls() {
    // A 403 for a foreign origin reaches the wss:// client with its status.
    let pki = pki(&["localhost"]);
    let (addr, server) = serve(ServerBuilder::new().tls(pki.server_config())).await;
    let result = with_guard(
        ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
            .tls_config(pki.client_config())
            .origin("https://evil.example")
            .connect(),
    )
    .await;
    match result {
        Err(Error::Handshake(error)) => {
            assert_eq!(error.status(), Some(http::StatusCode::FORBIDDEN));
            assert_eq!(error.kind(), &HandshakeErrorKind::UnexpectedStatus);
            assert!(error.body().is_some_and(|body| !body.is_empty()));
        }
        other => panic!("expected a 403, got {:?}", other.map(|_| ())),
    }
    match with_guard(server).await.unwrap() {
        Err(Error::Handshake(error)) => {
            assert_eq!(error.status(), Some(http::StatusCode::FORBIDDEN))
        }
        other => panic!(
            "server: expected a 403 refusal, got {:?}",
            other.map(|_| ())
        ),
    }
}
