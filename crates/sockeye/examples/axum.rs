//! An axum application serving a route and a WebSocket echo on one port.
//!
//! Run: `cargo run -p sockeye --example axum [ADDRESS]` (default
//! 127.0.0.1:9003), then connect to ws://127.0.0.1:9003/ws.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use sockeye::ServerBuilder;

async fn websocket(State(server): State<ServerBuilder>, mut request: Request) -> Response {
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
            upgrade.response.map(|()| Body::empty())
        }
        Err(refusal) => refusal.response.map(Body::from),
    }
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
        .with_state(ServerBuilder::new().subprotocols(["echo"]));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("serving http://{address}/ and ws://{address}/ws");
    axum::serve(listener, app).await?;
    Ok(())
}
