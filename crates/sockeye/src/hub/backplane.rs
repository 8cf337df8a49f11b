//! The seam between a [`Hub`](super::Hub) and a messaging system that
//! carries its topics to other nodes (Redis, NATS): the [`Backplane`]
//! trait, the [`BackplaneLink`] a backplane delivers into, and the
//! envelope every node puts on the wire.
//!
//! # Semantics
//! At most once across nodes. A node delivers a message to its own
//! subscribers first, then hands one envelope per message (never one per
//! subscriber) to its backplane. Other nodes deliver it to their local
//! subscribers; the publishing node recognises its own envelopes by their
//! node id and skips them when they come back. Messages one node publishes
//! on a topic arrive at every other node in the order it published them
//! (Redis and NATS keep order per connection and subject; the NATS
//! backplane has one subscription per topic, so order across topics is
//! not kept there).
//! While the backplane is unreachable, local delivery goes on and
//! cross-node publishes are dropped and counted, never buffered without
//! bound; a backplane reconnects by itself and subscribes again to the
//! topics the node has local subscribers for.
//!
//! # The envelope
//! `[version = 1][kind: 1 text, 2 binary][node id: 16 bytes][payload]`.
//! The topic travels as the backplane's own channel or subject name. An
//! envelope that does not decode (another program publishing on the same
//! channel, a newer version) is counted and ignored.

use std::sync::Weak;

use bytes::{BufMut, Bytes, BytesMut};
use sockeye_proto::{Message, Utf8Bytes};

use super::HubShared;

/// The version byte that opens every envelope.
const ENVELOPE_VERSION: u8 = 1;
const KIND_TEXT: u8 = 1;
const KIND_BINARY: u8 = 2;
/// Version, kind and node id.
const ENVELOPE_HEADER_LEN: usize = 2 + 16;

/// Which node published a message: 16 random bytes, chosen when the hub is
/// built, unless [`HubBuilder::node_id`](super::HubBuilder::node_id) sets
/// one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// A new random node id.
    pub fn random() -> NodeId {
        NodeId(rand::random())
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Encodes `message`, published by `node`, as the bytes a backplane
/// carries.
pub fn encode_envelope(node: NodeId, message: &Message) -> Bytes {
    let (kind, payload): (u8, &[u8]) = match message {
        Message::Text(text) => (KIND_TEXT, text.as_bytes()),
        Message::Binary(data) => (KIND_BINARY, data),
    };
    let mut envelope = BytesMut::with_capacity(ENVELOPE_HEADER_LEN + payload.len());
    envelope.put_u8(ENVELOPE_VERSION);
    envelope.put_u8(kind);
    envelope.put_slice(&node.0);
    envelope.put_slice(payload);
    envelope.freeze()
}

/// Why an envelope was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Shorter than its header, of another version, or of an unknown kind.
    Malformed,
    /// A text message whose payload is not UTF-8.
    InvalidUtf8,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvelopeError::Malformed => "not a sockeye envelope (version 1)",
            EnvelopeError::InvalidUtf8 => "a text envelope that is not UTF-8",
        })
    }
}

impl std::error::Error for EnvelopeError {}

/// Decodes an envelope: who published it, and the message. The payload is
/// a slice of `envelope`, not a copy.
pub fn decode_envelope(envelope: Bytes) -> Result<(NodeId, Message), EnvelopeError> {
    if envelope.len() < ENVELOPE_HEADER_LEN || envelope[0] != ENVELOPE_VERSION {
        return Err(EnvelopeError::Malformed);
    }
    let kind = envelope[1];
    let mut node = [0; 16];
    node.copy_from_slice(&envelope[2..ENVELOPE_HEADER_LEN]);
    let payload = envelope.slice(ENVELOPE_HEADER_LEN..);
    let message = match kind {
        KIND_TEXT => {
            Message::Text(Utf8Bytes::try_from(payload).map_err(|_| EnvelopeError::InvalidUtf8)?)
        }
        KIND_BINARY => Message::Binary(payload),
        _ => return Err(EnvelopeError::Malformed),
    };
    Ok((NodeId(node), message))
}

/// Carries a hub's topics to other nodes: a messaging system's client
/// (`sockeye-redis`, `sockeye-nats`), or your own.
///
/// The hub calls every method from the thread that publishes or
/// subscribes, often while serving a connection: none of them may wait.
/// An implementation runs its own task (or thread), fed through a bounded
/// queue, and reconciles its subscriptions with
/// [`BackplaneLink::is_subscribed`] and [`BackplaneLink::topics`] rather
/// than replaying calls, so that a reconnect can subscribe again to
/// exactly the topics the node needs.
pub trait Backplane: Send + Sync + 'static {
    /// Starts the backplane for one hub. Called once, when the hub is
    /// built (from within a tokio runtime, where the hub is built). What
    /// other nodes publish goes to [`BackplaneLink::deliver`].
    fn start(&self, link: BackplaneLink);

    /// Publishes one envelope (from [`encode_envelope`]) on `topic` to
    /// other nodes. Must not wait: returns `false` when the envelope is
    /// dropped (not connected, or its queue is full), and then the hub
    /// counts it as dropped.
    fn publish(&self, topic: &str, envelope: Bytes) -> bool;

    /// `topic` gained its first local subscriber: receive it from other
    /// nodes from now on. Must not wait.
    fn subscribe(&self, topic: &str);

    /// `topic` lost its last local subscriber: stop receiving it. Must not
    /// wait.
    fn unsubscribe(&self, topic: &str);

    /// The connection's state and counters, for metrics.
    fn status(&self) -> BackplaneStatus;

    /// The hub was dropped: stop at once (close the connections, end the
    /// tasks). The default does nothing, leaving the backplane to notice
    /// [`BackplaneLink::is_open`] turn `false`.
    fn stop(&self) {}
}

