//! The task that drains one subscriber's mailbox into its connection.
//!
//! It sleeps until something is queued, then takes everything queued at
//! once and hands it to the engine while the engine has room, so that a
//! backlog leaves in one write (corked): the cost of the wake-up and of
//! the system call is shared by every message that piled up meanwhile.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use sockeye_proto::CloseCode;
use tokio::io::{AsyncRead, AsyncWrite};

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
                if let Some(hub) = hub.upgrade() {
                    hub.counters.kicked.fetch_add(1, Ordering::Relaxed);
                }
                close(
                    &mut sender,
                    CloseCode::POLICY_VIOLATION,
                    "too slow to keep up",
                )
                .await;
                break;
            }
            Take::Detached => break,
        }
        let written = {
            let write = tokio::time::timeout(
                stall_timeout,
                write_batch(&mut sender, &mut batch, &mailbox, &hub),
            );
            let mut write = std::pin::pin!(write);
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
            if let Some(hub) = hub.upgrade() {
                hub.counters.kicked.fetch_add(1, Ordering::Relaxed);
            }
            close(
                &mut sender,
                CloseCode::POLICY_VIOLATION,
                "too slow to keep up",
            )
            .await;
            break;
        };
        match written {
            Ok(Ok(Written::All)) => {}
            Ok(Ok(Written::Closed)) => break,
            // The connection failed or closed; its reader sees it too.
            Ok(Err(_)) => break,
            Err(_) => {
                mailbox.mark_stalled();
                if let Some(hub) = hub.upgrade() {
                    hub.counters.stalled.fetch_add(1, Ordering::Relaxed);
                }
                close(
                    &mut sender,
                    CloseCode::POLICY_VIOLATION,
                    "too slow to keep up",
                )
                .await;
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
/// bound at a time, and writes it.
async fn write_batch<S>(
    sender: &mut SendHalf<S>,
    batch: &mut VecDeque<Outgoing>,
    mailbox: &Mailbox,
    hub: &Weak<HubShared>,
) -> Result<Written, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut closed = false;
    while !batch.is_empty() && !closed {
        sender.wait_room().await?;
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
        })?;
        mailbox.delivered.fetch_add(handed, Ordering::Relaxed);
        if let Some(hub) = hub.upgrade() {
            hub.counters.delivered.fetch_add(handed, Ordering::Relaxed);
        }
    }
    sender.flush().await?;
    Ok(if closed {
        Written::Closed
    } else {
        Written::All
    })
}

/// Sends a Close frame, bounded: the peer may not be reading.
async fn close<S>(sender: &mut SendHalf<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_WRITE_WAIT, sender.close(code, reason)).await;
}
