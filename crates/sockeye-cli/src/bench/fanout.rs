//! `--fanout`: one publisher, many receivers, through a broadcast server
//! (`sockeye serve --broadcast`), or through several servers that share
//! their rooms through a backplane.
//!
//! The receivers connect first ([`super::idle::OPENING_AT_ONCE`] at a
//! time, spread round-robin over the server URLs: receiver 1 on the first,
//! receiver 2 on the second, ...); once every one has, the publisher
//! connects to the first URL and sends numbered messages, never more than
//! `--pipeline` ahead of the slowest receiver (so the servers' queues stay
//! short and no receiver is dropped for being slow). With `--rate`,
//! message k is due k+1 intervals after the publisher connected (open
//! loop); a message the window holds back past its time leaves as soon as
//! the window allows, and is counted as held. A [`Board`] shared by all
//! the connections counts the deliveries of each message in flight; a
//! message's last delivery lets the publisher send the next one. Every
//! receiver checks every message (the publisher's payloads, in order), and
//! the time from publication (when the publisher handed the message to
//! its connection) to delivery is recorded, overall and per server URL;
//! so is, per message, the time to its last delivery ("reach all"). All
//! connections live in this one process, so one clock times both ends,
//! whichever server a receiver is on. When the time is over, the
//! publisher sends an empty binary message, which tells each receiver
//! that everything has arrived.
//!
//! With `--no-handshake` the connections are plain TCP carrying WebSocket
//! frames (the publisher's masked, as a client's are), for the raw TCP
//! broadcast server that is the benchmark's floor; they end without a
//! closing handshake, which such a server would copy to everyone.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use sockeye::{ClientStream, Error, Message, Role, Utf8Bytes, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::lane::{LaneEnd, Tally};
use super::payload::Payloads;
use super::{Plan, Shared, idle};
use crate::report::{FanoutReport, Latency, UrlReport};

/// No publish yet (in the board's publish times).
const NEVER: u64 = u64::MAX;

/// A histogram of nanoseconds, from 1 ns to 100 s.
fn nanos_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts: this cannot fail.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One server URL's receivers.
struct EndpointBoard {
    receivers: AtomicU32,
    deliveries: AtomicU64,
    /// Publish to delivery, in nanoseconds.
    latency: Mutex<Histogram<u64>>,
}

/// What the publisher and the receivers share.
pub struct Board {
    /// Deliveries of each message in flight, at its sequence number
    /// modulo the window.
    delivered: Box<[AtomicU32]>,
    /// When each message in flight was published, in nanoseconds since
    /// `epoch`.
    published_at: Box<[AtomicU64]>,
    epoch: Instant,
    /// Receivers connected and not failed.
    live: AtomicU32,
    /// Receivers that received a probe (several servers only).
    primed: AtomicU32,
    /// The publisher failed: nothing more will come.
    abandoned: AtomicBool,
    /// Told (all waiters) when `abandoned` is set.
    abandon: Notify,
    /// Told when a message has reached every live receiver.
    progress: Notify,
    /// Per server URL.
    endpoints: Box<[EndpointBoard]>,
    /// Per message, publish to last delivery, in nanoseconds.
    reach_all: Mutex<Histogram<u64>>,
    /// Messages published.
    publishes: AtomicU64,
    /// Messages that were due while the window held them back.
    held: AtomicU64,
    /// The first and the last publication, nanoseconds since `epoch`.
    first_publish: AtomicU64,
    last_publish: AtomicU64,
}

impl Board {
    /// A board for `window` messages in flight and `endpoints` server
    /// URLs.
    pub fn new(window: usize, endpoints: usize) -> Board {
        let window = window.max(1);
        Board {
            delivered: (0..window).map(|_| AtomicU32::new(0)).collect(),
            published_at: (0..window).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            live: AtomicU32::new(0),
            primed: AtomicU32::new(0),
            abandoned: AtomicBool::new(false),
            abandon: Notify::new(),
            progress: Notify::new(),
            endpoints: (0..endpoints.max(1))
                .map(|_| EndpointBoard {
                    receivers: AtomicU32::new(0),
                    deliveries: AtomicU64::new(0),
                    latency: Mutex::new(nanos_histogram()),
                })
                .collect(),
            reach_all: Mutex::new(nanos_histogram()),
            publishes: AtomicU64::new(0),
            held: AtomicU64::new(0),
            first_publish: AtomicU64::new(NEVER),
            last_publish: AtomicU64::new(NEVER),
        }
    }

