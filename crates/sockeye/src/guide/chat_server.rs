//! # A chat server
//!
//! Every message a client sends goes to everyone else in its room; the
//! room is the path (`ws://host/room/rust`), `/` is the lobby.
//!
//! ```
//! use sockeye::hub::Hub;
//! use sockeye::{ServerBuilder, WebSocket};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! async fn serve(listener: TcpListener, hub: Hub) {
//!     // The policy every connection is checked against: with the
//!     // defaults, browsers may connect only from pages of this same
//!     // host and port, and every limit has a safe bound.
//!     let server = ServerBuilder::new();
//!     loop {
//!         // A failed accept (out of file descriptors) must not end the
//!         // server: the connections there are go on.
//!         let Ok((tcp, peer)) = listener.accept().await else { continue };
//!         let (server, hub) = (server.clone(), hub.clone());
//!         // One task per connection: whatever a client does ends only
//!         // its own task.
//!         tokio::spawn(async move {
//!             match server.accept_with_request(tcp).await {
//!                 Ok((ws, request)) => {
//!                     let room = room_of(request.uri().path()).to_owned();
//!                     chat(ws, &hub, &room).await;
//!                 }
//!                 Err(error) => eprintln!("{peer}: refused: {error}"),
//!             }
//!         });
//!     }
//! }
//!
//! /// `/room/NAME` is room NAME; anything else the lobby.
//! fn room_of(path: &str) -> &str {
//!     path.strip_prefix("/room/").unwrap_or("lobby")
//! }
//!
//! async fn chat(ws: WebSocket<TcpStream>, hub: &Hub, room: &str) {
//!     // Split: the hub writes to the client (each subscriber has a
//!     // bounded queue, and a client that cannot keep up is closed with
//!     // 1008 instead of slowing the others), this task reads.
//!     let (mut receiver, sender) = ws.split();
//!     let me = hub.attach(sender);
//!     me.subscribe(room);
//!     while let Some(Ok(message)) = receiver.recv().await {
//!         hub.publish_excluding(room, message, &me);
//!     }
//!     // `me` is dropped here: it leaves the room.
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     use std::time::Duration;
//! #     use sockeye::Message;
//! #     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let addr = listener.local_addr().unwrap();
//! #     let hub = Hub::new();
//! #     tokio::spawn(serve(listener, hub.clone()));
//! #     tokio::time::timeout(Duration::from_secs(10), async {
//! #         let (mut alice, _) = sockeye::connect(&format!("ws://{addr}/room/rust")).await.unwrap();
//! #         let (mut bob, _) = sockeye::connect(&format!("ws://{addr}/room/rust")).await.unwrap();
//! #         let (mut carol, _) = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
//! #         while hub.subscriber_count("rust") < 2 || hub.subscriber_count("lobby") < 1 {
//! #             tokio::time::sleep(Duration::from_millis(1)).await;
//! #         }
//! #         alice.send(Message::text("hi bob")).await.unwrap();
//! #         assert_eq!(bob.recv().await.unwrap().unwrap().as_text(), Some("hi bob"));
//! #         carol.send(Message::text("anyone?")).await.unwrap();
//! #         bob.send(Message::text("hi alice")).await.unwrap();
//! #         // Alice hears Bob, not Carol: another room.
//! #         assert_eq!(alice.recv().await.unwrap().unwrap().as_text(), Some("hi alice"));
//! #     })
//! #     .await
//! #     .expect("the chat server answers");
//! # }
//! ```
//!
//! What to change for your own:
//! - **Who may connect.** Browsers send `Origin`; a page served from
//!   elsewhere needs [`ServerBuilder::allow_origins`](crate::ServerBuilder::allow_origins).
//!   Check credentials (a cookie, a token in the query) in
//!   [`ServerBuilder::filter_request`](crate::ServerBuilder::filter_request),
//!   which refuses with the status you choose before any WebSocket
//!   exists.
//! - **Slow clients.** [`HubBuilder::slow_policy`](crate::hub::HubBuilder::slow_policy)
//!   chooses between closing them (the default), dropping their oldest or
//!   their newest messages; [`HubBuilder::queue_capacity`](crate::hub::HubBuilder::queue_capacity)
//!   how far behind they may fall.
//! - **Shutting down.** [`ServerBuilder::drain_handle`](crate::ServerBuilder::drain_handle)
//!   closes every connection with 1001 (or 1012, "restarting") spread
//!   over a window, so that clients do not all come back at once.
//! - **More than one process.** See [`scaling_out`](super::scaling_out).
//!
//! `crates/sockeye/examples/chat_server.rs` is a fuller version (logging,
//! Ctrl-C); `sockeye serve --broadcast` is this server ready-made, with a
//! page for browsers.
