//! A Redis backplane for sockeye's publish/subscribe [`Hub`]: a message
//! published on one node reaches the subscribers of its topic on every
//! node, through Redis pub/sub.
//!
//! ```no_run
//! use sockeye::ServerBuilder;
//! use sockeye::hub::Hub;
//! use sockeye_redis::RedisBackplane;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backplane = RedisBackplane::builder("redis://127.0.0.1:6379")
//!     .channel_prefix("chat:")
//!     .build()?;
//! // The hub holds one clone; this one is for metrics and shutdown.
//! let hub = Hub::builder().backplane(backplane.clone()).build();
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
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
//!             // Everyone in the lobby, on every node, but the sender.
//!             hub.publish_excluding("lobby", message, &me);
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! Users who do not need Redis do not depend on this crate, and so pull in
//! no Redis client.
//!
//! # How it works
//! The backplane runs one task (started when the hub is built) with two
//! connections to Redis:
//! - The **publisher** sends what the hub hands to
//!   [`Backplane::publish`](sockeye::hub::Backplane::publish): one
//!   envelope per message (never one per subscriber), taken from a bounded
//!   queue in order and sent pipelined: whatever piled up while the last
//!   batch was on its way (up to 512 envelopes) leaves at once, without
//!   waiting for a reply between two, and the replies are read after.
//!   `publish` itself never waits.
//! - The **subscriber** is subscribed to the channel of every topic that
//!   has local subscribers, and hands each message to
//!   [`BackplaneLink::deliver`](sockeye::hub::BackplaneLink::deliver),
//!   which skips this node's own envelopes and counts those that do not
//!   decode ([`HubStats::invalid_envelopes`](sockeye::hub::HubStats)).
//!
//! A topic's channel is the [channel prefix](RedisBackplaneBuilder::channel_prefix)
//! followed by the topic's bytes, unescaped: every topic, the empty one
//! included, has its own channel, and any byte may appear in it.
//!
//! # Semantics
//! - **At most once, in order per node.** Redis pub/sub keeps no history:
//!   a node that is not subscribed when a message passes misses it. A
//!   node's messages reach every other node in the order it published
//!   them.
//! - **Subscriptions follow the hub.** The hub's subscribe and unsubscribe
//!   calls are hints: the task checks
//!   [`BackplaneLink::is_subscribed`](sockeye::hub::BackplaneLink::is_subscribed)
//!   when it handles one, so hints that arrive late, twice or out of order
//!   end in the right state. A node is subscribed to a channel only while
//!   it has local subscribers for the topic.
//! - **An outage degrades to local delivery.** When Redis goes away (or
//!   stops answering: see the [health check](RedisBackplaneBuilder::health_check_interval)),
//!   [`status().connected`](sockeye::hub::BackplaneStatus::connected)
//!   turns false, and from then on `publish` returns `false` at once: the
//!   hub counts the message in
//!   [`HubStats::dropped_backplane`](sockeye::hub::HubStats::dropped_backplane)
//!   and the backplane in `status().dropped`, and local subscribers still
//!   get it. Nothing is buffered for later: envelopes still queued or in
//!   flight when the connection was lost are dropped and counted too. The
//!   task connects again with a backoff, counts
//!   [reconnects](sockeye::hub::BackplaneStatus::reconnects), and once
//!   connected subscribes to exactly the hub's topics of that moment
//!   ([`BackplaneLink::topics`](sockeye::hub::BackplaneLink::topics)).
//!   `connected` turns true as soon as both connections are up; the
//!   subscriptions are restored right after.
//! - **It stops** when its hub is dropped (noticed within half a second),
//!   when [`RedisBackplane::shutdown`] is called, or when the last clone
//!   of it is dropped; its connections are then closed.
//! - **Nothing Redis sends makes it panic**: a message that is not an
//!   envelope is counted and dropped; an error reply is counted (and kept
//!   in [`RedisStatus::last_error`]); a connection that misbehaves is closed
//!   and made again.
//!
//! # Sharded pub/sub
//! Redis 7.0 added sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`), which a Redis
//! Cluster spreads over its shards instead of sending every message to
//! every node. [`Sharded::Auto`] (the default) uses it when the server has
//! it; both kinds work against a single server. Sharded and classic
//! channels are separate namespaces, so every node of one application
//! must end up in the same mode (as `Auto` does when they share a server).
//! In sharded mode, subscriptions are made one channel per `SSUBSCRIBE`
//! (fred cannot tell several confirmations of one apart from the replies to
//! the next commands), so restoring many thousands of topics after a
//! reconnect takes one round trip each.
//!
//! # Defaults
//! | Setting | Default | Why |
//! |---|---|---|
//! | [`channel_prefix`](RedisBackplaneBuilder::channel_prefix) | `"sockeye:"` | apart from other users of the same Redis |
//! | [`queue_capacity`](RedisBackplaneBuilder::queue_capacity) | 4096 envelopes | rides out bursts and a slow round trip; bounded |
//! | [`queue_bytes`](RedisBackplaneBuilder::queue_bytes) | 64 MiB | bounds memory when messages are large |
//! | [`receive_buffer`](RedisBackplaneBuilder::receive_buffer) | 1024 messages | handing over never waits, so it only fills on a starved runtime |
//! | [`reconnect_backoff`](RedisBackplaneBuilder::reconnect_backoff) | 100 ms to 5 s, doubling, equal jitter | back quickly after a blip, without hammering a server that is down |
//! | [`connect_timeout`](RedisBackplaneBuilder::connect_timeout) | 5 s | |
//! | [`command_timeout`](RedisBackplaneBuilder::command_timeout) | 5 s | a reply that late means the connection is gone |
//! | [`health_check_interval`](RedisBackplaneBuilder::health_check_interval) | 10 s | a silent connection is noticed within 15 s |
//! | [`sharded`](RedisBackplaneBuilder::sharded) | [`Sharded::Auto`] | sharded where the server has it |
//!
//! # Metrics
//! [`Hub::backplane_status`](sockeye::hub::Hub::backplane_status) (or
//! [`Backplane::status`](sockeye::hub::Backplane::status)) gives the
//! common counters; [`RedisBackplane::redis_status`] adds the mode, the
//! queue, failed connection attempts, lost incoming messages and the last
//! error.
//!
//! # Not supported
//! TLS (`rediss://`), Redis Cluster and Sentinel URLs, Unix sockets:
//! [`RedisBackplaneBuilder::build`] refuses them.
//!
//! # Why fred
//! The client is [fred](https://docs.rs/fred), not redis-rs, chosen by:
//! - **Sharded pub/sub.** fred has `SSUBSCRIBE`/`SPUBLISH` on a plain
//!   connection to one server. redis-rs (1.x) has `SSUBSCRIBE` only on its
//!   cluster connection, so it could not subscribe to sharded channels on a
//!   standalone Redis 7, the common deployment.
//! - **Control over reconnection.** A fred client without a reconnect
//!   policy makes exactly one connection, and its task ends when that
//!   connection does; this crate runs its own loop on top, so it knows the
//!   state at every moment, counts reconnects and drops, and subscribes
//!   again from the hub's topics rather than from a list the client kept.
//!   (redis-rs's plain connections allow the same, but its pub/sub
//!   connection forwards messages through an unbounded channel; fred's is
//!   bounded, and what overflows is counted.)
//! - **Pipelining.** fred writes a batch of commands at once and matches
//!   the replies after.
//! - **Weight**, where fred loses: with only its pub/sub interface enabled
//!   it adds about 65 crates to what `sockeye` already pulls in, redis-rs
//!   about 45. Both are paid only by users of this crate.
//!
//! [`Hub`]: sockeye::hub::Hub
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod backplane;
mod config;
mod task;

pub use backplane::{RedisBackplane, RedisStatus};
pub use config::{
    ConfigError, DEFAULT_CHANNEL_PREFIX, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RECEIVE_BUFFER, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MIN, RedisBackplaneBuilder,
    Sharded,
};
