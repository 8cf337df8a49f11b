//! `sockeye bench URL`: a load generator for echo servers.
//!
//! N connections each keep `--pipeline` messages in flight: a message is
//! sent for each echo received, until `--duration` has passed or
//! `--messages` have been sent. Every echo is checked byte for byte
//! against what was sent ([`crate::bench::payload`]), and its round trip
//! recorded in an HDR histogram.
//!
//! So that the generator is not the bottleneck, each connection is one
//! task that drives the socket through `Stream`/`Sink` polls: it receives
//! and sends in the same wake-up, so echoes and new messages leave in one
//! write (the library corks them), it never waits on a send while echoes
//! pile up, and it allocates no buffer per message (payloads are cut from
//! one reused `BytesMut`). Counters are published once per wake-up, the
//! histogram is filled in batches. When the server accepts
//! permessage-deflate, the messages are compressed ahead of time
//! ([`prepared`]) and written as frames by a [`raw::RawLane`]: compressing
//! each one as it is sent would cost the generator as much as the server.
//!
//! Other modes, for the benchmark harness (`bench/`):
//! - `--raw-echo` ([`raw`]): the server is a plain TCP echo server. No
//!   handshake; each message goes out as a masked client frame and must
//!   come back byte for byte, so a TCP echo server moves the same bytes
//!   as a WebSocket one (the floor on cost).
//! - `--idle` ([`idle`]): opens the connections, holds them without a
//!   message for `--duration`, closes them; for memory per connection.
//! - `--fanout` ([`fanout`]): the server is a broadcast room; one
//!   publisher sends, every other connection receives and verifies. Its
//!   receivers may be spread over several servers (nodes sharing their
//!   rooms through a backplane), and its publisher may publish at a fixed
//!   rate (`--rate`): publish-to-delivery latency per server URL, and the
//!   time each message takes to reach every receiver.
//! - `--warmup`: the figures of a measured window, which starts after the
//!   warm-up and ends with `--duration`; its edges are announced on
//!   stderr (`sockeye: window start`, `sockeye: window end`) so that a
//!   harness can sample the server's CPU time at the same moments.

pub mod fanout;
pub mod idle;
pub mod lane;
pub mod payload;
pub mod prepared;
pub mod raw;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sockeye::proto::Config;
use sockeye::{ClientBuilder, DeflateConfig};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::failure::{Failure, exit_code};
use crate::options::{parse_duration, parse_size, parse_url};
use crate::report::{Report, Sample, Window};
use crate::signals::Interrupts;
use lane::{Lane, LaneEnd};
use payload::PayloadKind;

