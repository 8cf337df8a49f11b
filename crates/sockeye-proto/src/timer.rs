//! The engine's timers, driven by the time the front-end passes in: the
//! keepalive Ping, its Pong deadline and the closing-handshake deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;

/// Deadlines, armed lazily by [`Timers::arm`] with the first `now` after
/// they become relevant.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    idle_deadline: Option<Instant>,
    /// Input arrived since the idle deadline was last set.
    activity: bool,
    pings_sent: u64,
}

impl Timers {
    /// Arms the timers that apply and returns the earliest deadline.
    pub(crate) fn arm(
        &mut self,
        now: Instant,
        keepalive: Option<Duration>,
        close_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
    ) -> Option<Instant> {
        match idle_timeout {
            Some(timeout) if self.activity || self.idle_deadline.is_none() => {
                self.idle_deadline = Some(now + timeout);
                self.activity = false;
            }
            Some(_) => {}
            None => self.idle_deadline = None,
        }
        match keepalive {
            Some(interval) => {
                if self.next_ping.is_none() && self.pong_deadline.is_none() {
                    self.next_ping = Some(now + interval);
                }
            }
            None => {
                self.next_ping = None;
                self.pong_deadline = None;
            }
        }
        match close_timeout {
            Some(timeout) => {
                self.close_deadline.get_or_insert(now + timeout);
            }
            None => self.close_deadline = None,
        }
        [
            self.next_ping,
            self.pong_deadline,
            self.close_deadline,
            self.idle_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the closing-handshake deadline passed.
    pub(crate) fn close_expired(&self, now: Instant) -> bool {
        self.close_deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Bytes arrived from the peer: the idle deadline moves with the next
    /// [`Timers::arm`].
    pub(crate) fn input_arrived(&mut self) {
        self.activity = true;
    }

    /// Whether the peer has been silent past the idle timeout.
    pub(crate) fn idle_expired(&self, now: Instant) -> bool {
        !self.activity && self.idle_deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Whether a keepalive Pong is overdue.
    pub(crate) fn pong_overdue(&self, now: Instant) -> bool {
        self.pong_deadline.is_some_and(|deadline| now >= deadline)
    }

    /// If a keepalive Ping is due, schedules the next one and returns the
    /// payload to send.
    pub(crate) fn ping_due(
        &mut self,
        now: Instant,
        interval: Duration,
        timeout: Duration,
    ) -> Option<Bytes> {
        let due = self.next_ping.is_some_and(|at| now >= at);
        if !due || self.pong_deadline.is_some() {
            return None;
        }
        self.pings_sent += 1;
        self.pong_deadline = Some(now + timeout);
        self.next_ping = Some(now + interval);
        Some(Bytes::copy_from_slice(&self.pings_sent.to_be_bytes()))
    }

    /// A Pong arrived: it answers the keepalive Ping if it echoes its
    /// payload (RFC 6455 section 5.5.3).
    pub(crate) fn pong_received(&mut self, payload: &[u8]) {
        // The outstanding Ping's payload is its number.
        if self.pong_deadline.is_some() && payload == self.pings_sent.to_be_bytes() {
            self.pong_deadline = None;
        }
    }
}