    fn slot(&self, sequence: u64) -> usize {
        (sequence % self.delivered.len() as u64) as usize
    }

    fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether message `sequence` may be published: the one a window
    /// before it reached every live receiver.
    fn may_publish(&self, sequence: u64) -> bool {
        let window = self.delivered.len() as u64;
        sequence < window
            || self.delivered[self.slot(sequence)].load(Ordering::Acquire)
                >= self.live.load(Ordering::Acquire)
    }

    /// Records the publication of `sequence` (its slot is free).
    fn published(&self, sequence: u64) {
        let slot = self.slot(sequence);
        self.delivered[slot].store(0, Ordering::Release);
        let nanos = self.now_nanos();
        self.published_at[slot].store(nanos, Ordering::Release);
        self.publishes.fetch_add(1, Ordering::Relaxed);
        if self.first_publish.load(Ordering::Relaxed) == NEVER {
            self.first_publish.store(nanos, Ordering::Relaxed);
        }
        self.last_publish.store(nanos, Ordering::Relaxed);
    }

    /// Records one delivery of `sequence`; its time since publication.
    fn delivered(&self, sequence: u64) -> Duration {
        let slot = self.slot(sequence);
        let published = self.published_at[slot].load(Ordering::Acquire);
        let count = self.delivered[slot].fetch_add(1, Ordering::AcqRel) + 1;
        let now = self.now_nanos();
        let live = self.live.load(Ordering::Acquire);
        if count >= live {
            self.progress.notify_one();
            if count == live {
                lock(&self.reach_all).saturating_record(now.saturating_sub(published).max(1));
            }
        }
        Duration::from_nanos(now.saturating_sub(published))
    }

