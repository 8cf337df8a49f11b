//! sockeye's side of the interop suite (`conformance/interop/run`): a
//! sockeye server and a sockeye client that other implementations (Python
//! `websockets`, Node `ws`, Chromium) talk to over loopback.
//!
//! ```text
//! interop-peer server [--listen ADDR] [--compression MODE] [--tls-dir DIR]
//!                     [--web DIR] [--any-origin] [--http2]
//! interop-peer client URL --checks a,b,c [--compression MODE] [--ca FILE] [--http2]
//! interop-peer pki DIR
//! ```
//!
//! - `server` speaks the suite's path protocol (see
//!   `conformance/interop/README.md`): `/echo/TAG`, `/ping/TAG`,
//!   `/close/TAG`, `/report/TAG`, subprotocols `sockeye.v2`, `sockeye.v1`.
//!   It prints `sockeye: listening on ws://ADDR` on stderr (what
//!   `sockeye serve` prints) and what it saw as JSON lines on stdout. With
//!   `--web DIR` it also serves the files of DIR over plain HTTP on the
//!   same port (the Chromium page). With `--http2` each connection is
//!   served by `ServerBuilder::serve_tcp`: the same paths over HTTP/1.1
//!   or as HTTP/2 streams (RFC 8441; prior knowledge in cleartext, ALPN
//!   `h2` over TLS), as `python/h2_client.py` uses them.
//! - `client` runs the named checks against a server that speaks the same
//!   protocol and prints `RESULT ok CHECK` or `RESULT FAIL CHECK: why`.
//!   With `--http2`, every WebSocket is a stream of one HTTP/2 connection
//!   (RFC 8441: h2c on `ws://`, ALPN `h2` on `wss://`), and the check
//!   `http2-shared` is available.
//! - `pki` writes a test CA and a server certificate for `127.0.0.1`,
//!   `::1` and `localhost` into DIR (`ca.pem`, `server.pem`,
//!   `server-key.pem`).
//!
//! `MODE` is the compression variant: `off` (sockeye neither offers nor
//! accepts permessage-deflate), `on` (sockeye offers and accepts it) or
//! `peer-off` (sockeye offers and accepts it, the peer does not).
#![forbid(unsafe_code)]

use std::process::ExitCode;

#[path = "interop/args.rs"]
mod args;
#[path = "interop/client.rs"]
mod client;
#[path = "interop/compression.rs"]
mod compression;
#[path = "interop/payload.rs"]
mod payload;
#[path = "interop/pki.rs"]
mod pki;
#[path = "interop/server.rs"]
mod server;

const USAGE: &str = "usage:
  interop-peer server [--listen ADDR] [--compression off|on|peer-off] [--tls-dir DIR] [--web DIR] [--any-origin] [--http2]
  interop-peer client URL --checks a,b,c [--compression off|on|peer-off] [--ca FILE] [--http2]
  interop-peer pki DIR";

fn main() -> ExitCode {
    let mut arguments = std::env::args().skip(1);
    let mode = arguments.next().unwrap_or_default();
    let rest: Vec<String> = arguments.collect();
    let outcome = match mode.as_str() {
        "server" => args::ServerArgs::parse(&rest).and_then(|options| run(server::run(options))),
        "client" => args::ClientArgs::parse(&rest).and_then(|options| run(client::run(options))),
        "pki" => match rest.as_slice() {
            [dir] => pki::write(std::path::Path::new(dir)),
            _ => Err(format!("pki takes one directory\n{USAGE}")),
        },
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("interop-peer: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a two-thread tokio runtime.
fn run<F>(work: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start tokio: {error}"))?;
    runtime.block_on(work)
}
