//! Publish/subscribe: topics that many connections subscribe to, and
//! messages published to all of them at once (chat rooms, live
//! dashboards, market feeds, game lobbies, notifications).
//!
//! A complete chat server: every message a client sends goes to everyone
//! else in the room.
//!
//! ```
//! use sockeye::hub::Hub;
//! use sockeye::ServerBuilder;
//! use tokio::net::TcpListener;
//!
//! async fn chat_server(listener: TcpListener, hub: Hub) -> std::io::Result<()> {
//!     let server = ServerBuilder::new();
//!     loop {
//!         let (tcp, _) = listener.accept().await?;
//!         let (server, hub) = (server.clone(), hub.clone());
//!         tokio::spawn(async move {
//!             let Ok(ws) = server.accept_tcp(tcp).await else { return };
//!             let (mut receiver, sender) = ws.split();
//!             // The hub writes to the client from now on; `me` is its handle.
//!             let me = hub.attach(sender);
//!             me.subscribe("lobby");
//!             while let Some(Ok(message)) = receiver.recv().await {
//!                 hub.publish_excluding("lobby", message, &me);
//!             }
//!             // Dropping `me` leaves every topic.
//!         });
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     use std::time::Duration;
//! #     use sockeye::Message;
//! #     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let url = format!("ws://{}/", listener.local_addr().unwrap());
//! #     let hub = Hub::new();
//! #     tokio::spawn(chat_server(listener, hub.clone()));
//! #     // Two clients talk through it.
//! #     tokio::time::timeout(Duration::from_secs(10), async {
//! #         let (mut alice, _) = sockeye::connect(&url).await.unwrap();
//! #         let (mut bob, _) = sockeye::connect(&url).await.unwrap();
//! #         while hub.subscriber_count("lobby") < 2 {
//! #             tokio::time::sleep(Duration::from_millis(1)).await;
//! #         }
//! #         alice.send(Message::text("hi bob")).await.unwrap();
//! #         assert_eq!(bob.recv().await.unwrap().unwrap().as_text(), Some("hi bob"));
//! #         bob.send(Message::text("hi alice")).await.unwrap();
//! #         assert_eq!(alice.recv().await.unwrap().unwrap().as_text(), Some("hi alice"));
//! #     })
//! #     .await
//! #     .expect("the chat server answers");
//! # }
//! ```
//!
//! # How it works
//! - [`Hub::attach`] takes the sending half of a connection
//!   ([`WebSocket::split`](crate::WebSocket::split), including
//!   connections upgraded from hyper or axum) and starts a small task that
//!   writes to it. The [`Subscriber`] it returns subscribes to and
//!   unsubscribes from any number of topics, sends to that one
//!   connection, and leaves every topic when dropped.
//! - [`Hub::publish`] frames a message once, and compresses it once for
//!   every subscriber whose permessage-deflate parameters allow sharing
//!   (no context takeover); subscribers with context takeover compress
//!   their own copy, as RFC 7692 requires (see
//!   [`PreparedMessage`]).
//! - Each subscriber has a bounded queue. Publishing never waits: a
//!   subscriber whose queue is full is handled by the [`SlowPolicy`] the
//!   application chose (close it with 1008, drop its oldest message, or
//!   drop the newest). Whatever piles up in a queue while its connection
//!   is busy leaves in one write.
//! - Publishing to a topic nobody subscribes to costs a hash lookup.
//! - [`Hub::stats`], [`Hub::subscriber_count`], [`Subscriber::queue_depth`]
//!   and [`Hub::backplane_status`] are there for metrics.
//!
//! # More than one machine
//! A [`Backplane`] (`sockeye-redis`, `sockeye-nats`, or your own) carries
//! topics between nodes; see the [`backplane`] module for its semantics
//! (at most once across nodes, in order per publishing node, local
//! delivery unaffected by a backplane outage).

pub mod backplane;
mod mailbox;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use sockeye_proto::{CloseCode, Message, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};

pub use backplane::{Backplane, BackplaneLink, BackplaneStatus, Delivered, NodeId};
pub use mailbox::SlowPolicy;

use mailbox::{Mailbox, Offer};

use crate::tokio::SendHalf;

