//! Which end of the connection this engine plays (RFC 6455 section 5.1).
//!
//! The role decides masking: a client masks every frame it sends and
//! refuses masked frames; a server requires masked frames and never masks.
//! It also decides who closes the TCP connection first (section 7.1.1):
//! the server.

/// The end of a WebSocket connection an engine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection: masks what it sends.
    Client,
    /// The end that accepted the connection: requires masked frames.
    Server,
}

impl Role {
    /// Whether frames sent by this role carry a masking key.
    pub fn masks_outgoing(self) -> bool {
        self == Role::Client
    }

    /// Whether frames received by this role must carry a masking key.
    pub fn expects_masked(self) -> bool {
        self == Role::Server
    }
}
