//! A NATS backplane for sockeye's publish/subscribe [`Hub`]: topics carried
//! between nodes (processes, machines) over NATS core publish/subscribe,
//! with the [`async-nats`](async_nats) client.
//!
//! ```no_run
//! use sockeye::ServerBuilder;
//! use sockeye::hub::Hub;
//! use sockeye_nats::NatsBackplane;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backplane = NatsBackplane::builder()
//!     .url("nats://nats.internal:4222")
//!     .subject_prefix("chat")
//!     .build()?;
//! // Every node of the application builds its hub the same way.
//! let hub = Hub::builder().backplane(backplane).build();
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9001").await?;
//! let server = ServerBuilder::new();
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let (server, hub) = (server.clone(), hub.clone());
//!     tokio::spawn(async move {
//!         let Ok(ws) = server.accept_tcp(tcp).await else { return };
//!         let (mut receiver, sender) = ws.split();
//!         let me = hub.attach(sender);
//!         me.subscribe("lobby");
//!         while let Some(Ok(message)) = receiver.recv().await {
//!             // To everyone in the lobby, on this node and on every other.
//!             hub.publish_excluding("lobby", message, &me);
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! # Semantics
//! Those of the hub's [`backplane`](sockeye::hub::backplane) module, on
//! NATS:
//! - **At most once, in order per topic.** The hub delivers a message to
//!   its own subscribers, then hands the backplane one envelope. The
//!   backplane's writer publishes envelopes on one NATS connection in the
//!   order the hub handed them over, and NATS keeps that order, so another
//!   node receives one node's messages on a topic in the order they were
//!   published. Each topic is its own NATS subscription, so messages on
//!   *different* topics may arrive in another order than they were sent.
//!   The connection is made with NATS `no_echo`: a node's own envelopes do
//!   not come back to it (and would be skipped by the hub if they did).
//! - **Never waits.** [`publish`](sockeye::hub::Backplane::publish) puts
//!   the envelope in a bounded queue and returns `false` at once, counted
//!   in [`BackplaneStatus::dropped`] and the hub's
//!   [`dropped_backplane`](sockeye::hub::HubStats::dropped_backplane), when
//!   no connection is up, the queue is full, the envelope exceeds the
//!   server's `max_payload` (1 MiB by default), or the topic's subject is
//!   too long ([`subject::MAX_SUBJECT_LEN`]). Subscription hints are
//!   noted in a set and return at once.
//! - **Outages.** When the server goes away, [`status`] reports
//!   `connected: false`, publishes return `false` and are counted, and the
//!   client reconnects with backoff (jittered, doubling from 100 ms to
//!   5 s by default, forever); local delivery in the hub goes on
//!   untouched. Nothing is buffered for later: envelopes queued before
//!   the outage and not yet handed to the client are dropped and counted
//!   in [`BackplaneStatus::dropped`] (only in the backplane's count: the
//!   hub had been told they were taken). The writer flushes the client after every
//!   batch of at most [`PUBLISH_BATCH`] (64) envelopes, so when a
//!   connection breaks at most that many envelopes, handed to the client
//!   just before, are sent late, right after the reconnect; envelopes the
//!   client had already written into the dead connection are lost. After
//!   a reconnect, [`BackplaneStatus::reconnects`] counts it.
//! - **Subscriptions.** The node subscribes to a topic's subject while the
//!   hub has local subscribers for it. Each hint is reconciled with
//!   [`BackplaneLink::is_subscribed`] (hints coalesce and may come out of
//!   order: the hub's state when the hint is handled decides). On
//!   reconnect, the `async-nats` client subscribes again by itself to
//!   every subscription it holds (it replays them before anything else it
//!   sends); then the backplane compares what it holds with
//!   [`BackplaneLink::topics`] and subscribes or unsubscribes the
//!   difference, so the server ends up with exactly the hub's topics.
//! - **Stopping.** The backplane runs on a thread of its own with a
//!   current-thread tokio runtime (the NATS client's tasks run there too).
//!   It stops when the hub is dropped (noticed within 250 ms, or at the
//!   next message) or the backplane is dropped: the runtime is then
//!   dropped, which ends every task at once and closes the connection,
//!   even while the client is still trying to reconnect.
//! - **Untrusted input.** Whatever arrives on a subscribed subject goes to
//!   [`BackplaneLink::deliver`], which decodes the envelope; anything that
//!   does not decode (another program publishing on the subject) is
//!   counted in the hub's
//!   [`invalid_envelopes`](sockeye::hub::HubStats::invalid_envelopes) and
//!   ignored. Nothing the server sends makes the backplane panic.
//!
//! # Subjects
//! Topic `T` travels on subject `PREFIX.TOKEN`, where `TOKEN` escapes
//! every byte of `T` outside `[A-Za-z0-9_-]` as `%XX` and the empty topic
//! is `%`: one literal token per topic, distinct for distinct topics; see
//! [`subject`].
//!
//! # Defaults
//! | setting | default | why |
//! | --- | --- | --- |
//! | [`url`](NatsBackplaneBuilder::url) | `nats://127.0.0.1:4222` | the NATS default port, locally |
//! | [`subject_prefix`](NatsBackplaneBuilder::subject_prefix) | `sockeye` | one namespace per application |
//! | [`queue_capacity`](NatsBackplaneBuilder::queue_capacity) | 4096 envelopes | rides out bursts without holding much |
//! | [`receive_capacity`](NatsBackplaneBuilder::receive_capacity) | 8192 messages per topic | the hub takes them without waiting, so the queue stays short |
//! | [`reconnect_delay`](NatsBackplaneBuilder::reconnect_delay) | 100 ms doubling to 5 s, each drawn in [½, 1] of it | quick after a blip, gentle on a server that is down, nodes spread out |
//! | [`connection_timeout`](NatsBackplaneBuilder::connection_timeout) | 5 s | the `async-nats` default |
//! | [`ping_interval`](NatsBackplaneBuilder::ping_interval) | 10 s | a silently dead connection is noticed within 30 s, not 3 minutes |
//! | [`connection_name`](NatsBackplaneBuilder::connection_name) | `sockeye-<node id>` | tells nodes apart in the server's monitoring |
//!
//! # Dependencies
//! Only applications that add this crate build a NATS client: `sockeye`
//! itself knows nothing of NATS. `async-nats` is built without its
//! JetStream, key-value, object store, service, nkeys and WebSocket
//! features.
//!
//! [`Hub`]: sockeye::hub::Hub
//! [`status`]: sockeye::hub::Backplane::status
//! [`BackplaneStatus::dropped`]: sockeye::hub::BackplaneStatus::dropped
//! [`BackplaneStatus::reconnects`]: sockeye::hub::BackplaneStatus::reconnects
//! [`BackplaneLink::is_subscribed`]: sockeye::hub::BackplaneLink::is_subscribed
//! [`BackplaneLink::topics`]: sockeye::hub::BackplaneLink::topics
//! [`BackplaneLink::deliver`]: sockeye::hub::BackplaneLink::deliver

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backplane;
mod config;
pub mod subject;
mod task;

pub use backplane::NatsBackplane;
pub use config::{
    ConfigError, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RECEIVE_CAPACITY, DEFAULT_RECONNECT_DELAY_MAX, DEFAULT_RECONNECT_DELAY_MIN,
    DEFAULT_SUBJECT_PREFIX, DEFAULT_URL, NatsBackplaneBuilder, PUBLISH_BATCH,
};
