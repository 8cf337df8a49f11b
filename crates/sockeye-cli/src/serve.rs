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
use std::path::PathBuf;
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
use crate::options::{
    OptionalCount, OptionalDuration, parse_duration, parse_optional_count, parse_optional_duration,
    parse_size,
};
use crate::signals::Interrupts;
use crate::stall::StallTimeout;

/// How long a client may take for TLS and its request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing handshake may take (a client that does not answer
/// a Close within it is cut).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Options of `sockeye serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port).
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
    listen: String,
    /// Echoes every message back to its sender (the default mode).
    #[arg(long, conflicts_with = "broadcast")]
    echo: bool,
    /// Chat rooms: every message goes to all the other clients in its
    /// room. A WebSocket at / joins the default room, one at /room/NAME
    /// joins room NAME.
    #[arg(long)]
    broadcast: bool,
    /// Also serves the files under PATH over HTTP on the same port
    /// (default: only the built-in demo page at /). The built-in page is
    /// always at /_sockeye/ too, and at / when PATH has no index.html.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Serves wss:// and https:// with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The largest message accepted from a client (larger: close 1009);
    /// also the largest frame.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// The most memory all WebSocket connections may hold together for
    /// their clients (incomplete messages, inflated data, replies queued
    /// for clients that do not read). Past it, connections holding 64 KiB
    /// or more stop reading; if that lasts 3 s, the ones holding the most
    /// are closed with 1013 (try again later). Default: a quarter of the
    /// machine's memory (or of the cgroup's limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_budget: Option<usize>,
    /// The most connections served at once; more are answered with 503.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// A subprotocol this server speaks (repeat for several, most
    /// preferred first).
    #[arg(short = 'P', long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Accepts browsers from this origin, scheme://host[:port]
    /// (repeatable). Default: the server's own origin only; clients that
    /// send no Origin are always accepted.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Accepts browsers from any origin.
    #[arg(long, conflicts_with = "allow_origins")]
    allow_any_origin: bool,
    /// Accepts requests whose Host header names HOST: a name, name:port,
    /// [v6]:port or *.domain (repeatable); others get 421. Default: when
    /// listening on a loopback address, only localhost, 127.0.0.1 and
    /// [::1] with the server's port (against DNS rebinding: a web page
    /// whose name is pointed at 127.0.0.1 cannot reach the server); on
    /// any other address, every Host.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    allow_hosts: Vec<String>,
    /// Accepts any Host header, even on a loopback address.
    #[arg(long, conflicts_with = "allow_hosts")]
    allow_any_host: bool,
    /// The most WebSocket connections open at once from one client
    /// address (an IPv4 address or an IPv6 /64; `off`: no cap); more get
    /// 503 with Retry-After, so that one peer cannot take every slot.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_optional_count)]
    max_connections_per_address: OptionalCount,
    /// Declines permessage-deflate (RFC 7692): messages go uncompressed
    /// even to clients that offer it. Default: accepted when offered.
    #[arg(long)]
    no_compression: bool,
    /// Pings each WebSocket client this often (`off` or 0: never); one
    /// that does not answer within --ping-timeout is closed with 1011.
    #[arg(long, value_name = "DURATION", default_value = "20s",
          value_parser = parse_optional_duration)]
    ping_interval: OptionalDuration,
    /// How long a client may take to answer a Ping with a Pong before its
    /// connection is closed with 1011 (internal error).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    ping_timeout: Duration,
    /// Closes a WebSocket with 1001 (going away) when nothing at all
    /// arrives from its client for this long (`off` or 0: never). Pongs
    /// count: a client that answers the Pings is idle only if this is
    /// shorter than --ping-interval.
    #[arg(long, value_name = "DURATION", default_value = "off",
          value_parser = parse_optional_duration)]
    idle_timeout: OptionalDuration,
    /// How long an HTTP response (the page, a file, an error) may make no
    /// progress, the client accepting no bytes, before the connection is
    /// dropped. A slow client that keeps reading is not cut off.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    send_timeout: Duration,
    /// Broadcast: messages queued for one client before it counts as too
    /// slow and is closed with 1008.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    queue: u32,
    /// Broadcast: what happens to a client whose queue is full: close
    /// (with 1008), drop-oldest or drop-newest (it misses messages).
    #[arg(long, value_name = "POLICY", default_value = "close",
          value_parser = broadcast::parse_slow_policy)]
    slow_policy: sockeye::hub::SlowPolicy,
    /// Broadcast: spreads the rooms over every node on this backplane
    /// (redis://HOST:PORT or nats://HOST:PORT): a message said on one node
    /// reaches the room's members on all of them, at most once, in order
    /// per node. Without it, one process is the whole server.
    #[arg(long, value_name = "URL", requires = "broadcast",
          value_parser = broadcast::parse_backplane)]
    backplane: Option<broadcast::BackplaneUrl>,
    /// On Ctrl-C or SIGTERM: the window over which the WebSockets are
    /// closed, each at its own moment, so that their clients do not all
    /// reconnect at once (0: all at once).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = parse_optional_duration)]
    drain_window: OptionalDuration,
    /// On Ctrl-C or SIGTERM: how long to wait for the closing handshakes
    /// (from the start of the drain); connections still open then are
    /// cut.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// On Ctrl-C or SIGTERM: the close code, 1001 (going away) or 1012
    /// (service restart).
    #[arg(long, value_name = "CODE", default_value_t = 1001,
          value_parser = parse_drain_code)]
    drain_code: u16,
    /// Serves Prometheus metrics (text format) at http://ADDR/metrics on a
    /// listener of its own: ADDR is IP:PORT, localhost:PORT or PORT (on
    /// 127.0.0.1). Plain HTTP: keep it on loopback or a private network,
    /// as in --metrics 127.0.0.1:9090. Series: connections open,
    /// accepted, refused by reason and closed, messages and bytes each
    /// way, and in broadcast mode the hub's deliveries, drops, queue
    /// depths and backplane state. Default: off.
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_address)]
    metrics: Option<SocketAddr>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
}

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
}

