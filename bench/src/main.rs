//! `sockeye-bench`: runs the benchmark scenarios against every server and
//! writes `DATE.md` and `DATE.svg` (see the crate docs, and `bench/run`,
//! which builds the binaries and calls this).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use sockeye_bench::plan::{self, Backplane, Scenario, Server, Timing, Workload};
use sockeye_bench::results::{self, Row, RunInfo, ScenarioResult, figure, thousands};
use sockeye_bench::runner::{self, Tools};
use sockeye_bench::{chart, procfs};

/// Where this crate's files are (bench/).
const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs sockeye's benchmark scenarios against raw TCP, sockeye and other
/// WebSocket servers.
#[derive(Debug, Parser)]
#[command(name = "sockeye-bench")]
struct Args {
    /// A few seconds: tiny durations and connection counts, one round;
    /// checks that every server echoes correctly, asserts no timing, and
    /// writes the results to a temporary directory.
    #[arg(long)]
    smoke: bool,
    /// Where to write DATE.md and DATE.svg (default: bench/results, or a
    /// new temporary directory with --smoke).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Only these scenarios, by letter (e.g. `abg`).
    #[arg(long, value_name = "LETTERS")]
    scenarios: Option<String>,
    /// Only these servers: raw, raw-mio, raw-readiness, sockeye,
    /// sockeye-tokio, tokio-tungstenite, fastwebsockets, yawc, node
    /// (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    servers: Vec<String>,
    /// Idle connections in scenario f (default 10,000; 16 with --smoke),
    /// scaled down to whole thousands under the open-file hard limit,
    /// with a note, when it is above it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    idle_connections: Option<u32>,
    /// Rounds of every scenario (default 3; 1 with --smoke).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: Option<u32>,
    /// The sockeye binary (default: beside this one).
    #[arg(long, value_name = "PATH")]
    sockeye: Option<PathBuf>,
    /// The sockeye-bench-peer binary (default: beside this one).
    #[arg(long, value_name = "PATH")]
    peer: Option<PathBuf>,
    /// Leaves Node ws out even when it is installed.
    #[arg(long)]
    no_node: bool,
    /// Does not pin the server and the load generator to cores.
    #[arg(long)]
    no_pin: bool,
    /// Threads of `sockeye serve` (event loops, or tokio workers) and of
    /// the load generator, to see how the servers scale (default 1).
    /// Above 1 nothing is pinned: the threads share the machine's cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    server_threads: Option<u32>,
}

fn main() {
    let args = Args::parse();
    match run(args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("sockeye-bench: {error}");
            std::process::exit(2);
        }
    }
}

/// Runs everything; whether every run succeeded.
fn run(args: Args) -> Result<bool, String> {
    let started = Instant::now();
    let mut timing = if args.smoke {
        Timing::smoke()
    } else {
        Timing::full()
    };
    if let Some(rounds) = args.rounds {
        timing.rounds = rounds as usize;
    }
    let mut notes = Vec::new();
    let tools = tools(&args, &mut notes)?;
    let scenarios = select(&args, &tools, &notes)?;
    let scenarios = fit_open_files(scenarios, args.idle_connections.is_some(), &mut notes)?;
    let mut tools = tools;
    tools.open_files = open_files(&scenarios)?;
    for note in &notes {
        println!("note: {note}");
    }
    let mut results = Vec::new();
    for scenario in scenarios {
        println!("({}) {}", scenario.id, scenario.title);
        results.push(run_scenario(&tools, scenario, &timing));
    }
    let date = sockeye_bench::today();
    let out = output_dir(&args)?;
    let chart_name = format!("{date}.svg");
    let info = RunInfo {
        date: date.clone(),
        machine: machine(),
        versions: versions(&tools),
        timing,
        pinned: tools.pin,
        threads: tools.threads,
        seconds: started.elapsed().as_secs_f64(),
        smoke: args.smoke,
        chart: Some(chart_name.clone()),
    };
    let mut page = results::markdown(&info, &results);
    if !notes.is_empty() {
        page.push_str("## Notes\n\n");
        for note in &notes {
            page.push_str(&format!("- {note}\n"));
        }
    }
    let page_path = out.join(format!("{date}.md"));
    let chart_path = out.join(&chart_name);
    write(&page_path, &page)?;
    write(
        &chart_path,
        &chart::svg(&format!("sockeye benchmarks, {date}"), &results),
    )?;
    let failed: Vec<String> = results
        .iter()
        .flat_map(|result| {
            result
                .rows
                .iter()
                .filter(|row| !row.ok())
                .map(move |row| format!("({}) {}", result.scenario.id, row.name))
        })
        .collect();
    let runs: usize = results
        .iter()
        .map(|result| {
            result
                .rows
                .iter()
                .map(|row| row.rounds.len())
                .sum::<usize>()
        })
        .sum();
    println!(
        "{runs} runs in {:.0} s; results: {} and {}",
        started.elapsed().as_secs_f64(),
        page_path.display(),
        chart_path.display()
    );
    if failed.is_empty() {
        if args.smoke {
            println!("smoke: every server echoed correctly in every scenario");
        }
        Ok(true)
    } else {
        println!("FAILED: {}", failed.join(", "));
        Ok(false)
    }
}

