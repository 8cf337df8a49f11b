//! One bench connection: connect, keep the pipeline full, verify every
//! echo, close. A connection on which permessage-deflate was negotiated
//! goes on as a [`RawLane`] with messages compressed ahead of time.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_sink::Sink;
use sockeye::{ClientStream, CloseCode, Error, Message, Utf8Bytes, WebSocket};

use super::payload::Payloads;
use super::raw::RawLane;
use super::{DRAIN_WAIT, Plan, Shared};

/// Latency samples kept before they go into the shared histogram.
const SAMPLE_BATCH: usize = 1024;

/// Outer rounds of receive-and-send in one wake-up before yielding to
/// other connections.
const ROUNDS_PER_POLL: usize = 32;

/// How one connection's run ended.
#[derive(Debug, Default)]
pub struct LaneEnd {
    /// The connection was opened.
    pub connected: bool,
    /// The server accepted permessage-deflate.
    pub compressed: bool,
    /// Why it could not be opened.
    pub connect_error: Option<Error>,
    /// Why it failed after opening (the server closed, a protocol error).
    pub error: Option<String>,
    /// When it sent its first message.
    pub first_send: Option<Instant>,
    /// When it received its last echo.
    pub last_receive: Option<Instant>,
    /// Messages sent whose echo never came.
    pub lost: u64,
}

impl LaneEnd {
    /// A lane that was stopped from outside (it did not finish in time).
    pub fn aborted() -> LaneEnd {
        LaneEnd {
            connected: true,
            error: Some("did not finish in time".into()),
            ..LaneEnd::default()
        }
    }

    /// Records how opening connection `who` went and counts it as
    /// opened or failed; returns the stream when it opened.
    pub fn opened<T, E: Into<Error> + std::fmt::Display>(
        &mut self,
        who: std::fmt::Arguments<'_>,
        shared: &Shared,
        opened: Result<T, E>,
    ) -> Option<T> {
        match opened {
            Ok(stream) => {
                shared.opened_one(true);
                self.connected = true;
                Some(stream)
            }
            Err(error) => {
                tracing::debug!("{who}: {error}");
                self.connect_error = Some(error.into());
                shared.opened_one(false);
                None
            }
        }
    }

    /// Closes with 1000, bounded by the drain wait, and records a closing
    /// handshake that went wrong.
    pub async fn close<S>(&mut self, ws: &mut WebSocket<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        match tokio::time::timeout(DRAIN_WAIT, ws.close(CloseCode::NORMAL, "")).await {
            Ok(Ok(closed)) if closed.is_clean() => {}
            Ok(Ok(closed)) => {
                self.error = Some(format!("closing handshake failed ({})", closed.code()))
            }
            Ok(Err(error)) => self.error = Some(format!("closing failed: {error}")),
            Err(_) => self.error = Some("the closing handshake timed out".into()),
        }
    }
}

/// One connection's state.
pub struct Lane {
    id: u32,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    payloads: Payloads,
    next_send: u64,
    next_receive: u64,
    /// When each message in flight was sent, oldest first (echoes come
    /// back in order).
    sent_at: VecDeque<Instant>,
    samples: Vec<u64>,
    /// Counts not yet added to the shared counters.
    unpublished: (u64, u64, u64),
    /// No more sends: the budget or the time is over.
    sending_done: bool,
    end: LaneEnd,
}