/// Messages queued for one subscriber before it counts as slow, by
/// default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// How long writing to a subscriber may make no progress (not a byte
/// written) before it is closed as stalled (1008), by default.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Topics and their subscribers; see the [module docs](self).
///
/// Cloning is cheap: clones share the topics.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<HubShared>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("node", &self.shared.node)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Hub`]; from [`Hub::builder`].
#[derive(Clone)]
#[must_use]
pub struct HubBuilder {
    queue_capacity: usize,
    slow_policy: SlowPolicy,
    stall_timeout: Duration,
    node: Option<NodeId>,
    backplane: Option<Arc<dyn Backplane>>,
}

impl std::fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBuilder")
            .field("queue_capacity", &self.queue_capacity)
            .field("slow_policy", &self.slow_policy)
            .field("stall_timeout", &self.stall_timeout)
            .field("node", &self.node)
            .field("backplane", &self.backplane.is_some())
            .finish()
    }
}

impl Default for HubBuilder {
    fn default() -> HubBuilder {
        HubBuilder {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            slow_policy: SlowPolicy::default(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            node: None,
            backplane: None,
        }
    }
}

impl HubBuilder {
    /// Messages queued for one subscriber before the [`SlowPolicy`]
    /// applies (at least 1). Default: [`DEFAULT_QUEUE_CAPACITY`] (1024).
    pub fn queue_capacity(mut self, messages: usize) -> HubBuilder {
        self.queue_capacity = messages.max(1);
        self
    }

    /// What happens to a subscriber whose queue is full. Default:
    /// [`SlowPolicy::Close`] (close with 1008).
    pub fn slow_policy(mut self, policy: SlowPolicy) -> HubBuilder {
        self.slow_policy = policy;
        self
    }

    /// How long writing one batch of queued messages may make no progress
    /// (the client not reading: not a byte written) before the subscriber
    /// is closed with 1008, whatever the [`SlowPolicy`]. A client that
    /// keeps reading is not stalled, however long its backlog takes.
    /// Default: [`DEFAULT_STALL_TIMEOUT`] (10 s).
    pub fn stall_timeout(mut self, timeout: Duration) -> HubBuilder {
        self.stall_timeout = timeout;
        self
    }

    /// This node's id on the backplane. Default: random
    /// ([`NodeId::random`]).
    pub fn node_id(mut self, node: NodeId) -> HubBuilder {
        self.node = Some(node);
        self
    }

    /// Carries topics to and from other nodes. Default: none (one
    /// process).
    pub fn backplane(mut self, backplane: impl Backplane) -> HubBuilder {
        self.backplane = Some(Arc::new(backplane));
        self
    }

    /// Like [`HubBuilder::backplane`], for a backplane the application
    /// also holds.
    pub fn shared_backplane(mut self, backplane: Arc<dyn Backplane>) -> HubBuilder {
        self.backplane = Some(backplane);
        self
    }

    /// Builds the hub and starts its backplane, if any (which needs a
    /// tokio runtime for most backplanes).
    pub fn build(self) -> Hub {
        let node = self.node.unwrap_or_else(NodeId::random);
        let shared = Arc::new(HubShared {
            topics: RwLock::new(HashMap::new()),
            mailboxes: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            queue_capacity: self.queue_capacity,
            slow_policy: self.slow_policy,
            stall_timeout: self.stall_timeout,
            node,
            backplane: self.backplane,
            counters: Counters::default(),
        });
        if let Some(backplane) = &shared.backplane {
            backplane.start(BackplaneLink {
                hub: Arc::downgrade(&shared),
                node,
            });
        }
        Hub { shared }
    }
}

/// The hub's counters; see [`HubStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    received_remote: AtomicU64,
    queued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_slow: AtomicU64,
    pub(crate) dropped_closed: AtomicU64,
    dropped_backplane: AtomicU64,
    kicked: AtomicU64,
    pub(crate) stalled: AtomicU64,
    invalid_envelopes: AtomicU64,
}

