//! The one error type of the `sockeye` crate, grouped by who is to blame.

use std::fmt;
use std::io;

use http::StatusCode;
use sockeye_proto::handshake::HandshakeError;
use sockeye_proto::{CloseCode, ProtocolError};

use crate::proxy::ProxyError;

/// Everything that can go wrong with a WebSocket connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connection refused or reset, broken pipe, ...).
    Io(io::Error),
    /// The opening handshake failed: a refused or malformed request or
    /// response. [`HandshakeError::status`] gives the HTTP status (the one
    /// answered on a server, the one received on a client).
    Handshake(HandshakeError),
    /// The TLS handshake failed (unknown certificate authority, name
    /// mismatch, protocol error).
    Tls(io::Error),
    /// The opening handshake did not finish in time. With
    /// [`ClientBuilder::connect`](crate::ClientBuilder::connect): while
    /// connecting (DNS, TCP) or during TLS; a server that does not answer
    /// the HTTP request in time gives [`Error::HandshakeTimeout`] instead,
    /// and a proxy that does not open the tunnel in time
    /// [`ProxyError::Timeout`]. On a server and with the blocking client:
    /// anywhere in the opening handshake.
    OpenTimeout,
    /// [`ClientBuilder::connect`](crate::ClientBuilder::connect) connected
    /// (TCP, and TLS for `wss://`) and sent its handshake request, but the
    /// server's answer did not arrive (or did not finish) within the open
    /// timeout: the server is most likely not a WebSocket (or HTTP)
    /// server, or is stuck.
    HandshakeTimeout,
    /// A `ws://` client's server answered the handshake request with a TLS
    /// record (an alert, as TLS servers do when they receive plain HTTP):
    /// the server expects TLS, connect with `wss://`. Recognised by
    /// [`ClientBuilder::connect`](crate::ClientBuilder::connect) and
    /// [`client_handshake`](crate::client_handshake).
    TlsExpected,
    /// The URL cannot be used: not `ws://` or `wss://`, or no host.
    InvalidUrl(String),
    /// The peer broke the protocol; the connection was failed with the
    /// error's close code ([`ProtocolError::close_code`]).
    Protocol(ProtocolError),
    /// The peer went silent: a keepalive Pong or the closing handshake did
    /// not arrive in time.
    Timeout(sockeye_proto::Timeout),
    /// The transport ended without a closing handshake (close code 1006).
    UnexpectedEof,
    /// The connection is closing or closed: nothing more can be sent.
    AlreadyClosed,
    /// This side ended the connection at once, dropping what it held, with
    /// a Close frame carrying this code if one could still be sent: a
    /// server over its memory budget
    /// ([`ServerBuilder::memory_budget`](crate::ServerBuilder::memory_budget))
    /// closes the connections holding the most with 1013 (try again later).
    Aborted(CloseCode),
    /// The application asked for something the protocol does not allow.
    InvalidInput(&'static str),
    /// This endpoint failed (its compressor broke); the connection was
    /// closed with 1011.
    Internal(&'static str),
    /// The proxy did not open a tunnel to the server, or its URL cannot be
    /// used; [`ProxyError::status`] gives an HTTP proxy's refusal status.
    Proxy(ProxyError),
    /// The server redirected more times than
    /// [`ClientBuilder::max_redirects`](crate::ClientBuilder::max_redirects)
    /// allows.
    TooManyRedirects {
        /// The configured maximum.
        max: usize,
    },
    /// The server answered the handshake with a redirect that cannot be
    /// followed: no `Location`, or one that is not a `ws`, `wss`, `http`
    /// or `https` URL.
    InvalidRedirect {
        /// The redirect status (301, 302, 303, 307 or 308).
        status: StatusCode,
        /// What is wrong with it.
        reason: String,
    },
    /// HTTP/2 was required
    /// ([`HttpVersion::Http2`](crate::HttpVersion::Http2), or opening an
    /// HTTP/2 session) but the server does not carry WebSockets over it:
    /// it did not choose `h2` by ALPN, or does not advertise
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 section 3). The text
    /// says which.
    Http2Unsupported(&'static str),
}

impl Error {
    /// The close code that describes this error, if it has one.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(error) => Some(error.close_code()),
            Error::UnexpectedEof | Error::Io(_) => Some(CloseCode::ABNORMAL),
            Error::Timeout(sockeye_proto::Timeout::Keepalive) => Some(CloseCode::INTERNAL_ERROR),
            Error::Aborted(code) => Some(*code),
            _ => None,
        }
    }
}

