//! [`WebSocket::split`]: a receiving half and a sending half for two tasks.
//!
//! Both halves share the connection behind a mutex that is held only for
//! the duration of one poll, never across an `.await`. Since both halves
//! may wait for the socket to accept writes (the receiver writes Pongs and
//! Close replies), the socket is always polled with a waker that wakes
//! both: one half's registration never hides the other's.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;
use sockeye_proto::{CloseCode, Event, Message, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::tokio::{SendStatus, WebSocket};

/// Wakes whichever halves wait on the socket.
#[derive(Debug, Default)]
struct Wakers {
    receiver: AtomicWaker,
    sender: AtomicWaker,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.receiver.wake();
        self.sender.wake();
    }
}

#[derive(Debug)]
struct Shared<S> {
    socket: Mutex<WebSocket<S>>,
    wakers: Arc<Wakers>,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        // A panic in another half's poll cannot leave the engine
        // inconsistent in a way that matters more than losing the socket.
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `poll` on the socket with the shared waker, after registering
    /// `cx`'s waker in `slot`.
    fn poll_with<T>(
        &self,
        cx: &mut Context<'_>,
        slot: fn(&Wakers) -> &AtomicWaker,
        poll: impl FnOnce(&mut WebSocket<S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        slot(&self.wakers).register(cx.waker());
        let waker = Waker::from(self.wakers.clone());
        let mut shared_cx = Context::from_waker(&waker);
        poll(&mut self.lock(), &mut shared_cx)
    }
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`].
#[derive(Debug)]
pub struct RecvHalf<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`].
#[derive(Debug)]
pub struct SendHalf<S> {
    shared: Arc<Shared<S>>,
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Splits the connection into a receiving half and a sending half that
    /// can move to two tasks. The receiving half keeps answering Pings and
    /// Closes; the sending half sends.
    pub fn split(self) -> (RecvHalf<S>, SendHalf<S>) {
        let shared = Arc::new(Shared {
            socket: Mutex::new(self),
            wakers: Arc::default(),
        });
        (
            RecvHalf {
                shared: shared.clone(),
            },
            SendHalf { shared },
        )
    }
}

impl<S> RecvHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The frames recorded since the last drain (by either half); see
    /// [`WebSocket::drain_frame_trace`].
    pub fn drain_frame_trace(&self, into: &mut Vec<sockeye_proto::frame::TracedFrame>) -> u64 {
        self.shared.lock().drain_frame_trace(into)
    }

    /// Receives the next data message; see [`WebSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel-safe: no message is lost if the future is dropped.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receives the next event; see [`WebSocket::recv_event`].
    ///
    /// # Cancel safety
    /// Cancel-safe, like [`RecvHalf::recv`].
    pub async fn recv_event(&mut self) -> Option<Result<Event, Error>> {
        poll_fn(|cx| {
            self.shared
                .poll_with(cx, |w| &w.receiver, |socket, cx| socket.poll_event(cx))
        })
        .await
    }

    /// Polls for the next data message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.shared
            .poll_with(cx, |w| &w.receiver, |socket, cx| socket.poll_recv(cx))
    }
}

