//! Server policy: what a server accepts, and the bounds it keeps across
//! its connections, decided in one place that knows no front-end.
//!
//! [`ServerBuilder`] holds the handshake policy (subprotocols, Origin,
//! permessage-deflate, the request filter), the `Host` allow-list, the
//! connection limits (in all, and per client address) and the engine
//! config. `ServerBuilder::admit` runs every check on a request that was
//! read and, when it passes, hands out the `101` response, the engine and
//! the connection's permit. Each front-end (tokio, blocking, hyper) reads
//! requests and writes answers its own way, and calls `admit` in between:
//! a bound is written once, here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HOST, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use rustls::ServerConfig;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
use sockeye_proto::handshake::{
    self, HandshakeError, Negotiated, RequestParser, ServerHandshake, comparable_host,
    parse_host_port,
};
use sockeye_proto::{Config, Connection, Role};

use crate::budget::{DEFAULT_MEMORY_BUDGET_TIMEOUT, MemoryBudget, Share, default_memory_budget};
use crate::stats::{Counters, RefusalReason, ServerStats, Tally};

/// A server's policy, limits and config. Build it once and accept every
/// connection with it (it is cheap to clone, and its clones share the
/// connection counts).
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
///         let Ok(mut ws) = server.accept_tcp(tcp).await else { return };
///         while let Some(Ok(message)) = ws.recv().await {
///             if ws.send(message).await.is_err() { break }
///         }
///     });
/// }
/// # }
/// ```
///
/// # Checks, in order
///
/// | check | refusal |
/// |---|---|
/// | `Host` (over HTTP/2, `:authority`) is one of [`allowed_hosts`](Self::allowed_hosts) (when set) | 421 Misdirected Request |
/// | the opening handshake ([`ServerHandshake`]: method, headers, version, key, Origin, subprotocols, extensions, the request filter) | 400, 403, 405, 426, ... |
/// | [`max_connections`](Self::max_connections) | 503 with `Retry-After: 1` |
/// | [`max_connections_per_address`](Self::max_connections_per_address) | 503 with `Retry-After: 5` |
/// | a [drain](Self::drain_handle) has started | 503 with `Retry-After: 1` |
///
/// # Defaults
///
/// | setting | default | why |
/// |---|---|---|
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s | a request dribbled a byte at a time cannot hold a connection |
/// | [`max_head_size`](Self::max_head_size) / [`max_headers`](Self::max_headers) | 16 KiB / 64 | far above what browsers send, far below what exhausts memory |
/// | [`allowed_hosts`](Self::allowed_hosts) | any host | only the application knows its names; a server on loopback should list them (`sockeye serve` does) |
/// | [`max_connections`](Self::max_connections) | 10,000 | about the default file-descriptor budget of a tuned host |
/// | [`max_connections_per_address`](Self::max_connections_per_address) | off | clients behind one NAT share an address; `sockeye serve` uses 256 |
/// | [`config`](Self::config) | [`Config::default`]: for servers, a keepalive Ping every 20 s (1011 after 20 s without its Pong), a 60 s message-completion timeout (1008) | dead and silent peers give their slots back; see [`Config`] for every engine limit |
/// | [`memory_budget`](Self::memory_budget) | a quarter of the machine's memory (or of the cgroup's limit); 1 GiB where unknown | the connections' buffers together cannot exhaust the host; stalled past 3 s, the largest holders get 1013 |
/// | [`max_http2_streams`](Self::max_http2_streams) | 100 per HTTP/2 connection (feature `http2`) | RFC 9113 asks for no fewer; each stream also counts under `max_connections` |
/// | [drain](Self::drain_handle) | 1 s window, 10 s timeout ([`DrainConfig`](crate::DrainConfig)) | clients do not all reconnect at once; a shutdown never hangs |
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    pub(crate) handshake: ServerHandshake,
    /// Shared by every connection's engine.
    pub(crate) config: Arc<Config>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) deflate: DeflateConfig,
    pub(crate) hosts: Option<Arc<[AllowedHost]>>,
    pub(crate) limits: Arc<Limits>,
    /// Shutdown: shared by the clones, like the limits.
    pub(crate) drain: crate::drain::Drain,
    /// The memory budget (`budget.rs`), shared by the clones.
    pub(crate) budget: Arc<MemoryBudget>,
    /// WebSockets one HTTP/2 connection may carry at once (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) max_http2_streams: u32,
}

