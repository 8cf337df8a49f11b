//! Lanes that write frames they encoded themselves.
//!
//! - `--raw-echo`: connections to a TCP echo server, the floor on cost.
//!   The server does no WebSocket work: it writes back what it reads. So
//!   that it still moves the same bytes as a WebSocket echo server, each
//!   message goes out as a masked client frame (header, key, masked
//!   payload) and the echo must be that frame, byte for byte. A masked
//!   frame echoed verbatim is not a valid server frame, which is why this
//!   mode compares bytes instead of parsing frames. There is no handshake.
//! - A WebSocket server that accepted permessage-deflate: the messages
//!   were compressed ahead of time ([`super::prepared`]), so the generator
//!   spends nothing on compressing them; the connection's engine decodes
//!   (and inflates) the echoes, which are checked like [`super::lane`]'s.
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
use sockeye::proto::{Connection, Event};
use sockeye::{ClientStream, Parts, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::lane::{LaneEnd, Tally};
use super::payload::Payloads;
use super::prepared::{Cycle, append_remasked};
use super::{DRAIN_WAIT, Plan, Shared};

/// Bytes read at once.
const READ_SIZE: usize = 64 * 1024;

/// Frames handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Outer rounds of reading and writing in one wake-up before yielding.
const ROUNDS_PER_POLL: usize = 32;

/// A message whose echo is awaited.
struct InFlight {
    /// Its frame, as written (raw echo only: the echo must be these bytes).
    frame: Bytes,
    payload_len: usize,
    sent: Instant,
}

/// A WebSocket connection's frames, prepared ahead of time, and the
/// engine that decodes its echoes.
struct Prepared {
    cycle: Cycle,
    engine: Box<Connection>,
}

/// One connection's state.
pub struct RawLane {
    id: u32,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    payloads: Payloads,
    /// To a WebSocket server: frames from a prepared cycle; echoes decoded
    /// by the connection's engine and compared with the payloads. `None`
    /// for a TCP echo server: frames built from the payloads; echoes
    /// compared with them byte for byte.
    prepared: Option<Prepared>,
    next_send: u64,
    /// The sequence number of the next echo.
    next_receive: u64,
    /// Bytes of the oldest frame already echoed (raw echo).
    matched: usize,
    /// Makes the masking keys.
    random: u64,
    /// Oldest first; echoes come back in order.
    in_flight: VecDeque<InFlight>,
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
    /// Connection `id` of the plan, to a raw TCP echo server.
    pub fn new(id: u32, plan: Arc<Plan>, shared: Arc<Shared>) -> RawLane {
        let pipeline = plan.pipeline;
        let capacity = (plan.size + 14).saturating_mul(pipeline.saturating_mul(2).max(8));
        RawLane {
            id,
            payloads: Payloads::with_kind(plan.payload, id, plan.size, 1),
            prepared: None,
            random: u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            frames: BytesMut::with_capacity(capacity.min(64 << 20)),
            plan,
            shared,
            next_send: 0,
            next_receive: 0,
            matched: 0,
            in_flight: VecDeque::with_capacity(pipeline),
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
        self.finish_counts();
        match outcome {
            Ok(()) => {
                if tokio::time::timeout(DRAIN_WAIT, tcp.shutdown())
                    .await
                    .is_err()
                {
                    self.end.error = Some("shutting the connection down timed out".into());
                }
            }
            Err(error) => self.failed(error),
        }
        self.end
    }

    /// Runs connection `id` of the plan, opened (`end` says how) with
    /// permessage-deflate negotiated, with messages compressed ahead of
    /// time; closes it.
    pub async fn run_prepared(
        id: u32,
        plan: Arc<Plan>,
        shared: Arc<Shared>,
        ws: WebSocket<ClientStream>,
        end: LaneEnd,
    ) -> LaneEnd {
        let mut lane = RawLane::new(id, plan, shared);
        lane.end = end;
        let params = ws.connection().deflate_params();
        let deflate = lane.plan.client().deflate();
        let cycle = match Cycle::new(
            &mut lane.payloads,
            lane.plan.text,
            lane.plan.client().config(),
            params.map(|params| (params, &deflate)),
        ) {
            Ok(cycle) => cycle,
            Err(error) => {
                lane.failed(error);
                return lane.end;
            }
        };
        let Parts {
            mut stream,
            connection,
            unwritten,
            ..
        } = ws.into_parts();
        lane.unwritten.extend(unwritten);
        lane.prepared = Some(Prepared {
            cycle,
            engine: Box::new(connection),
        });
        let outcome = poll_fn(|cx| lane.poll_drive(&mut stream, cx)).await;
        lane.finish_counts();
        match (outcome, lane.prepared.take()) {
            (Ok(()), Some(Prepared { engine, .. })) => {
                // Every frame written: the engine can drive the stream again.
                let mut ws = WebSocket::from_engine(stream, *engine, &[]);
                lane.end.close(&mut ws).await;
            }
            (Ok(()), None) => lane.failed("internal error: the engine was lost".into()),
            (Err(error), _) => lane.failed(error),
        }
        lane.end
    }

    /// Publishes the counts and records what is lost.
    fn finish_counts(&mut self) {
        self.tally.flush(&self.shared);
        self.end.lost = self.in_flight.len() as u64;
    }

    fn failed(&mut self, error: String) {
        tracing::debug!("connection {}: {error}", self.id);
        self.end.error = Some(error);
    }

    /// Reads echoes, queues frames while the pipeline has room, writes;
    /// ready when sending is over, every echo came back and everything
    /// was written.
    fn poll_drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), String>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            loop {
                let mut buffer = ReadBuf::new(&mut self.read_buffer);
                match Pin::new(&mut *stream).poll_read(cx, &mut buffer) {
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
            match self.poll_write_out(stream, cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err(format!("sending failed: {error}")));
                }
                Poll::Pending => {}
            }
            if self.sending_done && self.in_flight.is_empty() && self.unwritten.is_empty() {
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

    /// Queues the next message's frames.
    fn queue_frame(&mut self) {
        let key = (self.next_random() as u32).to_be_bytes();
        match &self.prepared {
            None => self.build_frame(key),
            Some(prepared) => {
                append_remasked(
                    prepared.cycle.message(self.next_send),
                    key,
                    &mut self.frames,
                );
            }
        }
        self.next_send += 1;
        let frame = self.frames.split().freeze();
        let now = Instant::now();
        self.end.first_send.get_or_insert(now);
        self.unwritten.push_back(frame.clone());
        self.in_flight.push_back(InFlight {
            frame,
            payload_len: self.payloads.size(),
            sent: now,
        });
    }

    /// Builds the next raw frame: FIN, opcode, mask bit and length, key,
    /// masked payload.
    fn build_frame(&mut self, key: [u8; 4]) {
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
        self.frames.extend_from_slice(&key);
        let start = self.frames.len();
        self.payloads.append(self.next_send, &mut self.frames);
        apply_mask(&mut self.frames[start..], key, 0);
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
    fn poll_write_out<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
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
            let written = match Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count]) {
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

    /// Checks `read` bytes of the read buffer against the messages in
    /// flight.
    fn on_bytes(&mut self, read: usize) -> Result<(), String> {
        if self.prepared.is_some() {
            self.decode_echoes(read)
        } else {
            self.match_verbatim(read)
        }
    }

    /// Matches the bytes against the frames in flight. A difference
    /// desynchronizes the stream: the connection ends.
    fn match_verbatim(&mut self, read: usize) -> Result<(), String> {
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
            let (frame_len, payload_len) = (front.frame.len(), front.payload_len);
            self.matched += take;
            at += take;
            if self.matched == frame_len {
                self.matched = 0;
                self.echoed(payload_len);
            }
        }
        Ok(())
    }

    /// Hands the bytes to the engine and checks the messages it decodes;
    /// queues what it has to send (a Pong).
    fn decode_echoes(&mut self, read: usize) -> Result<(), String> {
        let Some(prepared) = self.prepared.as_mut() else {
            return Err("internal error: no engine".into());
        };
        prepared.engine.receive_data(&self.read_buffer[..read]);
        while let Some((event, index)) = self.next_event() {
            let message = match event {
                Event::Message(message) => message,
                Event::Closed(closed) => {
                    return Err(format!(
                        "the server closed the connection ({})",
                        closed.code()
                    ));
                }
                // Pings are answered by the engine.
                _ => continue,
            };
            if self.in_flight.is_empty() {
                // An echo for nothing sent.
                self.tally.mismatch();
                self.shared.diagnose_reply(
                    &self.plan,
                    &mut self.payloads,
                    self.id,
                    message.as_bytes(),
                );
                continue;
            }
            self.next_receive += 1;
            if message.is_text() != self.plan.text
                || !self.payloads.check(index, message.as_bytes())
            {
                self.tally.mismatch();
                self.shared.diagnose_reply(
                    &self.plan,
                    &mut self.payloads,
                    self.id,
                    message.as_bytes(),
                );
            }
            self.echoed(message.len());
        }
        if let Some(prepared) = self.prepared.as_mut() {
            while let Some(chunk) = prepared.engine.poll_transmit() {
                self.unwritten.push_back(chunk);
            }
        }
        Ok(())
    }

    /// The engine's next event, and the payload the next echo must carry.
    fn next_event(&mut self) -> Option<(Event, u64)> {
        let prepared = self.prepared.as_mut()?;
        let event = prepared.engine.next_event()?;
        Some((event, prepared.cycle.payload_index(self.next_receive)))
    }

    /// The oldest message in flight came back with `len` payload bytes.
    fn echoed(&mut self, len: usize) {
        let now = Instant::now();
        let done = self.in_flight.pop_front().expect("a message in flight");
        self.end.last_receive = Some(now);
        self.tally
            .received(&self.shared, len, now.saturating_duration_since(done.sent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_client_frames() {
        // The header layout for the three length encodings.
        for (size, header) in [(20usize, 2usize), (1024, 4), (70_000, 10)] {
            let mut lane = test_lane(size);
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
            endpoints: vec![super::super::Endpoint {
                client: super::super::ClientSettings {
                    url: "ws://127.0.0.1:1/".into(),
                    deflate: sockeye::DeflateConfig::new(),
                    config: sockeye::proto::Config::new(),
                    tls: None,
                },
                address: "127.0.0.1:1".parse().unwrap(),
            }],
            connections: 4,
            size,
            text: false,
            pipeline: 2,
            payload: super::super::PayloadKind::Plain,
            local_addresses: None,
            raw: true,
            no_handshake: false,
            rate: None,
            opening: tokio::sync::Semaphore::new(1),
            sessions: None,
        });
        let shared = Arc::new(super::super::tests::shared());
        RawLane::new(3, plan, shared)
    }
}
