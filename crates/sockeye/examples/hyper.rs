//! HTTP and WebSocket on one port with hyper 1.x: `/` is a plain HTTP
//! page, `/ws` upgrades to a WebSocket echo.
//!
//! Run: `cargo run -p sockeye --example hyper [ADDRESS]` (default
//! 127.0.0.1:9002), then open http://127.0.0.1:9002/ or connect to
//! ws://127.0.0.1:9002/ws.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sockeye::ServerBuilder;
use tokio::net::TcpListener;

async fn route(
    mut request: http::Request<Incoming>,
    server: ServerBuilder,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/ws" {
        let page = "hello over HTTP; the WebSocket echo is at /ws\n";
        return Ok(http::Response::new(Full::new(Bytes::from_static(
            page.as_bytes(),
        ))));
    }
    match server.upgrade(&mut request) {
        Ok(upgrade) => {
            tokio::spawn(async move {
                let Ok(mut ws) = upgrade.websocket.await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
            Ok(upgrade.response.map(|()| Full::default()))
        }
        Err(refusal) => Ok(refusal.response.map(Full::new)),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&address).await?;
    eprintln!("serving http://{address}/ and ws://{address}/ws");
    let server = ServerBuilder::new();
    loop {
        let (tcp, _) = listener.accept().await?;
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(request, server.clone()));
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                eprintln!("connection error: {error}");
            }
        });
    }
}
