//! `sockeye::axum::WebSocketUpgrade`: a real axum server on loopback, the
//! policy set once for the router, sockeye's client (or raw requests for
//! the refusals).

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::Response;
use axum::routing::{any, get};
use axum::{Extension, Router};
use sockeye::proto::Config;
use sockeye::{ClientBuilder, CloseCode, DeflateConfig, Event, Message, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every wait is bounded by this.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The four-line handler: echoes, after telling the chosen subprotocol.
async fn echo(ws: sockeye::axum::WebSocketUpgrade) -> Response {
    let protocol = ws.protocol().unwrap_or("none").to_owned();
    ws.on_upgrade(|mut socket| async move {
        if socket.send(Message::text(protocol)).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// Serves `/ws` (GET) and `/any` (every method) with the echo handler, and
/// `/` as a page, under `policy` (none: the default).
async fn serve(policy: Option<ServerBuilder>) -> SocketAddr {
    let mut app = Router::new()
        .route("/", get(|| async { "a page" }))
        .route("/ws", get(echo))
        .route("/any", any(echo));
    if let Some(policy) = policy {
        app = app.layer(Extension(policy));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// Sends `request` and reads the response head.
async fn raw_exchange(address: SocketAddr, request: &str) -> String {
    let exchange = async {
        let mut tcp = TcpStream::connect(address).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = vec![0u8; 4096];
        let n = tcp.read(&mut response).await.unwrap();
        String::from_utf8_lossy(&response[..n]).into_owned()
    };
    tokio::time::timeout(HANG_GUARD, exchange).await.unwrap()
}

fn request(method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
    )
}

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const V13: &str = "Sec-WebSocket-Version: 13\r\n";

#[tokio::test]
async fn echo_with_the_routers_policy_subprotocol_and_deflate() {
    let policy = ServerBuilder::new().subprotocols(["chat.v2", "chat.v1"]);
    let address = serve(Some(policy)).await;
    let page = raw_exchange(address, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.ends_with("a page"), "{page}");

    let (mut ws, response) = ClientBuilder::new(&format!("ws://{address}/ws"))
        .subprotocols(["chat.v1", "chat.v2"])
        .connect()
        .await
        .unwrap();
    // The server's preference wins.
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
    let extensions = response.headers()["sec-websocket-extensions"]
        .to_str()
        .unwrap();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    let first = ws.recv().await.unwrap().unwrap();
    assert_eq!(first.as_text(), Some("chat.v2"));

    let big = "compressible ".repeat(10_000);
    ws.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some(&*big));
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}

#[tokio::test]
async fn without_a_layer_the_default_policy_serves() {
    let address = serve(None).await;
    let (mut ws, response) = ClientBuilder::new(&format!("ws://{address}/ws"))
        .subprotocols(["chat"])
        .connect()
        .await
        .unwrap();
    // No subprotocols configured: none chosen. Deflate is on by default.
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    assert!(response.headers().contains_key("sec-websocket-extensions"));
    assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("none"));
    ws.send(Message::binary(vec![7u8; 100_000])).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap().len(), 100_000);
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}

#[tokio::test]
async fn the_policy_can_turn_deflate_off() {
    let policy = ServerBuilder::new().deflate(DeflateConfig::new().enabled(false));
    let address = serve(Some(policy)).await;
    let (mut ws, response) = ClientBuilder::new(&format!("ws://{address}/ws"))
        .connect()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("sec-websocket-extensions"));
    assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("none"));
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}

#[tokio::test]
async fn refusals_are_answered_with_their_status() {
    let policy = ServerBuilder::new().allow_origins(["https://good.example"]);
    let address = serve(Some(policy)).await;

    let bad_origin = request(
        "GET",
        "/ws",
        &format!("{KEY}{V13}Origin: https://evil.example\r\n"),
    );
    let response = raw_exchange(address, &bad_origin).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");

    let good_origin = request(
        "GET",
        "/ws",
        &format!("{KEY}{V13}Origin: https://good.example\r\n"),
    );
    let response = raw_exchange(address, &good_origin).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");

    let no_key = request("GET", "/ws", V13);
    let response = raw_exchange(address, &no_key).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");

    let old_version = request("GET", "/ws", &format!("{KEY}Sec-WebSocket-Version: 8\r\n"));
    let response = raw_exchange(address, &old_version).await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{response}"
    );

    // A route that takes every method: the extractor refuses the others.
    let post = request("POST", "/any", &format!("{KEY}{V13}Content-Length: 0\r\n"));
    let response = raw_exchange(address, &post).await;
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
}

#[tokio::test]
async fn the_policys_allowed_hosts_apply() {
    let policy = ServerBuilder::new().allowed_hosts(["good.example"]);
    let address = serve(Some(policy)).await;
    // `request` sends `Host: x`.
    let response = raw_exchange(address, &request("GET", "/ws", &format!("{KEY}{V13}"))).await;
    assert!(response.starts_with("HTTP/1.1 421"), "{response}");
}

#[tokio::test]
async fn the_policys_engine_limits_apply() {
    let policy = ServerBuilder::new().config(Config::default().max_message_size(1000));
    let address = serve(Some(policy)).await;
    let (mut ws, _) = ClientBuilder::new(&format!("ws://{address}/ws"))
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("none"));
    ws.send(Message::binary(vec![1u8; 999])).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap().len(), 999);
    ws.send(Message::binary(vec![1u8; 2000])).await.unwrap();
    let closed = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match ws.recv_event().await {
                Some(Ok(Event::Closed(closed))) => return closed,
                Some(Ok(_)) => {}
                other => panic!("expected the end, got {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed.code(), CloseCode::MESSAGE_TOO_BIG);
}

#[tokio::test]
async fn the_policys_connection_limit_applies() {
    let policy = ServerBuilder::new().max_connections(1);
    let address = serve(Some(policy.clone())).await;
    let (mut first, _) = ClientBuilder::new(&format!("ws://{address}/ws"))
        .connect()
        .await
        .unwrap();
    assert_eq!(first.recv().await.unwrap().unwrap().as_text(), Some("none"));
    assert_eq!(policy.open_connections(), 1);
    let response = raw_exchange(address, &request("GET", "/ws", &format!("{KEY}{V13}"))).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(first.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}
