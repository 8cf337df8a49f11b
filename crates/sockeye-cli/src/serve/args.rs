//! The options of `sockeye serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::broadcast;
use crate::options::{
    OptionalCount, OptionalDuration, parse_duration, parse_optional_count, parse_optional_duration,
    parse_size,
};

/// Options of `sockeye serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port).
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
    pub(super) listen: String,
    /// Echoes every message back to its sender (the default mode).
    #[arg(long, conflicts_with = "broadcast")]
    pub(super) echo: bool,
    /// Chat rooms: every message goes to all the other clients in its
    /// room. A WebSocket at / joins the default room, one at /room/NAME
    /// joins room NAME.
    #[arg(long)]
    pub(super) broadcast: bool,
    /// Also serves the files under PATH over HTTP on the same port
    /// (default: only the built-in demo page at /). The built-in page is
    /// always at /_sockeye/ too, and at / when PATH has no index.html.
    #[arg(long, value_name = "PATH")]
    pub(super) dir: Option<PathBuf>,
    /// Serves wss:// and https:// with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(super) cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(super) key: Option<PathBuf>,
    /// Also speaks HTTP/2 in cleartext (h2c, prior knowledge: clients
    /// that open with the HTTP/2 preface), WebSockets over HTTP/2 (RFC
    /// 8441) without TLS, for tests and proxies. With --cert, HTTP/2 is
    /// offered by ALPN (h2) anyway.
    #[arg(long)]
    pub(super) h2c: bool,
    /// HTTP/1.1 only: does not offer h2 by ALPN.
    #[arg(long, conflicts_with = "h2c")]
    pub(super) no_http2: bool,
    /// The most WebSockets one HTTP/2 connection may carry at once
    /// (SETTINGS_MAX_CONCURRENT_STREAMS); each also counts under
    /// --max-connections.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) max_streams: u32,
    /// The largest message accepted from a client (larger: close 1009);
    /// also the largest frame.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub(super) max_message_size: usize,
    /// The most memory all WebSocket connections may hold together for
    /// their clients (incomplete messages, inflated data, replies queued
    /// for clients that do not read). Past it, connections holding 64 KiB
    /// or more stop reading; if that lasts 3 s, the ones holding the most
    /// are closed with 1013 (try again later). Default: a quarter of the
    /// machine's memory (or of the cgroup's limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(super) memory_budget: Option<usize>,
    /// The most connections served at once; more are answered with 503.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) max_connections: u32,
    /// A subprotocol this server speaks (repeat for several, most
    /// preferred first).
    #[arg(short = 'P', long = "subprotocol", value_name = "NAME")]
    pub(super) subprotocols: Vec<String>,
    /// Accepts browsers from this origin, scheme://host[:port]
    /// (repeatable). Default: the server's own origin only; clients that
    /// send no Origin are always accepted.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub(super) allow_origins: Vec<String>,
    /// Accepts browsers from any origin.
    #[arg(long, conflicts_with = "allow_origins")]
    pub(super) allow_any_origin: bool,
    /// Accepts requests whose Host header names HOST: a name, name:port,
    /// [v6]:port or *.domain (repeatable); others get 421. Default: when
    /// listening on a loopback address, only localhost, 127.0.0.1 and
    /// [::1] with the server's port (against DNS rebinding: a web page
    /// whose name is pointed at 127.0.0.1 cannot reach the server); on
    /// any other address, every Host.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    pub(super) allow_hosts: Vec<String>,
    /// Accepts any Host header, even on a loopback address.
    #[arg(long, conflicts_with = "allow_hosts")]
    pub(super) allow_any_host: bool,
    /// The most WebSocket connections open at once from one client
    /// address (an IPv4 address or an IPv6 /64; `off`: no cap); more get
    /// 503 with Retry-After, so that one peer cannot take every slot.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_optional_count)]
    pub(super) max_connections_per_address: OptionalCount,
    /// Declines permessage-deflate (RFC 7692): messages go uncompressed
    /// even to clients that offer it. Default: accepted when offered.
    #[arg(long)]
    pub(super) no_compression: bool,
    /// Pings each WebSocket client this often (`off` or 0: never); one
    /// that does not answer within --ping-timeout is closed with 1011.
    #[arg(long, value_name = "DURATION", default_value = "20s",
          value_parser = parse_optional_duration)]
    pub(super) ping_interval: OptionalDuration,
    /// How long a client may take to answer a Ping with a Pong before its
    /// connection is closed with 1011 (internal error).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub(super) ping_timeout: Duration,
    /// Closes a WebSocket with 1001 (going away) when nothing at all
    /// arrives from its client for this long (`off` or 0: never). Pongs
    /// count: a client that answers the Pings is idle only if this is
    /// shorter than --ping-interval.
    #[arg(long, value_name = "DURATION", default_value = "off",
          value_parser = parse_optional_duration)]
    pub(super) idle_timeout: OptionalDuration,
    /// How long an HTTP response (the page, a file, an error) may make no
    /// progress, the client accepting no bytes, before the connection is
    /// dropped. A slow client that keeps reading is not cut off.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(super) send_timeout: Duration,
    /// Broadcast: messages queued for one client before it counts as too
    /// slow and is closed with 1008.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) queue: u32,
    /// Broadcast: what happens to a client whose queue is full: close
    /// (with 1008), drop-oldest or drop-newest (it misses messages).
    #[arg(long, value_name = "POLICY", default_value = "close",
          value_parser = broadcast::parse_slow_policy)]
    pub(super) slow_policy: sockeye::hub::SlowPolicy,
    /// Broadcast: spreads the rooms over every node on this backplane
    /// (redis://HOST:PORT or nats://HOST:PORT): a message said on one node
    /// reaches the room's members on all of them, at most once, in order
    /// per node. Without it, one process is the whole server.
    #[arg(long, value_name = "URL", requires = "broadcast",
          value_parser = broadcast::parse_backplane)]
    pub(super) backplane: Option<broadcast::BackplaneUrl>,
    /// On Ctrl-C or SIGTERM: the window over which the WebSockets are
    /// closed, each at its own moment, so that their clients do not all
    /// reconnect at once (0: all at once).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = parse_optional_duration)]
    pub(super) drain_window: OptionalDuration,
    /// On Ctrl-C or SIGTERM: how long to wait for the closing handshakes
    /// (from the start of the drain); connections still open then are
    /// cut.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(super) drain_timeout: Duration,
    /// On Ctrl-C or SIGTERM: the close code, 1001 (going away) or 1012
    /// (service restart).
    #[arg(long, value_name = "CODE", default_value_t = 1001,
          value_parser = parse_drain_code)]
    pub(super) drain_code: u16,
    /// Serves Prometheus metrics (text format) at http://ADDR/metrics on a
    /// listener of its own: ADDR is IP:PORT, localhost:PORT or PORT (on
    /// 127.0.0.1). Plain HTTP: keep it on loopback or a private network,
    /// as in --metrics 127.0.0.1:9090. Series: connections open,
    /// accepted, refused by reason and closed, messages and bytes each
    /// way, and in broadcast mode the hub's deliveries, drops, queue
    /// depths and backplane state. Default: off.
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_address)]
    pub(super) metrics: Option<SocketAddr>,
    /// Worker threads, or event loops (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) threads: Option<u32>,
    /// The front-end: `loop` (one event loop per thread, no task per
    /// connection), `tokio` (a task per connection), or `auto`: the event
    /// loop unless an option needs tokio (--cert, --h2c, --backplane, a
    /// --slow-policy other than close, --metrics with --broadcast).
    #[arg(long, value_name = "RUNTIME", default_value = "auto", value_enum)]
    pub(super) runtime: super::event_loop::Runtime,
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
