//! Graceful drain: a server's shutdown that stops admitting, closes every
//! connection it accepted with 1001 (going away) or 1012 (service restart,
//! RFC 6455 section 7.4.1 and the IANA registry) spread over a window, and
//! waits a bounded time for the closing handshakes.
//!
//! Every [`ServerBuilder`](crate::ServerBuilder) has one [`Drain`], shared
//! by its clones like the connection limit. Each admitted connection gets
//! a slot in the drain's registry (with its place under the limit). When
//! the drain starts, each slot is given its time in the window and its
//! task woken; the front-end then schedules the Close in the engine
//! ([`Connection::close_at`](sockeye_proto::Connection::close_at)), whose
//! timers send it. The front-end records on the slot how the connection
//! ended. The only cost on the message path is one atomic load per poll
//! (and a pointer comparison of wakers).
//!
//! Idle connections should cost little: slots are 32 bytes, kept in
//! chunks of 64 that are reused as connections come and go, and a
//! connection's handle on its slot is 32 bytes.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use sockeye_proto::CloseCode;
use sockeye_proto::handshake::{self, HandshakeError};

/// The default [`DrainConfig::window`].
pub const DEFAULT_DRAIN_WINDOW: Duration = Duration::from_secs(1);

/// The default [`DrainConfig::timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a drain closes connections: the Close frame's code and reason, the
/// window the Close frames are spread over, and how long to wait for the
/// closing handshakes.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    code: CloseCode,
    reason: String,
    window: Duration,
    timeout: Duration,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig::new()
    }
}

impl DrainConfig {
    /// Close with 1001 (going away) and "server shutting down", over a
    /// 1 s window, waiting at most 10 s.
    pub fn new() -> DrainConfig {
        DrainConfig {
            code: CloseCode::GOING_AWAY,
            reason: "server shutting down".into(),
            window: DEFAULT_DRAIN_WINDOW,
            timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The Close frame's code: [`CloseCode::GOING_AWAY`] (1001) for a
    /// server that goes away, [`CloseCode::SERVICE_RESTART`] (1012) for one
    /// that restarts (clients may reconnect after a pause). A code that may
    /// not be sent is replaced by 1001. Default: 1001.
    pub fn code(mut self, code: CloseCode) -> DrainConfig {
        self.code = if code.is_sendable() {
            code
        } else {
            CloseCode::GOING_AWAY
        };
        self
    }

    /// The Close frame's reason, cut to 123 bytes (at a character
    /// boundary). Default: "server shutting down".
    pub fn reason(mut self, reason: impl Into<String>) -> DrainConfig {
        let mut reason = reason.into();
        let mut end = reason.len().min(sockeye_proto::CloseFrame::MAX_REASON_LEN);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        self.reason = reason;
        self
    }

    /// The window the Close frames are spread over: the connections open
    /// when the drain starts are closed one after the other at even
    /// intervals across it, so that their clients do not all reconnect (to
    /// another server, or to this one restarted) in the same instant. Zero
    /// closes them all at once. Cut to the timeout. Default: 1 s.
    pub fn window(mut self, window: Duration) -> DrainConfig {
        self.window = window;
        self
    }

    /// How long after the start the drain waits for the closing
    /// handshakes; connections still open then are cut (see
    /// [`Drain::wait`]). Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> DrainConfig {
        self.timeout = timeout;
        self
    }
}

/// What a drain did, from [`Drain::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Connections open when the drain started.
    pub connections: usize,
    /// Of those, the ones that ended with a clean closing handshake.
    pub clean: usize,
    /// The ones that ended otherwise before the deadline: the peer did not
    /// answer within the engine's close timeout, the transport failed, or
    /// the application dropped the connection (or took it apart with
    /// `into_parts`) without finishing it.
    pub failed: usize,
    /// The ones still open at the deadline. Each was told to end: it ends
    /// at its next poll with [`Error::Timeout`](crate::Error::Timeout)
    /// (`Timeout::Close`) and shuts its transport down; dropping it closes
    /// the transport.
    pub abandoned: usize,
    /// From the start of the drain to this report.
    pub elapsed: Duration,
}

impl DrainReport {
    /// Connections that did not close cleanly: `failed + abandoned`.
    pub fn cut(&self) -> usize {
        self.failed + self.abandoned
    }
}

