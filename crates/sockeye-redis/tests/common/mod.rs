//! Shared by the integration tests: a real `redis-server` on a free
//! loopback port, hub nodes with a Redis backplane, and WebSocket clients
//! attached to them over in-memory pipes.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::{Builder, Client, ClientLike, Config, PubsubInterface};
use fred::types::Value;
use sockeye::hub::{Hub, Subscriber};
use sockeye::proto::Config as WsConfig;
use sockeye::{Message, RecvHalf, Role, WebSocket};
use sockeye_redis::{RedisBackplane, RedisBackplaneBuilder};
use tokio::io::DuplexStream;

/// How long anything that should happen may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long a test waits to be sure that nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// Where `redis-server` is, if installed: `$SOCKEYE_TEST_REDIS_SERVER` if
/// set (a path that does not exist there skips the tests), else the first
/// on `PATH`, in `/usr/bin` or in `/usr/local/bin`.
fn redis_server_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SOCKEYE_TEST_REDIS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|directory| directory.join("redis-server"))
        .find(|path| path.is_file())
}

/// A `redis-server` this test started, on 127.0.0.1, killed (by its PID)
/// when dropped.
pub struct RedisServer {
    path: PathBuf,
    pub port: u16,
    /// Arguments after the port, bind and persistence ones.
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port; `None`, after printing why, when
    /// `redis-server` is not installed (the test then passes as skipped).
    pub fn start(test: &str) -> Option<RedisServer> {
        RedisServer::start_with(test, &[])
    }

    /// Like [`RedisServer::start`], with more arguments
    /// (`["--requirepass", "secret"]`, say).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
        let Some(path) = redis_server_path() else {
            // Straight to stderr: the test harness would hide a println of
            // a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: redis-server not installed"
            );
            return None;
        };
        // Another process may take the free port before the server binds
        // it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                path: path.clone(),
                port,
                extra: extra.iter().map(|argument| argument.to_string()).collect(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(error) => last_error = error,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(&self.path)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawn: {error}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server exited: {status}"));
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err("redis-server did not answer within 5 s".to_owned())
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the server's process: its
    /// connections stay open but nothing is answered, as behind a network
    /// partition. `false` if it could not be signalled.
    pub fn pause(&self, paused: bool) -> bool {
        let Some(child) = &self.child else {
            return false;
        };
        let signal = if paused { "-STOP" } else { "-CONT" };
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(error) if Instant::now() > deadline => {
                    panic!("could not restart redis-server: {error}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain client, for looking at the server and publishing on it.
    pub async fn client(&self) -> Client {
        client_at(&self.url()).await
    }
}

/// A plain client for the server at `url`.
pub async fn client_at(url: &str) -> Client {
    let config = Config::from_url(url).unwrap();
    let client = Builder::from_config(config)
        .with_performance_config(|performance| performance.default_command_timeout = PATIENCE)
        .build()
        .unwrap();
    tokio::time::timeout(PATIENCE, client.init())
        .await
        .expect("connect in time")
        .expect("connect");
    client
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 7];
    // A server with a password answers `-NOAUTH ...`: up all the same.
    stream.read_exact(&mut reply).is_ok() && (&reply == b"+PONG\r\n" || reply[0] == b'-')
}

/// How many subscriber connections the server has for `channel`, in the
/// sharded namespace or the classic one.
pub async fn subscriber_count(client: &Client, channel: &str, sharded: bool) -> i64 {
    let reply: Value = if sharded {
        client.pubsub_shardnumsub(channel).await.unwrap()
    } else {
        client.pubsub_numsub(channel).await.unwrap()
    };
    match reply {
        Value::Array(entries) => entries.get(1).and_then(Value::as_i64).unwrap_or(-1),
        other => panic!("unexpected NUMSUB reply {other:?}"),
    }
}

/// Waits until the server has `expected` subscribers for `channel`.
pub async fn wait_subscribers(client: &Client, channel: &str, sharded: bool, expected: i64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count = subscriber_count(client, channel, sharded).await;
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel}: {count} subscribers on the server, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One node: a hub and its backplane (a clone of the one the hub holds).
pub struct Node {
    pub hub: Hub,
    pub backplane: RedisBackplane,
}

impl Node {
    pub fn new(builder: RedisBackplaneBuilder) -> Node {
        let backplane = builder.build().expect("valid settings");
        let hub = Hub::builder().backplane(backplane.clone()).build();
        Node { hub, backplane }
    }

    /// Waits until the backplane is connected.
    pub async fn connected(&self) {
        let connected = tokio::time::timeout(PATIENCE, self.backplane.wait_connected()).await;
        assert_eq!(
            connected,
            Ok(true),
            "not connected: {:?}",
            self.backplane.redis_status()
        );
    }

    /// A WebSocket client attached to this node's hub.
    pub fn client(&self) -> TestClient {
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let socket = WebSocket::from_raw(client_end, Role::Client, WsConfig::default(), &[]);
        let server = WebSocket::from_raw(server_end, Role::Server, WsConfig::default(), &[]);
        let (server_receiver, server_sender) = server.split();
        TestClient {
            subscriber: self.hub.attach(server_sender),
            socket,
            _server_receiver: server_receiver,
        }
    }
}

/// A WebSocket client whose server end a hub writes to.
pub struct TestClient {
    pub subscriber: Subscriber,
    pub socket: WebSocket<DuplexStream>,
    _server_receiver: RecvHalf<DuplexStream>,
}

impl TestClient {
    /// The next message, within [`PATIENCE`].
    pub async fn next(&mut self) -> Message {
        match tokio::time::timeout(PATIENCE, self.socket.recv()).await {
            Ok(Some(Ok(message))) => message,
            Ok(other) => panic!("connection ended: {other:?}"),
            Err(_) => panic!("no message within {PATIENCE:?}"),
        }
    }

    /// Checks that nothing arrives for [`QUIET`].
    pub async fn expect_nothing(&mut self) {
        if let Ok(received) = tokio::time::timeout(QUIET, self.socket.recv()).await {
            panic!("expected nothing, received {received:?}");
        }
    }

    /// Checks that nothing has arrived (after the caller waited
    /// [`QUIET`] for all its clients at once).
    pub async fn expect_nothing_now(&mut self) {
        let now = Duration::from_millis(5);
        if let Ok(received) = tokio::time::timeout(now, self.socket.recv()).await {
            panic!("expected nothing, received {received:?}");
        }
    }
}

/// Waits until `condition` holds, checking every 10 ms.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on tokio's worker threads (where the backplane's tasks
/// run in a multi-threaded runtime) from now on, for
/// [`worker_panics`]; the usual report is still printed.
pub fn count_worker_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

pub fn worker_panics() -> usize {
    WORKER_PANICS.load(Ordering::SeqCst)
}
