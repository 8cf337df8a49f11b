//! The task that drains one subscriber's mailbox into its connection.
//!
//! It sleeps until something is queued, then takes everything queued at
//! once and hands it to the engine while the engine has room, so that a
//! backlog leaves in one write (corked): the cost of the wake-up and of
//! the system call is shared by every message that piled up meanwhile.
//!
//! A write that makes no progress (the client does not read) for the stall
//! timeout ends the subscriber; a slow client that keeps reading does not
//! stall, however long its backlog takes.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use sockeye_proto::CloseCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::HubShared;
use super::mailbox::{Mailbox, Outgoing, Take};
use crate::error::Error;
use crate::tokio::SendHalf;

/// How long a Close frame to a subscriber that is dropped may take to be
/// written: it may not be reading at all.
const CLOSE_WRITE_WAIT: Duration = Duration::from_secs(1);

/// How a batch ended.
enum Written {
    /// Everything was handed over and written.
    All,
    /// A close was queued and written: the writer is done.
    Closed,
}

/// Why a batch was not written.
enum Failure {
    /// The connection failed or closed; its reader sees it too.
    Connection,
    /// No byte was written for the stall timeout.
    Stalled,
}

/// Drains `mailbox` into `sender` until the subscriber is detached, closed
/// or dropped for being slow, or the connection fails.
pub(crate) async fn run<S>(
    mailbox: Arc<Mailbox>,
    hub: Weak<HubShared>,
    mut sender: SendHalf<S>,
    stall_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut batch = VecDeque::new();
    loop {
        match poll_fn(|cx| mailbox.poll_take(cx, &mut batch)).await {
            Take::Items => {}
            Take::Kicked => {
                close_too_slow(&mut sender).await;
                break;
            }
            Take::Detached => break,
        }
        let written = {
            let write = write_batch(&mut sender, &mut batch, &mailbox, &hub, stall_timeout);
            let mut write = pin!(write);
            poll_fn(|cx| {
                // Closed for being slow while a write waits for the client.
                if mailbox.poll_kicked(cx).is_ready() {
                    return Poll::Ready(None);
                }
                write.as_mut().poll(cx).map(Some)
            })
            .await
        };
        let Some(written) = written else {
            close_too_slow(&mut sender).await;
            break;
        };
        match written {
            Ok(Written::All) => {}
            Ok(Written::Closed) => break,
            Err(Failure::Connection) => break,
            Err(Failure::Stalled) => {
                mailbox.mark_stalled();
                if let Some(hub) = hub.upgrade() {
                    hub.counters.stalled.fetch_add(1, Ordering::Relaxed);
                }
                close_too_slow(&mut sender).await;
                break;
            }
        }
    }
    let unsent = batch
        .iter()
        .filter(|item| matches!(item, Outgoing::Message(_)))
        .count() as u64;
    mailbox.dropped.fetch_add(unsent, Ordering::Relaxed);
    let lost = unsent + mailbox.end();
    if let Some(hub) = hub.upgrade() {
        hub.counters
            .dropped_closed
            .fetch_add(lost, Ordering::Relaxed);
        hub.remove_mailbox(&mailbox);
    }
}

/// Hands `batch` to the engine, as much as fits under its backpressure
/// bound at a time, and writes it; fails if no byte is written for
/// `stall_timeout`.
async fn write_batch<S>(
    sender: &mut SendHalf<S>,
    batch: &mut VecDeque<Outgoing>,
    mailbox: &Mailbox,
    hub: &Weak<HubShared>,
    stall_timeout: Duration,
) -> Result<Written, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = pin!(tokio::time::sleep(stall_timeout));
    let mut stall = Stall {
        timeout: stall_timeout,
        deadline,
        low: sender.buffered_amount(),
    };
    let mut closed = false;
    while !batch.is_empty() && !closed {
        // Room under the backpressure bound: what is queued is written.
        progress(sender, &mut stall, |sender, cx| {
            pin!(sender.wait_room()).poll(cx)
        })
        .await?;
        let handed = sender.with_socket(|socket| -> Result<u64, Error> {
            let mut handed = 0;
            while let Some(item) = batch.pop_front() {
                match item {
                    Outgoing::Message(message) => {
                        if let Err(error) = socket.conn.send_prepared(&message) {
                            // The connection has ended: the message is
                            // counted with the rest of the batch, as lost.
                            batch.push_front(Outgoing::Message(message));
                            return Err(error.into());
                        }
                        handed += 1;
                    }
                    Outgoing::Close(code, reason) => {
                        socket.conn.send_close(code, &reason)?;
                        closed = true;
                        break;
                    }
                }
                if socket.over_buffer_limit() {
                    break;
                }
            }
            Ok(handed)
        });
        let handed = handed.map_err(|_| Failure::Connection)?;
        stall.handed(sender.buffered_amount());
        mailbox.delivered.fetch_add(handed, Ordering::Relaxed);
        if let Some(hub) = hub.upgrade() {
            hub.counters.delivered.fetch_add(handed, Ordering::Relaxed);
        }
    }
    progress(sender, &mut stall, |sender, cx| {
        pin!(sender.flush()).poll(cx)
    })
    .await?;
    Ok(if closed {
        Written::Closed
    } else {
        Written::All
    })
}

/// The stall timeout of one batch: it runs while no byte is written, and
/// starts over whenever one is.
struct Stall<'a> {
    timeout: Duration,
    deadline: Pin<&'a mut Sleep>,
    /// The fewest bytes queued since bytes were last handed to the engine:
    /// fewer means some were written.
    low: usize,
}

impl Stall<'_> {
    /// `buffered` bytes are queued now.
    fn observe(&mut self, buffered: usize) {
        if buffered < self.low {
            self.low = buffered;
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
    }

    /// More was handed to the engine: `buffered` bytes are queued now.
    fn handed(&mut self, buffered: usize) {
        self.low = buffered;
    }
}

/// Polls `write` (which writes what is queued) until it is ready, watching
/// the bytes queued: fails if none is written for the stall timeout.
/// `write` polls a fresh `wait_room` or `flush` each time: both keep their
/// progress in the connection, not in the future.
async fn progress<S>(
    sender: &mut SendHalf<S>,
    stall: &mut Stall<'_>,
    mut write: impl FnMut(&mut SendHalf<S>, &mut Context<'_>) -> Poll<Result<(), Error>>,
) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    poll_fn(|cx| {
        let written = write(sender, cx);
        // (The receiving half writes too, Pongs and what is queued before
        // it waits: any write counts.)
        stall.observe(sender.buffered_amount());
        match written {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(_)) => Poll::Ready(Err(Failure::Connection)),
            Poll::Pending if stall.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(Failure::Stalled))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Sends a Close frame, bounded: the peer may not be reading.
async fn close_too_slow<S>(sender: &mut SendHalf<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let closing = sender.close(CloseCode::POLICY_VIOLATION, "too slow to keep up");
    let _ = tokio::time::timeout(CLOSE_WRITE_WAIT, closing).await;
}
