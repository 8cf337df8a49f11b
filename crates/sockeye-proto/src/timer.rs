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
//!
//! Deadlines are stored compactly, as every connection carries them while
//! idle (issue 18 budgets an idle connection at 0.3 KiB): each is a
//! [`Deadline`], 8 bytes of nanoseconds from one process-wide origin
//! instead of an `Option<Instant>`'s 16, and timers that never run at the
//! same time share one. Deadlines are only ever compared with the `now` the
//! front-end passes in and handed back out as `Instant`s, exactly.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The shortest delay a timer is set for, so that a zero duration in the
/// config cannot hand out a deadline equal to `now`.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(1);

/// The origin [`Deadline`]s count from: the first `now` any connection was
/// given. Shared by the whole process so that no connection spends 16 bytes
/// on an origin of its own. It is the front-end's time, never the clock's,
/// and any origin gives the same results, as conversions are exact.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// A point in time, or none: signed nanoseconds from [`ORIGIN`], exact for
/// any instant within 292 years of it (beyond, it is held at 292 years).
/// "None" is the largest value, so that the earliest of several deadlines
/// is their minimum and no `now` ever reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline(i64);

impl Default for Deadline {
    fn default() -> Deadline {
        Deadline::NONE
    }
}

impl Deadline {
    const NONE: Deadline = Deadline(i64::MAX);
    /// The latest representable time, one short of [`Deadline::NONE`].
    const LAST: i64 = i64::MAX - 1;

    fn at(instant: Instant) -> Deadline {
        let origin = *ORIGIN.get_or_init(|| instant);
        let nanos = |span: Duration| i64::try_from(span.as_nanos()).unwrap_or(i64::MAX);
        Deadline(match instant.checked_duration_since(origin) {
            Some(after) => nanos(after).min(Deadline::LAST),
            None => -nanos(origin.duration_since(instant)),
        })
    }

    fn instant(self) -> Option<Instant> {
        if self == Deadline::NONE {
            return None;
        }
        // Set: this deadline was made from an instant.
        let origin = *ORIGIN.get()?;
        let span = Duration::from_nanos(self.0.unsigned_abs());
        // Never fails: the result lies between the origin and an instant
        // this deadline was made from.
        if self.0 >= 0 {
            origin.checked_add(span)
        } else {
            origin.checked_sub(span)
        }
    }

    fn is_none(self) -> bool {
        self == Deadline::NONE
    }

    /// Whether `now` is at or past this deadline (never, for none).
    fn passed(self, now: Deadline) -> bool {
        now >= self
    }

    /// `delay` after this time, at least [`MIN_DELAY`] after.
    fn after(self, delay: Duration) -> Deadline {
        let delay = i64::try_from(delay.max(MIN_DELAY).as_nanos()).unwrap_or(i64::MAX);
        Deadline(self.0.saturating_add(delay).min(Deadline::LAST))
    }
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
    /// When the application asked the connection to close by itself (see
    /// `Connection::close_at`), while that still applies: an absolute time
    /// the connection keeps, and that counts as a deadline as it is.
    pub(crate) scheduled_close: Option<Instant>,
}

/// Deadlines, armed lazily by [`Timers::arm`] with the first `now` after
/// they become relevant.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// When the next keepalive Ping is due or, while `awaiting_pong`, when
    /// its Pong is: one at a time, as a Ping waiting for its Pong schedules
    /// no other (the next is scheduled when the Pong comes).
    keepalive: Deadline,
    idle: Deadline,
    /// The message-completion deadline while open, the closing-handshake
    /// deadline after (`close_armed` tells which): the one is armed only
    /// while open, the other only once closing.
    message_or_close: Deadline,
    /// Numbers the keepalive Pings, which carry it as their payload. 32
    /// bits: at one Ping a second it wraps after 136 years.
    pings_sent: u32,
    awaiting_pong: bool,
    /// `message_or_close` holds the closing-handshake deadline.
    close_armed: bool,
    /// The close timer fired: it is never armed again.
    close_fired: bool,
    /// Input arrived since the idle deadline was last set.
    activity: bool,
}

impl Timers {
    /// Arms the timers that apply and returns the earliest deadline.
    pub(crate) fn arm(&mut self, now: Instant, armed: Armed) -> Option<Instant> {
        // Converted only when a timer is set: most calls (one per read, for
        // a front-end) find the timers that apply set already.
        let mut converted = None;
        let mut now = || *converted.get_or_insert_with(|| Deadline::at(now));
        match armed.idle {
            Some(timeout) if self.activity || self.idle.is_none() => {
                self.idle = now().after(timeout);
                self.activity = false;
            }
            Some(_) => {}
            None => self.idle = Deadline::NONE,
        }
        match armed.keepalive {
            Some(interval) if self.keepalive.is_none() => self.keepalive = now().after(interval),
            Some(_) => {}
            None => {
                self.keepalive = Deadline::NONE;
                self.awaiting_pong = false;
            }
        }
        // Should both be armed (the connection never does), the close
        // timer takes the slot.
        match (armed.close, armed.message) {
            (Some(timeout), _) if !self.close_fired => {
                if !self.close_armed {
                    self.message_or_close = now().after(timeout);
                    self.close_armed = true;
                }
            }
            (_, Some(timeout)) => {
                if self.close_armed || self.message_or_close.is_none() {
                    self.message_or_close = now().after(timeout);
                    self.close_armed = false;
                }
            }
            (_, None) => {
                self.message_or_close = Deadline::NONE;
                self.close_armed = false;
            }
        }
        let scheduled_close = armed.scheduled_close.map_or(Deadline::NONE, Deadline::at);
        let earliest = self
            .keepalive
            .min(self.idle)
            .min(self.message_or_close)
            .min(scheduled_close);
        // The scheduled close is handed out as the caller gave it: a
        // deadline holds it exactly only within 292 years of the origin.
        match armed.scheduled_close {
            Some(at) if earliest == scheduled_close => Some(at),
            _ => earliest.instant(),
        }
    }

