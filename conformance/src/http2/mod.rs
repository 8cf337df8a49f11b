//! The cases over HTTP/2 streams (RFC 8441): sockeye's server and client
//! each echo on WebSockets that are streams of a shared HTTP/2
//! connection, held to the same rules as over TCP.
//!
//! - Testee as server: a sockeye server (`ServerBuilder::serve_tcp`, one
//!   per distinct [`Settings`], kept for the run) on an ephemeral port of
//!   127.0.0.1; the runner is an HTTP/2 client (the `h2` crate, prior
//!   knowledge) with one connection per server, and opens each case's
//!   WebSocket as a new stream with its own extended CONNECT (`:protocol
//!   websocket`, `sec-websocket-version: 13`), checking the `200`.
//! - Testee as client: the runner is an HTTP/2 server (the `h2` crate,
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL`); sockeye's client keeps one
//!   `Http2Session` to it and opens each case's WebSocket as a new stream
//!   of it; the runner checks its extended CONNECT and answers `200`.
//!
//! Each case's path is unique, so each side finds the other's end of it.
//! Each chunk is sent as DATA (split only as flow control and the frame
//! size require, as TCP may split a write); the runner's reader takes the
//! testee's DATA as it comes and returns the window at once. The testee
//! ending its stream is its closing the transport: `END_STREAM`, or
//! `RST_STREAM` with `CANCEL` (or `NO_ERROR`); any other reset, or the
//! stream ending with its connection, fails the case. The runner's EOF is
//! its `END_STREAM`. After every case the runner checks that the shared
//! connection is still up: a WebSocket's failure must end only its own
//! stream. The runner paces the chunks with the same [`Timing`] as over
//! TCP (`crate::pace`).

pub mod deflate;
mod peer;
mod runner;
mod testee;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use h2::RecvStream;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use sockeye::proto::extension::deflate::DeflateConfig;
use sockeye::{ServerBuilder, WebSocket};
use sockeye_proto::Role;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::{Handle, Runtime};

use crate::target::{Settings, Target, TargetFactory, Timing};
use crate::tcp::testee::{Ending, Session, echo, supervise};
use crate::tcp::{END_TIMEOUT, refusal};
use peer::{Peer, StreamEnd};
use runner::Health;
use testee::{ClientConnection, OPEN_TIMEOUT, Registry};

/// A deliberate fault of the testee, for proving that the runner catches
/// it over HTTP/2 (`tests/runner_catches_h2.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The echo application reads every message and sends none back.
    NoEcho,
    /// The testee client never ends its stream: its transport ignores the
    /// WebSocket's shutdown, and the WebSocket is kept for 3 s after its
    /// echo loop. (Client role only; as a server it is [`Fault::NoEcho`]'s
    /// healthy twin.)
    KeepsStreamOpen,
}

/// Both runtimes: the testee's and the runner's own (for its HTTP/2
/// connections), apart like two processes.
#[derive(Debug)]
pub(crate) struct Runtimes {
    testee: Option<Runtime>,
    runner: Option<Runtime>,
}

impl Runtimes {
    pub(crate) fn new(name: &str) -> std::io::Result<Runtimes> {
        let build = |name: String| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(name)
                .enable_all()
                .build()
        };
        Ok(Runtimes {
            testee: Some(build(format!("{name}-testee"))?),
            runner: Some(build(format!("{name}-runner"))?),
        })
    }

    pub(crate) fn testee(&self) -> &Runtime {
        self.testee.as_ref().expect("the runtime lives until drop")
    }

    pub(crate) fn runner(&self) -> &Handle {
        self.runner
            .as_ref()
            .expect("the runtime lives until drop")
            .handle()
    }
}

