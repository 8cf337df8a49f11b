//! The results of a harness run: medians over the rounds, ratios within
//! the run, and the markdown page `bench/results/DATE.md`.

use std::fmt::Write;

use crate::plan::{Focus, Scenario, Server, Target, Timing, Variant};
use crate::runner::Measurement;

/// One server's rounds in one scenario.
#[derive(Debug, Clone)]
pub struct Row {
    /// The server.
    pub variant: Variant,
    /// Its name in the table.
    pub name: String,
    /// Each round's measurement or why it failed.
    pub rounds: Vec<Result<Measurement, String>>,
}

impl Row {
    /// The median of `figure` over the rounds that succeeded.
    pub fn median(&self, figure: impl Fn(&Measurement) -> f64) -> Option<f64> {
        let values: Vec<f64> = self.rounds.iter().flatten().map(figure).collect();
        median(values)
    }

    /// The first failure, if a round failed.
    pub fn error(&self) -> Option<&str> {
        self.rounds
            .iter()
            .find_map(|round| round.as_ref().err().map(String::as_str))
    }

    /// Whether every round succeeded.
    pub fn ok(&self) -> bool {
        !self.rounds.is_empty() && self.error().is_none()
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// One scenario's rows.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// One row per server, in table order.
    pub rows: Vec<Row>,
}

impl ScenarioResult {
    /// The figure a scenario is judged on, lower is better: CPU µs per
    /// message, p99 latency, or KiB per idle connection.
    pub fn primary(&self, row: &Row) -> Option<f64> {
        match self.scenario.focus {
            Focus::Latency => row.median(|m| m.p99_us),
            Focus::Memory | Focus::Subscribers => row.median(|m| m.kib_per_connection),
            Focus::CrossNode => row.median(worst_node_p99),
            _ => row.median(|m| m.cpu_us_per_msg),
        }
    }

    /// The unit of [`ScenarioResult::primary`].
    pub fn primary_unit(&self) -> &'static str {
        match self.scenario.focus {
            Focus::Latency => "µs p99",
            Focus::Memory => "KiB/conn",
            Focus::Subscribers => "KiB/subscriber",
            Focus::CrossNode => "µs p99, worst node",
            Focus::Fanout => "CPU µs/delivery",
            _ => "CPU µs/msg",
        }
    }

