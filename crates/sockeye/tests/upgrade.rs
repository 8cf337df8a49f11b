//! Sharing a port with hyper and axum: HTTP routes and WebSocket upgrades.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sockeye::{CloseCode, Message, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(pending: sockeye::upgrade::PendingUpgrade) {
    let Ok(mut ws) = pending.await else {
        return;
    };
    while let Some(Ok(message)) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

async fn hyper_server(server: ServerBuilder) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service =
                    service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                        let server = server.clone();
                        async move {
                            if request.uri().path() != "/ws" {
                                return Ok::<_, Infallible>(http::Response::new(Full::new(
                                    Bytes::from_static(b"plain http"),
                                )));
                            }
                            Ok(match server.upgrade(&mut request) {
                                Ok(upgrade) => {
                                    let response = upgrade.response.map(|()| Full::default());
                                    tokio::spawn(echo(upgrade.websocket));
                                    response
                                }
                                Err(refusal) => refusal.response.map(Full::new),
                            })
                        }
                    });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    address
}

async fn raw_exchange(address: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(address).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 4096];
    let n = tcp.read(&mut response).await.unwrap();
    String::from_utf8_lossy(&response[..n]).into_owned()
}

#[tokio::test]
async fn hyper_serves_http_and_websocket_on_one_port() {
    let address = hyper_server(ServerBuilder::new().subprotocols(["chat"])).await;
    let page = raw_exchange(address, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("plain http"));

    let url = format!("ws://{address}/ws");
    let (mut ws, response) = sockeye::ClientBuilder::new(&url)
        .subprotocols(["chat"])
        .connect()
        .await
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    ws.send(Message::text("through hyper")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap().as_text(),
        Some("through hyper")
    );
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}

#[tokio::test]
async fn hyper_refusals_carry_their_status() {
    let address = hyper_server(ServerBuilder::new()).await;
    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = raw_exchange(address, no_key).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    let old_version = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let response = raw_exchange(address, old_version).await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13")
    );
}

#[tokio::test]
async fn axum_route_upgrades() {
    async fn handler(
        State(server): State<ServerBuilder>,
        mut request: Request,
    ) -> axum::response::Response {
        match server.upgrade(&mut request) {
            Ok(upgrade) => {
                let response = upgrade.response.map(|()| Body::empty());
                tokio::spawn(echo(upgrade.websocket));
                response
            }
            Err(refusal) => refusal.response.map(Body::from),
        }
    }
    let app = Router::new()
        .route("/", get(|| async { "axum page" }))
        .route("/ws", get(handler))
        .with_state(ServerBuilder::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let page = raw_exchange(address, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.ends_with("axum page"), "{page}");
    let (mut ws, _) = sockeye::connect(&format!("ws://{address}/ws"))
        .await
        .unwrap();
    ws.send(Message::binary(vec![9u8; 100_000])).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap().len(), 100_000);
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
}
