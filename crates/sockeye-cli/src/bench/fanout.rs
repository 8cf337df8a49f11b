//! `--fanout`: one publisher, many receivers, through a broadcast server
//! (`sockeye serve --broadcast`).
//!
//! The receivers connect first; once every one has, the publisher
//! connects and sends numbered messages, never more than `--pipeline`
//! ahead of the slowest receiver (so the server's queues stay short and
//! no receiver is dropped for being slow). A [`Board`] shared by all the
//! connections counts the deliveries of each message in flight; a
//! message's last delivery lets the publisher send the next one. Every
//! receiver checks every message (the publisher's payloads, in order),
//! and the round trip from publication to delivery is recorded. When the
//! time is over, the publisher sends an empty binary message, which tells
//! each receiver that everything has arrived.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::SinkExt;
use sockeye::{Message, Utf8Bytes};
use tokio::sync::Notify;

use super::lane::{LaneEnd, Tally};
use super::payload::Payloads;
use super::{Plan, Shared};

/// What the publisher and the receivers share.
pub struct Board {
    /// Deliveries of each message in flight, at its sequence number
    /// modulo the window.
    delivered: Box<[AtomicU32]>,
    /// When each message in flight was published, in nanoseconds since
    /// `epoch`.
    published_at: Box<[AtomicU64]>,
    epoch: Instant,
    /// Receivers connected and not failed.
    live: AtomicU32,
    /// Told when a message has reached every live receiver.
    progress: Notify,
}

impl Board {
    /// A board for `window` messages in flight.
    pub fn new(window: usize) -> Board {
        let window = window.max(1);
        Board {
            delivered: (0..window).map(|_| AtomicU32::new(0)).collect(),
            published_at: (0..window).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            live: AtomicU32::new(0),
            progress: Notify::new(),
        }
    }

    fn slot(&self, sequence: u64) -> usize {
        (sequence % self.delivered.len() as u64) as usize
    }

    /// Whether message `sequence` may be published: the one a window
    /// before it reached every live receiver.
    fn may_publish(&self, sequence: u64) -> bool {
        let window = self.delivered.len() as u64;
        sequence < window
            || self.delivered[self.slot(sequence)].load(Ordering::Acquire)
                >= self.live.load(Ordering::Acquire)
    }

    /// Records the publication of `sequence` (its slot is free).
    fn published(&self, sequence: u64) {
        let slot = self.slot(sequence);
        self.delivered[slot].store(0, Ordering::Release);
        let nanos = self.epoch.elapsed().as_nanos() as u64;
        self.published_at[slot].store(nanos, Ordering::Release);
    }

    /// Records one delivery of `sequence`; its round trip.
    fn delivered(&self, sequence: u64) -> Duration {
        let slot = self.slot(sequence);
        let published = self.published_at[slot].load(Ordering::Acquire);
        let count = self.delivered[slot].fetch_add(1, Ordering::AcqRel) + 1;
        if count >= self.live.load(Ordering::Acquire) {
            self.progress.notify_one();
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        Duration::from_nanos(now.saturating_sub(published))
    }

    /// A receiver is gone: the publisher no longer waits for it.
    fn leave(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.progress.notify_one();
    }
}

/// Receiver `id`: connects, checks every message until the empty one,
/// closes.
pub async fn receive(id: u32, plan: Arc<Plan>, shared: Arc<Shared>, delay: Duration) -> LaneEnd {
    let mut end = LaneEnd::default();
    let Some(board) = shared.fanout.as_ref() else {
        end.error = Some("internal error: no fan-out board".into());
        return end;
    };
    tokio::time::sleep(delay).await;
    let connected = plan.client.builder().connect().await;
    let Some((mut ws, _)) = end.opened(format_args!("receiver {id}"), &shared, connected) else {
        return end;
    };
    board.live.fetch_add(1, Ordering::AcqRel);
    end.compressed = ws.connection().deflate_params().is_some();
    // The publisher's payloads.
    let mut payloads = Payloads::with_kind(plan.payload, 0, plan.size, 1);
    let mut tally = Tally::default();
    let mut next = 0u64;
    let outcome = poll_fn(|cx| {
        loop {
            match Pin::new(&mut ws).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    if message.is_empty() && !message.is_text() {
                        return Poll::Ready(Ok(()));
                    }
                    let round_trip = board.delivered(next);
                    let right =
                        message.is_text() == plan.text && payloads.check(next, message.as_bytes());
                    if !right {
                        tally.mismatch();
                    }
                    next += 1;
                    end.last_receive = Some(Instant::now());
                    tally.received(&shared, message.len(), round_trip);
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(format!("connection failed: {error}")));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Err("the server closed the connection".to_owned()));
                }
                Poll::Pending => {
                    tally.publish(&shared);
                    return Poll::Pending;
                }
            }
        }
    })
    .await;
    tally.flush(&shared);
    board.leave();
    match outcome {
        Ok(()) => end.close(&mut ws).await,
        Err(error) => {
            tracing::debug!("receiver {id}: {error}");
            end.error = Some(error);
        }
    }
    end
}

