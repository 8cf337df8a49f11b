//! `sockeye serve --broadcast --backplane`: three nodes on a real Redis
//! and a real NATS server (started here on a loopback port, stopped by
//! their PID; skipped with a message where not installed).
//!
//! One test per backplane checks, on the same nodes: every message said
//! on one node reaches every member of its room on every node exactly
//! once, in order per sender, with its type and bytes; rooms stay apart;
//! a node whose last member of a room leaves stops receiving that room;
//! and with the backplane killed, local delivery goes on, the node counts
//! what it could not send across, no node dies or swells, and cross-node
//! delivery comes back by itself within seconds of the restart.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, serve};
use sockeye::{ClientBuilder, ClientStream, DeflateConfig, Message, WebSocket};

/// Every wait here is bounded by this.
const PATIENCE: Duration = Duration::from_secs(15);

/// A backplane server this test started on a loopback port, killed by its
/// PID when dropped.
struct Service {
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Service {
    /// `redis-server` or `nats-server` on a free port, or `None` (after
    /// saying so) if it is not installed.
    fn start(kind: &str) -> Option<Service> {
        let program = find(kind)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let args = match kind {
            "redis-server" => vec![
                "--port".to_owned(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ],
            _ => vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
        };
        let mut service = Service {
            program,
            args,
            port,
            child: None,
        };
        service.launch();
        Some(service)
    }

    fn launch(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let child = Command::new(&self.program)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the server starts");
            self.child = Some(child);
            // Up once it accepts a connection (and has not exited: the
            // port may still be held by the one just killed).
            while Instant::now() < deadline {
                if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                    self.child = None;
                    break;
                }
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not start",
                self.program
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|directory| directory.join(program))
        .find(|path| path.is_file());
    if found.is_none() {
        let _ = writeln!(std::io::stderr(), "skipped: {program} not installed");
    }
    found
}

/// One `sockeye serve --broadcast --backplane URL --metrics` node.
struct Node {
    server: Server,
    metrics: String,
}

impl Node {
    fn start(backplane: &str) -> Node {
        let server = serve(&[
            "--broadcast",
            "--no-compression",
            "--backplane",
            backplane,
            "--metrics",
            "127.0.0.1:0",
        ]);
        let line = server.proc.wait_stderr("metrics on http://");
        let metrics = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("the metrics address")
            .to_owned();
        server.proc.wait_stderr(": connected");
        Node { server, metrics }
    }

    fn room(&self, name: &str) -> String {
        format!("{}/room/{name}", self.server.url)
    }

    /// The value of one series (`name{labels}` as printed), 0 if absent.
    fn metric(&self, series: &str) -> f64 {
        let mut stream = TcpStream::connect(&self.metrics).expect("metrics answer");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text.lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().expect("a number"))
            })
            .unwrap_or(0.0)
    }

    /// Waits until `series` reads `value`.
    fn wait_metric(&self, series: &str, value: f64) {
        let deadline = Instant::now() + PATIENCE;
        while self.metric(series) != value {
            assert!(
                Instant::now() < deadline,
                "{series} is {} on {}, not {value}",
                self.metric(series),
                self.server.url
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server process's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server.proc.id()))
            .expect("the node is alive");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS")
    }
}

type Client = WebSocket<ClientStream>;

async fn join(url: &str) -> Client {
    let (ws, _) = ClientBuilder::new(url)
        .deflate(DeflateConfig::new().enabled(false))
        .no_proxy()
        .connect()
        .await
        .expect("joins the room");
    ws
}

async fn next(client: &mut Client) -> Message {
    tokio::time::timeout(PATIENCE, client.recv())
        .await
        .expect("a message in time")
        .expect("the connection is open")
        .expect("no error")
}

/// Nothing arrives within a short while.
async fn silent(client: &mut Client) -> bool {
    tokio::time::timeout(Duration::from_millis(300), client.recv())
        .await
        .is_err()
}

/// Has `from` say probes until every one of `to` has heard one, then a
/// marker that every one of `to` reads up to: cross-node subscriptions
/// are in place and everyone's queue is empty. Returns how long it took.
async fn synchronise(from: &mut Client, to: &mut [&mut Client], marker: &str) -> Duration {
    let started = Instant::now();
    let mut heard = vec![false; to.len()];
    let mut probe = 0;
    while heard.contains(&false) {
        assert!(started.elapsed() < PATIENCE, "probes never arrived");
        from.send(Message::text(format!("probe {probe}")))
            .await
            .unwrap();
        probe += 1;
        for (index, client) in to.iter_mut().enumerate() {
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(40), client.recv()).await
            {
                assert!(
                    message
                        .as_text()
                        .is_some_and(|text| text.starts_with("probe"))
                );
                heard[index] = true;
            }
        }
    }
    let took = started.elapsed();
    from.send(Message::text(marker)).await.unwrap();
    for client in to.iter_mut() {
        loop {
            let message = next(client).await;
            if message.as_text() == Some(marker) {
                break;
            }
            assert!(
                message
                    .as_text()
                    .is_some_and(|text| text.starts_with("probe"))
            );
        }
    }
    took
}

