//! `sockeye connect URL`: an interactive client.
//!
//! Each line read from stdin is sent as one message (text, or binary with
//! `--binary`); each message received is written to stdout followed by a
//! newline, and nothing else is, so stdout can be piped as JSON Lines.
//! Status and errors go to stderr. End of input, Ctrl-C or `--count`
//! messages received start the closing handshake (RFC 6455 section 7) with
//! 1000, and the command waits for the server's Close frame, at most
//! [`CLOSE_WAIT`].
//!
//! Ctrl-C and SIGTERM are heard in every state: while connecting (TCP,
//! proxy, TLS, the HTTP handshake) the command stops at once with the
//! interrupted status; once open, the first one closes with 1000 and a
//! second one stops at once.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use sockeye::proto::Config;
use sockeye::proto::Initiator;
use sockeye::proxy::Proxy;
use sockeye::{ClientBuilder, CloseCode, Closed, DeflateConfig, Event, HttpVersion, Message};
use tokio::sync::{mpsc, oneshot};

use crate::failure::Failure;
use crate::options::{parse_duration, parse_header, parse_size, parse_url, redact};
use crate::signals::Interrupts;

/// The longest wait for the server's Close frame once we sent ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Options of `sockeye connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The server: ws://HOST[:PORT]/PATH or wss://...
    #[arg(value_parser = parse_url)]
    url: String,
    /// Offers a subprotocol (repeat for several, most preferred first).
    #[arg(short = 'P', long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Adds a request header (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Sends an Origin header, as a browser on that origin would.
    #[arg(long, value_name = "ORIGIN")]
    origin: Option<String>,
    /// Sends each line as a binary message (default: text, which must be
    /// UTF-8). Received binary messages are written as they are.
    #[arg(long)]
    binary: bool,
    /// Does not offer permessage-deflate (RFC 7692). Default: offered, and
    /// used when the server accepts.
    #[arg(long)]
    no_compression: bool,
    /// Sends a Ping this often and fails if no Pong comes back.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ping_interval: Option<Duration>,
    /// For wss://: trusts the CA certificates in this PEM file (instead of
    /// the Mozilla roots), e.g. for a private CA.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Connects through this proxy: http://HOST:PORT (CONNECT) or
    /// socks5://HOST:PORT. Default: the environment's (https_proxy, ...).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Connects directly, ignoring proxy environment variables.
    #[arg(long)]
    no_proxy: bool,
    /// Requires WebSocket over HTTP/2 (RFC 8441): by ALPN h2 on wss://, by
    /// prior knowledge (h2c) on ws://; fails if the server does not offer
    /// it. Default: HTTP/2 on wss:// when the server offers it, otherwise
    /// HTTP/1.1.
    #[arg(long, conflicts_with = "http1")]
    http2: bool,
    /// Uses HTTP/1.1 only, never HTTP/2.
    #[arg(long)]
    http1: bool,
    /// Exits after the first message received (same as --count 1).
    #[arg(long, conflicts_with = "count")]
    once: bool,
    /// Exits after N messages received.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// The largest message accepted from the server.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// How long connecting (TCP, proxy, TLS, HTTP) may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// No status lines on stderr (errors are still printed): the global
    /// `-q`, set by `main`.
    #[arg(skip)]
    pub(crate) quiet: bool,
}

/// Runs `sockeye connect`.
pub fn main(args: ConnectArgs) -> Result<(), Failure> {
    crate::run_async(1, run(args))
}

/// What the sending side is told by the receiving side.
type CloseRequest = oneshot::Sender<()>;