/// The default [`ServerBuilder::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The default [`ServerBuilder::max_http2_streams`]: RFC 9113 section
/// 6.5.2 asks for no fewer than 100, and browsers and proxies expect
/// about that (Chromium and nginx use 100 and 128).
pub const DEFAULT_MAX_HTTP2_STREAMS: u32 = 100;

/// How long a client refused by the per-address cap is asked to wait.
const PER_ADDRESS_RETRY_AFTER: &str = "5";

/// A client address as counted by the per-address cap: an IPv4 address,
/// or the /64 prefix of an IPv6 one (one subscriber's network: a host
/// gets a whole /64 and can pick any address in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl AddressKey {
    pub(crate) fn of(address: IpAddr) -> AddressKey {
        match address {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let octets = v6.octets();
                    let mut prefix = [0; 8];
                    prefix.copy_from_slice(&octets[..8]);
                    AddressKey::V6Prefix(prefix)
                }
            },
        }
    }
}

/// Open connections counted against the limits, and the server's
/// [`ServerStats`] counters, shared by a builder's clones.
#[derive(Debug)]
pub(crate) struct Limits {
    max: usize,
    active: AtomicUsize,
    per_address: Option<usize>,
    /// Open connections per client address; only addresses with some.
    addresses: Mutex<HashMap<AddressKey, usize>>,
    counters: Counters,
}

impl Limits {
    fn new(max: usize, per_address: Option<usize>) -> Limits {
        Limits {
            max,
            active: AtomicUsize::new(0),
            per_address,
            addresses: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// Counts one more connection from `address`, unless it has `max`.
    fn take_address(&self, address: AddressKey, max: usize) -> bool {
        let mut addresses = self.addresses();
        let count = addresses.entry(address).or_insert(0);
        if *count >= max {
            if *count == 0 {
                addresses.remove(&address);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a connection's places: in all, and its address's.
    fn release(&self, address: Option<AddressKey>) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        let Some(address) = address else { return };
        let mut addresses = self.addresses();
        if let Some(count) = addresses.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                addresses.remove(&address);
            }
        }
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // A panic while the lock was held cannot leave the counts torn
        // (each update is one statement): carry on.
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's place under [`ServerBuilder::max_connections`] (and its
/// address's under [`ServerBuilder::max_connections_per_address`]), given
/// back when the connection (its `WebSocket`) is dropped, its slot in
/// the builder's [`Drain`](crate::Drain), and its counts for
/// [`ServerBuilder::stats`] (see `stats.rs`).
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<Limits>,
    address: Option<AddressKey>,
    pub(crate) drain: crate::drain::DrainSlot,
    /// Counted by the front-end in plain fields; added to the server's
    /// counters by [`ConnectionPermit::publish`] and when dropped.
    pub(crate) tally: Tally,
}

impl ConnectionPermit {
    /// Adds the connection's counts to its server's.
    pub(crate) fn publish(&mut self) {
        self.tally.publish(&self.limits.counters);
    }

    /// The connection ended (cleanly: with a complete closing handshake):
    /// tells the drain, and publishes the counts.
    pub(crate) fn finish(&mut self, clean: bool) {
        self.drain.finish(clean);
        self.tally.set_clean(clean);
        self.publish();
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.tally.end(&self.limits.counters);
        self.limits.release(self.address);
    }
}

/// What a server knows about a connection beyond its request: the
/// client's address (for
/// [`max_connections_per_address`](ServerBuilder::max_connections_per_address))
/// and whether it came over TLS (for the origin check's scheme).
/// [`ServerBuilder::accept_tcp`] finds both itself; a server that reads
/// requests itself ([`ServerBuilder::accept_request`]) or runs under hyper
/// puts one in the request's extensions (a bare `std::net::SocketAddr`
/// there counts as the address).
///
/// ```
/// let mut request = http::Request::new(());
/// let peer: std::net::SocketAddr = "192.0.2.1:50000".parse().unwrap();
/// request
///     .extensions_mut()
///     .insert(sockeye::ConnectionInfo::new(Some(peer), Some(false)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    remote: Option<SocketAddr>,
    secure: Option<bool>,
}

impl ConnectionInfo {
    /// The client's address, and whether the connection is TLS (`None`:
    /// unknown, as behind a proxy that terminates TLS).
    pub fn new(remote: Option<SocketAddr>, secure: Option<bool>) -> ConnectionInfo {
        ConnectionInfo { remote, secure }
    }

    /// The client's address, if known.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Whether the connection is TLS, if known.
    pub fn secure(&self) -> Option<bool> {
        self.secure
    }

    /// What `request` carries in its extensions.
    fn of<B>(request: &Request<B>) -> ConnectionInfo {
        let extensions = request.extensions();
        let mut info = extensions
            .get::<ConnectionInfo>()
            .copied()
            .unwrap_or(ConnectionInfo::new(None, None));
        if info.remote.is_none() {
            info.remote = extensions.get::<SocketAddr>().copied();
        }
        info
    }
}

/// A request that passed every check: the response to send, the engine
/// for the connection, and its place under the limits (held until the
/// connection is dropped).
#[derive(Debug)]
pub(crate) struct Admission {
    /// The `101 Switching Protocols` response.
    pub(crate) response: Response<()>,
    /// The engine, with the negotiated extensions enabled.
    pub(crate) engine: Connection,
    pub(crate) permit: ConnectionPermit,
    /// The connection's account under the memory budget.
    pub(crate) budget: Share,
}

/// How a WebSocket request arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via<'a> {
    /// An HTTP/1.1 Upgrade: answered with `101`.
    Http1,
    /// An HTTP/2 extended CONNECT with this `:protocol`: answered with
    /// `200`.
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    Http2 { protocol: Option<&'a str> },
}

/// An entry of [`ServerBuilder::allowed_hosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHost {
    /// Lowercase, without a trailing dot; IPv6 literals in brackets. A
    /// leading `*.` matches any subdomain.
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or `*.domain`.
    fn parse(text: &str) -> Option<AllowedHost> {
        // The `Host` header's own grammar (whose reg-name has `*`).
        let parsed = parse_host_port(text.trim())?;
        Some(AllowedHost {
            host: comparable_host(parsed.host),
            port: parsed.port,
        })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host_matches = match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => self.host == host,
        };
        host_matches && (self.port.is_none() || self.port == port)
    }
}