/// A snapshot of a hub's counters and sizes, from [`Hub::stats`]. Counters
/// count from the hub's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Topics with at least one local subscriber.
    pub topics: usize,
    /// Subscribers attached (connections the hub writes to).
    pub subscribers: usize,
    /// Subscriptions: (subscriber, topic) pairs.
    pub subscriptions: usize,
    /// Messages published on this node ([`Hub::publish`] and the like).
    pub published: u64,
    /// Messages received from other nodes through the backplane.
    pub received_remote: u64,
    /// Messages queued for subscribers: one per subscriber a publication
    /// reached, and one per [`Subscriber::send`].
    pub queued: u64,
    /// Messages handed to subscribers' connections.
    pub delivered: u64,
    /// Messages dropped by [`SlowPolicy::DropOldest`] or
    /// [`SlowPolicy::DropNewest`].
    pub dropped_full: u64,
    /// Messages lost with subscribers closed for being slow
    /// ([`SlowPolicy::Close`]): what they had queued and the message that
    /// found the queue full.
    pub dropped_slow: u64,
    /// Messages still queued when their connection ended, or when their
    /// [`Subscriber`] was dropped before it had one.
    pub dropped_closed: u64,
    /// Publishes the backplane could not take (unreachable, or its queue
    /// full): messages other nodes did not get.
    pub dropped_backplane: u64,
    /// Subscribers closed because their queue was full.
    pub kicked: u64,
    /// Subscribers closed because a write made no progress for the stall
    /// timeout.
    pub stalled: u64,
    /// Envelopes from the backplane that did not decode.
    pub invalid_envelopes: u64,
    /// Messages queued now, over all subscribers.
    pub queue_depth_total: usize,
    /// The longest queue now.
    pub queue_depth_max: usize,
}

pub(crate) struct HubShared {
    /// Each topic's subscribers. Lock order: this, then a mailbox's
    /// positions, then a mailbox's state.
    topics: RwLock<HashMap<Arc<str>, Vec<Arc<Mailbox>>>>,
    /// Every attached subscriber, for metrics.
    mailboxes: RwLock<HashMap<u64, Arc<Mailbox>>>,
    next_id: AtomicU64,
    queue_capacity: usize,
    slow_policy: SlowPolicy,
    stall_timeout: Duration,
    node: NodeId,
    backplane: Option<Arc<dyn Backplane>>,
    pub(crate) counters: Counters,
}

impl Drop for HubShared {
    fn drop(&mut self) {
        if let Some(backplane) = &self.backplane {
            backplane.stop();
        }
    }
}

/// What one local publication (or one direct send) did, added to the
/// counters at once.
#[derive(Default)]
struct Tally {
    queued: u64,
    dropped_full: u64,
    dropped_slow: u64,
    kicked: u64,
}

impl Tally {
    /// Adds what one offer to a mailbox did.
    fn add(&mut self, offer: Offer) {
        match offer {
            Offer::Queued => self.queued += 1,
            Offer::DroppedOldest => {
                self.queued += 1;
                self.dropped_full += 1;
            }
            Offer::DroppedNewest => self.dropped_full += 1,
            Offer::Kicked(lost) => {
                // Once per subscriber: its queue is closed from then on.
                self.dropped_slow += lost;
                self.kicked += 1;
            }
            Offer::Gone => {}
        }
    }
}

