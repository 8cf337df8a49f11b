//! What the application gives the event loop ([`Handler`]) and what the
//! loop lends it inside each callback ([`Socket`], [`Opening`]).

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use sockeye_proto::{CloseCode, Closed, Connection, Message, PreparedMessage, State};

use super::core::Shared;
use super::remote::{ConnId, LoopHandle};
use crate::tokio::SendStatus;

/// The application's side of an event loop: callbacks for each
/// connection's open, messages and close, called on the loop's thread.
///
/// One handler serves every connection of one loop (one thread); the
/// server makes one per loop with the factory given to
/// [`EventLoop::bind`](super::EventLoop::bind), so a handler need not be
/// `Send` (it may hold `Rc`s and plain counters). Per-connection state is
/// [`Handler::Data`], returned by [`open`](Handler::open) and handed back
/// to every later callback of that connection.
///
/// A callback must not block: it runs on the loop that serves thousands
/// of other connections. Work that waits (a database, a remote call) goes
/// to another thread or a tokio task, which answers through a
/// [`LoopHandle`] or [`ServerHandle`](super::ServerHandle) with the
/// connection's [`ConnId`].
///
/// A callback that panics ends at most its own connection, never the
/// loop: a panicking `open`, `message`, `ping`, `pong` or `writable`
/// closes the connection with 1011 (internal error) and drops its data
/// without a `close` callback; a panicking `http` answers 500; a panic in
/// `close`, `refused` or `answer_failed` is dropped (the connection is
/// ending anyway).
pub trait Handler: 'static {
    /// State kept for each connection, from `open` to `close`.
    type Data;

    /// A WebSocket was accepted (the server's policy admitted it and the
    /// `101` is queued). Messages sent here go out right after the `101`.
    fn open(&mut self, socket: &mut Socket<'_>, opening: &Opening<'_>) -> Self::Data;

    /// A whole data message arrived.
    fn message(&mut self, socket: &mut Socket<'_>, data: &mut Self::Data, message: Message);

    /// A Ping arrived (its Pong is already queued). Default: nothing.
    fn ping(&mut self, socket: &mut Socket<'_>, data: &mut Self::Data, payload: &Bytes) {
        let _ = (socket, data, payload);
    }

    /// A Pong arrived. Default: nothing.
    fn pong(&mut self, socket: &mut Socket<'_>, data: &mut Self::Data, payload: &Bytes) {
        let _ = (socket, data, payload);
    }

    /// What was buffered for the connection fell below the config's
    /// [`high_water_bytes`](sockeye_proto::Config::high_water_bytes) after
    /// a send answered [`SendStatus::Backpressure`] or
    /// [`SendStatus::Dropped`]: the moment to send more (uWebSockets'
    /// `drain`). Default: nothing.
    fn writable(&mut self, socket: &mut Socket<'_>, data: &mut Self::Data) {
        let _ = (socket, data);
    }

    /// The connection ended: the closing handshake completed, failed, or
    /// the transport broke. `closed` says how. Called once, after which
    /// `id` is never used again for this connection.
    fn close(&mut self, id: ConnId, data: Self::Data, closed: &Closed) {
        let _ = (id, data, closed);
    }

    /// A connection did not become a WebSocket: its request was refused
    /// ([`Error::Handshake`](crate::Error::Handshake), with the status
    /// answered), it sent no complete request within the handshake
    /// timeout ([`Error::OpenTimeout`](crate::Error::OpenTimeout)), or it
    /// went away first ([`Error::UnexpectedEof`](crate::Error::UnexpectedEof),
    /// [`Error::Io`](crate::Error::Io)). Plain HTTP requests answered by
    /// [`http`](Self::http) are not refusals. Default: nothing.
    fn refused(&mut self, remote: SocketAddr, error: &crate::Error) {
        let _ = (remote, error);
    }

    /// An answer from [`http`](Self::http) (or a refusal) was not
    /// delivered: the client took none of it for the
    /// [send timeout](super::EventLoop::send_timeout)
    /// ([`TimedOut`](std::io::ErrorKind::TimedOut)), and the connection
    /// was dropped. Default: nothing.
    fn answer_failed(&mut self, remote: SocketAddr, error: &std::io::Error) {
        let _ = (remote, error);
    }

    /// A request that is not a WebSocket upgrade (it lacks `Upgrade:
    /// websocket` or `Connection: upgrade`): return a response to answer
    /// it with (the connection is closed after it), or `None` to let the
    /// WebSocket handshake refuse it (`426 Upgrade Required` with the
    /// version, or `400`). Default: `None`. The request's `Host` has been
    /// checked against the server's allow-list already. A response with
    /// its own `Connection` header keeps it (a `426` says `Upgrade,
    /// close`); others get `Connection: close`.
    fn http(&mut self, request: &Request<()>, remote: SocketAddr) -> Option<Response<Bytes>> {
        let _ = (request, remote);
        None
    }
}

/// The opening handshake of a connection being opened, lent to
/// [`Handler::open`].
#[derive(Debug)]
pub struct Opening<'a> {
    pub(super) request: &'a Request<()>,
    pub(super) response: &'a Response<()>,
    pub(super) remote: SocketAddr,
}

