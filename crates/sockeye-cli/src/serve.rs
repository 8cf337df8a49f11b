//! `sockeye serve`: a ready WebSocket server, with HTTP on the same port.
//!
//! Each connection's request head is read first: a WebSocket upgrade
//! (RFC 6455 section 4.2) becomes an echo or broadcast connection; a
//! request with WebSocket headers (`Sec-WebSocket-Key`,
//! `Sec-WebSocket-Version`) but without `Upgrade: websocket` and
//! `Connection: upgrade` is a broken WebSocket client and gets 426; any
//! other request is answered by [`crate::http`] (the built-in page or a
//! static file) and the connection closed.
//!
//! HTTP/2 (RFC 8441) on the same port: over TLS when the client chooses
//! `h2` by ALPN (offered unless `--no-http2`), in cleartext when it opens
//! with the HTTP/2 preface and `--h2c` is given. Its requests are served
//! by [`http2`](self::http2): pages and files as responses, each extended
//! CONNECT a WebSocket with the same policy, many on one connection.
//!
//! Nothing a client does holds a connection forever: the request head has
//! [`HANDSHAKE_TIMEOUT`], an HTTP response `--send-timeout` without
//! progress, a WebSocket the keepalive (`--ping-interval`,
//! `--ping-timeout`), optionally `--idle-timeout`, and the closing
//! handshake [`CLOSE_TIMEOUT`].
//!
//! Ctrl-C (or SIGTERM) drains the server with the library's
//! [`sockeye::Drain`]: WebSocket requests are answered 503 from then on
//! (pages are still served), every WebSocket is closed with 1001 (going
//! away; `--drain-code 1012` for a restart) at its own moment in
//! `--drain-window`, the closing handshakes are awaited until
//! `--drain-timeout`, one line reports how many closed cleanly and how
//! many were cut, and the process exits 0.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_sink::Sink;
use http::{Request, StatusCode};
use rustls::ServerConfig;
use sockeye::proto::Config;
use sockeye::proto::handshake::{self, HandshakeError, RequestParser};
use sockeye::{CloseCode, DeflateConfig, DrainConfig, ServerBuilder, ServerStream, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::broadcast::{self, Member};
use crate::failure::Failure;
use crate::http::Site;
use crate::signals::Interrupts;
use crate::stall::StallTimeout;

mod args;
mod event_loop;
mod http2;

pub use args::ServeArgs;

/// How long a client may take for TLS and its request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing handshake may take (a client that does not answer
/// a Close within it is cut).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the server does with WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every message goes back to its sender.
    Echo,
    /// Every message goes to all other clients.
    Broadcast,
}

impl Mode {
    /// The mode's name, as shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Broadcast => "broadcast",
        }
    }
}

/// What every connection task shares.
struct Shared {
    server: ServerBuilder,
    tls: Option<Arc<ServerConfig>>,
    site: Site,
    mode: Mode,
    hub: sockeye::hub::Hub,
    /// How long an HTTP answer may make no progress.
    send_timeout: Duration,
    /// The subprotocols this server speaks, in order of preference (for
    /// the `-vv` handshake lines).
    subprotocols: Vec<String>,
    /// Cleartext HTTP/2 by prior knowledge (`--h2c`).
    h2c: bool,
}

