//! The results of `sockeye bench`: as text for people, JSON for machines,
//! and a self-contained HTML page (inline SVG, no script) with a latency
//! histogram and throughput over time.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::Shared;
use crate::bench::lane::LaneEnd;

mod svg;

use svg::{histogram_svg, timeline_svg};

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `echo`, `raw-echo`, `idle` or `fanout`.
    pub mode: &'static str,
    /// The server (with --fanout, the publisher's).
    pub url: String,
    /// Every server URL (with --fanout, the receivers are spread over
    /// them).
    pub urls: Vec<String>,
    /// Connections asked for.
    pub connections: u32,
    /// Payload bytes per message.
    pub size: usize,
    /// `text` or `binary`.
    pub kind: &'static str,
    /// Messages in flight per connection.
    pub pipeline: u32,
    /// Whether permessage-deflate was offered.
    pub compression_offered: bool,
    /// Connections on which the server accepted it (with --fanout, the
    /// publisher counts too).
    pub compressed_connections: u64,
    /// The planned duration, in duration mode.
    pub duration_s: Option<f64>,
    /// The planned message count, in count mode.
    pub messages: Option<u64>,
    /// Connections opened per second, if ramped up.
    pub ramp_up: Option<f64>,
    /// With --fanout --rate: publishes per second asked for.
    pub rate: Option<f64>,
}

impl Settings {
    /// Every connection of the run: with --fanout, the receivers and
    /// the publisher.
    fn all_connections(&self) -> u64 {
        u64::from(self.connections) + u64::from(self.mode == "fanout")
    }

    /// `compressed`, `uncompressed`, or `compressed on 3 of 10` (of all
    /// the connections, the fan-out publisher included).
    fn compression(&self) -> String {
        match self.compressed_connections {
            0 => "uncompressed".to_owned(),
            n if n >= self.all_connections() => "compressed".to_owned(),
            n => format!("compressed on {n} of {}", self.all_connections()),
        }
    }

    /// `10 connection(s)`, or with --fanout `10 receiver(s) and a
    /// publisher`.
    fn connections_text(&self) -> String {
        if self.mode == "fanout" {
            format!("{} receiver(s) and a publisher", self.connections)
        } else {
            format!("{} connection(s)", self.connections)
        }
    }

    /// What the run counts: echoes, or with --fanout deliveries.
    fn counted(&self) -> &'static str {
        if self.mode == "fanout" {
            "deliveries"
        } else {
            "msgs"
        }
    }
}

/// Throughput over one sampling interval.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the start of the run, at the end of the interval.
    pub t: f64,
    /// Echoes per second.
    pub msgs_per_sec: f64,
    /// Echoed payload megabytes (10^6) per second.
    pub mb_per_sec: f64,
}

/// The measured window of a run with a warm-up (`--warmup`).
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// From the window's start to its end.
    pub seconds: f64,
    /// Echoes (or deliveries) received in the window.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Messages per second over the window.
    pub msgs_per_sec: f64,
    /// Payload megabytes (10^6) per second over the window.
    pub mb_per_sec: f64,
}

/// Round-trip latency, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Average.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `histogram` (nanoseconds); zeros when empty.
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let micros = |nanos: u64| nanos as f64 / 1000.0;
        if histogram.is_empty() {
            return Latency {
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Latency {
            min: micros(histogram.min()),
            mean: histogram.mean() / 1000.0,
            p50: micros(histogram.value_at_quantile(0.50)),
            p90: micros(histogram.value_at_quantile(0.90)),
            p99: micros(histogram.value_at_quantile(0.99)),
            p999: micros(histogram.value_at_quantile(0.999)),
            max: micros(histogram.max()),
        }
    }
}

/// What a `--fanout` run measured beyond deliveries.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// Messages published (the final empty one not counted).
    pub publishes: u64,
    /// Deliveries (messages received by the receivers, the report's
    /// `messages`) per second over the run.
    pub deliveries_per_sec: f64,
    /// Publishes per second asked for (`--rate`), if any.
    pub rate_target: Option<f64>,
    /// Publishes per second from the first publish to the last.
    pub rate_achieved: f64,
    /// With `--rate`: messages that were due while the window (--pipeline)
    /// held them back, so they left late.
    pub held_by_window: u64,
    /// Per message, from its publication to its delivery to the last
    /// receiver (with `--warmup`, messages of the window).
    pub reach_all_us: Latency,
    /// Messages whose reach-all time was recorded.
    pub reach_all_count: u64,
    /// Per server URL, in the order given.
    pub per_url: Vec<UrlReport>,
}

