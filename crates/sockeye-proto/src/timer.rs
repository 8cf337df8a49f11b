//! The engine's timers, driven by the time the front-end passes in: the
//! keepalive Ping, its Pong deadline, the idle and message-completion
//! deadlines, a scheduled close and the closing-handshake deadline.
//!
//! The invariant every front-end relies on: once
//! [`Connection::handle_timeout`](crate::Connection::handle_timeout) has
//! run for some `now`, the next deadline handed out is later than `now`
//! (or there is none). Each deadline that expires is therefore consumed
//! when it is handled (the Ping waits for its Pong, the close timer fires
//! once), and every deadline is set at least [`MIN_DELAY`] ahead; a
//! front-end that sleeps until the deadline it was given never loops
//! without waiting.

use std::time::{Duration, Instant};

use bytes::Bytes;

/// The shortest delay a timer is set for, so that a zero duration in the
/// config cannot hand out a deadline equal to `now`.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(1);

/// `now + delay`, at least [`MIN_DELAY`] ahead.
fn after(now: Instant, delay: Duration) -> Instant {
    now + delay.max(MIN_DELAY)
}

/// Which timers apply in the connection's current state, and for how long.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Armed {
    /// The keepalive interval, while keepalive runs.
    pub(crate) keepalive: Option<Duration>,
    /// The closing-handshake timeout, while waiting for the peer's Close
    /// or the end of the transport.
    pub(crate) close: Option<Duration>,
    /// The idle timeout, while open.
    pub(crate) idle: Option<Duration>,
    /// The message-completion timeout, while the peer has a frame or
    /// message started and not finished.
    pub(crate) message: Option<Duration>,
    /// Whether a scheduled close still applies (while open).
    pub(crate) scheduled_close: bool,
}

/// Deadlines, armed lazily by [`Timers::arm`] with the first `now` after
/// they become relevant.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// When the next keepalive Ping is due; `None` while one waits for its
    /// Pong (the next one is scheduled when the Pong comes).
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    /// The close timer fired: it is never armed again.
    close_fired: bool,
    idle_deadline: Option<Instant>,
    /// Input arrived since the idle deadline was last set.
    activity: bool,
    message_deadline: Option<Instant>,
    /// When the application asked the connection to close by itself (see
    /// `Connection::close_at`); an absolute time, not a delay.
    scheduled_close: Option<Instant>,
    pings_sent: u64,
}

