//! [`RedisBackplane`]: the handle the hub and the application hold, the
//! state it shares with its task, and [`sockeye::hub::Backplane`] on it.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use fred::bytes_utils::Str;
use sockeye::hub::{Backplane, BackplaneLink, BackplaneStatus};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{RedisBackplaneBuilder, redact};

/// One envelope on its way to Redis.
pub(crate) struct Outgoing {
    /// The channel: prefix and topic.
    pub(crate) channel: Str,
    pub(crate) envelope: Bytes,
}

/// Where the backplane is in its life, for [`RedisBackplane::wait_connected`]
/// and [`RedisBackplane::closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not connected now (not started yet, connecting, or waiting to
    /// connect again).
    Connecting,
    /// Both connections up: publishes are taken (the subscriptions are
    /// being restored, or are).
    Connected,
    /// Stopped for good: shut down, dropped, or its hub is gone.
    Stopped,
}

/// Which pub/sub commands the current connection uses.
pub(crate) const MODE_UNKNOWN: u8 = 0;
pub(crate) const MODE_CLASSIC: u8 = 1;
pub(crate) const MODE_SHARDED: u8 = 2;

/// What the handle and the task share.
pub(crate) struct Shared {
    pub(crate) settings: RedisBackplaneBuilder,
    /// The server's address and credentials, parsed from the URL.
    pub(crate) server: fred::types::config::Config,
    queue: mpsc::Sender<Outgoing>,
    /// Taken by [`Backplane::start`]: `Some` until the task starts.
    queue_receiver: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// Topics whose subscription may have to change; see
    /// [`Backplane::subscribe`].
    hints: Mutex<HashSet<String>>,
    /// Hints are kept only while a session may use them: between sessions
    /// the next session's [`BackplaneLink::topics`] covers them, and a
    /// stopped backplane needs none.
    recording_hints: AtomicBool,
    pub(crate) hints_changed: Notify,
    pub(crate) stop: CancellationToken,
    phase: watch::Sender<Phase>,
    /// Publishes are taken only while this is set (a copy of the phase the
    /// hot path reads without a lock).
    connected: AtomicBool,
    pub(crate) mode: AtomicU8,
    pub(crate) queued_bytes: AtomicUsize,
    /// Envelopes in the batch being sent now; dropped if the connection
    /// ends before Redis answers.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) counters: Counters,
    last_error: Mutex<Option<String>>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) reconnects: AtomicU64,
    pub(crate) failed_connects: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) lost_incoming: AtomicU64,
    pub(crate) subscriptions: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.connected
            .store(phase == Phase::Connected, Ordering::Release);
        self.phase.send_if_modified(|current| {
            // Stopped is final.
            if *current == phase || *current == Phase::Stopped {
                return false;
            }
            *current = phase;
            true
        });
        if phase != Phase::Connected {
            self.mode.store(MODE_UNKNOWN, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_dropped(&self, envelopes: usize) {
        if envelopes > 0 {
            self.counters
                .dropped
                .fetch_add(envelopes as u64, Ordering::Relaxed);
        }
    }

    /// Drops every envelope waiting in `queue`, counting them.
    pub(crate) fn drop_queued(&self, queue: &mut mpsc::Receiver<Outgoing>) {
        let mut envelopes = 0;
        let mut bytes = 0;
        while let Ok(outgoing) = queue.try_recv() {
            envelopes += 1;
            bytes += outgoing.envelope.len();
        }
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.count_dropped(envelopes);
    }

    /// Keeps hints from now on, and forgets those from before: the caller
    /// reads [`BackplaneLink::topics`] next. (Sequentially consistent with
    /// the hint's check: a hint that finds this unset was sent for a
    /// change the topics read next include.)
    pub(crate) fn start_recording_hints(&self) {
        self.recording_hints.store(true, Ordering::SeqCst);
        lock(&self.hints).clear();
    }

    /// Ignores hints from now on.
    pub(crate) fn stop_recording_hints(&self) {
        self.recording_hints.store(false, Ordering::SeqCst);
        lock(&self.hints).clear();
    }

    /// The topics hinted since the last call.
    pub(crate) fn take_hints(&self) -> HashSet<String> {
        std::mem::take(&mut *lock(&self.hints))
    }

    pub(crate) fn record_error(&self, error: String) {
        *lock(&self.last_error) = Some(error);
    }

    /// The channel that carries `topic`.
    fn channel(&self, topic: &str) -> Str {
        let prefix = &self.settings.channel_prefix;
        let mut channel = String::with_capacity(prefix.len() + topic.len());
        channel.push_str(prefix);
        channel.push_str(topic);
        Str::from(channel)
    }

    /// Ends the task's life: nothing is taken any more.
    pub(crate) fn finish(&self, queue: &mut mpsc::Receiver<Outgoing>) {
        self.set_phase(Phase::Stopped);
        queue.close();
        self.drop_queued(queue);
        self.counters.subscriptions.store(0, Ordering::Relaxed);
    }
}

/// Carries a [`Hub`](sockeye::hub::Hub)'s topics to other nodes through
/// Redis pub/sub; see the [crate docs](crate).
///
/// Cloning is cheap, and clones are the same backplane: keep one to watch
/// [`RedisBackplane::status`] or to [shut it down](RedisBackplane::shutdown),
/// and give another to [`HubBuilder::backplane`](sockeye::hub::HubBuilder::backplane).
/// It stops when its hub is dropped, when [`RedisBackplane::shutdown`] is
/// called, or when the last clone is dropped.
///
/// One backplane serves one hub: a second [`Backplane::start`] is ignored.
#[derive(Clone)]
pub struct RedisBackplane {
    handle: Arc<Handle>,
}

/// Stops the task when the last clone of the backplane is dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        stop(&self.shared);
    }
}

