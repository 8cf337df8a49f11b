//! [`WebSocket`]: a connection over any tokio `AsyncRead + AsyncWrite`.
//!
//! A thin loop around [`sockeye_proto::Connection`]: it moves bytes between
//! the transport and the engine, and runs the engine's timers on tokio's
//! clock. Everything protocol lives in the engine.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use sockeye_proto::{CloseCode, Closed, Config, Connection, Event, Message, PreparedMessage, Role};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use crate::budget::Share;
use crate::client::EndSlot;
use crate::drain::DrainSignal;
use crate::error::Error;
use crate::output::{MAX_IOVECS, Output};
use crate::policy::ConnectionPermit;

/// How much spare room the read buffer gets before a read in the middle
/// of a frame.
const READ_RESERVE: usize = 64 * 1024;

/// Reads at least this large hand the engine the scratch buffer instead of
/// a copy. Smaller ones are copied, so that a small message kept by the
/// application does not keep a whole scratch buffer alive: a delivered
/// message holds at most four times the bytes that arrived with it.
const HAND_OVER_READ: usize = crate::scratch::SIZE / 4;

/// Reads into `buffer`'s spare room, at most `scratch::SIZE` bytes.
fn poll_read_buf<S: AsyncRead>(
    stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    buffer: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    tokio_util::io::poll_read_buf(stream, cx, &mut buffer.limit(crate::scratch::SIZE))
}

/// A WebSocket connection over a tokio stream, after its opening handshake.
///
/// Receive with [`WebSocket::recv`] (or as a [`Stream`]), send with
/// [`WebSocket::send`] (or as a [`Sink`]). Pings are answered, and the
/// answers written, while you receive; Close frames are answered and the
/// transport is shut down as RFC 6455 section 7 says. To receive and send
/// from two tasks, [`WebSocket::split`] it.
///
/// # Corking
/// Replies sent while more received messages are already buffered are not
/// written at once: they leave together in one write when the buffered
/// messages are processed, that is when `recv` would otherwise wait for
/// the network. An echo loop thus answers a burst of N messages with one
/// system call. Call [`WebSocket::flush`] to write at once.
#[derive(Debug)]
pub struct WebSocket<S> {
    pub(crate) stream: S,
    pub(crate) conn: Connection,
    output: Output,
    timer: Option<Pin<Box<Sleep>>>,
    /// The engine reported the end; it is being finished (flushed, shut
    /// down) before it is returned.
    /// (Boxed: idle connections should be small.)
    closed: Option<Box<Closed>>,
    /// The end was returned: the stream is exhausted.
    finished: bool,
    /// The write side was shut down; what the peer still sends is being
    /// drained before the end is returned (see `poll_linger`).
    shut_down: bool,
    /// How long draining may still take (see `poll_linger`).
    linger: Option<Pin<Box<Sleep>>>,
    /// The connection's place under its server's connection limit.
    pub(crate) permit: Option<ConnectionPermit>,
    /// The connection's share of its server's memory budget.
    pub(crate) budget: Option<Share>,
    /// Where a reconnecting client learns how the connection ended.
    pub(crate) on_end: Option<Arc<EndSlot>>,
}

