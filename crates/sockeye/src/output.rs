//! Output taken from the engine and not yet written: the part of a
//! front-end that tokio and blocking share.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};
use sockeye_proto::Connection;

/// At most this many buffers go into one vectored write.
pub(crate) const MAX_IOVECS: usize = 64;

/// Chunks handed out by [`Connection::poll_transmit`], written in order.
#[derive(Debug, Default)]
pub(crate) struct Output {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`, kept so `len` is O(1): every `send` asks.
    len: usize,
    /// Bytes of the first chunk already written: still in memory until
    /// the chunk is written whole.
    front_written: usize,
}

impl Output {
    /// Takes everything the engine has queued.
    pub(crate) fn refill(&mut self, conn: &mut Connection) {
        // Take more only once what was taken is written: output the socket
        // cannot take stays in the engine, where its limits see it (a peer
        // that pings without reading stalls on `max_queued_control_bytes`
        // instead of growing this queue).
        if !self.chunks.is_empty() {
            return;
        }
        while let Some(chunk) = conn.poll_transmit() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            // Nothing to write: an idle connection keeps no queue.
            self.chunks = VecDeque::new();
        }
    }

    /// Queues a chunk after what is there (the event loop's unwritten
    /// rest, an HTTP head).
    #[cfg_attr(not(feature = "event-loop"), allow(dead_code))]
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push_back(chunk);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held in memory: those not yet written, and the written part
    /// of a chunk written partly.
    pub(crate) fn held(&self) -> usize {
        self.len + self.front_written
    }

    /// Fills `slices` for a vectored write and returns how many were used.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut used = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            used += 1;
        }
        used
    }

    /// Drops `written` bytes from the front.
    pub(crate) fn advance(&mut self, mut written: usize) {
        self.len -= written.min(self.len);
        while written > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if written >= front.len() {
                written -= front.len();
                self.chunks.pop_front();
                self.front_written = 0;
            } else {
                front.advance(written);
                self.front_written += written;
                return;
            }
        }
    }

    /// What is left to write, in order.
    pub(crate) fn into_chunks(self) -> Vec<Bytes> {
        self.chunks.into()
    }
}

/// A connection taken apart by `into_parts` (of [`crate::WebSocket`] or
/// [`crate::blocking::WebSocket`]), for a caller that drives the engine
/// over the stream itself from then on; `from_engine` puts them back
/// together.
#[derive(Debug)]
#[non_exhaustive]
pub struct Parts<S> {
    /// The transport.
    pub stream: S,
    /// The engine, with what it has received and not yet delivered, and
    /// what it has queued and not yet handed out.
    pub connection: Connection,
    /// Output already taken from the engine and not yet written, oldest
    /// first: it goes on the stream before anything the engine hands out
    /// later.
    pub unwritten: Vec<Bytes>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockeye_proto::{Config, Message, Role};

    #[test]
    fn length_follows_refills_and_partial_writes() {
        let mut conn = Connection::new(Role::Server, Config::default());
        conn.send(Message::binary(vec![1u8; 10_000])).unwrap();
        conn.send(Message::text("hi")).unwrap();
        let mut output = Output::default();
        output.refill(&mut conn);
        let total = 4 + 10_000 + 4;
        assert_eq!(output.len(), total);
        output.advance(3);
        assert_eq!(output.len(), total - 3);
        // The header chunk (4 bytes) is still whole in memory.
        assert_eq!(output.held(), total);
        output.advance(5000);
        assert_eq!(output.len(), total - 5003);
        // The payload chunk is held whole until it is written whole.
        assert_eq!(output.held(), total - 4);
        output.advance(total - 5003);
        assert_eq!(output.len(), 0);
        assert_eq!(output.held(), 0);
        assert!(output.is_empty());
    }
}