impl Opening<'_> {
    /// The client's request (path, headers, query).
    pub fn request(&self) -> &Request<()> {
        self.request
    }

    /// The `101` being sent.
    pub fn response(&self) -> &Response<()> {
        self.response
    }

    /// The subprotocol the handshake chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.response
            .headers()
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }
}

/// One connection, lent to a [`Handler`] callback: send, close,
/// subscribe and publish. Everything queued here leaves in one write
/// per connection at the end of the loop's iteration (with the replies
/// to everything else that connection sent in the same read).
pub struct Socket<'a> {
    pub(super) id: ConnId,
    pub(super) engine: &'a mut Connection,
    /// What the front-end took from the engine and has not written yet.
    pub(super) unwritten: usize,
    pub(super) shared: &'a mut Shared,
    /// Set when the application sent something: the connection is flushed
    /// at the end of the iteration.
    pub(super) wrote: bool,
    /// A send was refused or met backpressure: `writable` is due when the
    /// buffer drains.
    pub(super) pressed: bool,
}

impl std::fmt::Debug for Socket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Socket<'_> {
    /// The connection's identity, valid on any thread (see
    /// [`ServerHandle::send`](super::ServerHandle::send)).
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The protocol engine, for inspection (state, negotiated
    /// permessage-deflate parameters), as
    /// [`WebSocket::connection`](crate::WebSocket::connection).
    pub fn connection(&self) -> &Connection {
        self.engine
    }

    /// Bytes queued for this connection and not yet written (as a
    /// browser's `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.engine.buffered_amount() + self.unwritten
    }

    /// Queues a message. Answers as
    /// [`WebSocket::try_send`](crate::WebSocket::try_send) does: queued,
    /// queued past the config's `high_water_bytes` (backpressure), or
    /// handed back when `max_buffered_bytes` or more is buffered, or when
    /// the connection is closing.
    pub fn send(&mut self, message: impl Into<Message>) -> SendStatus {
        let message = message.into();
        if self.buffered_amount() >= self.engine.config().get_max_buffered_bytes() {
            self.pressed = true;
            return SendStatus::Dropped(message);
        }
        if self.engine.state() != State::Open {
            return SendStatus::Dropped(message);
        }
        // An open connection refuses a message only when compressing it
        // fails: only then is a handle kept to hand it back, so that an
        // uncompressed echo costs no reference count.
        let kept = self
            .engine
            .deflate_params()
            .is_some()
            .then(|| message.clone());
        match (self.engine.send(message), kept) {
            (Ok(()), _) => {
                self.wrote = true;
                self.status()
            }
            (Err(_), Some(message)) => SendStatus::Dropped(message),
            // Not reached (see above); the message was consumed.
            (Err(_), None) => SendStatus::Dropped(Message::Binary(Bytes::new())),
        }
    }

    /// Queues a message framed once for many connections (see
    /// [`PreparedMessage`]); answers as [`send`](Self::send) does, with
    /// the message handed back on refusal.
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> SendStatus {
        if self.buffered_amount() >= self.engine.config().get_max_buffered_bytes() {
            self.pressed = true;
            return SendStatus::Dropped(message.message().clone());
        }
        match self.engine.send_prepared(message) {
            Ok(()) => {
                self.wrote = true;
                self.status()
            }
            Err(_) => SendStatus::Dropped(message.message().clone()),
        }
    }

    fn status(&mut self) -> SendStatus {
        if self.buffered_amount() > self.engine.config().get_high_water_bytes() {
            self.pressed = true;
            SendStatus::Backpressure
        } else {
            SendStatus::Queued
        }
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123
    /// bytes). [`Handler::close`] follows when it completes. Closing an
    /// already closing connection does nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        if self.engine.send_close(code, reason).is_ok() {
            self.wrote = true;
        }
    }

    /// Subscribes this connection to `topic`: it receives what is
    /// published there, on any loop of the server, until it unsubscribes
    /// or closes. Returns false if it was subscribed already.
    pub fn subscribe(&mut self, topic: &str) -> bool {
        self.shared.topics.subscribe(topic, self.id)
    }

    /// Unsubscribes this connection from `topic`; false if it was not
    /// subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        self.shared.topics.unsubscribe(topic, self.id)
    }

    /// Whether this connection is subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.shared.topics.is_subscribed(topic, self.id)
    }

    /// Publishes `message` to every subscriber of `topic` on every loop of
    /// the server except this connection (as uWebSockets' `ws.publish`).
    /// The message is framed (and compressed, for subscribers without
    /// context takeover) once, and corked into each subscriber's write of
    /// this iteration.
    pub fn publish(&mut self, topic: &str, message: impl Into<Message>) {
        let prepared = PreparedMessage::new(message.into());
        self.shared.publish(topic, prepared, Some(self.id));
    }

    /// A handle to this connection's loop, for other threads.
    pub fn loop_handle(&self) -> LoopHandle {
        self.shared.handle.clone()
    }
}