/// Whether `entry` is one that [`ServerBuilder::allowed_hosts`] takes:
/// `name`, `name:port`, `[v6]`, `[v6]:port` or `*.domain`. The builder
/// ignores the others (so a typo refuses that host rather than admitting
/// any); check with this first to report them.
///
/// ```
/// assert!(sockeye::policy::is_valid_allowed_host("localhost:9001"));
/// assert!(sockeye::policy::is_valid_allowed_host("*.example.com"));
/// assert!(!sockeye::policy::is_valid_allowed_host("example.com:http"));
/// ```
pub fn is_valid_allowed_host(entry: &str) -> bool {
    AllowedHost::parse(entry).is_some()
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// The default policy (see [`accept`](crate::accept)).
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            handshake: ServerHandshake::new()
                .extensions(DeflateNegotiator::new(DeflateConfig::new())),
            config: Arc::new(Config::default()),
            handshake_timeout: Duration::from_secs(10),
            max_head_size: handshake::DEFAULT_MAX_HEAD_SIZE,
            max_headers: handshake::DEFAULT_MAX_HEADERS,
            tls: None,
            deflate: DeflateConfig::new(),
            hosts: None,
            limits: Arc::new(Limits::new(DEFAULT_MAX_CONNECTIONS, None)),
            drain: crate::drain::Drain::new(),
            budget: Arc::new(MemoryBudget::new(
                default_memory_budget(),
                DEFAULT_MEMORY_BUDGET_TIMEOUT,
            )),
            max_http2_streams: DEFAULT_MAX_HTTP2_STREAMS,
        }
    }

    /// The handle that drains this server (and its clones): stops
    /// admitting, closes every connection accepted through it over a
    /// window, and reports how they ended. See [`Drain`](crate::Drain).
    /// Every builder has one from [`ServerBuilder::new`], shared by its
    /// clones.
    pub fn drain_handle(&self) -> crate::drain::Drain {
        self.drain.clone()
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
        self.limits = Arc::new(Limits::new(max, self.limits.per_address));
        self
    }

    /// The most connections open at once from one client address: an
    /// IPv4 address, or an IPv6 /64 (a host can pick any address in its
    /// /64, so counting single IPv6 addresses would bound nothing). Past
    /// it, `503 Service Unavailable` with `Retry-After: 5`. This keeps one
    /// peer from taking every slot of
    /// [`max_connections`](Self::max_connections). Default: `None` (no
    /// cap): clients behind one NAT or proxy share an address, and only
    /// the application knows how many of them to expect.
    ///
    /// The address is known to [`accept_tcp`](Self::accept_tcp) and the
    /// blocking `accept` on a `TcpStream`; elsewhere (a stream of your own,
    /// hyper), put the client's `std::net::SocketAddr` in the request's
    /// extensions, or the connection is not counted.
    ///
    /// Starts a new count: call it before cloning the builder.
    pub fn max_connections_per_address(mut self, max: Option<usize>) -> ServerBuilder {
        self.limits = Arc::new(Limits::new(self.limits.max, max));
        self
    }

    /// How many connections accepted through this builder (and its
    /// clones) are open now.
    pub fn open_connections(&self) -> usize {
        self.limits.active.load(Ordering::Acquire)
    }

    /// The counters of this builder and its clones: connections accepted,
    /// open, refused (by [`RefusalReason`]) and closed, data messages and
    /// bytes each way. See [`ServerStats`] for what each counts.
    ///
    /// Cheap to call (a few relaxed loads), and cheap to keep: the
    /// connections add to these counters in batches, not per message.
    /// [`max_connections`](Self::max_connections) and
    /// [`max_connections_per_address`](Self::max_connections_per_address)
    /// start the counts afresh, like the limits.
    ///
    /// ```
    /// use sockeye::stats::RefusalReason;
    ///
    /// let server = sockeye::ServerBuilder::new();
    /// let stats = server.stats();
    /// assert_eq!(stats.accepted, 0);
    /// assert_eq!(stats.refused(RefusalReason::HostNotAllowed), 0);
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.limits
            .counters
            .snapshot(self.open_connections(), self.budget.shed_count())
    }

    /// Counts a request the application refused itself, for
    /// [`stats`](Self::stats): a server that reads requests itself (see
    /// [`accept_request`](Self::accept_request)) and answers some without
    /// the builder (one that does not parse: [`RefusalReason::BadRequest`];
    /// a path it does not serve: [`RefusalReason::Application`]; its own
    /// connection cap: [`RefusalReason::ConnectionLimit`]). Refusals the
    /// builder makes are counted already, [`check_host`](Self::check_host)'s
    /// included.
    pub fn record_refusal(&self, reason: RefusalReason) {
        self.limits.counters.refused(reason);
    }

    /// Accepts requests only for these hosts: the `Host` header must name
    /// one of them, or the request is refused with `421 Misdirected
    /// Request` before any other check. Each entry is `name`, `name:port`,
    /// `[v6]` or `[v6]:port`, or `*.domain` for its subdomains; an entry
    /// without a port matches any port. Names compare ASCII
    /// case-insensitively.
    ///
    /// This stops DNS rebinding: a web page whose name an attacker points
    /// at a server's address sends its own name as `Host` (and as
    /// `Origin`, so the same-origin check alone lets it in). A server on a
    /// loopback or private address should list the names it is reached
    /// by. 421 rather than 403: the request is for a host this server
    /// does not serve (RFC 9110 section 15.5.20), which is not a matter of
    /// permission, and the status tells it apart from a refused `Origin`.
    ///
    /// Default: none (any `Host`). Entries that do not parse are ignored
    /// ([`is_valid_allowed_host`] tells them).
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hosts: Vec<AllowedHost> = hosts
            .into_iter()
            .filter_map(|host| AllowedHost::parse(host.as_ref()))
            .collect();
        self.hosts = Some(hosts.into());
        self
    }

    /// Accepts any `Host` again (see [`allowed_hosts`](Self::allowed_hosts)).
    pub fn allow_any_host(mut self) -> ServerBuilder {
        self.hosts = None;
        self
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
        self.handshake = self.handshake.extensions(DeflateNegotiator::new(config));
        self
    }

    /// The subprotocols this server speaks, in order of preference: the
    /// first one the client also offered is chosen. Default: none.
    pub fn subprotocols<I, S>(mut self, preference: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.handshake = self.handshake.subprotocols(preference);
        self
    }

    /// Accepts browsers only from these origins (`scheme://host[:port]`).
    /// Default: only the origin whose host is the request's `Host`, which
    /// stops cross-site WebSocket hijacking; where the server knows
    /// whether the connection is TLS ([`accept_tcp`](Self::accept_tcp)),
    /// the origin's scheme must match it too (`https://` for `wss://`,
    /// `http://` for `ws://`). Requests without `Origin` (non-browser
    /// clients) are accepted.
    pub fn allow_origins<I, S>(mut self, origins: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.handshake = self.handshake.allow_origins(origins);
        self
    }

    /// Accepts any origin. Default: off (see [`ServerBuilder::allow_origins`]).
    pub fn allow_any_origin(mut self) -> ServerBuilder {
        self.handshake = self.handshake.allow_any_origin();
        self
    }

    /// Adds a header to every `101` response (a cookie). Default: none.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> ServerBuilder {
        self.handshake = self.handshake.header(name, value);
        self
    }

    /// Inspects each valid request and may refuse it with a response of
    /// your own (401 with `WWW-Authenticate`, 403, ...). Default: none.
    pub fn filter_request<F>(mut self, filter: F) -> ServerBuilder
    where
        F: Fn(&Request<()>) -> Option<Response<bytes::Bytes>> + Send + Sync + 'static,
    {
        self.handshake = self.handshake.filter_request(filter);
        self
    }

    /// Replaces the whole handshake policy.
    pub fn policy(mut self, policy: ServerHandshake) -> ServerBuilder {
        self.handshake = policy;
        self
    }

    /// The protocol engine's limits and timers. Default:
    /// [`Config::default`], whose server defaults include a keepalive Ping
    /// every 20 s (a peer whose Pong does not come within 20 s is closed
    /// with 1011) and a 60 s message-completion timeout (1008); see
    /// [`Config`]'s table.
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

    /// The handshake policy (for integrations that parse requests
    /// themselves, such as hyper).
    pub fn handshake_policy(&self) -> &ServerHandshake {
        &self.handshake
    }

    /// The engine config connections get.
    pub fn engine_config(&self) -> &Config {
        &self.config
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

    /// Runs every check on a request that was read (see the table above),
    /// in order, and on success builds what the front-end needs: the
    /// `101`, the engine and the permit. `known` is what the front-end
    /// knows of the connection; what it does not know is taken from the
    /// request's extensions ([`ConnectionInfo`]).
    pub(crate) fn admit(
        &self,
        request: &Request<()>,
        known: ConnectionInfo,
    ) -> Result<Admission, HandshakeError> {
        self.admit_via(request, known, Via::Http1)
    }

    /// [`admit`](Self::admit) for a request that came over `via`: over
    /// HTTP/2 it is an extended CONNECT (RFC 8441), answered with `200`.
    pub(crate) fn admit_via(
        &self,
        request: &Request<()>,
        known: ConnectionInfo,
        via: Via<'_>,
    ) -> Result<Admission, HandshakeError> {
        let carried = ConnectionInfo::of(request);
        let peer = known.remote.or(carried.remote).map(|address| address.ip());
        let secure = known.secure.or(carried.secure);
        self.check_host(request)?;
        let accepted = match (via, secure) {
            (Via::Http1, Some(secure)) => self.handshake.accept_secure(request, secure),
            (Via::Http1, None) => self.handshake.accept(request),
            (Via::Http2 { protocol }, secure) => self
                .handshake
                .accept_extended_connect(request, protocol, secure),
        }
        .inspect_err(|error| self.record_refusal(RefusalReason::of_handshake(error)))?;
        let permit = self.take_permit(peer)?;
        Ok(Admission {
            response: accepted.response,
            engine: self.engine(&accepted.negotiated),
            permit,
            budget: self.budget.share(),
        })
    }

    /// Checks a request's `Host` against
    /// [`allowed_hosts`](Self::allowed_hosts): a refusal carries the 421
    /// to answer. Every WebSocket request is checked this way; a server
    /// that also serves plain HTTP on the same port (as `sockeye serve`
    /// does) calls this for those requests too, so that a rebound name
    /// cannot read its pages either. A missing or malformed `Host` passes
    /// here (the opening handshake answers it with 400). A refusal is
    /// counted in [`stats`](Self::stats) ([`RefusalReason::HostNotAllowed`]).
    pub fn check_host<B>(&self, request: &Request<B>) -> Result<(), HandshakeError> {
        let Some(allowed) = &self.hosts else {
            return Ok(());
        };
        let mut values = request.headers().get_all(HOST).iter();
        let host = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok(),
            // HTTP/2 carries the host in `:authority` (RFC 9113 section
            // 8.3.1), which the request's URI holds.
            (None, _) if request.version() == http::Version::HTTP_2 => request
                .uri()
                .authority()
                .map(|authority| authority.as_str()),
            _ => None,
        };
        let Some(parsed) = host.and_then(parse_host_port) else {
            return Ok(());
        };
        let host = comparable_host(parsed.host);
        if allowed
            .iter()
            .any(|entry| entry.matches(&host, parsed.port))
        {
            return Ok(());
        }
        self.record_refusal(RefusalReason::HostNotAllowed);
        Err(HandshakeError::refused(handshake::rejection(
            StatusCode::MISDIRECTED_REQUEST,
            "this server does not serve that host",
        )))
    }

    /// The counters behind [`stats`](Self::stats).
    #[cfg_attr(not(any(feature = "http2", feature = "event-loop")), allow(dead_code))]
    pub(crate) fn counters(&self) -> &Counters {
        &self.limits.counters
    }

    /// Takes a place under the connection limits and a slot in the drain,
    /// or refuses with 503 (too many connections, or draining).
    fn take_permit(&self, peer: Option<IpAddr>) -> Result<ConnectionPermit, HandshakeError> {
        let limits = &self.limits;
        let refuse = |reason| limits.counters.refused(reason);
        self.drain
            .check()
            .inspect_err(|_| refuse(RefusalReason::Draining))?;
        limits
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < limits.max).then_some(active + 1)
            })
            .map_err(|_| {
                refuse(RefusalReason::ConnectionLimit);
                unavailable("too many connections, try again later", "1")
            })?;
        let address = match (limits.per_address, peer) {
            (Some(max), Some(peer)) => {
                let key = AddressKey::of(peer);
                if !limits.take_address(key, max) {
                    limits.active.fetch_sub(1, Ordering::AcqRel);
                    refuse(RefusalReason::AddressLimit);
                    return Err(unavailable(
                        "too many connections from your address, try again later",
                        PER_ADDRESS_RETRY_AFTER,
                    ));
                }
                Some(key)
            }
            _ => None,
        };
        // The places are given back if the drain started meanwhile.
        let drain = self.drain.register().inspect_err(|_| {
            limits.release(address);
            refuse(RefusalReason::Draining);
        })?;
        limits.counters.accepted();
        Ok(ConnectionPermit {
            limits: limits.clone(),
            address,
            drain,
            tally: Tally::default(),
        })
    }

    /// The engine for a connection that negotiated `negotiated`.
    fn engine(&self, negotiated: &Negotiated) -> Connection {
        let mut engine = Connection::new(Role::Server, Arc::clone(&self.config));
        if let Some(params) = negotiated.deflate {
            engine.enable_deflate(params, &self.deflate);
        }
        engine
    }
}

