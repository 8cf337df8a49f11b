//! The measured window of a run with `--warmup`: the counters at its
//! edges, announced on stderr.

use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::ProgressBar;

use super::Shared;
use crate::report::Window;

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Snapshot {
    at: Instant,
    received: u64,
    bytes: u64,
}

impl Shared {
    pub(super) fn snapshot(&self, at: Instant) -> Snapshot {
        Snapshot {
            at,
            received: self.received.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Forgets the round trips so far (the warm-up's).
    pub(super) fn reset_histogram(&self) {
        self.histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .reset();
        if let Some(board) = &self.fanout {
            board.reset_histograms();
        }
    }
}

/// The edges of the measured window, once reached.
#[derive(Debug, Default)]
pub(super) struct WindowMarks {
    pub(super) start: Option<Snapshot>,
    pub(super) end: Option<Snapshot>,
}

impl WindowMarks {
    /// Ends the window (once) if it started.
    pub(super) fn close(&mut self, shared: &Shared, now: Instant, progress: &ProgressBar) {
        if self.start.is_some() && self.end.is_none() {
            self.end = Some(shared.snapshot(now));
            progress.suspend(|| note!("sockeye: window end"));
        }
    }

    /// The window's figures, if it was measured.
    pub(super) fn report(&self) -> Option<Window> {
        let (start, end) = (self.start?, self.end?);
        let seconds = end.at.saturating_duration_since(start.at).as_secs_f64();
        let messages = end.received - start.received;
        let bytes = end.bytes - start.bytes;
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        Some(Window {
            seconds,
            messages,
            bytes,
            msgs_per_sec: per_second(messages),
            mb_per_sec: per_second(bytes) / 1e6,
        })
    }
}
