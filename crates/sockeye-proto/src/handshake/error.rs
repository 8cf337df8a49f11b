//! Handshake errors: one type for both ends, grouped by who detected them.
//!
//! A server that refuses a request gets a [`HandshakeError`] carrying the
//! HTTP status to answer and can turn it into the full response with
//! [`HandshakeError::to_response`]. A client whose handshake failed gets a
//! [`HandshakeError`] whose [`status`](HandshakeError::status) is the status
//! the server answered (when that status was not 101), with a slot for the
//! response body that the I/O front-end may fill once it has read it.

use std::fmt;

use bytes::Bytes;
use http::header::{
    ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Response, StatusCode};

/// What went wrong, without the HTTP details (status, response) that
/// [`HandshakeError`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeErrorKind {
    /// The HTTP head does not follow HTTP/1.1 syntax (RFC 7230 section 3):
    /// a bare CR or LF, obsolete line folding, an invalid header name or
    /// value, or a malformed request or status line.
    MalformedHead(&'static str),
    /// The head did not end within the configured maximum size.
    HeadTooLarge {
        /// The configured maximum head size in bytes.
        max: usize,
    },
    /// The head had more header fields than the configured maximum.
    TooManyHeaders {
        /// The configured maximum number of header fields.
        max: usize,
    },
    /// The message is not HTTP/1.1 (RFC 6455 section 4.1 requires 1.1 or
    /// later, and later versions upgrade differently, see RFC 8441).
    UnsupportedHttpVersion,
    /// The request method is not GET.
    MethodNotAllowed,
    /// The request target is neither an origin-form path nor an absolute
    /// http(s)/ws(s) URI, or it carries a fragment.
    InvalidRequestTarget,
    /// The Host header field is missing, repeated or malformed.
    InvalidHost,
    /// The Upgrade header field does not name `websocket`.
    InvalidUpgrade,
    /// Over HTTP/2 (RFC 8441): a CONNECT without `:protocol websocket`.
    InvalidProtocol,
    /// The Connection header field lacks the `upgrade` token.
    InvalidConnection,
    /// The Sec-WebSocket-Key header field is missing, repeated, or not the
    /// base64 encoding of 16 bytes.
    InvalidKey,
    /// The Sec-WebSocket-Version header field is missing, repeated or not
    /// `13`.
    UnsupportedVersion,
    /// The Origin is not allowed by the server's policy.
    OriginRefused,
    /// A header field the handshake relies on is malformed or repeated when
    /// it must appear once.
    InvalidHeader {
        /// The header field.
        name: HeaderName,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server's request filter refused the request with its own
    /// response.
    Refused,
    /// The server's own subprotocol selector or extension negotiator broke
    /// its contract (chose something the client did not offer). A bug in
    /// the server application, answered with 500.
    NegotiationBug(&'static str),
    /// The server answered with a status other than 101 Switching
    /// Protocols (over HTTP/2, RFC 8441: other than 2xx).
    UnexpectedStatus,
    /// The Sec-WebSocket-Accept header field is missing, repeated or does
    /// not match the key the client sent.
    InvalidAccept,
    /// The server chose a subprotocol the client did not offer.
    UnofferedSubprotocol(String),
    /// The server accepted an extension the client did not offer, or the
    /// same extension twice.
    UnofferedExtension(String),
    /// The server's answer to an offered extension is invalid or does not
    /// match the offer (RFC 7692 section 7.1 for permessage-deflate).
    InvalidExtension {
        /// The extension.
        name: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The client was given a URI that is not a valid `ws://` or `wss://`
    /// URI (RFC 6455 section 3).
    InvalidUri(&'static str),
    /// A client option (origin, subprotocol, extension, header) is invalid.
    InvalidOption(&'static str),
}

impl fmt::Display for HandshakeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeErrorKind::MalformedHead(what) => write!(f, "malformed HTTP head: {what}"),
            HandshakeErrorKind::HeadTooLarge { max } => {
                write!(f, "HTTP head larger than {max} bytes")
            }
            HandshakeErrorKind::TooManyHeaders { max } => {
                write!(f, "more than {max} HTTP header fields")
            }
            HandshakeErrorKind::UnsupportedHttpVersion => {
                f.write_str("the WebSocket handshake requires HTTP/1.1")
            }
            HandshakeErrorKind::MethodNotAllowed => {
                f.write_str("the WebSocket handshake requires the GET method")
            }
            HandshakeErrorKind::InvalidRequestTarget => f.write_str("invalid request target"),
            HandshakeErrorKind::InvalidHost => f.write_str("missing or invalid Host header"),
            HandshakeErrorKind::InvalidProtocol => {
                f.write_str("a WebSocket over HTTP/2 is a CONNECT with :protocol websocket")
            }
            HandshakeErrorKind::InvalidUpgrade => {
                f.write_str("missing or invalid Upgrade header: expected websocket")
            }
            HandshakeErrorKind::InvalidConnection => {
                f.write_str("missing or invalid Connection header: expected upgrade")
            }
            HandshakeErrorKind::InvalidKey => {
                f.write_str("missing or invalid Sec-WebSocket-Key header")
            }
            HandshakeErrorKind::UnsupportedVersion => {
                f.write_str("missing or unsupported Sec-WebSocket-Version: expected 13")
            }
            HandshakeErrorKind::OriginRefused => f.write_str("origin not allowed"),
            HandshakeErrorKind::InvalidHeader { name, reason } => {
                write!(
                    f,
                    "invalid {} header: {reason}",
                    super::serialize::canonical_name(name)
                )
            }
            HandshakeErrorKind::Refused => f.write_str("refused by the server"),
            HandshakeErrorKind::NegotiationBug(what) => write!(f, "server error: {what}"),
            HandshakeErrorKind::UnexpectedStatus => {
                f.write_str("the server did not accept the WebSocket (101, or 200 over HTTP/2)")
            }
            HandshakeErrorKind::InvalidAccept => {
                f.write_str("missing or invalid Sec-WebSocket-Accept header")
            }
            HandshakeErrorKind::UnofferedSubprotocol(name) => {
                write!(
                    f,
                    "the server chose subprotocol {name:?}, which was not offered"
                )
            }
            HandshakeErrorKind::UnofferedExtension(name) => write!(
                f,
                "the server accepted extension {name:?}, which was not offered or was accepted twice"
            ),
            HandshakeErrorKind::InvalidExtension { name, reason } => {
                write!(f, "invalid answer to the {name} offer: {reason}")
            }
            HandshakeErrorKind::InvalidUri(what) => write!(f, "invalid WebSocket URI: {what}"),
            HandshakeErrorKind::InvalidOption(what) => {
                write!(f, "invalid handshake option: {what}")
            }
        }
    }
}

/// Which end found the problem: it decides what `status` means and whether
/// there is a response to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// We are the server: the status is ours to send.
    Server,
    /// We are the client: the status, if any, is the one we received.
    Client,
}

/// A failed opening handshake, on either end.
///
/// - Server side ([`ServerHandshake::accept`](super::ServerHandshake::accept),
///   [`RequestParser`](super::RequestParser)): [`status`](Self::status) is
///   the status to answer (400, 403, 405, 426, 431, 500, 505, or the status
///   of a custom refusal) and [`to_response`](Self::to_response) builds the
///   response to send before closing the connection.
/// - Client side ([`ClientHandshake`](super::ClientHandshake),
///   [`ResponseParser`](super::ResponseParser)): [`status`](Self::status)
///   is the status the server answered when it was not 101 (otherwise
///   `None`: a 101 with bad headers, a malformed response or a local
///   mistake), [`response`](Self::response) holds that response's head, and
///   [`body`](Self::body) the body once the front-end has read it with
///   [`set_body`](Self::set_body).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandshakeError {
    kind: HandshakeErrorKind,
    side: Side,
    status: Option<StatusCode>,
    /// Server side: a custom refusal to send as is. Client side: the head of
    /// the non-101 response received.
    response: Option<Box<Response<()>>>,
    /// Server side: the custom refusal's body. Client side: the received
    /// body, filled by the front-end.
    body: Option<Bytes>,
}

