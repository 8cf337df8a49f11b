//! Runs one server with one workload and measures it.
//!
//! Each run starts a fresh server process pinned to core 0 (`taskset -c
//! 0`), waits for it to say where it listens, and runs `sockeye bench
//! --threads 1` pinned to core 1 against it. A two-node run starts a
//! broker (`redis-server` or `nats-server` on a free loopback port, on
//! core 1) and two sockeye nodes joined through it, and spreads the
//! bench's receivers over both; the server CPU time is then the sum of
//! the three processes'. The bench announces the
//! edges of its measured window on stderr; the harness samples the
//! server's (and the bench's) CPU accounting at each edge, so the CPU
//! time per message covers exactly the messages the window counted. For
//! idle connections it reads the server's resident memory before the
//! bench connects and once every connection is open. Every process the
//! harness starts is killed by its own handle and reaped, on every path.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plan::{Backplane, Server, Timing, Variant, Workload};
use crate::procfs::{self, CpuDelta, CpuSample};

/// The longest a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Output lines kept from each process, for error messages.
const KEPT_LINES: usize = 20;

/// Where the programs are and how to start them.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The `sockeye` binary.
    pub sockeye: PathBuf,
    /// The `sockeye-bench-peer` binary.
    pub peer: PathBuf,
    /// `node` and the echo script, when Node ws is installed.
    pub node: Option<(PathBuf, PathBuf)>,
    /// Pin servers to core 0 and the load generator to core 1.
    pub pin: bool,
    /// Raise the children's soft open-file limit to this.
    pub open_files: Option<u64>,
    /// Clock ticks per second of `/proc/PID/stat`.
    pub ticks_per_second: u64,
    /// The backplanes two-node runs can use (`sockeye serve --backplane`
    /// and the broker installed).
    pub backplanes: Vec<Backplane>,
    /// Whether `sockeye serve` has `--runtime` (sockeye's tokio front-end,
    /// [`Server::SockeyeTokio`], runs only then).
    pub sockeye_runtime: bool,
    /// Threads of `sockeye serve` and of the load generator
    /// (`--server-threads`; 1 unless scaling is measured).
    pub threads: u32,
}

/// Source addresses the generator spreads fan-out connections over when
/// they are many (each has its own ephemeral ports).
const SOURCE_ADDRESSES: &str = "8";

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Messages (or deliveries) per second in the window.
    pub msgs_per_sec: f64,
    /// Payload megabytes (10^6) per second in the window.
    pub mb_per_sec: f64,
    /// Messages counted in the window.
    pub messages: u64,
    /// The server's CPU time per message, in microseconds.
    pub cpu_us_per_msg: f64,
    /// The share of the window the server was on its core.
    pub server_busy: f64,
    /// The share of the window the server waited for its core.
    pub server_wait: f64,
    /// The share of the window the load generator was on its core.
    pub generator_busy: f64,
    /// The share of the window the load generator waited for its core.
    pub generator_wait: f64,
    /// Round-trip median, in microseconds.
    pub p50_us: f64,
    /// Round-trip 99th percentile, in microseconds.
    pub p99_us: f64,
    /// Server memory per idle connection, in KiB.
    pub kib_per_connection: f64,
    /// Server memory before the idle connections, in KiB.
    pub rss_before_kib: u64,
    /// Server memory with every idle connection open, in KiB.
    pub rss_after_kib: u64,
    /// Connections on which permessage-deflate was agreed.
    pub compressed_connections: u64,
    /// Fan-out: per message, publication to its last delivery, median µs.
    pub reach_all_p50_us: f64,
    /// Fan-out: the slowest message's publication to its last delivery, µs.
    pub reach_all_max_us: f64,
    /// Fan-out: publish-to-delivery (p50, p99) µs of each node's
    /// receivers, the publisher's node first.
    pub node_latency_us: Vec<(f64, f64)>,
    /// Fan-out: publishes per second achieved.
    pub publish_rate: f64,
    /// Fan-out at a fixed rate: publishes the window held past their time.
    pub held: u64,
}

