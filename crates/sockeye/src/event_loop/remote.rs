//! Reaching a loop from other threads: [`LoopHandle`] (one loop) and
//! [`ServerHandle`] (all of them), which queue a command and wake the
//! loop through its `mio::Waker` (an eventfd on Linux).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use sockeye_proto::{CloseCode, Message, PreparedMessage};

/// A connection's identity: its loop, its slot there, and the slot's
/// generation (a slot reused by a later connection has a new one, so a
/// stale id reaches nobody). `Copy`, and valid on any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) loop_index: u32,
    pub(super) slot: u32,
    pub(super) generation: u32,
}

impl ConnId {
    /// The index of the loop (thread) that serves the connection, from 0.
    pub fn loop_index(&self) -> usize {
        self.loop_index as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.loop_index, self.slot, self.generation)
    }
}

/// What other threads ask of a loop.
pub(super) enum Command {
    Send(ConnId, Message),
    Close(ConnId, CloseCode, String),
    Publish(Arc<str>, PreparedMessage, Option<ConnId>),
    Stop,
}

/// The loop's side of its waker: set when a command is queued or a
/// drain or budget signal came, cleared by the loop before it looks.
pub(super) struct Signal {
    pub(super) waker: mio::Waker,
    /// Commands may be queued.
    pub(super) commands: AtomicBool,
    /// A drain or memory-budget signal came for some connection: the loop
    /// looks at every connection's.
    pub(super) scan: AtomicBool,
}

impl Signal {
    pub(super) fn wake_commands(&self) {
        if !self.commands.swap(true, Ordering::AcqRel) {
            // A loop that is gone has nothing left to do with it.
            let _ = self.waker.wake();
        }
    }
}

/// A `std::task::Waker` for the server's drain and memory budget, which
/// wake tasks: one per loop, shared by all its connections (a clone costs
/// a reference count, not an allocation).
impl std::task::Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scan.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }
}

/// A handle to one loop, usable from any thread (tokio tasks included):
/// sends to its connections and publishes on its topics without blocking.
/// Cloning is cheap.
#[derive(Clone)]
pub struct LoopHandle {
    pub(super) index: u32,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) signal: Arc<Signal>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl LoopHandle {
    /// The loop's index, from 0.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    pub(super) fn command(&self, command: Command) -> bool {
        if self.commands.send(command).is_err() {
            return false;
        }
        self.signal.wake_commands();
        true
    }

    /// Queues `message` for connection `id` of this loop. Returns false if
    /// the loop has stopped; a connection that has ended meanwhile drops
    /// the message. The loop applies the connection's limits as
    /// [`Socket::send`](super::Socket::send) does (a full buffer drops it).
    pub fn send(&self, id: ConnId, message: impl Into<Message>) -> bool {
        self.command(Command::Send(id, message.into()))
    }

    /// Starts the closing handshake of connection `id` of this loop.
    pub fn close(&self, id: ConnId, code: CloseCode, reason: &str) -> bool {
        self.command(Command::Close(id, code, reason.to_owned()))
    }
}

/// A handle to every loop of a server, usable from any thread: send to
/// a connection by its [`ConnId`], publish to a topic everywhere, stop.
/// Cloning is cheap.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    pub(super) loops: Arc<[LoopHandle]>,
}

impl ServerHandle {
    /// The handle of each loop, by index.
    pub fn loops(&self) -> &[LoopHandle] {
        &self.loops
    }

    /// Queues `message` for connection `id` (see [`LoopHandle::send`]).
    pub fn send(&self, id: ConnId, message: impl Into<Message>) -> bool {
        match self.loops.get(id.loop_index()) {
            Some(handle) => handle.send(id, message),
            None => false,
        }
    }

    /// Starts the closing handshake of connection `id`.
    pub fn close(&self, id: ConnId, code: CloseCode, reason: &str) -> bool {
        match self.loops.get(id.loop_index()) {
            Some(handle) => handle.close(id, code, reason),
            None => false,
        }
    }

    /// Publishes `message` to every subscriber of `topic` on every loop.
    /// It is framed once for all of them.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) {
        let prepared = PreparedMessage::new(message.into());
        let topic: Arc<str> = Arc::from(topic);
        for handle in self.loops.iter() {
            handle.command(Command::Publish(topic.clone(), prepared.clone(), None));
        }
    }

    /// Stops every loop: they stop accepting, drop their connections
    /// without a closing handshake (use the server's
    /// [`Drain`](crate::Drain) first for a graceful end) and return.
    pub fn stop(&self) {
        for handle in self.loops.iter() {
            handle.command(Command::Stop);
        }
    }
}