impl Lane {
    /// Lane `id` of the plan.
    pub fn new(id: u32, plan: Arc<Plan>, shared: Arc<Shared>) -> Lane {
        let pipeline = plan.pipeline;
        Lane {
            id,
            payloads: Payloads::with_kind(plan.payload, id, plan.size, pipeline),
            plan,
            shared,
            next_send: 0,
            next_receive: 0,
            sent_at: VecDeque::with_capacity(pipeline),
            samples: Vec::with_capacity(SAMPLE_BATCH),
            unpublished: (0, 0, 0),
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
        let connected = self.plan.connect(self.id).await;
        let Some((mut ws, _)) = self.end.opened(
            format_args!("connection {}", self.id),
            &self.shared,
            connected,
        ) else {
            return self.end;
        };
        self.end.compressed = ws.connection().deflate_params().is_some();
        if self.end.compressed {
            // Compressing every message would cost the generator as much
            // as the server: the messages are compressed ahead of time.
            return RawLane::run_prepared(self.id, self.plan, self.shared, ws, self.end).await;
        }
        let outcome = poll_fn(|cx| self.poll_drive(&mut ws, cx)).await;
        self.flush_samples();
        self.publish();
        self.end.lost = self.sent_at.len() as u64;
        match outcome {
            Ok(()) => self.end.close(&mut ws).await,
            Err(error) => {
                tracing::debug!("connection {}: {error}", self.id);
                self.end.error = Some(error);
            }
        }
        self.end
    }

    /// Receives what has arrived, sends while the pipeline has room,
    /// flushes; ready when sending is over and every echo came back.
    fn poll_drive(
        &mut self,
        ws: &mut WebSocket<ClientStream>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), String>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            loop {
                match Pin::new(&mut *ws).poll_next(cx) {
                    Poll::Ready(Some(Ok(message))) => {
                        self.on_echo(&message);
                        progress = true;
                    }
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Err(format!("connection failed: {error}")));
                    }
                    Poll::Ready(None) => {
                        let how = ws
                            .closed()
                            .map(|closed| format!(" ({})", closed.code()))
                            .unwrap_or_default();
                        return Poll::Ready(Err(format!("the server closed the connection{how}")));
                    }
                    Poll::Pending => break,
                }
            }
            while !self.sending_done && self.sent_at.len() < self.plan.pipeline {
                match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(format!("sending failed: {error}")));
                    }
                    Poll::Pending => break,
                }
                if !self.shared.may_send() {
                    self.sending_done = true;
                    break;
                }
                let message = self.next_message()?;
                if let Err(error) = Pin::new(&mut *ws).start_send(message) {
                    return Poll::Ready(Err(format!("sending failed: {error}")));
                }
                progress = true;
            }
            if self.shared.stop.load(Ordering::Relaxed) {
                self.sending_done = true;
            }
            if let Poll::Ready(Err(error)) = Pin::new(&mut *ws).poll_flush(cx) {
                return Poll::Ready(Err(format!("sending failed: {error}")));
            }
            if self.sending_done && self.sent_at.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                self.publish();
                return Poll::Pending;
            }
        }
        // Busy: let the other connections run, and come back.
        self.publish();
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The next message to send, recorded as in flight.
    fn next_message(&mut self) -> Result<Message, String> {
        let payload = self.payloads.make(self.next_send);
        self.next_send += 1;
        let message = if self.plan.text {
            let text = Utf8Bytes::try_from(payload)
                .map_err(|_| "internal error: a text payload is not UTF-8".to_owned())?;
            Message::Text(text)
        } else {
            Message::Binary(payload)
        };
        let now = Instant::now();
        self.end.first_send.get_or_insert(now);
        self.sent_at.push_back(now);
        Ok(message)
    }

    /// Checks an echo against the oldest message in flight.
    fn on_echo(&mut self, message: &Message) {
        let now = Instant::now();
        let Some(sent) = self.sent_at.pop_front() else {
            // An echo for nothing sent.
            self.unpublished.2 += 1;
            self.shared
                .diagnose_reply(&self.plan, &mut self.payloads, self.id, message.as_bytes());
            return;
        };
        let right_kind = message.is_text() == self.plan.text;
        if !right_kind || !self.payloads.check(self.next_receive, message.as_bytes()) {
            self.unpublished.2 += 1;
            self.shared
                .diagnose_reply(&self.plan, &mut self.payloads, self.id, message.as_bytes());
        }
        self.next_receive += 1;
        self.unpublished.0 += 1;
        self.unpublished.1 += message.len() as u64;
        self.end.last_receive = Some(now);
        self.samples
            .push(now.saturating_duration_since(sent).as_nanos() as u64);
        if self.samples.len() == SAMPLE_BATCH {
            self.flush_samples();
        }
    }

    /// Adds the local counts to the shared ones.
    fn publish(&mut self) {
        let (received, bytes, mismatches) = std::mem::take(&mut self.unpublished);
        if received > 0 {
            self.shared.received.fetch_add(received, Ordering::Relaxed);
            self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if mismatches > 0 {
            self.shared
                .mismatches
                .fetch_add(mismatches, Ordering::Relaxed);
        }
    }

    /// Moves the latency samples into the shared histogram.
    fn flush_samples(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        let mut histogram = self
            .shared
            .histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for sample in self.samples.drain(..) {
            histogram.saturating_record(sample.max(1));
        }
    }
}

/// Counts and round trips of one connection, published to the shared
/// counters in batches (for the lanes of the other modes).
#[derive(Debug)]
pub struct Tally {
    samples: Vec<u64>,
    /// Received, bytes, mismatches not yet published.
    unpublished: (u64, u64, u64),
    /// A fan-out receiver's server (index of its URL): its round trips
    /// also go to that server's histogram, its deliveries to its count.
    endpoint: Option<usize>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            samples: Vec::with_capacity(SAMPLE_BATCH),
            unpublished: (0, 0, 0),
            endpoint: None,
        }
    }
}

impl Tally {
    /// A tally for a fan-out receiver on server `endpoint`.
    pub fn for_endpoint(endpoint: usize) -> Tally {
        Tally {
            endpoint: Some(endpoint),
            ..Tally::default()
        }
    }

    /// One message received: its payload size and round trip.
    pub fn received(&mut self, shared: &Shared, bytes: usize, round_trip: Duration) {
        self.unpublished.0 += 1;
        self.unpublished.1 += bytes as u64;
        self.samples.push(round_trip.as_nanos() as u64);
        if self.samples.len() == SAMPLE_BATCH {
            self.flush_samples(shared);
        }
    }

    /// One message that differed from what was expected.
    pub fn mismatch(&mut self) {
        self.unpublished.2 += 1;
    }

    /// Adds the local counts to the shared ones.
    pub fn publish(&mut self, shared: &Shared) {
        let (received, bytes, mismatches) = std::mem::take(&mut self.unpublished);
        if received > 0 {
            shared.received.fetch_add(received, Ordering::Relaxed);
            shared.bytes.fetch_add(bytes, Ordering::Relaxed);
            if let (Some(board), Some(endpoint)) = (&shared.fanout, self.endpoint) {
                board.count_deliveries(endpoint, received);
            }
        }
        if mismatches > 0 {
            shared.mismatches.fetch_add(mismatches, Ordering::Relaxed);
        }
    }

    /// Publishes everything: the counts and the round trips.
    pub fn flush(&mut self, shared: &Shared) {
        self.publish(shared);
        self.flush_samples(shared);
    }

    fn flush_samples(&mut self, shared: &Shared) {
        if self.samples.is_empty() {
            return;
        }
        if let (Some(board), Some(endpoint)) = (&shared.fanout, self.endpoint) {
            board.record_latencies(endpoint, &self.samples);
        }
        let mut histogram = shared
            .histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for sample in self.samples.drain(..) {
            histogram.saturating_record(sample.max(1));
        }
    }
}