async fn run(args: ConnectArgs) -> Result<(), Failure> {
    let mut interrupts = Interrupts::new()?;
    let builder = builder(&args)?;
    // Nothing else waits while the connection opens, which may take the
    // whole --connect-timeout against a server that does not answer: the
    // interruption must win this race too.
    let opened = tokio::select! {
        opened = builder.connect() => opened,
        () = interrupts.recv() => {
            return Err(Failure::interrupted(format!(
                "interrupted while connecting to {}",
                redact(&args.url)
            )));
        }
    };
    let (ws, response) = opened
        .map_err(|error| Failure::opening_within(&args.url, &error, Some(args.connect_timeout)))?;
    let verbosity = crate::verbosity();
    if verbosity >= 1 {
        crate::verbose::handshake(&response, ws.connection().deflate_params().is_some());
    }
    let subprotocol = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok());
    if !args.quiet {
        let chosen = subprotocol
            .map(|name| format!(" (subprotocol {name})"))
            .unwrap_or_default();
        let compressed = match ws.connection().deflate_params() {
            Some(_) => " (compressed)",
            None => "",
        };
        let version = match response.version() {
            http::Version::HTTP_2 => "HTTP/2",
            _ => "HTTP/1.1",
        };
        status!(
            "sockeye: connected to {} over {version}{chosen}{compressed}",
            redact(&args.url)
        );
        if subprotocol.is_none() && !args.subprotocols.is_empty() {
            status!(
                "sockeye: warning: the server accepted none of the subprotocols offered ({})",
                args.subprotocols.join(", ")
            );
        }
    }
    let frames = verbosity >= 2;
    let style = Style::for_stdout();
    let mut ws = ws;
    ws.trace_frames(frames);
    let (mut receiver, sender) = ws.split();
    let mut traced = Vec::new();

    let lines = read_stdin_lines();
    let (close_request, close_requested) = oneshot::channel();
    let input_failure = Arc::new(Mutex::new(None));
    let sending = tokio::spawn(send_lines(
        sender,
        lines,
        close_requested,
        args.binary,
        input_failure.clone(),
        frames,
    ));
    let mut close_request = Some(close_request);

    let limit = if args.once { Some(1) } else { args.count };
    let mut received: u64 = 0;
    let mut closing_since: Option<tokio::time::Instant> = None;
    let mut stdout = std::io::stdout().lock();

    let closed = loop {
        let close_deadline = closing_since.map(|since| since + CLOSE_WAIT);
        tokio::select! {
            event = receiver.recv_event() => {
            if frames {
                let dropped = receiver.drain_frame_trace(&mut traced);
                crate::verbose::frames(&mut traced, dropped);
            }
            match event {
                Some(Ok(Event::Message(message))) => {
                    if limit.is_some_and(|limit| received >= limit) {
                        continue; // Arrived after the last one wanted.
                    }
                    received += 1;
                    if frames {
                        crate::verbose::message('<', &message);
                    }
                    if let Err(error) = print(&mut stdout, &message, style) {
                        if error.kind() != std::io::ErrorKind::BrokenPipe {
                            sending.abort();
                            return Err(Failure::failed(format!("cannot write to stdout: {error}")));
                        }
                        // The reader of stdout is gone: done, as with --count.
                        request_close(&mut close_request, &mut closing_since);
                    }
                    if limit.is_some_and(|limit| received >= limit) {
                        request_close(&mut close_request, &mut closing_since);
                    }
                }
                Some(Ok(Event::Pong(payload))) => {
                    if frames {
                        crate::verbose::control('<', "pong", payload.len(), "");
                    }
                }
                Some(Ok(Event::Ping(payload))) => {
                    if frames {
                        crate::verbose::control('<', "ping", payload.len(), "");
                        crate::verbose::control('>', "pong", payload.len(), " (automatic)");
                    }
                }
                Some(Ok(Event::Closed(closed))) => {
                    if frames {
                        crate::verbose::closed(&closed);
                    }
                    break Some(closed);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    sending.abort();
                    return Err(Failure::failed(format!("connection failed: {error}")));
                }
                None => break None,
            }
            },
            () = interrupts.recv() => {
                if closing_since.is_some() {
                    sending.abort();
                    return Err(Failure::interrupted("interrupted"));
                }
                status(&args, "interrupted, closing (Ctrl-C again to quit at once)");
                request_close(&mut close_request, &mut closing_since);
            }
            () = sleep_until(close_deadline), if close_deadline.is_some() => {
                sending.abort();
                return Err(Failure::failed(format!(
                    "the server did not finish the closing handshake within {}s",
                    CLOSE_WAIT.as_secs()
                )));
            }
        }
    };
    sending.abort();
    let failure = input_failure.lock().map(|mut slot| slot.take());
    if let Ok(Some(failure)) = failure {
        return Err(failure);
    }
    let Some(closed) = closed else {
        return Err(Failure::failed(
            "connection ended without a closing handshake",
        ));
    };
    outcome(&args, &closed)
}

/// The exit status for how the connection ended: 0 for a clean closing
/// handshake with 1000, 1001 or no code, 1 otherwise.
fn outcome(args: &ConnectArgs, closed: &Closed) -> Result<(), Failure> {
    let who = match closed.initiated_by {
        Initiator::Local => "closed",
        _ => "closed by the server",
    };
    let reason = match closed.reason() {
        "" => String::new(),
        reason => format!(" ({reason})"),
    };
    let description = format!("{who}: {}{reason}", closed.code());
    if let Some(error) = &closed.error {
        return Err(Failure::failed(format!("connection failed: {error}")));
    }
    let normal = [
        CloseCode::NORMAL,
        CloseCode::GOING_AWAY,
        CloseCode::NO_STATUS,
    ];
    if normal.contains(&closed.code()) {
        status(args, &description);
        Ok(())
    } else {
        Err(Failure::failed(description))
    }
}

fn status(args: &ConnectArgs, line: &str) {
    if !args.quiet {
        status!("sockeye: {line}");
    }
}