/// Runs `variant` under `workload` once.
pub fn measure(
    tools: &Tools,
    variant: Variant,
    workload: &Workload,
    timing: &Timing,
) -> Result<Measurement, String> {
    let deployment = deploy(tools, variant, workload)?;
    let server = &deployment.servers[0];
    let mut args = vec!["bench".to_owned()];
    args.extend(
        deployment
            .servers
            .iter()
            .map(|server| format!("ws://127.0.0.1:{}/", server.port)),
    );
    let threads = tools.threads.to_string();
    push_all(&mut args, &["--threads", &threads, "--json"]);
    let raw = variant.server.is_raw();
    if variant.http2 {
        let streams = crate::plan::HTTP2_STREAMS.to_string();
        push_all(&mut args, &["--http2", "--streams", &streams]);
    }
    if raw && !workload.is_fanout() {
        args.push("--raw-echo".into());
    }
    if raw && workload.is_fanout() {
        args.push("--no-handshake".into());
    }
    let receivers = workload.receivers(variant.nodes());
    match workload {
        Workload::Echo {
            connections,
            size,
            text,
            pipeline,
            json,
            deflate,
        } => {
            push_all(
                &mut args,
                &[
                    "-c",
                    &connections.to_string(),
                    "-s",
                    &size.to_string(),
                    "-p",
                    &pipeline.to_string(),
                ],
            );
            if *text {
                args.push("--text".into());
            }
            if *json {
                push_all(&mut args, &["--payload", "json"]);
            }
            if !deflate || raw {
                args.push("--no-compression".into());
            }
            push_window(&mut args, timing);
        }
        Workload::Fanout { size, window, .. } | Workload::CrossNode { size, window, .. } => {
            push_all(
                &mut args,
                &[
                    "--fanout",
                    "-c",
                    &receivers.to_string(),
                    "-s",
                    &size.to_string(),
                    "-p",
                    &window.to_string(),
                    "--text",
                    "--payload",
                    "json",
                ],
            );
            if let Workload::CrossNode { rate, .. } = workload {
                push_all(&mut args, &["--rate", &rate.to_string()]);
            }
            if receivers > 5000 {
                push_all(&mut args, &["--local-addresses", SOURCE_ADDRESSES]);
            }
            if !variant.deflate {
                args.push("--no-compression".into());
            }
            push_window(&mut args, timing);
        }
        Workload::Subscribers {
            publishes, rate, ..
        } => {
            push_all(
                &mut args,
                &[
                    "--fanout",
                    "-c",
                    &receivers.to_string(),
                    "-s",
                    "256",
                    "-p",
                    "1",
                    "--rate",
                    &rate.to_string(),
                    "-n",
                    &publishes.to_string(),
                    "--text",
                    "--payload",
                    "json",
                    "--no-compression",
                    "--local-addresses",
                    SOURCE_ADDRESSES,
                ],
            );
        }
        Workload::Idle { connections } => {
            push_all(
                &mut args,
                &[
                    "--idle",
                    "-c",
                    &connections.to_string(),
                    "--no-compression",
                    "-d",
                    &seconds(timing.hold),
                    "--local-addresses",
                    "4",
                ],
            );
        }
    }
    let rss_before_kib = match workload {
        Workload::Idle { .. } | Workload::Subscribers { .. } => {
            std::thread::sleep(timing.settle);
            procfs::rss_kib(server.pid()).map_err(|error| format!("reading memory: {error}"))?
        }
        _ => 0,
    };
    let limit = timing.warmup + timing.window + timing.hold + Duration::from_secs(60);
    let bench = run_bench(
        tools,
        &args,
        &deployment.pids(),
        server.pid(),
        timing.settle,
        limit,
    )
    .map_err(|error| deployment.with_output(error))?;
    deployment.check_alive()?;
    let report = &bench.report;
    let connected = report["connected"].as_u64().unwrap_or(0);
    let expected = match workload {
        Workload::Echo { .. } | Workload::Idle { .. } => workload.connections(),
        _ => receivers + 1,
    };
    if connected != u64::from(expected) {
        return Err(format!("{connected} of {expected} connections opened"));
    }
    let mut measurement = Measurement {
        compressed_connections: report["settings"]["compressed_connections"]
            .as_u64()
            .unwrap_or(0),
        p50_us: report["latency_us"]["p50"].as_f64().unwrap_or(0.0),
        p99_us: report["latency_us"]["p99"].as_f64().unwrap_or(0.0),
        ..Measurement::default()
    };
    let fanout = &report["fanout"];
    measurement.reach_all_p50_us = fanout["reach_all_us"]["p50"].as_f64().unwrap_or(0.0);
    measurement.reach_all_max_us = fanout["reach_all_us"]["max"].as_f64().unwrap_or(0.0);
    measurement.publish_rate = fanout["rate_achieved"].as_f64().unwrap_or(0.0);
    measurement.held = fanout["held_by_window"].as_u64().unwrap_or(0);
    if let Some(urls) = fanout["per_url"].as_array() {
        measurement.node_latency_us = urls
            .iter()
            .map(|url| {
                let latency = &url["latency_us"];
                (
                    latency["p50"].as_f64().unwrap_or(0.0),
                    latency["p99"].as_f64().unwrap_or(0.0),
                )
            })
            .collect();
    }
    if let Workload::Idle { connections } = workload {
        let after = bench
            .rss_after_kib
            .ok_or("the bench never said its connections were open")?;
        measurement.rss_before_kib = rss_before_kib;
        measurement.rss_after_kib = after;
        measurement.kib_per_connection =
            after.saturating_sub(rss_before_kib) as f64 / f64::from(*connections);
        return Ok(measurement);
    }
    if let Workload::Subscribers { publishes, .. } = workload {
        let after = bench
            .rss_after_kib
            .ok_or("the bench never said its receivers were connected")?;
        let delivered = report["messages"].as_u64().unwrap_or(0);
        let expected = u64::from(receivers) * u64::from(*publishes);
        if delivered != expected {
            return Err(format!("{delivered} of {expected} deliveries"));
        }
        measurement.rss_before_kib = rss_before_kib;
        measurement.rss_after_kib = after;
        measurement.kib_per_connection =
            after.saturating_sub(rss_before_kib) as f64 / f64::from(receivers);
        return Ok(measurement);
    }
    if variant.deflate && measurement.compressed_connections != connected {
        return Err(format!(
            "permessage-deflate agreed on {} of {connected} connections",
            measurement.compressed_connections
        ));
    }
    let window = &report["window"];
    let messages = window["messages"].as_u64().unwrap_or(0);
    if messages == 0 {
        return Err("no message was echoed in the measured window".into());
    }
    let (Some(start), Some(end)) = (bench.window_start, bench.window_end) else {
        return Err("the bench did not announce its window".into());
    };
    let server_cpu = CpuDelta::between(&start.0, &end.0, tools.ticks_per_second);
    let generator_cpu = CpuDelta::between(&start.1, &end.1, tools.ticks_per_second);
    measurement.messages = messages;
    measurement.msgs_per_sec = window["msgs_per_sec"].as_f64().unwrap_or(0.0);
    measurement.mb_per_sec = window["mb_per_sec"].as_f64().unwrap_or(0.0);
    measurement.cpu_us_per_msg = server_cpu.cpu_seconds * 1e6 / messages as f64;
    measurement.server_busy = server_cpu.busy();
    measurement.server_wait = server_cpu.waiting();
    measurement.generator_busy = generator_cpu.busy();
    measurement.generator_wait = generator_cpu.waiting();
    Ok(measurement)
}

