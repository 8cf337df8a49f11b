//! Accepting connections: [`accept`] and [`ServerBuilder`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use rustls::ServerConfig;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
use sockeye_proto::handshake::{self, HandshakeError, Negotiated, RequestParser, ServerHandshake};
use sockeye_proto::{Config, Connection, Role};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::budget::{DEFAULT_MEMORY_BUDGET_TIMEOUT, MemoryBudget, default_memory_budget};
use crate::error::Error;
use crate::handshake_io::{read_head, write_all};
use crate::tls::ServerStream;
use crate::tokio::WebSocket;

/// Accepts a WebSocket connection on `stream` with the default policy:
/// no subprotocol, same-origin browsers and non-browser clients only, a
/// 10 s handshake timeout. See [`ServerBuilder`] for options.
///
/// # Cancel safety
/// Dropping the future abandons the handshake and the stream.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ServerBuilder::new().accept(stream).await
}

/// A server's handshake policy, limits and config. Build it once and
/// accept every connection with it (it is cheap to clone).
///
/// ```no_run
/// # async fn demo() -> Result<(), sockeye::Error> {
/// let server = sockeye::ServerBuilder::new()
///     .subprotocols(["chat.v2", "chat.v1"])
///     .allow_origins(["https://example.com"]);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let server = server.clone();
///     tokio::spawn(async move {
///         let Ok(mut ws) = server.accept(tcp).await else { return };
///         while let Some(Ok(message)) = ws.recv().await {
///             if ws.send(message).await.is_err() { break }
///         }
///     });
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    policy: ServerHandshake,
    /// Shared by every connection's engine.
    config: Arc<Config>,
    handshake_timeout: Duration,
    max_head_size: usize,
    max_headers: usize,
    tls: Option<Arc<ServerConfig>>,
    deflate: DeflateConfig,
    limit: Arc<ConnectionLimit>,
    /// The memory budget (`budget.rs`), shared by clones.
    pub(crate) budget: Arc<MemoryBudget>,
}

/// The default [`ServerBuilder::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Open connections counted against a limit, shared by a builder's clones.
#[derive(Debug)]
struct ConnectionLimit {
    max: usize,
    active: AtomicUsize,
}

