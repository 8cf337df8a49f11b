//! An axum application serving a route and a WebSocket echo on one port,
//! with sockeye's extractor (the `axum` feature).
//!
//! Run: `cargo run -p sockeye --features axum --example axum [ADDRESS]`
//! (default 127.0.0.1:9003), then connect to ws://127.0.0.1:9003/ws.

use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use sockeye::ServerBuilder;
use sockeye::axum::WebSocketUpgrade;

async fn websocket(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let app = Router::new()
        .route(
            "/",
            get(|| async { "hello from axum; the WebSocket echo is at /ws\n" }),
        )
        .route("/ws", get(websocket))
        // The WebSocket policy, once for the router.
        .layer(Extension(ServerBuilder::new().subprotocols(["echo"])));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("serving http://{address}/ and ws://{address}/ws");
    axum::serve(listener, app).await?;
    Ok(())
}