fn stop(shared: &Shared) {
    shared.stop.cancel();
    // Never started: nothing else will mark it stopped.
    if let Some(mut queue) = lock(&shared.queue_receiver).take() {
        shared.finish(&mut queue);
    }
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("RedisBackplane")
            .field("url", &redact(&shared.settings.url))
            .field("channel_prefix", &shared.settings.channel_prefix)
            .field("status", &self.redis_status())
            .finish_non_exhaustive()
    }
}

/// A [`RedisBackplane`]'s state and counters: those of
/// [`BackplaneStatus`], and more; from [`RedisBackplane::redis_status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStatus {
    /// What every backplane reports (connected, reconnects, published,
    /// received, dropped, subscriptions).
    pub backplane: BackplaneStatus,
    /// Whether the current connection uses sharded pub/sub; `None` while
    /// not connected.
    pub sharded: Option<bool>,
    /// Envelopes waiting to be sent.
    pub queued: usize,
    /// Bytes of envelopes waiting to be sent.
    pub queued_bytes: usize,
    /// Connection attempts that failed.
    pub failed_connects: u64,
    /// Messages from Redis lost because the receive buffer overflowed (see
    /// [`RedisBackplaneBuilder::receive_buffer`]).
    pub lost_incoming: u64,
    /// Why the last connection attempt failed or the last connection
    /// ended, if one did.
    pub last_error: Option<String>,
}