impl Drop for Runtimes {
    fn drop(&mut self) {
        // Cancels the servers, connections and any testee task left.
        for runtime in [self.testee.take(), self.runner.take()]
            .into_iter()
            .flatten()
        {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A unique path per case, `/conformance/{role}/{n}`.
pub(crate) fn case_path(counter: &AtomicUsize, role: Role) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let role = match role {
        Role::Server => "server",
        Role::Client => "client",
    };
    format!("/conformance/{role}/{n}")
}

/// A testee server for one [`Settings`] and the runner's client of it.
#[derive(Debug)]
struct EchoServer {
    sessions: Arc<Registry<Session>>,
    runner: runner::Client,
}

/// The testee client's side and the runner's server, made on first use.
#[derive(Debug)]
pub(crate) struct ClientSide {
    pub(crate) server: runner::Server,
    pub(crate) connection: Arc<ClientConnection>,
}

impl ClientSide {
    /// The one of `slot`, started on first use.
    pub(crate) fn get(
        slot: &Mutex<Option<Arc<ClientSide>>>,
        runtimes: &Runtimes,
    ) -> std::io::Result<Arc<ClientSide>> {
        let mut side = slot.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(side) = side.as_ref() {
            return Ok(Arc::clone(side));
        }
        let server = runner::Server::start(runtimes.runner())?;
        let connection = Arc::new(ClientConnection::new(server.addr));
        let made = Arc::new(ClientSide { server, connection });
        *side = Some(Arc::clone(&made));
        Ok(made)
    }

    /// How many connections the testee client made and streams it opened.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let connections = self.server.connections();
        let streams = connections.iter().map(|health| health.streams()).sum();
        (connections.len(), streams)
    }
}

/// Starts [`Target`]s on sockeye's server and client over HTTP/2 streams.
#[derive(Debug)]
pub struct H2 {
    runtimes: Runtimes,
    servers: Mutex<Vec<(Settings, Arc<EchoServer>)>>,
    client_side: Mutex<Option<Arc<ClientSide>>>,
    paths: AtomicUsize,
    timing: Timing,
    fault: Option<Fault>,
}

impl H2 {
    /// Starts the runtimes (the testee's and the runner's, two worker
    /// threads each).
    pub fn new(timing: Timing) -> std::io::Result<H2> {
        Ok(H2 {
            runtimes: Runtimes::new("sockeye-h2")?,
            servers: Mutex::new(Vec::new()),
            client_side: Mutex::new(None),
            paths: AtomicUsize::new(0),
            timing,
            fault: None,
        })
    }

    /// The same with a faulty testee, for the runner's self-test.
    pub fn with_fault(timing: Timing, fault: Fault) -> std::io::Result<H2> {
        Ok(H2 {
            fault: Some(fault),
            ..H2::new(timing)?
        })
    }

    /// The HTTP/2 connections the run used and the WebSockets (streams)
    /// each carried, for the summary: `(connections, streams)`.
    pub fn connections(&self) -> (usize, usize) {
        let servers = self
            .servers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (mut connections, mut streams) = (0, 0);
        for (_, server) in servers.iter() {
            connections += server.runner.connections();
            streams += server.runner.streams();
        }
        if let Some(side) = self
            .client_side
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .as_ref()
        {
            let (made, opened) = side.counts();
            connections += made;
            streams += opened;
        }
        (connections, streams)
    }