/// The publisher: connects, publishes while the window allows until the
/// run stops, sends the empty message, closes.
pub async fn publish(id: u32, plan: Arc<Plan>, shared: Arc<Shared>) -> LaneEnd {
    let mut end = LaneEnd::default();
    let Some(board) = shared.fanout.as_ref() else {
        end.error = Some("internal error: no fan-out board".into());
        return end;
    };
    let connected = plan.client.builder().connect().await;
    let Some((mut ws, _)) = end.opened(format_args!("publisher"), &shared, connected) else {
        return end;
    };
    end.compressed = ws.connection().deflate_params().is_some();
    let mut payloads = Payloads::with_kind(plan.payload, id, plan.size, plan.pipeline);
    let mut next = 0u64;
    let outcome: Result<(), String> = async {
        loop {
            let stopped = shared.stopped.notified();
            let progress = board.progress.notified();
            let mut sent = false;
            // Out of --messages: done.
            let mut done = false;
            while board.may_publish(next) {
                if !shared.may_send() {
                    done = true;
                    break;
                }
                board.published(next);
                let payload = payloads.make(next);
                let message =
                    if plan.text {
                        Message::Text(Utf8Bytes::try_from(payload).map_err(|_| {
                            "internal error: a text payload is not UTF-8".to_owned()
                        })?)
                    } else {
                        Message::Binary(payload)
                    };
                end.first_send.get_or_insert_with(Instant::now);
                ws.feed(message)
                    .await
                    .map_err(|error| format!("sending failed: {error}"))?;
                next += 1;
                sent = true;
            }
            if sent {
                ws.flush()
                    .await
                    .map_err(|error| format!("sending failed: {error}"))?;
            }
            if done || shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if board.live.load(Ordering::Acquire) == 0 {
                return Err("no receiver is left".to_owned());
            }
            tokio::select! {
                () = stopped => {}
                () = progress => {}
                received = ws.recv() => match received {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("connection failed: {error}")),
                    None => return Err("the server closed the connection".to_owned()),
                },
            }
        }
    }
    .await;
    if let Err(error) = outcome {
        tracing::debug!("publisher: {error}");
        end.error = Some(error);
        return end;
    }
    // The end: an empty binary message after everything else.
    if let Err(error) = ws.send(Message::Binary(Bytes::new())).await {
        end.error = Some(format!("sending failed: {error}"));
        return end;
    }
    end.close(&mut ws).await;
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_waits_for_every_receiver() {
        let board = Board::new(2);
        board.live.store(3, Ordering::Relaxed);
        assert!(board.may_publish(0) && board.may_publish(1));
        board.published(0);
        board.published(1);
        assert!(!board.may_publish(2), "message 0 reached nobody yet");
        board.delivered(0);
        board.delivered(0);
        assert!(!board.may_publish(2));
        board.delivered(0);
        assert!(board.may_publish(2));
        assert!(!board.may_publish(3));
        // A receiver that leaves is no longer waited for.
        board.delivered(1);
        board.delivered(1);
        board.leave();
        assert!(board.may_publish(3));
    }
}
