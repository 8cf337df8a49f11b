//! [`WebSocket::try_send`]: sending without waiting, with the buffer's
//! state in the answer (as uWebSockets' `send` answers SUCCESS,
//! BACKPRESSURE or DROPPED).

use std::task::{Context, Poll, Waker};

use sockeye_proto::Message;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::tokio::WebSocket;

/// What [`WebSocket::try_send`] (or [`SendHalf::try_send`]) did with a
/// message.
///
/// [`SendHalf::try_send`]: crate::SendHalf::try_send
#[derive(Debug)]
#[must_use = "a Dropped message was not sent"]
pub enum SendStatus {
    /// Queued, and what is still buffered (written to the socket by a
    /// later call, see [`WebSocket::try_send`]) is at most the config's
    /// [`high_water_bytes`](sockeye_proto::Config::high_water_bytes).
    Queued,
    /// Queued, but more than the config's
    /// [`high_water_bytes`](sockeye_proto::Config::high_water_bytes) is
    /// now buffered: the peer (or the network) is not keeping up. Slow
    /// down, or wait with [`WebSocket::flush`]; past
    /// [`max_buffered_bytes`](sockeye_proto::Config::max_buffered_bytes)
    /// messages are dropped.
    Backpressure,
    /// Not queued: [`max_buffered_bytes`](sockeye_proto::Config::max_buffered_bytes)
    /// or more was buffered (where [`WebSocket::send`] would wait). The
    /// message is handed back, to retry later or to discard.
    Dropped(Message),
}

impl SendStatus {
    /// Whether the message was queued ([`Queued`](Self::Queued) or
    /// [`Backpressure`](Self::Backpressure)).
    pub fn is_queued(&self) -> bool {
        !matches!(self, SendStatus::Dropped(_))
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Sends a message without waiting: queues it if there is room, writes
    /// what the socket takes at once, and says how full the buffer is (see
    /// [`SendStatus`]). A message is refused ([`SendStatus::Dropped`],
    /// handed back) exactly when [`send`](Self::send) would wait: when the
    /// config's `max_buffered_bytes` or more is buffered.
    ///
    /// What the socket does not take at once stays buffered
    /// ([`buffered_amount`](Self::buffered_amount)) and is written by the
    /// next call that writes: `try_send`, [`send`](Self::send),
    /// [`flush`](Self::flush), or [`recv`](Self::recv) (and the other
    /// receiving methods), which writes before it waits. A task that
    /// receives in a loop thus writes it without further ado; a task that
    /// only calls `try_send` calls `flush` when it has nothing else to do.
    ///
    /// An error means the connection failed or was closed (the message is
    /// then not sent).
    ///
    /// ```
    /// use sockeye::proto::Config;
    /// use sockeye::{Message, Role, SendStatus, WebSocket};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sockeye::Error> {
    /// let (a, _b) = tokio::io::duplex(1 << 16);
    /// let mut ws = WebSocket::from_raw(a, Role::Server, Config::default(), &[]);
    /// match ws.try_send(Message::text("tick"))? {
    ///     SendStatus::Queued => {}
    ///     SendStatus::Backpressure => { /* slow down: skip some ticks */ }
    ///     SendStatus::Dropped(_tick) => { /* full: keep it for later, or not */ }
    /// }
    /// // The pipe had room: written at once.
    /// assert_eq!(ws.buffered_amount(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_send(&mut self, message: impl Into<Message>) -> Result<SendStatus, Error> {
        // Nobody waits on this call: the socket is polled with a waker
        // that does nothing. A task that waits on this connection later
        // polls it again, with its own waker, before it waits.
        self.try_send_with(&mut Context::from_waker(Waker::noop()), message.into())
    }

    /// [`WebSocket::try_send`] with `cx` for the one write it attempts
    /// (the split halves pass the waker that wakes both).
    pub(crate) fn try_send_with(
        &mut self,
        cx: &mut Context<'_>,
        message: Message,
    ) -> Result<SendStatus, Error> {
        if self.over_buffer_limit() {
            // Maybe the socket took some since: write first, then look.
            self.write_once(cx)?;
            if self.over_buffer_limit() {
                return Ok(SendStatus::Dropped(message));
            }
        }
        self.conn.send(message)?;
        self.write_once(cx)?;
        if self.buffered_amount() > self.conn.config().get_high_water_bytes() {
            Ok(SendStatus::Backpressure)
        } else {
            Ok(SendStatus::Queued)
        }
    }

    /// Writes what the socket takes without waiting.
    fn write_once(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        match self.poll_write_out(cx) {
            Poll::Ready(Err(error)) => Err(Error::Io(error)),
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
        }
    }
}