impl fmt::Display for DrainReport {
    /// `1000 connections, 998 closed cleanly, 2 cut`, and how many of the
    /// cut ones were still open at the deadline, if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connection{}, {} closed cleanly, {} cut",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.clean,
            self.cut()
        )?;
        if self.abandoned > 0 {
            write!(
                f,
                " ({} still open at the deadline, dropped)",
                self.abandoned
            )?;
        }
        Ok(())
    }
}

/// A server's shutdown handle, from
/// [`ServerBuilder::drain_handle`](crate::ServerBuilder::drain_handle):
/// cheap to clone, shared by the builder's clones.
///
/// ```no_run
/// # async fn demo(server: sockeye::ServerBuilder) {
/// use sockeye::{CloseCode, DrainConfig};
/// use std::time::Duration;
///
/// let drain = server.drain_handle();
/// // ... accept with `server` in a loop; on SIGTERM:
/// drain.start(
///     DrainConfig::new()
///         .code(CloseCode::SERVICE_RESTART)
///         .window(Duration::from_secs(2)),
/// );
/// let report = drain.wait().await;
/// eprintln!("shutdown: {report}");
/// # }
/// ```
///
/// Connections see the drain when their front-end polls them: a tokio
/// `WebSocket` (or its receiving half) at once, since the drain wakes its
/// task; a blocking one when its read returns, which for a connection
/// accepted through a builder is within a second.
#[derive(Clone)]
pub struct Drain {
    registry: Arc<Registry>,
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("started", &self.is_started())
            .finish_non_exhaustive()
    }
}

/// The connections admitted and not yet ended, and the drain's progress.
struct Registry {
    /// Set once the drain started: admission checks it without the lock.
    started: AtomicBool,
    plan: OnceLock<Plan>,
    state: Mutex<State>,
    /// Told when the drain starts and when a drained connection ends.
    changed: tokio::sync::Notify,
}

/// The drain's parameters, fixed when it starts.
struct Plan {
    code: CloseCode,
    reason: Arc<str>,
    /// On the clock the front-ends pass to their engines (tokio's, which
    /// follows paused time in tests).
    start: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    /// The slots, allocated a chunk at a time as connections come, and
    /// reused.
    chunks: Vec<Arc<Chunk>>,
    /// Which slots hold an open connection: a word per chunk, a bit per
    /// slot.
    occupied: Vec<u64>,
    /// Slots free for the next connections.
    free: Vec<u32>,
    progress: Option<Progress>,
}

impl State {
    /// The slots of open connections.
    fn open_slots(&self) -> impl Iterator<Item = &Slot> {
        self.occupied
            .iter()
            .zip(&self.chunks)
            .flat_map(|(&word, chunk)| {
                (0..CHUNK)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .map(|bit| &chunk.slots[bit])
            })
    }

    fn open_count(&self) -> usize {
        self.occupied
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }
}

/// Slots per chunk: the bits of a word of `State::occupied`.
const CHUNK: usize = 64;

/// A chunk of slots, shared by the registry and the connections in it.
struct Chunk {
    /// Weak: a connection does not keep its server's registry alive.
    registry: Weak<Registry>,
    slots: [Slot; CHUNK],
}

struct Progress {
    connections: usize,
    clean: usize,
    failed: usize,
    /// Fixed once the drain is over.
    report: Option<DrainReport>,
}

/// What a drain asks of one connection.
const SIGNAL_NONE: u8 = 0;
const SIGNAL_CLOSE: u8 = 1;
const SIGNAL_ABORT: u8 = 2;

/// One connection's place in the registry, shared with its front-end.
#[derive(Default)]
struct Slot {
    signal: AtomicU8,
    /// When to close, in microseconds after the plan's start (written
    /// before `signal`).
    offset_micros: AtomicU32,
    waker: AtomicWaker,
}

impl Slot {
    fn tell(&self, signal: u8) {
        self.signal.store(signal, Ordering::Release);
        self.waker.wake();
    }
}

/// What the drain asks a front-end to do now.
pub(crate) enum DrainSignal {
    /// Schedule the closing handshake.
    Close {
        at: Instant,
        code: CloseCode,
        reason: Arc<str>,
    },
    /// The deadline passed: end now, without waiting for the peer.
    Abort,
}

