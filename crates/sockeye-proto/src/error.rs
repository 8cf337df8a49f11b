//! Errors, grouped by who is to blame.
//!
//! - [`ProtocolError`]: the peer broke RFC 6455; each variant names the close
//!   code the engine sent for it ([`ProtocolError::close_code`]).
//! - [`Error::Timeout`]: the peer went silent (keepalive or closing
//!   handshake).
//! - [`Error::UnexpectedEof`]: the transport ended without a Close frame.
//! - [`Error::AlreadyClosed`], [`Error::InvalidInput`]: local misuse, such as
//!   sending after the connection closed or a 126-byte ping.

use std::fmt;

use crate::close::CloseCode;

/// A violation of the protocol by the peer. The engine fails the connection
/// with [`ProtocolError::close_code`] when it sees one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 was set without an extension that owns the bit.
    ReservedBits(u8),
    /// An opcode reserved for future use (0x3-0x7, 0xB-0xF).
    ReservedOpcode(u8),
    /// A server received a frame without a masking key.
    UnmaskedFrame,
    /// A client received a frame with a masking key.
    MaskedFrame,
    /// A control frame without the FIN bit.
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLong(u64),
    /// A 64-bit payload length with its most significant bit set.
    InvalidLength,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was unfinished.
    ExpectedContinuation,
    /// A text message or a close reason that is not valid UTF-8.
    InvalidUtf8,
    /// A Close frame with a one-byte payload.
    InvalidClosePayload,
    /// A Close frame with a code that may not be sent (RFC 6455 section 7.4).
    InvalidCloseCode(u16),
    /// A Close frame whose reason is not valid UTF-8.
    InvalidCloseReason,
    /// A frame larger than the configured maximum.
    FrameTooLarge {
        /// The announced payload length.
        size: u64,
        /// The configured maximum frame size.
        max: usize,
    },
    /// A message larger than the configured maximum, counting the
    /// per-fragment overhead of fragmented messages and, for a compressed
    /// message, its inflated size.
    MessageTooLarge {
        /// The configured maximum message size.
        max: usize,
    },
    /// A compressed message (permessage-deflate) whose data is not valid
    /// DEFLATE.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code the engine sends when the peer commits this violation.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, sent in the Close frame.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBits(_) => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::UnmaskedFrame => "frame not masked",
            ProtocolError::MaskedFrame => "frame masked",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::ControlFrameTooLong(_) => "control frame too long",
            ProtocolError::InvalidLength => "invalid payload length",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text message",
            ProtocolError::InvalidClosePayload => "one-byte close payload",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidCloseReason => "invalid UTF-8 in close reason",
            ProtocolError::FrameTooLarge { .. } => "frame too large",
            ProtocolError::MessageTooLarge { .. } => "message too large",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits(bits) => write!(f, "reserved bits set: {bits:#05b}"),
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ControlFrameTooLong(len) => {
                write!(f, "control frame of {len} bytes (at most 125 allowed)")
            }
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the limit of {max}")
            }
            ProtocolError::MessageTooLarge { max } => {
                write!(f, "message exceeds the limit of {max} bytes")
            }
            other => f.write_str(other.reason()),
        }?;
        write!(f, " (close code {})", self.close_code())
    }
}

impl std::error::Error for ProtocolError {}

/// Which timer expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// A keepalive ping got no pong in time.
    Keepalive,
    /// The peer did not complete the closing handshake in time.
    Close,
    /// Nothing arrived from the peer within the idle timeout; the engine
    /// closed with 1001.
    Idle,
    /// A frame or message the peer started was not finished within the
    /// message-completion timeout; the engine closed with 1008.
    Message,
}

/// Every error the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; the connection was failed with the
    /// error's close code.
    Protocol(ProtocolError),
    /// A timer expired: the peer is gone or too slow.
    Timeout(Timeout),
    /// The transport ended before the closing handshake (close code 1006).
    UnexpectedEof,
    /// The connection is closing or closed: nothing more can be sent.
    AlreadyClosed,
    /// The application asked for something the protocol does not allow,
    /// such as a control payload over 125 bytes or a reserved close code.
    InvalidInput(&'static str),
    /// This endpoint failed (its compressor broke); the connection was
    /// closed with 1011.
    Internal(&'static str),
    /// This endpoint ended the connection at once with
    /// [`Connection::abort`](crate::Connection::abort), dropping what it
    /// held, with a Close frame carrying this code if one could still be
    /// sent (a server shedding load sends 1013, try again later).
    Aborted(CloseCode),
}

impl Error {
    /// The close code that describes this error to a peer, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(error) => Some(error.close_code()),
            Error::Timeout(Timeout::Keepalive) | Error::Internal(_) => {
                Some(CloseCode::INTERNAL_ERROR)
            }
            Error::Timeout(Timeout::Message) => Some(CloseCode::POLICY_VIOLATION),
            Error::UnexpectedEof => Some(CloseCode::ABNORMAL),
            Error::Aborted(code) => Some(*code),
            _ => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        Error::Protocol(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            Error::Timeout(Timeout::Keepalive) => f.write_str("keepalive ping timed out"),
            Error::Timeout(Timeout::Close) => f.write_str("closing handshake timed out"),
            Error::Timeout(Timeout::Idle) => f.write_str("connection idle for too long"),
            Error::Timeout(Timeout::Message) => {
                f.write_str("a message was not completed within the message timeout")
            }
            Error::UnexpectedEof => f.write_str("connection closed without a close frame"),
            Error::AlreadyClosed => f.write_str("connection already closed"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::Internal(what) => write!(f, "internal error: {what}"),
            Error::Aborted(code) => write!(f, "connection aborted (close code {code})"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(error) => Some(error),
            _ => None,
        }
    }
}
