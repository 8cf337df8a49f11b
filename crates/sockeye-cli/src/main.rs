//! The `sockeye` command: `connect` (an interactive client), `serve` (a
//! ready echo, chat and static-file server) and `bench` (a load
//! generator). This file parses the command line, sets up logging and the
//! runtime, dispatches, and turns the outcome into an exit status.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Writes a line to stderr. Unlike `eprintln!`, a closed stderr is
/// ignored rather than a panic.
macro_rules! status {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes a status line to stderr unless `-q` asked for quiet: lines that
/// say how things go, not what went wrong.
macro_rules! note {
    ($($arg:tt)*) => {{
        if !crate::quiet() {
            status!($($arg)*);
        }
    }};
}

mod bench;
mod broadcast;
mod connect;
mod failure;
mod http;
mod metrics;
mod options;
mod report;
mod serve;
mod signals;
mod stall;
mod tls;
mod verbose;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use crate::failure::{Failure, exit_code};

/// The exit statuses, shown by `--help`.
const EXIT_STATUS: &str = "\
Exit status:
  0  success: connect closed with 1000, 1001 or no code; serve shut down on
     Ctrl-C; bench finished without an error
  1  failure after the start: the connection ended abnormally or with
     another close code; bench saw errors or a wrong echoed payload
  2  bad input: unknown option, malformed URL, unknown scheme, unreadable
     certificate, key or directory, a text line that is not UTF-8
  3  cannot connect or listen: connection refused, name not resolved, TLS
     failure, proxy failure, time-out, address already in use
  4  handshake rejected: the server answered with an HTTP status other than
     101 (the status is printed), or with an invalid handshake
  130  interrupted: Ctrl-C or SIGTERM while connect is connecting, or a
     second one while connect closes or bench finishes (no more waiting)";

/// A WebSocket (RFC 6455) client, server and load generator.
#[derive(Debug, Parser)]
#[command(name = "sockeye", version, about, after_help = EXIT_STATUS,
          arg_required_else_help = true)]
struct Cli {
    /// More output on stderr. connect: -v the handshake's request and
    /// response headers (secrets masked), -vv also each message and each
    /// frame in and out (opcode, FIN/RSV bits, mask, length). serve: -v
    /// connections, -vv also each
    /// handshake and close. -vvv: everything tracing has. `RUST_LOG`
    /// overrides the log levels.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No status lines on stderr: connect's "connected to" and closing
    /// lines, serve's "listening on" and shutdown lines, bench's progress
    /// and announcements. Warnings and errors are still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to a WebSocket server: stdin lines become messages,
    /// received messages are printed one per line on stdout.
    #[command(after_help = EXIT_STATUS)]
    Connect(connect::ConnectArgs),
    /// Run a WebSocket server (echo or broadcast) that also serves a demo
    /// page or static files over HTTP on the same port.
    #[command(after_help = EXIT_STATUS)]
    Serve(serve::ServeArgs),
    /// Load-test an echo server: connections, message size, pipeline
    /// depth; reports throughput and latency percentiles.
    #[command(after_help = EXIT_STATUS)]
    Bench(bench::BenchArgs),
}

/// Set once from `-q`, before anything is printed.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` asked for no status lines.
fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: print as clap does, exit 0.
            let _ = error.print();
            std::process::exit(0);
        }
        Err(error)
            if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            // `sockeye` alone: the subcommands, on stderr, and the usage
            // status.
            let _ = error.print();
            std::process::exit(exit_code::USAGE);
        }
        Err(error) => {
            status!("sockeye: {}", options::redact(&one_line(&error)));
            std::process::exit(exit_code::USAGE);
        }
    };
    QUIET.store(cli.quiet, Ordering::Relaxed);
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Connect(mut args) => {
            args.quiet = cli.quiet;
            connect::main(args)
        }
        Command::Serve(args) => serve::main(args),
        Command::Bench(args) => bench::main(args),
    };
    let _ = std::io::stdout().flush();
    match outcome {
        Ok(()) => std::process::exit(exit_code::OK),
        Err(failure) => {
            status!("sockeye: {}", options::redact(&failure.message));
            std::process::exit(failure.code);
        }
    }
}

/// Clap's error as one line: its first paragraph joined, without the
/// `error: ` prefix, with clap's "a similar subcommand exists" tips (did
/// you mean) and where to look for help.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    let text = paragraph.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let mut text = if text.is_empty() {
        "invalid arguments".to_owned()
    } else {
        text.to_owned()
    };
    for tip in rendered
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tip: "))
        .filter(|tip| tip.starts_with("a similar") || tip.starts_with("some similar"))
    {
        text.push_str("; ");
        text.push_str(tip);
    }
    if let Some(hint) = moved_short_option(error) {
        text.push_str("; ");
        text.push_str(hint);
    }
    format!("{text} (see sockeye --help)")
}

/// What an unknown `-p` became: it was `--subprotocol` in connect and
/// serve, and is `--pipeline` in bench only.
fn moved_short_option(error: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if arg == "-p" || arg.starts_with("-p") => {
            Some("-p is bench's --pipeline; a subprotocol is -P NAME or --subprotocol NAME")
        }
        _ => None,
    }
}

/// How many `-v` were given (set once, before a command runs).
static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// How many `-v` were given: what a command prints beyond its logs.
pub fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Logs go to stderr through `tracing`: warnings by default (also with
/// `-q`), more with each `-v`, or what `RUST_LOG` says.
fn init_logging(verbose: u8) {
    VERBOSITY.store(verbose, std::sync::atomic::Ordering::Relaxed);
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // The backplanes' clients report every lost connection themselves;
    // `serve` says it once, in its own words, with what it means.
    let quiet_clients = if verbose < 2 {
        ",fred=error,async_nats=error"
    } else {
        ""
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level}{quiet_clients}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not an
/// error; other write failures are.
fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::failed(format!("cannot write to stdout: {error}"))),
    }
}

/// Runs `future` on a single-threaded runtime (or `threads` workers).
fn run_async<F>(threads: usize, future: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime =
        runtime.map_err(|error| Failure::failed(format!("cannot start the runtime: {error}")))?;
    let outcome = runtime.block_on(future);
    // The outcome is decided: do not wait for work left behind, such as a
    // name lookup abandoned by an interrupted connect (dropping the
    // runtime would wait for its blocking thread).
    runtime.shutdown_background();
    outcome
}