/// A connection's slot, held by its front-end (in its connection permit).
/// Dropping it records an end that was not clean, unless one was recorded.
pub(crate) struct DrainSlot {
    chunk: Arc<Chunk>,
    /// The slot's number in the registry.
    index: u32,
    /// The last signal acted on.
    seen: u8,
    /// The waker last registered, so that a poll with the same one costs
    /// no atomic read-modify-write.
    registered: Option<Waker>,
    ended: bool,
}

impl fmt::Debug for DrainSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainSlot")
            .field("index", &self.index)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Drain {
    /// A drain with no connections, not started.
    pub(crate) fn new() -> Drain {
        Drain {
            registry: Arc::new(Registry {
                started: AtomicBool::new(false),
                plan: OnceLock::new(),
                state: Mutex::new(State::default()),
                changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Starts the drain: from now on new WebSocket requests are refused
    /// with `503 Service Unavailable` and `Retry-After: 1`, and every
    /// connection open now is given a time in `config`'s window at which
    /// its Close frame is sent (evenly spaced, in no particular order);
    /// each is woken to schedule it. Returns `false`, changing nothing, if
    /// the drain had already started.
    ///
    /// Call it inside the tokio runtime (its clock, paused or not, is the
    /// one the connections' timers run on).
    pub fn start(&self, config: DrainConfig) -> bool {
        let registry = &*self.registry;
        let now = tokio::time::Instant::now().into_std();
        let window = config.window.min(config.timeout);
        {
            let mut state = registry.lock();
            if state.progress.is_some() {
                return false;
            }
            let plan = Plan {
                code: config.code,
                reason: config.reason.into(),
                start: now,
                deadline: now + config.timeout,
            };
            // Under the lock: no admission slips between the flag and the
            // list of connections to close.
            let _ = registry.plan.set(plan);
            registry.started.store(true, Ordering::Release);
            let count = state.open_count();
            state.progress = Some(Progress {
                connections: count,
                clean: 0,
                failed: 0,
                report: None,
            });
            let window = window.as_micros();
            for (rank, slot) in state.open_slots().enumerate() {
                let offset = window * rank as u128 / count as u128;
                let offset = u32::try_from(offset).unwrap_or(u32::MAX);
                slot.offset_micros.store(offset, Ordering::Relaxed);
                slot.tell(SIGNAL_CLOSE);
            }
        }
        registry.changed.notify_waiters();
        true
    }

    /// Whether the drain has started.
    pub fn is_started(&self) -> bool {
        self.registry.started.load(Ordering::Acquire)
    }

    /// Waits until the drain has started (at once if it has).
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) async fn started(&self) {
        loop {
            let changed = self.registry.changed.notified();
            if self.is_started() {
                return;
            }
            changed.await;
        }
    }

    /// Waits for the drain (waiting for it to start first, if it has not):
    /// until every connection it closes has ended, or the deadline (the
    /// start plus [`DrainConfig::timeout`]) passes. At the deadline, each
    /// connection still open is told to end at once, without waiting for
    /// its peer (see [`DrainReport::abandoned`]). Returns what happened;
    /// once over, every call returns the same report.
    ///
    /// # Cancel safety
    /// Cancel-safe: the drain goes on without it (the connections close at
    /// their times), and a later call waits again; only the cutting at
    /// the deadline waits for a call to be running.
    pub async fn wait(&self) -> DrainReport {
        let registry = &*self.registry;
        loop {
            let changed = registry.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before looking, so no change is missed.
            changed.as_mut().enable();
            let Some(plan) = registry.plan.get() else {
                changed.await;
                continue;
            };
            if let Some(report) = self.report_if_done(plan) {
                return report;
            }
            let deadline = tokio::time::Instant::from_std(plan.deadline);
            let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
            let at_deadline = std::future::poll_fn(|cx| {
                if sleep.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(true);
                }
                changed.as_mut().poll(cx).map(|()| false)
            })
            .await;
            if at_deadline {
                return self.cut_the_rest(plan);
            }
        }
    }

    /// The report, if every drained connection has ended (or it was made).
    fn report_if_done(&self, plan: &Plan) -> Option<DrainReport> {
        let mut state = self.registry.lock();
        let progress = state.progress.as_mut()?;
        if let Some(report) = progress.report {
            return Some(report);
        }
        if progress.clean + progress.failed < progress.connections {
            return None;
        }
        let report = progress.report_now(plan);
        progress.report = Some(report);
        Some(report)
    }

    /// At the deadline: tells every connection still open to end, and
    /// makes the report.
    fn cut_the_rest(&self, plan: &Plan) -> DrainReport {
        let mut state = self.registry.lock();
        for slot in state.open_slots() {
            slot.tell(SIGNAL_ABORT);
        }
        let progress = state
            .progress
            .as_mut()
            .expect("a drain with a plan has started");
        if let Some(report) = progress.report {
            return report;
        }
        let report = progress.report_now(plan);
        progress.report = Some(report);
        report
    }

    /// Refuses with 503 once the drain started (the check every admission
    /// runs first; [`Drain::register`] checks again under the lock).
    pub(crate) fn check(&self) -> Result<(), HandshakeError> {
        if self.is_started() {
            return Err(refusal());
        }
        Ok(())
    }

    /// Gives an admitted connection its slot, or refuses with 503 once
    /// the drain started.
    pub(crate) fn register(&self) -> Result<DrainSlot, HandshakeError> {
        let mut state = self.registry.lock();
        if state.progress.is_some() {
            return Err(refusal());
        }
        let index = match state.free.pop() {
            Some(index) => index,
            None => {
                let first = state.chunks.len() * CHUNK;
                let (Ok(first), Ok(end)) = (u32::try_from(first), u32::try_from(first + CHUNK))
                else {
                    return Err(refusal());
                };
                state.chunks.push(Arc::new(Chunk {
                    registry: Arc::downgrade(&self.registry),
                    slots: std::array::from_fn(|_| Slot::default()),
                }));
                state.occupied.push(0);
                // Lowest first.
                state.free.extend((first + 1..end).rev());
                first
            }
        };
        let (word, bit) = (index as usize / CHUNK, index as usize % CHUNK);
        state.occupied[word] |= 1 << bit;
        let chunk = state.chunks[word].clone();
        chunk.slots[bit]
            .signal
            .store(SIGNAL_NONE, Ordering::Relaxed);
        Ok(DrainSlot {
            chunk,
            index,
            seen: SIGNAL_NONE,
            registered: None,
            ended: false,
        })
    }
}

impl Progress {
    fn report_now(&self, plan: &Plan) -> DrainReport {
        let now = tokio::time::Instant::now().into_std();
        DrainReport {
            connections: self.connections,
            clean: self.clean,
            failed: self.failed,
            abandoned: self.connections - self.clean - self.failed,
            elapsed: now.saturating_duration_since(plan.start),
        }
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing in the state is left half-changed by a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The answer to a WebSocket request while draining.
fn refusal() -> HandshakeError {
    let mut response = handshake::rejection(
        StatusCode::SERVICE_UNAVAILABLE,
        "server shutting down, try again later",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    HandshakeError::refused(response)
}

impl DrainSlot {
    /// What the drain asks now, if anything new. With a `cx` (async
    /// front-ends), the task is woken when the drain asks something. One
    /// atomic load when nothing changed and the waker is the one
    /// registered before.
    pub(crate) fn poll(&mut self, cx: Option<&Context<'_>>) -> Option<DrainSignal> {
        if self.ended || self.seen == SIGNAL_ABORT {
            return None;
        }
        let slot = &self.chunk.slots[self.index as usize % CHUNK];
        if let Some(cx) = cx {
            // Before the first signal the registered waker stays in place
            // (only a signal takes it), so the same waker needs no new
            // registration. Once a signal was seen, the wake that told it
            // may have taken a later registration: register every time.
            let same = self
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            if !same || self.seen != SIGNAL_NONE {
                slot.waker.register(cx.waker());
                if !same {
                    self.registered = Some(cx.waker().clone());
                }
            }
        }
        let signal = slot.signal.load(Ordering::Acquire);
        if signal == self.seen {
            return None;
        }
        if let Some(cx) = cx {
            // The wake that brought this signal took the waker.
            slot.waker.register(cx.waker());
        }
        self.seen = signal;
        match signal {
            SIGNAL_CLOSE => {
                let registry = self.chunk.registry.upgrade()?;
                let plan = registry.plan.get()?;
                let offset = slot.offset_micros.load(Ordering::Relaxed);
                Some(DrainSignal::Close {
                    at: plan.start + Duration::from_micros(offset.into()),
                    code: plan.code,
                    reason: plan.reason.clone(),
                })
            }
            SIGNAL_ABORT => Some(DrainSignal::Abort),
            _ => None,
        }
    }

    /// Records how the connection ended (once; later calls do nothing).
    pub(crate) fn finish(&mut self, clean: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        // The slot may go to another connection: let go of this one's task.
        let (word, bit) = (self.index as usize / CHUNK, self.index as usize % CHUNK);
        drop(self.chunk.slots[bit].waker.take());
        self.registered = None;
        let Some(registry) = self.chunk.registry.upgrade() else {
            return;
        };
        let counted = {
            let mut state = registry.lock();
            state.occupied[word] &= !(1 << bit);
            state.free.push(self.index);
            match &mut state.progress {
                Some(progress) => {
                    if clean {
                        progress.clean += 1;
                    } else {
                        progress.failed += 1;
                    }
                    true
                }
                None => false,
            }
        };
        if counted {
            registry.changed.notify_waiters();
        }
    }
}

impl Drop for DrainSlot {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_says_what_was_cut() {
        let report = DrainReport {
            connections: 1000,
            clean: 998,
            failed: 1,
            abandoned: 1,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(
            report.to_string(),
            "1000 connections, 998 closed cleanly, 2 cut (1 still open at the deadline, dropped)"
        );
    }

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        let config = DrainConfig::new().reason("é".repeat(100));
        assert_eq!(config.reason.len(), 122);
        assert_eq!(
            DrainConfig::new().code(CloseCode::ABNORMAL).code,
            CloseCode::GOING_AWAY
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connections_get_even_times_and_admission_stops() {
        let drain = Drain::new();
        let mut slots: Vec<DrainSlot> = (0..4).map(|_| drain.register().unwrap()).collect();
        assert!(drain.start(DrainConfig::new().window(Duration::from_secs(2))));
        assert!(!drain.start(DrainConfig::new()), "the first start holds");
        assert!(drain.check().is_err());
        let refused = drain.register().unwrap_err();
        assert_eq!(refused.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let start = drain.registry.plan.get().unwrap().start;
        let mut offsets: Vec<Duration> = slots
            .iter_mut()
            .map(|slot| match slot.poll(None) {
                Some(DrainSignal::Close { at, code, .. }) => {
                    assert_eq!(code, CloseCode::GOING_AWAY);
                    at - start
                }
                _ => panic!("no close"),
            })
            .collect();
        offsets.sort();
        let millis = |ms| Duration::from_millis(ms);
        assert_eq!(
            offsets,
            [millis(0), millis(500), millis(1000), millis(1500)]
        );
        assert!(slots[0].poll(None).is_none(), "told once");
        slots[0].finish(true);
        slots[1].finish(false);
        drop(slots.remove(3));
        // One still open: the deadline (10 s) cuts it.
        let report = drain.wait().await;
        assert_eq!(
            (
                report.connections,
                report.clean,
                report.failed,
                report.abandoned
            ),
            (4, 1, 2, 1)
        );
        assert_eq!(report.elapsed, Duration::from_secs(10));
        assert!(matches!(slots[2].poll(None), Some(DrainSignal::Abort)));
        assert_eq!(drain.wait().await, report);
    }

    #[test]
    fn slots_are_reused_and_small() {
        let drain = Drain::new();
        let first: Vec<DrainSlot> = (0..CHUNK + 1).map(|_| drain.register().unwrap()).collect();
        assert_eq!(drain.registry.lock().chunks.len(), 2);
        let index = first[3].index;
        drop(first);
        let state = drain.registry.lock();
        assert_eq!(state.open_count(), 0);
        assert_eq!(state.free.len(), 2 * CHUNK);
        drop(state);
        let again: Vec<DrainSlot> = (0..CHUNK).map(|_| drain.register().unwrap()).collect();
        assert_eq!(drain.registry.lock().chunks.len(), 2, "no new chunk");
        assert!(again.iter().any(|slot| slot.index == index));
        // What an idle connection pays (bench scenario f).
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        assert_eq!(std::mem::size_of::<DrainSlot>(), 32);
    }
}
