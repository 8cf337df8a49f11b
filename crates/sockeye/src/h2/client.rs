//! The client's HTTP/2 connections (RFC 8441): one connection to an
//! origin carrying any number of WebSockets, each on a stream of its own
//! opened by an extended CONNECT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use h2::client::SendRequest;
use h2::ext::Protocol;
use http::Response;
use sockeye_proto::Config;
use sockeye_proto::extension::deflate::DeflateConfig;
use sockeye_proto::handshake::{ClientHandshake, WEBSOCKET_PROTOCOL};

use super::stream::{H2Stream, to_io};
use crate::client::{Answer, ClientBuilder, MAX_ERROR_BODY, Target, client_engine, is_redirect};
use crate::error::Error;
use crate::tls::ClientStream;
use crate::tokio::WebSocket;

/// Each WebSocket stream's receive window: how much the server may send
/// that the WebSocket has not read yet. A WebSocket that stops reading
/// holds at most this much; 256 KiB keeps one stream fast over a link of
/// some latency (h2's default, 64 KiB, halves throughput at 20 ms).
const STREAM_WINDOW: u32 = 256 * 1024;

/// The connection's receive window: what all its streams together may
/// hold unread. Sixty-four streams' worth, so that up to 64 WebSockets
/// that stop reading still leave room for their neighbours (a stalled
/// reader stalls its own stream, not the connection), while one
/// connection never buffers more than 16 MiB.
const CONNECTION_WINDOW: u32 = 64 * STREAM_WINDOW;

/// h2's budget for small DATA frames held unread (each frame under 256
/// bytes costs 256 minus its size until the WebSocket reads it): one
/// stream's whole window in 1-byte frames, as the server has. h2's
/// default (25,600, about 100 small frames on the whole connection)
/// made the client close its own connection, every WebSocket on it,
/// with GOAWAY `ENHANCE_YOUR_CALM` as soon as one WebSocket fell ~100
/// small messages behind.
const DATA_FRAME_BUDGET: usize = STREAM_WINDOW as usize * 255;

/// How long a refusal's body is waited for.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP/2 connection to one origin (scheme, host and port) that
/// carries WebSockets (RFC 8441): each [`connect`](Http2Session::connect)
/// opens one more on a new stream of the same connection.
///
/// Each WebSocket is independent: its close ends only its own stream
/// (`END_STREAM` after the closing handshake), a reset or protocol error
/// ends only its own stream, and a WebSocket that stops reading stalls
/// only its own stream (HTTP/2 flow control is its backpressure). The
/// connection is driven by a task of its own, spawned on the current
/// tokio runtime; it ends once the session (all its clones) and all its
/// WebSockets are dropped, or when the server ends it.
///
/// ```no_run
/// # async fn demo() -> Result<(), sockeye::Error> {
/// use sockeye::ClientBuilder;
/// use sockeye::http2::Http2Session;
///
/// let session = Http2Session::open(&ClientBuilder::new("wss://example.com/")).await?;
/// let (chat, _) = session.builder("/chat").subprotocols(["chat"]).connect().await?;
/// let (feed, _) = session.connect(&ClientBuilder::new("wss://example.com/feed")).await?;
/// // Two WebSockets, one TCP connection.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Http2Session {
    inner: Arc<Session>,
}

#[derive(Debug)]
struct Session {
    send: SendRequest<Bytes>,
    /// Where the connection goes (after any proxy).
    target: Target,
    /// `wss://host[:port]`, for [`Http2Session::builder`].
    origin: String,
    /// Set by the connection's task when it ends.
    closed: Arc<AtomicBool>,
}

