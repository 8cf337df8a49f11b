//! The connection state machine (RFC 6455 sections 5, 6 and 7).
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::Error;
use crate::message::{Message, Utf8Bytes};
use crate::role::Role;

/// Where a connection is in its life (RFC 6455 section 4.1's states, after
/// the opening handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close frame and wait for the peer's.
    Closing,
    /// The closing handshake is over, failed or timed out; no more events
    /// but [`Event::Closed`].
    Closed,
}

/// Which side started the end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This endpoint: it sent the first Close frame, failed the connection
    /// or timed out.
    Local,
    /// The peer: it sent the first Close frame or the transport ended.
    Remote,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Who started the end.
    pub initiated_by: Initiator,
    /// The Close frame this endpoint sent, if any (`Some` with an empty
    /// reason and no code is not possible: an empty Close is `None` here
    /// and `close_sent` is true).
    pub sent: Option<CloseFrame>,
    /// The Close frame the peer sent, if one arrived with a code.
    pub received: Option<CloseFrame>,
    /// Why the connection ended abnormally, or `None` for a clean close.
    pub error: Option<Error>,
}

impl Closed {
    /// The code that best describes the end: the peer's if it sent one,
    /// else ours, else 1005 after an empty Close frame exchange, else 1006.
    pub fn code(&self) -> CloseCode {
        todo!()
    }

    /// Whether the closing handshake completed without an error.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
    }
}

/// What the engine reports, in the order things arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// A Ping arrived (already answered if `auto_pong` is on).
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The connection ended; this is the last event.
    Closed(Closed),
}

/// A sans-I/O WebSocket connection after its opening handshake.
#[derive(Debug)]
pub struct Connection {
    _private: (),
}

impl Connection {
    /// A connection playing `role` with `config`.
    pub fn new(role: Role, config: Config) -> Connection {
        let _ = (role, config);
        todo!()
    }
}