impl RedisBackplane {
    /// A builder for a backplane on the Redis server at `url`:
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (port 6379 and
    /// database 0 by default). Nothing is checked or connected until
    /// [`RedisBackplaneBuilder::build`] and the hub's start.
    pub fn builder(url: &str) -> RedisBackplaneBuilder {
        RedisBackplaneBuilder::new(url)
    }

    /// A backplane on the Redis server at `url` with the default settings
    /// (see [`RedisBackplane::builder`]).
    ///
    /// # Errors
    /// As [`RedisBackplaneBuilder::build`].
    pub fn new(url: &str) -> Result<RedisBackplane, crate::ConfigError> {
        RedisBackplane::builder(url).build()
    }

    pub(crate) fn from_parts(
        settings: RedisBackplaneBuilder,
        server: fred::types::config::Config,
    ) -> RedisBackplane {
        let (queue, queue_receiver) = mpsc::channel(settings.queue_capacity);
        let shared = Arc::new(Shared {
            settings,
            server,
            queue,
            queue_receiver: Mutex::new(Some(queue_receiver)),
            hints: Mutex::new(HashSet::new()),
            recording_hints: AtomicBool::new(false),
            hints_changed: Notify::new(),
            stop: CancellationToken::new(),
            phase: watch::Sender::new(Phase::Connecting),
            connected: AtomicBool::new(false),
            mode: AtomicU8::new(MODE_UNKNOWN),
            queued_bytes: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        });
        RedisBackplane {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Whether it is connected now: both connections are up and publishes
    /// are taken. (After a reconnect, the subscriptions are restored right
    /// after this turns true; [`BackplaneStatus::subscriptions`] counts
    /// them as they are.)
    pub fn is_connected(&self) -> bool {
        self.shared().connected.load(Ordering::Acquire)
    }

    /// Whether it has stopped for good (shut down, or its hub is gone).
    pub fn is_stopped(&self) -> bool {
        *self.shared().phase.borrow() == Phase::Stopped
    }

    /// Waits until it is connected (returns `true`, at once if it is), or
    /// has stopped (returns `false`). Before the hub is built it waits for
    /// the hub's start and the first connection.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only watches the state, so dropping the future
    /// changes nothing.
    pub async fn wait_connected(&self) -> bool {
        let mut phase = self.shared().phase.subscribe();
        match phase.wait_for(|phase| *phase != Phase::Connecting).await {
            Ok(phase) => *phase == Phase::Connected,
            Err(_) => false,
        }
    }

    /// Stops it: the connections are closed, publishes are refused from
    /// now on (and counted as dropped), and the hub goes on delivering
    /// locally. Returns at once; [`RedisBackplane::closed`] waits until the
    /// connections are closed. Dropping every clone does the same.
    pub fn shutdown(&self) {
        stop(self.shared());
    }

    /// Waits until it has stopped for good (after
    /// [`RedisBackplane::shutdown`], or once its hub is dropped) and its
    /// connections are closed.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only watches the state, so dropping the future
    /// changes nothing.
    pub async fn closed(&self) {
        let mut phase = self.shared().phase.subscribe();
        let _ = phase.wait_for(|phase| *phase == Phase::Stopped).await;
    }

    /// The connection's state and counters, with the Redis-specific ones.
    pub fn redis_status(&self) -> RedisStatus {
        let shared = self.shared();
        let sharded = match shared.mode.load(Ordering::Relaxed) {
            MODE_CLASSIC => Some(false),
            MODE_SHARDED => Some(true),
            _ => None,
        };
        RedisStatus {
            backplane: self.status(),
            sharded,
            queued: shared
                .settings
                .queue_capacity
                .saturating_sub(shared.queue.capacity()),
            queued_bytes: shared.queued_bytes.load(Ordering::Relaxed),
            failed_connects: shared.counters.failed_connects.load(Ordering::Relaxed),
            lost_incoming: shared.counters.lost_incoming.load(Ordering::Relaxed),
            last_error: lock(&shared.last_error).clone(),
        }
    }
}

impl Backplane for RedisBackplane {
    /// Starts the task that connects, publishes and subscribes (on the
    /// current tokio runtime).
    ///
    /// # Panics
    /// Outside a tokio runtime (a [`Hub`](sockeye::hub::Hub) with this
    /// backplane must be built inside one).
    fn start(&self, link: BackplaneLink) {
        let shared = self.handle.shared.clone();
        let Some(queue) = lock(&shared.queue_receiver).take() else {
            // Started already, or shut down before the start.
            return;
        };
        tokio::spawn(crate::task::run(shared, link, queue));
    }

    /// Queues `envelope` for the channel of `topic`; `false` (and counted
    /// as dropped) when not connected, or when the queue is full in
    /// envelopes or bytes. Never waits.
    fn publish(&self, topic: &str, envelope: Bytes) -> bool {
        let shared = self.shared();
        if !shared.connected.load(Ordering::Acquire) {
            shared.count_dropped(1);
            return false;
        }
        let length = envelope.len();
        let before = shared.queued_bytes.fetch_add(length, Ordering::Relaxed);
        if before.saturating_add(length) > shared.settings.queue_bytes {
            shared.queued_bytes.fetch_sub(length, Ordering::Relaxed);
            shared.count_dropped(1);
            return false;
        }
        let outgoing = Outgoing {
            channel: shared.channel(topic),
            envelope,
        };
        if shared.queue.try_send(outgoing).is_err() {
            shared.queued_bytes.fetch_sub(length, Ordering::Relaxed);
            shared.count_dropped(1);
            return false;
        }
        true
    }

    /// Notes that `topic` may need subscribing; the task checks
    /// [`BackplaneLink::is_subscribed`] when it gets to it, so hints that
    /// arrive out of order or twice are harmless.
    fn subscribe(&self, topic: &str) {
        self.hint(topic);
    }

    /// Notes that `topic` may need unsubscribing; see
    /// [`RedisBackplane::subscribe`](Backplane::subscribe).
    fn unsubscribe(&self, topic: &str) {
        self.hint(topic);
    }

    fn status(&self) -> BackplaneStatus {
        let shared = self.shared();
        let counters = &shared.counters;
        BackplaneStatus::new(
            shared.connected.load(Ordering::Acquire),
            counters.reconnects.load(Ordering::Relaxed),
            counters.published.load(Ordering::Relaxed),
            counters.received.load(Ordering::Relaxed),
            counters.dropped.load(Ordering::Relaxed),
            counters.subscriptions.load(Ordering::Relaxed),
        )
    }

    /// The hub was dropped: closes the connections at once, as
    /// [`RedisBackplane::shutdown`] does.
    fn stop(&self) {
        self.shutdown();
    }
}

impl RedisBackplane {
    fn hint(&self, topic: &str) {
        let shared = self.shared();
        if !shared.recording_hints.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut hints = lock(&shared.hints);
            if !hints.contains(topic) {
                hints.insert(topic.to_owned());
            }
        }
        shared.hints_changed.notify_one();
    }
}
