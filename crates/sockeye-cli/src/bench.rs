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
//! The server must be what the mode expects. An echo that is another
//! connection's message means a broadcast server: the run stops at once
//! and says to use `--fanout`; in `--fanout`, a publisher that gets its
//! own messages back means an echo server: the run stops and says to drop
//! `--fanout`. Not one reply in [`STALL_LIMIT`] (a lone connection to a
//! broadcast server) ends the run with the same hint.
//!
//! Progress ([`progress`]): a bar on a terminal, a plain line every 5 s
//! otherwise, nothing with `-q`.
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

mod args;
mod checks;
pub mod fanout;
pub mod idle;
pub mod lane;
pub mod payload;
pub mod prepared;
pub mod progress;
pub mod raw;
mod window;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sockeye::proto::Config;
use sockeye::{ClientBuilder, DeflateConfig};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::failure::{Failure, exit_code};
use crate::report::{Report, Sample, Window};
use crate::signals::Interrupts;
pub use args::{BenchArgs, Mode};
use checks::{check_mode, check_writable};
use lane::{Lane, LaneEnd};
use payload::{PayloadKind, Payloads};
use progress::Progress;
use window::WindowMarks;

/// How often progress is shown and throughput sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Without a single echo for this long, the run is abandoned.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// How long connections get to receive their last echoes once sending
/// stopped, and then to close.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// The default run length when neither --duration nor --messages is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Why an echo run stops when a reply is another connection's message.
pub const BROADCAST_SERVER: &str =
    "the replies do not match what was sent: is this a broadcast server? use --fanout";

/// Why a fan-out run stops when the publisher gets its own messages back.
pub const ECHO_SERVER: &str =
    "deliveries do not arrive at the other connections: is this an echo server? drop --fanout";

/// Replies that did not match and are looked into (each may compare the
/// reply with a payload of every other connection).
const DIAGNOSES: u32 = 8;

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
    /// Set when the server is not what the mode expects: the run stops
    /// and fails with this.
    pub verdict: OnceLock<&'static str>,
    /// Replies looked into so far (see [`Shared::diagnose_reply`]).
    pub diagnosed: AtomicU32,
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

    /// The server is not what the mode expects: the run stops and fails
    /// with `why`.
    pub fn wrong_server(&self, why: &'static str) {
        let _ = self.verdict.set(why);
        self.stop_now();
    }

    /// Looks into an echo that did not match what connection `me` sent
    /// (the first few of a run only): if it is a message another
    /// connection sent, the server broadcasts, and the run stops.
    pub fn diagnose_reply(&self, plan: &Plan, payloads: &mut Payloads, me: u32, payload: &[u8]) {
        if self.verdict.get().is_some()
            || self.diagnosed.fetch_add(1, Ordering::Relaxed) >= DIAGNOSES
        {
            return;
        }
        let others = (0..plan.connections).filter(|other| *other != me);
        if others
            .into_iter()
            .any(|other| payloads.is_payload_of(other, payload))
        {
            self.wrong_server(BROADCAST_SERVER);
        }
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
    /// Connections asked for (with --fanout, the receivers).
    pub connections: u32,
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
    /// With --http2: the HTTP/2 connections, each opened by the first of
    /// its --streams lanes.
    pub sessions: Option<Sessions>,
}

/// The HTTP/2 connections of `bench --http2`: lane `id` opens its
/// WebSocket on connection `id / per_connection`.
pub struct Sessions {
    per_connection: u32,
    connections: Vec<tokio::sync::OnceCell<sockeye::http2::Http2Session>>,
}

impl Sessions {
    fn new(lanes: u32, per_connection: u32) -> Sessions {
        let count = lanes.div_ceil(per_connection).max(1);
        Sessions {
            per_connection,
            connections: (0..count).map(|_| tokio::sync::OnceCell::new()).collect(),
        }
    }

    /// Lane `id`'s HTTP/2 connection, opened if it is the first to ask.
    pub async fn session(
        &self,
        id: u32,
        client: &ClientSettings,
    ) -> Result<&sockeye::http2::Http2Session, sockeye::Error> {
        let index = (id / self.per_connection) as usize % self.connections.len();
        self.connections[index]
            .get_or_try_init(|| async {
                sockeye::http2::Http2Session::open(&client.builder()).await
            })
            .await
    }
}

impl Plan {
    /// How to open a WebSocket to the (first) server.
    pub fn client(&self) -> &ClientSettings {
        &self.endpoints[0].client
    }