impl HubShared {
    fn topics(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Vec<Arc<Mailbox>>>> {
        self.topics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn topics_mut(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Vec<Arc<Mailbox>>>> {
        self.topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mailboxes_mut(&self) -> RwLockWriteGuard<'_, HashMap<u64, Arc<Mailbox>>> {
        self.mailboxes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `message` for the local subscribers of `topic` but
    /// `except`; returns how many it was queued for. The message is
    /// prepared (one allocation) only if someone subscribes.
    fn publish_local(&self, topic: &str, message: &Message, except: Option<u64>) -> usize {
        let topics = self.topics();
        let Some(subscribers) = topics.get(topic) else {
            return 0;
        };
        let prepared = PreparedMessage::new(message.clone());
        let mut tally = Tally::default();
        for mailbox in subscribers {
            if Some(mailbox.id) == except {
                continue;
            }
            tally.add(mailbox.offer(&prepared));
        }
        drop(topics);
        self.count(&tally);
        tally.queued as usize
    }

    /// Adds a tally to the counters.
    fn count(&self, tally: &Tally) {
        let counters = &self.counters;
        if tally.queued > 0 {
            counters.queued.fetch_add(tally.queued, Ordering::Relaxed);
        }
        if tally.dropped_full > 0 {
            counters
                .dropped_full
                .fetch_add(tally.dropped_full, Ordering::Relaxed);
        }
        if tally.dropped_slow > 0 {
            counters
                .dropped_slow
                .fetch_add(tally.dropped_slow, Ordering::Relaxed);
        }
        if tally.kicked > 0 {
            counters.kicked.fetch_add(tally.kicked, Ordering::Relaxed);
        }
    }

    /// Publishes locally, then to the backplane.
    fn publish(&self, topic: &str, message: Message, except: Option<u64>) -> usize {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        let queued = self.publish_local(topic, &message, except);
        if let Some(backplane) = &self.backplane {
            let envelope = backplane::encode_envelope(self.node, &message);
            if !backplane.publish(topic, envelope) {
                self.counters
                    .dropped_backplane
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        queued
    }

    /// A message another node published: local subscribers only.
    pub(crate) fn deliver_remote(&self, topic: &str, message: Message) -> usize {
        self.counters
            .received_remote
            .fetch_add(1, Ordering::Relaxed);
        self.publish_local(topic, &message, None)
    }

    pub(crate) fn count_invalid_envelope(&self) {
        self.counters
            .invalid_envelopes
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn has_local_subscribers(&self, topic: &str) -> bool {
        self.topics().contains_key(topic)
    }

    pub(crate) fn local_topics(&self) -> Vec<String> {
        self.topics()
            .keys()
            .map(|topic| topic.to_string())
            .collect()
    }

    /// Adds `mailbox` to `topic`; `false` if it was there already or has
    /// ended.
    fn subscribe(&self, mailbox: &Arc<Mailbox>, topic: &str) -> bool {
        let first = {
            let mut topics = self.topics_mut();
            if mailbox.status() == mailbox::Status::Ended {
                return false;
            }
            let mut positions = mailbox.positions();
            if positions.contains_key(topic) {
                return false;
            }
            let key: Arc<str> = match topics.get_key_value(topic) {
                Some((key, _)) => key.clone(),
                None => Arc::from(topic),
            };
            let subscribers = topics.entry(key.clone()).or_default();
            positions.insert(key, subscribers.len());
            subscribers.push(mailbox.clone());
            subscribers.len() == 1
        };
        if first && let Some(backplane) = &self.backplane {
            backplane.subscribe(topic);
        }
        true
    }

    /// Removes `mailbox` from `topic`; `false` if it was not there.
    fn unsubscribe(&self, mailbox: &Mailbox, topic: &str) -> bool {
        let emptied = {
            let mut topics = self.topics_mut();
            let Some((key, index)) = mailbox.positions().remove_entry(topic) else {
                return false;
            };
            remove_at(&mut topics, key, index)
        };
        if let (Some(topic), Some(backplane)) = (emptied, &self.backplane) {
            backplane.unsubscribe(&topic);
        }
        true
    }

    /// Removes `mailbox` from every topic and from the hub.
    pub(crate) fn remove_mailbox(&self, mailbox: &Mailbox) {
        let emptied: Vec<Arc<str>> = {
            let mut topics = self.topics_mut();
            let positions: Vec<(Arc<str>, usize)> = mailbox.positions().drain().collect();
            positions
                .into_iter()
                .filter_map(|(key, index)| remove_at(&mut topics, key, index))
                .collect()
        };
        self.mailboxes_mut().remove(&mailbox.id);
        if let Some(backplane) = &self.backplane {
            for topic in emptied {
                backplane.unsubscribe(&topic);
            }
        }
    }
}

/// Removes the subscriber at `index` of topic `key` (the caller has
/// removed it from that subscriber's positions); returns the topic if it
/// is left with no subscriber, and is then gone from the map.
fn remove_at(
    topics: &mut HashMap<Arc<str>, Vec<Arc<Mailbox>>>,
    key: Arc<str>,
    index: usize,
) -> Option<Arc<str>> {
    let subscribers = topics.get_mut(&key)?;
    if index >= subscribers.len() {
        return None;
    }
    subscribers.swap_remove(index);
    if let Some(moved) = subscribers.get(index) {
        moved.positions().insert(key.clone(), index);
    }
    if subscribers.is_empty() {
        topics.remove(&key);
        return Some(key);
    }
    None
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new()
    }
}

impl Hub {
    /// A hub with the default settings and no backplane.
    pub fn new() -> Hub {
        HubBuilder::default().build()
    }

    /// A builder for a hub with other settings or a backplane.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// Attaches a connection: the hub writes to it from now on (from a task
    /// it spawns on the current tokio runtime), and the returned
    /// [`Subscriber`] is the application's handle on it. The connection's
    /// receiving half stays with the application.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn attach<S>(&self, sender: SendHalf<S>) -> Subscriber
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let subscriber = self.subscriber();
        subscriber.attach(sender);
        subscriber
    }

    /// A subscriber with no connection yet: it can subscribe, and what is
    /// published to it queues (under its [`SlowPolicy`]) until
    /// [`Subscriber::attach`] gives it one. A server subscribes this way
    /// before it answers the handshake, so that a client that sees itself
    /// connected already receives what is published.
    pub fn subscriber(&self) -> Subscriber {
        let shared = &self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mailbox = Arc::new(Mailbox::new(id, shared.queue_capacity, shared.slow_policy));
        shared.mailboxes_mut().insert(id, mailbox.clone());
        Subscriber {
            mailbox,
            hub: self.clone(),
        }
    }

    /// Publishes `message` to every subscriber of `topic`, on this node
    /// and, through the backplane, on the others. Returns how many local
    /// subscribers it was queued for. Never waits.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> usize {
        self.shared.publish(topic, message.into(), None)
    }

    /// Like [`Hub::publish`], to everyone but `except` (typically the
    /// sender).
    pub fn publish_excluding(
        &self,
        topic: &str,
        message: impl Into<Message>,
        except: &Subscriber,
    ) -> usize {
        self.shared
            .publish(topic, message.into(), Some(except.mailbox.id))
    }

    /// Local subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.shared.topics().get(topic).map_or(0, Vec::len)
    }

    /// Every topic with local subscribers, and how many each has.
    pub fn topics(&self) -> Vec<(String, usize)> {
        self.shared
            .topics()
            .iter()
            .map(|(topic, subscribers)| (topic.to_string(), subscribers.len()))
            .collect()
    }

    /// A handle that does not keep the hub alive.
    pub fn downgrade(&self) -> WeakHub {
        WeakHub {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// This node's id on the backplane.
    pub fn node_id(&self) -> NodeId {
        self.shared.node
    }

    /// The backplane's state and counters, if there is one.
    pub fn backplane_status(&self) -> Option<BackplaneStatus> {
        self.shared
            .backplane
            .as_ref()
            .map(|backplane| backplane.status())
    }

    /// The hub's counters and sizes now.
    pub fn stats(&self) -> HubStats {
        let shared = &self.shared;
        let (topics, subscriptions) = {
            let topics = shared.topics();
            (topics.len(), topics.values().map(Vec::len).sum())
        };
        let (subscribers, queue_depth_total, queue_depth_max) = {
            let mailboxes = shared
                .mailboxes
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut total = 0;
            let mut max = 0;
            for mailbox in mailboxes.values() {
                let depth = mailbox.depth();
                total += depth;
                max = max.max(depth);
            }
            (mailboxes.len(), total, max)
        };
        let counters = &shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        HubStats {
            topics,
            subscribers,
            subscriptions,
            published: read(&counters.published),
            received_remote: read(&counters.received_remote),
            queued: read(&counters.queued),
            delivered: read(&counters.delivered),
            dropped_full: read(&counters.dropped_full),
            dropped_slow: read(&counters.dropped_slow),
            dropped_closed: read(&counters.dropped_closed),
            dropped_backplane: read(&counters.dropped_backplane),
            kicked: read(&counters.kicked),
            stalled: read(&counters.stalled),
            invalid_envelopes: read(&counters.invalid_envelopes),
            queue_depth_total,
            queue_depth_max,
        }
    }
}

/// Where a subscriber stands, from [`Subscriber::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriberState {
    /// Messages are queued for it and written.
    Open,
    /// [`Subscriber::close`] was called: what was queued before is
    /// written, then the Close frame.
    Closing,
    /// Closed by the hub with 1008 because its queue was full
    /// ([`SlowPolicy::Close`]).
    TooSlow,
    /// Closed by the hub with 1008 because a write made no progress for
    /// the stall timeout ([`HubBuilder::stall_timeout`]).
    Stalled,
    /// Its connection ended, or the handle was dropped.
    Ended,
}

/// A handle on a [`Hub`] that does not keep it alive, from
/// [`Hub::downgrade`] (for a task that should end with the hub, such as a
/// metrics reporter).
#[derive(Clone, Debug)]
pub struct WeakHub {
    shared: std::sync::Weak<HubShared>,
}

impl WeakHub {
    /// The hub, if it still exists.
    pub fn upgrade(&self) -> Option<Hub> {
        self.shared.upgrade().map(|shared| Hub { shared })
    }
}

/// Which subscriber: unique within its hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

/// The application's handle on one attached connection, from
/// [`Hub::attach`]. Dropping it leaves every topic; what was already
/// queued is still written.
pub struct Subscriber {
    mailbox: Arc<Mailbox>,
    hub: Hub,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.mailbox.id)
            .field("queue_depth", &self.queue_depth())
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// This subscriber's id.
    pub fn id(&self) -> SubscriberId {
        SubscriberId(self.mailbox.id)
    }

    /// Gives a subscriber from [`Hub::subscriber`] its connection: the hub
    /// writes to it from now on, from a task spawned on the current tokio
    /// runtime. Returns `false`, and drops `sender`, if it already has
    /// one.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn attach<S>(&self, sender: SendHalf<S>) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.mailbox.attached.swap(true, Ordering::AcqRel) {
            return false;
        }
        let shared = &self.hub.shared;
        tokio::spawn(writer::run(
            self.mailbox.clone(),
            Arc::downgrade(shared),
            sender,
            shared.stall_timeout,
        ));
        true
    }

    /// Subscribes to `topic`. Returns `false` if it was subscribed
    /// already, or its connection has ended.
    pub fn subscribe(&self, topic: &str) -> bool {
        self.hub.shared.subscribe(&self.mailbox, topic)
    }

    /// Unsubscribes from `topic`. Returns `false` if it was not
    /// subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.hub.shared.unsubscribe(&self.mailbox, topic)
    }