    /// A receiver on server `endpoint` is connected.
    fn join(&self, endpoint: usize) {
        self.live.fetch_add(1, Ordering::AcqRel);
        self.endpoints[endpoint]
            .receivers
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A receiver is gone: the publisher no longer waits for it.
    fn leave(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.progress.notify_one();
    }

    /// Adds `count` deliveries to server `endpoint`'s.
    pub fn count_deliveries(&self, endpoint: usize, count: u64) {
        if let Some(board) = self.endpoints.get(endpoint) {
            board.deliveries.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Records latencies (nanoseconds) of server `endpoint`'s receivers.
    pub fn record_latencies(&self, endpoint: usize, samples: &[u64]) {
        if let Some(board) = self.endpoints.get(endpoint) {
            let mut histogram = lock(&board.latency);
            for sample in samples {
                histogram.saturating_record((*sample).max(1));
            }
        }
    }

    /// Forgets the latencies so far (the warm-up's).
    pub fn reset_histograms(&self) {
        lock(&self.reach_all).reset();
        for board in &self.endpoints {
            lock(&board.latency).reset();
        }
    }

    /// The run's fan-out figures, with the server URLs in order.
    pub fn report(&self, urls: &[String], rate: Option<f64>) -> FanoutReport {
        let publishes = self.publishes.load(Ordering::Relaxed);
        let first = self.first_publish.load(Ordering::Relaxed);
        let last = self.last_publish.load(Ordering::Relaxed);
        let rate_achieved = if publishes > 1 && first != NEVER && last > first {
            (publishes - 1) as f64 / ((last - first) as f64 / 1e9)
        } else {
            0.0
        };
        let reach_all = lock(&self.reach_all);
        FanoutReport {
            publishes,
            // Set by the caller, from the run's elapsed time.
            deliveries_per_sec: 0.0,
            rate_target: rate,
            rate_achieved,
            held_by_window: self.held.load(Ordering::Relaxed),
            reach_all_us: Latency::of(&reach_all),
            reach_all_count: reach_all.len(),
            per_url: self
                .endpoints
                .iter()
                .zip(urls)
                .map(|(board, url)| UrlReport {
                    url: url.clone(),
                    receivers: board.receivers.load(Ordering::Relaxed),
                    deliveries: board.deliveries.load(Ordering::Relaxed),
                    latency_us: Latency::of(&lock(&board.latency)),
                })
                .collect(),
        }
    }
}

/// An open fan-out connection: through the client (TLS, proxies off) or
/// over a TCP connection this module opened itself.
enum Socket {
    Client(WebSocket<ClientStream>),
    Tcp(WebSocket<TcpStream>),
}

/// Opens connection `id` to server `endpoint`: with the client, or from
/// a spread source address, or without a handshake.
async fn open(plan: &Plan, endpoint: usize, id: u32) -> Result<Socket, Error> {
    let target = &plan.endpoints[endpoint];
    // Ten thousand handshakes at once would overflow the accept backlog.
    let _permit = plan.opening.acquire().await.ok();
    if !plan.no_handshake && plan.local_addresses.is_none() {
        let (ws, _) = target.client.builder().connect().await?;
        return Ok(Socket::Client(ws));
    }
    let tcp = plan.open_tcp_to(target.address, id).await?;
    if plan.no_handshake {
        let config = target.client.config().clone();
        return Ok(Socket::Tcp(WebSocket::from_raw(
            tcp,
            Role::Client,
            config,
            &[],
        )));
    }
    Ok(Socket::Tcp(idle::handshake(tcp, &target.client).await?))
}

/// Receiver `id` (1 and up): connects to its server, checks every
/// message until the empty one, closes.
pub async fn receive(id: u32, plan: Arc<Plan>, shared: Arc<Shared>, delay: Duration) -> LaneEnd {
    let mut end = LaneEnd::default();
    tokio::time::sleep(delay).await;
    let endpoint = (id.saturating_sub(1) as usize) % plan.endpoints.len();
    let opened = open(&plan, endpoint, id).await;
    // Bound first: the message's temporaries must not live across awaits.
    let socket = end.opened(format_args!("receiver {id}"), &shared, opened);
    match socket {
        Some(Socket::Client(ws)) => receive_on(ws, id, endpoint, &plan, &shared, end).await,
        Some(Socket::Tcp(ws)) => receive_on(ws, id, endpoint, &plan, &shared, end).await,
        None => end,
    }
}

async fn receive_on<S>(
    mut ws: WebSocket<S>,
    id: u32,
    endpoint: usize,
    plan: &Plan,
    shared: &Shared,
    mut end: LaneEnd,
) -> LaneEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(board) = shared.fanout.as_ref() else {
        end.error = Some("internal error: no fan-out board".into());
        return end;
    };
    board.join(endpoint);
    end.compressed = ws.connection().deflate_params().is_some();
    // The publisher's payloads.
    let mut payloads = Payloads::with_kind(plan.payload, 0, plan.size, 1);
    let mut tally = Tally::for_endpoint(endpoint);
    let mut next = 0u64;
    let mut primed = false;
    let abandoned = board.abandon.notified();
    let mut abandoned = std::pin::pin!(abandoned);
    let outcome = poll_fn(|cx| {
        // Registered before the flag is read, so neither can be missed.
        let _ = abandoned.as_mut().poll(cx);
        if board.abandoned.load(Ordering::Acquire) {
            // The publisher's failure is the run's error, not this
            // receiver's: it closes normally.
            return Poll::Ready(Ok(()));
        }
        loop {
            match Pin::new(&mut ws).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    if message.is_empty() && !message.is_text() {
                        return Poll::Ready(Ok(()));
                    }
                    if message.is_empty() {
                        // A probe: the way from the publisher is open.
                        if !primed {
                            primed = true;
                            board.primed.fetch_add(1, Ordering::AcqRel);
                            board.progress.notify_one();
                        }
                        continue;
                    }
                    let latency = board.delivered(next);
                    let right =
                        message.is_text() == plan.text && payloads.check(next, message.as_bytes());
                    if !right {
                        tally.mismatch();
                    }
                    next += 1;
                    end.last_receive = Some(Instant::now());
                    tally.received(shared, message.len(), latency);
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(format!("connection failed: {error}")));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Err("the server closed the connection".to_owned()));
                }
                Poll::Pending => {
                    tally.publish(shared);
                    return Poll::Pending;
                }
            }
        }
    })
    .await;
    tally.flush(shared);
    if outcome.is_err() {
        // The publisher no longer waits for it. A receiver that got the
        // end stays counted: the others may still be receiving the last
        // messages, whose last delivery is the one that reaches all.
        board.leave();
    }
    match outcome {
        // Without a handshake there is no closing one: the connection is
        // dropped.
        Ok(()) if plan.no_handshake => {}
        Ok(()) => end.close(&mut ws).await,
        Err(error) => {
            tracing::debug!("receiver {id}: {error}");
            end.error = Some(error);
        }
    }
    end
}

