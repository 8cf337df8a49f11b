//! sockeye: WebSocket (RFC 6455) clients and servers for tokio and
//! blocking code.
//!
//! ```
//! use sockeye::{Message, Role, WebSocket};
//! use sockeye::proto::Config;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sockeye::Error> {
//! // Two ends of an in-memory pipe whose handshake is taken as done.
//! let (a, b) = tokio::io::duplex(1 << 16);
//! let mut client = WebSocket::from_raw(a, Role::Client, Config::default(), &[]);
//! let mut server = WebSocket::from_raw(b, Role::Server, Config::default(), &[]);
//!
//! client.send(Message::text("hello")).await?;
//! let message = server.recv().await.expect("a message")?;
//! assert_eq!(message.as_text(), Some("hello"));
//! # Ok(())
//! # }
//! ```
//!
//! The protocol itself lives in [`sockeye_proto`] (re-exported as
//! [`proto`]), a sans-I/O engine; this crate moves bytes between it and
//! sockets. Publish/subscribe (topics, fan-out, backplanes to other
//! nodes) is in [`hub`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod blocking;
mod budget;
mod client;
mod drain;
mod error;
mod handshake_io;
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
pub use client::{ClientBuilder, client_handshake, connect};
pub use drain::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_DRAIN_WINDOW, Drain, DrainConfig, DrainReport};
pub use error::Error;
pub use output::Parts;
pub use policy::{ConnectionInfo, ServerBuilder};
pub use server::{accept, answer_refusal};
pub use sockeye_proto as proto;
pub use sockeye_proto::extension::deflate::DeflateConfig;
pub use sockeye_proto::{
    CloseCode, CloseFrame, Closed, Event, Message, PreparedMessage, Role, Utf8Bytes,
};
pub use stats::{RefusalReason, ServerStats};
pub use tls::{ClientStream, ServerStream};
pub use tokio::{RecvHalf, SendHalf, SendStatus, WebSocket};
