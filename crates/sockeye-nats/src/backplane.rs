//! [`NatsBackplane`]: the hub's side of the backplane (every method the
//! hub calls returns at once) and the state it shares with the tasks that
//! talk to NATS.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use sockeye::hub::{Backplane, BackplaneLink, BackplaneStatus};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{NatsBackplaneBuilder, Settings};
use crate::task;

/// The NATS server's default `max_payload`: what envelopes may weigh until
/// a server says otherwise.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// A [`Backplane`] over NATS core publish/subscribe; see the
/// [crate docs](crate) for its semantics.
///
/// Give it to one hub ([`HubBuilder::backplane`], or
/// [`HubBuilder::shared_backplane`] to keep a handle on it). It connects
/// when the hub starts it, on a thread of its own (named `sockeye-nats`),
/// and stops when the hub or the backplane is dropped, whichever comes
/// first. Starting it a second time (with another hub) does nothing.
///
/// [`HubBuilder::backplane`]: sockeye::hub::HubBuilder::backplane
/// [`HubBuilder::shared_backplane`]: sockeye::hub::HubBuilder::shared_backplane
pub struct NatsBackplane {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NatsBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBackplane")
            .field("subject_prefix", &self.shared.settings.prefix.as_str())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Where a backplane stands, for [`NatsBackplane::wait_connected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not connected yet, or not any more.
    Disconnected,
    Connected,
    /// Stopped for good.
    Stopped,
}

/// One envelope on its way out.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The connection it was accepted on (see [`Shared::epoch`]).
    pub(crate) epoch: u64,
    pub(crate) subject: String,
    pub(crate) envelope: Bytes,
}

/// The counters behind [`BackplaneStatus`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reconnects: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) subscriptions: AtomicUsize,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

/// What the hub's calls and the backplane's tasks share.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    queue: mpsc::Sender<Outgoing>,
    /// The queue's receiving end, until the backplane is started.
    queue_receiver: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// Counts connection changes: odd while connected, even while not. An
    /// envelope is only handed to the NATS client while the epoch it was
    /// accepted in lasts, so envelopes accepted before an outage are not
    /// sent after it.
    pub(crate) epoch: AtomicU64,
    /// Whether a connection was ever made (the next ones are reconnects).
    connected_before: AtomicBool,
    /// The server's `max_payload`.
    pub(crate) max_payload: AtomicUsize,
    pub(crate) counters: Counters,
    /// Topics whose subscription hint has not been looked at yet. Hints
    /// for one topic coalesce, so this never holds more than the topics
    /// touched since the last look, and the hub never waits for it.
    hints: Mutex<HashSet<String>>,
    /// Wakes the driver task: new hints, or a connection change.
    pub(crate) wake: Notify,
    /// Stops every task of the backplane.
    pub(crate) stop: CancellationToken,
    phase: watch::Sender<Phase>,
}

impl Shared {
    fn hints(&self) -> MutexGuard<'_, HashSet<String>> {
        self.hints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that `topic` may need subscribing or unsubscribing.
    fn hint(&self, topic: &str) {
        if self.stop.is_cancelled() {
            return;
        }
        {
            let mut hints = self.hints();
            if !hints.contains(topic) {
                hints.insert(topic.to_owned());
            }
        }
        self.wake.notify_one();
    }

    /// The topics hinted since the last call.
    pub(crate) fn take_hints(&self) -> Vec<String> {
        self.hints().drain().collect()
    }

    /// Whether a connection is up now.
    pub(crate) fn is_connected(&self) -> bool {
        self.epoch.load(Ordering::Acquire) % 2 == 1
    }

    /// Records that the connection is up or down; does nothing if it was
    /// so already (events and polling both report it).
    pub(crate) fn set_connected(&self, up: bool) {
        let mut epoch = self.epoch.load(Ordering::Acquire);
        loop {
            if (epoch % 2 == 1) == up {
                return;
            }
            match self.epoch.compare_exchange_weak(
                epoch,
                epoch + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => epoch = now,
            }
        }
        if up && self.connected_before.swap(true, Ordering::Relaxed) {
            Counters::add(&self.counters.reconnects, 1);
        }
        let phase = if up {
            Phase::Connected
        } else {
            Phase::Disconnected
        };
        self.phase.send_if_modified(|now| {
            if *now == Phase::Stopped || *now == phase {
                return false;
            }
            *now = phase;
            true
        });
        self.wake.notify_one();
    }

    /// Stops the backplane for good.
    pub(crate) fn shut_down(&self) {
        self.stop.cancel();
        self.set_connected(false);
        self.phase.send_replace(Phase::Stopped);
    }
}

impl NatsBackplane {
    /// A builder, with every setting at its default.
    pub fn builder() -> NatsBackplaneBuilder {
        NatsBackplaneBuilder::default()
    }

    pub(crate) fn new(settings: Settings) -> NatsBackplane {
        let (queue, queue_receiver) = mpsc::channel(settings.queue_capacity);
        NatsBackplane {
            shared: Arc::new(Shared {
                settings,
                queue,
                queue_receiver: Mutex::new(Some(queue_receiver)),
                epoch: AtomicU64::new(0),
                connected_before: AtomicBool::new(false),
                max_payload: AtomicUsize::new(DEFAULT_MAX_PAYLOAD),
                counters: Counters::default(),
                hints: Mutex::new(HashSet::new()),
                wake: Notify::new(),
                stop: CancellationToken::new(),
                phase: watch::Sender::new(Phase::Disconnected),
            }),
        }
    }

    /// The NATS subject `topic` travels on, or `None` if it would be longer
    /// than [`MAX_SUBJECT_LEN`](crate::subject::MAX_SUBJECT_LEN) (then the
    /// topic stays local). See [`subject`](crate::subject) for the mapping.
    pub fn subject(&self, topic: &str) -> Option<String> {
        self.shared.settings.prefix.subject(topic)
    }

    /// The topic a NATS subject stands for, or `None` if the subject is
    /// not one this backplane would use.
    pub fn topic(&self, subject: &str) -> Option<String> {
        self.shared.settings.prefix.topic(subject)
    }

    /// The subject prefix, with its final dot (`sockeye.`), or the empty
    /// string.
    pub fn subject_prefix(&self) -> &str {
        self.shared.settings.prefix.as_str()
    }

    /// Waits until the backplane is connected to a NATS server (at once if
    /// it is), and returns `true`; returns `false` instead once it has
    /// stopped (its hub or the backplane dropped). Before a hub has started
    /// the backplane, it waits for that too. Applications can await this
    /// before reporting ready, or bound it with a timeout.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only watches the backplane's state, which it does
    /// not change.
    pub async fn wait_connected(&self) -> bool {
        let mut phase = self.shared.phase.subscribe();
        match phase
            .wait_for(|phase| matches!(phase, Phase::Connected | Phase::Stopped))
            .await
        {
            Ok(phase) => *phase == Phase::Connected,
            Err(_) => false,
        }
    }

    /// Whether the backplane has stopped for good: its hub or the backplane
    /// was dropped.
    pub fn is_stopped(&self) -> bool {
        self.shared.stop.is_cancelled()
    }
}

impl Drop for NatsBackplane {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl Backplane for NatsBackplane {
    /// Starts the backplane's thread, which connects (retrying with backoff
    /// until a server answers) and serves this hub until it is dropped.
    /// Needs no tokio runtime. A second call is ignored.
    fn start(&self, link: BackplaneLink) {
        let receiver = self
            .shared
            .queue_receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(receiver) = receiver else {
            return;
        };
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sockeye-nats".to_owned())
            .spawn(move || task::run_thread(shared, link, receiver));
        if spawned.is_err() {
            self.shared.shut_down();
        }
    }

    /// Queues the envelope for the NATS connection; `false` at once if no
    /// connection is up, the queue is full, the envelope is larger than the
    /// server's `max_payload`, or the topic's subject is too long. Never
    /// waits (one atomic load and a bounded channel's `try_send`).
    fn publish(&self, topic: &str, envelope: Bytes) -> bool {
        let shared = &self.shared;
        let epoch = shared.epoch.load(Ordering::Acquire);
        let accepted = epoch % 2 == 1
            && envelope.len() <= shared.max_payload.load(Ordering::Relaxed)
            && match shared.settings.prefix.subject(topic) {
                Some(subject) => shared
                    .queue
                    .try_send(Outgoing {
                        epoch,
                        subject,
                        envelope,
                    })
                    .is_ok(),
                None => false,
            };
        if !accepted {
            Counters::add(&shared.counters.dropped, 1);
        }
        accepted
    }

    /// Notes the hint; the backplane's task then subscribes if
    /// [`BackplaneLink::is_subscribed`] says so. Never waits.
    fn subscribe(&self, topic: &str) {
        self.shared.hint(topic);
    }

    /// Notes the hint; the backplane's task then unsubscribes unless
    /// [`BackplaneLink::is_subscribed`] says otherwise. Never waits.
    fn unsubscribe(&self, topic: &str) {
        self.shared.hint(topic);
    }

    fn status(&self) -> BackplaneStatus {
        let counters = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BackplaneStatus::new(
            self.shared.is_connected(),
            read(&counters.reconnects),
            read(&counters.published),
            read(&counters.received),
            read(&counters.dropped),
            counters.subscriptions.load(Ordering::Relaxed),
        )
    }

    /// The hub was dropped: stops the backplane's thread and closes its
    /// connection at once.
    fn stop(&self) {
        self.shared.shut_down();
    }
}
