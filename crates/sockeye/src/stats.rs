//! A server's counters for operators, read with
//! [`ServerBuilder::stats`](crate::ServerBuilder::stats): connections
//! accepted, open, refused (by reason) and closed; data messages and bytes
//! each way.
//!
//! Counting costs the message path nothing shared. Each connection counts
//! in plain fields of its permit (a `Tally`): its front-end adds the
//! bytes of each read and write, and copies the engine's message counts
//! ([`Connection::messages_received`], [`Connection::messages_sent`]) as
//! it already looks at the engine after each step. The tally is added to
//! the server's atomics at coarse points only: after a write, when a poll
//! is about to wait, and when the connection ends (its permit is dropped).
//! An echo of a burst of messages thus costs four atomic additions for the
//! whole burst, whatever its length; a connection that sends one message
//! per wake-up pays them per message, next to the two system calls that
//! message costs anyway.

use std::sync::atomic::{AtomicU64, Ordering};

use sockeye_proto::Connection;
use sockeye_proto::handshake::{HandshakeError, HandshakeErrorKind};

/// Why a server refused a request, as [`ServerStats::refused`] counts
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// [`max_connections`](crate::ServerBuilder::max_connections) were
    /// open: 503.
    ConnectionLimit,
    /// [`max_connections_per_address`](crate::ServerBuilder::max_connections_per_address)
    /// were open from the client's address: 503.
    AddressLimit,
    /// The server's [drain](crate::Drain) had started: 503.
    Draining,
    /// The `Host` is not one of
    /// [`allowed_hosts`](crate::ServerBuilder::allowed_hosts): 421.
    HostNotAllowed,
    /// The `Origin` is not allowed: 403.
    OriginRefused,
    /// The application refused it: its
    /// [`filter_request`](crate::ServerBuilder::filter_request) answered
    /// (with its own status), its negotiator broke its contract (500), or
    /// it refused the request itself and counted it with
    /// [`record_refusal`](crate::ServerBuilder::record_refusal) (a 404
    /// for a path it does not serve, say).
    Application,
    /// Not a valid opening handshake: a malformed or oversized request
    /// head (400, 431), another method than GET (405), missing or invalid
    /// WebSocket headers (400), another WebSocket version (426).
    BadRequest,
}

/// How many [`RefusalReason`]s there are.
const REASONS: usize = RefusalReason::ALL.len();

impl RefusalReason {
    /// Every reason, in the order of the enum.
    pub const ALL: [RefusalReason; 7] = [
        RefusalReason::ConnectionLimit,
        RefusalReason::AddressLimit,
        RefusalReason::Draining,
        RefusalReason::HostNotAllowed,
        RefusalReason::OriginRefused,
        RefusalReason::Application,
        RefusalReason::BadRequest,
    ];

