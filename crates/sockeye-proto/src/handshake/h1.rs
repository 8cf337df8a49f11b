//! HTTP/1.1 heads: incremental, bounded parsing (RFC 7230 sections 3 and
//! 3.5).
//!
//! [`RequestParser`] and [`ResponseParser`] take bytes as the transport
//! delivers them and return the head once its blank line has arrived,
//! together with how many bytes of the last input it used: the rest belongs
//! to the WebSocket stream (or to a refusal's body) and is not touched.
//!
//! Parsing is linear in the input however it is split: each byte is looked
//! at once by the search for the end of the head, and `httparse` runs once,
//! on the complete head. Parsing is strict: lines end in CRLF (a bare CR or
//! LF is an error, as in Python `websockets`), obsolete line folding and
//! whitespace before a header's colon are errors (RFC 7230 sections 3.2.4
//! and 3.5), and header values are held to what [`http::HeaderValue`]
//! accepts. Bytes above 0x7F in values are kept as opaque data, as the
//! `http` crate does (RFC 7230 section 3.2.4).
//!
//! | limit | default | why |
//! |---|---|---|
//! | [`max_head_size`](RequestParser::max_head_size) | 16 KiB | Node.js's default; a browser handshake is under 1 KiB without cookies and rarely over 8 KiB with them |
//! | [`max_headers`](RequestParser::max_headers) | 64 | browsers send 10 to 20 header fields and proxies add a few; 64 leaves room and bounds the work per head |
//!
//! On the server side both limits are errors answered with 431 Request
//! Header Fields Too Large (RFC 6585 section 5).

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

use super::error::{HandshakeError, HandshakeErrorKind};

/// The default [`RequestParser::max_head_size`] and
/// [`ResponseParser::max_head_size`]: 16 KiB.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 16 * 1024;

/// The default [`RequestParser::max_headers`] and
/// [`ResponseParser::max_headers`]: 64.
pub const DEFAULT_MAX_HEADERS: usize = 64;

/// A complete head and how much of the last input it used.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The request or response head.
    pub head: T,
    /// How many bytes of the input passed to the call that completed the
    /// head belong to it: `input[consumed..]` comes after the head and was
    /// left untouched.
    pub consumed: usize,
}

/// Which end parses: decides the status of errors (the server answers
/// them, the client just fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// What the terminator search has seen of `CR LF CR LF` so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// In the middle of a line.
    Line,
    /// After a CR.
    Cr,
    /// After a CRLF: at the start of a line.
    LineStart,
    /// After CRLF CR.
    CrLfCr,
}

/// The bytes of a head so far and the state of the search for its end,
/// shared by both parsers.
#[derive(Debug, Clone)]
struct HeadBuffer {
    side: Side,
    buffer: Vec<u8>,
    scan: Scan,
    max_head_size: usize,
    max_headers: usize,
}