impl Error {
    /// The rustls error behind a failed TLS handshake ([`Error::Tls`]),
    /// to tell an unknown certificate authority
    /// (`InvalidCertificate(UnknownIssuer)`), a name mismatch or an
    /// expired certificate from a server that does not speak TLS at all
    /// (`InvalidMessage`, when it answers the ClientHello with plain
    /// HTTP).
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match self {
            Error::Tls(error) => error.get_ref()?.downcast_ref::<rustls::Error>(),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}

impl From<HandshakeError> for Error {
    fn from(error: HandshakeError) -> Self {
        Error::Handshake(error)
    }
}

impl From<sockeye_proto::Error> for Error {
    fn from(error: sockeye_proto::Error) -> Self {
        match error {
            sockeye_proto::Error::Protocol(error) => Error::Protocol(error),
            sockeye_proto::Error::Timeout(timeout) => Error::Timeout(timeout),
            sockeye_proto::Error::UnexpectedEof => Error::UnexpectedEof,
            sockeye_proto::Error::AlreadyClosed => Error::AlreadyClosed,
            sockeye_proto::Error::InvalidInput(what) => Error::InvalidInput(what),
            sockeye_proto::Error::Aborted(code) => Error::Aborted(code),
            sockeye_proto::Error::Internal(what) => Error::Internal(what),
            // The engine's error is non-exhaustive; a variant added later
            // is still a failed connection.
            _ => Error::UnexpectedEof,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "I/O error: {error}"),
            Error::Handshake(error) => write!(f, "handshake failed: {error}"),
            Error::Tls(error) => write!(f, "TLS handshake failed: {error}"),
            Error::OpenTimeout => f.write_str("opening handshake timed out"),
            Error::HandshakeTimeout => {
                f.write_str("connected, but no answer to the WebSocket handshake in time")
            }
            Error::TlsExpected => {
                f.write_str("the server answered with TLS: it expects wss://, not ws://")
            }
            Error::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            // The engine says which timer, in its words.
            Error::Timeout(timeout) => sockeye_proto::Error::Timeout(*timeout).fmt(f),
            Error::UnexpectedEof => f.write_str("connection closed without a close frame"),
            Error::AlreadyClosed => f.write_str("connection already closed"),
            Error::Aborted(code) => write!(f, "connection aborted (close code {code})"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::Internal(what) => write!(f, "internal error: {what}"),
            Error::Proxy(error) => write!(f, "{error}"),
            Error::TooManyRedirects { max } => {
                write!(f, "too many redirects (more than {max})")
            }
            Error::InvalidRedirect { status, reason } => {
                write!(f, "cannot follow redirect ({status}): {reason}")
            }
            Error::Http2Unsupported(why) => {
                write!(
                    f,
                    "the server does not support WebSocket over HTTP/2: {why}"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) | Error::Tls(error) => Some(error),
            Error::Protocol(error) => Some(error),
            Error::Handshake(error) => Some(error),
            Error::Proxy(error) => Some(error),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io(error) => error,
            other => io::Error::other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockeye_proto::Timeout;

    #[test]
    fn engine_errors_keep_their_kind_and_their_words() {
        let internal: Error = sockeye_proto::Error::Internal("compressor failed").into();
        assert!(matches!(internal, Error::Internal("compressor failed")));
        for timeout in [
            Timeout::Keepalive,
            Timeout::Close,
            Timeout::Idle,
            Timeout::Message,
        ] {
            let engine = sockeye_proto::Error::Timeout(timeout);
            assert_eq!(Error::from(engine.clone()).to_string(), engine.to_string());
        }
        assert_eq!(
            Error::Timeout(Timeout::Message).to_string(),
            "a message was not completed within the message timeout"
        );
    }
}
