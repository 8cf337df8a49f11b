//! The outgoing queue: frames encoded for the wire, in the order they may
//! leave (RFC 6455 sections 5.2-5.5).
//!
//! Three things shape it:
//! - **Corking.** Small frames are appended to one buffer, so every reply
//!   produced while processing a read leaves in one write.
//! - **No payload copies on the server.** A large unmasked payload is not
//!   copied: its header ends one chunk and the payload's own `Bytes` is the
//!   next, for a vectored write.
//! - **Control frames first.** Pings and Pongs overtake queued data at the
//!   next frame boundary (never inside a frame), so a Pong is not stuck
//!   behind megabytes of data. Close frames are queued with the data: a
//!   Close must come after every message sent before it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

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

/// Makes room for `additional` bytes in `buffer`. An idle connection's
/// buffers have no capacity (see [`Outgoing::poll_transmit`]); the first
/// frame allocates a whole chunk.
fn reserve(buffer: &mut BytesMut, additional: usize) {
    if buffer.capacity() == 0 {
        *buffer = BytesMut::with_capacity(additional.max(BUFFER_CHUNK));
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

/// Encoded frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// Ping and Pong frames, sent first at the next frame boundary.
    control: BytesMut,
    /// Data and Close frames, frozen into chunks.
    chunks: VecDeque<Chunk>,
    /// Data and Close frames not yet frozen: where small frames cork.
    tail: BytesMut,
    /// The last chunk handed out was glued to the next one.
    mid_frame: bool,
    /// Bytes queued in all three places.
    queued: usize,
    /// Frames in and out, when traced (boxed: off, it costs a pointer).
    pub(crate) trace: Option<Box<FrameTrace>>,
}

impl Outgoing {
    /// Queues a frame. Control frames (Ping, Pong) go to the priority queue;
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
        if let Some(trace) = &mut self.trace {
            trace.record(true, header);
        }
        self.queued += head_len + payload.len();
        let priority = matches!(opcode, OpCode::Ping | OpCode::Pong);
        let buffer = if priority {
            &mut self.control
        } else {
            &mut self.tail
        };
        let inline = mask.is_some() || priority || payload.len() <= INLINE_PAYLOAD_MAX;
        reserve(buffer, head_len + if inline { payload.len() } else { 0 });
        buffer.extend_from_slice(&head[..head_len]);
        match mask {
            Some(key) => {
                let start = buffer.len();
                buffer.extend_from_slice(payload);
                apply_mask(&mut buffer[start..], key, 0);
            }
            None if priority || payload.len() <= INLINE_PAYLOAD_MAX => {
                buffer.extend_from_slice(payload);
            }
            None => {
                let head = self.tail.split().freeze();
                self.chunks.push_back(Chunk {
                    bytes: head,
                    glued: true,
                });
                self.chunks.push_back(Chunk {
                    bytes: payload.clone(),
                    glued: false,
                });
            }
        }
    }

    /// Queues a frame encoded elsewhere (unmasked, whole), after the data
    /// already queued: copied when small, shared when large.
    pub(crate) fn push_encoded(&mut self, frame: &Bytes) {
        if let Some(trace) = &mut self.trace
            && let Ok(Some((header, _))) = FrameHeader::parse(frame)
        {
            trace.record(true, header);
        }
        self.queued += frame.len();
        if frame.len() <= INLINE_PAYLOAD_MAX {
            reserve(&mut self.tail, frame.len());
            self.tail.extend_from_slice(frame);
            return;
        }
        if !self.tail.is_empty() {
            let corked = self.tail.split().freeze();
            self.chunks.push_back(Chunk {
                bytes: corked,
                glued: false,
            });
        }
        self.chunks.push_back(Chunk {
            bytes: frame.clone(),
            glued: false,
        });
    }

    /// The next chunk to write, in wire order.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        let bytes = if !self.mid_frame && !self.control.is_empty() {
            self.control.split().freeze()
        } else if let Some(chunk) = self.chunks.pop_front() {
            self.mid_frame = chunk.glued;
            chunk.bytes
        } else if !self.tail.is_empty() {
            self.tail.split().freeze()
        } else {
            // Everything was taken: give the spare capacity back, so an
            // idle connection holds no output buffer (it is shared with the
            // chunks being written, and freed with them).
            self.tail = BytesMut::new();
            self.control = BytesMut::new();
            self.chunks = VecDeque::new();
            return None;
        };
        self.queued -= bytes.len();
        Some(bytes)
    }

    /// Bytes waiting to be taken.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Bytes of Pings and Pongs waiting to be taken.
    pub(crate) fn control_len(&self) -> usize {
        self.control.len()
    }

    /// Drops queued Pings and Pongs (once a Close is queued they are moot).
    pub(crate) fn clear_control(&mut self) {
        self.queued -= self.control.len();
        self.control.clear();
    }

    /// Whether the last chunk handed out ended inside a frame (a header
    /// whose payload is the next chunk).
    pub(crate) fn mid_frame(&self) -> bool {
        self.mid_frame
    }

    /// Drops everything not yet handed out, and its memory.
    pub(crate) fn clear(&mut self) {
        *self = Outgoing::default();
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
        assert_eq!(out.control.capacity(), 0);
        assert_eq!(out.chunks.capacity(), 0);
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