    /// Whether the closing-handshake deadline passed; if so, the close
    /// timer is spent.
    pub(crate) fn take_close_expired(&mut self, now: Instant) -> bool {
        let expired = self.close_armed && self.message_or_close.passed(Deadline::at(now));
        if expired {
            self.message_or_close = Deadline::NONE;
            self.close_armed = false;
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
        !self.activity && self.idle.passed(Deadline::at(now))
    }

    /// Whether a started frame or message is overdue.
    pub(crate) fn message_expired(&self, now: Instant) -> bool {
        !self.close_armed && self.message_or_close.passed(Deadline::at(now))
    }

    /// A frame or message the peer started is complete: the next one gets
    /// its own deadline.
    pub(crate) fn message_completed(&mut self) {
        if !self.close_armed {
            self.message_or_close = Deadline::NONE;
        }
    }

    /// Whether a keepalive Pong is overdue.
    pub(crate) fn pong_overdue(&self, now: Instant) -> bool {
        self.awaiting_pong && self.keepalive.passed(Deadline::at(now))
    }

    /// If a keepalive Ping is due, starts waiting for its Pong (with
    /// `timeout`) and returns the payload to send. No other Ping is due
    /// until the Pong arrives.
    pub(crate) fn ping_due(&mut self, now: Instant, timeout: Duration) -> Option<Bytes> {
        let now = Deadline::at(now);
        if self.awaiting_pong || !self.keepalive.passed(now) {
            return None;
        }
        self.pings_sent = self.pings_sent.wrapping_add(1);
        self.keepalive = now.after(timeout);
        self.awaiting_pong = true;
        Some(Bytes::copy_from_slice(&self.ping_payload()))
    }

    /// The payload of the last keepalive Ping: its number, in the 8 bytes
    /// it always had.
    fn ping_payload(&self) -> [u8; 8] {
        u64::from(self.pings_sent).to_be_bytes()
    }

    /// A Pong arrived: it answers the keepalive Ping if it echoes its
    /// payload (RFC 6455 section 5.5.3); the next Ping is then scheduled
    /// one interval after the next [`Timers::arm`].
    pub(crate) fn pong_received(&mut self, payload: &[u8]) {
        if self.awaiting_pong && payload == self.ping_payload() {
            self.keepalive = Deadline::NONE;
            self.awaiting_pong = false;
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
            scheduled_close: None,
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
    fn a_scheduled_close_is_handed_out_as_it_was_given() {
        let t0 = Instant::now();
        let at = t0 + Duration::from_nanos(300_000_123);
        let open = Armed {
            keepalive: Some(Duration::from_secs(1)),
            scheduled_close: Some(at),
            ..Armed::default()
        };
        let mut timers = Timers::default();
        assert_eq!(timers.arm(t0, open), Some(at));
        // Past already: still handed out, for `handle_timeout` to consume.
        let past = t0 - Duration::from_secs(5);
        let armed = Armed {
            scheduled_close: Some(past),
            ..open
        };
        assert_eq!(timers.arm(t0, armed), Some(past));
    }

    #[test]
    fn deadlines_are_exact_on_either_side_of_the_origin() {
        let t0 = Instant::now();
        // An hour back is before the origin, which this process set.
        let instants = [
            Some(t0),
            t0.checked_add(Duration::from_nanos(1)),
            t0.checked_add(Duration::from_secs(86_400 * 365 * 100) + Duration::from_nanos(7)),
            t0.checked_sub(Duration::from_nanos(1)),
            t0.checked_sub(Duration::from_secs(3600) + Duration::from_nanos(3)),
        ];
        for instant in instants.into_iter().flatten() {
            let deadline = Deadline::at(instant);
            assert_eq!(deadline.instant(), Some(instant));
            assert!(deadline.passed(Deadline::at(instant)));
            assert!(!deadline.passed(Deadline(deadline.0 - 1)));
        }
        assert_eq!(Deadline::NONE.instant(), None);
        assert!(!Deadline::NONE.passed(Deadline(Deadline::LAST)));
        // A delay too long to count in nanoseconds is held, not wrapped.
        let far = Deadline::at(t0).after(Duration::MAX);
        assert_eq!(far, Deadline(Deadline::LAST));
    }

    #[test]
    fn the_close_timer_takes_over_from_the_message_timer() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let open = Armed {
            message: Some(Duration::from_secs(60)),
            ..Armed::default()
        };
        assert_eq!(timers.arm(t0, open), Some(t0 + Duration::from_secs(60)));
        // Closing, before the timers are armed again: the message deadline
        // is not taken for the close timer's.
        let late = t0 + Duration::from_secs(61);
        assert!(!timers.take_close_expired(late));
        let closing = Armed {
            close: Some(Duration::from_secs(10)),
            ..Armed::default()
        };
        assert_eq!(
            timers.arm(late, closing),
            Some(late + Duration::from_secs(10))
        );
        // A frame completed while closing leaves the close timer running.
        timers.message_completed();
        assert!(!timers.message_expired(late + Duration::from_secs(20)));
        assert!(timers.take_close_expired(late + Duration::from_secs(10)));
        assert_eq!(timers.arm(late, closing), None);
    }
}