impl<S> SendHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Sends a message; see [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// The message is queued whole before the first wait; if the future is
    /// dropped after that, it is still sent by the next write.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        // Room first, as `WebSocket::send` does: cancelled sends cannot
        // pile up messages past the bound.
        poll_fn(|cx| {
            self.shared
                .poll_with(cx, |w| &w.sender, |socket, cx| socket.poll_room(cx))
        })
        .await?;
        self.shared.lock().conn.send(message.into())?;
        self.flush().await
    }

    /// Sends a message prepared for many connections; see
    /// [`WebSocket::send_prepared`].
    ///
    /// # Cancel safety
    /// Like [`SendHalf::send`].
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll_with(cx, |w| &w.sender, |socket, cx| socket.poll_room(cx))
        })
        .await?;
        self.shared.lock().conn.send_prepared(message)?;
        self.flush().await
    }

    /// Like [`SendHalf::send`], never compressed; see
    /// [`WebSocket::send_uncompressed`].
    ///
    /// # Cancel safety
    /// Like [`SendHalf::send`].
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll_with(cx, |w| &w.sender, |socket, cx| socket.poll_room(cx))
        })
        .await?;
        self.shared.lock().conn.send_uncompressed(message.into())?;
        self.flush().await
    }

    /// Sends a message without waiting; see [`WebSocket::try_send`].
    ///
    /// What the socket does not take at once is written by the next call
    /// that writes on either half: this half's `try_send`, `send` or
    /// `flush`, or the receiving half's `recv`, which writes before it
    /// waits and is woken when the socket takes more. With the receiving
    /// half in a `recv` loop (the usual shape), queued messages thus go
    /// out by themselves.
    pub fn try_send(&mut self, message: impl Into<Message>) -> Result<SendStatus, Error> {
        // The waker that wakes both halves: a write that would wait wakes
        // the receiving half when the socket has room (this half waits on
        // nothing: its slot keeps whatever it had).
        let waker = Waker::from(self.shared.wakers.clone());
        let mut cx = Context::from_waker(&waker);
        self.shared.lock().try_send_with(&mut cx, message.into())
    }

    /// Waits until the engine's queue is under the backpressure bound
    /// (writing meanwhile).
    pub(crate) async fn wait_room(&mut self) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll_with(cx, |w| &w.sender, |socket, cx| socket.poll_room(cx))
        })
        .await
    }

    /// Runs `f` on the connection, under the lock shared with the other
    /// half (never across a wait).
    pub(crate) fn with_socket<T>(&self, f: impl FnOnce(&mut WebSocket<S>) -> T) -> T {
        f(&mut self.shared.lock())
    }

    /// Bytes queued and not yet written; see [`WebSocket::buffered_amount`].
    pub fn buffered_amount(&self) -> usize {
        self.shared.lock().buffered_amount()
    }

    /// The frames recorded since the last drain (by either half); see
    /// [`WebSocket::drain_frame_trace`].
    pub fn drain_frame_trace(&self, into: &mut Vec<sockeye_proto::frame::TracedFrame>) -> u64 {
        self.shared.lock().drain_frame_trace(into)
    }

    /// Sends a Ping; see [`WebSocket::ping`].
    ///
    /// # Cancel safety
    /// Like [`SendHalf::send`].
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.shared.lock().conn.send_ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake and writes the Close frame. The
    /// receiving half sees the end when the peer answers.
    ///
    /// # Cancel safety
    /// The Close frame is queued before the first wait.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.lock().conn.send_close(code, reason)?;
        // The close timer now bounds the connection: the receiving half,
        // which may be waiting on a later deadline (or none), re-arms its
        // timer, so that a peer that never answers (or never reads) is
        // dropped when the close timeout passes.
        self.shared.wakers.receiver.wake();
        self.flush().await
    }

    /// Writes everything queued.
    ///
    /// # Cancel safety
    /// Cancel-safe: what is not yet written stays queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_inner(cx)).await
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared
            .poll_with(cx, |w| &w.sender, |socket, cx| socket.poll_write_out(cx))
            .map_err(Error::Io)
    }
}

impl<S> Stream for RecvHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S> Sink<Message> for SendHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().shared.poll_with(
            cx,
            |w| &w.sender,
            |socket, cx| Pin::new(socket).poll_ready(cx),
        )
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Pin::new(&mut *self.shared.lock()).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_inner(cx)
    }

    /// Sends a Close frame (1000) and writes it; the receiving half sees
    /// the end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        {
            let mut socket = this.shared.lock();
            if socket.conn.state() == sockeye_proto::State::Open {
                socket.conn.send_close(CloseCode::NORMAL, "")?;
                // As in `SendHalf::close`: the receiving half re-arms its
                // timer for the close timeout.
                this.shared.wakers.receiver.wake();
            }
        }
        this.poll_flush_inner(cx)
    }
}
