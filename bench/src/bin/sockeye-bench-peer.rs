//! `sockeye-bench-peer --peer NAME [--listen ADDR] [--deflate]`: one of the
//! benchmark's echo servers built on another implementation (or a raw
//! TCP floor), on a single-threaded tokio runtime (`raw-mio`: on one mio
//! event loop, no runtime). Prints
//! `listening on ADDR` on stdout once it accepts connections.
//! `--peer raw --broadcast` is the raw TCP fan-out floor instead: it
//! copies each connection's frames, unmasked, to every other connection.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use clap::Parser;
use sockeye_bench::peers::Peer;

/// An echo server for the benchmark.
#[derive(Debug, Parser)]
#[command(name = "sockeye-bench-peer")]
struct Args {
    /// The implementation: raw, raw-mio, raw-readiness, tokio-tungstenite,
    /// fastwebsockets, yawc.
    #[arg(long, value_parser = parse_peer)]
    peer: Peer,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Accepts permessage-deflate (only peers that support it).
    #[arg(long)]
    deflate: bool,
    /// With --peer raw: broadcasts instead of echoing. Each connection's
    /// WebSocket client frames are written, unmasked, as server frames to
    /// every other connection (the floor for `sockeye serve --broadcast`).
    #[arg(long, conflicts_with = "deflate")]
    broadcast: bool,
}

fn parse_peer(name: &str) -> Result<Peer, String> {
    Peer::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Peer::ALL.iter().map(|peer| peer.name()).collect();
        format!("unknown peer {name:?} ({})", names.join(", "))
    })
}

fn main() {
    let args = Args::parse();
    let outcome = match (args.broadcast, args.peer) {
        (true, Peer::Raw) => sockeye_bench::raw_broadcast::run(&args.listen),
        (true, _) => Err(std::io::Error::other(
            "--broadcast works with --peer raw only",
        )),
        (false, peer) => sockeye_bench::peers::run(peer, &args.listen, args.deflate),
    };
    if let Err(error) = outcome {
        eprintln!("sockeye-bench-peer: {error}");
        std::process::exit(1);
    }
}