    fn row(&self, server: Server) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.variant.server == server && !row.variant.http2)
    }

    /// sockeye over HTTP/2's primary figure.
    pub fn http2(&self) -> Option<f64> {
        let row = self.rows.iter().find(|row| row.variant.http2)?;
        self.primary(row)
    }

    /// Raw TCP's primary figure (the tokio echo, a task per connection:
    /// what issue 7's targets are relative to).
    pub fn raw(&self) -> Option<f64> {
        self.row(Server::Raw).and_then(|row| self.primary(row))
    }

    /// The mio raw echo's primary figure: the floor for an event-loop
    /// server (one loop, connections in a slab, no task per connection).
    pub fn mio_floor(&self) -> Option<f64> {
        self.row(Server::RawMio).and_then(|row| self.primary(row))
    }

    /// sockeye's primary figure.
    pub fn sockeye(&self) -> Option<f64> {
        self.row(Server::Sockeye).and_then(|row| self.primary(row))
    }

    /// The best other WebSocket implementation: its name and figure.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        self.rows
            .iter()
            .filter(|row| row.variant.server.is_peer())
            .filter_map(|row| Some((row.name.as_str(), self.primary(row)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// sockeye against its target: the ratio shown and whether it holds.
    pub fn target(&self) -> Option<(String, bool)> {
        let sockeye = self.sockeye()?;
        Some(match self.scenario.target {
            Target::CpuVsRaw(limit) | Target::P99VsRaw(limit) => {
                let ratio = sockeye / self.raw()?;
                (
                    format!("{ratio:.2}x raw TCP (target <= {limit}x)"),
                    ratio <= limit,
                )
            }
            Target::KibPerConnection(limit) => (
                format!("{sockeye:.1} KiB (target <= {limit} KiB)"),
                sockeye <= limit,
            ),
            Target::BeatBestPeer(factor) => {
                let (_, best) = self.best_peer()?;
                let ratio = best / sockeye;
                (
                    format!("{ratio:.2}x the best peer's efficiency (target >= {factor}x)"),
                    ratio >= factor,
                )
            }
            Target::CpuPerDelivery(limit) => {
                let raw = self
                    .raw()
                    .map(|raw| format!("; raw TCP {}", figure(Some(raw))))
                    .unwrap_or_default();
                (
                    format!(
                        "{} µs per delivery (target <= {limit} µs{raw})",
                        figure(Some(sockeye))
                    ),
                    sockeye <= limit,
                )
            }
            Target::CrossNodeP99Added(limit) => {
                let added = self.cross_node_added()?;
                let worst = added
                    .iter()
                    .map(|(_, added)| *added)
                    .fold(f64::MIN, f64::max);
                let each: Vec<String> = added
                    .iter()
                    .map(|(name, added)| format!("{name} {added:+.0} µs"))
                    .collect();
                let floor = self
                    .raw()
                    .map(|raw| format!("; raw TCP's one-node p99 {}", figure(Some(raw))))
                    .unwrap_or_default();
                (
                    format!(
                        "p99 on the other node minus the one-node p99: {} (target < {limit} µs{floor})",
                        each.join(", ")
                    ),
                    worst < limit,
                )
            }
            Target::Http2CpuVsHttp1(limit) => {
                let ratio = self.http2()? / sockeye;
                (
                    format!("HTTP/2 {ratio:.2}x sockeye over TCP (target <= {limit}x)"),
                    ratio <= limit,
                )
            }
            Target::Http2MemoryBelowHttp1 => {
                let http2 = self.http2()?;
                (
                    format!(
                        "HTTP/2 {http2:.2} KiB per WebSocket against {sockeye:.2} KiB per TCP connection (target: below)"
                    ),
                    http2 < sockeye,
                )
            }
            Target::Report => return None,
        })
    }

    /// Two-node rows: the p99 of the receivers on the node the publisher
    /// is not on, minus the one-node p99 (medians over the rounds).
    pub fn cross_node_added(&self) -> Option<Vec<(String, f64)>> {
        let one_node = self
            .rows
            .iter()
            .find(|row| row.variant.backplane.is_none() && row.variant.server == Server::Sockeye)?
            .median(|m| node_p99(m, 0))?;
        let added: Vec<(String, f64)> = self
            .rows
            .iter()
            .filter_map(|row| {
                let backplane = row.variant.backplane?;
                let remote = row.median(|m| node_p99(m, 1))?;
                Some((backplane.name().to_owned(), remote - one_node))
            })
            .collect();
        (!added.is_empty()).then_some(added)
    }
}

/// The p99 of node `index`'s receivers (0 if it was not measured).
fn node_p99(m: &Measurement, index: usize) -> f64 {
    m.node_latency_us.get(index).map_or(0.0, |node| node.1)
}

/// The worst p99 over the nodes.
fn worst_node_p99(m: &Measurement) -> f64 {
    if m.node_latency_us.is_empty() {
        return m.p99_us;
    }
    m.node_latency_us
        .iter()
        .map(|node| node.1)
        .fold(0.0, f64::max)
}

/// About the run, for the page's head.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// CPU, cores, kernel, load.
    pub machine: String,
    /// Implementations and their versions.
    pub versions: Vec<(String, String)>,
    /// The durations.
    pub timing: Timing,
    /// Whether processes were pinned to cores.
    pub pinned: bool,
    /// Threads of `sockeye serve` and of the load generator.
    pub threads: u32,
    /// How long the run took.
    pub seconds: f64,
    /// A smoke run (figures meaningless).
    pub smoke: bool,
    /// The chart's file name, beside the page.
    pub chart: Option<String>,
}

/// The markdown page.
pub fn markdown(info: &RunInfo, results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks, {}\n", info.date);
    if info.smoke {
        out.push_str(
            "**Smoke run**: tiny durations and connection counts, one round. \
             It checks that every server echoes correctly; its figures mean nothing.\n\n",
        );
    }
    let placement = if info.threads > 1 {
        format!(
            "Each server ran alone with {0} threads (`sockeye serve --threads {0}`), \
             `sockeye bench --threads {0}` beside it, nothing pinned",
            info.threads
        )
    } else {
        format!(
            "Each server ran alone on core 0 ({}), `sockeye bench --threads 1` on core 1",
            if info.pinned {
                "taskset"
            } else {
                "not pinned: taskset or a second core missing"
            }
        )
    };
    let _ = writeln!(
        out,
        "Machine: {}. {placement}; every scenario ran every server in turn, {} round(s), median shown; \
         warm-up {:.1} s, measured window {:.1} s. CPU time is the server's `utime + stime` \
         (all threads, `/proc/PID/stat`) over the measured window, divided by the messages \
         echoed in it; \"busy\" is that CPU time as a share of the window; \"waited\" is the time \
         its threads were runnable but not running (`/proc/PID/task/*/schedstat`, summed over \
         threads) as a share of the window. Run took {:.0} s.\n",
        info.machine,
        info.timing.rounds,
        info.timing.warmup.as_secs_f64(),
        info.timing.window.as_secs_f64(),
        info.seconds,
    );
    if !info.versions.is_empty() {
        let versions: Vec<String> = info
            .versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        let _ = writeln!(out, "Versions: {}.\n", versions.join(", "));
    }
    summary(&mut out, results);
    if let Some(chart) = &info.chart {
        let _ = writeln!(
            out,
            "![CPU per message, per server and scenario]({chart})\n"
        );
    }
    for result in results {
        scenario_section(&mut out, result);
    }
    out
}

/// The one-table overview: sockeye, the best peer and raw TCP per scenario.
fn summary(out: &mut String, results: &[ScenarioResult]) {
    out.push_str("## Summary\n\n");
    let floor = results.iter().any(|result| result.mio_floor().is_some());
    out.push_str(
        "| scenario | measure (lower is better) | raw TCP | sockeye | best peer | sockeye vs raw | \
         sockeye vs best peer | target |",
    );
    if floor {
        out.push_str(" mio floor | sockeye vs mio floor |");
    }
    out.push_str("\n|---|---|---|---|---|---|---|---|");
    if floor {
        out.push_str("---|---|");
    }
    out.push('\n');
    for result in results {
        let raw = result.raw();
        let sockeye = result.sockeye();
        let best = result.best_peer();
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        let target = match result.target() {
            Some((text, true)) => format!("met: {text}"),
            Some((text, false)) => format!("**missed**: {text}"),
            None => "reported only".to_owned(),
        };
        let _ = write!(
            out,
            "| ({}) {} | {} | {} | {} | {} | {} | {} | {} |",
            result.scenario.id,
            result.scenario.title,
            result.primary_unit(),
            figure(raw),
            figure(sockeye),
            best.map_or("-".to_owned(), |(name, value)| format!(
                "{} ({name})",
                figure(Some(value))
            )),
            ratio(sockeye, raw),
            ratio(sockeye, best.map(|(_, value)| value)),
            target,
        );
        if floor {
            let mio = result.mio_floor();
            let _ = write!(out, " {} | {} |", figure(mio), ratio(sockeye, mio));
        }
        out.push('\n');
    }
    out.push('\n');
    if floor {
        out.push_str(
            "\"raw TCP\" is the tokio echo (a task per connection), which issue 7's targets are \
             relative to; \"mio floor\" is the raw echo on one mio event loop (connections in a \
             slab, one shared read buffer), the floor for an event-loop server.\n\n",
        );
    }
}

fn scenario_section(out: &mut String, result: &ScenarioResult) {
    let scenario = &result.scenario;
    let _ = writeln!(out, "## ({}) {}\n", scenario.id, scenario.title);
    let raw = result.raw();
    let floor = result.mio_floor();
    let best = result.best_peer().map(|(_, value)| value);
    let versus = |value: Option<f64>, base: Option<f64>| match (value, base) {
        (Some(value), Some(base)) if base > 0.0 => format!("{:.2}x", value / base),
        _ => "-".to_owned(),
    };
    // The "vs mio floor" column's cell (with its leading space and
    // trailing bar), where the mio floor ran.
    let versus_floor = |value: Option<f64>| match floor {
        Some(_) => format!(" {} |", versus(value, floor)),
        None => String::new(),
    };
    match scenario.focus {
        Focus::Throughput | Focus::Bandwidth | Focus::Fanout => {
            let rate = match scenario.focus {
                Focus::Bandwidth => "GB/s",
                Focus::Fanout => "deliveries/s",
                _ => "msgs/s",
            };
            let _ = writeln!(
                out,
                "| server | {rate} | {} | vs raw TCP |{} vs best peer | p50 / p99 µs | server busy | \
                 server waited | generator busy / waited |\n|---|---|---|---|{}---|---|---|---|---|",
                result.primary_unit(),
                if floor.is_some() {
                    " vs mio floor |"
                } else {
                    ""
                },
                if floor.is_some() { "---|" } else { "" },
            );
            for row in &result.rows {
                let primary = result.primary(row);
                let rate = match scenario.focus {
                    Focus::Bandwidth => row
                        .median(|m| m.mb_per_sec / 1000.0)
                        .map_or("-".to_owned(), |value| format!("{value:.2}")),
                    _ => row
                        .median(|m| m.msgs_per_sec)
                        .map_or("-".to_owned(), thousands),
                };
                let _ = writeln!(
                    out,
                    "| {} | {rate} | {} | {} |{} {} | {} / {} | {} | {} | {} / {} |",
                    row_name(row),
                    figure(primary),
                    versus(primary, raw),
                    versus_floor(primary),
                    versus(primary, best),
                    figure(row.median(|m| m.p50_us)),
                    figure(row.median(|m| m.p99_us)),
                    percent(row.median(|m| m.server_busy)),
                    percent(row.median(|m| m.server_wait)),
                    percent(row.median(|m| m.generator_busy)),
                    percent(row.median(|m| m.generator_wait)),
                );
            }
        }
        Focus::Latency => {
            out.push_str(
                "| server | p50 µs | p99 µs | p99 vs raw TCP | msgs/s | CPU µs/msg | CPU vs raw TCP | \
                 server waited |\n|---|---|---|---|---|---|---|---|\n",
            );
            let raw_cpu = result
                .row(Server::Raw)
                .and_then(|row| row.median(|m| m.cpu_us_per_msg));
            for row in &result.rows {
                let cpu = row.median(|m| m.cpu_us_per_msg);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    row_name(row),
                    figure(row.median(|m| m.p50_us)),
                    figure(row.median(|m| m.p99_us)),
                    versus(result.primary(row), raw),
                    row.median(|m| m.msgs_per_sec)
                        .map_or("-".to_owned(), thousands),
                    figure(cpu),
                    versus(cpu, raw_cpu),
                    percent(row.median(|m| m.server_wait)),
                );
            }
        }
        Focus::Subscribers => {
            out.push_str(
                "| server | KiB per subscriber | vs raw TCP | RSS before | RSS with the subscribers | \
                 one publish to all: median | slowest |\n|---|---|---|---|---|---|---|\n",
            );
            for row in &result.rows {
                let primary = result.primary(row);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    row_name(row),
                    figure(primary),
                    versus(primary, raw),
                    mib(row.median(|m| m.rss_before_kib as f64)),
                    mib(row.median(|m| m.rss_after_kib as f64)),
                    millis(row.median(|m| m.reach_all_p50_us)),
                    millis(row.median(|m| m.reach_all_max_us)),
                );
            }
        }
        Focus::CrossNode => {
            out.push_str(
                "| servers | node 1 (publisher's) p50 / p99 µs | node 2 p50 / p99 µs | node 2 p99 vs \
                 one node | publishes/s | held by the window | deliveries/s | server-side CPU busy \
                 | generator busy |\n|---|---|---|---|---|---|---|---|---|\n",
            );
            let one_node = result
                .rows
                .iter()
                .find(|row| {
                    row.variant.backplane.is_none() && row.variant.server == Server::Sockeye
                })
                .and_then(|row| row.median(|m| node_p99(m, 0)));
            for row in &result.rows {
                let node = |index: usize| {
                    let p50 = row.median(|m| m.node_latency_us.get(index).map_or(0.0, |n| n.0));
                    let p99 = row.median(|m| node_p99(m, index));
                    match row.variant.nodes() > index as u32 {
                        true => format!("{} / {}", figure(p50), figure(p99)),
                        false => "-".to_owned(),
                    }
                };
                let added = match (
                    row.variant.backplane,
                    row.median(|m| node_p99(m, 1)),
                    one_node,
                ) {
                    (Some(_), Some(remote), Some(base)) => format!("{:+.0} µs", remote - base),
                    _ => "-".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {added} | {} | {} | {} | {} | {} |",
                    row_name(row),
                    node(0),
                    node(1),
                    row.median(|m| m.publish_rate)
                        .map_or("-".to_owned(), thousands),
                    row.median(|m| m.held as f64)
                        .map_or("-".to_owned(), thousands),
                    row.median(|m| m.msgs_per_sec)
                        .map_or("-".to_owned(), thousands),
                    percent(row.median(|m| m.server_busy)),
                    percent(row.median(|m| m.generator_busy)),
                );
            }
        }
        Focus::Memory => {
            let _ = writeln!(
                out,
                "| server | KiB per idle connection | vs raw TCP |{} vs best peer | RSS before | \
                 RSS with the connections |\n|---|---|---|{}---|---|---|",
                if floor.is_some() {
                    " vs mio floor |"
                } else {
                    ""
                },
                if floor.is_some() { "---|" } else { "" },
            );
            for row in &result.rows {
                let primary = result.primary(row);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |{} {} | {} | {} |",
                    row_name(row),
                    figure(primary),
                    versus(primary, raw),
                    versus_floor(primary),
                    versus(primary, best),
                    mib(row.median(|m| m.rss_before_kib as f64)),
                    mib(row.median(|m| m.rss_after_kib as f64)),
                );
            }
        }
    }
    out.push('\n');
    for row in &result.rows {
        if let Some(error) = row.error() {
            let _ = writeln!(out, "- {} failed: {}", row.name, error.replace('|', "/"));
        }
    }
    if let Some(note) = generator_note(result) {
        let _ = writeln!(out, "- {note}");
    }
    if let Some(note) = rate_note(result) {
        let _ = writeln!(out, "- {note}");
    }
    if let Some((text, met)) = result.target() {
        let _ = writeln!(
            out,
            "- Target for sockeye: {} ({text}).",
            if met { "met" } else { "missed" }
        );
    }
    out.push('\n');
}

