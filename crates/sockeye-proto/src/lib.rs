//! The sans-I/O WebSocket protocol engine behind sockeye (RFC 6455).
//!
//! `sockeye-proto` holds the whole protocol and nothing else: no sockets,
//! no async runtime, no clock. Bytes go in, events come out, bytes to send
//! come out, and time is passed in. The `sockeye` crate's tokio and
//! blocking front-ends are thin loops around a [`Connection`]; so are
//! fuzzers and tests.
//!
//! ```
//! use sockeye_proto::{Connection, Config, Event, Message, Role};
//!
//! // Two engines, a client and a server, wired back to back.
//! let mut client = Connection::new(Role::Client, Config::default());
//! let mut server = Connection::new(Role::Server, Config::default());
//!
//! client.send(Message::text("hello")).unwrap();
//! let mut wire = Vec::new();
//! client.data_to_send(&mut wire);
//!
//! server.receive_data(&wire);
//! match server.next_event() {
//!     Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("hello")),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
//!
//! # How a front-end drives the engine
//!
//! 1. Feed what the transport read with [`Connection::receive_data`] (or
//!    hand over the buffer it was read into with
//!    [`Connection::receive_bytes`], or read straight into
//!    [`Connection::receive_buffer`]), and [`Connection::receive_eof`]
//!    when it ends.
//! 2. Take [`Event`]s with [`Connection::next_event`] until it returns
//!    `None`. Input is parsed lazily, here, in order: every message that
//!    arrived before a protocol violation is delivered before the
//!    [`Event::Closed`] that reports the violation.
//! 3. Queue messages with [`Connection::send`] and friends.
//! 4. Write what [`Connection::poll_transmit`] hands out, as one vectored
//!    write (corking: replies to everything parsed in step 2 leave
//!    together). Pongs go ahead of queued data at the next frame boundary.
//! 5. Sleep until [`Connection::poll_timeout`], then call
//!    [`Connection::handle_timeout`] (keepalive, pong and close timers).
//! 6. Once [`Connection::should_close_transport`] says so, shut the
//!    transport down (the server closes TCP first, RFC 6455 section 7.1.1).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod close;
mod config;
mod connection;
mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
mod message;
mod outgoing;
mod prepared;
mod role;
mod text;
mod timer;
pub mod utf8;

pub use bytes::{Bytes, BytesMut};
pub use close::{CloseCode, CloseFrame};
pub use config::{Config, DEFAULT_SERVER_KEEPALIVE_INTERVAL, DEFAULT_SERVER_MESSAGE_TIMEOUT};
pub use connection::{Closed, Connection, Event, Initiator, State};
pub use error::{Error, ProtocolError, Timeout};
pub use message::{Message, Utf8Bytes};
pub use prepared::PreparedMessage;
pub use role::Role;