/// Deliveries and latency of the receivers on one server URL.
#[derive(Debug, Clone, Serialize)]
pub struct UrlReport {
    /// The server.
    pub url: String,
    /// Receivers connected to it.
    pub receivers: u32,
    /// Messages delivered to them (the whole run).
    pub deliveries: u64,
    /// Publish to delivery (with `--warmup`, the window's).
    pub latency_us: Latency,
}

/// One bar of the latency histogram.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Upper bound of the bucket, in microseconds.
    pub le_us: f64,
    /// Echoes whose round trip fell in it.
    pub count: u64,
}

/// What went wrong, by kind.
#[derive(Debug, Clone, Serialize)]
pub struct Errors {
    /// All of the below.
    pub total: u64,
    /// Connections that could not be opened.
    pub connect: u64,
    /// Connections that failed once open (or did not close cleanly).
    pub connection: u64,
    /// Echoes that differed from what was sent.
    pub mismatched: u64,
    /// Messages sent whose echo never came.
    pub lost: u64,
    /// The first error message, if any.
    pub first: Option<String>,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The set-up.
    pub settings: Settings,
    /// Connections that were opened.
    pub connected: u64,
    /// Echoes received.
    pub messages: u64,
    /// Echoed payload bytes.
    pub bytes: u64,
    /// From the first message sent to the last echo received.
    pub elapsed_s: f64,
    /// Echoes per second over `elapsed_s`.
    pub msgs_per_sec: f64,
    /// Echoed payload megabytes (10^6) per second, one direction.
    pub mb_per_sec: f64,
    /// The measured window, with `--warmup`.
    pub window: Option<Window>,
    /// Round trips (with `--warmup`, those of the window).
    pub latency_us: Latency,
    /// The errors.
    pub errors: Errors,
    /// With --fanout: publishes, reach-all times, latency per URL.
    pub fanout: Option<FanoutReport>,
    /// Round-trip distribution, in buckets doubling from 1 µs.
    pub histogram: Vec<Bucket>,
    /// Throughput over time.
    pub timeline: Vec<Sample>,
}