/// A connection's place under [`ServerBuilder::max_connections`], given
/// back when the connection (its `WebSocket`) is dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit(Arc<ConnectionLimit>);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// The default policy (see [`accept`]).
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            policy: ServerHandshake::new().extensions(DeflateNegotiator::new(DeflateConfig::new())),
            config: Arc::new(Config::default()),
            handshake_timeout: Duration::from_secs(10),
            max_head_size: handshake::DEFAULT_MAX_HEAD_SIZE,
            max_headers: handshake::DEFAULT_MAX_HEADERS,
            tls: None,
            deflate: DeflateConfig::new(),
            limit: Arc::new(ConnectionLimit {
                max: DEFAULT_MAX_CONNECTIONS,
                active: AtomicUsize::new(0),
            }),
            budget: Arc::new(MemoryBudget::new(
                default_memory_budget(),
                DEFAULT_MEMORY_BUDGET_TIMEOUT,
            )),
        }
    }

    /// The most connections open at once through this builder and its
    /// clones; a client that comes when all are taken gets `503 Service
    /// Unavailable` with `Retry-After: 1` after its request is read (so
    /// it sees the answer rather than a reset). A connection counts from
    /// its accepted handshake until its `WebSocket` is dropped. Default:
    /// 10,000 (each connection is also a file descriptor: the process's
    /// limit, `ulimit -n`, may be lower).
    ///
    /// Starts a new count: call it before cloning the builder.
    pub fn max_connections(mut self, max: usize) -> ServerBuilder {
        self.limit = Arc::new(ConnectionLimit {
            max,
            active: AtomicUsize::new(0),
        });
        self
    }

    /// How many connections accepted through this builder (and its
    /// clones) are open now.
    pub fn open_connections(&self) -> usize {
        self.limit.active.load(Ordering::Acquire)
    }

    /// Takes a place under the connection limit, or refuses with 503.
    pub(crate) fn admit(&self) -> Result<ConnectionPermit, HandshakeError> {
        let limit = &self.limit;
        limit
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < limit.max).then_some(active + 1)
            })
            .map(|_| ConnectionPermit(limit.clone()))
            .map_err(|_| {
                let mut response = handshake::rejection(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections, try again later",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                HandshakeError::refused(response)
            })
    }

    /// The permessage-deflate policy (RFC 7692): whether to accept it,
    /// window sizes and context takeover to ask for, and the local
    /// threshold and level. Pass `DeflateConfig::new().enabled(false)` to
    /// decline every offer. Default: [`DeflateConfig::new`], enabled with
    /// context takeover both ways and both windows limited to
    /// [`DEFAULT_SERVER_WINDOW_BITS`](sockeye_proto::extension::deflate::DEFAULT_SERVER_WINDOW_BITS)
    /// (4 KiB) where the client's offer allows it; `Some(15)` for both
    /// window settings asks none.
    ///
    /// This sets the policy's extension negotiator; a later
    /// [`ServerBuilder::policy`] replaces it.
    pub fn deflate(mut self, config: DeflateConfig) -> ServerBuilder {
        self.deflate = config;
        self.policy = self.policy.extensions(DeflateNegotiator::new(config));
        self
    }

    /// The engine for a connection that negotiated `negotiated`.
    pub(crate) fn engine(&self, negotiated: &Negotiated) -> Connection {
        let mut engine = Connection::new(Role::Server, Arc::clone(&self.config));
        if let Some(params) = negotiated.deflate {
            engine.enable_deflate(params, &self.deflate);
        }
        engine
    }

    /// The subprotocols this server speaks, in order of preference: the
    /// first one the client also offered is chosen. Default: none.
    pub fn subprotocols<I, S>(mut self, preference: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy = self.policy.subprotocols(preference);
        self
    }

    /// Accepts browsers only from these origins (`scheme://host[:port]`).
    /// Default: only the origin whose host is the request's `Host`, which
    /// stops cross-site WebSocket hijacking; requests without `Origin`
    /// (non-browser clients) are accepted.
    pub fn allow_origins<I, S>(mut self, origins: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.policy = self.policy.allow_origins(origins);
        self
    }

    /// Accepts any origin. Default: off (see [`ServerBuilder::allow_origins`]).
    pub fn allow_any_origin(mut self) -> ServerBuilder {
        self.policy = self.policy.allow_any_origin();
        self
    }

    /// Adds a header to every `101` response (a cookie). Default: none.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> ServerBuilder {
        self.policy = self.policy.header(name, value);
        self
    }

    /// Inspects each valid request and may refuse it with a response of
    /// your own (401 with `WWW-Authenticate`, 403, ...). Default: none.
    pub fn filter_request<F>(mut self, filter: F) -> ServerBuilder
    where
        F: Fn(&Request<()>) -> Option<Response<bytes::Bytes>> + Send + Sync + 'static,
    {
        self.policy = self.policy.filter_request(filter);
        self
    }

    /// Replaces the whole handshake policy.
    pub fn policy(mut self, policy: ServerHandshake) -> ServerBuilder {
        self.policy = policy;
        self
    }

    /// The protocol engine's limits and timers. Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> ServerBuilder {
        self.config = Arc::new(config);
        self
    }

    /// How long a client may take to send its request: one that dribbles
    /// it byte by byte is dropped after this. Default: 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest request head accepted (answered with 431 beyond).
    /// Default: 16 KiB.
    pub fn max_head_size(mut self, bytes: usize) -> ServerBuilder {
        self.max_head_size = bytes;
        self
    }

    /// The most request header fields accepted (431 beyond). Default: 64.
    pub fn max_headers(mut self, count: usize) -> ServerBuilder {
        self.max_headers = count;
        self
    }

    /// Serves `wss://`: [`ServerBuilder::accept_tcp`] runs a TLS handshake
    /// with this rustls configuration first. Default: none (plain TCP).
    pub fn tls(mut self, config: Arc<ServerConfig>) -> ServerBuilder {
        self.tls = Some(config);
        self
    }

    /// Accepts a TCP connection: TLS first if [`ServerBuilder::tls`] was
    /// given (within the handshake timeout), then the WebSocket handshake.
    /// Sets `TCP_NODELAY`: frames are corked by sockeye, not by Nagle.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_tcp(&self, tcp: TcpStream) -> Result<WebSocket<ServerStream>, Error> {
        tcp.set_nodelay(true)?;
        // One deadline for TLS and HTTP together.
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let stream = match &self.tls {
            None => ServerStream::Plain(tcp),
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let tls = tokio::time::timeout_at(deadline, acceptor.accept(tcp))
                    .await
                    .map_err(|_| Error::OpenTimeout)?
                    .map_err(Error::Tls)?;
                ServerStream::Tls(Box::new(tls))
            }
        };
        self.accept_until(stream, deadline).await.map(|(ws, _)| ws)
    }

    /// Performs the server side of the opening handshake on `stream`. A
    /// request that fails a check is answered with its HTTP status (400,
    /// 403, 405, 426, 431, ...) and a short reason, and the error is
    /// returned.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept<S>(&self, stream: S) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with_request(stream).await.map(|(ws, _)| ws)
    }

    /// Like [`ServerBuilder::accept`], and also returns the request (its
    /// path, query, cookies).
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_with_request<S>(
        &self,
        stream: S,
    ) -> Result<(WebSocket<S>, Request<()>), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        self.accept_until(stream, deadline).await
    }

    /// Completes the opening handshake for a request the caller has
    /// already read from `stream`: a server that also serves plain HTTP
    /// on the same port reads each request head itself (with
    /// [`RequestParser`], or hyper), answers the ones that are not
    /// upgrades, and hands the others here with the bytes it read past
    /// the head (`leftover`: the client's first frames, if it did not wait
    /// for the `101`). The request is checked against the policy and the
    /// connection limit, like [`ServerBuilder::accept`]'s; a refused one
    /// is answered with its HTTP status and the error returned. Writing
    /// the answer is bounded by the handshake timeout.
    ///
    /// ```no_run
    /// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), sockeye::Error> {
    /// use sockeye::proto::handshake::RequestParser;
    /// use tokio::io::AsyncReadExt;
    ///
    /// let server = sockeye::ServerBuilder::new();
    /// let mut tcp = tcp;
    /// let mut parser = RequestParser::new();
    /// let mut buffer = [0u8; 4096];
    /// let (request, leftover) = loop {
    ///     let n = tcp.read(&mut buffer).await?;
    ///     if n == 0 {
    ///         return Ok(());
    ///     }
    ///     match parser.parse(&buffer[..n]) {
    ///         Ok(Some(parsed)) => break (parsed.head, buffer[parsed.consumed..n].to_vec()),
    ///         Ok(None) => {}
    ///         Err(error) => {
    ///             // 400, 431, ...
    ///             sockeye::answer_refusal(&mut tcp, &error).await;
    ///             return Err(error.into());
    ///         }
    ///     }
    /// };
    /// // ... route on request.uri().path(), answer plain HTTP, or:
    /// let ws = server.accept_request(tcp, &request, &leftover).await?;
    /// # drop(ws); Ok(())
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Dropping the future abandons the handshake and the stream.
    pub async fn accept_request<S>(
        &self,
        stream: S,
        request: &Request<()>,
        leftover: &[u8],
    ) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        self.answer_until(stream, request, leftover, deadline).await
    }

    async fn accept_until<S>(
        &self,
        mut stream: S,
        deadline: tokio::time::Instant,
    ) -> Result<(WebSocket<S>, Request<()>), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut parser = self.request_parser();
        let head = read_head(&mut stream, |bytes| parser.parse(bytes));
        let (request, leftover) = match tokio::time::timeout_at(deadline, head).await {
            Ok(Ok(head)) => head,
            Ok(Err(error)) => {
                refuse(&mut stream, &error).await;
                return Err(error);
            }
            Err(_) => return Err(Error::OpenTimeout),
        };
        let ws = self
            .answer_until(stream, &request, &leftover, deadline)
            .await?;
        Ok((ws, request))
    }

    /// Checks a request that was read, and answers it: `101` and the
    /// WebSocket, or the refusal.
    async fn answer_until<S>(
        &self,
        mut stream: S,
        request: &Request<()>,
        leftover: &[u8],
        deadline: tokio::time::Instant,
    ) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let answer = async {
            let accepted = self.policy.accept(request)?;
            let permit = self.admit()?;
            let mut response = Vec::with_capacity(256);
            handshake::write_response(&accepted.response, &mut response);
            write_all(&mut stream, &response).await?;
            Ok::<_, Error>((accepted.negotiated, permit))
        };
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok((negotiated, permit))) => {
                let mut ws = WebSocket::from_engine(stream, self.engine(&negotiated), leftover);
                ws.permit = Some(permit);
                ws.budget = Some(self.budget.share());
                Ok(ws)
            }
            Ok(Err(error)) => {
                refuse(&mut stream, &error).await;
                Err(error)
            }
            Err(_) => Err(Error::OpenTimeout),
        }
    }

    /// The handshake policy (for integrations that parse requests
    /// themselves, such as hyper).
    pub fn handshake_policy(&self) -> &ServerHandshake {
        &self.policy
    }

    /// A request-head parser with this builder's limits.
    pub(crate) fn request_parser(&self) -> RequestParser {
        RequestParser::new()
            .max_head_size(self.max_head_size)
            .max_headers(self.max_headers)
    }

    /// How long a client may take to send its request.
    pub(crate) fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The engine config connections get.
    pub fn engine_config(&self) -> &Config {
        &self.config
    }
}

/// Answers a refused handshake with its HTTP status, when it has one. The
/// client may be gone: this is best effort, and bounded.
async fn refuse<S>(stream: &mut S, error: &Error)
where
    S: AsyncWrite + Unpin,
{
    if let Error::Handshake(refusal) = error {
        answer_refusal(stream, refusal).await;
    }
}

/// Answers a refused opening handshake: writes the error's HTTP response
/// (its status, a short reason, `Connection: close`) and shuts the stream
/// down, within one second and ignoring write errors (the client may be
/// gone). For servers that read requests themselves (see
/// [`ServerBuilder::accept_request`]) and must answer one that failed to
/// parse (400, 431, ...). Does nothing for an error that has no response
/// (one a client found in a server's answer).
///
/// # Cancel safety
/// Dropping the future may leave the answer partly written.
pub async fn answer_refusal<S>(stream: &mut S, error: &HandshakeError)
where
    S: AsyncWrite + Unpin,
{
    let Some(response) = error.to_response() else {
        return;
    };
    let mut bytes = Vec::new();
    handshake::write_response_with_body(&response, &mut bytes);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = write_all(stream, &bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