/// The publisher: connects to the first server, publishes while the
/// window (and the rate) allows until the run stops, sends the empty
/// message, closes.
pub async fn publish(id: u32, plan: Arc<Plan>, shared: Arc<Shared>) -> LaneEnd {
    let mut end = LaneEnd::default();
    let opened = open(&plan, 0, id).await;
    let socket = end.opened(format_args!("publisher"), &shared, opened);
    let end = match socket {
        Some(Socket::Client(ws)) => publish_on(ws, id, &plan, &shared, end).await,
        Some(Socket::Tcp(ws)) => publish_on(ws, id, &plan, &shared, end).await,
        None => end,
    };
    if (end.error.is_some() || !end.connected)
        && let Some(board) = &shared.fanout
    {
        // No end message will come: the receivers stop waiting.
        board.abandoned.store(true, Ordering::Release);
        board.abandon.notify_waiters();
    }
    end
}

/// How often the publisher sends a probe while some receiver has not
/// seen one (at most 250 probes in [`PROBE_LIMIT`], well under a server's
/// queue per subscriber).
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How long the receivers get to see a probe.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// With several servers: sends empty text messages (probes, which the
/// receivers skip) until every receiver has seen one. A node subscribes
/// to its backplane's channel when its first member joins, but without
/// waiting: until that subscription is in place, what other nodes publish
/// does not reach it, and the first numbered messages would be missed.
async fn probe<S>(ws: &mut WebSocket<S>, board: &Board, shared: &Shared) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + PROBE_LIMIT;
    let mut next_probe = Instant::now();
    loop {
        let progress = board.progress.notified();
        let live = board.live.load(Ordering::Acquire);
        if board.primed.load(Ordering::Acquire) >= live || shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = Instant::now();
        if now > deadline {
            return Err(format!(
                "{} of {live} receivers got nothing in {}s: do the servers share their rooms \
                 (a backplane)?",
                live - board.primed.load(Ordering::Acquire),
                PROBE_LIMIT.as_secs()
            ));
        }
        // One probe per interval, however often receivers report: each
        // probe is queued for every receiver, and a burst of them would
        // fill the queues of those that already saw one.
        if now >= next_probe {
            ws.send(Message::text(""))
                .await
                .map_err(|error| format!("sending failed: {error}"))?;
            next_probe = now + PROBE_INTERVAL;
        }
        let _ = tokio::time::timeout_at(next_probe.into(), progress).await;
    }
}

/// When message `sequence` is due, at `rate` publishes per second from
/// `start`: one interval after the one before, the first one interval
/// after the start.
fn due_at(start: Instant, rate: f64, sequence: u64) -> Instant {
    start + Duration::from_secs_f64((sequence + 1) as f64 / rate)
}

