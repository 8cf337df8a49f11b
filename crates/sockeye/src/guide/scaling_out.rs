//! # Scaling out
//!
//! When one machine is not enough, several processes serve the same
//! topics: each runs a [`Hub`](crate::hub::Hub) with a
//! [backplane](crate::hub::Backplane) that carries every published message
//! to the other nodes through a Redis or NATS server.
//!
//! ```text
//!   clients    clients    clients
//!      |          |          |
//!   [node A]   [node B]   [node C]      each: Hub::builder().backplane(..)
//!       \         |         /
//!      [ Redis or NATS server ]         one envelope per message, per node
//! ```
//!
//! ```ignore
//! // Cargo.toml: sockeye-redis = "0.1" (or sockeye-nats)
//! let backplane = sockeye_redis::RedisBackplane::new("redis://10.0.0.5:6379")?;
//! let hub = sockeye::hub::Hub::builder().backplane(backplane).build();
//! // The rest of the chat server is unchanged: publish and subscribe as
//! // on one node.
//! ```
//!
//! Semantics, in one paragraph: a node delivers a message to its own
//! subscribers first, then publishes it once (never once per subscriber)
//! to the backplane, tagged with its node id; the other nodes deliver it
//! to theirs and the publishing node skips it when it comes back. A node
//! subscribes on the backplane only to topics it has local subscribers
//! for. Across nodes delivery is at most once, in order per publishing
//! node; while the backplane is unreachable, local delivery goes on,
//! cross-node publishes are dropped and counted
//! ([`HubStats`](crate::hub::HubStats)), and the node reconnects with
//! backoff and subscribes again by itself. Clients that must not miss a
//! message while they or a node are away need the application's own
//! history (a sequence number per topic and a replay on reconnect).
//!
//! Try it on one machine with the command-line tool:
//!
//! ```text
//! redis-server --port 6379 --save '' &
//! sockeye serve --broadcast --listen 127.0.0.1:9001 --backplane redis://127.0.0.1:6379 &
//! sockeye serve --broadcast --listen 127.0.0.1:9002 --backplane redis://127.0.0.1:6379 &
//! sockeye connect ws://127.0.0.1:9001/room/demo    # and in another terminal:
//! sockeye connect ws://127.0.0.1:9002/room/demo
//! ```