impl Report {
    /// Gathers the results.
    pub fn new(
        settings: Settings,
        ends: &[LaneEnd],
        shared: &Shared,
        histogram: &Histogram<u64>,
        timeline: Vec<Sample>,
    ) -> Report {
        let messages = shared.received.load(Ordering::Relaxed);
        let bytes = shared.bytes.load(Ordering::Relaxed);
        let first_send = ends.iter().filter_map(|end| end.first_send).min();
        let last_receive = ends.iter().filter_map(|end| end.last_receive).max();
        let elapsed_s = match (first_send, last_receive) {
            (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let per_second = |count: f64| {
            if elapsed_s > 0.0 {
                count / elapsed_s
            } else {
                0.0
            }
        };
        let latency_us = Latency::of(histogram);
        let connect = ends
            .iter()
            .filter(|end| end.connect_error.is_some())
            .count() as u64;
        let connection = ends.iter().filter(|end| end.error.is_some()).count() as u64;
        let lost: u64 = ends.iter().map(|end| end.lost).sum();
        let mismatched = shared.mismatches.load(Ordering::Relaxed);
        let first = ends
            .iter()
            .find_map(|end| {
                end.connect_error
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| end.error.clone())
            })
            .or_else(|| (mismatched > 0).then(|| "an echo differed from what was sent".into()));
        let mut settings = settings;
        settings.compressed_connections = ends.iter().filter(|end| end.compressed).count() as u64;
        Report {
            settings,
            connected: ends.iter().filter(|end| end.connected).count() as u64,
            messages,
            bytes,
            elapsed_s,
            msgs_per_sec: per_second(messages as f64),
            mb_per_sec: per_second(bytes as f64) / 1e6,
            window: None,
            latency_us,
            errors: Errors {
                total: connect + connection + mismatched + lost,
                connect,
                connection,
                mismatched,
                lost,
                first,
            },
            histogram: buckets(histogram),
            timeline,
            fanout: None,
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }

    /// A few aligned lines for a terminal.
    pub fn to_text(&self) -> String {
        let s = &self.settings;
        let l = &self.latency_us;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{}: {}, {} {} messages, {} {}, {}",
            s.url,
            match s.mode {
                "echo" => String::new(),
                mode => format!(" ({mode})"),
            },
            s.connections_text(),
            human_bytes(s.size as f64),
            s.kind,
            if s.mode == "fanout" {
                "window"
            } else {
                "pipeline"
            },
            s.pipeline,
            s.compression()
        );
        let counted = s.counted();
        let _ = writeln!(
            out,
            "{:<10} {} in {:.2} s: {:.0} {counted}/s, {:.2} MB/s",
            if s.mode == "fanout" {
                "deliveries"
            } else {
                "messages"
            },
            self.messages,
            self.elapsed_s,
            self.msgs_per_sec,
            self.mb_per_sec
        );
        if let Some(w) = &self.window {
            let _ = writeln!(
                out,
                "window     {} in {:.2} s: {:.0} {counted}/s, {:.2} MB/s",
                w.messages, w.seconds, w.msgs_per_sec, w.mb_per_sec
            );
        }
        let _ = writeln!(
            out,
            "latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            micros(l.p50),
            micros(l.p90),
            micros(l.p99),
            micros(l.p999),
            micros(l.max)
        );
        if let Some(fanout) = &self.fanout {
            fanout_text(&mut out, fanout);
        }
        let e = &self.errors;
        let _ = write!(out, "errors     {}", e.total);
        if e.total > 0 {
            let _ = write!(
                out,
                " (connect {}, connection {}, mismatched {}, lost {})",
                e.connect, e.connection, e.mismatched, e.lost
            );
            if let Some(first) = &e.first {
                let _ = write!(out, "; first: {first}");
            }
        }
        out.push('\n');
        out
    }

    /// A self-contained HTML page.
    pub fn to_html(&self) -> String {
        let s = &self.settings;
        let l = &self.latency_us;
        let mut out = String::with_capacity(16 * 1024);
        out.push_str(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>sockeye bench report</title><style>\
             body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}\
             table{border-collapse:collapse;margin:1rem 0}td,th{padding:.2rem .8rem;text-align:left;\
             border-bottom:1px solid #ddd}td.n{text-align:right;font-variant-numeric:tabular-nums}\
             svg{display:block;margin:1rem 0}text{font-size:11px;fill:#333}\
             </style></head><body>\n<h1>sockeye bench report</h1>\n",
        );
        let _ = writeln!(
            out,
            "<p>{} &mdash; {}, {} {} messages, pipeline {}, {}{}.</p>",
            escape(&s.url),
            s.connections_text(),
            human_bytes(s.size as f64),
            s.kind,
            s.pipeline,
            s.compression(),
            match (s.duration_s, s.messages) {
                (Some(seconds), _) => format!(", {seconds:.1} s"),
                (None, Some(messages)) => format!(", {messages} messages"),
                _ => String::new(),
            }
        );
        out.push_str("<table>\n");
        let rows = [
            ("messages", self.messages.to_string()),
            ("elapsed", format!("{:.2} s", self.elapsed_s)),
            (
                "throughput",
                format!("{:.0} {}/s", self.msgs_per_sec, s.counted()),
            ),
            ("payload", format!("{:.2} MB/s", self.mb_per_sec)),
            ("latency p50", micros(l.p50)),
            ("latency p90", micros(l.p90)),
            ("latency p99", micros(l.p99)),
            ("latency p99.9", micros(l.p999)),
            ("latency max", micros(l.max)),
            ("errors", self.errors.total.to_string()),
        ];
        for (name, value) in rows {
            let _ = writeln!(
                out,
                "<tr><th>{name}</th><td class=\"n\">{}</td></tr>",
                escape(&value)
            );
        }
        out.push_str("</table>\n<h2>Round-trip latency</h2>\n");
        out.push_str(&histogram_svg(&self.histogram));
        out.push_str("<h2>Throughput over time</h2>\n");
        out.push_str(&timeline_svg(&self.timeline));
        out.push_str("</body></html>\n");
        out
    }
}

/// The fan-out lines of the text report.
fn fanout_text(out: &mut String, fanout: &FanoutReport) {
    let _ = write!(
        out,
        "publishes  {} at {:.0}/s",
        fanout.publishes, fanout.rate_achieved
    );
    if let Some(target) = fanout.rate_target {
        let _ = write!(
            out,
            " (asked {target:.0}/s; {} held back by the window)",
            fanout.held_by_window
        );
    }
    out.push('\n');
    let r = &fanout.reach_all_us;
    let _ = writeln!(
        out,
        "reach all  p50 {}  p99 {}  max {}  (publish to the last receiver, {} messages)",
        micros(r.p50),
        micros(r.p99),
        micros(r.max),
        fanout.reach_all_count
    );
    if fanout.per_url.len() > 1 {
        for url in &fanout.per_url {
            let l = &url.latency_us;
            let _ = writeln!(
                out,
                "  {}: {} receiver(s), {} deliveries; latency p50 {}  p99 {}  p99.9 {}  max {}",
                url.url,
                url.receivers,
                url.deliveries,
                micros(l.p50),
                micros(l.p99),
                micros(l.p999),
                micros(l.max)
            );
        }
    }
}

/// The histogram in buckets doubling from 1 µs, without the empty tail.
fn buckets(histogram: &Histogram<u64>) -> Vec<Bucket> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut buckets: Vec<Bucket> = histogram
        .iter_log(1000, 2.0)
        .map(|step| Bucket {
            le_us: step.value_iterated_to() as f64 / 1000.0,
            count: step.count_since_last_iteration(),
        })
        .collect();
    while buckets.last().is_some_and(|bucket| bucket.count == 0) {
        buckets.pop();
    }
    let first = buckets
        .iter()
        .position(|bucket| bucket.count > 0)
        .unwrap_or(0);
    buckets.drain(..first.saturating_sub(1));
    buckets
}

/// `12.3 µs`, `4.56 ms`, `1.20 s`.
fn micros(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.2} s", value / 1_000_000.0)
    } else if value >= 1000.0 {
        format!("{:.2} ms", value / 1000.0)
    } else {
        format!("{value:.1} µs")
    }
}