/// How often progress is shown and throughput sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Without a single echo for this long, the run is abandoned.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// How long connections get to receive their last echoes once sending
/// stopped, and then to close.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// The default run length when neither --duration nor --messages is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Options of `sockeye bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The echo server: ws://HOST[:PORT]/PATH or wss://... With
    /// --fanout, several URLs (nodes that share their rooms through a
    /// backplane) spread the receivers over them round-robin (receiver 1
    /// on the first, receiver 2 on the second, ...), and the publisher
    /// publishes on the first; latency is reported per URL.
    #[arg(value_name = "URL", default_value = "ws://127.0.0.1:9001", value_parser = parse_url,
          num_args = 1..)]
    urls: Vec<String>,
    /// Connections to open.
    #[arg(short, long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,
    /// Payload size of each message.
    #[arg(short, long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Sends text messages.
    #[arg(long, conflicts_with = "binary")]
    text: bool,
    /// Sends binary messages (the default).
    #[arg(long)]
    binary: bool,
    /// Does not offer permessage-deflate. Default: offered (the payloads
    /// compress well, so a server that accepts is measured compressing;
    /// the bench compresses its messages ahead of time and inflates every
    /// echo).
    #[arg(long)]
    no_compression: bool,
    /// Messages in flight per connection.
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pipeline: u32,
    /// How long to send (default 10s, counted from the start, ramp-up
    /// included).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with = "messages")]
    duration: Option<Duration>,
    /// Sends this many messages in all, then stops.
    #[arg(short = 'n', long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    messages: Option<u64>,
    /// Opens this many connections per second (default: all at once).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    ramp_up: Option<f64>,
    /// Prints the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Writes an HTML report (latency histogram, throughput over time).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// For wss://: trusts the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Worker threads (1: everything on one thread).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// What the payloads look like: `plain` (sequence number and letters,
    /// compresses extremely well) or `json` (JSON-like market data whose
    /// numbers vary, compresses a few times).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = PayloadKind::Plain)]
    payload: PayloadKind,
    /// The server is a raw TCP echo server, not a WebSocket one: no
    /// handshake; each message goes out as a masked client frame and must
    /// come back byte for byte (the floor on the cost of moving the same
    /// bytes).
    #[arg(long, conflicts_with_all = ["ca", "fanout"])]
    raw_echo: bool,
    /// Opens the connections and holds them without sending anything for
    /// --duration (counted once all are open), then closes them. Prints
    /// `sockeye: N idle connection(s) open` on stderr when all are open.
    #[arg(long, conflicts_with_all = ["messages", "warmup", "fanout", "ca"])]
    idle: bool,
    /// The server is a broadcast room (`sockeye serve --broadcast`): one
    /// more connection publishes, the --connections others receive and
    /// verify every message; --pipeline is how far the publisher may run
    /// ahead of the slowest receiver. Reports messages delivered, the
    /// publish-to-delivery latency (overall and per URL) and the time each
    /// message took to reach every receiver. Prints `sockeye: N
    /// receiver(s) connected` on stderr once every receiver is open,
    /// before the publisher connects.
    #[arg(long)]
    fanout: bool,
    /// With --fanout: publishes N messages per second (open loop: message
    /// k is due k+1 intervals after the publisher connected), but never
    /// more than --pipeline ahead of the slowest receiver: a message the
    /// window holds back leaves as soon as it allows and is counted as
    /// held. Default: as fast as the window allows.
    #[arg(long, value_name = "N", value_parser = parse_publish_rate, requires = "fanout")]
    rate: Option<f64>,
    /// With --fanout: plain TCP connections that speak WebSocket frames
    /// without the opening handshake (and end without a closing one), for
    /// the benchmark's raw TCP broadcast server (`sockeye-bench-peer
    /// --peer raw --broadcast`), which copies the publisher's frames,
    /// unmasked, to every other connection: the floor on the cost of the
    /// same deliveries.
    #[arg(long, requires = "fanout", conflicts_with = "ca")]
    no_handshake: bool,
    /// With --idle, --raw-echo or --fanout: spreads the connections over
    /// the source addresses 127.0.0.1 to 127.0.0.N (each has its own
    /// ephemeral ports), for a loopback server.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    local_addresses: Option<u8>,
    /// Measures a window that starts this long after the start (or once
    /// every connection is open, if later; with --fanout, after they are
    /// open) and ends with --duration: reported as `window`, announced on
    /// stderr as `sockeye: window start` and `sockeye: window end`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with = "messages")]
    warmup: Option<Duration>,
}

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WebSocket echoes.
    Echo,
    /// Frames echoed verbatim by a TCP echo server.
    RawEcho,
    /// Connections held open without traffic.
    Idle,
    /// One publisher, many receivers, through a broadcast server.
    Fanout,
}

impl Mode {
    /// The mode's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::RawEcho => "raw-echo",
            Mode::Idle => "idle",
            Mode::Fanout => "fanout",
        }
    }

    fn of(args: &BenchArgs) -> Mode {
        if args.fanout {
            Mode::Fanout
        } else if args.idle {
            Mode::Idle
        } else if args.raw_echo {
            Mode::RawEcho
        } else {
            Mode::Echo
        }
    }
}

