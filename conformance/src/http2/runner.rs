//! The runner's HTTP/2 connections, on the runner's own runtime: as the
//! client of a testee server (one connection per testee server, each case
//! a new stream on it), and as the server a testee client connects to
//! (each case's extended CONNECT picked up by its path). Each connection
//! keeps its [`Health`], so a case can check that its failure ended only
//! its own stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{Method, Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

use super::testee::OPEN_TIMEOUT;

/// The runner's receive windows: its reader takes everything at once, so
/// these only save round trips on large echoes.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;

/// h2's budget for small DATA frames buffered unread (a guard against
/// memory spent on frame overhead) would close the runner's connection
/// when a testee sends many small frames faster than the reader task
/// runs; the runner reads everything, so it needs no such guard.
const NO_DATA_FRAME_BUDGET: usize = usize::MAX;

/// How one HTTP/2 connection is doing.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// `Some` once the connection ended: `Ok` for an orderly end (GOAWAY
    /// with `NO_ERROR`, or EOF with no stream open), else the error.
    ended: Mutex<Option<Result<(), String>>>,
    /// Streams opened on it.
    streams: AtomicUsize,
    /// Which connection this is, from 1, for reports.
    pub(crate) number: usize,
}

impl Health {
    fn new(number: usize) -> Health {
        Health {
            number,
            ..Health::default()
        }
    }

    fn end(&self, how: Result<(), String>) {
        let mut ended = self
            .ended
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        ended.get_or_insert(how);
    }