/// Runs `sockeye serve`.
pub fn main(args: ServeArgs) -> Result<(), Failure> {
    let threads = args
        .threads
        .map(|threads| threads as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let on_loop = match (args.runtime, event_loop::unsupported(&args)) {
        (event_loop::Runtime::Tokio, _) => false,
        (event_loop::Runtime::Auto, why) => why.is_none(),
        (event_loop::Runtime::Loop, None) => true,
        (event_loop::Runtime::Loop, Some(why)) => {
            return Err(Failure::usage(format!(
                "--runtime loop does not serve {why} yet: use --runtime tokio (or auto)"
            )));
        }
    };
    if on_loop {
        // One thread for signals, metrics and the drain; the loops have
        // their own.
        crate::run_async(1, event_loop::run(args, threads))
    } else {
        crate::run_async(threads, run(args))
    }
}

async fn run(args: ServeArgs) -> Result<(), Failure> {
    let mode = if args.broadcast {
        Mode::Broadcast
    } else {
        Mode::Echo
    };
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key, !args.no_http2)?),
        _ => None,
    };
    let site = Site::new(args.dir.as_deref(), mode)?;
    let address = resolve(&args.listen).await?;
    let listener = TcpListener::bind(address).await.map_err(|error| {
        Failure::unreachable(format!("cannot listen on {}: {error}", args.listen))
    })?;
    let local = listener
        .local_addr()
        .map_err(|error| Failure::failed(format!("cannot listen on {}: {error}", args.listen)))?;
    let metrics = match args.metrics {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };
    let mut interrupts = Interrupts::new()?;

    let deflate = DeflateConfig::new().enabled(!args.no_compression);
    let shared = Arc::new(Shared {
        server: server_builder(&args, deflate, local),
        tls,
        site,
        mode,
        hub: broadcast::hub(
            args.queue as usize,
            args.slow_policy,
            args.backplane.as_ref(),
        )?,
        send_timeout: args.send_timeout,
        subprotocols: args.subprotocols.clone(),
        h2c: args.h2c,
    });
    info!(
        "memory budget: {} MiB",
        shared.server.get_memory_budget() >> 20
    );
    let (ws, http) = match shared.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    };
    let versions = match (&shared.tls, args.h2c, args.no_http2) {
        (Some(_), _, false) | (None, true, _) => ", HTTP/1.1 and HTTP/2",
        _ => "",
    };
    note!(
        "sockeye: listening on {ws}://{local} ({} mode{versions}; open {http}://{local}/ in a browser; Ctrl-C to stop)",
        mode.name()
    );
    if let Some(metrics) = metrics {
        let hub = (mode == Mode::Broadcast).then(|| shared.hub.clone());
        metrics.serve(shared.server.clone(), hub);
    }

    let limit = Arc::new(Semaphore::new(args.max_connections as usize));
    // A tracker rather than a JoinSet: it counts tasks without an entry
    // per connection (every idle connection's bytes count, see
    // bench/NOTES.md).
    let tasks = TaskTracker::new();
    let accept = |accepted: std::io::Result<(TcpStream, SocketAddr)>| match accepted {
        Ok((tcp, peer)) => {
            match limit.clone().try_acquire_owned() {
                Ok(permit) => tasks.spawn(serve_connection(tcp, peer, shared.clone(), permit)),
                Err(_) => tasks.spawn(refuse_busy(tcp, peer, shared.clone())),
            };
            false
        }
        Err(error) => {
            // Out of file descriptors, most likely: wait for some
            // connections to end rather than spin.
            warn!("accept failed: {error}");
            true
        }
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => if accept(accepted) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            },
            () = interrupts.recv() => break,
        }
    }

    // The drain: still accepting, so that WebSocket requests get 503
    // (with Retry-After) rather than a refused connection, until the
    // WebSockets are closed or the deadline passes.
    let drain = shared.server.drain_handle();
    drain.start(drain_config(&args, &shared.server));
    let deadline = tokio::time::Instant::now() + args.drain_timeout;
    let mut drained = std::pin::pin!(drain.wait());
    let report = loop {
        tokio::select! {
            report = &mut drained => break report,
            accepted = listener.accept() => if accept(accepted) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            },
        }
    };
    drop(listener);
    note!("sockeye: shutdown: {report} in {:.2?}", report.elapsed);
    // HTTP answers still going, and connections told to end at the
    // deadline, get until the deadline; the rest is dropped with the
    // runtime when `main` returns.
    tasks.close();
    if tokio::time::timeout_at(deadline, tasks.wait())
        .await
        .is_err()
    {
        debug!("{} task(s) left at the deadline", tasks.len());
    }
    note!("sockeye: stopped");
    Ok(())
}

/// The drain the signals start (`--drain-code`, `--drain-window`,
/// `--drain-timeout`), for both front-ends; says what it is about to do.
fn drain_config(args: &ServeArgs, server: &ServerBuilder) -> DrainConfig {
    let code = CloseCode::new(args.drain_code);
    let window = args.drain_window.0.unwrap_or(Duration::ZERO);
    note!(
        "sockeye: shutting down: closing {} WebSocket connection(s) with {code} over {window:?}",
        server.open_connections()
    );
    DrainConfig::new()
        .code(code)
        .reason(if code == CloseCode::SERVICE_RESTART {
            "server restarting"
        } else {
            "server shutting down"
        })
        .window(window)
        .timeout(args.drain_timeout)
}

