//! `--raw-echo`: connections to a TCP echo server, the floor on cost.
//!
//! The server does no WebSocket work: it writes back what it reads. So
//! that it still moves the same bytes as a WebSocket echo server, each
//! message goes out as a masked client frame (header, key, masked
//! payload) and the echo must be that frame, byte for byte. A masked
//! frame echoed verbatim is not a valid server frame, which is why this
//! mode compares bytes instead of parsing frames. There is no handshake.
//!
//! Like [`super::lane`], one task per connection drives reads and writes
//! in the same wake-up (a large frame can be written while its echo is
//! read), and frames are cut from one reused buffer.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use sockeye::proto::frame::mask::apply_mask;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::lane::{LaneEnd, Tally};
use super::payload::Payloads;
use super::{DRAIN_WAIT, Plan, Shared};

/// Bytes read at once.
const READ_SIZE: usize = 64 * 1024;

/// Frames handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Outer rounds of reading and writing in one wake-up before yielding.
const ROUNDS_PER_POLL: usize = 32;

/// A frame whose echo is awaited.
struct InFlight {
    frame: Bytes,
    payload_len: usize,
    sent: Instant,
}

/// One raw connection's state.
pub struct RawLane {
    id: u32,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    payloads: Payloads,
    next_send: u64,
    /// Makes the masking keys.
    random: u64,
    /// Oldest first; echoes come back in order.
    in_flight: VecDeque<InFlight>,
    /// Bytes of the oldest frame already echoed.
    matched: usize,
    /// Frames (or what is left of them) still to write.
    unwritten: VecDeque<Bytes>,
    /// Frames are built here and split off.
    frames: BytesMut,
    read_buffer: Box<[u8]>,
    tally: Tally,
    sending_done: bool,
    end: LaneEnd,
}

impl RawLane {
    /// Connection `id` of the plan.
    pub fn new(id: u32, plan: Arc<Plan>, shared: Arc<Shared>) -> RawLane {
        let pipeline = plan.pipeline;
        let capacity = (plan.size + 14).saturating_mul(pipeline.saturating_mul(2).max(8));
        RawLane {
            id,
            payloads: Payloads::with_kind(plan.payload, id, plan.size, 1),
            random: u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            frames: BytesMut::with_capacity(capacity.min(64 << 20)),
            plan,
            shared,
            next_send: 0,
            in_flight: VecDeque::with_capacity(pipeline),
            matched: 0,
            unwritten: VecDeque::with_capacity(pipeline),
            read_buffer: vec![0; READ_SIZE].into_boxed_slice(),
            tally: Tally::default(),
            sending_done: false,
            end: LaneEnd::default(),
        }
    }

    /// Waits `delay` (the ramp-up), connects, runs, closes.
    pub async fn run(mut self, delay: Duration) -> LaneEnd {
        tokio::time::sleep(delay).await;
        if self.shared.stop.load(Ordering::Relaxed) {
            return self.end;
        }
        let opened = self.plan.open_tcp(self.id).await;
        let Some(mut tcp) =
            self.end
                .opened(format_args!("connection {}", self.id), &self.shared, opened)
        else {
            return self.end;
        };
        let outcome = poll_fn(|cx| self.poll_drive(&mut tcp, cx)).await;
        self.tally.flush(&self.shared);
        self.end.lost = self.in_flight.len() as u64;
        match outcome {
            Ok(()) => {
                if tokio::time::timeout(DRAIN_WAIT, tcp.shutdown())
                    .await
                    .is_err()
                {
                    self.end.error = Some("shutting the connection down timed out".into());
                }
            }
            Err(error) => {
                tracing::debug!("connection {}: {error}", self.id);
                self.end.error = Some(error);
            }
        }
        self.end
    }