impl Timers {
    /// Arms the timers that apply and returns the earliest deadline.
    pub(crate) fn arm(&mut self, now: Instant, armed: Armed) -> Option<Instant> {
        match armed.idle {
            Some(timeout) if self.activity || self.idle_deadline.is_none() => {
                self.idle_deadline = Some(after(now, timeout));
                self.activity = false;
            }
            Some(_) => {}
            None => self.idle_deadline = None,
        }
        match armed.keepalive {
            Some(interval) => {
                if self.next_ping.is_none() && self.pong_deadline.is_none() {
                    self.next_ping = Some(after(now, interval));
                }
            }
            None => {
                self.next_ping = None;
                self.pong_deadline = None;
            }
        }
        match armed.close {
            Some(timeout) if !self.close_fired => {
                self.close_deadline.get_or_insert(after(now, timeout));
            }
            _ => self.close_deadline = None,
        }
        match armed.message {
            Some(timeout) => {
                self.message_deadline.get_or_insert(after(now, timeout));
            }
            None => self.message_deadline = None,
        }
        if !armed.scheduled_close {
            self.scheduled_close = None;
        }
        [
            self.next_ping,
            self.pong_deadline,
            self.close_deadline,
            self.idle_deadline,
            self.message_deadline,
            self.scheduled_close,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Schedules the close at `at`, replacing any earlier schedule. The
    /// time is the caller's: it is handed out as a deadline as it is, and
    /// one already past fires at the next `handle_timeout`, which consumes
    /// it, so the invariant holds.
    pub(crate) fn schedule_close(&mut self, at: Instant) {
        self.scheduled_close = Some(at);
    }

    /// When the scheduled close is due, if one is scheduled.
    pub(crate) fn scheduled_close(&self) -> Option<Instant> {
        self.scheduled_close
    }

    /// Whether the scheduled close is due by `now`; if so, it is consumed.
    pub(crate) fn take_scheduled_close_due(&mut self, now: Instant) -> bool {
        let due = self.scheduled_close.is_some_and(|at| now >= at);
        if due {
            self.scheduled_close = None;
        }
        due
    }

    /// Whether the closing-handshake deadline passed; if so, the close
    /// timer is spent.
    pub(crate) fn take_close_expired(&mut self, now: Instant) -> bool {
        let expired = self.close_deadline.is_some_and(|deadline| now >= deadline);
        if expired {
            self.close_deadline = None;
            self.close_fired = true;
        }
        expired
    }

    /// Whether the close timer fired: the peer had its time, and output
    /// still unwritten is abandoned.
    pub(crate) fn close_fired(&self) -> bool {
        self.close_fired
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

    /// Whether a started frame or message is overdue.
    pub(crate) fn message_expired(&self, now: Instant) -> bool {
        self.message_deadline
            .is_some_and(|deadline| now >= deadline)
    }

    /// A frame or message the peer started is complete: the next one gets
    /// its own deadline.
    pub(crate) fn message_completed(&mut self) {
        self.message_deadline = None;
    }

    /// Whether a keepalive Pong is overdue.
    pub(crate) fn pong_overdue(&self, now: Instant) -> bool {
        self.pong_deadline.is_some_and(|deadline| now >= deadline)
    }

    /// If a keepalive Ping is due, starts waiting for its Pong (with
    /// `timeout`) and returns the payload to send. No other Ping is due
    /// until the Pong arrives.
    pub(crate) fn ping_due(&mut self, now: Instant, timeout: Duration) -> Option<Bytes> {
        if self.next_ping.is_none_or(|at| now < at) {
            return None;
        }
        self.next_ping = None;
        self.pings_sent += 1;
        self.pong_deadline = Some(after(now, timeout));
        Some(Bytes::copy_from_slice(&self.pings_sent.to_be_bytes()))
    }

    /// A Pong arrived: it answers the keepalive Ping if it echoes its
    /// payload (RFC 6455 section 5.5.3); the next Ping is then scheduled
    /// one interval after the next [`Timers::arm`].
    pub(crate) fn pong_received(&mut self, payload: &[u8]) {
        // The outstanding Ping's payload is its number.
        if self.pong_deadline.is_some() && payload == self.pings_sent.to_be_bytes() {
            self.pong_deadline = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive(interval: u64) -> Armed {
        Armed {
            keepalive: Some(Duration::from_secs(interval)),
            ..Armed::default()
        }
    }

    #[test]
    fn a_ping_waiting_for_its_pong_schedules_no_other() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let first = timers.arm(t0, keepalive(5)).unwrap();
        assert_eq!(first, t0 + Duration::from_secs(5));
        assert!(timers.ping_due(first, Duration::from_secs(20)).is_some());
        // The interval (5 s) is shorter than the Pong timeout (20 s): the
        // next deadline is the Pong's, not a Ping already past.
        let later = first + Duration::from_secs(7);
        assert!(timers.ping_due(later, Duration::from_secs(20)).is_none());
        assert_eq!(
            timers.arm(later, keepalive(5)),
            Some(first + Duration::from_secs(20))
        );
    }

    #[test]
    fn zero_durations_still_wait() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let armed = Armed {
            keepalive: Some(Duration::ZERO),
            close: Some(Duration::ZERO),
            idle: Some(Duration::ZERO),
            message: Some(Duration::ZERO),
            scheduled_close: false,
        };
        assert_eq!(timers.arm(t0, armed), Some(t0 + MIN_DELAY));
    }

    #[test]
    fn the_close_timer_fires_once() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let close = Armed {
            close: Some(Duration::from_secs(1)),
            ..Armed::default()
        };
        let deadline = timers.arm(t0, close).unwrap();
        assert!(timers.take_close_expired(deadline));
        assert!(timers.close_fired());
        assert_eq!(timers.arm(deadline, close), None);
        assert!(!timers.take_close_expired(deadline));
    }

    #[test]
    fn a_scheduled_close_is_a_deadline_until_taken_or_disarmed() {
        let t0 = Instant::now();
        let at = t0 + Duration::from_millis(300);
        let open = Armed {
            scheduled_close: true,
            ..Armed::default()
        };
        let mut timers = Timers::default();
        timers.schedule_close(at);
        assert_eq!(timers.arm(t0, open), Some(at));
        assert!(!timers.take_scheduled_close_due(t0));
        assert!(timers.take_scheduled_close_due(at));
        assert_eq!(timers.arm(at, open), None);
        // No longer open: the schedule is dropped.
        timers.schedule_close(at);
        assert_eq!(timers.arm(t0, Armed::default()), None);
        assert_eq!(timers.scheduled_close(), None);
    }
}