    /// The echo server for `settings`, started on first use.
    fn server(&self, settings: &Settings) -> std::io::Result<Arc<EchoServer>> {
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, server)) = servers.iter().find(|(known, _)| known == settings) {
            return Ok(Arc::clone(server));
        }
        let sessions = Arc::new(Registry::<Session>::default());
        let registry = Arc::clone(&sessions);
        let fault = self.fault;
        let on_socket: testee::OnServerSocket = Arc::new(move |mut ws, path| {
            let session = registry.entry(&path);
            Box::pin(async move {
                supervise(&Handle::current(), session, async move {
                    match fault {
                        Some(Fault::NoEcho) => Ending::Echoed(swallow(&mut ws).await),
                        _ => Ending::Echoed(echo(&mut ws).await),
                    }
                });
            })
        });
        let builder = ServerBuilder::new().config(settings.config());
        let addr = testee::start_server(self.runtimes.testee(), builder, on_socket)?;
        let server = Arc::new(EchoServer {
            sessions,
            runner: runner::Client::new(addr),
        });
        servers.push((settings.clone(), Arc::clone(&server)));
        Ok(server)
    }

    fn client_side(&self) -> std::io::Result<Arc<ClientSide>> {
        ClientSide::get(&self.client_side, &self.runtimes)
    }

    /// The testee is the server: open a stream to it as its client.
    fn connect_to_server(&self, settings: &Settings) -> Result<H2Target, String> {
        let server = self
            .server(settings)
            .map_err(|error| format!("could not start the echo server: {error}"))?;
        let path = case_path(&self.paths, Role::Server);
        let session = server.sessions.entry(&path);
        let opened = server
            .runner
            .open(self.runtimes.runner(), &path, None)
            .and_then(|opened| {
                check_response(&opened.response, opened.connect_protocol, false)?;
                Ok(opened)
            });
        match opened {
            Ok(opened) => {
                let (_, body) = opened.response.into_parts();
                let peer = Peer::new(self.runtimes.runner(), opened.send, body);
                let mut target = H2Target::new(peer, session, opened.health, self.timing);
                target.registered = Some((Arc::clone(&server.sessions), path));
                target.earlier.extend(opened.earlier_break);
                Ok(target)
            }
            Err(error) => {
                let ending = session.wait(END_TIMEOUT);
                server.sessions.forget(&path);
                Err(refusal("as the client", &error, ending))
            }
        }
    }

    /// The testee is the client: let it open a stream, answer its
    /// extended CONNECT.
    fn accept_client(&self, settings: &Settings) -> Result<H2Target, String> {
        let side = self
            .client_side()
            .map_err(|error| format!("could not listen: {error}"))?;
        let path = case_path(&self.paths, Role::Client);
        let session = start_client(
            self.runtimes.testee(),
            Arc::clone(&side.connection),
            path.clone(),
            settings.config(),
            self.fault,
        );
        let Some(arrived) = side.server.take(&path, OPEN_TIMEOUT) else {
            return Err(refusal(
                "as the server",
                "the client sent no extended CONNECT",
                session.wait(END_TIMEOUT),
            ));
        };
        let authority = side.server.addr.to_string();
        let (request, body) = arrived.request.into_parts();
        let request = Request::from_parts(request, ());
        let answered = check_request(&request, &body, &authority, &path).and_then(|_offer| {
            let mut respond = arrived.respond;
            respond
                .send_response(Response::new(()), false)
                .map_err(|error| format!("sending the 200 failed: {error}"))
        });
        match answered {
            Ok(send) => {
                let peer = Peer::new(self.runtimes.runner(), send, body);
                Ok(H2Target::new(peer, session, arrived.health, self.timing))
            }
            Err(error) => Err(refusal("as the server", &error, session.wait(END_TIMEOUT))),
        }
    }
}

impl TargetFactory for H2 {
    fn name(&self) -> &str {
        if self.fault.is_some() {
            "sockeye server and client over HTTP/2 streams (faulty testee)"
        } else {
            "sockeye server and client over HTTP/2 streams (RFC 8441, cleartext prior knowledge)"
        }
    }

    fn start(&self, role: Role, settings: &Settings) -> Box<dyn Target> {
        let opened = match role {
            Role::Server => self.connect_to_server(settings),
            Role::Client => self.accept_client(settings),
        };
        match opened {
            Ok(target) => Box::new(target),
            Err(problem) => Box::new(Unopened(problem)),
        }
    }
}

/// The echo application of [`Fault::NoEcho`]: reads, sends nothing.
async fn swallow<S>(ws: &mut WebSocket<S>) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = ws.recv().await {
        if let Err(error) = message {
            return format!("recv returned an error: {error}");
        }
    }
    "recv returned None".into()
}