fn parse_publish_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite() && *rate > 0.0 && *rate <= 10_000_000.0)
        .ok_or_else(|| format!("{text:?} is not a positive rate (publishes per second)"))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite() && *rate > 0.0)
        .ok_or_else(|| format!("{text:?} is not a positive rate (connections per second)"))
}

/// Runs `sockeye bench`.
pub fn main(args: BenchArgs) -> Result<(), Failure> {
    crate::run_async(args.threads as usize, run(args))
}

/// What every lane shares with the coordinator.
pub struct Shared {
    /// Set when sending must stop (duration over, Ctrl-C, stall).
    pub stop: AtomicBool,
    /// Told (all waiters) when `stop` is set.
    pub stopped: Notify,
    /// Connections opened.
    pub opened: AtomicU32,
    /// Connections that could not be opened.
    pub open_failed: AtomicU32,
    /// Told each time a connection attempt ends.
    pub opening: Notify,
    /// The fan-out board, in `--fanout` mode.
    pub fanout: Option<fanout::Board>,
    /// Messages still to send in `--messages` mode.
    pub budget: Option<AtomicI64>,
    /// Echoes received and verified (or not).
    pub received: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Echoes that did not match what was sent.
    pub mismatches: AtomicU64,
    /// Round trips in nanoseconds.
    pub histogram: Mutex<Histogram<u64>>,
}

impl Shared {
    /// Records the end of a connection attempt.
    pub fn opened_one(&self, opened: bool) {
        if opened {
            self.opened.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.opening.notify_one();
    }

    /// Connection attempts that ended, either way.
    fn attempts(&self) -> u32 {
        self.opened.load(Ordering::Relaxed) + self.open_failed.load(Ordering::Relaxed)
    }

    /// Stops sending and wakes every lane that waits for it.
    fn stop_now(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stopped.notify_waiters();
    }

    /// Takes one message from the budget; false when sending must stop.
    pub fn may_send(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match &self.budget {
            None => true,
            Some(budget) => budget.fetch_sub(1, Ordering::Relaxed) > 0,
        }
    }
}

/// One server to connect to.
pub struct Endpoint {
    /// Its URL and how to open a WebSocket to it.
    pub client: ClientSettings,
    /// Its address, for the modes that open TCP themselves (raw echo,
    /// idle, fan-out from spread source addresses or without handshake).
    pub address: SocketAddr,
}

/// The settings every lane uses.
pub struct Plan {
    /// Where to connect: one server, or with --fanout several (the
    /// publisher's first).
    pub endpoints: Vec<Endpoint>,
    /// Payload size.
    pub size: usize,
    /// Text (true) or binary messages.
    pub text: bool,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// What payloads look like.
    pub payload: PayloadKind,
    /// Source addresses to spread connections over (127.0.0.1..=N).
    pub local_addresses: Option<u8>,
    /// Raw TCP echo (no WebSocket handshake).
    pub raw: bool,
    /// Fan-out without the opening and closing handshakes.
    pub no_handshake: bool,
    /// Fan-out publishes per second.
    pub rate: Option<f64>,
    /// Bounds the idle connections being opened at once.
    pub opening: tokio::sync::Semaphore,
}

impl Plan {
    /// How to open a WebSocket to the (first) server.
    pub fn client(&self) -> &ClientSettings {
        &self.endpoints[0].client
    }

    /// A TCP connection to the (first) server for connection `id`.
    pub async fn open_tcp(&self, id: u32) -> std::io::Result<TcpStream> {
        self.open_tcp_to(self.endpoints[0].address, id).await
    }

    /// A TCP connection to `address` for connection `id`, from its source
    /// address when they are spread, without Nagle's delay.
    pub async fn open_tcp_to(&self, address: SocketAddr, id: u32) -> std::io::Result<TcpStream> {
        let socket = match address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(count) = self.local_addresses.filter(|count| *count > 1) {
            let host = 1 + (id % u32::from(count)) as u8;
            socket.bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, host).into(), 0))?;
        }
        let tcp = tokio::time::timeout(Duration::from_secs(10), socket.connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}