impl Http2Session {
    /// Opens an HTTP/2 connection to the origin of `builder`'s URL: TCP
    /// through the builder's proxy (or the environment's), then for
    /// `wss://` TLS with the builder's configuration offering `h2` and
    /// `http/1.1` by ALPN, for `ws://` HTTP/2 by prior knowledge (h2c);
    /// then the HTTP/2 preface, and the server's first SETTINGS. Bounded
    /// by the builder's open timeout. The URL's path and the builder's
    /// handshake options are not used here.
    ///
    /// HTTP/2 is required, whatever the builder's
    /// [`http_version`](ClientBuilder::http_version): a server that does
    /// not choose `h2` or does not advertise
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL` is an
    /// [`Error::Http2Unsupported`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt and closes the connection.
    pub async fn open(builder: &ClientBuilder) -> Result<Http2Session, Error> {
        builder.open_session().await
    }

    /// Opens a WebSocket to `builder`'s URL on a new stream of this
    /// connection: the builder's handshake options (subprotocols,
    /// extensions, deflate, Origin, headers), engine configuration,
    /// redirects and open timeout apply; its proxy, TLS and HTTP version
    /// settings do not (the connection is made). The open timeout covers
    /// waiting for a stream when the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` are all in use.
    ///
    /// The URL must be this session's origin (same scheme, host and
    /// port), otherwise [`Error::InvalidInput`]; a session whose
    /// connection has ended gives [`Error::Io`] (`NotConnected`). A
    /// redirect to another origin is followed on a new connection, as
    /// [`ClientBuilder::http2_session`] does.
    ///
    /// The response's version is HTTP/2; its extensions hold the extended
    /// CONNECT request sent, as for [`ClientBuilder::connect`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt: the stream, if opened, is
    /// reset; the connection and its other WebSockets are not affected.
    pub async fn connect(
        &self,
        builder: &ClientBuilder,
    ) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        builder.connect_through(self).await
    }

    /// A [`ClientBuilder`] for `path_and_query` (such as `/chat?room=1`)
    /// on this session's origin, which connects through this session
    /// ([`ClientBuilder::http2_session`]); add handshake options, then
    /// call [`connect`](ClientBuilder::connect).
    pub fn builder(&self, path_and_query: &str) -> ClientBuilder {
        let separator = if path_and_query.starts_with('/') {
            ""
        } else {
            "/"
        };
        let url = format!("{}{separator}{path_and_query}", self.inner.origin);
        ClientBuilder::new(&url).http2_session(self)
    }

    /// The origin this session's connection goes to, as a URL without a
    /// path: `wss://example.com` or `ws://127.0.0.1:8080`.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Whether the connection has ended (the server closed it, sent
    /// `GOAWAY` and finished its streams, or it failed): no WebSocket can
    /// be opened on it any more.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The HTTP/2 handshake over `io`, already connected to `target`:
    /// the preface, the connection's task, and a PING answered, by which
    /// time the server's first SETTINGS (the first frame it sends) have
    /// been applied, so [`supports_websocket`](Self::supports_websocket)
    /// knows.
    pub(crate) async fn handshake(
        io: ClientStream,
        target: &Target,
    ) -> Result<Http2Session, Error> {
        let prior_knowledge = matches!(io, ClientStream::Plain(_));
        let preface_error = |error| preface_error(error, prior_knowledge);
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .data_frame_budget(DATA_FRAME_BUDGET)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(preface_error)?;
        let ping = connection.ping_pong();
        let closed = Arc::new(AtomicBool::new(false));
        let ended = closed.clone();
        tokio::spawn(async move {
            // How it ended reaches each stream as its own error.
            let _ = connection.await;
            ended.store(true, Ordering::Release);
        });
        // h2 applies the server's SETTINGS before it reads the next frame,
        // and the PING's answer comes after them.
        if let Some(mut ping) = ping {
            ping.ping(h2::Ping::opaque()).await.map_err(preface_error)?;
        }
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let (scheme, default_port) = if target.secure {
            ("wss", 443)
        } else {
            ("ws", 80)
        };
        let origin = if target.port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", target.port)
        };
        Ok(Http2Session {
            inner: Arc::new(Session {
                send,
                target: target.clone(),
                origin,
                closed,
            }),
        })
    }

    /// Whether the server advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    pub(crate) fn supports_websocket(&self) -> bool {
        self.inner.send.is_extended_connect_protocol_enabled()
    }

    /// Whether this connection goes to `target`'s origin.
    pub(crate) fn serves(&self, target: &Target) -> bool {
        let own = &self.inner.target;
        own.secure == target.secure
            && own.port == target.port
            && own.host.eq_ignore_ascii_case(&target.host)
    }

    /// Sends `handshake`'s extended CONNECT on a new stream and checks the
    /// answer: the WebSocket, a redirect to follow (when `follow`), or
    /// the refusal with up to 64 KiB of its body.
    pub(crate) async fn open_stream(
        &self,
        handshake: &ClientHandshake,
        config: Config,
        deflate: &DeflateConfig,
        follow: bool,
    ) -> Result<Answer, Error> {
        let mut request = handshake.extended_connect_request()?;
        let sent = request.clone();
        request
            .extensions_mut()
            .insert(Protocol::from(WEBSOCKET_PROTOCOL));
        // Waits while the server's SETTINGS_MAX_CONCURRENT_STREAMS are in
        // use.
        let mut send = self.inner.send.clone().ready().await.map_err(to_io)?;
        let (response, stream) = send.send_request(request, false).map_err(to_io)?;
        let response = response.await.map_err(to_io)?;
        let (parts, mut body) = response.into_parts();
        let mut head = Response::from_parts(parts, ());
        if follow && is_redirect(head.status()) {
            return Ok(Answer::Redirect(head));
        }
        match handshake.finish_extended_connect(&head) {
            Ok(negotiated) => {
                let engine = client_engine(config, deflate, &negotiated);
                let transport = ClientStream::Http2(Box::new(H2Stream::new(stream, body)));
                let ws = WebSocket::from_engine(transport, engine, &[]);
                head.extensions_mut().insert(sent);
                Ok(Answer::Open(ws, head))
            }
            Err(mut error) => {
                let read = tokio::time::timeout(ERROR_BODY_TIMEOUT, read_body(&mut body));
                let body = read.await.unwrap_or_default();
                if !body.is_empty() {
                    error.set_body(body);
                }
                Err(Error::Handshake(error))
            }
        }
    }
}

/// An error before the connection is up. Over TLS (where the server
/// chose `h2`), an I/O error is one; anything else means the server did
/// not speak HTTP/2. With prior knowledge, any failure means that: a
/// server that does not speak h2c answers the preface with an HTTP/1.1
/// error and closes.
fn preface_error(error: h2::Error, prior_knowledge: bool) -> Error {
    if prior_knowledge {
        return Error::Http2Unsupported(
            "no HTTP/2 answer on a cleartext (h2c, prior knowledge) connection",
        );
    }
    if error.is_io() {
        return Error::Io(to_io(error));
    }
    Error::Http2Unsupported("the server did not answer in HTTP/2")
}

/// A refusal's body, up to [`MAX_ERROR_BODY`] bytes, window returned as
/// it is read.
async fn read_body(body: &mut RecvStream) -> Bytes {
    let mut read = BytesMut::new();
    while read.len() < MAX_ERROR_BODY {
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                read.extend_from_slice(&chunk);
            }
            Some(Err(_)) | None => break,
        }
    }
    read.truncate(MAX_ERROR_BODY);
    read.freeze()
}