/// Starts the testee client on `path`, then its echo loop; its ending
/// goes to the returned session.
fn start_client(
    runtime: &Runtime,
    connection: Arc<ClientConnection>,
    path: String,
    config: sockeye::proto::Config,
    fault: Option<Fault>,
) -> Arc<Session> {
    let session = Arc::new(Session::default());
    supervise(runtime.handle(), Arc::clone(&session), async move {
        let deflate = DeflateConfig::new();
        if fault == Some(Fault::KeepsStreamOpen) {
            return match testee::open(&connection, &path, config, deflate, None).await {
                Ok((stream, engine)) => {
                    let mut ws = WebSocket::from_engine(Lingering(stream), engine, &[]);
                    let how = echo(&mut ws).await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ending::Echoed(how)
                }
                Err(error) => Ending::Refused(error),
            };
        }
        match testee::connect(&connection, &path, config, deflate, None).await {
            Ok(mut ws) => match fault {
                Some(Fault::NoEcho) => Ending::Echoed(swallow(&mut ws).await),
                _ => Ending::Echoed(echo(&mut ws).await),
            },
            Err(error) => Ending::Refused(error),
        }
    });
    session
}

/// [`Fault::KeepsStreamOpen`]'s transport: shutting down does nothing.
struct Lingering(sockeye::http2::H2Stream);

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The values of header `name`, as text.
pub(crate) fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        .collect()
}

/// Checks a testee server's answer to the runner's extended CONNECT:
/// `200` on a stream left open, SETTINGS_ENABLE_CONNECT_PROTOCOL
/// advertised, no `sec-websocket-accept` (RFC 8441 section 5), and no
/// extensions or subprotocol unless offered (`deflate`).
pub(crate) fn check_response(
    response: &Response<RecvStream>,
    connect_protocol: bool,
    deflate: bool,
) -> Result<(), String> {
    if response.status() != StatusCode::OK {
        return Err(format!("expected 200, got {}", response.status()));
    }
    if !connect_protocol {
        return Err("the testee did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL".into());
    }
    if response.body().is_end_stream() {
        return Err("the 200 ended the stream (END_STREAM on its HEADERS)".into());
    }
    let headers = response.headers();
    if headers.contains_key("sec-websocket-accept") {
        return Err("the 200 has sec-websocket-accept, which RFC 8441 does not use".into());
    }
    let mut unasked = vec!["sec-websocket-protocol"];
    if !deflate {
        unasked.push("sec-websocket-extensions");
    }
    for name in unasked {
        if headers.contains_key(name) {
            return Err(format!("the 200 has {name}, which was not offered"));
        }
    }
    Ok(())
}

/// Checks a testee client's extended CONNECT (RFC 8441 section 4 and 5):
/// `CONNECT` with `:protocol websocket`, `:scheme http`, `:authority` the
/// runner's, `:path` the case's, one `sec-websocket-version: 13`, no
/// `sec-websocket-key`, and a stream left open. Returns its
/// `sec-websocket-extensions` (`None`: none), fields joined.
pub(crate) fn check_request(
    request: &Request<()>,
    body: &RecvStream,
    authority: &str,
    path: &str,
) -> Result<Option<String>, String> {
    if request.method() != Method::CONNECT {
        return Err(format!("expected CONNECT, got {}", request.method()));
    }
    match request.extensions().get::<h2::ext::Protocol>() {
        Some(protocol) if protocol.as_str() == "websocket" => {}
        Some(protocol) => return Err(format!(":protocol is {:?}", protocol.as_str())),
        None => return Err("the CONNECT has no :protocol".into()),
    }
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(format!(":scheme is {:?}, expected http", uri.scheme_str()));
    }
    if uri.authority().map(|a| a.as_str()) != Some(authority) {
        return Err(format!(
            ":authority is {:?}, expected {authority:?}",
            uri.authority()
        ));
    }
    if uri.path() != path {
        return Err(format!(":path is {:?}, expected {path:?}", uri.path()));
    }
    let headers = request.headers();
    if values(headers, "sec-websocket-version") != ["13"] {
        return Err(format!(
            "sec-websocket-version is {:?}, expected one 13",
            values(headers, "sec-websocket-version")
        ));
    }
    if headers.contains_key("sec-websocket-key") {
        return Err("the CONNECT has sec-websocket-key, which RFC 8441 does not use".into());
    }
    if body.is_end_stream() {
        return Err("the CONNECT ended the stream (END_STREAM on its HEADERS)".into());
    }
    let extensions = values(headers, "sec-websocket-extensions");
    Ok((!extensions.is_empty()).then(|| extensions.join(", ")))
}

