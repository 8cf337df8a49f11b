//! `sockeye serve` on the library's event loop (`sockeye::event_loop`),
//! the default: one loop per thread, no task per connection. Echo and
//! broadcast over `ws://` and HTTP/1.1, the page and the files, the same
//! policy, limits, drain and `-v` lines as the tokio path.
//!
//! What the loop does not serve yet goes to the tokio path, which `auto`
//! (the default runtime) chooses by itself: TLS (`--cert`), cleartext
//! HTTP/2 (`--h2c`), a broadcast backplane (`--backplane`), the slow
//! policies other than `close` (the loop closes a subscriber that falls
//! `max_buffered_bytes` behind with 1008, as the hub's `close` policy
//! does) and the hub's metrics (`--broadcast --metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use sockeye::event_loop::{ConnId, EventLoop, Handler, LoopContext, Opening, Socket};
use sockeye::hub::SlowPolicy;
use sockeye::{CloseCode, Closed, DeflateConfig, Message, ServerBuilder};
use tracing::{debug, info};

use super::{Mode, ServeArgs};
use crate::broadcast;
use crate::failure::Failure;
use crate::http::Site;
use crate::signals::Interrupts;

/// The reason of the loop's Close for a subscriber that fell behind.
const TOO_SLOW: &str = "too slow to keep up";

/// Which front-end `sockeye serve` runs on (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// The event loop when it serves every option given, else tokio.
    Auto,
    /// The event loop (fails if an option needs tokio).
    Loop,
    /// A tokio task per connection.
    Tokio,
}

/// Why the event loop cannot serve these options, if it cannot.
pub(super) fn unsupported(args: &ServeArgs) -> Option<&'static str> {
    if args.cert.is_some() {
        Some("--cert (TLS)")
    } else if args.h2c {
        Some("--h2c (HTTP/2)")
    } else if args.backplane.is_some() {
        Some("--backplane")
    } else if args.broadcast && args.slow_policy != SlowPolicy::Close {
        Some("--slow-policy other than close")
    } else if args.broadcast && args.metrics.is_some() {
        // Its rooms are the loop's topics, not a `Hub`.
        Some("the hub's metrics (--broadcast with --metrics)")
    } else {
        None
    }
}

/// Runs the server on the event loop until Ctrl-C or SIGTERM, then
/// drains it. Runs on a small tokio runtime of its own, for the signals,
/// the metrics listener and the drain's wait; the loops have their own
/// threads.
pub(super) async fn run(args: ServeArgs, threads: usize) -> Result<(), Failure> {
    let mode = if args.broadcast {
        Mode::Broadcast
    } else {
        Mode::Echo
    };
    let site = Arc::new(Site::new(args.dir.as_deref(), mode)?);
    let address = super::resolve(&args.listen).await?;
    // Bound here, so that the allow-list can name the port picked.
    let listener = std::net::TcpListener::bind(address).map_err(|error| {
        Failure::unreachable(format!("cannot listen on {}: {error}", args.listen))
    })?;
    let local = listener
        .local_addr()
        .map_err(|error| Failure::failed(format!("cannot listen on {}: {error}", args.listen)))?;
    let metrics = match args.metrics {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };
    let mut interrupts = Interrupts::new()?;
    let deflate = DeflateConfig::new().enabled(!args.no_compression);
    let mut server = super::server_builder(&args, deflate, local);
    if mode == Mode::Broadcast {
        // A room that does not exist is refused before the 101.
        server = server.filter_request(|request| {
            broadcast::room_for_path(request.uri().path())
                .err()
                .map(|why| sockeye::proto::handshake::rejection(http::StatusCode::NOT_FOUND, why))
        });
    }
    info!("memory budget: {} MiB", server.get_memory_budget() >> 20);
    let running = EventLoop::new(server.clone())
        .threads(threads)
        .send_timeout(args.send_timeout)
        .listen(listener, {
            let server = server.clone();
            move |context: LoopContext| Serve {
                server: server.clone(),
                mode,
                site: site.clone(),
                index: context.index,
            }
        })
        .map_err(|error| Failure::failed(format!("cannot start the event loops: {error}")))?;
    note!(
        "sockeye: listening on ws://{local} ({} mode, event loop, {threads} thread(s); open http://{local}/ in a browser; Ctrl-C to stop)",
        mode.name()
    );
    if let Some(metrics) = metrics {
        metrics.serve(server.clone(), None);
    }
    interrupts.recv().await;

    let drain = server.drain_handle();
    drain.start(super::drain_config(&args, &server));
    let report = drain.wait().await;
    note!("sockeye: shutdown: {report} in {:.2?}", report.elapsed);
    let handle = running.handle();
    handle.stop();
    let joined = tokio::task::spawn_blocking(move || running.join()).await;
    if let Ok(Err(error)) = joined {
        debug!("event loop: {error}");
    }
    note!("sockeye: stopped");
    Ok(())
}