    /// A short lowercase name, for a metric's label: `connection_limit`,
    /// `address_limit`, `draining`, `host`, `origin`, `application`,
    /// `bad_request`.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::ConnectionLimit => "connection_limit",
            RefusalReason::AddressLimit => "address_limit",
            RefusalReason::Draining => "draining",
            RefusalReason::HostNotAllowed => "host",
            RefusalReason::OriginRefused => "origin",
            RefusalReason::Application => "application",
            RefusalReason::BadRequest => "bad_request",
        }
    }

    /// The reason for an error of the opening-handshake policy
    /// ([`ServerHandshake`](sockeye_proto::handshake::ServerHandshake)) or
    /// of the request parser.
    pub(crate) fn of_handshake(error: &HandshakeError) -> RefusalReason {
        match error.kind() {
            HandshakeErrorKind::OriginRefused => RefusalReason::OriginRefused,
            HandshakeErrorKind::Refused | HandshakeErrorKind::NegotiationBug(_) => {
                RefusalReason::Application
            }
            _ => RefusalReason::BadRequest,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A server's counters at one moment, from
/// [`ServerBuilder::stats`](crate::ServerBuilder::stats). Every count
/// covers the builder and its clones, over all front-ends (tokio, its
/// split halves, hyper, blocking), since the builder was made.
///
/// Each field is read on its own, so a snapshot taken while connections
/// come and go may be off by the ones that moved meanwhile; at rest,
/// `accepted == open + closed_clean + closed_abnormal`.
///
/// Messages and bytes of a connection are added in batches (after its
/// writes, when it waits for its peer, and when it ends), so a busy
/// connection's latest messages show up a moment later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections admitted (a `101` was answered, or over HTTP/2 a
    /// `200`).
    pub accepted: u64,
    /// Of `accepted`, the WebSockets that came as streams of an HTTP/2
    /// connection (RFC 8441).
    pub accepted_http2: u64,
    /// HTTP/2 connections served (each may carry many WebSockets).
    pub http2_connections: u64,
    /// Connections open now: admitted and not yet dropped (see
    /// [`ServerBuilder::open_connections`](crate::ServerBuilder::open_connections)).
    pub open: usize,
    /// Connections that ended with a complete closing handshake.
    pub closed_clean: u64,
    /// Connections that ended any other way: the transport failed, a
    /// protocol violation, a timeout, the memory budget shed it, the
    /// drain cut it, or the application dropped it (or took it apart)
    /// before its end.
    pub closed_abnormal: u64,
    /// Connections the memory budget chose to close with 1013 (counted
    /// in `closed_abnormal` too once they end).
    pub shed: u64,
    /// Data messages received from clients and handed to the application
    /// (a fragmented message counts once).
    pub messages_in: u64,
    /// Data messages sent to clients (queued by the application, the hub
    /// included, and written or being written).
    pub messages_out: u64,
    /// WebSocket bytes read from clients: frames as they arrive (headers,
    /// masks, control frames, compressed payloads), not the HTTP
    /// handshake or TLS records.
    pub bytes_in: u64,
    /// WebSocket bytes written to clients, counted the same way.
    pub bytes_out: u64,
    refused: [u64; REASONS],
}

impl ServerStats {
    /// Requests refused for `reason`.
    pub fn refused(&self, reason: RefusalReason) -> u64 {
        self.refused[reason.index()]
    }

    /// Requests refused, for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }
}

/// The counters shared by a builder's clones.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    accepted_http2: AtomicU64,
    http2_connections: AtomicU64,
    refused: [AtomicU64; REASONS],
    closed_clean: AtomicU64,
    closed_abnormal: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// Adds `count` unless it is zero (a publish with nothing new touches no
/// shared cache line).
#[inline]
fn add(counter: &AtomicU64, count: u64) {
    if count > 0 {
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// One of the WebSockets counted by `accepted` came over HTTP/2.
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) fn accepted_http2(&self) {
        self.accepted_http2.fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP/2 connection was opened (its preface and settings).
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) fn http2_connection(&self) {
        self.http2_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, reason: RefusalReason) {
        self.refused[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, with the figures kept elsewhere.
    pub(crate) fn snapshot(&self, open: usize, shed: u64) -> ServerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ServerStats {
            accepted: load(&self.accepted),
            accepted_http2: load(&self.accepted_http2),
            http2_connections: load(&self.http2_connections),
            open,
            closed_clean: load(&self.closed_clean),
            closed_abnormal: load(&self.closed_abnormal),
            shed,
            messages_in: load(&self.messages_in),
            messages_out: load(&self.messages_out),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            refused: std::array::from_fn(|index| load(&self.refused[index])),
        }
    }
}

/// One connection's counts not yet added to its server's [`Counters`]:
/// plain fields, kept in its permit.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Bytes read and written since the last publish.
    bytes_in: u64,
    bytes_out: u64,
    /// The engine's message counts as last seen, and as last published:
    /// their low 32 bits, as every connection carries them (issue 18);
    /// the difference is exact while fewer than 2^32 messages pass
    /// between two publishes, and every front-end publishes after each
    /// write.
    messages_in: u32,
    messages_out: u32,
    published_in: u32,
    published_out: u32,
    /// The front-end saw a complete closing handshake.
    clean: bool,
}

impl Tally {
    /// `bytes` were read from the transport.
    #[inline]
    pub(crate) fn read(&mut self, bytes: usize) {
        self.bytes_in += bytes as u64;
    }

    /// `bytes` were written to the transport.
    #[inline]
    pub(crate) fn wrote(&mut self, bytes: usize) {
        self.bytes_out += bytes as u64;
    }

    /// Copies the engine's message counts (so that they are published
    /// when the connection is dropped, engine and all).
    #[inline]
    pub(crate) fn see(&mut self, engine: &Connection) {
        // Truncated on purpose: see the fields.
        self.messages_in = engine.messages_received() as u32;
        self.messages_out = engine.messages_sent() as u32;
    }

    /// The connection ended with a complete closing handshake, or not.
    pub(crate) fn set_clean(&mut self, clean: bool) {
        self.clean = clean;
    }

    /// Adds what changed since the last publish to `counters`: at most
    /// four atomic additions, none when nothing changed.
    pub(crate) fn publish(&mut self, counters: &Counters) {
        add(&counters.bytes_in, std::mem::take(&mut self.bytes_in));
        add(&counters.bytes_out, std::mem::take(&mut self.bytes_out));
        add(
            &counters.messages_in,
            u64::from(self.messages_in.wrapping_sub(self.published_in)),
        );
        add(
            &counters.messages_out,
            u64::from(self.messages_out.wrapping_sub(self.published_out)),
        );
        self.published_in = self.messages_in;
        self.published_out = self.messages_out;
    }

    /// Moves what changed since the last publish into `batch`, which an
    /// event loop adds to its server's counters once per iteration: one
    /// set of atomic additions for all its connections' writes, not one
    /// per connection, so loops on many cores do not contend on the
    /// counters' cache lines.
    #[cfg_attr(not(feature = "event-loop"), allow(dead_code))]
    pub(crate) fn publish_into(&mut self, batch: &mut Batch) {
        batch.bytes_in += std::mem::take(&mut self.bytes_in);
        batch.bytes_out += std::mem::take(&mut self.bytes_out);
        batch.messages_in += u64::from(self.messages_in.wrapping_sub(self.published_in));
        batch.messages_out += u64::from(self.messages_out.wrapping_sub(self.published_out));
        self.published_in = self.messages_in;
        self.published_out = self.messages_out;
    }

    /// The connection is over: publishes the rest and counts how it
    /// ended.
    pub(crate) fn end(&mut self, counters: &Counters) {
        self.publish(counters);
        let ended = if self.clean {
            &counters.closed_clean
        } else {
            &counters.closed_abnormal
        };
        ended.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts of many connections' writes not yet added to their server's
/// [`Counters`] (see [`Tally::publish_into`]).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "event-loop"), allow(dead_code))]
pub(crate) struct Batch {
    bytes_in: u64,
    bytes_out: u64,
    messages_in: u64,
    messages_out: u64,
}

#[cfg_attr(not(feature = "event-loop"), allow(dead_code))]
impl Batch {
    /// Adds the batch to `counters` (at most four atomic additions) and
    /// empties it.
    pub(crate) fn publish(&mut self, counters: &Counters) {
        add(&counters.bytes_in, std::mem::take(&mut self.bytes_in));
        add(&counters.bytes_out, std::mem::take(&mut self.bytes_out));
        add(&counters.messages_in, std::mem::take(&mut self.messages_in));
        add(
            &counters.messages_out,
            std::mem::take(&mut self.messages_out),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockeye_proto::{Config, Message, Role};

    #[test]
    fn a_tally_publishes_only_what_changed() {
        let counters = Counters::default();
        let mut engine = Connection::new(Role::Server, Config::default());
        let mut tally = Tally::default();
        engine.send(Message::text("one")).unwrap();
        engine.send(Message::text("two")).unwrap();
        tally.see(&engine);
        tally.read(10);
        tally.wrote(10);
        tally.publish(&counters);
        tally.publish(&counters);
        let stats = counters.snapshot(1, 0);
        assert_eq!(
            (stats.messages_out, stats.bytes_in, stats.bytes_out),
            (2, 10, 10)
        );
        engine.send(Message::text("three")).unwrap();
        tally.see(&engine);
        tally.set_clean(true);
        tally.end(&counters);
        let stats = counters.snapshot(0, 0);
        assert_eq!(stats.messages_out, 3);
        assert_eq!((stats.closed_clean, stats.closed_abnormal), (1, 0));
    }

    #[test]
    fn reasons_have_distinct_labels_in_order() {
        for (index, reason) in RefusalReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), index);
        }
        let mut labels: Vec<_> = RefusalReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), REASONS);
    }
}