/// Every round of one scenario: each server in turn, starting one
/// further along each round.
fn run_scenario(tools: &Tools, scenario: Scenario, timing: &Timing) -> ScenarioResult {
    let mut rows: Vec<Row> = scenario
        .variants
        .iter()
        .map(|variant| Row {
            variant: *variant,
            name: variant.name(&scenario.workload),
            rounds: Vec::new(),
        })
        .collect();
    let count = rows.len();
    for round in 0..timing.rounds {
        for step in 0..count {
            let index = (round + step) % count;
            let variant = rows[index].variant;
            let outcome = runner::measure(tools, variant, &scenario.workload, timing);
            println!(
                "  round {}/{} {:<34} {}",
                round + 1,
                timing.rounds,
                rows[index].name,
                describe(&scenario.workload, &outcome)
            );
            rows[index].rounds.push(outcome);
        }
    }
    ScenarioResult { scenario, rows }
}

/// One run's outcome on one line.
fn describe(workload: &Workload, outcome: &Result<runner::Measurement, String>) -> String {
    match (workload, outcome) {
        (_, Err(error)) => format!("FAILED: {error}"),
        (Workload::Idle { .. }, Ok(m)) => format!(
            "{} KiB/connection ({} -> {} KiB)",
            figure(Some(m.kib_per_connection)),
            m.rss_before_kib,
            m.rss_after_kib
        ),
        (Workload::Subscribers { .. }, Ok(m)) => format!(
            "{} KiB/subscriber ({} -> {} KiB), one publish to all: median {:.1} ms, slowest {:.1} ms",
            figure(Some(m.kib_per_connection)),
            m.rss_before_kib,
            m.rss_after_kib,
            m.reach_all_p50_us / 1000.0,
            m.reach_all_max_us / 1000.0
        ),
        (Workload::CrossNode { .. }, Ok(m)) => {
            let nodes: Vec<String> = m
                .node_latency_us
                .iter()
                .enumerate()
                .map(|(index, (p50, p99))| {
                    format!(
                        "node {} p50 {} / p99 {} µs",
                        index + 1,
                        figure(Some(*p50)),
                        figure(Some(*p99))
                    )
                })
                .collect();
            format!(
                "{}; {} publishes/s ({} held), {} deliveries/s, server-side busy {:.0}%",
                nodes.join(", "),
                thousands(m.publish_rate),
                m.held,
                thousands(m.msgs_per_sec),
                m.server_busy * 100.0
            )
        }
        (_, Ok(m)) => format!(
            "{} msgs/s, {:.1} MB/s, {} µs CPU/msg, server busy {:.0}%, waited {:.0}%, p99 {} µs",
            thousands(m.msgs_per_sec),
            m.mb_per_sec,
            figure(Some(m.cpu_us_per_msg)),
            m.server_busy * 100.0,
            m.server_wait * 100.0,
            figure(Some(m.p99_us))
        ),
    }
}