async fn publish_on<S>(
    mut ws: WebSocket<S>,
    id: u32,
    plan: &Plan,
    shared: &Shared,
    mut end: LaneEnd,
) -> LaneEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(board) = shared.fanout.as_ref() else {
        end.error = Some("internal error: no fan-out board".into());
        return end;
    };
    end.compressed = ws.connection().deflate_params().is_some();
    if plan.endpoints.len() > 1
        && let Err(error) = probe(&mut ws, board, shared).await
    {
        tracing::debug!("publisher: {error}");
        end.error = Some(error);
        return end;
    }
    let mut payloads = Payloads::with_kind(plan.payload, id, plan.size, plan.pipeline);
    // To recognize its own messages, should the server send them back.
    let mut own = Payloads::with_kind(plan.payload, id, plan.size, 1);
    let mut next = 0u64;
    let start = Instant::now();
    // The message last counted as held by the window (each counts once).
    let mut held: Option<u64> = None;
    let outcome: Result<(), String> = async {
        loop {
            let stopped = shared.stopped.notified();
            let progress = board.progress.notified();
            let mut sent = false;
            // Out of --messages: done.
            let mut done = false;
            // The next message's time has not come (with --rate).
            let mut early = None;
            let now = Instant::now();
            loop {
                if let Some(rate) = plan.rate {
                    let due = due_at(start, rate, next);
                    if due > now {
                        early = Some(due);
                        break;
                    }
                }
                if !board.may_publish(next) {
                    if plan.rate.is_some() && held != Some(next) {
                        held = Some(next);
                        board.held.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                if !shared.may_send() {
                    done = true;
                    break;
                }
                board.published(next);
                let payload = payloads.make(next);
                let message =
                    if plan.text {
                        Message::Text(Utf8Bytes::try_from(payload).map_err(|_| {
                            "internal error: a text payload is not UTF-8".to_owned()
                        })?)
                    } else {
                        Message::Binary(payload)
                    };
                end.first_send.get_or_insert_with(Instant::now);
                ws.feed(message)
                    .await
                    .map_err(|error| format!("sending failed: {error}"))?;
                next += 1;
                sent = true;
            }
            if sent {
                ws.flush()
                    .await
                    .map_err(|error| format!("sending failed: {error}"))?;
            }
            if done || shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if board.live.load(Ordering::Acquire) == 0 {
                return Err("no receiver is left".to_owned());
            }
            tokio::select! {
                () = stopped => {}
                () = progress, if early.is_none() => {}
                () = super::sleep_until_option(early) => {}
                received = ws.recv() => match received {
                    // A broadcast server sends a message to the others
                    // only; an echo server sends it back.
                    Some(Ok(message)) if own.is_payload_of(id, message.as_bytes()) => {
                        shared.wrong_server(super::ECHO_SERVER);
                        return Err(super::ECHO_SERVER.to_owned());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("connection failed: {error}")),
                    None => return Err("the server closed the connection".to_owned()),
                },
            }
        }
    }
    .await;
    if let Err(error) = outcome {
        tracing::debug!("publisher: {error}");
        end.error = Some(error);
        return end;
    }
    // The end: an empty binary message after everything else.
    if let Err(error) = ws.send(Message::Binary(Bytes::new())).await {
        end.error = Some(format!("sending failed: {error}"));
        return end;
    }
    if !plan.no_handshake {
        end.close(&mut ws).await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_waits_for_every_receiver() {
        let board = Board::new(2, 1);
        board.live.store(3, Ordering::Relaxed);
        assert!(board.may_publish(0) && board.may_publish(1));
        board.published(0);
        board.published(1);
        assert!(!board.may_publish(2), "message 0 reached nobody yet");
        board.delivered(0);
        board.delivered(0);
        assert!(!board.may_publish(2));
        board.delivered(0);
        assert!(board.may_publish(2));
        assert!(!board.may_publish(3));
        // A receiver that leaves is no longer waited for.
        board.delivered(1);
        board.delivered(1);
        board.leave();
        assert!(board.may_publish(3));
    }

    #[test]
    fn reach_all_is_recorded_once_per_message_at_its_last_delivery() {
        let board = Board::new(4, 2);
        board.join(0);
        board.join(1);
        board.join(0);
        board.published(0);
        board.published(1);
        board.delivered(0);
        board.delivered(0);
        assert_eq!(lock(&board.reach_all).len(), 0, "one receiver still waits");
        board.delivered(0);
        board.delivered(1);
        board.delivered(1);
        board.delivered(1);
        board.count_deliveries(1, 2);
        board.record_latencies(1, &[5_000, 7_000]);
        let urls = ["ws://a/".to_owned(), "ws://b/".to_owned()];
        let report = board.report(&urls, Some(100.0));
        assert_eq!(report.publishes, 2);
        assert_eq!(report.reach_all_count, 2);
        assert_eq!(report.per_url[0].receivers, 2);
        assert_eq!(report.per_url[1].receivers, 1);
        assert_eq!(report.per_url[1].deliveries, 2);
        assert!((6.9..7.1).contains(&report.per_url[1].latency_us.max));
        assert_eq!(report.per_url[0].latency_us.max, 0.0);
        assert_eq!(report.rate_target, Some(100.0));
        board.reset_histograms();
        assert_eq!(board.report(&urls, None).reach_all_count, 0);
    }

    #[test]
    fn messages_are_due_one_interval_apart() {
        let start = Instant::now();
        assert_eq!(due_at(start, 1000.0, 0), start + Duration::from_millis(1));
        assert_eq!(due_at(start, 1000.0, 9), start + Duration::from_millis(10));
        assert_eq!(due_at(start, 4.0, 1), start + Duration::from_millis(500));
    }
}