/// The listen address: an IP address and port, or a host name and port.
async fn resolve(listen: &str) -> Result<SocketAddr, Failure> {
    let bad = |why: String| Failure::usage(format!("invalid listen address {listen:?}: {why}"));
    if let Ok(address) = listen.parse() {
        return Ok(address);
    }
    if !listen.contains(':') {
        return Err(bad("expected HOST:PORT, such as 127.0.0.1:9001".into()));
    }
    let mut addresses = tokio::net::lookup_host(listen)
        .await
        .map_err(|error| bad(error.to_string()))?;
    addresses
        .next()
        .ok_or_else(|| bad("the name has no address".into()))
}

/// The handshake policy, compression policy and engine config from the
/// options.
fn server_builder(args: &ServeArgs, deflate: DeflateConfig, local: SocketAddr) -> ServerBuilder {
    let config = Config::new()
        .max_message_size(args.max_message_size)
        .max_frame_size(args.max_message_size)
        .close_timeout(CLOSE_TIMEOUT)
        .keepalive_interval(args.ping_interval.0)
        .keepalive_timeout(args.ping_timeout)
        .idle_timeout(args.idle_timeout.0);
    let mut builder = ServerBuilder::new()
        .deflate(deflate)
        .config(config)
        .max_connections(args.max_connections as usize)
        .max_connections_per_address(args.max_connections_per_address.0)
        .max_http2_streams(args.max_streams)
        .handshake_timeout(HANDSHAKE_TIMEOUT);
    if let Some(hosts) = allowed_hosts(args, local) {
        builder = builder.allowed_hosts(hosts);
    }
    if let Some(bytes) = args.memory_budget {
        builder = builder.memory_budget(bytes);
    }
    if !args.subprotocols.is_empty() {
        builder = builder.subprotocols(args.subprotocols.iter().cloned());
    }
    if args.allow_any_origin {
        builder = builder.allow_any_origin();
    } else if !args.allow_origins.is_empty() {
        builder = builder.allow_origins(args.allow_origins.iter());
    }
    builder
}

/// The Host allow-list: the names given, or on a loopback address the
/// loopback names with the server's port; `None` for any Host.
fn allowed_hosts(args: &ServeArgs, local: SocketAddr) -> Option<Vec<String>> {
    if args.allow_any_host {
        return None;
    }
    if !args.allow_hosts.is_empty() {
        return Some(args.allow_hosts.clone());
    }
    if !local.ip().is_loopback() {
        return None;
    }
    let port = local.port();
    let mut hosts = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        // The address itself, which may be another of 127.0.0.0/8.
        local.to_string(),
    ];
    if port == 80 || port == 443 {
        // A browser leaves its scheme's default port out of Host.
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        hosts.push(match local.ip() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    Some(hosts)
}

/// One TCP connection: TLS if configured, the request head, then a
/// WebSocket or an HTTP answer.
/// Serves one connection, holding its place under the connection limit.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
) {
    // A task's future is as large as its largest state for as long as the
    // connection lasts: the handshake's state (request, response, buffers)
    // gets its own allocation, freed once it is done, and the WebSocket is
    // boxed so the futures that own it are not each as large as it is, and
    // so is the broadcast mode's state. So is the HTTP/2 connection's state
    // (hyper's h2 server, about 3.4 KiB), which inline made every
    // HTTP/1.1 connection's task that large too. Idle connections cost
    // about 2 KiB (bench scenario f; see bench/NOTES.md); a test below
    // bounds this future's size.
    let (ws, member) = match Box::pin(open_websocket(tcp, peer, &shared)).await {
        Some(Opened::WebSocket(ws, member)) => (ws, member),
        Some(Opened::Http2(io)) => return Box::pin(http2::serve(io, peer, shared)).await,
        None => return,
    };
    match member {
        None => echo(ws, peer).await,
        Some(member) => {
            Box::pin(broadcast::serve(&shared.hub, member, *ws, peer)).await;
        }
    }
}

/// What a connection turned out to be.
enum Opened {
    /// A WebSocket over HTTP/1.1 (with its room, in broadcast mode).
    WebSocket(Box<WebSocket<ServerStream>>, Option<Member>),
    /// HTTP/2: chosen by ALPN, or by the preface with `--h2c`.
    Http2(sockeye::http2::Rewind<ServerStream>),
}

