//! Helpers for the backplane's tests: a real `nats-server` on a loopback
//! port, its monitoring endpoint, and hub subscribers with a WebSocket
//! client at the other end.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockeye::hub::{Hub, Subscriber};
use sockeye::proto::Config;
use sockeye::{Message, Role, WebSocket};
use sockeye_nats::NatsBackplane;
use tokio::io::DuplexStream;

/// Every wait in these tests is bounded by this.
pub const HANG_GUARD: Duration = Duration::from_secs(10);

/// Where `nats-server` is, if installed: `$NATS_SERVER` if set (a path
/// that does not exist skips the tests), else on the `PATH` or in Debian's
/// places.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    from_path.or_else(|| {
        ["/usr/bin/nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
    })
}

/// Says, past the test harness's capture, that a test did not run.
pub fn skip(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: nats-server not installed"
    );
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it
/// right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A `nats-server` this test started, on loopback ports, killed (by its
/// process id) when dropped.
pub struct NatsServer {
    binary: PathBuf,
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    /// The HTTP monitoring port.
    pub monitor_port: u16,
    extra_args: Vec<String>,
}

impl NatsServer {
    /// Starts a server on free ports, or `None` if nats-server is not
    /// installed.
    pub fn start() -> Option<NatsServer> {
        NatsServer::start_with(&[])
    }

    /// Like [`NatsServer::start`], with more command-line arguments
    /// (`--user`, `--pass`, `--auth`).
    pub fn start_with(extra_args: &[&str]) -> Option<NatsServer> {
        let binary = nats_server_binary()?;
        let mut server = NatsServer {
            binary,
            child: None,
            port: free_port(),
            monitor_port: free_port(),
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
        };
        server.launch();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process on the same ports and waits until it answers.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if self.answers() {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("nats-server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "nats-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server sends its INFO line to a new connection, and its
    /// monitoring answers.
    fn answers(&self) -> bool {
        let info = (|| {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .ok()?;
            let mut start = [0u8; 5];
            stream.read_exact(&mut start).ok()?;
            Some(&start == b"INFO ")
        })();
        info == Some(true) && http_get(self.monitor_port, "/varz").is_some()
    }

    /// Kills the process (SIGKILL to the process this helper started) and
    /// reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Each client connection's name and the subjects it subscribes to, as
    /// the server's monitoring reports them.
    pub fn subscriptions(&self) -> HashMap<String, BTreeSet<String>> {
        let body = http_get(self.monitor_port, "/connz?subs=1").expect("monitoring answers");
        let connz: serde_json::Value = serde_json::from_str(&body).expect("connz is JSON");
        let mut found = HashMap::new();
        for connection in connz["connections"].as_array().into_iter().flatten() {
            let name = connection["name"].as_str().unwrap_or_default().to_owned();
            let subjects = connection["subscriptions_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|subject| subject.as_str().map(str::to_owned))
                .collect();
            found.insert(name, subjects);
        }
        found
    }

    /// Waits until the connection named `name` subscribes to exactly
    /// `subjects` on the server.
    pub async fn wait_subscriptions(&self, name: &str, subjects: &[&str]) {
        let wanted: BTreeSet<String> = subjects.iter().map(|s| s.to_string()).collect();
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let now = self.subscriptions().remove(name);
            if now.as_ref() == Some(&wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} subscribes to {now:?} on the server, not {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP/1.0 GET on the loopback interface; the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

/// A node: a hub with a NATS backplane, named for the server's monitoring.
pub struct Node {
    pub hub: Hub,
    pub backplane: Arc<NatsBackplane>,
    pub name: String,
}

impl Node {
    /// A hub on `url` whose connection is named `name`, once connected.
    pub async fn start(url: &str, name: &str) -> Node {
        let backplane = Arc::new(
            NatsBackplane::builder()
                .url(url)
                .connection_name(name)
                .build()
                .expect("valid settings"),
        );
        let hub = Hub::builder().shared_backplane(backplane.clone()).build();
        let connected = tokio::time::timeout(HANG_GUARD, backplane.wait_connected()).await;
        assert_eq!(connected, Ok(true), "{name} connects");
        Node {
            hub,
            backplane,
            name: name.to_owned(),
        }
    }

    /// A subscriber to `topics`, with the client end of its connection.
    pub fn subscriber(&self, topics: &[&str]) -> Client {
        let (server_end, client_end) = tokio::io::duplex(64 * 1024);
        let socket = WebSocket::from_raw(server_end, Role::Server, Config::default(), &[]);
        let (receive_half, send_half) = socket.split();
        let subscriber = self.hub.attach(send_half);
        for topic in topics {
            assert!(subscriber.subscribe(topic));
        }
        Client {
            subscriber,
            _receive_half: receive_half,
            socket: WebSocket::from_raw(client_end, Role::Client, Config::default(), &[]),
        }
    }
}

/// A hub subscriber and the WebSocket client it writes to.
pub struct Client {
    pub subscriber: Subscriber,
    _receive_half: sockeye::RecvHalf<DuplexStream>,
    socket: WebSocket<DuplexStream>,
}

impl Client {
    /// The next message, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        match tokio::time::timeout(wait, self.socket.recv()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(error))) => panic!("the connection failed: {error}"),
            Ok(None) => panic!("the connection ended"),
            Err(_) => None,
        }
    }

    /// The next `count` messages (failing if they do not come).
    pub async fn take(&mut self, count: usize) -> Vec<Message> {
        let mut messages = Vec::with_capacity(count);
        while messages.len() < count {
            match self.next_within(HANG_GUARD).await {
                Some(message) => messages.push(message),
                None => panic!(
                    "{} of {count} messages arrived: {messages:?}",
                    messages.len()
                ),
            }
        }
        messages
    }

    /// Nothing arrives for `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Some(message) = self.next_within(quiet).await {
            panic!("unexpected message: {message:?}");
        }
    }
}

/// Waits until `condition` holds, polling.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