    /// Opens lane `id`'s WebSocket to the (first) server: over a
    /// connection of its own, or with --http2 as a stream of a shared one.
    pub async fn connect(
        &self,
        id: u32,
    ) -> Result<
        (
            sockeye::WebSocket<sockeye::ClientStream>,
            http::Response<()>,
        ),
        sockeye::Error,
    > {
        let client = self.client();
        match &self.sessions {
            None => client.builder().connect().await,
            Some(sessions) => {
                let session = sessions.session(id, client).await?;
                session.connect(&client.builder()).await
            }
        }
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
    if let Some(path) = &args.report {
        check_writable(path, "the report")?;
    }
    if let Some(Some(path)) = &args.json {
        check_writable(path, "the results")?;
    }
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
        connections: args.connections,
        size: args.size,
        text: args.text,
        pipeline: args.pipeline as usize,
        payload: args.payload,
        local_addresses: args.local_addresses,
        raw: args.raw_echo,
        no_handshake: args.no_handshake,
        rate: args.rate,
        opening: tokio::sync::Semaphore::new(idle::OPENING_AT_ONCE),
        sessions: args
            .http2
            .then(|| Sessions::new(args.connections, args.streams)),
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
        verdict: OnceLock::new(),
        diagnosed: AtomicU32::new(0),
    });
    let mut interrupts = Interrupts::new()?;
    let duration = match args.messages {
        Some(_) => None,
        None => Some(args.duration.unwrap_or(DEFAULT_DURATION)),
    };
    let mut shown = Progress::new(duration, args.messages, args.progress_interval);
    let progress = shown.bar.clone();
    let noun = if mode == Mode::Fanout {
        "deliveries"
    } else {
        "messages"
    };

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
                    progress.suspend(|| note!("sockeye: {opened} receiver(s) connected"));
                    lanes.spawn(fanout::publish(0, plan.clone(), shared.clone()));
                } else if attempts == to_open {
                    let now = Instant::now();
                    ready_at = Some(now);
                    last_progress = now;
                    if mode == Mode::Idle {
                        let failed = shared.open_failed.load(Ordering::Relaxed);
                        let opened = shared.opened.load(Ordering::Relaxed);
                        progress.suspend(|| match failed {
                            0 => note!("sockeye: {opened} idle connection(s) open"),
                            _ => note!("sockeye: {opened} idle connection(s) open, {failed} failed"),
                        });
                    }
                }
            }
            () = sleep_until_option(next_timer) => {
                let now = Instant::now();
                if window_start.is_some_and(|at| at <= now) {
                    window.start = Some(shared.snapshot(now));
                    shared.reset_histogram();
                    progress.suspend(|| note!("sockeye: window start"));
                }
                if deadline.is_some_and(|at| at <= now) && stopped_at.is_none() {
                    shared.stop_now();
                    stopped_at = Some(now);
                    window.close(&shared, now, &progress);
                }
            }
            _ = ticker.tick() => {
                if let Some(why) = shared.verdict.get() {
                    lanes.abort_all();
                    progress.finish_and_clear();
                    return Err(Failure::failed(*why));
                }
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
                shown.tick(now, start, received, noun, lanes.len());
                let stalled = mode != Mode::Idle
                    && now.duration_since(last_progress) >= STALL_LIMIT;
                if stalled && received == 0 && matches!(mode, Mode::Echo | Mode::RawEcho) {
                    // Nothing to wait for: not one reply came.
                    lanes.abort_all();
                    progress.finish_and_clear();
                    return Err(Failure::failed(format!(
                        "no reply in {}s: is this an echo server? (a broadcast server sends \
                         nothing back to the sender; use --fanout)",
                        STALL_LIMIT.as_secs()
                    )));
                }
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
    if let Some(why) = shared.verdict.get() {
        return Err(Failure::failed(*why));
    }
    finish(&args, mode, &shared, ends, timeline, window.report())
}

/// Sleeps until `at`, or forever.
async fn sleep_until_option(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
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
        let mut fanout = board.report(&args.urls, args.rate);
        fanout.deliveries_per_sec = report.msgs_per_sec;
        report.fanout = Some(fanout);
    }
    let json_on_stdout = matches!(args.json, Some(None));
    match &args.json {
        Some(None) => crate::print_stdout(&format!("{}\n", report.to_json()))?,
        Some(Some(path)) => {
            crate::print_stdout(&report.to_text())?;
            std::fs::write(path, format!("{}\n", report.to_json())).map_err(|error| {
                Failure::usage(format!(
                    "cannot write the results to {}: {error}",
                    path.display()
                ))
            })?;
            crate::print_stdout(&format!("results written to {}\n", path.display()))?;
        }
        None => crate::print_stdout(&report.to_text())?,
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_html()).map_err(|error| {
            Failure::usage(format!(
                "cannot write the report to {}: {error}",
                path.display()
            ))
        })?;
        if !json_on_stdout {
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
            verdict: OnceLock::new(),
            diagnosed: AtomicU32::new(0),
        }
    }
}