/// `64 B`, `16 KiB`, `1.5 MiB`.
fn human_bytes(value: f64) -> String {
    if value >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", value / 1024.0 / 1024.0)
    } else if value >= 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{value:.0} B")
    }
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(micros(12.34), "12.3 µs");
        assert_eq!(micros(4560.0), "4.56 ms");
        assert_eq!(micros(1_200_000.0), "1.20 s");
        assert_eq!(human_bytes(64.0), "64 B");
        assert_eq!(human_bytes(16384.0), "16.0 KiB");
    }

    #[test]
    fn buckets_skip_empty_ends() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
        for _ in 0..10 {
            histogram.record(40_000).unwrap();
        }
        histogram.record(300_000).unwrap();
        let buckets = buckets(&histogram);
        assert_eq!(buckets.iter().map(|bucket| bucket.count).sum::<u64>(), 11);
        assert!(buckets.last().unwrap().count > 0);
        assert!(buckets.len() < 10, "{buckets:?}");
        let svg = histogram_svg(&buckets);
        assert!(svg.starts_with("<svg") && svg.contains("<rect"));
    }

    #[test]
    fn fanout_compression_counts_the_publisher_among_all_connections() {
        let mut settings = Settings {
            mode: "fanout",
            url: "ws://a/".into(),
            urls: vec!["ws://a/".into()],
            connections: 1000,
            size: 64,
            kind: "binary",
            pipeline: 1,
            compression_offered: true,
            compressed_connections: 1001,
            duration_s: None,
            messages: Some(1),
            ramp_up: None,
            rate: None,
        };
        assert_eq!(settings.compression(), "compressed");
        settings.compressed_connections = 1000;
        assert_eq!(settings.compression(), "compressed on 1000 of 1001");
        settings.mode = "echo";
        assert_eq!(settings.compression(), "compressed");
        settings.compressed_connections = 3;
        assert_eq!(settings.compression(), "compressed on 3 of 1000");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