/// The connection's first bytes: HTTP/1.1 (and what was read while
/// telling), or HTTP/2.
enum Version {
    Http1(ServerStream, Vec<u8>),
    Http2(sockeye::http2::Rewind<ServerStream>),
}

/// Tells HTTP/2 (ALPN `h2`, or the preface with `--h2c`) from HTTP/1.1.
async fn version(stream: ServerStream, shared: &Shared) -> Result<Version, String> {
    use sockeye::http2::Detected;
    if matches!(stream, ServerStream::Plain(_)) && !shared.h2c {
        return Ok(Version::Http1(stream, Vec::new()));
    }
    match sockeye::http2::detect(stream).await {
        Ok(Detected::Http1 { stream, read }) => Ok(Version::Http1(stream, read)),
        Ok(Detected::Http2(io)) => Ok(Version::Http2(io)),
        Err(error) => Err(format!("closed before sending a request: {error}")),
    }
}

/// Reads the request and answers it: HTTP for files and the page, a
/// refusal, or a 101 and the WebSocket (with its room, in broadcast
/// mode); or hands an HTTP/2 connection back.
async fn open_websocket(tcp: TcpStream, peer: SocketAddr, shared: &Shared) -> Option<Opened> {
    let _ = tcp.set_nodelay(true);
    let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let stream = open_stream(tcp, shared).await?;
        let (mut stream, read) = match version(stream, shared).await? {
            Version::Http1(stream, read) => (stream, read),
            Version::Http2(io) => return Ok(Err(io)),
        };
        let head = read_head(&mut stream, &read).await;
        Ok::<_, String>(Ok((stream, head)))
    })
    .await;
    let (mut stream, head) = match opened {
        Ok(Ok(Ok(opened))) => opened,
        Ok(Ok(Err(io))) => return Some(Opened::Http2(io)),
        Ok(Err(why)) => {
            debug!("{peer}: {why}");
            return None;
        }
        Err(_) => {
            debug!("{peer}: no request within {HANDSHAKE_TIMEOUT:?}");
            return None;
        }
    };
    let (request, leftover) = match head {
        Ok(Some(head)) => head,
        Ok(None) => {
            debug!("{peer}: closed before sending a request");
            return None;
        }
        Err(error) => {
            info!("{peer}: bad request: {error}");
            shared
                .server
                .record_refusal(sockeye::RefusalReason::BadRequest);
            sockeye::answer_refusal(&mut stream, &error).await;
            return None;
        }
    };
    if let Err(refusal) = shared.server.check_host(&request) {
        info!(
            "{peer}: {} {} -> 421 (Host {:?} is not served here)",
            request.method(),
            request.uri().path(),
            request.headers().get(http::header::HOST)
        );
        let mut bounded = StallTimeout::new(&mut stream, shared.send_timeout);
        sockeye::answer_refusal(&mut bounded, &refusal).await;
        return None;
    }
    if is_broken_websocket(&request) {
        shared
            .server
            .record_refusal(sockeye::RefusalReason::BadRequest);
        let mut bounded = StallTimeout::new(&mut stream, shared.send_timeout);
        let status = crate::http::upgrade_required(&mut bounded, &request).await;
        log_answer(
            peer,
            &request,
            status,
            " (WebSocket headers without the upgrade)",
        );
        return None;
    }
    if !wants_websocket(&request) {
        let mut bounded = StallTimeout::new(&mut stream, shared.send_timeout);
        let status = crate::http::respond(&mut bounded, &request, &shared.site).await;
        log_answer(peer, &request, status, "");
        return None;
    }
    // A broadcast member joins its room before its client can see the 101.
    let member = match shared.mode {
        Mode::Echo => None,
        Mode::Broadcast => match broadcast::room_for_path(request.uri().path()) {
            Ok(room) => Some(broadcast::join(&shared.hub, room)),
            Err(why) => {
                shared
                    .server
                    .record_refusal(sockeye::RefusalReason::Application);
                let mut bounded = StallTimeout::new(&mut stream, shared.send_timeout);
                let status = crate::http::not_found(&mut bounded, &request, why).await;
                log_answer(peer, &request, status, &format!(" ({why})"));
                return None;
            }
        },
    };
    let mut request = request;
    request
        .extensions_mut()
        .insert(sockeye::ConnectionInfo::new(
            Some(peer),
            Some(shared.tls.is_some()),
        ));
    let ws = match shared
        .server
        .accept_request(stream, &request, &leftover)
        .await
    {
        Ok(ws) => Box::new(ws),
        Err(sockeye::Error::Handshake(error)) => {
            info!("{peer}: WebSocket handshake refused: {error}");
            return None;
        }
        Err(error) => {
            debug!("{peer}: {error}");
            return None;
        }
    };
    debug!(
        "{peer}: handshake: {}",
        describe_handshake(&request, &ws, shared)
    );
    info!(
        "{peer}: WebSocket connected ({} {}{})",
        shared.mode.name(),
        request.uri().path(),
        if ws.connection().deflate_params().is_some() {
            ", compressed"
        } else {
            ""
        }
    );
    Some(Opened::WebSocket(ws, member))
}

