//! Broadcast mode: a chat room where every message goes to all the other
//! clients.
//!
//! Each connection is split in two. Its receiving half hands what the
//! client says to the [`Room`]; its sending half drains a bounded queue of
//! its own. The room never waits for anyone: it queues a message for each
//! member with `try_send`, and a member whose queue is full is too slow to
//! keep up. That member is closed with 1008 (policy violation: the
//! server's policy is a bounded queue per client) and leaves the room, so
//! one stalled reader cannot hold back the others or grow memory. 1008
//! rather than 1013 (try again later): the room is not overloaded, that
//! one client is, and reconnecting at once would not help it.
//!
//! A message is prepared once per broadcast ([`prepare`]) as a
//! [`PreparedMessage`]: framed once, and compressed once for the members
//! whose negotiated permessage-deflate parameters allow sharing (no
//! context takeover); the same bytes go to each of them. Members with
//! context takeover compress their own copy, as RFC 7692 requires.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sockeye::{CloseCode, Message, PreparedMessage, SendHalf, ServerStream, WebSocket};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info};

/// What goes into each member's queue: one message, prepared once for the
/// whole room (cloning it is a reference count).
pub type Outgoing = PreparedMessage;

/// Prepares `message` for sending to every member: the one place where a
/// broadcast message is turned into what the queues hold.
fn prepare(message: Message) -> Outgoing {
    PreparedMessage::new(message)
}

/// The longest one batch of messages may take to go out to a member
/// before it counts as too slow (its queue may not be full yet when it
/// stops reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a member that is closed gets to take its Close frame (the
/// reader then waits for its answer, bounded by the engine's close
/// timeout).
const CLOSE_WRITE_WAIT: Duration = Duration::from_secs(1);

/// Everyone connected in broadcast mode.
pub struct Room {
    members: Mutex<HashMap<u64, Member>>,
    next_id: AtomicU64,
    queue_len: usize,
}

/// A member's end of the room: its queue and its kick signal.
pub struct Membership {
    id: u64,
    outgoing: mpsc::Receiver<Outgoing>,
    kicked: Arc<Notify>,
    /// Members present when it joined, itself included.
    present: usize,
}

/// The room's handle on one member.
struct Member {
    queue: mpsc::Sender<Outgoing>,
    /// Told when the member is dropped for being slow, so that its writer
    /// stops waiting for it at once.
    kicked: Arc<Notify>,
}

impl Room {
    /// An empty room whose members may each have `queue_len` messages
    /// waiting.
    pub fn new(queue_len: usize) -> Room {
        Room {
            members: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            queue_len: queue_len.max(1),
        }
    }

    fn members(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `message` for every member but `from`, without waiting.
    /// Members whose queues are full are dropped and their writers told.
    pub fn broadcast(&self, from: u64, message: Message) {
        let outgoing = prepare(message);
        self.members().retain(|id, member| {
            if *id == from {
                return true;
            }
            match member.queue.try_send(outgoing.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.kicked.notify_one();
                    false
                }
                // Its writer is gone: it is leaving anyway.
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Adds a member. Called before the handshake response goes out, so a
    /// client that sees itself connected already receives what others
    /// say. A membership dropped without [`Room::serve`] leaves the room
    /// at the next broadcast (its queue is closed).
    pub fn join(&self) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, outgoing) = mpsc::channel(self.queue_len);
        let kicked = Arc::new(Notify::new());
        let member = Member {
            queue,
            kicked: kicked.clone(),
        };
        let present = {
            let mut members = self.members();
            members.insert(id, member);
            members.len()
        };
        Membership {
            id,
            outgoing,
            kicked,
            present,
        }
    }

    /// Serves one member until it leaves, is dropped, or the server's
    /// drain closes it (the library sends that Close, from the reading
    /// half).
    pub async fn serve(
        &self,
        membership: Membership,
        ws: WebSocket<ServerStream>,
        peer: SocketAddr,
    ) {
        let Membership {
            id,
            outgoing,
            kicked,
            present,
        } = membership;
        info!("{peer}: joined the room ({present} present)");
        let (mut receiver, sender) = ws.split();
        let writer = tokio::spawn(write_queue(sender, outgoing, kicked, peer));

        // The reader: hands what the member says to the room, until the
        // connection ends (which includes the Close the writer sent being
        // answered).
        while let Some(received) = receiver.recv().await {
            match received {
                Ok(message) => self.broadcast(id, message),
                Err(error) => {
                    debug!("{peer}: connection failed: {error}");
                    break;
                }
            }
        }
        self.members().remove(&id);
        writer.abort();
        info!("{peer}: left the room");
    }
}

/// Drains one member's queue, writing whatever has piled up in one go.
/// Ends with Close 1008 when the member is dropped. (The server's drain
/// closes the connection from the reading half; a send then fails, and the
/// reader, seeing the end, stops this task.)
async fn write_queue(
    mut sender: SendHalf<ServerStream>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    kicked: Arc<Notify>,
    peer: SocketAddr,
) {
    loop {
        let first = tokio::select! {
            next = outgoing.recv() => match next {
                Some(first) => first,
                // Dropped from the room (its queue was full).
                None => break,
            },
            () = kicked.notified() => break,
        };
        let batch = write_batch(&mut sender, &mut outgoing, first);
        let written = tokio::select! {
            written = tokio::time::timeout(SEND_TIMEOUT, batch) => written,
            // Dropped while a write waits for it: give up on it now.
            () = kicked.notified() => break,
        };
        match written {
            Ok(Ok(())) => {}
            // The connection failed or is closing; the reader sees it too.
            Ok(Err(_)) => return,
            Err(_) => {
                info!("{peer}: stalled for {SEND_TIMEOUT:?}");
                break;
            }
        }
    }
    info!("{peer}: too slow to keep up, closing with 1008");
    let _ = tokio::time::timeout(
        CLOSE_WRITE_WAIT,
        sender.close(CloseCode::POLICY_VIOLATION, "too slow to keep up"),
    )
    .await;
}

/// Writes `first` and whatever else is queued.
///
/// Each `send_prepared` writes at once: the library has no way yet to
/// queue a prepared message without flushing (a `feed_prepared`, or
/// `Sink<PreparedMessage>`, would let a backlog leave in one write).
async fn write_batch(
    sender: &mut SendHalf<ServerStream>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    first: Outgoing,
) -> Result<(), sockeye::Error> {
    sender.send_prepared(&first).await?;
    while let Ok(next) = outgoing.try_recv() {
        sender.send_prepared(&next).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member whose queue is full leaves the room and is told so; the
    /// sender is never sent its own message.
    #[test]
    fn full_queues_are_dropped() {
        let room = Room::new(1);
        let (a_queue, mut a_out) = mpsc::channel(1);
        let (b_queue, mut b_out) = mpsc::channel(1);
        let b_kicked = Arc::new(Notify::new());
        room.members().insert(
            0,
            Member {
                queue: a_queue,
                kicked: Arc::new(Notify::new()),
            },
        );
        room.members().insert(
            1,
            Member {
                queue: b_queue,
                kicked: b_kicked.clone(),
            },
        );
        room.broadcast(0, Message::text("one"));
        assert!(a_out.try_recv().is_err(), "no echo to the sender");
        assert_eq!(b_out.try_recv().unwrap().message().as_text(), Some("one"));
        room.broadcast(0, Message::text("one again"));
        assert_eq!(room.members().len(), 2);
        room.broadcast(0, Message::text("two"));
        assert_eq!(room.members().len(), 1, "b's full queue dropped it");
        assert!(room.members().contains_key(&0));
    }
}