/// How long a failed connection drains the peer's input at most.
const LINGER: std::time::Duration = std::time::Duration::from_millis(200);

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a stream whose opening handshake is already done, playing
    /// `role`. `leftover` holds any bytes read past the handshake.
    pub fn from_raw(stream: S, role: Role, config: Config, leftover: &[u8]) -> WebSocket<S> {
        WebSocket::from_engine(stream, Connection::new(role, config), leftover)
    }

    /// Wraps a stream whose opening handshake is already done, driving an
    /// engine the caller prepared (for example with
    /// [`Connection::enable_deflate`] after its own handshake). `leftover`
    /// holds any bytes read past the handshake.
    pub fn from_engine(stream: S, mut conn: Connection, leftover: &[u8]) -> WebSocket<S> {
        conn.receive_data(leftover);
        WebSocket {
            stream,
            conn,
            output: Output::default(),
            timer: None,
            closed: None,
            finished: false,
            shut_down: false,
            linger: None,
            permit: None,
            budget: None,
            on_end: None,
        }
    }

    /// The protocol engine, for inspection (state, buffered amount).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Takes the connection apart into its stream, its engine and the
    /// output taken from the engine but not yet written, for a caller that
    /// drives the engine itself from here on (for example to write frames
    /// it encoded ahead of time; it then answers for their validity).
    /// [`WebSocket::from_engine`] puts the parts back together once the
    /// unwritten output is written.
    ///
    /// Nothing is lost: bytes read and not yet delivered stay in the
    /// engine. A connection accepted under a server's connection limit
    /// ([`crate::ServerBuilder::max_connections`]) gives its place back.
    pub fn into_parts(mut self) -> crate::Parts<S> {
        // The permit, dropped here, publishes the counts it has seen.
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
        }
        crate::Parts {
            stream: self.stream,
            connection: self.conn,
            unwritten: self.output.into_chunks(),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_deref()
    }

    /// Receives the next data message.
    ///
    /// Returns `None` after a clean closing handshake, and an error once if
    /// the connection ended any other way (then `None`). While it waits it
    /// answers Pings, writes the answers, answers a Close and shuts the
    /// transport down when the protocol says so.
    ///
    /// # Cancel safety
    /// Cancel-safe: all progress lives in the `WebSocket`, so if the future
    /// is dropped (in a `select!`) no message is lost; the next call
    /// continues where this one stopped.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receives the next event: data messages, but also Pings and Pongs,
    /// and the end as [`Event::Closed`] (clean or not). After the end,
    /// `None`.
    ///
    /// # Cancel safety
    /// Cancel-safe, like [`WebSocket::recv`].
    pub async fn recv_event(&mut self) -> Option<Result<Event, Error>> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Sends a message, fragmenting it if it is longer than the config's
    /// outgoing frame size, and waits until it is written to the transport
    /// (or corked behind received messages still to process, see the type's
    /// docs). A peer that does not read makes this wait: memory does not
    /// grow.
    ///
    /// # Cancel safety
    /// The message is queued whole before the first wait. If the future is
    /// dropped after that, the message is still sent, by the next call
    /// that writes.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        self.send_with(|conn| conn.send(message)).await
    }

    /// Waits for room, queues with `queue`, then writes unless corked.
    async fn send_with(
        &mut self,
        queue: impl FnOnce(&mut Connection) -> Result<(), sockeye_proto::Error>,
    ) -> Result<(), Error> {
        // Room first: a send cancelled after queueing (a timeout) must not
        // let the next one queue too, or memory grows past the bound.
        poll_fn(|cx| self.poll_room(cx)).await?;
        queue(&mut self.conn)?;
        if self.should_cork() {
            return Ok(());
        }
        self.flush().await
    }

    /// Sends a message prepared once for many connections (a broadcast):
    /// its frame, compressed or not, is shared with every connection whose
    /// negotiated parameters allow it; see [`PreparedMessage`].
    ///
    /// # Cancel safety
    /// Like [`WebSocket::send`].
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.send_with(|conn| conn.send_prepared(message)).await
    }

    /// Like [`WebSocket::send`], but never compressed, whatever was
    /// negotiated: for data already compressed, or secrets that must not
    /// share a compression context with attacker-chosen data.
    ///
    /// # Cancel safety
    /// Like [`WebSocket::send`].
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        self.send_with(|conn| conn.send_uncompressed(message)).await
    }

    /// Sends a Ping (at most 125 bytes) and waits until it is written. The
    /// Pong arrives as an event ([`WebSocket::recv_event`]).
    ///
    /// # Cancel safety
    /// Like [`WebSocket::send`].
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.conn.send_ping(payload)?;
        self.flush().await
    }

    /// Writes everything queued.
    ///
    /// # Cancel safety
    /// Cancel-safe: what is not yet written stays queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx)).await?;
        Ok(())
    }

    /// Closes the connection: sends a Close frame with `code` and `reason`,
    /// waits for the peer's (messages that arrive meanwhile are dropped),
    /// and shuts the transport down. Never hangs: the config's close
    /// timeout bounds the wait. Returns how the connection ended.
    ///
    /// # Cancel safety
    /// The Close frame is queued before the first wait; a dropped future
    /// leaves the closing handshake to the next `recv`.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        if self.closed.is_none() && !self.finished {
            match self.conn.send_close(code, reason) {
                Ok(()) | Err(sockeye_proto::Error::AlreadyClosed) => {}
                Err(error) => return Err(error.into()),
            }
        }
        loop {
            match poll_fn(|cx| self.poll_event(cx)).await {
                Some(Ok(Event::Closed(closed))) => return Ok(closed),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => {
                    return self.closed.as_deref().cloned().ok_or(Error::AlreadyClosed);
                }
            }
        }
    }

    /// Polls for the next data message; see [`WebSocket::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            match ready!(self.poll_event(cx)) {
                Some(Ok(Event::Message(message))) => return Poll::Ready(Some(Ok(message))),
                Some(Ok(Event::Closed(closed))) => {
                    return Poll::Ready(closed.error.map(|error| Err(error.into())));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(None),
            }
        }
    }

    /// Polls for the next event; see [`WebSocket::recv_event`].
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        let poll = self.poll_event_inner(cx);
        if poll.is_pending()
            && let Some(permit) = &mut self.permit
        {
            // About to wait: a coarse point to add this connection's
            // counts to its server's (see `stats.rs`).
            permit.publish();
        }
        poll
    }

    fn poll_event_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        if let Some(permit) = &mut self.permit {
            match permit.drain.poll(Some(cx)) {
                None => {}
                Some(DrainSignal::Close { at, code, reason }) => {
                    // The engine's timers send it; a connection already
                    // closing keeps its own handshake.
                    let _ = self.conn.close_at(at, code, &reason);
                }
                Some(DrainSignal::Abort) if !self.finished => return self.abort(cx),
                Some(DrainSignal::Abort) => {}
            }
        }
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            if self.closed.is_none() {
                self.poll_shed(cx);
                let event = self.conn.next_event();
                self.account();
                match event {
                    Some(Event::Closed(closed)) => {
                        self.closed = Some(Box::new(closed));
                        continue;
                    }
                    Some(event) => {
                        if self.conn.control_pending() && !self.conn.has_buffered_frame() {
                            // Pongs go out now, without waiting for the
                            // socket; data replies are written by the next
                            // `send` or before the next wait.
                            if let Poll::Ready(Err(error)) = self.poll_write_out(cx) {
                                return self.fail_io(error);
                            }
                        }
                        return Poll::Ready(Some(Ok(event)));
                    }
                    None => {}
                }
            }
            if self.closed.is_some() {
                // Finishing: write our last frames, then shut down when the
                // engine says this side closes the transport.
                let write = self.poll_write_out(cx);
                if let Poll::Ready(Err(_)) = write {
                    // The peer may be gone already; nothing left to say.
                    self.output = Output::default();
                }
                let flushed = write.is_ready();
                // The close timer expired: stop waiting for the peer to
                // take our output or to finish its own.
                let give_up = self.conn.close_timed_out();
                if self.conn.should_close_transport() && (flushed || give_up) {
                    if !self.shut_down {
                        // Errors on shutdown do not change how it ended.
                        let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
                        self.shut_down = true;
                    }
                    if !give_up && self.poll_linger(cx).is_pending() {
                        if self.poll_timer(cx) {
                            continue;
                        }
                        return Poll::Pending;
                    }
                    self.finished = true;
                    let clean = self.closed.as_ref().is_some_and(|closed| closed.is_clean());
                    self.record_end(clean);
                    return Poll::Ready(
                        self.closed
                            .as_deref()
                            .cloned()
                            .map(|closed| Ok(Event::Closed(closed))),
                    );
                }
                if self.poll_timer(cx) {
                    continue;
                }
                if !flushed {
                    return Poll::Pending;
                }
            } else {
                // Nothing to hand out: write before waiting.
                if let Poll::Ready(Err(error)) = self.poll_write_out(cx) {
                    return self.fail_io(error);
                }
                if self.poll_timer(cx) {
                    continue;
                }
            }
            if !self.conn.wants_read() {
                // Waiting for the socket to take our writes, or a timer.
                return Poll::Pending;
            }
            if let Some(member) = &mut self.budget
                && member.poll_read(cx).is_pending()
            {
                // The server's memory budget is exhausted: the peer's
                // writes stall until memory is freed.
                return Poll::Pending;
            }
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => self.conn.receive_eof(),
                Poll::Ready(Ok(read)) => {
                    if let Some(permit) = &mut self.permit {
                        permit.tally.read(read);
                    }
                    self.account();
                }
                Poll::Ready(Err(error)) => {
                    self.conn.receive_eof();
                    if self.closed.is_none() {
                        return self.fail_io(error);
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads once into the engine. Between messages the engine holds no
    /// input buffer, so an idle connection costs no buffer memory: the read
    /// goes to the thread's scratch buffer; a small read is copied into the
    /// engine, a large one hands the engine the scratch buffer itself (the
    /// thread takes a new one), so bulk data is never copied. In the middle
    /// of a frame the read goes straight into the engine's buffer, which
    /// has room for the whole frame. Each read takes at most
    /// `scratch::SIZE` bytes, so that unmasking (and validating) them
    /// follows while they are still in the CPU's cache.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let missing = self.conn.frame_bytes_missing();
        if !self.conn.receive_buffer().is_empty() || missing > crate::scratch::SIZE {
            let buffer = self.conn.receive_buffer_with_room(READ_RESERVE);
            return poll_read_buf(Pin::new(&mut self.stream), cx, buffer);
        }
        let stream = Pin::new(&mut self.stream);
        let conn = &mut self.conn;
        crate::scratch::with_bytes(|scratch| {
            // (The scratch buffer's room is `scratch::SIZE`: no limit.)
            let read = ready!(tokio_util::io::poll_read_buf(stream, cx, scratch))?;
            if read >= HAND_OVER_READ {
                conn.receive_bytes(std::mem::take(scratch));
            } else {
                conn.receive_data(scratch);
            }
            Poll::Ready(Ok(read))
        })
    }

    /// The transport failed: the connection is over.
    fn fail_io<T>(&mut self, error: io::Error) -> Poll<Option<Result<T, Error>>> {
        self.finished = true;
        self.record_end(false);
        Poll::Ready(Some(Err(Error::Io(error))))
    }

    /// The server's drain reached its deadline before the closing
    /// handshake finished: the connection ends now. The transport's write
    /// side is shut down if that does not wait (dropping the `WebSocket`
    /// closes it in any case).
    fn abort(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.shut_down = true;
        self.finished = true;
        self.record_end(false);
        Poll::Ready(Some(Err(Error::Timeout(sockeye_proto::Timeout::Close))))
    }

    /// Tells the server (its drain, its counters) how the connection
    /// ended.
    fn record_end(&mut self, clean: bool) {
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
            permit.finish(clean);
        }
        if let Some(slot) = &self.on_end {
            slot.record(self.closed.as_deref());
        }
    }

    /// After failing the connection on a violation (the peer is alive and
    /// may still be sending), reads and drops what the peer still
    /// sends until it closes its side (bounded by the close timer): closing
    /// a socket with unread input makes the kernel send a reset, which can
    /// destroy our Close frame before the peer reads it. A clean closing
    /// handshake needs no draining: the peer's Close was its last frame.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let failed = self.closed.as_ref().is_some_and(|closed| {
            matches!(
                closed.error,
                Some(sockeye_proto::Error::Protocol(_) | sockeye_proto::Error::Aborted(_))
            )
        });
        if !failed {
            return Poll::Ready(());
        }
        // Our FIN is out: a peer that reads closes its side at once. Give
        // it a moment, not the whole close timeout.
        let linger = self
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
        if linger.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Arms the tokio timer at the engine's next deadline; returns true if
    /// a deadline passed and the engine handled it. The engine never hands
    /// out a deadline that is already past once it handled that time, so
    /// a caller that loops on `true` waits again soon.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        // Tokio's clock, so paused time in tests drives the engine too.
        let now = tokio::time::Instant::now().into_std();
        let Some(deadline) = self.conn.poll_timeout(now) else {
            self.timer = None;
            return false;
        };
        if deadline <= now {
            self.conn.handle_timeout(now);
            return true;
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        match &mut self.timer {
            Some(timer) if timer.deadline() == deadline => {}
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        if let Some(timer) = &mut self.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            self.timer = None;
            self.conn
                .handle_timeout(tokio::time::Instant::now().into_std());
            return true;
        }
        false
    }

    /// Whether a reply may wait: more received frames are buffered, so the
    /// application will call `recv` again before the task waits, and not
    /// too much is queued.
    fn should_cork(&self) -> bool {
        self.conn.has_buffered_frame()
            && self.buffered_amount() < self.conn.config().get_max_buffered_bytes()
    }

    /// Updates the connection's share of its server's memory budget, if
    /// it has one: what the engine holds and what was taken to write; and
    /// copies the engine's message counts into its tally (plain fields;
    /// published at coarse points).
    #[inline]
    fn account(&mut self) {
        if let Some(member) = &mut self.budget {
            member.update(self.conn.memory_held() + self.output.held());
        }
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
        }
    }

    /// Aborts the connection with 1013 if its server's memory budget chose
    /// it to be shed: what it holds is dropped at once, and the Close
    /// goes out if it can follow what was written.
    fn poll_shed(&mut self, cx: &mut Context<'_>) {
        let Some(member) = &self.budget else {
            return;
        };
        let ended = self.closed.is_some() || self.conn.state() == sockeye_proto::State::Closed;
        if ended || !member.poll_shed(cx) {
            return;
        }
        crate::budget::shed(&mut self.conn, &mut self.output);
        self.account();
        // Whichever task waits on this connection (a split half's other
        // half too) must see the end.
        cx.waker().wake_by_ref();
    }

    /// Writes all queued output with vectored writes, then flushes the
    /// stream (TLS streams buffer).
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_shed(cx);
        let written = self.poll_write_queued(cx);
        self.account();
        if let Some(permit) = &mut self.permit {
            // After a batch of writes: a coarse point (see `stats.rs`).
            permit.publish();
        }
        written
    }

    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.output.is_empty()
                && let Some(pending) = self.conn.peek_transmit()
            {
                // The common case: everything queued corked in one buffer,
                // written from where it lies (no chunk to share and drop);
                // what the stream does not take stays in the engine.
                let written = ready!(Pin::new(&mut self.stream).poll_write(cx, pending))?;
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.conn.consume_transmit(written);
                if let Some(permit) = &mut self.permit {
                    permit.tally.wrote(written);
                }
                continue;
            }
            self.output.refill(&mut self.conn);
            if self.output.is_empty() {
                return Pin::new(&mut self.stream).poll_flush(cx);
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.output.slices(&mut slices);
            let written =
                ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output.advance(written);
            if let Some(permit) = &mut self.permit {
                permit.tally.wrote(written);
            }
        }
    }

    /// Waits until less than the config's `max_buffered_bytes` is queued.
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.over_buffer_limit() {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Bytes queued and not yet written to the transport: the engine's
    /// queue plus what the front-end took from it (as a browser's
    /// `WebSocket.bufferedAmount`, frame headers included). See
    /// [`try_send`](Self::try_send) for sending by it.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount() + self.output.len()
    }

    /// Starts (or stops) recording every frame received and queued to
    /// send, for debugging output; see
    /// [`Connection::trace_frames`](sockeye_proto::Connection::trace_frames).
    /// Default: off.
    pub fn trace_frames(&mut self, on: bool) {
        self.conn.trace_frames(on);
    }

    /// Moves the frames recorded since the last call into `into` and
    /// returns how many were dropped meanwhile; see
    /// [`Connection::drain_frame_trace`](sockeye_proto::Connection::drain_frame_trace).
    pub fn drain_frame_trace(&mut self, into: &mut Vec<sockeye_proto::frame::TracedFrame>) -> u64 {
        self.conn.drain_frame_trace(into)
    }

    /// Whether queued output exceeds the backpressure bound.
    pub(crate) fn over_buffer_limit(&self) -> bool {
        self.buffered_amount() >= self.conn.config().get_max_buffered_bytes()
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S> Sink<Message> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    /// Ready while less than the config's `max_buffered_bytes` is queued.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_room(cx)
    }

    /// Queues the message without writing it: `Sink` users batch, and
    /// `poll_flush` writes.
    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().conn.send(message).map_err(Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx).map_err(Error::Io)
    }

    /// Starts the closing handshake with 1000 and drives it to the end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.conn.state() == sockeye_proto::State::Open {
            this.conn.send_close(CloseCode::NORMAL, "")?;
        }
        loop {
            match ready!(this.poll_event(cx)) {
                Some(Ok(Event::Closed(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(error)),
            }
        }
    }
}
