//! sockeye: WebSocket (RFC 6455) clients and servers for tokio and
//! blocking code, with permessage-deflate (RFC 7692), TLS, proxies,
//! publish/subscribe and bounds on everything a peer can make a server
//! spend.
//!
//! A server that echoes every message, and a client that talks to it:
//!
//! ```
//! use sockeye::{Message, ServerBuilder};
//! use tokio::net::TcpListener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The server: one task per connection; a bad client ends only its own.
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/", listener.local_addr()?);
//! let server = ServerBuilder::new(); // the policy: Origin, subprotocols, limits
//! tokio::spawn(async move {
//!     loop {
//!         let Ok((tcp, _)) = listener.accept().await else { continue };
//!         let server = server.clone();
//!         tokio::spawn(async move {
//!             let Ok(mut ws) = server.accept_tcp(tcp).await else { return };
//!             while let Some(Ok(message)) = ws.recv().await {
//!                 if ws.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! });
//!
//! // The client.
//! let (mut ws, _response) = sockeye::connect(&url).await?;
//! ws.send(Message::text("hello")).await?;
//! let echoed = ws.recv().await.expect("a message")?;
//! assert_eq!(echoed.as_text(), Some("hello"));
//! ws.close(sockeye::CloseCode::NORMAL, "").await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The map
//!
//! | you want | go to |
//! |---|---|
//! | a client | [`connect`], [`ClientBuilder`] (subprotocols, headers, Origin, time-outs, redirects) |
//! | a client that reconnects | [`ClientBuilder::reconnect`], [`ReconnectPolicy`], [`Reconnecting`] |
//! | a server | [`ServerBuilder`]: [`accept_tcp`](ServerBuilder::accept_tcp), the policy (Origin, `Host`, subprotocols, deflate), limits, [`stats`](ServerBuilder::stats), graceful [`Drain`] |
//! | reading and writing | [`WebSocket`]: [`recv`](WebSocket::recv), [`send`](WebSocket::send), [`close`](WebSocket::close), `Stream`/`Sink` |
//! | a reader task and a writer task | [`WebSocket::split`] into [`RecvHalf`] and [`SendHalf`] |
//! | TLS (`wss://`) | [`tls`]: rustls with the Mozilla or the system's roots; [`ServerBuilder::tls`] |
//! | HTTP and SOCKS5 proxies | [`proxy`]: explicit or from `https_proxy`, `all_proxy`, `no_proxy` |
//! | axum or hyper | `sockeye::axum::WebSocketUpgrade`, an extractor (feature `axum`); [`ServerBuilder::upgrade`] on a hyper request |
//! | to send without waiting | [`WebSocket::try_send`] (queued, backpressure or dropped) and [`WebSocket::buffered_amount`] |
//! | code without a runtime | [`blocking`]: the same API over `std::net` |
//! | many connections on few threads, no task each | `sockeye::event_loop` (feature `event-loop`, on by default): one `mio` loop per thread, callbacks, topics, the same policy |
//! | one message to many connections | [`hub`]: topics, publish once, slow-subscriber policy, Redis and NATS backplanes (crates `sockeye-redis`, `sockeye-nats`) |
//! | bounds against hostile peers | [`ServerBuilder`]'s limits and [`proto::Config`]: see [`guide::limits`] |
//! | the protocol engine, without I/O | [`proto`] (the crate `sockeye_proto`): drive it from any event loop |
//!
//! The [`guide`] walks through a chat server, a client that reconnects,
//! axum, TLS, limits and scaling out, one complete program each.
//!
//! The protocol itself lives in [`proto`], a sans-I/O engine; this crate
//! moves bytes between it and sockets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod blocking;
mod budget;
mod client;
mod drain;
mod error;
#[cfg(feature = "event-loop")]
pub mod event_loop;
pub mod guide;
#[cfg(feature = "http2")]
mod h2;
mod handshake_io;
#[cfg(feature = "http2")]
pub mod http2;
pub mod hub;
mod output;
pub mod policy;
pub mod proxy;
mod scratch;
mod server;
pub mod stats;
pub mod tls;
pub mod tokio;
#[cfg(feature = "hyper")]
pub mod upgrade;

pub use budget::{
    DEFAULT_MEMORY_BUDGET_FALLBACK, DEFAULT_MEMORY_BUDGET_TIMEOUT, MEMORY_BUDGET_SMALL_HOLDING,
};
pub use client::{
    ClientBuilder, Ending, Failure, HttpVersion, ReconnectError, ReconnectEvent, ReconnectPolicy,
    Reconnecting, client_handshake, connect,
};
pub use drain::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_DRAIN_WINDOW, Drain, DrainConfig, DrainReport};
pub use error::Error;
pub use output::Parts;
pub use policy::{ConnectionInfo, ServerBuilder};
pub use server::{accept, answer_refusal};
pub use sockeye_proto as proto;
pub use sockeye_proto::extension::deflate::DeflateConfig;
pub use sockeye_proto::{CloseCode, CloseFrame, Closed, Event, Message, Role, Utf8Bytes};

/// Sending one message to many connections, framed (and compressed) once:
///
/// ```
/// use sockeye::{Message, PreparedMessage, Role, WebSocket};
/// use sockeye::proto::Config;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sockeye::Error> {
/// # let mut servers = Vec::new();
/// # let mut clients = Vec::new();
/// # for _ in 0..3 {
/// #     let (a, b) = tokio::io::duplex(1 << 16);
/// #     servers.push(WebSocket::from_raw(a, Role::Server, Config::default(), &[]));
/// #     clients.push(WebSocket::from_raw(b, Role::Client, Config::default(), &[]));
/// # }
/// // `servers`: the connections of everyone in the room.
/// let prepared = PreparedMessage::new(Message::text("market open"));
/// for ws in &mut servers {
///     ws.send_prepared(&prepared).await?;
/// }
/// # for ws in &mut servers { ws.flush().await?; }
/// # for ws in &mut clients {
/// #     assert_eq!(ws.recv().await.unwrap()?.as_text(), Some("market open"));
/// # }
/// # Ok(())
/// # }
/// ```
///
/// For a room or topic that connections join and leave, the [`hub`] does
/// this for you, with a bounded queue per subscriber.
///
/// What follows is the engine's own documentation ([`proto`]):
#[doc(inline)]
pub use sockeye_proto::PreparedMessage;
pub use stats::{RefusalReason, ServerStats};
pub use tls::{ClientStream, ServerStream};
pub use tokio::{RecvHalf, SendHalf, SendStatus, WebSocket};