    /// Reads echoes, queues frames while the pipeline has room, writes;
    /// ready when sending is over and every echo came back.
    fn poll_drive(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), String>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            loop {
                let mut buffer = ReadBuf::new(&mut self.read_buffer);
                match Pin::new(&mut *tcp).poll_read(cx, &mut buffer) {
                    Poll::Ready(Ok(())) if buffer.filled().is_empty() => {
                        return Poll::Ready(Err("the server closed the connection".into()));
                    }
                    Poll::Ready(Ok(())) => {
                        let read = buffer.filled().len();
                        self.on_bytes(read)?;
                        progress = true;
                    }
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(format!("connection failed: {error}")));
                    }
                    Poll::Pending => break,
                }
            }
            while !self.sending_done && self.in_flight.len() < self.plan.pipeline {
                if !self.shared.may_send() {
                    self.sending_done = true;
                    break;
                }
                self.queue_frame();
                progress = true;
            }
            if self.shared.stop.load(Ordering::Relaxed) {
                self.sending_done = true;
            }
            match self.poll_write_out(tcp, cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err(format!("sending failed: {error}")));
                }
                Poll::Pending => {}
            }
            if self.sending_done && self.in_flight.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                self.tally.publish(&self.shared);
                return Poll::Pending;
            }
        }
        self.tally.publish(&self.shared);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Builds the next frame: FIN, opcode, mask bit and length, key,
    /// masked payload.
    fn queue_frame(&mut self) {
        let size = self.payloads.size();
        self.frames.reserve(14 + size);
        let opcode = if self.plan.text { 0x1 } else { 0x2 };
        self.frames.extend_from_slice(&[0x80 | opcode]);
        if size < 126 {
            self.frames.extend_from_slice(&[0x80 | size as u8]);
        } else if size <= usize::from(u16::MAX) {
            self.frames.extend_from_slice(&[0x80 | 126]);
            self.frames.extend_from_slice(&(size as u16).to_be_bytes());
        } else {
            self.frames.extend_from_slice(&[0x80 | 127]);
            self.frames.extend_from_slice(&(size as u64).to_be_bytes());
        }
        let key = (self.next_random() as u32).to_be_bytes();
        self.frames.extend_from_slice(&key);
        let start = self.frames.len();
        self.payloads.append(self.next_send, &mut self.frames);
        apply_mask(&mut self.frames[start..], key, 0);
        self.next_send += 1;
        let frame = self.frames.split().freeze();
        let now = Instant::now();
        self.end.first_send.get_or_insert(now);
        self.unwritten.push_back(frame.clone());
        self.in_flight.push_back(InFlight {
            frame,
            payload_len: size,
            sent: now,
        });
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// Writes what it can; whether anything was written.
    fn poll_write_out(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<bool>> {
        let mut wrote = false;
        while !self.unwritten.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(&self.unwritten) {
                *slot = IoSlice::new(frame);
                count += 1;
            }
            let written = match Pin::new(&mut *tcp).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending if wrote => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            };
            wrote = true;
            let mut left = written;
            while left > 0 {
                let Some(front) = self.unwritten.front_mut() else {
                    break;
                };
                if front.len() <= left {
                    left -= front.len();
                    self.unwritten.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
        Poll::Ready(Ok(wrote))
    }

    /// Matches `read` bytes of the read buffer against the frames in
    /// flight. A difference desynchronizes the stream: the connection
    /// ends.
    fn on_bytes(&mut self, read: usize) -> Result<(), String> {
        let mut at = 0;
        while at < read {
            let Some(front) = self.in_flight.front() else {
                self.tally.mismatch();
                return Err("the server sent bytes that were not an echo".into());
            };
            let take = (front.frame.len() - self.matched).min(read - at);
            if front.frame[self.matched..self.matched + take] != self.read_buffer[at..at + take] {
                self.tally.mismatch();
                return Err("an echo differed from what was sent".into());
            }
            self.matched += take;
            at += take;
            if self.matched == front.frame.len() {
                let now = Instant::now();
                let done = self.in_flight.pop_front().expect("a frame in flight");
                self.matched = 0;
                self.end.last_receive = Some(now);
                self.tally.received(
                    &self.shared,
                    done.payload_len,
                    now.saturating_duration_since(done.sent),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_client_frames() {
        // The header layout for the three length encodings.
        for (size, header) in [(20usize, 2usize), (1024, 4), (70_000, 10)] {
            let lane = test_lane(size);
            let mut lane = lane;
            lane.queue_frame();
            let frame = &lane.in_flight[0].frame;
            assert_eq!(frame.len(), header + 4 + size);
            assert_eq!(frame[0], 0x82, "FIN, binary");
            assert_eq!(frame[1] & 0x80, 0x80, "masked");
            let key = [
                frame[header],
                frame[header + 1],
                frame[header + 2],
                frame[header + 3],
            ];
            let mut payload = frame[header + 4..].to_vec();
            apply_mask(&mut payload, key, 0);
            assert!(lane.payloads.check(0, &payload), "size {size}");
        }
    }

    fn test_lane(size: usize) -> RawLane {
        let plan = Arc::new(Plan {
            client: super::super::ClientSettings {
                url: "ws://127.0.0.1:1/".into(),
                deflate: sockeye::DeflateConfig::new(),
                config: sockeye::proto::Config::new(),
                tls: None,
            },
            size,
            text: false,
            pipeline: 2,
            payload: super::super::PayloadKind::Plain,
            address: "127.0.0.1:1".parse().unwrap(),
            local_addresses: None,
            raw: true,
            opening: tokio::sync::Semaphore::new(1),
        });
        let shared = Arc::new(super::super::tests::shared());
        RawLane::new(3, plan, shared)
    }
}