    /// The topics it subscribes to.
    pub fn topics(&self) -> Vec<String> {
        self.mailbox
            .positions()
            .keys()
            .map(|topic| topic.to_string())
            .collect()
    }

    /// Queues a message for this connection alone, behind what is queued
    /// and under the same [`SlowPolicy`]. Returns whether it was queued.
    pub fn send(&self, message: impl Into<Message>) -> bool {
        let prepared = PreparedMessage::new(message.into());
        let offer = self.mailbox.offer(&prepared);
        // Counted as a publication's are, so that what is delivered adds
        // up with what was queued.
        let mut tally = Tally::default();
        tally.add(offer);
        self.hub.shared.count(&tally);
        matches!(offer, Offer::Queued | Offer::DroppedOldest)
    }

    /// Closes the connection with `code` and `reason` once what is queued
    /// has been written; nothing queued after it is taken. Returns `false`
    /// if it was closing already or has ended.
    pub fn close(&self, code: CloseCode, reason: &str) -> bool {
        self.mailbox.close(code, reason.to_owned())
    }

    /// Messages waiting to be written to it.
    pub fn queue_depth(&self) -> usize {
        self.mailbox.depth()
    }

    /// Messages written to its connection so far.
    pub fn delivered(&self) -> u64 {
        self.mailbox.delivered.load(Ordering::Relaxed)
    }