/// One case's stream to the testee.
#[derive(Debug)]
struct H2Target {
    peer: Option<Peer>,
    session: Arc<Session>,
    health: Arc<Health>,
    /// The server's registry entry, removed at the end.
    registered: Option<(Arc<Registry<Session>>, String)>,
    /// Problems found on opening that belong to no one else.
    earlier: Vec<String>,
    timing: Timing,
    ending: Option<Ending>,
}

impl H2Target {
    fn new(peer: Peer, session: Arc<Session>, health: Arc<Health>, timing: Timing) -> H2Target {
        H2Target {
            peer: Some(peer),
            session,
            health,
            registered: None,
            earlier: Vec::new(),
            timing,
            ending: None,
        }
    }

    fn peer(&mut self) -> &mut Peer {
        self.peer.as_mut().expect("the peer lives until drop")
    }

    fn ending(&mut self) -> Option<Ending> {
        if self.ending.is_none() {
            let closed = self.peer.as_ref().is_some_and(Peer::has_closed);
            let patience = if closed {
                END_TIMEOUT
            } else {
                Duration::from_millis(10)
            };
            self.ending = self.session.wait(patience);
        }
        self.ending.clone()
    }
}

impl Target for H2Target {
    fn deliver(&mut self, bytes: &[u8]) {
        self.peer().deliver(bytes);
    }

    fn deliver_eof(&mut self) {
        self.peer().deliver_eof();
    }

    fn collect(&mut self, out: &mut Vec<u8>) {
        self.peer().collect(out);
    }

    fn has_closed(&self) -> bool {
        self.peer.as_ref().is_some_and(Peer::has_closed)
    }

    fn timing(&self) -> Option<Timing> {
        Some(self.timing)
    }

    fn wait(&mut self, timeout: Duration) -> bool {
        self.peer().wait(timeout)
    }

    fn problems(&mut self) -> Vec<String> {
        let mut problems = std::mem::take(&mut self.earlier);
        match self.ending() {
            Some(Ending::Panicked(why)) => problems.push(format!("the testee panicked: {why}")),
            Some(Ending::Refused(why)) => {
                problems.push(format!("the testee's opening handshake failed: {why}"));
            }
            _ => {}
        }
        let peer = self.peer();
        problems.extend(peer.stalled().map(str::to_string));
        if let Some(end) = peer.end()
            && !end.acceptable()
        {
            problems.push(format!(
                "the testee's stream ended by {}, not END_STREAM or RST_STREAM (CANCEL)",
                end.describe()
            ));
        }
        if let Some(error) = self.health.error() {
            problems.push(format!(
                "the shared HTTP/2 connection {} ended with an error: {error}",
                self.health.number
            ));
        }
        problems
    }

    fn notes(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        match self.ending() {
            Some(Ending::Echoed(how)) => notes.push(format!("the testee's echo loop ended: {how}")),
            None => notes.push("the testee's echo loop was still running".into()),
            _ => {}
        }
        let peer = self.peer();
        if let Some(end) = peer.end()
            && *end != StreamEnd::Finished
        {
            notes.push(format!("the testee's stream ended by {}", end.describe()));
        }
        if let Some(error) = peer.write_failure() {
            notes.push(error.to_string());
        }
        notes
    }
}

impl Drop for H2Target {
    fn drop(&mut self) {
        // Resetting the runner's end of a stream still open ends the
        // testee's loop; waiting for it keeps one case's testee from
        // running into the next case.
        drop(self.peer.take());
        if self.ending.is_none() {
            let _ = self.session.wait(END_TIMEOUT);
        }
        if let Some((sessions, path)) = &self.registered {
            sessions.forget(path);
        }
    }
}

/// A stream that could not be opened: the case fails with why.
#[derive(Debug)]
struct Unopened(String);

impl Target for Unopened {
    fn deliver(&mut self, _: &[u8]) {}

    fn deliver_eof(&mut self) {}

    fn collect(&mut self, _: &mut Vec<u8>) {}

    fn has_closed(&self) -> bool {
        true
    }

    fn problems(&mut self) -> Vec<String> {
        vec![self.0.clone()]
    }
}
