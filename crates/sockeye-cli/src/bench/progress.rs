//! How a run shows its progress on stderr: a progress bar on a terminal;
//! elsewhere (a log, a pipe, CI) a plain line every few seconds; nothing
//! with `-q`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The progress shown during a run.
pub struct Progress {
    /// The bar: hidden when stderr is not a terminal or with `-q`, but
    /// always there, so that status lines can be printed around it.
    pub bar: ProgressBar,
    /// Plain lines, when stderr is not a terminal (and not `-q`).
    lines: Option<Lines>,
}

/// The state of the plain lines.
struct Lines {
    every: Duration,
    /// When the last line was written (or the run started), and the
    /// count then.
    last: (Instant, u64),
}

impl Progress {
    /// The progress for a run of `deadline` (a duration) or `messages`
    /// (a count); plain lines every `every` when stderr is not a terminal.
    pub fn new(deadline: Option<Duration>, messages: Option<u64>, every: Duration) -> Progress {
        if crate::quiet() {
            return Progress {
                bar: ProgressBar::hidden(),
                lines: None,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                lines: Some(Lines {
                    every,
                    last: (Instant::now(), 0),
                }),
            };
        }
        let length = match (deadline, messages) {
            (Some(deadline), _) => deadline.as_millis() as u64,
            (None, Some(messages)) => messages,
            (None, None) => 0,
        };
        let bar = ProgressBar::new(length);
        let template = "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar, lines: None }
    }

    /// At each sample: writes a plain line if one is due: the time since
    /// `start`, the messages (or deliveries, `noun`) received so far, the
    /// rate since the last line, the connections open.
    pub fn tick(&mut self, now: Instant, start: Instant, received: u64, noun: &str, open: usize) {
        let Some(lines) = &mut self.lines else {
            return;
        };
        let (then, before) = lines.last;
        let since = now.saturating_duration_since(then);
        if since < lines.every {
            return;
        }
        let rate = received.saturating_sub(before) as f64 / since.as_secs_f64().max(1e-9);
        lines.last = (now, received);
        status!(
            "{}",
            line(
                now.saturating_duration_since(start),
                received,
                noun,
                rate,
                open
            )
        );
    }
}

/// One plain progress line.
fn line(elapsed: Duration, received: u64, noun: &str, rate: f64, open: usize) -> String {
    format!(
        "sockeye: {:.0}s: {received} {noun}, {rate:.0}/s, {open} connection(s) open",
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_time_count_rate_and_connections() {
        assert_eq!(
            line(
                Duration::from_millis(5_020),
                123_456,
                "messages",
                24_691.4,
                10
            ),
            "sockeye: 5s: 123456 messages, 24691/s, 10 connection(s) open"
        );
    }
}