impl HandshakeError {
    /// A server-side refusal answered with `status`.
    pub(crate) fn reject(kind: HandshakeErrorKind, status: StatusCode) -> HandshakeError {
        HandshakeError {
            kind,
            side: Side::Server,
            status: Some(status),
            response: None,
            body: None,
        }
    }

    /// A server-side refusal with a response chosen by the application.
    /// A server's refusal with its own response (for example a 503 when
    /// the server is full): [`status`](Self::status) is its status and
    /// [`to_response`](Self::to_response) gives it back.
    pub fn refused(response: Response<Bytes>) -> HandshakeError {
        let (parts, body) = response.into_parts();
        let head = Response::from_parts(parts, ());
        HandshakeError {
            kind: HandshakeErrorKind::Refused,
            side: Side::Server,
            status: Some(head.status()),
            response: Some(Box::new(head)),
            body: Some(body),
        }
    }

    /// A client-side failure on a 101 response, a malformed response or a
    /// local mistake: no status.
    pub(crate) fn fail(kind: HandshakeErrorKind) -> HandshakeError {
        HandshakeError {
            kind,
            side: Side::Client,
            status: None,
            response: None,
            body: None,
        }
    }

    /// A client-side failure because the server answered `response` instead
    /// of 101.
    pub(crate) fn unexpected_status(response: &Response<()>) -> HandshakeError {
        let mut head = Response::new(());
        *head.status_mut() = response.status();
        *head.version_mut() = response.version();
        *head.headers_mut() = response.headers().clone();
        HandshakeError {
            kind: HandshakeErrorKind::UnexpectedStatus,
            side: Side::Client,
            status: Some(response.status()),
            response: Some(Box::new(head)),
            body: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &HandshakeErrorKind {
        &self.kind
    }

    /// Server side: the HTTP status to answer. Client side: the status the
    /// server answered when it was not 101, otherwise `None`.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// Whether this error was found by a server checking a request (and so
    /// has a response to send), rather than by a client.
    pub fn is_server_side(&self) -> bool {
        self.side == Side::Server
    }

    /// Client side: the head of the non-101 response the server sent (its
    /// `Location`, `WWW-Authenticate` or `Retry-After` may matter).
    /// Server side: the head of a custom refusal.
    pub fn response(&self) -> Option<&Response<()>> {
        self.response.as_deref()
    }

    /// The response body: on the client side once the front-end has filled
    /// it with [`set_body`](Self::set_body); on the server side the body of
    /// a custom refusal.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Stores the body of the non-101 response, read by the front-end after
    /// the head (this crate does no I/O and does not read bodies).
    pub fn set_body(&mut self, body: Bytes) {
        self.body = Some(body);
    }

    /// Server side: the complete response to send before closing the
    /// connection. Client side: `None`.
    ///
    /// Refusals built by this crate have a short `text/plain` body giving
    /// the reason, `Content-Length` and `Connection: close`; 405 adds
    /// `Allow: GET`; every 426 names the protocol to upgrade to
    /// (`Upgrade: websocket`, RFC 7231 section 6.5.15) and a 426 for the
    /// version adds `Sec-WebSocket-Version: 13` (RFC 6455 section 4.4).
    /// A custom refusal is sent as the application built it, with
    /// `Connection: close` added when it has no Connection header.
    pub fn to_response(&self) -> Option<Response<Bytes>> {
        if self.side != Side::Server {
            return None;
        }
        let status = self.status.unwrap_or(StatusCode::BAD_REQUEST);
        if let Some(head) = &self.response {
            let mut response = Response::new(self.body.clone().unwrap_or_default());
            *response.status_mut() = head.status();
            *response.version_mut() = head.version();
            *response.headers_mut() = head.headers().clone();
            if !response.headers().contains_key(CONNECTION) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return Some(response);
        }
        let mut response = rejection(status, &self.kind.to_string());
        let headers = response.headers_mut();
        match self.kind {
            HandshakeErrorKind::MethodNotAllowed => {
                headers.insert(ALLOW, HeaderValue::from_static("GET"));
            }
            HandshakeErrorKind::UnsupportedVersion => {
                headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 7230 section 6.7: whoever sends Upgrade also lists it in
            // Connection, so intermediaries do not forward it.
            // And the version it speaks (RFC 6455 section 4.4), so that a
            // broken WebSocket request learns how to mend itself.
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, close"));
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        Some(response)
    }
}

/// A refusal response: `status`, a `text/plain` body made of `reason` and a
/// newline, `Content-Length` and `Connection: close`.
///
/// Use it to refuse a request for reasons of your own (in a
/// [`ServerHandshake::filter_request`](super::ServerHandshake::filter_request)
/// or before calling [`accept`](super::ServerHandshake::accept)); add
/// headers such as `WWW-Authenticate` to the result.
pub fn rejection(status: StatusCode, reason: &str) -> Response<Bytes> {
    let mut body = String::with_capacity(reason.len() + 1);
    body.push_str(reason);
    body.push('\n');
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let length = response.body().len();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.side, self.status) {
            (Side::Server, Some(status)) => {
                write!(
                    f,
                    "WebSocket handshake refused with {status}: {}",
                    self.kind
                )
            }
            (Side::Client, Some(status)) => {
                // Over HTTP/2 (RFC 8441), a WebSocket opens with 200.
                let expected = match &self.response {
                    Some(head) if head.version() == http::Version::HTTP_2 => "200 OK",
                    _ => "101 Switching Protocols",
                };
                write!(
                    f,
                    "WebSocket handshake failed: the server answered {status} instead of {expected}"
                )
            }
            _ => write!(f, "WebSocket handshake failed: {}", self.kind),
        }
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rejection_names_the_supported_version_and_the_protocol() {
        let error = HandshakeError::reject(
            HandshakeErrorKind::UnsupportedVersion,
            StatusCode::UPGRADE_REQUIRED,
        );
        let response = error.to_response().unwrap();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        assert_eq!(response.headers()[UPGRADE], "websocket");
        assert_eq!(response.headers()[CONNECTION], "Upgrade, close");
        let length: usize = response.headers()[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, response.body().len());
    }

    #[test]
    fn method_rejection_allows_get() {
        let error = HandshakeError::reject(
            HandshakeErrorKind::MethodNotAllowed,
            StatusCode::METHOD_NOT_ALLOWED,
        );
        let response = error.to_response().unwrap();
        assert_eq!(response.headers()[ALLOW], "GET");
        assert_eq!(response.headers()[CONNECTION], "close");
        assert_eq!(
            &response.body()[..],
            b"the WebSocket handshake requires the GET method\n"
        );
    }

    #[test]
    fn client_errors_have_no_response_to_send() {
        let error = HandshakeError::fail(HandshakeErrorKind::InvalidAccept);
        assert!(error.to_response().is_none());
        assert_eq!(error.status(), None);
        assert!(!error.is_server_side());
    }

    #[test]
    fn unexpected_status_keeps_the_head_and_takes_a_body() {
        let mut received = Response::new(());
        *received.status_mut() = StatusCode::UNAUTHORIZED;
        received
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Basic"));
        let mut error = HandshakeError::unexpected_status(&received);
        assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            error.response().unwrap().headers()["www-authenticate"],
            "Basic"
        );
        assert_eq!(error.body(), None);
        error.set_body(Bytes::from_static(b"go away"));
        assert_eq!(error.body().unwrap(), &Bytes::from_static(b"go away"));
        assert_eq!(
            error.to_string(),
            "WebSocket handshake failed: the server answered 401 Unauthorized instead of 101 Switching Protocols"
        );
    }

    #[test]
    fn custom_refusal_is_sent_as_built_with_connection_close() {
        let mut custom = Response::new(Bytes::from_static(b"who are you?"));
        *custom.status_mut() = StatusCode::UNAUTHORIZED;
        custom
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        let error = HandshakeError::refused(custom);
        assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
        let response = error.to_response().unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(response.headers()[CONNECTION], "close");
        assert_eq!(&response.body()[..], b"who are you?");
    }
}
