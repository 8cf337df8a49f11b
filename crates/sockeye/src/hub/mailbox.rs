//! One subscriber's bounded queue, and what happens when it is full.
//!
//! Publishers only ever lock a mailbox for a push: the hub never waits on
//! a subscriber. The subscriber's writer takes everything queued at once,
//! so that whatever piled up while it was busy leaves in one write (and
//! one task wake-up serves many messages).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use sockeye_proto::{CloseCode, PreparedMessage};

/// What a subscriber that cannot keep up gets: its queue is full when a
/// message is published to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Close the connection with 1008 (policy violation: the server's
    /// policy is a bounded queue per client) and drop what it had queued.
    /// The default, as in uWebSockets' `closeOnBackpressureLimit` and
    /// Node `ws` servers that terminate slow clients: a client that lags
    /// behind a live feed learns it and can reconnect, rather than read
    /// stale data or silently miss messages.
    #[default]
    Close,
    /// Drop the oldest queued message to make room: the subscriber misses
    /// messages but sees the newest (a ticker, a game state).
    DropOldest,
    /// Drop the message being published: the subscriber misses the newest
    /// messages but what it had queued arrives.
    DropNewest,
}

/// What one offer to a mailbox did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// Queued, and the oldest message dropped for it.
    DroppedOldest,
    /// Not queued: the queue was full.
    DroppedNewest,
    /// The queue was full: the subscriber is to be closed. Carries how
    /// many messages were lost (its queue and this one).
    Kicked(u64),
    /// The subscriber is closing or gone.
    Gone,
}

/// An item in a subscriber's queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Message(PreparedMessage),
    /// Close the connection once everything before it is written.
    Close(CloseCode, String),
}

/// Where a mailbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Open,
    /// A close was queued: nothing more is taken.
    Closing,
    /// Dropped for being slow: its writer closes it with 1008.
    Kicked,
    /// Its [`Subscriber`](super::Subscriber) was dropped: the writer
    /// writes what is queued and ends.
    Detached,
    /// Its writer has ended.
    Ended,
}

/// Why the hub closed a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Its queue was full ([`SlowPolicy::Close`]).
    Slow,
    /// A write made no progress for the stall timeout.
    Stalled,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Outgoing>,
    status: Status,
    /// Why the hub closed it, if it did.
    cause: Option<Cause>,
    /// The writer, when it waits for something to write.
    waker: Option<Waker>,
    /// The writer, while it writes: told only if the subscriber is closed
    /// for being slow meanwhile (pushes do not wake it).
    kick_waker: Option<Waker>,
}

/// What the writer takes from its mailbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Items moved into the batch (the last may be a close).
    Items,
    /// Dropped for being slow.
    Kicked,
    /// Detached, and nothing left to write.
    Detached,
}

/// One subscriber's queue, shared by the hub (which pushes) and its
/// writer (which takes).
#[derive(Debug)]
pub(crate) struct Mailbox {
    pub(crate) id: u64,
    capacity: usize,
    policy: SlowPolicy,
    state: Mutex<State>,
    /// Where this mailbox sits in each of its topics' lists. Changed only
    /// under the hub's topic map write lock.
    pub(crate) positions: Mutex<HashMap<Arc<str>, usize>>,
    /// Messages written to the connection.
    pub(crate) delivered: AtomicU64,
    /// Messages dropped from or refused by this queue.
    pub(crate) dropped: AtomicU64,
    /// Whether a writer was started for it.
    pub(crate) attached: AtomicBool,
}

