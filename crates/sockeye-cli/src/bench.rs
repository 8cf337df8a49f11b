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
//! histogram is filled in batches.

pub mod lane;
mod payload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sockeye::proto::Config;
use sockeye::{ClientBuilder, DeflateConfig};
use tokio::task::JoinSet;

use crate::failure::{Failure, exit_code};
use crate::options::{parse_duration, parse_size, parse_url};
use crate::report::{Report, Sample};
use crate::signals::Interrupts;
use lane::{Lane, LaneEnd};

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
    /// The echo server: ws://HOST[:PORT]/PATH or wss://...
    #[arg(default_value = "ws://127.0.0.1:9001", value_parser = parse_url)]
    url: String,
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
    /// compress well, so a server that accepts is measured compressing).
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

/// The settings every lane uses.
pub struct Plan {
    /// Where to connect.
    pub client: ClientSettings,
    /// Payload size.
    pub size: usize,
    /// Text (true) or binary messages.
    pub text: bool,
    /// Messages in flight per connection.
    pub pipeline: usize,
}

/// How to open a connection.
pub struct ClientSettings {
    url: String,
    deflate: DeflateConfig,
    config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientSettings {
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
    let tls = args
        .ca
        .as_deref()
        .map(crate::tls::client_config)
        .transpose()?;
    // Echoes as large as the payload must be accepted.
    let limit = args.size.max(Config::default().get_max_message_size());
    let plan = Arc::new(Plan {
        client: ClientSettings {
            url: args.url.clone(),
            deflate: DeflateConfig::new().enabled(!args.no_compression),
            config: Config::new()
                .max_message_size(limit)
                .max_frame_size(limit)
                .close_timeout(DRAIN_WAIT),
            tls,
        },
        size: args.size,
        text: args.text,
        pipeline: args.pipeline as usize,
    });
    let histogram = Histogram::new_with_bounds(1, 100_000_000_000, 3)
        .map_err(|error| Failure::failed(format!("histogram: {error}")))?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        budget: args
            .messages
            .map(|messages| AtomicI64::new(messages.min(i64::MAX as u64) as i64)),
        received: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        histogram: Mutex::new(histogram),
    });
    let mut interrupts = Interrupts::new()?;
    let deadline = match args.messages {
        Some(_) => None,
        None => Some(args.duration.unwrap_or(DEFAULT_DURATION)),
    };
    let progress = progress_bar(&args, deadline);

    let start = Instant::now();
    let mut lanes = JoinSet::new();
    for id in 0..args.connections {
        let delay = args
            .ramp_up
            .map(|rate| Duration::from_secs_f64(f64::from(id) / rate))
            .unwrap_or_default();
        let lane = Lane::new(id, plan.clone(), shared.clone());
        lanes.spawn(lane.run(delay));
    }

    let mut ends = Vec::with_capacity(args.connections as usize);
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let mut interrupted = false;
    while !lanes.is_empty() {
        tokio::select! {
            Some(joined) = lanes.join_next() => {
                ends.push(joined.unwrap_or_else(|_| LaneEnd::aborted()));
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
                match (deadline, args.messages) {
                    (Some(deadline), _) => progress.set_position(
                        now.duration_since(start).min(deadline).as_millis() as u64,
                    ),
                    (None, Some(_)) => progress.set_position(received),
                    _ => {}
                }
                progress.set_message(format!("{rate:.0} msgs/s, {} open", lanes.len()));
                let over = deadline.is_some_and(|deadline| now.duration_since(start) >= deadline);
                let stalled = now.duration_since(last_progress) >= STALL_LIMIT;
                if (over || stalled) && stopped_at.is_none() {
                    if stalled {
                        progress.suspend(|| status!(
                            "sockeye: no echo for {}s, stopping", STALL_LIMIT.as_secs()
                        ));
                    }
                    shared.stop.store(true, Ordering::Relaxed);
                    stopped_at = Some(now);
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
                shared.stop.store(true, Ordering::Relaxed);
                stopped_at.get_or_insert_with(Instant::now);
            }
        }
    }
    progress.finish_and_clear();
    finish(&args, &shared, ends, timeline)
}

/// Builds, prints and writes the report; the exit status.
fn finish(
    args: &BenchArgs,
    shared: &Shared,
    ends: Vec<LaneEnd>,
    timeline: Vec<Sample>,
) -> Result<(), Failure> {
    let connected = ends.iter().filter(|end| end.connected).count();
    if connected == 0 {
        let first = ends.into_iter().find_map(|end| end.connect_error);
        return Err(match first {
            Some(error) => Failure::opening(&args.url, &error),
            None => Failure::failed("no connection could be opened"),
        });
    }
    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let report = Report::new(args_summary(args), &ends, shared, &histogram, timeline);
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
fn args_summary(args: &BenchArgs) -> crate::report::Settings {
    crate::report::Settings {
        url: args.url.clone(),
        connections: args.connections,
        size: args.size,
        kind: if args.text { "text" } else { "binary" },
        pipeline: args.pipeline,
        compression_offered: !args.no_compression,
        compressed_connections: 0,
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