    /// Messages it lost: dropped by the [`SlowPolicy`], or still queued
    /// when it was closed.
    pub fn dropped(&self) -> u64 {
        self.mailbox.dropped.load(Ordering::Relaxed)
    }

    /// Whether the hub still takes messages for it (not closing, closed
    /// for being slow, or ended).
    pub fn is_open(&self) -> bool {
        self.mailbox.status() == mailbox::Status::Open
    }

    /// Where it stands: open, closing, closed by the hub (and why), or
    /// ended.
    pub fn state(&self) -> SubscriberState {
        use mailbox::{Cause, Status};
        match self.mailbox.status_and_cause() {
            (_, Some(Cause::Slow)) => SubscriberState::TooSlow,
            (_, Some(Cause::Stalled)) => SubscriberState::Stalled,
            (Status::Open, None) => SubscriberState::Open,
            (Status::Closing, None) => SubscriberState::Closing,
            (Status::Kicked, None) => SubscriberState::TooSlow,
            (Status::Detached | Status::Ended, None) => SubscriberState::Ended,
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.mailbox.detach();
        if !self.mailbox.attached.load(Ordering::Acquire) {
            // No writer will write what is queued, nor count it: it is
            // lost now.
            let lost = self.mailbox.end();
            let counters = &self.hub.shared.counters;
            counters.dropped_closed.fetch_add(lost, Ordering::Relaxed);
        }
        self.hub.shared.remove_mailbox(&self.mailbox);
    }
}
