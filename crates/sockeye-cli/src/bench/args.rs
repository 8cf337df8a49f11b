//! The options of `sockeye bench`, and what they make the run do.

use std::path::PathBuf;
use std::time::Duration;

use super::payload::PayloadKind;
use crate::options::{parse_duration, parse_size, parse_url};

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
    pub(super) urls: Vec<String>,
    /// Connections to open.
    #[arg(short, long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) connections: u32,
    /// Payload size of each message.
    #[arg(short, long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    pub(super) size: usize,
    /// Sends text messages.
    #[arg(long, conflicts_with = "binary")]
    pub(super) text: bool,
    /// Sends binary messages (the default).
    #[arg(long)]
    pub(super) binary: bool,
    /// Does not offer permessage-deflate. Default: offered (the payloads
    /// compress well, so a server that accepts is measured compressing;
    /// the bench compresses its messages ahead of time and inflates every
    /// echo).
    #[arg(long)]
    pub(super) no_compression: bool,
    /// Messages in flight per connection (with --fanout: how far the
    /// publisher may run ahead of the slowest receiver). `-p` means this
    /// in bench only; connect and serve have no `-p` (a subprotocol is
    /// `-P`).
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub(super) pipeline: u32,
    /// How long to send (default 10s, counted from the start, ramp-up
    /// included).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with = "messages")]
    pub(super) duration: Option<Duration>,
    /// Sends this many messages in all, then stops.
    #[arg(short = 'n', long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub(super) messages: Option<u64>,
    /// Opens this many connections per second (default: all at once).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(super) ramp_up: Option<f64>,
    /// Prints the results as JSON on stdout, or with `--json=FILE` writes
    /// them to FILE (and the summary on stdout). FILE is checked before
    /// the run starts.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub(super) json: Option<Option<PathBuf>>,
    /// Writes an HTML report (latency histogram, throughput over time).
    /// FILE is checked before the run starts.
    #[arg(long, value_name = "FILE")]
    pub(super) report: Option<PathBuf>,
    /// For wss://: trusts the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub(super) ca: Option<PathBuf>,
    /// Worker threads (1: everything on one thread).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) threads: u32,
    /// What the payloads look like: `plain` (sequence number and letters,
    /// compresses extremely well) or `json` (JSON-like market data whose
    /// numbers vary, compresses a few times).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = PayloadKind::Plain)]
    pub(super) payload: PayloadKind,
    /// The server is a raw TCP echo server, not a WebSocket one: no
    /// handshake; each message goes out as a masked client frame and must
    /// come back byte for byte (the floor on the cost of moving the same
    /// bytes).
    #[arg(long, conflicts_with_all = ["ca", "fanout"])]
    pub(super) raw_echo: bool,
    /// Opens the connections and holds them without sending anything for
    /// --duration (counted once all are open), then closes them. Prints
    /// `sockeye: N idle connection(s) open` on stderr when all are open.
    #[arg(long, conflicts_with_all = ["messages", "warmup", "fanout", "ca"])]
    pub(super) idle: bool,
    /// Opens the WebSockets as streams of HTTP/2 connections (RFC 8441),
    /// --streams per connection: by prior knowledge for ws:// (the server
    /// needs `serve --h2c`), by ALPN for wss://. Echo and --idle only.
    #[arg(long, conflicts_with_all = ["raw_echo", "fanout"])]
    pub(super) http2: bool,
    /// With --http2: WebSockets per HTTP/2 connection (at most the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS; sockeye serve's default
    /// is 100).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "http2",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) streams: u32,
    /// The server is a broadcast room (`sockeye serve --broadcast`): one
    /// more connection publishes, the --connections others receive and
    /// verify every message; --pipeline is how far the publisher may run
    /// ahead of the slowest receiver. Reports messages delivered, the
    /// publish-to-delivery latency (overall and per URL) and the time each
    /// message took to reach every receiver. Prints `sockeye: N
    /// receiver(s) connected` on stderr once every receiver is open,
    /// before the publisher connects.
    #[arg(long)]
    pub(super) fanout: bool,
    /// With --fanout: publishes N messages per second (open loop: message
    /// k is due k+1 intervals after the publisher connected), but never
    /// more than --pipeline ahead of the slowest receiver: a message the
    /// window holds back leaves as soon as it allows and is counted as
    /// held. Default: as fast as the window allows.
    #[arg(long, value_name = "N", value_parser = parse_publish_rate, requires = "fanout")]
    pub(super) rate: Option<f64>,
    /// With --fanout: plain TCP connections that speak WebSocket frames
    /// without the opening handshake (and end without a closing one), for
    /// the benchmark's raw TCP broadcast server (`sockeye-bench-peer
    /// --peer raw --broadcast`), which copies the publisher's frames,
    /// unmasked, to every other connection: the floor on the cost of the
    /// same deliveries.
    #[arg(long, requires = "fanout", conflicts_with = "ca")]
    pub(super) no_handshake: bool,
    /// With --idle, --raw-echo or --fanout: spreads the connections over
    /// the source addresses 127.0.0.1 to 127.0.0.N (each has its own
    /// ephemeral ports), for a loopback server.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub(super) local_addresses: Option<u8>,
    /// Measures a window that starts this long after the start (or once
    /// every connection is open, if later; with --fanout, after they are
    /// open) and ends with --duration: reported as `window`, announced on
    /// stderr as `sockeye: window start` and `sockeye: window end`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with = "messages")]
    pub(super) warmup: Option<Duration>,
    /// When stderr is not a terminal, a progress line is written this
    /// often (for tests and logs).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          default_value = "5s", hide = true)]
    pub(super) progress_interval: Duration,
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

    pub(super) fn of(args: &BenchArgs) -> Mode {
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