impl HeadBuffer {
    fn new(side: Side) -> HeadBuffer {
        HeadBuffer {
            side,
            buffer: Vec::new(),
            scan: Scan::Line,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }

    fn error(&self, kind: HandshakeErrorKind, status: StatusCode) -> HandshakeError {
        match self.side {
            Side::Server => HandshakeError::reject(kind, status),
            Side::Client => HandshakeError::fail(kind),
        }
    }

    fn malformed(&self, what: &'static str) -> HandshakeError {
        self.error(
            HandshakeErrorKind::MalformedHead(what),
            StatusCode::BAD_REQUEST,
        )
    }

    /// Forgets an incomplete head, after an error.
    fn clear(&mut self) {
        self.buffer = Vec::new();
        self.scan = Scan::Line;
    }

    /// Takes bytes until the end of the head. Returns the complete head and
    /// how many bytes of `input` it took, or `None` when more is needed.
    /// Either way, or on error, the buffer no longer holds a complete head.
    fn push(&mut self, input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HandshakeError> {
        // Never look past the limit: a huge input costs no more than a
        // full head.
        let room = self.max_head_size.saturating_sub(self.buffer.len());
        let window = &input[..input.len().min(room)];
        let mut end = None;
        for (index, &byte) in window.iter().enumerate() {
            self.scan = match (self.scan, byte) {
                (Scan::LineStart, b'\r') => Scan::CrLfCr,
                (Scan::Line, b'\r') => Scan::Cr,
                (Scan::Cr, b'\n') => Scan::LineStart,
                (Scan::CrLfCr, b'\n') => {
                    end = Some(index + 1);
                    break;
                }
                (Scan::Cr | Scan::CrLfCr, _) => {
                    self.clear();
                    return Err(self.malformed("bare CR"));
                }
                (_, b'\n') => {
                    self.clear();
                    return Err(self.malformed("bare LF"));
                }
                _ => Scan::Line,
            };
        }
        match end {
            Some(end) => {
                let mut head = std::mem::take(&mut self.buffer);
                head.extend_from_slice(&window[..end]);
                self.scan = Scan::Line;
                Ok(Some((head, end)))
            }
            None if window.len() < input.len() => {
                self.clear();
                Err(self.error(
                    HandshakeErrorKind::HeadTooLarge {
                        max: self.max_head_size,
                    },
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ))
            }
            None => {
                self.buffer.extend_from_slice(window);
                Ok(None)
            }
        }
    }

    fn map_httparse(&self, error: httparse::Error) -> HandshakeError {
        match error {
            httparse::Error::TooManyHeaders => self.error(
                HandshakeErrorKind::TooManyHeaders {
                    max: self.max_headers,
                },
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            httparse::Error::Version => self.error(
                HandshakeErrorKind::UnsupportedHttpVersion,
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ),
            httparse::Error::HeaderName => self.malformed("invalid header name"),
            httparse::Error::HeaderValue => self.malformed("invalid header value"),
            httparse::Error::NewLine => self.malformed("invalid line ending"),
            httparse::Error::Status => self.malformed("invalid status code"),
            httparse::Error::Token => self.malformed("invalid method or request line"),
        }
    }

    fn headers(&self, parsed: &[httparse::Header<'_>]) -> Result<http::HeaderMap, HandshakeError> {
        let mut headers = http::HeaderMap::with_capacity(parsed.len());
        for header in parsed {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| self.malformed("invalid header name"))?;
            let value = HeaderValue::from_bytes(header.value)
                .map_err(|_| self.malformed("invalid header value"))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

fn version(minor: Option<u8>) -> Version {
    match minor {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

macro_rules! limit_setters {
    () => {
        /// The largest head accepted, in bytes, counting the request or
        /// status line, the header fields and the blank line that ends the
        /// head. Default: [`DEFAULT_MAX_HEAD_SIZE`] (16 KiB).
        pub fn max_head_size(mut self, bytes: usize) -> Self {
            self.inner.max_head_size = bytes;
            self
        }

        /// The most header fields accepted. Default: [`DEFAULT_MAX_HEADERS`]
        /// (64).
        pub fn max_headers(mut self, count: usize) -> Self {
            self.inner.max_headers = count;
            self
        }

        /// How many bytes of an incomplete head are held.
        pub fn buffered(&self) -> usize {
            self.inner.buffer.len()
        }
    };
}

/// Parses a client's request head, incrementally (server side).
///
/// ```
/// use sockeye_proto::handshake::RequestParser;
///
/// let mut parser = RequestParser::new();
/// assert!(parser.parse(b"GET /chat HTTP/1.1\r\nHost: exa").unwrap().is_none());
/// let parsed = parser.parse(b"mple.com\r\n\r\n\x81\x80").unwrap().unwrap();
/// assert_eq!(parsed.head.uri(), "/chat");
/// assert_eq!(parsed.head.headers()["host"], "example.com");
/// assert_eq!(parsed.consumed, 12); // the two frame bytes are not part of it
/// ```
///
/// Errors carry the status to answer: 400 for malformed heads, 431 past
/// the limits, 505 for a version other than HTTP/1.0 or HTTP/1.1 (HTTP/1.0
/// parses, and [`ServerHandshake`](super::ServerHandshake) refuses it with
/// 400). After returning a head or an error the parser is empty again.
#[derive(Debug, Clone)]
pub struct RequestParser {
    inner: HeadBuffer,
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser::new()
    }
}

impl RequestParser {
    /// A parser with the default limits.
    pub fn new() -> RequestParser {
        RequestParser {
            inner: HeadBuffer::new(Side::Server),
        }
    }

    limit_setters!();

    /// Feeds the next bytes read from the client. Returns the request once
    /// its head is complete, `None` while more bytes are needed.
    pub fn parse(&mut self, input: &[u8]) -> Result<Option<Parsed<Request<()>>>, HandshakeError> {
        let Some((head, consumed)) = self.inner.push(input)? else {
            return Ok(None);
        };
        let mut slots = vec![httparse::EMPTY_HEADER; self.inner.max_headers];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            // The blank line ended the head before a request line: only
            // empty lines arrived.
            Ok(httparse::Status::Partial) => return Err(self.inner.malformed("empty request")),
            Err(error) => return Err(self.inner.map_httparse(error)),
        }
        let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
            return Err(self.inner.malformed("incomplete request line"));
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| self.inner.malformed("invalid method"))?;
        // http::Uri silently drops a fragment; a request target never
        // carries one (RFC 7230 section 5.3).
        if target.contains('#') {
            return Err(self.inner.error(
                HandshakeErrorKind::InvalidRequestTarget,
                StatusCode::BAD_REQUEST,
            ));
        }
        let uri = Uri::try_from(target).map_err(|_| {
            self.inner.error(
                HandshakeErrorKind::InvalidRequestTarget,
                StatusCode::BAD_REQUEST,
            )
        })?;
        let headers = self.inner.headers(parsed.headers)?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = version(parsed.version);
        *request.headers_mut() = headers;
        Ok(Some(Parsed {
            head: request,
            consumed,
        }))
    }
}

/// Parses a server's response head, incrementally (client side).
///
/// Errors are client-side failures without a status. The body of a non-101
/// response is not read: it starts at `input[consumed..]`.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    inner: HeadBuffer,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser::new()
    }
}

impl ResponseParser {
    /// A parser with the default limits.
    pub fn new() -> ResponseParser {
        ResponseParser {
            inner: HeadBuffer::new(Side::Client),
        }
    }

    limit_setters!();

    /// Feeds the next bytes read from the server. Returns the response once
    /// its head is complete, `None` while more bytes are needed.
    pub fn parse(&mut self, input: &[u8]) -> Result<Option<Parsed<Response<()>>>, HandshakeError> {
        let Some((head, consumed)) = self.inner.push(input)? else {
            return Ok(None);
        };
        let mut slots = vec![httparse::EMPTY_HEADER; self.inner.max_headers];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(self.inner.malformed("empty response")),
            Err(error) => return Err(self.inner.map_httparse(error)),
        }
        let status = parsed
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| self.inner.malformed("invalid status code"))?;
        let headers = self.inner.headers(parsed.headers)?;
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version(parsed.version);
        *response.headers_mut() = headers;
        Ok(Some(Parsed {
            head: response,
            consumed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n";

    fn request_error(input: &[u8]) -> HandshakeError {
        RequestParser::new().parse(input).unwrap_err()
    }

    #[test]
    fn whole_request_in_one_call() {
        let parsed = RequestParser::new().parse(REQUEST).unwrap().unwrap();
        assert_eq!(parsed.consumed, REQUEST.len());
        assert_eq!(parsed.head.method(), Method::GET);
        assert_eq!(parsed.head.uri(), "/chat");
        assert_eq!(parsed.head.version(), Version::HTTP_11);
        assert_eq!(parsed.head.headers().len(), 2);
        assert_eq!(parsed.head.headers()["upgrade"], "websocket");
    }

    #[test]
    fn parser_is_empty_again_after_a_head() {
        let mut parser = RequestParser::new();
        let mut twice = REQUEST.to_vec();
        twice.extend_from_slice(REQUEST);
        let first = parser.parse(&twice).unwrap().unwrap();
        assert_eq!(parser.buffered(), 0);
        let second = parser.parse(&twice[first.consumed..]).unwrap().unwrap();
        assert_eq!(second.consumed, REQUEST.len());
    }

    #[test]
    fn line_endings_must_be_crlf() {
        let bare_lf = request_error(b"GET / HTTP/1.1\nHost: a\r\n\r\n");
        assert_eq!(
            bare_lf.kind(),
            &HandshakeErrorKind::MalformedHead("bare LF")
        );
        assert_eq!(bare_lf.status(), Some(StatusCode::BAD_REQUEST));
        let bare_cr = request_error(b"GET / HTTP/1.1\rHost: a\r\n\r\n");
        assert_eq!(
            bare_cr.kind(),
            &HandshakeErrorKind::MalformedHead("bare CR")
        );
        let cr_cr = request_error(b"GET / HTTP/1.1\r\n\r\r\n");
        assert_eq!(cr_cr.kind(), &HandshakeErrorKind::MalformedHead("bare CR"));
    }

    #[test]
    fn malformed_heads_are_400() {
        for (input, what) in [
            (
                &b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"[..],
                "invalid header name",
            ),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "invalid header name"),
            (
                b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
                "invalid header value",
            ),
            (b"GET  / HTTP/1.1\r\n\r\n", "invalid method or request line"),
            (b"\r\n\r\n", "empty request"),
        ] {
            let error = request_error(input);
            assert_eq!(
                error.kind(),
                &HandshakeErrorKind::MalformedHead(what),
                "{input:?}"
            );
            assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
        }
    }

    #[test]
    fn fragments_in_the_target_are_refused() {
        let error = request_error(b"GET /chat#x HTTP/1.1\r\n\r\n");
        assert_eq!(error.kind(), &HandshakeErrorKind::InvalidRequestTarget);
    }

    #[test]
    fn versions_other_than_1x_are_505() {
        let error = request_error(b"GET / HTTP/2.0\r\n\r\n");
        assert_eq!(error.kind(), &HandshakeErrorKind::UnsupportedHttpVersion);
        assert_eq!(error.status(), Some(StatusCode::HTTP_VERSION_NOT_SUPPORTED));
        let parsed = RequestParser::new()
            .parse(b"GET / HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.head.version(), Version::HTTP_10);
    }

    #[test]
    fn head_size_limit_counts_the_blank_line() {
        let exact = RequestParser::new()
            .max_head_size(REQUEST.len())
            .parse(REQUEST);
        assert!(exact.unwrap().is_some());
        let error = RequestParser::new()
            .max_head_size(REQUEST.len() - 1)
            .parse(REQUEST)
            .unwrap_err();
        assert_eq!(
            error.kind(),
            &HandshakeErrorKind::HeadTooLarge {
                max: REQUEST.len() - 1
            }
        );
        assert_eq!(
            error.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn header_count_limit() {
        let two = RequestParser::new().max_headers(2).parse(REQUEST);
        assert!(two.unwrap().is_some());
        let error = RequestParser::new()
            .max_headers(1)
            .parse(REQUEST)
            .unwrap_err();
        assert_eq!(error.kind(), &HandshakeErrorKind::TooManyHeaders { max: 1 });
        assert_eq!(
            error.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn response_errors_are_client_failures() {
        let error = ResponseParser::new()
            .parse(b"HTTP/1.1 1010 Nope\r\n\r\n")
            .unwrap_err();
        assert_eq!(error.status(), None);
        assert!(!error.is_server_side());
        let parsed = ResponseParser::new()
            .parse(b"HTTP/1.1 404 Not Found\r\n\r\nbody")
            .unwrap();
        let parsed = parsed.unwrap();
        assert_eq!(parsed.head.status(), StatusCode::NOT_FOUND);
        assert_eq!(parsed.consumed, 26);
    }

    /// Outcome of parsing `input` split at `splits`, as comparable values.
    fn outcome(input: &[u8], splits: &[usize]) -> Result<Option<(String, usize)>, String> {
        let mut parser = RequestParser::new().max_head_size(256).max_headers(4);
        let mut offset = 0;
        let mut points: Vec<usize> = splits
            .iter()
            .map(|split| split % (input.len() + 1))
            .collect();
        points.sort_unstable();
        points.push(input.len());
        for point in points {
            let chunk = &input[offset..point.max(offset)];
            match parser.parse(chunk) {
                Ok(Some(parsed)) => {
                    let head = format!("{:?}", parsed.head);
                    return Ok(Some((head, offset + parsed.consumed)));
                }
                Ok(None) => offset = point.max(offset),
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(None)
    }

    proptest::proptest! {
        #[test]
        fn splitting_the_input_never_changes_the_outcome(
            cut in 0..=REQUEST.len(),
            tail in proptest::collection::vec(
                proptest::sample::select(b"GET / HTTP/1.1\r\nHost: a\r\n:\t\x00\xff".to_vec()),
                0..300,
            ),
            splits in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let input = [&REQUEST[..cut], &tail].concat();
            proptest::prop_assert_eq!(outcome(&input, &splits), outcome(&input, &[]));
        }
    }
}