fn push_all(args: &mut Vec<String>, more: &[&str]) {
    args.extend(more.iter().map(|arg| (*arg).to_owned()));
}

fn push_window(args: &mut Vec<String>, timing: &Timing) {
    push_all(
        args,
        &[
            "-d",
            &seconds(timing.warmup + timing.window),
            "--warmup",
            &seconds(timing.warmup),
        ],
    );
}

/// `1.5s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// A command pinned to `core` (when pinning), with the raised open-file
/// limit (when needed).
fn pinned(tools: &Tools, core: u32, program: &std::path::Path, args: &[String]) -> Command {
    let mut words: Vec<String> = Vec::new();
    if tools.pin {
        push_all(&mut words, &["taskset", "-c", &core.to_string()]);
    }
    words.push(program.display().to_string());
    words.extend(args.iter().cloned());
    let mut command = match tools.open_files {
        Some(limit) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg("ulimit -Sn \"$0\" && exec \"$@\"")
                .arg(limit.to_string())
                .args(&words);
            command
        }
        None => {
            let mut command = Command::new(&words[0]);
            command.args(&words[1..]);
            command
        }
    };
    for variable in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(variable);
    }
    command.env_remove("RUST_LOG");
    command
}

/// A running process: killed and reaped when dropped.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command`; its output lines, each tagged `true` when it
    /// came from stderr.
    fn spawn(mut command: Command) -> Result<(Process, Receiver<(bool, String)>), String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start {command:?}: {error}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = channel();
        let streams = [
            (
                false,
                child
                    .stdout
                    .take()
                    .map(|out| Box::new(out) as Box<dyn Read + Send>),
            ),
            (
                true,
                child
                    .stderr
                    .take()
                    .map(|err| Box::new(err) as Box<dyn Read + Send>),
            ),
        ];
        for (is_stderr, stream) in streams {
            let Some(stream) = stream else { continue };
            let (sender, lines) = (sender.clone(), lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    if is_stderr {
                        keep(&lines, &line);
                    }
                    // The receiver may be gone: the lines are still drained.
                    let _ = sender.send((is_stderr, line));
                }
            });
        }
        Ok((Process { child, lines }, receiver))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep(lines: &Mutex<Vec<String>>, line: &str) {
    let mut lines = lines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if lines.len() == KEPT_LINES {
        lines.remove(0);
    }
    lines.push(line.to_owned());
}

