//! # WebSockets in an axum application
//!
//! A WebSocket route sits beside the application's other routes, on the
//! same port: [`ServerBuilder::upgrade`](crate::ServerBuilder::upgrade)
//! checks the request against the server's policy and hands back the
//! `101` response to return and a future of the [`WebSocket`](crate::WebSocket).
//!
//! ```
//! use axum::Router;
//! use axum::body::Body;
//! use axum::extract::{Request, State};
//! use axum::response::Response;
//! use axum::routing::get;
//! use sockeye::ServerBuilder;
//!
//! async fn echo(State(server): State<ServerBuilder>, mut request: Request) -> Response {
//!     match server.upgrade(&mut request) {
//!         Ok(upgrade) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = upgrade.websocket.await else { return };
//!                 while let Some(Ok(message)) = ws.recv().await {
//!                     if ws.send(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             upgrade.response.map(|()| Body::empty())
//!         }
//!         // Refused: the status the policy chose (400, 403, 426, ...).
//!         Err(refusal) => refusal.response.map(Body::from),
//!     }
//! }
//!
//! fn app() -> Router {
//!     Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .route("/ws", get(echo))
//!         .with_state(ServerBuilder::new().subprotocols(["echo"]))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let url = format!("ws://{}/ws", listener.local_addr().unwrap());
//! #     tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
//! #     let (mut ws, _) = sockeye::connect(&url).await.unwrap();
//! #     ws.send(sockeye::Message::text("hi")).await.unwrap();
//! #     assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("hi"));
//! # }
//! ```