/// A 101's details for `-vv`: the path, the subprotocol chosen (the first
/// of ours the client offered, as the handshake policy chooses), the
/// extensions offered and whether compression is on.
fn describe_handshake(
    request: &Request<()>,
    ws: &WebSocket<ServerStream>,
    shared: &Shared,
) -> String {
    let offered = |name| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect::<Vec<_>>()
    };
    let subprotocols = offered(http::header::SEC_WEBSOCKET_PROTOCOL);
    let chosen = shared
        .subprotocols
        .iter()
        .find(|ours| subprotocols.contains(&ours.as_str()));
    let extensions = offered(http::header::SEC_WEBSOCKET_EXTENSIONS);
    format!(
        "{} {}, subprotocol {}, extensions offered: {}, compression {}",
        request.method(),
        request.uri().path(),
        chosen.map_or("none", String::as_str),
        if extensions.is_empty() {
            "none".to_owned()
        } else {
            extensions.join(", ")
        },
        if ws.connection().deflate_params().is_some() {
            "on"
        } else {
            "off"
        }
    )
}

/// Plain TCP, or TLS when the server has a certificate.
async fn open_stream(tcp: TcpStream, shared: &Shared) -> Result<ServerStream, String> {
    match &shared.tls {
        None => Ok(ServerStream::Plain(tcp)),
        Some(config) => tokio_rustls_accept(config.clone(), tcp)
            .await
            .map(|tls| ServerStream::Tls(Box::new(tls)))
            .map_err(|error| format!("TLS handshake failed: {error}")),
    }
}

/// The TLS handshake.
async fn tokio_rustls_accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
}