/// A server that listens.
struct RunningServer {
    process: Process,
    port: u16,
}

impl RunningServer {
    fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `error`, with the server's last output lines.
    fn with_output(&self, error: String) -> String {
        let output = self.process.output();
        if output.is_empty() {
            error
        } else {
            format!("{error}; server said: {}", output.replace('\n', " | "))
        }
    }

    fn check_alive(&self) -> Result<(), String> {
        match std::fs::metadata(format!("/proc/{}", self.pid())) {
            Ok(_) => Ok(()),
            Err(_) => Err(self.with_output("the server died".into())),
        }
    }
}

/// Everything one run serves with: the servers (two nodes with a
/// backplane) and the broker between them. Fields drop in order: the
/// nodes are killed before their broker.
struct Deployment {
    servers: Vec<RunningServer>,
    broker: Option<Process>,
}

impl Deployment {
    /// Every server-side process: the nodes and the broker.
    fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.servers.iter().map(RunningServer::pid).collect();
        pids.extend(self.broker.as_ref().map(Process::pid));
        pids
    }

    /// `error`, with the servers' last output lines.
    fn with_output(&self, error: String) -> String {
        self.servers
            .iter()
            .fold(error, |error, server| server.with_output(error))
    }

    fn check_alive(&self) -> Result<(), String> {
        for server in &self.servers {
            server.check_alive()?;
        }
        if let Some(broker) = &self.broker
            && std::fs::metadata(format!("/proc/{}", broker.pid())).is_err()
        {
            return Err(format!("the broker died: {}", broker.output()));
        }
        Ok(())
    }
}