impl Mailbox {
    pub(crate) fn new(id: u64, capacity: usize, policy: SlowPolicy) -> Mailbox {
        Mailbox {
            id,
            capacity: capacity.max(1),
            policy,
            state: Mutex::new(State {
                items: VecDeque::new(),
                status: Status::Open,
                cause: None,
                waker: None,
                kick_waker: None,
            }),
            positions: Mutex::new(HashMap::new()),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            attached: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn positions(&self) -> MutexGuard<'_, HashMap<Arc<str>, usize>> {
        self.positions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a published message, applying the slow-subscriber policy
    /// when the queue is full. Never waits.
    pub(crate) fn offer(&self, message: &PreparedMessage) -> Offer {
        let mut state = self.state();
        if state.status != Status::Open {
            return Offer::Gone;
        }
        let offer = if state.items.len() >= self.capacity {
            match self.policy {
                SlowPolicy::Close => {
                    state.status = Status::Kicked;
                    state.cause = Some(Cause::Slow);
                    let lost = state.items.len() as u64 + 1;
                    state.items.clear();
                    self.dropped.fetch_add(lost, Ordering::Relaxed);
                    let wakers = [state.waker.take(), state.kick_waker.take()];
                    drop(state);
                    for waker in wakers.into_iter().flatten() {
                        waker.wake();
                    }
                    return Offer::Kicked(lost);
                }
                SlowPolicy::DropNewest => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return Offer::DroppedNewest;
                }
                SlowPolicy::DropOldest => {
                    state.items.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    Offer::DroppedOldest
                }
            }
        } else {
            Offer::Queued
        };
        state.items.push_back(Outgoing::Message(message.clone()));
        // Only the first item after the writer went to sleep wakes it:
        // what follows rides along with that wake-up.
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        offer
    }

    /// Queues a close after what is queued; nothing is taken after it.
    /// Returns `false` if the subscriber was already closing or gone.
    pub(crate) fn close(&self, code: CloseCode, reason: String) -> bool {
        let mut state = self.state();
        if state.status != Status::Open {
            return false;
        }
        state.status = Status::Closing;
        state.items.push_back(Outgoing::Close(code, reason));
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// The subscriber handle is gone: the writer writes what is queued
    /// and ends.
    pub(crate) fn detach(&self) {
        let mut state = self.state();
        if matches!(state.status, Status::Open | Status::Closing) {
            state.status = Status::Detached;
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The writer has ended: nothing more is queued, and what was is
    /// dropped. Returns how many messages that was.
    pub(crate) fn end(&self) -> u64 {
        let mut state = self.state();
        state.status = Status::Ended;
        let lost = state
            .items
            .drain(..)
            .filter(|item| matches!(item, Outgoing::Message(_)))
            .count() as u64;
        self.dropped.fetch_add(lost, Ordering::Relaxed);
        lost
    }

    /// Moves everything queued into `batch`, or registers the writer to be
    /// woken when there is something.
    pub(crate) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Outgoing>,
    ) -> Poll<Take> {
        let mut state = self.state();
        if state.status == Status::Kicked {
            return Poll::Ready(Take::Kicked);
        }
        if !state.items.is_empty() {
            if batch.is_empty() {
                // Swap rather than copy: the writer's spent buffer becomes
                // the queue's, so neither allocates in the steady state.
                std::mem::swap(batch, &mut state.items);
            } else {
                batch.append(&mut state.items);
            }
            return Poll::Ready(Take::Items);
        }
        if matches!(state.status, Status::Detached | Status::Ended) {
            return Poll::Ready(Take::Detached);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ready once the subscriber is closed for being slow; the writer
    /// polls it while it writes, so that a write stuck on a client that
    /// does not read is abandoned at once.
    pub(crate) fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state();
        if state.status == Status::Kicked {
            return Poll::Ready(());
        }
        match &state.kick_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.kick_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Messages waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.state().items.len()
    }

    pub(crate) fn status(&self) -> Status {
        self.state().status
    }

    /// Where it stands, and why the hub closed it if it did.
    pub(crate) fn status_and_cause(&self) -> (Status, Option<Cause>) {
        let state = self.state();
        (state.status, state.cause)
    }

    /// The writer closed it for making no progress.
    pub(crate) fn mark_stalled(&self) {
        self.state().cause = Some(Cause::Stalled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockeye_proto::Message;
    use std::task::Waker;

    fn take(mailbox: &Mailbox) -> (Poll<Take>, Vec<String>) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut batch = VecDeque::new();
        let poll = mailbox.poll_take(&mut cx, &mut batch);
        let texts = batch
            .into_iter()
            .map(|item| match item {
                Outgoing::Message(m) => m.message().as_text().unwrap().to_owned(),
                Outgoing::Close(code, reason) => format!("close {} {reason}", code.as_u16()),
            })
            .collect();
        (poll, texts)
    }

    fn text(s: &str) -> PreparedMessage {
        PreparedMessage::new(Message::text(s.to_owned()))
    }

    #[test]
    fn close_policy_kicks_and_drops_the_queue() {
        let mailbox = Mailbox::new(1, 2, SlowPolicy::Close);
        assert_eq!(mailbox.offer(&text("a")), Offer::Queued);
        assert_eq!(mailbox.offer(&text("b")), Offer::Queued);
        assert_eq!(mailbox.offer(&text("c")), Offer::Kicked(3));
        assert_eq!(mailbox.offer(&text("d")), Offer::Gone);
        assert_eq!(take(&mailbox).0, Poll::Ready(Take::Kicked));
        assert_eq!(mailbox.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn drop_oldest_keeps_the_newest() {
        let mailbox = Mailbox::new(1, 2, SlowPolicy::DropOldest);
        for s in ["a", "b", "c", "d"] {
            mailbox.offer(&text(s));
        }
        assert_eq!(
            take(&mailbox),
            (Poll::Ready(Take::Items), vec!["c".into(), "d".into()])
        );
        assert_eq!(mailbox.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn drop_newest_keeps_the_queue() {
        let mailbox = Mailbox::new(1, 2, SlowPolicy::DropNewest);
        for s in ["a", "b", "c", "d"] {
            mailbox.offer(&text(s));
        }
        assert_eq!(
            take(&mailbox),
            (Poll::Ready(Take::Items), vec!["a".into(), "b".into()])
        );
        assert_eq!(mailbox.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(take(&mailbox).0, Poll::Pending);
    }

    #[test]
    fn close_goes_after_what_is_queued_and_ends_the_queue() {
        let mailbox = Mailbox::new(1, 8, SlowPolicy::Close);
        mailbox.offer(&text("a"));
        assert!(mailbox.close(CloseCode::NORMAL, "bye".into()));
        assert_eq!(mailbox.offer(&text("b")), Offer::Gone);
        assert!(!mailbox.close(CloseCode::NORMAL, "again".into()));
        assert_eq!(
            take(&mailbox),
            (
                Poll::Ready(Take::Items),
                vec!["a".into(), "close 1000 bye".into()]
            )
        );
    }

    #[test]
    fn detached_writes_what_is_left_then_ends() {
        let mailbox = Mailbox::new(1, 8, SlowPolicy::Close);
        mailbox.offer(&text("a"));
        mailbox.detach();
        assert_eq!(mailbox.offer(&text("b")), Offer::Gone);
        assert_eq!(take(&mailbox), (Poll::Ready(Take::Items), vec!["a".into()]));
        assert_eq!(take(&mailbox).0, Poll::Ready(Take::Detached));
    }
}