/// How to open a connection.
pub struct ClientSettings {
    url: String,
    deflate: DeflateConfig,
    config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientSettings {
    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The permessage-deflate policy.
    pub fn deflate(&self) -> DeflateConfig {
        self.deflate
    }

    /// The engine configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same settings for another server.
    fn with_url(&self, url: &str) -> ClientSettings {
        ClientSettings {
            url: url.to_owned(),
            deflate: self.deflate,
            config: self.config.clone(),
            tls: self.tls.clone(),
        }
    }

    /// A builder for one connection.
    pub fn builder(&self) -> ClientBuilder {
        let mut builder = ClientBuilder::new(&self.url)
            .deflate(self.deflate)
            .config(self.config.clone())
            .open_timeout(Duration::from_secs(10))
            .no_proxy();
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.clone());
        }
        builder
    }
}

async fn run(args: BenchArgs) -> Result<(), Failure> {
    let mode = Mode::of(&args);
    let addresses = check_mode(&args, mode).await?;
    let tls = args
        .ca
        .as_deref()
        .map(crate::tls::client_config)
        .transpose()?;
    // Echoes as large as the payload must be accepted.
    let limit = args.size.max(Config::default().get_max_message_size());
    let client = ClientSettings {
        url: args.urls[0].clone(),
        deflate: DeflateConfig::new().enabled(!args.no_compression && !args.no_handshake),
        config: Config::new()
            .max_message_size(limit)
            .max_frame_size(limit)
            .close_timeout(DRAIN_WAIT),
        tls,
    };
    let endpoints = args
        .urls
        .iter()
        .zip(addresses)
        .map(|(url, address)| Endpoint {
            client: client.with_url(url),
            address,
        })
        .collect();
    let plan = Arc::new(Plan {
        endpoints,
        size: args.size,
        text: args.text,
        pipeline: args.pipeline as usize,
        payload: args.payload,
        local_addresses: args.local_addresses,
        raw: args.raw_echo,
        no_handshake: args.no_handshake,
        rate: args.rate,
        opening: tokio::sync::Semaphore::new(idle::OPENING_AT_ONCE),
    });
    let histogram = Histogram::new_with_bounds(1, 100_000_000_000, 3)
        .map_err(|error| Failure::failed(format!("histogram: {error}")))?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        stopped: Notify::new(),
        opened: AtomicU32::new(0),
        open_failed: AtomicU32::new(0),
        opening: Notify::new(),
        fanout: (mode == Mode::Fanout)
            .then(|| fanout::Board::new(args.pipeline as usize, args.urls.len())),
        budget: args
            .messages
            .map(|messages| AtomicI64::new(messages.min(i64::MAX as u64) as i64)),
        received: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        histogram: Mutex::new(histogram),
    });
    let mut interrupts = Interrupts::new()?;
    let duration = match args.messages {
        Some(_) => None,
        None => Some(args.duration.unwrap_or(DEFAULT_DURATION)),
    };
    let progress = progress_bar(&args, duration);

    let start = Instant::now();
    let mut lanes = JoinSet::new();
    for id in 0..args.connections {
        let delay = args
            .ramp_up
            .map(|rate| Duration::from_secs_f64(f64::from(id) / rate))
            .unwrap_or_default();
        let (plan, shared) = (plan.clone(), shared.clone());
        match mode {
            Mode::Echo => lanes.spawn(Lane::new(id, plan, shared).run(delay)),
            Mode::RawEcho => lanes.spawn(raw::RawLane::new(id, plan, shared).run(delay)),
            Mode::Idle => lanes.spawn(idle::run(id, plan, shared, delay)),
            // Receivers are 1..=N, the publisher 0.
            Mode::Fanout => lanes.spawn(fanout::receive(id + 1, plan, shared, delay)),
        };
    }
    // With --fanout, the publisher is one more connection, opened last.
    let to_open = args.connections + u32::from(mode == Mode::Fanout);
    // Idle and fan-out runs count their time from when every connection is
    // open; the others from the start.
    let from_ready = matches!(mode, Mode::Idle | Mode::Fanout);
    let mut ready_at: Option<Instant> = None;
    let mut publisher_spawned = false;
    let mut window = WindowMarks::default();

    let mut ends = Vec::with_capacity(to_open as usize);
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let mut interrupted = false;
    while !lanes.is_empty() {
        let base = if from_ready { ready_at } else { Some(start) };
        let deadline = base.zip(duration).map(|(base, duration)| base + duration);
        let window_start = match (args.warmup, base, ready_at) {
            (Some(warmup), Some(base), Some(ready)) if window.start.is_none() => {
                Some((base + warmup).max(ready))
            }
            _ => None,
        };
        let next_timer = [window_start, deadline.filter(|_| stopped_at.is_none())]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            Some(joined) = lanes.join_next() => {
                ends.push(joined.unwrap_or_else(|_| LaneEnd::aborted()));
            }
            () = shared.opening.notified(), if ready_at.is_none() => {
                let attempts = shared.attempts();
                if mode == Mode::Fanout && !publisher_spawned && attempts == args.connections {
                    publisher_spawned = true;
                    let opened = shared.opened.load(Ordering::Relaxed);
                    progress.suspend(|| status!("sockeye: {opened} receiver(s) connected"));
                    lanes.spawn(fanout::publish(0, plan.clone(), shared.clone()));
                } else if attempts == to_open {
                    let now = Instant::now();
                    ready_at = Some(now);
                    last_progress = now;
                    if mode == Mode::Idle {
                        let failed = shared.open_failed.load(Ordering::Relaxed);
                        let opened = shared.opened.load(Ordering::Relaxed);
                        progress.suspend(|| match failed {
                            0 => status!("sockeye: {opened} idle connection(s) open"),
                            _ => status!("sockeye: {opened} idle connection(s) open, {failed} failed"),
                        });
                    }
                }
            }
            () = sleep_until_option(next_timer) => {
                let now = Instant::now();
                if window_start.is_some_and(|at| at <= now) {
                    window.start = Some(shared.snapshot(now));
                    shared.reset_histogram();
                    progress.suspend(|| status!("sockeye: window start"));
                }
                if deadline.is_some_and(|at| at <= now) && stopped_at.is_none() {
                    shared.stop_now();
                    stopped_at = Some(now);
                    window.close(&shared, now, &progress);
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let received = shared.received.load(Ordering::Relaxed);
                let bytes = shared.bytes.load(Ordering::Relaxed);
                let seconds = now.duration_since(last.0).as_secs_f64().max(1e-9);
                let rate = (received - last.1) as f64 / seconds;
                timeline.push(Sample {
                    t: now.duration_since(start).as_secs_f64(),
                    msgs_per_sec: rate,
                    mb_per_sec: (bytes - last.2) as f64 / seconds / 1e6,
                });
                if received != last.1 {
                    last_progress = now;
                }
                last = (now, received, bytes);
                match (duration, args.messages) {
                    (Some(duration), _) => progress.set_position(
                        now.duration_since(start).min(duration).as_millis() as u64,
                    ),
                    (None, Some(_)) => progress.set_position(received),
                    _ => {}
                }
                progress.set_message(format!("{rate:.0} msgs/s, {} open", lanes.len()));
                let stalled = mode != Mode::Idle
                    && now.duration_since(last_progress) >= STALL_LIMIT;
                if stalled && stopped_at.is_none() {
                    progress.suspend(|| status!(
                        "sockeye: no echo for {}s, stopping", STALL_LIMIT.as_secs()
                    ));
                    shared.stop_now();
                    stopped_at = Some(now);
                    window.close(&shared, now, &progress);
                }
                if stopped_at.is_some_and(|at| now.duration_since(at) >= DRAIN_WAIT * 2) {
                    // Lanes that neither drained nor closed in time.
                    lanes.abort_all();
                }
            }
            () = interrupts.recv() => {
                if interrupted {
                    return Err(Failure { message: "interrupted".into(), code: exit_code::INTERRUPTED });
                }
                interrupted = true;
                progress.suspend(|| status!("sockeye: interrupted, finishing (Ctrl-C again to quit at once)"));
                shared.stop_now();
                let now = Instant::now();
                stopped_at.get_or_insert(now);
                window.close(&shared, now, &progress);
            }
        }
    }
    progress.finish_and_clear();
    finish(&args, mode, &shared, ends, timeline, window.report())
}

