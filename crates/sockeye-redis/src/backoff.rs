//! Delays between connection attempts: exponential, capped, with jitter.

use std::time::Duration;

/// The delays before connection attempts: the ceiling starts at `min` and
/// doubles after each use up to `max`; each delay is drawn between half the
/// ceiling and the ceiling ("equal jitter": never shorter than half, so a
/// dead server is not hammered, and spread, so that nodes cut off together
/// do not come back together).
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            ceiling: min,
        }
    }

    /// The next delay; the one after it may be twice as long.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = ceiling.saturating_mul(2).min(self.max);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let half = ceiling_nanos / 2;
        Duration::from_nanos(half + rand::random_range(0..=ceiling_nanos - half))
    }

    /// Starts over at `min`.
    pub(crate) fn reset(&mut self) {
        self.ceiling = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_within_half() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        let mut backoff = Backoff::new(min, max);
        let mut ceiling = min;
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        assert_eq!(ceiling, max);
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            assert!(backoff.next_delay() >= Duration::from_secs(1));
        }
    }
}