/// Whether the load generator kept up: its rate against raw TCP beside
/// the WebSocket servers' rates, and the servers it held back.
fn generator_note(result: &ScenarioResult) -> Option<String> {
    let note = generator_rate_note(result)?;
    Some(match generator_limited(result) {
        Some(limited) => format!("{note} {limited}"),
        None => note,
    })
}

/// The rows whose publisher fell behind its fixed rate: their latency is
/// queueing behind a saturated core, not the path's own.
fn rate_note(result: &ScenarioResult) -> Option<String> {
    let crate::plan::Workload::CrossNode { rate, .. } = result.scenario.workload else {
        return None;
    };
    let behind: Vec<String> = result
        .rows
        .iter()
        .filter_map(|row| {
            let achieved = row.median(|m| m.publish_rate)?;
            let held = row.median(|m| m.held as f64)?;
            (achieved < rate * 0.95 || held > 0.0).then(|| {
                format!(
                    "{} ({} publishes/s, {} held by the window)",
                    row.name,
                    thousands(achieved),
                    thousands(held)
                )
            })
        })
        .collect();
    (!behind.is_empty()).then(|| {
        format!(
            "The publisher fell behind {} publishes/s against {}: the deliveries were more than \
             the servers or the generator could take, so those latencies measure queues, not \
             the path.",
            thousands(rate),
            behind.join(", ")
        )
    })
}