/// Checks the options that depend on each other; the servers'
/// addresses (used by the modes that open TCP themselves), one per URL.
async fn check_mode(args: &BenchArgs, mode: Mode) -> Result<Vec<SocketAddr>, Failure> {
    if args.urls.len() > 1 && mode != Mode::Fanout {
        return Err(Failure::usage(
            "several URLs work with --fanout only (its receivers are spread over them)",
        ));
    }
    let opens_tcp = matches!(mode, Mode::RawEcho | Mode::Idle)
        || (mode == Mode::Fanout && (args.no_handshake || args.local_addresses.is_some()));
    if mode == Mode::Fanout && args.size == 0 {
        return Err(Failure::usage(
            "--fanout needs --size of at least 1 (an empty message ends the run)",
        ));
    }
    if args.local_addresses.is_some() && !matches!(mode, Mode::RawEcho | Mode::Idle | Mode::Fanout)
    {
        return Err(Failure::usage(
            "--local-addresses works with --idle, --raw-echo and --fanout only",
        ));
    }
    let mut addresses = Vec::with_capacity(args.urls.len());
    for url in &args.urls {
        addresses.push(resolve_url(url, mode, opens_tcp, args.local_addresses).await?);
    }
    Ok(addresses)
}

/// The address of the server at `url`; a placeholder when the mode does
/// not need it and it does not resolve (the client will say why).
async fn resolve_url(
    url: &str,
    mode: Mode,
    opens_tcp: bool,
    local_addresses: Option<u8>,
) -> Result<SocketAddr, Failure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Failure::usage(format!("malformed URL {url:?}")))?;
    let secure = uri
        .scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss"));
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    if opens_tcp && secure {
        return Err(Failure::usage(format!(
            "--{} with --local-addresses or --no-handshake needs ws:// URLs (no TLS)",
            mode.name()
        )));
    }
    let address = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addresses) => addresses.next(),
        Err(_) if !opens_tcp => None,
        Err(error) => {
            return Err(Failure::unreachable(format!(
                "cannot resolve {host}: {error}"
            )));
        }
    };
    let address = match address {
        Some(address) => address,
        None if !opens_tcp => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        None => return Err(Failure::unreachable(format!("{host} has no address"))),
    };
    let spread = local_addresses.is_some_and(|count| count > 1);
    if spread && !(address.is_ipv4() && address.ip().is_loopback()) {
        return Err(Failure::usage(
            "--local-addresses needs IPv4 loopback servers (127.x.x.x)",
        ));
    }
    Ok(address)
}