/// One loop's handler: echo, or the rooms of broadcast mode.
struct Serve {
    server: ServerBuilder,
    mode: Mode,
    site: Arc<Site>,
    index: usize,
}

/// Each connection's state.
struct Member {
    /// The client's address, kept only when lines that name it are
    /// printed (`-v`): 32 bytes that an idle connection does not hold.
    peer: Option<Box<SocketAddr>>,
    /// The topic of its room, in broadcast mode.
    room: Option<Box<str>>,
}

impl Handler for Serve {
    type Data = Member;

    fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> Member {
        let request = opening.request();
        let peer = opening.remote_addr();
        let compressed = opening
            .response()
            .headers()
            .contains_key(http::header::SEC_WEBSOCKET_EXTENSIONS);
        info!(
            "{peer}: WebSocket connected ({} {}{})",
            self.mode.name(),
            request.uri().path(),
            if compressed { ", compressed" } else { "" },
        );
        debug!("{peer}: on event loop {}", self.index);
        debug!(
            "{peer}: handshake: {} {}, subprotocol {}, extensions offered: {}, compression {}",
            request.method(),
            request.uri().path(),
            opening.protocol().unwrap_or("none"),
            offered_extensions(request),
            if compressed { "on" } else { "off" }
        );
        let room = match self.mode {
            Mode::Echo => None,
            // The filter refused any other path.
            Mode::Broadcast => broadcast::room_for_path(request.uri().path()).ok(),
        };
        if let Some(room) = &room {
            socket.subscribe(room);
            info!("{peer}: joined {}", broadcast::shown(room));
        }
        Member {
            peer: tracing::enabled!(tracing::Level::INFO).then(|| Box::new(peer)),
            room: room.map(String::into_boxed_str),
        }
    }

    fn message(&mut self, socket: &mut Socket<'_>, member: &mut Member, message: Message) {
        match &member.room {
            // The loop stops parsing while `max_buffered_bytes` is queued,
            // so an echo is not refused.
            None => {
                let _ = socket.send(message);
            }
            Some(room) => socket.publish(room, message),
        }
    }

    fn close(&mut self, _id: ConnId, member: Member, closed: &Closed) {
        let peer = Peer(member.peer.as_deref());
        let too_slow = closed.sent.as_ref().is_some_and(|frame| {
            frame.code == CloseCode::POLICY_VIOLATION && frame.reason.as_str() == TOO_SLOW
        });
        if too_slow {
            info!("{peer}: too slow to keep up (queue full), closed with 1008");
        }
        if let Some(room) = &member.room {
            info!("{peer}: left {}", broadcast::shown(room));
        }
        match &closed.error {
            // As the tokio path reports a failed connection.
            Some(error) => info!(
                "{peer}: connection failed: {}",
                sockeye::Error::from(error.clone())
            ),
            None => info!("{peer}: closed {}", closed.code()),
        }
        debug!("{peer}: {}", crate::verbose::describe_closed(closed));
    }

    fn refused(&mut self, remote: SocketAddr, error: &sockeye::Error) {
        match error {
            sockeye::Error::Handshake(error) => {
                info!("{remote}: WebSocket handshake refused: {error}")
            }
            other => debug!("{remote}: {other}"),
        }
    }

    fn answer_failed(&mut self, remote: SocketAddr, error: &std::io::Error) {
        info!("{remote}: answer dropped: {error}");
    }

    fn http(&mut self, request: &Request<()>, remote: SocketAddr) -> Option<Response<Bytes>> {
        let mut response = if super::is_broken_websocket(request) {
            // A WebSocket client's request that lost its upgrade: 426, as
            // the tokio path answers, not the page.
            self.server
                .record_refusal(sockeye::RefusalReason::BadRequest);
            crate::http::upgrade_required_response()
        } else {
            crate::http::response_now(request, &self.site)
        };
        info!(
            "{remote}: {} {} -> {}",
            request.method(),
            request.uri().path(),
            response.status()
        );
        if request.method() == Method::HEAD {
            // The head says the length; no body follows.
            *response.body_mut() = Bytes::new();
        }
        Some(response)
    }
}

/// The extensions a request offered, for the `-vv` handshake line.
fn offered_extensions(request: &Request<()>) -> String {
    let offered: Vec<&str> = request
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if offered.is_empty() {
        "none".to_owned()
    } else {
        offered.join(", ")
    }
}

/// A connection's client in a closing line: its address when kept (see
/// `Member::peer`).
struct Peer<'a>(Option<&'a SocketAddr>);

impl std::fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(peer) => peer.fmt(f),
            None => f.write_str("client"),
        }
    }
}