/// A 503 with `Retry-After`.
fn unavailable(reason: &str, retry_after: &'static str) -> HandshakeError {
    let mut response = handshake::rejection(StatusCode::SERVICE_UNAVAILABLE, reason);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
    HandshakeError::refused(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const UNKNOWN: ConnectionInfo = ConnectionInfo {
        remote: None,
        secure: None,
    };

    fn plain() -> ConnectionInfo {
        ConnectionInfo::new(None, Some(false))
    }

    fn request(host: &str) -> Request<()> {
        Request::get("/")
            .header("host", host)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap()
    }

    fn status(result: Result<Admission, HandshakeError>) -> u16 {
        match result {
            Ok(_) => 101,
            Err(error) => error.status().map_or(0, |status| status.as_u16()),
        }
    }

    #[test]
    fn hosts_are_matched_by_name_port_and_wildcard() {
        let server = ServerBuilder::new().allowed_hosts([
            "localhost:9001",
            "127.0.0.1:9001",
            "[::1]:9001",
            "Example.COM",
            "*.example.net",
            "not a host:",
        ]);
        let admit = |host: &str| status(server.admit(&request(host), UNKNOWN));
        assert_eq!(admit("localhost:9001"), 101);
        assert_eq!(admit("LOCALHOST:9001"), 101);
        assert_eq!(admit("localhost.:9001"), 101);
        assert_eq!(admit("127.0.0.1:9001"), 101);
        assert_eq!(admit("[::1]:9001"), 101);
        assert_eq!(admit("example.com:1234"), 101);
        assert_eq!(admit("a.example.net"), 101);
        assert_eq!(admit("a.b.example.net:8080"), 101);
        assert_eq!(admit("localhost:9002"), 421);
        assert_eq!(admit("localhost"), 421);
        assert_eq!(admit("evil.example:9001"), 421);
        assert_eq!(admit("example.net"), 421);
        assert_eq!(admit("badexample.net"), 421);
        assert_eq!(admit("[::2]:9001"), 421);
        // Malformed or missing Host: the handshake's 400.
        assert_eq!(admit("bad host"), 400);
    }

    #[test]
    fn any_host_by_default() {
        let server = ServerBuilder::new();
        assert_eq!(status(server.admit(&request("evil.example"), UNKNOWN)), 101);
    }

    #[test]
    fn the_per_address_cap_counts_ipv4_addresses_and_ipv6_prefixes() {
        let server = ServerBuilder::new().max_connections_per_address(Some(2));
        let admit = |peer: IpAddr| {
            let known = ConnectionInfo::new(Some(SocketAddr::new(peer, 1)), None);
            server.admit(&request("h"), known)
        };
        let one = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let two = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a = admit(one).unwrap();
        let _b = admit(one).unwrap();
        let refused = admit(one).unwrap_err();
        assert_eq!(refused.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let response = refused.to_response().unwrap();
        assert_eq!(response.headers()[RETRY_AFTER], "5");
        // Another address is not affected; a place freed is taken again.
        let _c = admit(two).unwrap();
        drop(a);
        let _d = admit(one).unwrap();
        assert_eq!(server.open_connections(), 3);
        // IPv6: the /64 counts, and a mapped IPv4 address is that address.
        let v6 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        let _e = admit(v6(1)).unwrap();
        let _f = admit(v6(2)).unwrap();
        assert!(admit(v6(3)).is_err());
        let other_prefix = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(admit(other_prefix).is_ok());
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert!(admit(mapped).is_err());
    }

    #[test]
    fn the_peer_address_can_come_with_the_request() {
        let server = ServerBuilder::new().max_connections_per_address(Some(1));
        let mut with_peer = request("h");
        with_peer
            .extensions_mut()
            .insert(SocketAddr::from(([198, 51, 100, 7], 4000)));
        let _first = server.admit(&with_peer, UNKNOWN).unwrap();
        assert!(server.admit(&with_peer, UNKNOWN).is_err());
        // Without an address, not counted.
        let _other = server.admit(&request("h"), UNKNOWN).unwrap();
    }

    #[test]
    fn a_refused_request_takes_no_place() {
        let server = ServerBuilder::new()
            .max_connections(1)
            .allowed_hosts(["good"]);
        assert!(server.admit(&request("bad"), UNKNOWN).is_err());
        assert_eq!(server.open_connections(), 0);
        let _held = server.admit(&request("good"), UNKNOWN).unwrap();
        assert_eq!(status(server.admit(&request("good"), UNKNOWN)), 503);
    }

    #[test]
    fn the_origin_scheme_counts_when_the_transport_is_known() {
        let server = ServerBuilder::new();
        let mut from_https = request("localhost:9001");
        from_https
            .headers_mut()
            .insert("origin", HeaderValue::from_static("https://localhost:9001"));
        assert_eq!(status(server.admit(&from_https, plain())), 403);
        assert_eq!(
            status(server.admit(&from_https, ConnectionInfo::new(None, Some(true)))),
            101
        );
        let mut from_http = request("localhost:9001");
        from_http
            .headers_mut()
            .insert("origin", HeaderValue::from_static("http://localhost:9001"));
        assert_eq!(status(server.admit(&from_http, plain())), 101);
    }
}