/// Reads a request head with the builder's limits, `read` being its
/// first bytes, already read. `None` when the client closed before
/// sending one. Returns the bytes read past the head.
async fn read_head<S>(
    stream: &mut S,
    read: &[u8],
) -> Result<Option<(Request<()>, Vec<u8>)>, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    // ServerBuilder's default limits (16 KiB, 64 fields); it does not
    // expose its own parser.
    let mut parser = RequestParser::new()
        .max_head_size(handshake::DEFAULT_MAX_HEAD_SIZE)
        .max_headers(handshake::DEFAULT_MAX_HEADERS);
    if !read.is_empty()
        && let Some(parsed) = parser.parse(read)?
    {
        return Ok(Some((parsed.head, read[parsed.consumed..].to_vec())));
    }
    let mut buffer = vec![0u8; 4096];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(read) => read,
        };
        if let Some(parsed) = parser.parse(&buffer[..read])? {
            return Ok(Some((parsed.head, buffer[parsed.consumed..read].to_vec())));
        }
    }
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`); the
/// handshake policy then checks the rest, and answers 400 or 426 itself.
fn wants_websocket(request: &Request<()>) -> bool {
    handshake::contains_token(request.headers(), &http::header::UPGRADE, "websocket")
}

/// Whether the request is a WebSocket client's that lacks the upgrade
/// itself: it sends `Sec-WebSocket-Key` or `Sec-WebSocket-Version`, which
/// no browser adds to a page request, but not both `Upgrade: websocket`
/// and `Connection: upgrade` (a proxy dropped them, or the client is
/// broken). It gets 426, as Python websockets answers, not the page.
fn is_broken_websocket(request: &Request<()>) -> bool {
    let headers = request.headers();
    let websocket_headers = headers.contains_key(http::header::SEC_WEBSOCKET_KEY)
        || headers.contains_key(http::header::SEC_WEBSOCKET_VERSION);
    websocket_headers
        && !(wants_websocket(request)
            && handshake::contains_token(headers, &http::header::CONNECTION, "upgrade"))
}

/// Logs a plain HTTP answer: the request, and the status sent or why
/// sending failed.
fn log_answer(
    peer: SocketAddr,
    request: &Request<()>,
    status: std::io::Result<StatusCode>,
    note: &str,
) {
    let status = status.map_or_else(
        |error| format!("failed: {error}"),
        |status| status.to_string(),
    );
    info!(
        "{peer}: {} {} -> {status}{note}",
        request.method(),
        request.uri().path()
    );
}

/// Over the connection limit: reads the request (so the client sees the
/// answer rather than a reset) and answers 503.
async fn refuse_busy(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    info!("{peer}: refused, too many connections");
    shared
        .server
        .record_refusal(sockeye::RefusalReason::ConnectionLimit);
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let Ok(mut stream) = open_stream(tcp, &shared).await else {
            return;
        };
        let _ = read_head(&mut stream, &[]).await;
        let mut response =
            handshake::rejection(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        let mut bytes = Vec::new();
        handshake::write_response_with_body(&response, &mut bytes);
        let _ = write_all(&mut stream, &bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Writes `bytes` and flushes (TLS streams buffer).
pub async fn write_all<S>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Echo mode: every message goes back as it came, until the connection
/// ends (the drain's Close included: the library sends it).
async fn echo(mut ws: Box<WebSocket<ServerStream>>, peer: SocketAddr) {
    let ended = echo_loop(&mut ws).await;
    match (ended, ws.closed()) {
        (Err(error), _) => info!("{peer}: connection failed: {error}"),
        (Ok(()), Some(closed)) => {
            info!("{peer}: closed {}", closed.code());
            debug!("{peer}: {}", crate::verbose::describe_closed(closed));
        }
        (Ok(()), None) => info!("{peer}: closed"),
    }
}

/// Echoes until the connection ends. Written with the poll functions
/// rather than `recv().await` and `send().await`: the same behaviour (the
/// replies to a burst leave in one write, made before the task waits for
/// input; `poll_ready` bounds what is queued), in a future of a few bytes
/// instead of a few hundred, which every connection's task carries.
async fn echo_loop(ws: &mut WebSocket<ServerStream>) -> Result<(), sockeye::Error> {
    std::future::poll_fn(|cx| {
        loop {
            std::task::ready!(Pin::new(&mut *ws).poll_ready(cx))?;
            match std::task::ready!(ws.poll_recv(cx)) {
                Some(message) => Pin::new(&mut *ws).start_send(message?)?,
                None => return Poll::Ready(Ok(())),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    /// The size of the future an async fn of four arguments returns.
    fn future_size<A, B, C, D, F: std::future::Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every connection's task holds its whole future for as long as the
    /// connection lasts, idle or not: the handshake, HTTP/2 and broadcast
    /// states are boxed, so the future is about the echo's. With HTTP/2
    /// inline it was 3.7 KiB (idle memory 4.96 KiB per connection in bench
    /// scenario f against 1.90 before HTTP/2). Debug builds lay futures out
    /// less tightly than release, hence the margin.
    #[test]
    fn a_connection_task_is_small() {
        let size = future_size(serve_connection);
        assert!(size <= 512, "serve_connection's future is {size} bytes");
    }

    #[test]
    fn websocket_headers_without_the_upgrade_are_broken() {
        let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        let version = ("Sec-WebSocket-Version", "13");
        let upgrade = ("Upgrade", "websocket");
        let connection = ("Connection", "keep-alive, Upgrade");
        assert!(is_broken_websocket(&request(&[key, version])));
        assert!(is_broken_websocket(&request(&[version])));
        assert!(is_broken_websocket(&request(&[key, upgrade])));
        assert!(is_broken_websocket(&request(&[key, connection])));
        assert!(!is_broken_websocket(&request(&[
            key, version, upgrade, connection
        ])));
        // A browser's page request, or a WebSocket request the handshake
        // policy judges (400 for a missing key).
        assert!(!is_broken_websocket(&request(&[("Accept", "text/html")])));
        assert!(!is_broken_websocket(&request(&[upgrade, connection])));
        assert!(wants_websocket(&request(&[("Upgrade", "h2c, WebSocket")])));
    }
}