    /// Whether the connection has ended, and how.
    pub(crate) fn ended(&self) -> Option<Result<(), String>> {
        self.ended
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// The connection's error, if it ended with one.
    pub(crate) fn error(&self) -> Option<String> {
        self.ended().and_then(Result::err)
    }

    /// How many streams were opened on it.
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

/// The extended CONNECT for `path` at `authority` (RFC 8441 section 4),
/// offering `extensions` if given.
pub(crate) fn extended_connect(
    authority: &str,
    path: &str,
    extensions: Option<&str>,
) -> Request<()> {
    let mut builder = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{authority}{path}"))
        .header("sec-websocket-version", "13");
    if let Some(extensions) = extensions {
        builder = builder.header("sec-websocket-extensions", extensions);
    }
    let mut request = builder.body(()).expect("a valid request");
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    request
}

/// A stream the runner opened, answered.
pub(crate) struct Opened {
    /// The testee's response; its body is the testee's side of the stream.
    pub(crate) response: Response<RecvStream>,
    /// The runner's side.
    pub(crate) send: SendStream<Bytes>,
    /// Its connection.
    pub(crate) health: Arc<Health>,
    /// Whether the testee had advertised SETTINGS_ENABLE_CONNECT_PROTOCOL.
    pub(crate) connect_protocol: bool,
    /// A problem seen on opening that is not this stream's: the shared
    /// connection had ended with an error since the last case.
    pub(crate) earlier_break: Option<String>,
}

/// The runner as the client of one testee server.
#[derive(Debug)]
pub(crate) struct Client {
    addr: SocketAddr,
    current: Mutex<Option<(SendRequest<Bytes>, Arc<Health>)>>,
    connections: AtomicUsize,
    streams: AtomicUsize,
}

impl Client {
    /// A client of the server at `addr`; it connects on first use.
    pub(crate) fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            current: Mutex::new(None),
            connections: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(SendRequest<Bytes>, Arc<Health>)>> {
        self.current
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// How many connections it made.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// How many streams it opened, over all its connections.
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Opens a stream with an extended CONNECT to `path` and waits for the
    /// answer, over the current connection (a new one if the last ended).
    pub(crate) fn open(
        &self,
        runtime: &Handle,
        path: &str,
        extensions: Option<&str>,
    ) -> Result<Opened, String> {
        let mut earlier_break = None;
        let (send, health) = {
            let mut current = self.lock();
            if let Some((_, health)) = current.as_ref()
                && let Some(ended) = health.ended()
            {
                // Only an orderly end (the testee's idle GOAWAY) may come
                // between cases; a broken connection is reported.
                if let Err(error) = ended {
                    earlier_break = Some(format!(
                        "the shared HTTP/2 connection {} had ended with an error after the \
                         previous case: {error}",
                        health.number
                    ));
                }
                *current = None;
            }
            if current.is_none() {
                let number = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
                *current = Some(runtime.block_on(connect(self.addr, number))?);
            }
            current.clone().expect("connected above")
        };
        let authority = self.addr.to_string();
        let request = extended_connect(&authority, path, extensions);
        let opened = runtime.block_on(async {
            tokio::time::timeout(OPEN_TIMEOUT, async {
                let mut send = send
                    .ready()
                    .await
                    .map_err(|error| format!("the HTTP/2 connection is not ready: {error}"))?;
                let (response, stream) = send
                    .send_request(request, false)
                    .map_err(|error| format!("sending the extended CONNECT failed: {error}"))?;
                let response = response
                    .await
                    .map_err(|error| format!("the extended CONNECT failed: {error}"))?;
                Ok::<_, String>((
                    response,
                    stream,
                    send.is_extended_connect_protocol_enabled(),
                ))
            })
            .await
            .map_err(|_| format!("no answer within {} s", OPEN_TIMEOUT.as_secs()))?
        })?;
        health.streams.fetch_add(1, Ordering::Relaxed);
        self.streams.fetch_add(1, Ordering::Relaxed);
        let (response, send, connect_protocol) = opened;
        Ok(Opened {
            response,
            send,
            health,
            connect_protocol,
            earlier_break,
        })
    }
}

/// A new connection to `addr` (prior knowledge), driven by a task.
async fn connect(
    addr: SocketAddr,
    number: usize,
) -> Result<(SendRequest<Bytes>, Arc<Health>), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("could not connect to the testee server: {error}"))?;
    let _ = tcp.set_nodelay(true);
    let (send, connection) = h2::client::Builder::new()
        .enable_push(false)
        .data_frame_budget(NO_DATA_FRAME_BUDGET)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(tcp)
        .await
        .map_err(|error| format!("the HTTP/2 handshake failed: {error}"))?;
    let health = Arc::new(Health::new(number));
    let watched = Arc::clone(&health);
    tokio::spawn(async move {
        let ended = connection.await.map_err(|error| error.to_string());
        watched.end(ended);
    });
    Ok((send, health))
}

/// A request the testee client sent, waiting for the runner.
pub(crate) struct Arrived {
    /// The request; its body is the testee's side of the stream.
    pub(crate) request: Request<RecvStream>,
    /// Where the runner answers.
    pub(crate) respond: SendResponse<Bytes>,
    /// Its connection.
    pub(crate) health: Arc<Health>,
}

#[derive(Default)]
struct Arrivals {
    requests: HashMap<String, Arrived>,
    connections: Vec<Arc<Health>>,
}

#[derive(Default)]
struct Inbox {
    arrivals: Mutex<Arrivals>,
    arrived: Condvar,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Arrivals> {
        self.arrivals
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The runner as the HTTP/2 server testee clients connect to, on an
/// ephemeral port of 127.0.0.1, advertising
/// SETTINGS_ENABLE_CONNECT_PROTOCOL.
pub(crate) struct Server {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Listens; every connection is served on `runtime` until it ends.
    pub(crate) fn start(runtime: &Handle) -> std::io::Result<Server> {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        let serving = Arc::clone(&inbox);
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(tcp, Arc::clone(&serving)));
            }
        });
        Ok(Server { addr, inbox })
    }

    /// Takes the request for `path`, waiting up to `timeout` for it.
    pub(crate) fn take(&self, path: &str, timeout: Duration) -> Option<Arrived> {
        let arrivals = self.inbox.lock();
        let (mut arrivals, _) = self
            .inbox
            .arrived
            .wait_timeout_while(arrivals, timeout, |arrivals| {
                !arrivals.requests.contains_key(path)
            })
            .unwrap_or_else(|poison| poison.into_inner());
        arrivals.requests.remove(path)
    }

    /// The connections testee clients made, and streams on each.
    pub(crate) fn connections(&self) -> Vec<Arc<Health>> {
        self.inbox.lock().connections.clone()
    }
}

/// Serves one connection: every request is filed by its path.
async fn serve(tcp: TcpStream, inbox: Arc<Inbox>) {
    let health = {
        let mut arrivals = inbox.lock();
        let health = Arc::new(Health::new(arrivals.connections.len() + 1));
        arrivals.connections.push(Arc::clone(&health));
        health
    };
    let handshake = h2::server::Builder::new()
        .enable_connect_protocol()
        .data_frame_budget(NO_DATA_FRAME_BUDGET)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(tcp);
    let mut connection = match handshake.await {
        Ok(connection) => connection,
        Err(error) => {
            health.end(Err(format!("the HTTP/2 handshake failed: {error}")));
            return;
        }
    };
    loop {
        match connection.accept().await {
            Some(Ok((request, respond))) => {
                health.streams.fetch_add(1, Ordering::Relaxed);
                let path = request.uri().path().to_string();
                let arrived = Arrived {
                    request,
                    respond,
                    health: Arc::clone(&health),
                };
                inbox.lock().requests.insert(path, arrived);
                inbox.arrived.notify_all();
            }
            Some(Err(error)) => {
                health.end(Err(error.to_string()));
                return;
            }
            None => {
                health.end(Ok(()));
                return;
            }
        }
    }
}