fn request_close(
    request: &mut Option<CloseRequest>,
    closing_since: &mut Option<tokio::time::Instant>,
) {
    if let Some(request) = request.take() {
        let _ = request.send(());
    }
    closing_since.get_or_insert_with(tokio::time::Instant::now);
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// How received messages look on stdout: bare payload lines when stdout
/// is not a terminal (a pipe, a file: what scripts read); in a terminal,
/// prefixed with `< ` (green unless `NO_COLOR` is set) so that they stand
/// apart from the lines typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Bare,
    Prefixed,
    Coloured,
}

impl Style {
    fn for_stdout() -> Style {
        if !std::io::stdout().is_terminal() {
            Style::Bare
        } else if std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()) {
            Style::Prefixed
        } else {
            Style::Coloured
        }
    }
}

/// Writes a message and a newline, and flushes: whoever reads stdout sees
/// each message as it arrives.
fn print(stdout: &mut impl Write, message: &Message, style: Style) -> std::io::Result<()> {
    match style {
        Style::Bare => stdout.write_all(message.as_bytes())?,
        Style::Prefixed => {
            stdout.write_all(b"< ")?;
            stdout.write_all(message.as_bytes())?;
        }
        Style::Coloured => {
            stdout.write_all(b"\x1b[32m< ")?;
            stdout.write_all(message.as_bytes())?;
            stdout.write_all(b"\x1b[0m")?;
        }
    }
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// The client, from the options. Bad options (CA file, proxy URL) are
/// usage errors.
fn builder(args: &ConnectArgs) -> Result<ClientBuilder, Failure> {
    let mut config = Config::new()
        .max_message_size(args.max_message_size)
        .max_frame_size(args.max_message_size)
        .close_timeout(CLOSE_WAIT);
    if let Some(interval) = args.ping_interval {
        config = config.keepalive_interval(Some(interval));
    }
    let version = match (args.http1, args.http2) {
        (true, _) => HttpVersion::Http1,
        (_, true) => HttpVersion::Http2,
        _ => HttpVersion::Auto,
    };
    let mut builder = ClientBuilder::new(&args.url)
        .http_version(version)
        .deflate(DeflateConfig::new().enabled(!args.no_compression))
        .config(config)
        .open_timeout(args.connect_timeout);
    if !args.subprotocols.is_empty() {
        builder = builder.subprotocols(args.subprotocols.iter().cloned());
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin.clone());
    }
    for (name, value) in &args.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    // Always ours, with or without --ca: it tells a self-signed
    // certificate from one of an unknown CA.
    builder = builder.tls_config(crate::tls::connect_config(args.ca.as_deref())?);
    if let Some(proxy) = &args.proxy {
        let proxy = Proxy::from_url(proxy)
            .map_err(|error| Failure::usage(format!("--proxy {proxy:?}: {error}")))?;
        builder = builder.proxy(proxy);
    }
    if args.no_proxy {
        builder = builder.no_proxy();
    }
    Ok(builder)
}

/// Reads stdin on a thread of its own (a blocked read would otherwise
/// hold the runtime) and hands each line over without its line ending.
/// The channel closes at end of input.
fn read_stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (lines, receiver) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if lines.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = lines.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    receiver
}

/// Sends each line as a message until input ends or a close is requested,
/// then sends Close 1000. A text line that is not UTF-8 is bad input: it
/// is recorded in `failure` and the connection closed.
async fn send_lines(
    mut sender: sockeye::SendHalf<sockeye::ClientStream>,
    mut lines: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    mut close_requested: oneshot::Receiver<()>,
    binary: bool,
    failure: Arc<Mutex<Option<Failure>>>,
    frames: bool,
) {
    let mut number = 0u64;
    let mut traced = Vec::new();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = &mut close_requested => break,
        };
        let line = match line {
            Some(Ok(line)) => line,
            Some(Err(error)) => {
                status!("sockeye: cannot read stdin: {error}");
                break;
            }
            None => break,
        };
        number += 1;
        let message = if binary {
            Message::binary(line)
        } else {
            match String::from_utf8(line) {
                Ok(text) => Message::text(text),
                Err(_) => {
                    let bad = Failure::usage(format!(
                        "line {number} of stdin is not valid UTF-8 (use --binary to send bytes)"
                    ));
                    if let Ok(mut slot) = failure.lock() {
                        *slot = Some(bad);
                    }
                    break;
                }
            }
        };
        if frames {
            crate::verbose::message('>', &message);
        }
        if sender.send(message).await.is_err() {
            // The connection ended; the receiving side reports how.
            return;
        }
        if frames {
            let dropped = sender.drain_frame_trace(&mut traced);
            crate::verbose::frames(&mut traced, dropped);
        }
    }
    if frames {
        crate::verbose::control('>', "close", 2, " 1000");
    }
    let _ = sender.close(CloseCode::NORMAL, "").await;
    if frames {
        let dropped = sender.drain_frame_trace(&mut traced);
        crate::verbose::frames(&mut traced, dropped);
    }
}