/// Starts what `variant` needs: its broker, then its nodes.
fn deploy(tools: &Tools, variant: Variant, workload: &Workload) -> Result<Deployment, String> {
    let (broker, backplane_url) = match variant.backplane {
        Some(backplane) => {
            let (broker, port) = start_broker(tools, backplane)?;
            (
                Some(broker),
                Some(format!("{}://127.0.0.1:{port}", backplane.scheme())),
            )
        }
        None => (None, None),
    };
    let mut servers = Vec::new();
    for _ in 0..variant.nodes() {
        servers.push(start_server(
            tools,
            variant,
            workload,
            backplane_url.as_deref(),
        )?);
    }
    Ok(Deployment { servers, broker })
}

/// A free loopback port (the broker binds it right after).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("no free port: {error}"))
}

/// Starts `redis-server` or `nats-server` on a free loopback port,
/// pinned to the generator's core, and waits until it accepts
/// connections. On the servers' core, nats-server (Go, whose scheduler
/// spins for work before it sleeps) took the core from the publisher's
/// node at every message: its local deliveries went from a p50 of about
/// 250 µs to 700 µs. redis-server measured the same on either core.
fn start_broker(tools: &Tools, backplane: Backplane) -> Result<(Process, u16), String> {
    let port = free_port()?.to_string();
    let args: Vec<String> = match backplane {
        Backplane::Redis => [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(str::to_owned)
        .to_vec(),
        Backplane::Nats => ["-a", "127.0.0.1", "-p", &port].map(str::to_owned).to_vec(),
    };
    let program = PathBuf::from(backplane.program());
    let (process, _lines) = Process::spawn(pinned(tools, 1, &program, &args))?;
    let port: u16 = port.parse().map_err(|_| "a port".to_owned())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((process, port));
        }
        if std::fs::metadata(format!("/proc/{}", process.pid())).is_err()
            || Instant::now() > deadline
        {
            return Err(format!(
                "{} did not listen on port {port}: {}",
                backplane.program(),
                process.output()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The program and arguments that start `variant`.
fn server_command(
    tools: &Tools,
    variant: Variant,
    workload: &Workload,
    backplane_url: Option<&str>,
) -> Result<(PathBuf, Vec<String>), String> {
    let listen = "127.0.0.1:0".to_owned();
    let peer = |name: &str| {
        let mut args = vec![
            "--peer".to_owned(),
            name.to_owned(),
            "--listen".into(),
            listen.clone(),
        ];
        if variant.deflate {
            args.push("--deflate".into());
        }
        (tools.peer.clone(), args)
    };
    Ok(match variant.server {
        Server::Raw if workload.is_fanout() => {
            let (program, mut args) = peer("raw");
            args.push("--broadcast".into());
            (program, args)
        }
        Server::Raw => peer("raw"),
        Server::RawMio | Server::RawReadiness if workload.is_fanout() => {
            return Err(format!("{} has no broadcast mode", variant.server.name()));
        }
        Server::RawMio => peer("raw-mio"),
        Server::RawReadiness => peer("raw-readiness"),
        Server::Tungstenite => peer("tokio-tungstenite"),
        Server::Fastwebsockets => peer("fastwebsockets"),
        Server::Yawc => peer("yawc"),
        Server::Sockeye | Server::SockeyeTokio => {
            let mode = if workload.is_fanout() {
                "--broadcast"
            } else {
                "--echo"
            };
            let mut args = vec![
                "serve".to_owned(),
                "--listen".into(),
                listen,
                mode.into(),
                "--threads".into(),
                tools.threads.to_string(),
                "--max-connections".into(),
                "1000000".into(),
                // Every load comes from one address here.
                "--max-connections-per-address".into(),
                "off".into(),
            ];
            if !variant.deflate {
                args.push("--no-compression".into());
            }
            if let Some(url) = backplane_url {
                push_all(&mut args, &["--backplane", url]);
            }
            if variant.http2 {
                let streams = crate::plan::HTTP2_STREAMS.to_string();
                push_all(&mut args, &["--h2c", "--max-streams", &streams]);
            }
            if variant.server == Server::SockeyeTokio {
                push_all(&mut args, &["--runtime", "tokio"]);
            }
            (tools.sockeye.clone(), args)
        }
        Server::Node => {
            let (node, script) = tools
                .node
                .clone()
                .ok_or("Node ws is not installed (bench/run installs it with npm)")?;
            let mut args = vec![script.display().to_string(), "--listen".into(), listen];
            if variant.deflate {
                args.push("--deflate".into());
            }
            (node, args)
        }
    })
}

/// Starts the server and waits until it says where it listens.
fn start_server(
    tools: &Tools,
    variant: Variant,
    workload: &Workload,
    backplane_url: Option<&str>,
) -> Result<RunningServer, String> {
    let (program, args) = server_command(tools, variant, workload, backplane_url)?;
    let (process, lines) = Process::spawn(pinned(tools, 0, &program, &args))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((_, line)) => {
                if let Some(port) = listening_port(&line) {
                    return Ok(RunningServer { process, port });
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the server did not listen within {}s: {}",
                    START_TIMEOUT.as_secs(),
                    process.output()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("the server exited: {}", process.output()));
            }
        }
    }
}

/// The port in a line such as `listening on 127.0.0.1:4321` or
/// `sockeye: listening on ws://127.0.0.1:4321 (echo mode ...)`.
pub fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on")?..];
    let at = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the bench reported and what was sampled at its announcements.
struct BenchRun {
    report: Value,
    /// Server and bench CPU at the window's start and end.
    window_start: Option<(CpuSample, CpuSample)>,
    window_end: Option<(CpuSample, CpuSample)>,
    /// Server memory once every idle connection was open.
    rss_after_kib: Option<u64>,
}

/// Runs `sockeye ARGS` pinned to core 1, sampling the server-side
/// processes (CPU: all of `server_pids`; memory: `memory_pid`) at the
/// announced moments; its JSON report.
fn run_bench(
    tools: &Tools,
    args: &[String],
    server_pids: &[u32],
    memory_pid: u32,
    settle: Duration,
    limit: Duration,
) -> Result<BenchRun, String> {
    let (mut process, lines) = Process::spawn(pinned(tools, 1, &tools.sockeye, args))?;
    let bench_pid = process.pid();
    let mut run = BenchRun {
        report: Value::Null,
        window_start: None,
        window_end: None,
        rss_after_kib: None,
    };
    let deadline = Instant::now() + limit;
    let sample = || -> Option<(CpuSample, CpuSample)> {
        Some((
            procfs::cpu_sum(server_pids).ok()?,
            procfs::cpu(bench_pid).ok()?,
        ))
    };
    let mut stdout = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((false, line)) => {
                stdout.push_str(&line);
                stdout.push('\n');
            }
            Ok((true, line)) if line == "sockeye: window start" => run.window_start = sample(),
            Ok((true, line)) if line == "sockeye: window end" => run.window_end = sample(),
            Ok((true, line))
                if line.contains("idle connection(s) open")
                    || line.contains("receiver(s) connected") =>
            {
                std::thread::sleep(settle);
                run.rss_after_kib = procfs::rss_kib(memory_pid).ok();
            }
            Ok((true, _)) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the bench did not finish within {}s: {}",
                    limit.as_secs(),
                    process.output()
                ));
            }
        }
    }
    let status = process
        .child
        .wait()
        .map_err(|error| format!("waiting for the bench: {error}"))?;
    run.report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let errors = run.report["errors"]["total"].as_u64();
    if !status.success() || errors != Some(0) {
        let first = run.report["errors"]["first"].as_str().unwrap_or("");
        return Err(format!(
            "the bench failed ({status}, {} error(s)){}: {}",
            errors.map_or("?".to_owned(), |errors| errors.to_string()),
            if first.is_empty() {
                String::new()
            } else {
                format!(", first: {first}")
            },
            process.output().replace('\n', " | ")
        ));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_listening_lines() {
        assert_eq!(listening_port("listening on 127.0.0.1:4321"), Some(4321));
        assert_eq!(
            listening_port("sockeye: listening on ws://127.0.0.1:9001 (echo mode; open ...)"),
            Some(9001)
        );
        assert_eq!(listening_port("something else 127.0.0.1:80"), None);
    }
}
