//! The outgoing queue: frames encoded for the wire, in the order they may
//! leave (RFC 6455 sections 5.2-5.5).
//!
//! Four things shape it:
//! - **Corking.** Small frames are appended to one buffer, so every reply
//!   produced while processing a read leaves in one write.
//! - **No payload copies on the server.** A large unmasked payload is not
//!   copied: its header ends one chunk and the payload's own `Bytes` is the
//!   next, for a vectored write.
//! - **Control frames first.** Pings and Pongs overtake queued data at the
//!   next frame boundary (never inside a frame), so a Pong is not stuck
//!   behind megabytes of data. Close frames are queued with the data: a
//!   Close must come after every message sent before it.
//! - **Small while idle.** Every connection carries the queue, and an idle
//!   one should cost little (issue 18 budgets 0.3 KiB): the queue is one
//!   buffer, unallocated while empty, and one pointer to what only a busy
//!   queue needs (see [`Outgoing`]).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::mask::apply_mask;
use crate::frame::{FrameHeader, FrameTrace, MAX_HEADER_LEN, OpCode};
use crate::role::Role;

/// Payloads at most this long are copied next to their header; longer ones
/// (unmasked) are handed out as their own chunk. Copying a few KiB is
/// cheaper than one more iovec and keeps small messages corked together.
const INLINE_PAYLOAD_MAX: usize = 4096;

/// An output buffer is allocated with room for at least this much, so that
/// the replies corked together do not grow it step by step.
const BUFFER_CHUNK: usize = 4096;

/// A Ping or Pong overtakes at most this much data in the tail by moving
/// it (a buffer's first allocation: moving that is about as cheap as
/// allocating a spill); behind more, it is queued in a spill.
const OVERTAKE_MAX: usize = BUFFER_CHUNK;

/// Makes room for `additional` bytes in `buffer`. An idle connection's
/// buffers have no capacity (see [`Outgoing::poll_transmit`]); the first
/// frame allocates a whole chunk.
fn reserve(buffer: &mut BytesMut, additional: usize) {
    if buffer.capacity() == 0 {
        *buffer = BytesMut::with_capacity(additional.max(BUFFER_CHUNK));
    }
}

/// Appends a frame whose payload is copied (and masked, with `mask`).
// Inlined: every small frame takes this path, and for a short frame the
// call cost as much as the copy.
#[inline(always)]
fn write_frame(buffer: &mut BytesMut, head: &[u8], mask: Option<[u8; 4]>, payload: &[u8]) {
    reserve(buffer, head.len() + payload.len());
    // A copy of a constant length is two stores; of a variable one, a
    // call to memcpy. A server's headers are 2 or 4 bytes, a client's 6
    // or 8.
    match head.len() {
        2 => buffer.extend_from_slice(&head[..2]),
        4 => buffer.extend_from_slice(&head[..4]),
        6 => buffer.extend_from_slice(&head[..6]),
        8 => buffer.extend_from_slice(&head[..8]),
        _ => buffer.extend_from_slice(head),
    }
    let start = buffer.len();
    buffer.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut buffer[start..], key, 0);
    }
}

/// One piece of queued output.
#[derive(Debug)]
struct Chunk {
    bytes: Bytes,
    /// The chunk ends with a frame header whose payload is the next chunk,
    /// so nothing may be sent between the two.
    glued: bool,
}

/// Encoded frames waiting to be written, in this order: Pings and Pongs
/// (at the next frame boundary), then the chunks, then the tail.
///
/// The common cases need only the tail: replies corked there, and Pings and
/// Pongs queued at its front, ahead of the few replies already corked. What
/// only a busy queue needs (Pings and Pongs behind more data than that,
/// large payloads' chunks) and the frame trace are boxed in a [`Spill`],
/// allocated when first needed and freed once everything was taken.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// Frames not yet frozen, where small frames cork: first `tail_control`
    /// bytes of Pings and Pongs, then data and Close frames.
    tail: BytesMut,
    spill: Option<Box<Spill>>,
    /// Bytes of Pings and Pongs at the front of `tail`; always 0 while
    /// there is a spill, which holds them instead.
    tail_control: u32,
    /// How much room the tail's next buffer starts with: a little more
    /// than the last one held when it was taken whole, so that a
    /// connection that answers each read with about as much output as the
    /// last allocates once instead of growing its buffer step by step
    /// (each step a reallocation and a copy). In the struct's padding.
    hint: u32,
}