/// The servers whose runs had the generator's core nearly full and their
/// own core not: the generator, not they, set the rate there. Its cost
/// per message is not the same against every server (a raw TCP echo
/// checks bytes as they come; a WebSocket echo is reassembled and
/// checked whole), so its rate against raw TCP does not show this alone.
fn generator_limited(result: &ScenarioResult) -> Option<String> {
    let limited: Vec<String> = result
        .rows
        .iter()
        .filter_map(|row| {
            let generator = row.median(|m| m.generator_busy)?;
            let server = row.median(|m| m.server_busy)?;
            (generator >= 0.85 && server < 0.85).then(|| {
                format!(
                    "{} (generator {:.0}%, server {:.0}%)",
                    row.name,
                    generator * 100.0,
                    server * 100.0
                )
            })
        })
        .collect();
    (!limited.is_empty()).then(|| {
        format!(
            "Against {} the generator's core was nearly full and the server's was not: there \
             the generator set the rate, and CPU per message is the figure to compare.",
            limited.join(", ")
        )
    })
}

/// The generator's rate against raw TCP beside the WebSocket servers'.
fn generator_rate_note(result: &ScenarioResult) -> Option<String> {
    if matches!(
        result.scenario.focus,
        Focus::Memory | Focus::Fanout | Focus::Subscribers | Focus::CrossNode
    ) {
        return None;
    }
    if result.scenario.workload.deflate() {
        // Raw TCP moves uncompressed bytes: against it the generator does
        // not inflate, so its rate there says nothing about its headroom;
        // `generator_limited` names the runs it held back.
        return Some(
            "Load generator: with permessage-deflate it sends messages compressed ahead of time \
             but inflates and checks every echo, so raw TCP's rate (uncompressed) does not show \
             its headroom; its own core's load does (last column)."
                .to_owned(),
        );
    }
    let raw = result.row(Server::Raw)?;
    let raw_rate = raw.median(|m| m.msgs_per_sec)?;
    let rates: Vec<(&str, f64)> = result
        .rows
        .iter()
        .filter(|row| !row.variant.server.is_raw())
        .filter_map(|row| Some((row.name.as_str(), row.median(|m| m.msgs_per_sec)?)))
        .collect();
    let (name, fastest) = rates.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let busy = raw.median(|m| m.generator_busy).unwrap_or(0.0);
    let wait = raw.median(|m| m.generator_wait).unwrap_or(0.0);
    let ratio = raw_rate / fastest.max(1e-9);
    let drove = format!(
        "Load generator: it drove raw TCP at {} msgs/s (on its core {:.0}% of the window, \
         waiting for it {:.0}%), {ratio:.2}x the fastest WebSocket server ({name}, {} msgs/s)",
        thousands(raw_rate),
        busy * 100.0,
        wait * 100.0,
        thousands(fastest)
    );
    // Servers within 1.5x of raw TCP's rate may have been held back by the
    // generator (or by the machine's other load) rather than by their own
    // cost.
    let close: Vec<&str> = rates
        .iter()
        .filter(|(_, rate)| rate * 1.5 > raw_rate)
        .map(|(name, _)| *name)
        .collect();
    Some(if ratio < 1.1 {
        format!(
            "{drove}: the rate here is bounded by round trips or by the generator, not by the \
             servers, so compare CPU per message rather than msgs/s."
        )
    } else if close.is_empty() {
        format!("{drove}, so it did not limit the WebSocket servers.")
    } else {
        format!(
            "{drove}: it did not limit the servers well below that rate; for {} the rate may be \
             bounded by the generator, CPU per message is the figure to compare.",
            close.join(", ")
        )
    })
}