/// Message `index` of `sender`: text, or every third one binary with
/// bytes that are not UTF-8.
fn said(sender: usize, index: usize) -> Message {
    if index % 3 == 2 {
        let mut bytes = vec![0xff, sender as u8, 0x00];
        bytes.extend_from_slice(&(index as u32).to_be_bytes());
        Message::binary(bytes)
    } else {
        Message::text(format!("{sender}:{index}"))
    }
}

/// Who said `message`, and its index.
fn heard(message: &Message) -> (usize, usize) {
    match message {
        Message::Text(text) => {
            let (sender, index) = text.split_once(':').expect("sender:index");
            (sender.parse().unwrap(), index.parse().unwrap())
        }
        Message::Binary(bytes) => {
            assert_eq!(&bytes[..1], &[0xff]);
            let index = u32::from_be_bytes(bytes[3..7].try_into().unwrap());
            (bytes[1] as usize, index as usize)
        }
    }
}

fn three_nodes_on(kind: &str, scheme: &str) {
    let Some(mut service) = Service::start(kind) else {
        return;
    };
    let url = format!("{scheme}://127.0.0.1:{}", service.port);
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&url)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Room "a": a speaker and a listener on every node; room "b": one
        // member on nodes 0 and 2.
        let mut speakers = Vec::new();
        let mut listeners = Vec::new();
        for node in &nodes {
            speakers.push(join(&node.room("a")).await);
            listeners.push(join(&node.room("a")).await);
        }
        let mut b0 = join(&nodes[0].room("b")).await;
        let mut b2 = join(&nodes[2].room("b")).await;
        {
            let (first, others) = speakers.split_first_mut().unwrap();
            let mut to: Vec<&mut Client> = others.iter_mut().chain(listeners.iter_mut()).collect();
            synchronise(first, &mut to, "ready").await;
        }
        synchronise(&mut b0, &mut [&mut b2], "b ready").await;

        // Every speaker says 150 things at once; every other member of
        // room a, on every node, hears each exactly once, in order per
        // speaker, types and bytes unchanged.
        const SAID: usize = 150;
        for index in 0..SAID {
            for (sender, speaker) in speakers.iter_mut().enumerate() {
                speaker.send(said(sender, index)).await.unwrap();
            }
        }
        let mut members: Vec<(usize, &mut Client)> = speakers
            .iter_mut()
            .enumerate()
            .chain(listeners.iter_mut().map(|client| (usize::MAX, client)))
            .collect();
        for (own, member) in members.iter_mut() {
            let mut next_from: HashMap<usize, usize> = HashMap::new();
            let expected = if *own == usize::MAX {
                3 * SAID
            } else {
                2 * SAID
            };
            for _ in 0..expected {
                let message = next(member).await;
                let (sender, index) = heard(&message);
                assert_ne!(sender, *own, "a speaker hears itself");
                let wanted = next_from.entry(sender).or_default();
                assert_eq!(index, *wanted, "from {sender}: out of order or twice");
                assert_eq!(message, said(sender, index), "changed on the way");
                *wanted += 1;
            }
            assert!(silent(member).await, "more than every message once");
        }
        // Room b heard none of it.
        assert!(silent(&mut b0).await && silent(&mut b2).await, "rooms leak");
        b0.send(Message::text("only b")).await.unwrap();
        assert_eq!(next(&mut b2).await.as_text(), Some("only b"));
        for listener in &mut listeners {
            assert!(silent(listener).await, "room b leaked into room a");
        }

        // The last member of b on node 2 leaves: node 2 unsubscribes, and
        // what is said in b no longer reaches it.
        b2.close(sockeye::CloseCode::NORMAL, "").await.unwrap();
        drop(b2);
        nodes[2].wait_metric("sockeye_hub_topics", 1.0);
        nodes[2].wait_metric("sockeye_backplane_subscriptions", 1.0);
        let received = nodes[2].metric("sockeye_backplane_received_total");
        for _ in 0..5 {
            b0.send(Message::text("b after")).await.unwrap();
        }
        // Node 1, subscribed to a only, is the control: a message in a
        // after b's reaches it, so b's have been through the backplane.
        speakers[0].send(Message::text("0:150")).await.unwrap();
        for listener in &mut listeners[1..] {
            assert_eq!(next(listener).await.as_text(), Some("0:150"));
        }
        assert_eq!(
            nodes[2].metric("sockeye_backplane_received_total"),
            received + 1.0,
            "node 2 still receives room b"
        );
        assert_eq!(next(&mut listeners[0]).await.as_text(), Some("0:150"));
        for speaker in &mut speakers[1..] {
            next(speaker).await;
        }

        // The backplane dies. Local delivery goes on; what node 0 could not
        // send across is counted, and no other node hears it.
        let rss_before: Vec<u64> = nodes.iter().map(Node::rss_kib).collect();
        service.kill();
        for node in &nodes {
            node.server.proc.wait_stderr("connection lost");
            node.wait_metric("sockeye_backplane_connected", 0.0);
        }
        const LOST: usize = 40;
        for index in 0..LOST {
            speakers[0]
                .send(Message::text(format!("lost {index}")))
                .await
                .unwrap();
            assert_eq!(
                next(&mut listeners[0]).await.as_text(),
                Some(format!("lost {index}").as_str()),
                "local delivery stopped"
            );
        }
        nodes[0].wait_metric(
            "sockeye_hub_dropped_total{reason=\"backplane\"}",
            LOST as f64,
        );
        for listener in &mut listeners[1..] {
            assert!(
                silent(listener).await,
                "delivered across without a backplane"
            );
        }

        // It comes back on the same port: every node reconnects and
        // subscribes again by itself, and cross-node delivery resumes
        // within seconds.
        let restarted = Instant::now();
        service.launch();
        let back: Vec<String> = nodes
            .iter()
            .map(|node| node.server.proc.wait_stderr("reconnected after"))
            .collect();
        let lost = format!("({LOST} cross-node publish(es) dropped meanwhile)");
        assert!(back[0].contains(&lost), "{}", back[0]);
        assert!(back[1].contains("(0 cross-node"), "{}", back[1]);
        {
            let (first, others) = speakers.split_first_mut().unwrap();
            let mut to: Vec<&mut Client> = others.iter_mut().chain(listeners.iter_mut()).collect();
            synchronise(first, &mut to, "back").await;
        }
        let resumed = restarted.elapsed();
        assert!(
            resumed < Duration::from_secs(10),
            "resumed after {resumed:?}"
        );
        for node in &nodes {
            assert_eq!(node.metric("sockeye_backplane_connected"), 1.0);
            assert!(node.metric("sockeye_backplane_reconnects_total") >= 1.0);
        }
        // Nobody died or swelled meanwhile.
        for (node, before) in nodes.iter().zip(rss_before) {
            let after = node.rss_kib();
            assert!(after < before + 64 * 1024, "{before} KiB -> {after} KiB");
        }
    });
}

#[test]
fn three_nodes_on_redis() {
    three_nodes_on("redis-server", "redis");
}

#[test]
fn three_nodes_on_nats() {
    three_nodes_on("nats-server", "nats");
}