/// Sleeps until `at`, or forever.
async fn sleep_until_option(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    received: u64,
    bytes: u64,
}

impl Shared {
    fn snapshot(&self, at: Instant) -> Snapshot {
        Snapshot {
            at,
            received: self.received.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Forgets the round trips so far (the warm-up's).
    fn reset_histogram(&self) {
        self.histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .reset();
        if let Some(board) = &self.fanout {
            board.reset_histograms();
        }
    }
}

/// The edges of the measured window, once reached.
#[derive(Debug, Default)]
struct WindowMarks {
    start: Option<Snapshot>,
    end: Option<Snapshot>,
}

impl WindowMarks {
    /// Ends the window (once) if it started.
    fn close(&mut self, shared: &Shared, now: Instant, progress: &ProgressBar) {
        if self.start.is_some() && self.end.is_none() {
            self.end = Some(shared.snapshot(now));
            progress.suspend(|| status!("sockeye: window end"));
        }
    }

    /// The window's figures, if it was measured.
    fn report(&self) -> Option<Window> {
        let (start, end) = (self.start?, self.end?);
        let seconds = end.at.saturating_duration_since(start.at).as_secs_f64();
        let messages = end.received - start.received;
        let bytes = end.bytes - start.bytes;
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        Some(Window {
            seconds,
            messages,
            bytes,
            msgs_per_sec: per_second(messages),
            mb_per_sec: per_second(bytes) / 1e6,
        })
    }
}

/// Builds, prints and writes the report; the exit status.
fn finish(
    args: &BenchArgs,
    mode: Mode,
    shared: &Shared,
    ends: Vec<LaneEnd>,
    timeline: Vec<Sample>,
    window: Option<Window>,
) -> Result<(), Failure> {
    let connected = ends.iter().filter(|end| end.connected).count();
    if connected == 0 {
        let first = ends.into_iter().find_map(|end| end.connect_error);
        return Err(match first {
            Some(error) => Failure::opening(&args.urls[0], &error),
            None => Failure::failed("no connection could be opened"),
        });
    }
    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut report = Report::new(
        args_summary(args, mode),
        &ends,
        shared,
        &histogram,
        timeline,
    );
    report.window = window;
    if let Some(board) = &shared.fanout {
        report.fanout = Some(board.report(&args.urls, args.rate));
    }
    if args.json {
        crate::print_stdout(&format!("{}\n", report.to_json()))?;
    } else {
        crate::print_stdout(&report.to_text())?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_html()).map_err(|error| {
            Failure::usage(format!(
                "cannot write the report to {}: {error}",
                path.display()
            ))
        })?;
        if !args.json {
            crate::print_stdout(&format!("report written to {}\n", path.display()))?;
        }
    }
    match report.errors.total {
        0 => Ok(()),
        errors => Err(Failure::failed(format!("the run had {errors} error(s)"))),
    }
}

/// The run's settings, as the report shows them.
fn args_summary(args: &BenchArgs, mode: Mode) -> crate::report::Settings {
    crate::report::Settings {
        mode: mode.name(),
        url: args.urls[0].clone(),
        urls: args.urls.clone(),
        connections: args.connections,
        size: args.size,
        kind: if args.text { "text" } else { "binary" },
        pipeline: args.pipeline,
        compression_offered: !args.no_compression && !args.no_handshake,
        compressed_connections: 0,
        rate: args.rate,
        duration_s: args
            .messages
            .is_none()
            .then(|| args.duration.unwrap_or(DEFAULT_DURATION).as_secs_f64()),
        messages: args.messages,
        ramp_up: args.ramp_up,
    }
}

/// A progress bar on stderr, or a hidden one when stderr is not a
/// terminal (or output is JSON for a machine).
fn progress_bar(args: &BenchArgs, deadline: Option<Duration>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let length = match (deadline, args.messages) {
        (Some(deadline), _) => deadline.as_millis() as u64,
        (None, Some(messages)) => messages,
        (None, None) => 0,
    };
    let bar = ProgressBar::new(length);
    let template = "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Counters for a lane under test.
    pub fn shared() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            stopped: Notify::new(),
            opened: AtomicU32::new(0),
            open_failed: AtomicU32::new(0),
            opening: Notify::new(),
            fanout: None,
            budget: None,
            received: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            histogram: Mutex::new(Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap()),
        }
    }
}