/// The most a tail's next buffer is sized for by [`Outgoing::hint`].
const HINT_MAX: usize = 64 * 1024;

/// What only a busy outgoing queue needs.
#[derive(Debug, Default)]
struct Spill {
    /// Ping and Pong frames queued once there was a spill, or behind more
    /// than [`OVERTAKE_MAX`] bytes of data; sent first at the next frame
    /// boundary.
    control: BytesMut,
    /// Data and Close frames frozen into chunks, sent before the tail.
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks`.
    chunked: usize,
    /// The last chunk handed out was glued to the next one.
    mid_frame: bool,
    /// The front chunk is the rest of a partial write from
    /// [`Outgoing::peek`]: whole frames after the end of the one begun.
    rest_front: bool,
    /// Frames in and out, when traced.
    trace: Option<FrameTrace>,
}

impl Spill {
    fn push_chunk(&mut self, bytes: Bytes, glued: bool) {
        self.chunked += bytes.len();
        self.chunks.push_back(Chunk { bytes, glued });
    }

    fn is_empty(&self) -> bool {
        self.control.is_empty() && self.chunks.is_empty()
    }
}

impl Outgoing {
    /// Queues a frame. Control frames (Ping, Pong) go ahead of data;
    /// everything else keeps its order.
    pub(crate) fn push_frame(
        &mut self,
        role: Role,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &Bytes,
    ) {
        let mask = role.masks_outgoing().then(rand::random::<[u8; 4]>);
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        if let Some(trace) = self.trace() {
            trace.record(true, header);
        }
        if matches!(opcode, OpCode::Ping | OpCode::Pong) {
            self.push_control(&head[..head_len], mask, payload);
            return;
        }
        if mask.is_some() || payload.len() <= INLINE_PAYLOAD_MAX {
            self.prime_tail();
            write_frame(&mut self.tail, &head[..head_len], mask, payload);
            return;
        }
        reserve(&mut self.tail, head_len);
        self.tail.extend_from_slice(&head[..head_len]);
        let (spill, tail) = self.spill();
        spill.push_chunk(tail.split().freeze(), true);
        spill.push_chunk(payload.clone(), false);
    }

    /// Queues a Ping or Pong ahead of the data. Without a spill, and behind
    /// at most [`OVERTAKE_MAX`] bytes of data, it goes to the front of the
    /// tail, after the Pings and Pongs already there: moving a little data
    /// along costs less than allocating a spill, and an idle connection
    /// answering a Ping moves nothing. Otherwise it goes to the spill.
    fn push_control(&mut self, head: &[u8], mask: Option<[u8; 4]>, payload: &[u8]) {
        let len = head.len() + payload.len();
        let front = self.tail_control as usize;
        let data = self.tail.len() - front;
        let tail_control = u32::try_from(len)
            .ok()
            .and_then(|len| self.tail_control.checked_add(len));
        match tail_control {
            Some(tail_control) if self.spill.is_none() && data <= OVERTAKE_MAX => {
                write_frame(&mut self.tail, head, mask, payload);
                if data > 0 {
                    self.tail[front..].rotate_right(len);
                }
                self.tail_control = tail_control;
            }
            _ => write_frame(&mut self.spill().0.control, head, mask, payload),
        }
    }

    /// The spill, allocated on first use, and the tail. The Pings and
    /// Pongs at the front of the tail move into the spill, so that they
    /// stay ahead of whatever is queued next.
    fn spill(&mut self) -> (&mut Spill, &mut BytesMut) {
        let Outgoing {
            tail,
            spill,
            tail_control,
            ..
        } = self;
        let spill = spill.get_or_insert_with(|| {
            let control = match std::mem::take(tail_control) {
                0 => BytesMut::new(),
                len => tail.split_to(len as usize),
            };
            Box::new(Spill {
                control,
                ..Spill::default()
            })
        });
        (spill, tail)
    }

    /// Queues a frame encoded elsewhere (unmasked, whole), after the data
    /// already queued: copied when small, shared when large.
    pub(crate) fn push_encoded(&mut self, frame: &Bytes) {
        if let Some(trace) = self.trace()
            && let Ok(Some((header, _))) = FrameHeader::parse(frame)
        {
            trace.record(true, header);
        }
        if frame.len() <= INLINE_PAYLOAD_MAX {
            self.prime_tail();
            reserve(&mut self.tail, frame.len());
            self.tail.extend_from_slice(frame);
            return;
        }
        let (spill, tail) = self.spill();
        if !tail.is_empty() {
            spill.push_chunk(tail.split().freeze(), false);
        }
        spill.push_chunk(frame.clone(), false);
    }

    /// The next chunk to write, in wire order.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.tail_control > 0 {
            // No spill, so no chunk was cut inside a frame: the Pings and
            // Pongs at the tail's front go first.
            let control = self.tail.split_to(self.tail_control as usize);
            self.tail_control = 0;
            return Some(control.freeze());
        }
        if let Some(spill) = &mut self.spill {
            if !spill.mid_frame && !spill.control.is_empty() {
                return Some(spill.control.split().freeze());
            }
            if let Some(chunk) = spill.chunks.pop_front() {
                spill.mid_frame = chunk.glued;
                spill.rest_front = false;
                spill.chunked -= chunk.bytes.len();
                return Some(chunk.bytes);
            }
        }
        if !self.tail.is_empty() {
            self.remember(self.tail.len());
            return Some(self.tail.split().freeze());
        }
        // Everything was taken: give the spare capacity back, so an idle
        // connection holds no output buffer (it is shared with the chunks
        // being written, and freed with them).
        self.tail = BytesMut::new();
        match &mut self.spill {
            Some(spill) if spill.trace.is_some() => {
                spill.control = BytesMut::new();
                spill.chunks = VecDeque::new();
                spill.mid_frame = false;
            }
            _ => self.spill = None,
        }
        None
    }

    /// Gives an empty tail with no buffer one sized by [`Outgoing::hint`].
    #[inline]
    fn prime_tail(&mut self) {
        if self.tail.capacity() == 0 && self.hint > 0 {
            self.tail = BytesMut::with_capacity((self.hint as usize).max(BUFFER_CHUNK));
        }
    }

    /// The tail held `len` bytes when taken whole: its next buffer starts
    /// with a quarter more room (at most [`HINT_MAX`]).
    #[inline]
    fn remember(&mut self, len: usize) {
        self.hint = (len + len / 4).min(HINT_MAX) as u32;
    }

    /// All output waiting, when it is one contiguous slice in wire order
    /// (the tail, with no spill): written from where it lies, it costs no
    /// chunk handed out, no reference count and no allocation.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        let spilled = self.spill.as_ref().is_some_and(|spill| !spill.is_empty());
        (!spilled && !self.tail.is_empty()).then_some(&self.tail[..])
    }

    /// Drops the first `written` bytes of what [`Outgoing::peek`] showed.
    /// Once all is written, the buffer is freed (an idle connection holds
    /// none). When some is left, it may end a frame that was begun: it
    /// becomes the next chunk, and nothing overtakes it (a Ping or Pong
    /// queued meanwhile waits for it; an abort keeps it and sends its
    /// Close after it, see [`Outgoing::clear_for_abort`]).
    pub(crate) fn consume(&mut self, written: usize) {
        if self.peek().is_none() {
            return;
        }
        let written = written.min(self.tail.len());
        if written == self.tail.len() {
            self.remember(written);
            self.tail = BytesMut::new();
            self.tail_control = 0;
            if self
                .spill
                .as_ref()
                .is_some_and(|spill| spill.trace.is_none())
            {
                self.spill = None;
            }
            return;
        }
        self.tail.advance(written);
        if written == 0 {
            return;
        }
        // The Pings and Pongs left at the front go with the rest, in
        // wire order, as one chunk nothing may overtake.
        self.tail_control = 0;
        let rest = self.tail.split().freeze();
        let spill = self.spill.get_or_insert_default();
        spill.push_chunk(rest, false);
        spill.mid_frame = true;
        spill.rest_front = true;
    }

    /// Bytes waiting to be taken.
    pub(crate) fn len(&self) -> usize {
        self.tail.len()
            + self
                .spill
                .as_ref()
                .map_or(0, |spill| spill.control.len() + spill.chunked)
    }

    /// Bytes of Pings and Pongs waiting to be taken.
    pub(crate) fn control_len(&self) -> usize {
        self.tail_control as usize + self.spill.as_ref().map_or(0, |spill| spill.control.len())
    }

    /// Drops queued Pings and Pongs (once a Close is queued they are moot).
    pub(crate) fn clear_control(&mut self) {
        self.tail
            .advance(std::mem::take(&mut self.tail_control) as usize);
        if let Some(spill) = &mut self.spill {
            spill.control.clear();
        }
    }

    /// Whether the last chunk handed out ended inside a frame (a header
    /// whose payload is the next chunk).
    pub(crate) fn mid_frame(&self) -> bool {
        self.spill.as_ref().is_some_and(|spill| spill.mid_frame)
    }

    /// Drops everything not yet handed out, and its memory.
    pub(crate) fn clear(&mut self) {
        *self = Outgoing::default();
    }

    /// Drops what an abort drops: everything not yet handed out, except
    /// the rest of a partial write (it ends the frame the peer is
    /// reading, and ends on a frame boundary itself). True when a Close
    /// may follow: nothing was left inside a frame.
    pub(crate) fn clear_for_abort(&mut self) -> bool {
        let rest = match &mut self.spill {
            Some(spill) if spill.rest_front => spill.chunks.pop_front(),
            _ => None,
        };
        let at_boundary = rest.is_some() || !self.mid_frame();
        self.clear();
        if let Some(rest) = rest {
            let spill = self.spill.get_or_insert_default();
            spill.push_chunk(rest.bytes, false);
            spill.mid_frame = true;
            spill.rest_front = true;
        }
        at_boundary
    }

    /// The frame trace, if tracing is on.
    pub(crate) fn trace(&mut self) -> Option<&mut FrameTrace> {
        self.spill.as_mut()?.trace.as_mut()
    }

    /// Starts or stops the frame trace.
    pub(crate) fn set_trace(&mut self, on: bool) {
        if on {
            self.spill().0.trace.get_or_insert_default();
        } else if let Some(spill) = &mut self.spill {
            spill.trace = None;
            if spill.is_empty() {
                self.spill = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &mut Outgoing) -> Vec<Bytes> {
        std::iter::from_fn(|| out.poll_transmit()).collect()
    }

    #[test]
    fn small_frames_cork_into_one_chunk() {
        let mut out = Outgoing::default();
        for _ in 0..10 {
            out.push_frame(
                Role::Server,
                OpCode::Text,
                true,
                0,
                &Bytes::from_static(b"hi"),
            );
        }
        assert_eq!(out.len(), 40);
        let chunks = drain(&mut out);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), 40);
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn drained_queues_hold_no_memory() {
        let mut out = Outgoing::default();
        let payload = Bytes::from(vec![7u8; 100_000]);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &payload);
        out.push_frame(Role::Server, OpCode::Pong, true, 0, &Bytes::new());
        out.push_frame(
            Role::Server,
            OpCode::Text,
            true,
            0,
            &Bytes::from_static(b"hi"),
        );
        // One chunk for corked frames (less the large frame's header).
        assert!(out.tail.capacity() >= BUFFER_CHUNK - 16);
        let chunks = drain(&mut out);
        assert_eq!(chunks.len(), 4);
        assert_eq!(out.tail.capacity(), 0);
        assert!(out.spill.is_none());
        // And the next frame finds a whole chunk again.
        out.push_frame(
            Role::Client,
            OpCode::Text,
            true,
            0,
            &Bytes::from_static(b"hi"),
        );
        assert!(out.tail.capacity() >= BUFFER_CHUNK);
        assert_eq!(drain(&mut out).concat().len(), 2 + 4 + 2);
    }

    #[test]
    fn large_server_payload_is_not_copied() {
        let mut out = Outgoing::default();
        let payload = Bytes::from(vec![7u8; 100_000]);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &payload);
        let chunks = drain(&mut out);
        assert_eq!(chunks.len(), 2);
        assert_eq!(&chunks[0][..], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x86, 0xa0]);
        assert_eq!(chunks[1].as_ptr(), payload.as_ptr());
    }

    #[test]
    fn pongs_overtake_data_only_at_frame_boundaries() {
        let mut out = Outgoing::default();
        let big = Bytes::from(vec![1u8; 10_000]);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &big);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &big);
        // The first header is taken: the pong must wait for its payload.
        let head = out.poll_transmit().unwrap();
        assert_eq!(head.len(), 4);
        out.push_frame(
            Role::Server,
            OpCode::Pong,
            true,
            0,
            &Bytes::from_static(b"p"),
        );
        assert_eq!(out.poll_transmit().unwrap().len(), 10_000);
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x8a\x01p");
        assert_eq!(out.poll_transmit().unwrap().len(), 4);
        assert_eq!(out.poll_transmit().unwrap().len(), 10_000);
        assert!(out.poll_transmit().is_none());
    }

    fn push(out: &mut Outgoing, opcode: OpCode, payload: &'static [u8]) {
        out.push_frame(Role::Server, opcode, true, 0, &Bytes::from_static(payload));
    }

    #[test]
    fn a_pong_with_nothing_else_queued_needs_no_spill() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"a");
        push(&mut out, OpCode::Text, b"b");
        assert!(out.spill.is_none());
        assert_eq!((out.len(), out.control_len()), (9, 3));
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x8a\x011");
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x81\x01a\x81\x01b");
        assert!(out.poll_transmit().is_none());
    }

    #[test]
    fn pongs_queued_behind_corked_data_still_go_first_in_order() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"a");
        // A little data waits in the tail: the Pong moves ahead of it.
        push(&mut out, OpCode::Pong, b"2");
        push(&mut out, OpCode::Text, b"b");
        push(&mut out, OpCode::Ping, b"3");
        assert!(out.spill.is_none());
        assert_eq!((out.len(), out.control_len()), (15, 9));
        assert_eq!(
            &out.poll_transmit().unwrap()[..],
            b"\x8a\x011\x8a\x012\x89\x013"
        );
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x81\x01a\x81\x01b");
        assert!(out.poll_transmit().is_none());
    }

    #[test]
    fn pongs_behind_much_corked_data_are_spilled_and_still_go_first() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        for _ in 0..OVERTAKE_MAX / 3 + 1 {
            push(&mut out, OpCode::Text, b"a");
        }
        // Too much data to move: this Pong, and the one at the tail's
        // front with it, go to the spill, still ahead of the data.
        push(&mut out, OpCode::Pong, b"2");
        push(&mut out, OpCode::Text, b"b");
        push(&mut out, OpCode::Ping, b"3");
        assert!(out.spill.is_some());
        assert_eq!(out.control_len(), 9);
        assert_eq!(
            &out.poll_transmit().unwrap()[..],
            b"\x8a\x011\x8a\x012\x89\x013"
        );
        let data = out.poll_transmit().unwrap();
        assert_eq!(data.len(), 3 * (OVERTAKE_MAX / 3 + 2));
        assert!(data.ends_with(b"\x81\x01a\x81\x01b"));
        assert!(out.poll_transmit().is_none());
        assert!(out.spill.is_none());
    }

    #[test]
    fn clearing_control_frames_keeps_the_data() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"a");
        out.clear_control();
        push(&mut out, OpCode::Pong, b"2");
        push(&mut out, OpCode::Text, b"b");
        out.clear_control();
        assert_eq!((out.len(), out.control_len()), (6, 0));
        assert_eq!(drain(&mut out).concat(), b"\x81\x01a\x81\x01b");
    }

    #[test]
    fn a_traced_queue_keeps_its_trace_when_drained() {
        let mut out = Outgoing::default();
        out.set_trace(true);
        push(&mut out, OpCode::Text, b"a");
        assert_eq!(drain(&mut out).len(), 1);
        let mut frames = Vec::new();
        assert_eq!(out.trace().unwrap().drain(&mut frames), 0);
        assert_eq!(frames.len(), 1);
        out.set_trace(false);
        assert!(out.spill.is_none());
    }

    #[test]
    fn corked_output_is_written_from_where_it_lies() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Text, b"a");
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"b");
        assert_eq!(out.peek().unwrap(), b"\x8a\x011\x81\x01a\x81\x01b");
        out.consume(9);
        assert!(out.peek().is_none());
        assert_eq!((out.len(), out.control_len()), (0, 0));
        assert_eq!(out.tail.capacity(), 0);
        assert!(out.spill.is_none());
        assert!(out.poll_transmit().is_none());
    }

    #[test]
    fn the_rest_of_a_partial_write_goes_next_and_is_not_overtaken() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"abc");
        // The Pong and the text frame's header were written.
        out.consume(5);
        assert!(out.mid_frame());
        assert_eq!(out.len(), 3);
        assert!(out.peek().is_none());
        // A Pong queued now must not cut into the text frame.
        push(&mut out, OpCode::Pong, b"2");
        push(&mut out, OpCode::Text, b"d");
        assert_eq!(&out.poll_transmit().unwrap()[..], b"abc");
        assert!(!out.mid_frame());
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x8a\x012");
        assert_eq!(&out.poll_transmit().unwrap()[..], b"\x81\x01d");
        assert!(out.poll_transmit().is_none());
        // Drained, peeking works again.
        push(&mut out, OpCode::Text, b"e");
        assert_eq!(out.peek().unwrap(), b"\x81\x01e");
    }

    #[test]
    fn a_partial_write_inside_the_pongs_keeps_wire_order() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Pong, b"1");
        push(&mut out, OpCode::Text, b"a");
        out.consume(1);
        push(&mut out, OpCode::Ping, b"3");
        assert_eq!(drain(&mut out).concat(), b"\x011\x81\x01a\x89\x013");
    }

    #[test]
    fn an_abort_keeps_the_rest_of_a_partial_write_and_may_close_after_it() {
        let mut out = Outgoing::default();
        push(&mut out, OpCode::Text, b"abc");
        push(&mut out, OpCode::Text, b"def");
        out.consume(3);
        push(&mut out, OpCode::Text, b"dropped");
        assert!(out.clear_for_abort());
        push(&mut out, OpCode::Close, b"");
        assert_eq!(drain(&mut out).concat(), b"bc\x81\x03def\x88\x00");
        // A large payload's header handed out: its payload is dropped with
        // the rest, so nothing may follow.
        let mut out = Outgoing::default();
        let big = Bytes::from(vec![1u8; 10_000]);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &big);
        assert_eq!(out.poll_transmit().unwrap().len(), 4);
        assert!(!out.clear_for_abort());
    }

    #[test]
    fn the_next_buffer_is_sized_by_the_last_one() {
        let mut out = Outgoing::default();
        let payload = Bytes::from(vec![7u8; 1024]);
        for _ in 0..8 {
            out.push_frame(Role::Server, OpCode::Binary, true, 0, &payload);
        }
        let len = out.peek().unwrap().len();
        assert_eq!(len, 8 * 1028);
        out.consume(len);
        // Idle: no buffer held.
        assert_eq!(out.tail.capacity(), 0);
        // The next reply allocates room for as many at once.
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &payload);
        assert!(out.tail.capacity() >= 8 * 1028, "{}", out.tail.capacity());
        let before = out.tail.capacity();
        for _ in 0..7 {
            out.push_frame(Role::Server, OpCode::Binary, true, 0, &payload);
        }
        assert_eq!(out.tail.capacity(), before, "grew");
    }

    #[test]
    fn a_shared_payload_is_not_peeked() {
        let mut out = Outgoing::default();
        let big = Bytes::from(vec![1u8; 10_000]);
        out.push_frame(Role::Server, OpCode::Binary, true, 0, &big);
        push(&mut out, OpCode::Text, b"a");
        assert!(out.peek().is_none());
        out.consume(3);
        assert_eq!(out.len(), 4 + 10_000 + 3);
        assert_eq!(drain(&mut out).len(), 3);
    }

    #[test]
    fn client_frames_are_masked_with_fresh_keys() {
        let mut out = Outgoing::default();
        let payload = Bytes::from_static(b"same payload");
        let mut keys = std::collections::HashSet::new();
        for _ in 0..64 {
            out.push_frame(Role::Client, OpCode::Binary, true, 0, &payload);
            let frame = out.poll_transmit().unwrap();
            let (header, len) = FrameHeader::parse(&frame).unwrap().unwrap();
            let key = header.mask.expect("client frames are masked");
            keys.insert(key);
            let mut body = frame[len..].to_vec();
            apply_mask(&mut body, key, 0);
            assert_eq!(body, &payload[..]);
        }
        // 64 draws from 2^32 keys collide with probability ~5e-7.
        assert_eq!(keys.len(), 64);
    }
}
