//! The server side of WebSocket over HTTP/2 (RFC 8441): an HTTP/2
//! connection that advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`, whose
//! extended CONNECT streams are checked by the same policy as HTTP/1.1
//! upgrades and become WebSockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use http::header::{CONTENT_LENGTH, HeaderName};
use http::{Method, Request, Response, StatusCode};
use sockeye_proto::handshake::{self, HandshakeError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::stream::H2Stream;
use crate::error::Error;
use crate::policy::{ConnectionInfo, ServerBuilder, Via};
use crate::stats::RefusalReason;
use crate::tls::ServerStream;
use crate::tokio::WebSocket;

/// The flow-control window of each stream: what a peer may send a
/// WebSocket that is not reading (h2's and RFC 9113's default).
const STREAM_WINDOW: u32 = 65_535;

/// h2's budget for small DATA frames held unread (each frame under 256
/// bytes costs 256 minus its size until the application reads it): one
/// stream's whole window in 1-byte frames, so a WebSocket that falls
/// behind on small messages stalls only itself. h2's default (25,600,
/// about 100 small frames on the whole connection) closed the connection,
/// every WebSocket on it, with GOAWAY `ENHANCE_YOUR_CALM` as soon as one
/// application was ~100 small messages behind.
const DATA_FRAME_BUDGET: usize = STREAM_WINDOW as usize * 255;

/// One HTTP/2 connection being served: yields its requests, WebSocket
/// ones ([`Http2Request::WebSocket`]) and others, and drives the
/// connection (every stream's DATA in and out) while it is polled.
///
/// Keep calling [`next`](Http2Connection::next) until it returns `None`,
/// handing each WebSocket to a task of its own: the connection moves
/// bytes for all its WebSockets only while `next` is being awaited.
///
/// ```no_run
/// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), sockeye::Error> {
/// use sockeye::http2::Http2Request;
///
/// let server = sockeye::ServerBuilder::new();
/// let mut connection = server.accept_http2(tcp, sockeye::ConnectionInfo::default()).await?;
/// while let Some(request) = connection.next().await {
///     match request? {
///         Http2Request::WebSocket(pending) => {
///             let Ok(mut ws) = pending.accept() else { continue };
///             tokio::spawn(async move {
///                 while let Some(Ok(message)) = ws.recv().await {
///                     if ws.send(message).await.is_err() { break }
///                 }
///             });
///         }
///         Http2Request::Http(request) => {
///             let _ = request.respond(http::Response::new(bytes::Bytes::from("hello")));
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Http2Connection<T> {
    connection: h2::server::Connection<T, Bytes>,
    server: ServerBuilder,
    known: ConnectionInfo,
    /// The connection's WebSockets still open.
    live: Arc<AtomicUsize>,
    /// GOAWAY was sent: no new streams.
    going_away: bool,
    /// When the connection was last seen busy (a request, or a WebSocket
    /// open).
    busy_at: tokio::time::Instant,
}

impl<T> std::fmt::Debug for Http2Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("websockets", &self.live.load(Ordering::Acquire))
            .field("going_away", &self.going_away)
            .finish_non_exhaustive()
    }
}

/// A request that arrived on an HTTP/2 connection.
#[derive(Debug)]
pub enum Http2Request {
    /// A CONNECT: a WebSocket opening handshake (RFC 8441) when it carries
    /// `:protocol websocket`. [`PendingWebSocket::accept`] checks it
    /// against the server's policy and answers it.
    WebSocket(Box<PendingWebSocket>),
    /// Any other request (a page, a file): answer it with
    /// [`HttpRequest::respond`].
    Http(Box<HttpRequest>),
}

/// A WebSocket request over HTTP/2, not yet answered. Dropping it resets
/// the stream.
#[derive(Debug)]
pub struct PendingWebSocket {
    request: Request<()>,
    protocol: Option<String>,
    respond: SendResponse<Bytes>,
    body: RecvStream,
    server: ServerBuilder,
    known: ConnectionInfo,
    live: Arc<AtomicUsize>,
}