/// A backplane's state and counters, from [`Backplane::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStatus {
    /// Connected to the messaging system now.
    pub connected: bool,
    /// Connections made after the first one.
    pub reconnects: u64,
    /// Envelopes handed to the messaging system.
    pub published: u64,
    /// Envelopes received from it (its own included, before they are
    /// skipped).
    pub received: u64,
    /// Envelopes dropped on the way out: not connected, queue full, or a
    /// failed send.
    pub dropped: u64,
    /// Topics subscribed on the messaging system now.
    pub subscriptions: usize,
}

impl BackplaneStatus {
    /// A status with these values (the struct is non-exhaustive).
    pub fn new(
        connected: bool,
        reconnects: u64,
        published: u64,
        received: u64,
        dropped: u64,
        subscriptions: usize,
    ) -> BackplaneStatus {
        BackplaneStatus {
            connected,
            reconnects,
            published,
            received,
            dropped,
            subscriptions,
        }
    }
}

/// A backplane's way back into its hub, given to [`Backplane::start`].
///
/// It does not keep the hub alive: once the hub is dropped,
/// [`BackplaneLink::is_open`] is `false` and the backplane's tasks should
/// end.
#[derive(Clone)]
pub struct BackplaneLink {
    pub(super) hub: Weak<HubShared>,
    pub(super) node: NodeId,
}

impl std::fmt::Debug for BackplaneLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackplaneLink")
            .field("node", &self.node)
            .field("open", &self.is_open())
            .finish()
    }
}

/// What [`BackplaneLink::deliver`] did with an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivered {
    /// Queued for this many local subscribers.
    Local(usize),
    /// This node published it: skipped.
    Own,
    /// It did not decode (counted by the hub).
    Invalid(EnvelopeError),
    /// The hub is gone.
    HubClosed,
}

impl BackplaneLink {
    /// This node's id, as put in its envelopes.
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// Whether the hub still exists.
    pub fn is_open(&self) -> bool {
        self.hub.strong_count() > 0
    }

    /// Delivers an envelope another node published on `topic` to this
    /// node's subscribers (and to no backplane). Envelopes this node
    /// published are skipped.
    pub fn deliver(&self, topic: &str, envelope: Bytes) -> Delivered {
        let Some(hub) = self.hub.upgrade() else {
            return Delivered::HubClosed;
        };
        match decode_envelope(envelope) {
            Ok((node, _)) if node == self.node => Delivered::Own,
            Ok((_, message)) => Delivered::Local(hub.deliver_remote(topic, message)),
            Err(error) => {
                hub.count_invalid_envelope();
                Delivered::Invalid(error)
            }
        }
    }

    /// Whether `topic` has local subscribers now: what a backplane should
    /// be subscribed to.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.hub
            .upgrade()
            .is_some_and(|hub| hub.has_local_subscribers(topic))
    }

    /// Every topic with local subscribers now: what a backplane subscribes
    /// to after (re)connecting.
    pub fn topics(&self) -> Vec<String> {
        self.hub
            .upgrade()
            .map(|hub| hub.local_topics())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_type_and_bytes() {
        let node = NodeId([7; 16]);
        for message in [
            Message::text("héllo"),
            Message::text(""),
            Message::binary(vec![0u8, 255, 1, 2]),
            Message::binary(Vec::new()),
        ] {
            let (from, back) = decode_envelope(encode_envelope(node, &message)).unwrap();
            assert_eq!(from, node);
            assert_eq!(back, message);
        }
    }

    #[test]
    fn foreign_bytes_are_refused() {
        assert_eq!(
            decode_envelope(Bytes::from_static(b"hello")),
            Err(EnvelopeError::Malformed)
        );
        let mut wrong_version = encode_envelope(NodeId([0; 16]), &Message::text("x")).to_vec();
        wrong_version[0] = 2;
        assert_eq!(
            decode_envelope(wrong_version.into()),
            Err(EnvelopeError::Malformed)
        );
        let mut bad_text = encode_envelope(NodeId([0; 16]), &Message::text("x")).to_vec();
        bad_text.push(0xff);
        assert_eq!(
            decode_envelope(bad_text.into()),
            Err(EnvelopeError::InvalidUtf8)
        );
        let mut bad_kind = encode_envelope(NodeId([0; 16]), &Message::text("x")).to_vec();
        bad_kind[1] = 9;
        assert_eq!(
            decode_envelope(bad_kind.into()),
            Err(EnvelopeError::Malformed)
        );
    }
}