/// Runs `sockeye serve`.
pub fn main(args: ServeArgs) -> Result<(), Failure> {
    let threads = args
        .threads
        .map(|threads| threads as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    crate::run_async(threads, run(args))
}

async fn run(args: ServeArgs) -> Result<(), Failure> {
    let mode = if args.broadcast {
        Mode::Broadcast
    } else {
        Mode::Echo
    };
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
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
    });
    info!(
        "memory budget: {} MiB",
        shared.server.get_memory_budget() >> 20
    );
    let (ws, http) = match shared.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    };
    note!(
        "sockeye: listening on {ws}://{local} ({} mode; open {http}://{local}/ in a browser; Ctrl-C to stop)",
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
    let code = CloseCode::new(args.drain_code);
    let window = args.drain_window.0.unwrap_or(Duration::ZERO);
    let drain = shared.server.drain_handle();
    note!(
        "sockeye: shutting down: closing {} WebSocket connection(s) with {code} over {window:?}",
        shared.server.open_connections()
    );
    drain.start(
        DrainConfig::new()
            .code(code)
            .reason(if code == CloseCode::SERVICE_RESTART {
                "server restarting"
            } else {
                "server shutting down"
            })
            .window(window)
            .timeout(args.drain_timeout),
    );
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

/// A close code a drain may use.
fn parse_drain_code(text: &str) -> Result<u16, String> {
    match text.trim() {
        "1001" => Ok(1001),
        "1012" => Ok(1012),
        other => Err(format!(
            "{other:?}: expected 1001 (going away) or 1012 (service restart)"
        )),
    }
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

/// An --allow-host entry, checked as the library reads it.
fn parse_allowed_host(text: &str) -> Result<String, String> {
    if sockeye::policy::is_valid_allowed_host(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "expected a host name, name:port, [v6]:port or *.domain, not {text:?}"
        ))
    }
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
    // so is the broadcast mode's state. Idle connections cost about 2 KiB
    // (bench scenario f; see bench/NOTES.md).
    let Some((ws, member)) = Box::pin(open_websocket(tcp, peer, &shared)).await else {
        return;
    };
    match member {
        None => echo(ws, peer).await,
        Some(member) => {
            Box::pin(broadcast::serve(&shared.hub, member, *ws, peer)).await;
        }
    }
}

/// Reads the request and answers it: HTTP for files and the page, a
/// refusal, or a 101 and the WebSocket (with its room, in broadcast
/// mode).
async fn open_websocket(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<(Box<WebSocket<ServerStream>>, Option<Member>)> {
    let _ = tcp.set_nodelay(true);
    let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut stream = open_stream(tcp, shared).await?;
        let head = read_head(&mut stream).await;
        Ok::<_, String>((stream, head))
    })
    .await;
    let (mut stream, head) = match opened {
        Ok(Ok(opened)) => opened,
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
    Some((ws, member))
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

/// Reads a request head with the builder's limits. `None` when the client
/// closed before sending one. Returns the bytes read past the head.
async fn read_head<S>(stream: &mut S) -> Result<Option<(Request<()>, Vec<u8>)>, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    // ServerBuilder's default limits (16 KiB, 64 fields); it does not
    // expose its own parser.
    let mut parser = RequestParser::new()
        .max_head_size(handshake::DEFAULT_MAX_HEAD_SIZE)
        .max_headers(handshake::DEFAULT_MAX_HEADERS);
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
        let _ = read_head(&mut stream).await;
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