/// Finds the binaries, Node ws, and whether pinning is possible.
fn tools(args: &Args, notes: &mut Vec<String>) -> Result<Tools, String> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let sockeye = args.sockeye.clone().unwrap_or_else(|| here.join("sockeye"));
    let peer = args
        .peer
        .clone()
        .unwrap_or_else(|| here.join("sockeye-bench-peer"));
    for (path, what) in [
        (&sockeye, "sockeye (cargo build -p sockeye-cli)"),
        (&peer, "sockeye-bench-peer"),
    ] {
        if !path.is_file() {
            return Err(format!(
                "{} not found: build {what}, or pass its path",
                path.display()
            ));
        }
    }
    let node_dir = Path::new(BENCH_DIR).join("node");
    let node = if args.no_node {
        None
    } else if !succeeds("node", &["--version"]) {
        notes.push("Node ws left out: `node` is not installed.".into());
        None
    } else if !node_dir.join("node_modules/ws/package.json").is_file() {
        notes.push(format!(
            "Node ws left out: not installed in {} (bench/run installs it with npm).",
            node_dir.display()
        ));
        None
    } else {
        Some((PathBuf::from("node"), node_dir.join("echo.mjs")))
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.server_threads.unwrap_or(1);
    let pin = !args.no_pin && threads == 1 && cores >= 2 && succeeds("taskset", &["--version"]);
    if threads > 1 {
        notes.push(format!(
            "sockeye serve and the load generator ran {threads} threads each, unpinned."
        ));
    } else if !pin && !args.no_pin {
        notes.push(format!(
            "Processes not pinned: {}.",
            if cores < 2 {
                "fewer than 2 cores"
            } else {
                "taskset is missing"
            }
        ));
    }
    let help = Command::new(&sockeye)
        .args(["serve", "--help"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let backplanes = backplanes(&help, notes);
    Ok(Tools {
        sockeye,
        peer,
        node,
        pin,
        open_files: None,
        ticks_per_second: procfs::clock_ticks(),
        backplanes,
        sockeye_runtime: help.contains("--runtime"),
        threads,
    })
}

/// The backplanes two-node runs can use: `sockeye serve` must have
/// `--backplane` (in `help`, its `--help`), and the broker must be
/// installed.
fn backplanes(help: &str, notes: &mut Vec<String>) -> Vec<Backplane> {
    if !help.contains("--backplane") {
        notes.push(
            "Two-node runs left out: this sockeye serve has no --backplane option.".to_owned(),
        );
        return Vec::new();
    }
    Backplane::ALL
        .into_iter()
        .filter(|backplane| {
            let found = succeeds(
                "sh",
                &["-c", &format!("command -v {}", backplane.program())],
            );
            if !found {
                notes.push(format!(
                    "Two nodes over {} left out: `{}` is not installed.",
                    backplane.name(),
                    backplane.program()
                ));
            }
            found
        })
        .collect()
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The scenarios and servers asked for and available.
fn select(args: &Args, tools: &Tools, notes: &[String]) -> Result<Vec<Scenario>, String> {
    let mut wanted: Vec<Server> = Vec::new();
    for key in &args.servers {
        wanted.push(Server::from_key(key).ok_or_else(|| format!("unknown server {key:?}"))?);
    }
    if !tools.sockeye_runtime {
        let why = format!(
            "{} has no --runtime option (`sockeye serve --help`)",
            tools.sockeye.display()
        );
        if wanted.contains(&Server::SockeyeTokio) {
            return Err(format!("sockeye (tokio) cannot run: {why}"));
        }
        if wanted.is_empty() {
            eprintln!("note: sockeye (tokio) left out: {why}");
        }
    }
    let mut scenarios = plan::scenarios(args.smoke);
    if let Some(count) = args.idle_connections {
        scenarios = scenarios
            .into_iter()
            .map(|scenario| scenario.with_idle_connections(count))
            .collect();
    }
    if let Some(letters) = &args.scenarios {
        if let Some(bad) = letters
            .chars()
            .find(|letter| !scenarios.iter().any(|s| s.id == *letter))
        {
            return Err(format!(
                "no scenario {bad:?} (a to o; the smoke run has a, c, f, g, h, i, j, k, n, o)"
            ));
        }
        scenarios.retain(|scenario| letters.contains(scenario.id));
    }
    for scenario in &mut scenarios {
        scenario.variants.retain(|variant| {
            (wanted.is_empty() || wanted.contains(&variant.server))
                && (variant.server != Server::Node || tools.node.is_some())
                && (variant.server != Server::SockeyeTokio || tools.sockeye_runtime)
                && variant
                    .backplane
                    .is_none_or(|backplane| tools.backplanes.contains(&backplane))
        });
    }
    scenarios.retain(|scenario| !scenario.variants.is_empty());
    if scenarios.is_empty() {
        return Err("nothing to run".into());
    }
    if tools.node.is_none() && !notes.is_empty() && args.servers.iter().any(|key| key == "node") {
        return Err(notes.join(" "));
    }
    Ok(scenarios)
}

/// The idle-subscribers scenario (j), and the idle-connections one (f)
/// when its count was asked for (`fit_idle`), scaled down to what the
/// open-file hard limit allows (the server and the generator each hold
/// one descriptor per connection), with a note saying so.
fn fit_open_files(
    scenarios: Vec<Scenario>,
    fit_idle: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Scenario>, String> {
    let Some((_, hard)) = procfs::open_files_limit() else {
        return Ok(scenarios);
    };
    let most = hard.saturating_sub(OPEN_FILES_SPARE);
    Ok(scenarios
        .into_iter()
        .map(|scenario| {
            let (count, what) = match scenario.workload {
                Workload::Subscribers { receivers, .. } => (receivers, "subscribers"),
                Workload::Idle { connections } if fit_idle && scenario.id == 'f' => {
                    (connections, "idle connections")
                }
                _ => return scenario,
            };
            if u64::from(count) < most {
                return scenario;
            }
            // Whole thousands, below the limit.
            let fitted = ((most - 1) / 1000 * 1000).max(1000) as u32;
            notes.push(format!(
                "({}) runs {} {what}, not {}: the open-file hard limit here is {hard}, and \
                 the server and the generator each need one descriptor per connection (raise it \
                 with `ulimit -Hn` as root, or LimitNOFILE, to run the full count).",
                scenario.id,
                thousands(f64::from(fitted)),
                thousands(f64::from(count))
            ));
            match scenario.workload {
                Workload::Subscribers { .. } => scenario.with_subscribers(fitted),
                _ => scenario.with_idle_connections(fitted),
            }
        })
        .collect())
}

/// Open files a child needs beyond one per connection.
const OPEN_FILES_SPARE: u64 = 256;

/// The open-file limit the children need (the idle scenario holds
/// thousands of sockets in the server and in the generator): `None` when
/// the current one is enough, an error when even the hard limit is not.
fn open_files(scenarios: &[Scenario]) -> Result<Option<u64>, String> {
    let most = scenarios
        .iter()
        .map(|scenario| scenario.workload.connections())
        .max()
        .unwrap_or(0);
    let needed = u64::from(most) + OPEN_FILES_SPARE;
    let Some((soft, hard)) = procfs::open_files_limit() else {
        return Ok(None);
    };
    if soft >= needed {
        Ok(None)
    } else if hard >= needed {
        Ok(Some(needed))
    } else {
        Err(format!(
            "{most} connections need at least {needed} open files in the server and in the load \
             generator, but the hard limit here is {hard} (soft {soft}): raise it (`ulimit -Hn \
             {needed}` as root, or LimitNOFILE for a service), or leave scenario f out with \
             --scenarios"
        ))
    }
}

/// Where the results go.
fn output_dir(args: &Args) -> Result<PathBuf, String> {
    let dir = match (&args.out, args.smoke) {
        (Some(dir), _) => dir.clone(),
        (None, false) => Path::new(BENCH_DIR).join("results"),
        (None, true) => {
            std::env::temp_dir().join(format!("sockeye-bench-smoke-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// CPU model, cores, kernel, load average.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{model}, {cores} cores, Linux {}, load average {} at the start",
        kernel.trim(),
        load.join(" ")
    )
}

/// The implementations' versions: the peers from Cargo.lock, sockeye's
/// commit, node and ws.
fn versions(tools: &Tools) -> Vec<(String, String)> {
    let root = Path::new(BENCH_DIR).join("..");
    let mut versions = Vec::new();
    let commit = Command::new("git")
        .args([
            "-C",
            &root.display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok());
    let dirty = Command::new("git")
        .args([
            "-C",
            &root.display().to_string(),
            "status",
            "--porcelain",
            "--",
            "crates",
        ])
        .output()
        .ok()
        .is_some_and(|output| !output.stdout.is_empty());
    versions.push((
        "sockeye".to_owned(),
        match commit {
            Some(commit) if dirty => {
                format!("(this tree: {} with uncommitted changes)", commit.trim())
            }
            Some(commit) => format!("(commit {})", commit.trim()),
            None => "(this tree)".to_owned(),
        },
    ));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    for name in [
        "tokio-tungstenite",
        "fastwebsockets",
        "yawc",
        "tokio",
        "mio",
    ] {
        if let Some(version) = locked_version(&lock, name) {
            versions.push((name.to_owned(), version));
        }
    }
    if let Some((node, script)) = &tools.node {
        let version = Command::new(node)
            .arg("--version")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .unwrap_or_default();
        versions.push(("node".to_owned(), version.trim().to_owned()));
        let package = script.with_file_name("node_modules/ws/package.json");
        let ws = std::fs::read_to_string(package)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|value| value["version"].as_str().map(str::to_owned));
        if let Some(ws) = ws {
            versions.push(("ws".to_owned(), ws));
        }
    }
    versions
}

/// The version of `name` in a Cargo.lock (the first, if several).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let entry = format!("name = \"{name}\"\nversion = \"");
    let at = lock.find(&entry)? + entry.len();
    let end = lock[at..].find('"')?;
    Some(lock[at..at + end].to_owned())
}