fn row_name(row: &Row) -> String {
    if row.ok() {
        row.name.clone()
    } else {
        format!("{} (failed)", row.name)
    }
}

/// Three significant digits, or `-`.
pub fn figure(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(value) if value >= 100.0 => format!("{value:.0}"),
        Some(value) if value >= 10.0 => format!("{value:.1}"),
        Some(value) if value >= 1.0 => format!("{value:.2}"),
        Some(value) => format!("{value:.3}"),
    }
}

/// `1,234,567`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn percent(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |value| format!("{:.0}%", value * 100.0))
}

fn millis(micros: Option<f64>) -> String {
    micros.map_or("-".to_owned(), |micros| {
        format!("{:.1} ms", micros / 1000.0)
    })
}

fn mib(kib: Option<f64>) -> String {
    kib.map_or("-".to_owned(), |kib| format!("{:.1} MiB", kib / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::scenarios;

    fn measured(cpu: f64, rate: f64) -> Result<Measurement, String> {
        Ok(Measurement {
            cpu_us_per_msg: cpu,
            msgs_per_sec: rate,
            messages: 1000,
            ..Measurement::default()
        })
    }

    /// Scenario `index` of the full plan with each server's rounds from
    /// `rounds`.
    fn result_of(
        index: usize,
        rounds: impl Fn(Server) -> Vec<Result<Measurement, String>>,
    ) -> ScenarioResult {
        let scenario = scenarios(false).remove(index);
        let workload = scenario.workload.clone();
        let rows = scenario
            .variants
            .iter()
            .map(|variant| Row {
                variant: *variant,
                name: variant.name(&workload),
                rounds: rounds(variant.server),
            })
            .collect();
        ScenarioResult { scenario, rows }
    }

    #[test]
    fn medians_ratios_and_targets() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
        let result = result_of(0, |server| {
            let cpu = match server {
                Server::Raw => 1.0,
                Server::RawMio => 0.8,
                Server::Sockeye => 2.0,
                Server::Yawc => 4.0,
                _ => 6.0,
            };
            vec![measured(cpu, 100_000.0 / cpu), measured(cpu * 1.1, 1.0)]
        });
        assert_eq!(result.raw(), Some(1.05));
        assert_eq!(result.best_peer().map(|(name, _)| name), Some("yawc"));
        let (text, met) = result.target().unwrap();
        assert!(!met, "2.1x raw misses 1.5x: {text}");
        let info = RunInfo {
            date: "2026-11-23".into(),
            machine: "test".into(),
            versions: vec![("yawc".into(), "0.5.0".into())],
            timing: Timing::smoke(),
            pinned: true,
            threads: 1,
            seconds: 1.0,
            smoke: false,
            chart: Some("2026-11-23.svg".into()),
        };
        let page = markdown(&info, &[result]);
        assert!(page.contains("| (a) 100 connections, 20 B text, pipeline 8 | CPU µs/msg | 1.05 | 2.10 | 4.20 (yawc) | 2.00x | 0.50x | **missed**"), "{page}");
        assert!(page.contains("![CPU per message"));
        // The mio floor: its own columns, beside raw TCP's.
        assert!(
            page.contains("| target | mio floor | sockeye vs mio floor |\n"),
            "{page}"
        );
        assert!(page.contains(" | 0.840 | 2.50x |\n"), "{page}");
        assert!(page.contains("| 2.10 | 2.00x | 2.50x | 0.50x |"), "{page}");
        assert!(
            page.contains("| raw TCP (mio) | 62,500 | 0.840 | 0.80x | 1.00x | 0.20x |"),
            "{page}"
        );
        assert!(!page.contains("the generator set the rate"), "{page}");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }

    #[test]
    fn a_server_the_generator_held_back_is_named() {
        let result = result_of(3, |server| {
            let (server_busy, generator_busy) = match server {
                Server::Sockeye => (0.24, 0.99),
                _ => (0.95, 0.98),
            };
            vec![Ok(Measurement {
                cpu_us_per_msg: 7000.0,
                msgs_per_sec: 50.0,
                messages: 100,
                server_busy,
                generator_busy,
                ..Measurement::default()
            })]
        });
        let note = generator_note(&result).unwrap();
        assert!(
            note.ends_with(
                ". Against sockeye (generator 99%, server 24%) the generator's core was nearly \
                 full and the server's was not: there the generator set the rate, and CPU per \
                 message is the figure to compare."
            ),
            "{note}"
        );
    }

    #[test]
    fn fan_out_is_judged_on_cpu_per_delivery() {
        let result = result_of(7, |server| {
            let cpu = if server == Server::Raw { 0.3 } else { 0.8 };
            vec![measured(cpu, 1e6)]
        });
        let (text, met) = result.target().unwrap();
        assert!(met, "{text}");
        assert_eq!(
            text,
            "0.800 µs per delivery (target <= 1 µs; raw TCP 0.300)"
        );
    }

    #[test]
    fn cross_node_adds_the_remote_p99_over_the_one_node_p99() {
        let result = result_of(10, |_| Vec::new());
        let rows = result
            .rows
            .iter()
            .map(|row| {
                let nodes = match row.variant.backplane {
                    None if row.variant.server == Server::Raw => vec![(150.0, 300.0)],
                    None => vec![(200.0, 400.0)],
                    Some(crate::plan::Backplane::Redis) => vec![(210.0, 420.0), (500.0, 900.0)],
                    Some(crate::plan::Backplane::Nats) => vec![(210.0, 420.0), (700.0, 1600.0)],
                };
                Row {
                    rounds: vec![Ok(Measurement {
                        node_latency_us: nodes,
                        publish_rate: 1000.0,
                        ..Measurement::default()
                    })],
                    ..row.clone()
                }
            })
            .collect();
        let result = ScenarioResult { rows, ..result };
        assert_eq!(
            result.cross_node_added().unwrap(),
            vec![("Redis".to_owned(), 500.0), ("NATS".to_owned(), 1200.0)]
        );
        let (text, met) = result.target().unwrap();
        assert!(!met, "NATS adds 1.2 ms: {text}");
        assert!(text.contains("Redis +500 µs, NATS +1200 µs"), "{text}");
        assert_eq!(result.primary(&result.rows[3]), Some(1600.0));
        assert!(
            text.ends_with("(target < 1000 µs; raw TCP's one-node p99 300)"),
            "{text}"
        );
        let mut page = String::new();
        scenario_section(&mut page, &result);
        assert!(
            page.contains(
                "| sockeye, two nodes over Redis | 210 / 420 | 500 / 900 | +500 µs | 1,000 |"
            ),
            "{page}"
        );
        assert!(
            page.contains("| sockeye, one node | 200 / 400 | - | - |"),
            "{page}"
        );
        assert!(!page.contains("fell behind"), "{page}");
        // Without two-node runs there is nothing to judge.
        let one_node = ScenarioResult {
            rows: result.rows[..2].to_vec(),
            ..result.clone()
        };
        assert!(one_node.target().is_none());
    }

    #[test]
    fn a_publisher_behind_its_rate_is_named() {
        let result = result_of(10, |server| {
            vec![Ok(Measurement {
                node_latency_us: vec![(100.0, 200.0)],
                publish_rate: if server == Server::Sockeye {
                    700.0
                } else {
                    1000.0
                },
                held: 12,
                ..Measurement::default()
            })]
        });
        let note = rate_note(&result).unwrap();
        assert!(note.starts_with("The publisher fell behind 1,000 publishes/s against raw TCP broadcast, one node (1,000 publishes/s, 12 held by the window), sockeye, one node (700 publishes/s, 12 held"), "{note}");
    }

    #[test]
    fn idle_subscribers_show_memory_and_reach_all() {
        let result = result_of(9, |server| {
            vec![Ok(Measurement {
                kib_per_connection: if server == Server::Raw { 1.5 } else { 3.0 },
                rss_before_kib: 4096,
                rss_after_kib: 4096 + 300_000,
                reach_all_p50_us: 45_000.0,
                reach_all_max_us: 52_000.0,
                ..Measurement::default()
            })]
        });
        let mut page = String::new();
        scenario_section(&mut page, &result);
        assert!(
            page.contains(
                "| sockeye --broadcast | 3.00 | 2.00x | 4.0 MiB | 297.0 MiB | 45.0 ms | 52.0 ms |"
            ),
            "{page}"
        );
        assert_eq!(result.primary_unit(), "KiB/subscriber");
    }
}
