//! Why a permessage-deflate offer or response was refused.

use std::fmt;

/// Why a permessage-deflate offer (on a server) or response (on a client)
/// is not acceptable (RFC 7692 section 7.1).
///
/// A server that meets one of these declines the offer and tries the next;
/// a client that meets one must _Fail the WebSocket Connection_.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeflateError {
    /// permessage-deflate is disabled by [`DeflateConfig::enabled`](super::DeflateConfig::enabled).
    Disabled,
    /// The extension is not `permessage-deflate`.
    NotDeflate(String),
    /// A parameter RFC 7692 does not define (for an offer, or a response).
    UnknownParameter(String),
    /// A parameter given twice (names compared ASCII case-insensitively).
    DuplicateParameter(&'static str),
    /// A value on a parameter that takes none (the `*_no_context_takeover`
    /// parameters).
    UnexpectedValue(&'static str),
    /// A parameter that needs a value came without one
    /// (`server_max_window_bits`, or `client_max_window_bits` in a
    /// response).
    MissingValue(&'static str),
    /// A window size that is not a decimal integer from 8 to 15 written
    /// without leading zeros.
    InvalidWindowBits {
        /// The parameter.
        param: &'static str,
        /// The value as received.
        value: String,
    },
    /// The response carries a parameter the offer does not allow: a
    /// `client_max_window_bits` the client did not offer.
    UnofferedParameter(&'static str),
    /// The response lacks a parameter the offer requires:
    /// `server_no_context_takeover` or `server_max_window_bits` when the
    /// client offered them.
    MissingParameter(&'static str),
    /// The response's window size exceeds the offered limit.
    WindowBitsTooLarge {
        /// The parameter.
        param: &'static str,
        /// The limit the client offered.
        offered: u8,
        /// The value the server answered.
        answered: u8,
    },
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeflateError::Disabled => f.write_str("permessage-deflate is disabled"),
            DeflateError::NotDeflate(name) => {
                write!(f, "extension {name:?} is not permessage-deflate")
            }
            DeflateError::UnknownParameter(name) => {
                write!(f, "unknown permessage-deflate parameter {name:?}")
            }
            DeflateError::DuplicateParameter(name) => {
                write!(f, "permessage-deflate parameter {name} is repeated")
            }
            DeflateError::UnexpectedValue(name) => {
                write!(f, "permessage-deflate parameter {name} takes no value")
            }
            DeflateError::MissingValue(name) => {
                write!(f, "permessage-deflate parameter {name} needs a value")
            }
            DeflateError::InvalidWindowBits { param, value } => write!(
                f,
                "permessage-deflate parameter {param}={value:?} is not a window size from 8 to 15"
            ),
            DeflateError::UnofferedParameter(name) => {
                write!(f, "the response has {name}, which was not offered")
            }
            DeflateError::MissingParameter(name) => {
                write!(f, "the response lacks {name}, which was offered")
            }
            DeflateError::WindowBitsTooLarge {
                param,
                offered,
                answered,
            } => write!(
                f,
                "the response has {param}={answered}, above the offered {offered}"
            ),
        }
    }
}

impl std::error::Error for DeflateError {}
