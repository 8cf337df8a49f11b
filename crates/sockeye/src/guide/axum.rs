//! # WebSockets in an axum application
//!
//! With the `axum` feature, [`sockeye::axum::WebSocketUpgrade`](crate::axum::WebSocketUpgrade)
//! is an extractor in the style of axum's own: the handler is four lines,
//! the server policy (Origin, subprotocols, permessage-deflate, `Host`,
//! limits) is set once for the router, and a request the policy refuses
//! is answered with its status (400, 403, 405, 421, 426, 503) before the
//! handler runs.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # mod app {
//! use axum::response::Response;
//! use axum::routing::get;
//! use axum::{Extension, Router};
//! use sockeye::ServerBuilder;
//! use sockeye::axum::WebSocketUpgrade;
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(|mut socket| async move {
//!         while let Some(Ok(message)) = socket.recv().await {
//!             if socket.send(message).await.is_err() { break }
//!         }
//!     })
//! }
//!
//! pub fn app() -> Router {
//!     Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .route("/ws", get(echo))
//!         // The WebSocket policy, once for the router.
//!         .layer(Extension(ServerBuilder::new().subprotocols(["echo"])))
//! }
//! # }
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let url = format!("ws://{}/ws", listener.local_addr().unwrap());
//! #     tokio::spawn(async move { axum::serve(listener, app::app()).await.unwrap() });
//! #     let (mut ws, response) = sockeye::ClientBuilder::new(&url)
//! #         .subprotocols(["echo"])
//! #         .connect()
//! #         .await
//! #         .unwrap();
//! #     assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
//! #     ws.send(sockeye::Message::text("hi")).await.unwrap();
//! #     assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("hi"));
//! # }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! To count connections per client address (the policy's
//! [`max_connections_per_address`](crate::ServerBuilder::max_connections_per_address)),
//! serve with `app.into_make_service_with_connect_info::<SocketAddr>()`.
//!
//! Without axum, a hyper service calls
//! [`ServerBuilder::upgrade`](crate::ServerBuilder::upgrade) on the
//! request: it checks the policy and returns the `101` response to send
//! and a future of the [`WebSocket`](crate::WebSocket)
//! (`crates/sockeye/examples/hyper.rs`).