/// A request over HTTP/2 that is not a WebSocket's, not yet answered.
/// Dropping it resets the stream.
#[derive(Debug)]
pub struct HttpRequest {
    request: Request<()>,
    respond: SendResponse<Bytes>,
    /// Kept until the answer: dropping it first would reset the stream.
    _body: RecvStream,
}

impl ServerBuilder {
    /// Serves `io` as an HTTP/2 connection (after TLS chose `h2` by ALPN,
    /// or after [`detect`](crate::http2::detect) saw the connection
    /// preface): exchanges the settings, advertising
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL` and at most
    /// [`max_http2_streams`](Self::max_http2_streams) streams at once,
    /// within the [handshake timeout](Self::handshake_timeout). `known` is
    /// what the caller knows of the connection (client address, TLS),
    /// used by the policy's per-address cap and Origin checks.
    ///
    /// Each stream's flow-control window is 64 KiB and the connection's is
    /// that times the stream limit, so a WebSocket that does not read
    /// stalls only its own stream. A connection with no WebSocket open and
    /// no request for a handshake timeout is closed (GOAWAY), as an
    /// HTTP/1.1 connection that sends no request is; one that has not
    /// finished closing a handshake timeout after its GOAWAY, with no
    /// WebSocket left, is dropped.
    ///
    /// # Errors
    /// [`Error::OpenTimeout`], or the HTTP/2 error (a bad preface).
    ///
    /// # Cancel safety
    /// Dropping the future abandons the connection.
    pub async fn accept_http2<T>(
        &self,
        io: T,
        known: ConnectionInfo,
    ) -> Result<Http2Connection<T>, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let streams = self.max_http2_streams.max(1);
        let handshake = h2::server::Builder::new()
            .enable_connect_protocol()
            .max_concurrent_streams(streams)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(STREAM_WINDOW.saturating_mul(streams))
            .data_frame_budget(DATA_FRAME_BUDGET)
            .max_header_list_size(u32::try_from(self.max_head_size).unwrap_or(u32::MAX))
            .handshake(io);
        let connection = tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| Error::OpenTimeout)?
            .map_err(h2_error)?;
        self.counters().http2_connection();
        Ok(Http2Connection {
            connection,
            server: self.clone(),
            known,
            live: Arc::new(AtomicUsize::new(0)),
            going_away: false,
            busy_at: tokio::time::Instant::now(),
        })
    }

    /// How many WebSockets one HTTP/2 connection may carry at once (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; a client that opens more gets
    /// its extra streams refused). Each also counts under
    /// [`max_connections`](Self::max_connections). Default: 100
    /// ([`DEFAULT_MAX_HTTP2_STREAMS`](crate::policy::DEFAULT_MAX_HTTP2_STREAMS)).
    pub fn max_http2_streams(mut self, max: u32) -> ServerBuilder {
        self.max_http2_streams = max.max(1);
        self
    }
}

impl<T> Http2Connection<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// The next request, driving the connection until it comes; `None`
    /// once the connection has ended (the client closed it, or it went
    /// away after [`graceful_shutdown`](Self::graceful_shutdown), a
    /// drain of the server, or idleness, and its last stream ended).
    ///
    /// # Errors
    /// A connection error (the client broke the protocol, or the
    /// transport failed); `next` returns `None` after it.
    ///
    /// # Cancel safety
    /// Cancel-safe: no request is lost, and awaiting again goes on
    /// driving the connection.
    pub async fn next(&mut self) -> Option<Result<Http2Request, Error>> {
        let drain = self.server.drain.clone();
        let mut drain_started = std::pin::pin!(drain.started());
        let mut idle = std::pin::pin!(tokio::time::sleep_until(
            self.busy_at + self.server.handshake_timeout
        ));
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(accepted) = self.connection.poll_accept(cx) {
                    self.busy_at = tokio::time::Instant::now();
                    return Poll::Ready(accepted.map(|accepted| match accepted {
                        Ok((request, respond)) => Ok(self.classify(request, respond)),
                        Err(error) => Err(h2_error(error)),
                    }));
                }
                if !self.going_away && drain_started.as_mut().poll(cx).is_ready() {
                    // GOAWAY; poll the connection again so it is sent.
                    self.graceful_shutdown();
                    continue;
                }
                if idle.as_mut().poll(cx).is_ready() {
                    if self.websockets() != 0 {
                        self.busy_at = tokio::time::Instant::now();
                    } else if !self.going_away {
                        self.graceful_shutdown();
                    } else {
                        // h2's graceful shutdown waits for the client to
                        // answer its PING before the last GOAWAY: a client
                        // that never does would hold the connection open.
                        // A handshake timeout after the GOAWAY with no
                        // WebSocket left, it is dropped.
                        return Poll::Ready(None);
                    }
                    idle.as_mut()
                        .reset(self.busy_at + self.server.handshake_timeout);
                    continue;
                }
                return Poll::Pending;
            }
        })
        .await
    }

    /// Drives the connection without taking new requests (refusing any
    /// that come), until it has ended.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn run(mut self) {
        self.graceful_shutdown();
        while let Some(Ok(request)) = self.next().await {
            if let Http2Request::Http(request) = request {
                let _ = request.respond(refusal(StatusCode::SERVICE_UNAVAILABLE, "going away"));
            }
        }
    }

    /// Sends GOAWAY: the client may open no more streams, and the
    /// connection ends when its last stream has. The WebSockets go on
    /// until they close; a [drain](ServerBuilder::drain_handle) closes
    /// them with its code (1001 by default).
    pub fn graceful_shutdown(&mut self) {
        if !self.going_away {
            self.going_away = true;
            self.busy_at = tokio::time::Instant::now();
            self.connection.graceful_shutdown();
        }
    }

    /// The connection's WebSockets still open.
    pub fn websockets(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    fn classify(&self, request: Request<RecvStream>, respond: SendResponse<Bytes>) -> Http2Request {
        let (mut parts, body) = request.into_parts();
        let protocol = parts
            .extensions
            .remove::<h2::ext::Protocol>()
            .map(|protocol| protocol.as_str().to_owned());
        parts.extensions.insert(self.known);
        let request = Request::from_parts(parts, ());
        if request.method() == Method::CONNECT {
            Http2Request::WebSocket(Box::new(PendingWebSocket {
                request,
                protocol,
                respond,
                body,
                server: self.server.clone(),
                known: self.known,
                live: self.live.clone(),
            }))
        } else {
            Http2Request::Http(Box::new(HttpRequest {
                request,
                respond,
                _body: body,
            }))
        }
    }
}

impl PendingWebSocket {
    /// The request: its path, query, headers (`:authority` is the URI's).
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Checks the request against the server's policy (as an HTTP/1.1
    /// upgrade is checked, with RFC 8441's rules in place of the
    /// `Upgrade` ones) and its limits, and answers: `200` and the
    /// WebSocket, or the refusal's status (400, 403, 421, 503, ...) and
    /// the error.
    ///
    /// # Errors
    /// [`Error::Handshake`] when refused, or the HTTP/2 error if the
    /// stream was already reset.
    pub fn accept(self: Box<Self>) -> Result<WebSocket<ServerStream>, Error> {
        self.accept_with_request().map(|(ws, _)| ws)
    }

    /// Like [`accept`](Self::accept), and also returns the request.
    ///
    /// # Errors
    /// As [`accept`](Self::accept)'s.
    pub fn accept_with_request(
        self: Box<Self>,
    ) -> Result<(WebSocket<ServerStream>, Request<()>), Error> {
        let PendingWebSocket {
            request,
            protocol,
            mut respond,
            body,
            server,
            known,
            live,
        } = *self;
        let admitted = if body.is_end_stream() {
            // END_STREAM on the CONNECT's HEADERS: the client can send
            // nothing more, so there is no tunnel to open.
            server.record_refusal(RefusalReason::BadRequest);
            Err(HandshakeError::refused(handshake::rejection(
                StatusCode::BAD_REQUEST,
                "the CONNECT stream was ended with its headers",
            )))
        } else {
            let via = Via::Http2 {
                protocol: protocol.as_deref(),
            };
            server.admit_via(&request, known, via)
        };
        let admission = match admitted {
            Ok(admission) => admission,
            Err(error) => {
                if let Some(response) = error.to_response() {
                    send(&mut respond, response);
                }
                return Err(Error::Handshake(error));
            }
        };
        let send = respond
            .send_response(admission.response, false)
            .map_err(h2_error)?;
        server.counters().accepted_http2();
        live.fetch_add(1, Ordering::AcqRel);
        let stream = H2Stream::new(send, body).counted(live);
        let mut ws =
            WebSocket::from_engine(ServerStream::Http2(Box::new(stream)), admission.engine, &[]);
        ws.permit = Some(admission.permit);
        ws.budget = Some(admission.budget);
        Ok((ws, request))
    }

    /// Refuses the request with `response` (the application's own
    /// refusal: 404 for an unknown path, ...). Connection-specific
    /// headers, which HTTP/2 forbids, are left out.
    pub fn refuse(mut self: Box<Self>, response: Response<Bytes>) {
        self.server.record_refusal(RefusalReason::Application);
        send(&mut self.respond, response);
    }
}

impl HttpRequest {
    /// The request: its method, path, headers (`:authority` is the
    /// URI's).
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Answers with `response` (no body is sent for `HEAD`).
    /// Connection-specific headers, which HTTP/2 forbids, are left out.
    ///
    /// # Errors
    /// The HTTP/2 error if the stream was reset meanwhile.
    pub fn respond(mut self: Box<Self>, mut response: Response<Bytes>) -> Result<(), Error> {
        if self.request.method() == Method::HEAD {
            let length = response.body().len();
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, http::HeaderValue::from(length));
            *response.body_mut() = Bytes::new();
        }
        try_send(&mut self.respond, response)
    }
}

/// Sends `response` and its body, best effort (the client may have reset
/// the stream).
fn send(respond: &mut SendResponse<Bytes>, response: Response<Bytes>) {
    let _ = try_send(respond, response);
}

fn try_send(respond: &mut SendResponse<Bytes>, response: Response<Bytes>) -> Result<(), Error> {
    let (mut parts, body) = response.into_parts();
    strip_connection_headers(&mut parts.headers);
    let head = Response::from_parts(parts, ());
    let mut stream = respond
        .send_response(head, body.is_empty())
        .map_err(h2_error)?;
    if !body.is_empty() {
        // A page or a refusal: small, and the stream's window (64 KiB)
        // takes it at once; h2 queues what does not fit.
        stream.reserve_capacity(body.len());
        stream.send_data(body, true).map_err(h2_error)?;
    }
    Ok(())
}

/// Removes the header fields HTTP/2 forbids (RFC 9113 section 8.2.2):
/// a response built for HTTP/1.1 (`Connection: close`, ...) can be sent.
fn strip_connection_headers(headers: &mut http::HeaderMap) {
    let forbidden: Vec<HeaderName> = headers
        .keys()
        .filter(|name| handshake::is_connection_specific(name))
        .cloned()
        .collect();
    for name in forbidden {
        headers.remove(name);
    }
}

/// A small text response.
pub(crate) fn refusal(status: StatusCode, reason: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(format!("{reason}\n")));
    *response.status_mut() = status;
    response
}

/// An HTTP/2 error as sockeye's: I/O errors as such, the rest as the
/// protocol errors they are.
pub(crate) fn h2_error(error: h2::Error) -> Error {
    if error.is_io() {
        return match error.into_io() {
            Some(io) => Error::Io(io),
            None => Error::Io(std::io::Error::other("HTTP/2 I/O error")),
        };
    }
    Error::Io(std::io::Error::other(format!("HTTP/2: {error}")))
}
