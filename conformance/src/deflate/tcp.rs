//! The deflate cases against sockeye's front-ends over loopback TCP:
//! `ServerBuilder::deflate(...).accept_tcp` and
//! `ClientBuilder::deflate(...).connect`, each echoing, or the event-loop
//! server with `ServerBuilder::deflate(...)` and an echo `Handler`
//! (`super::event_loop`; [`FrontEnd`]). The runner speaks
//! raw bytes on its socket (its own handshake, see `super::handshake`); a
//! reader thread gathers what the testee writes. Everything listens on
//! and connects to 127.0.0.1 only, every wait is bounded, and the runtime
//! stops when [`Tcp`] is dropped (each case's event loop when the case
//! ends).

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sockeye::proto::extension::deflate::DeflateParams;
use sockeye::{ClientBuilder, ServerBuilder, WebSocket};
use sockeye_proto::Role;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Runtime;

use super::event_loop;
use super::testee::{DeflateTargets, Read, Testee, TesteeEnding, TesteeReport, TesteeSetup};
pub use crate::tcp::FrontEnd;

/// How long connecting and the opening handshake may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the runner waits for the testee's task to end.
const END_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts testees on sockeye's tokio server and client, or its event-loop
/// server, over loopback TCP.
#[derive(Debug)]
pub struct Tcp {
    front_end: FrontEnd,
    /// The tokio front-end's runtime (none for the event loop).
    runtime: Option<Runtime>,
}

impl Tcp {
    /// The tokio front-end: starts the testee's runtime (two worker
    /// threads).
    pub fn new() -> io::Result<Tcp> {
        Tcp::with_front_end(FrontEnd::Tokio)
    }

    /// The given front-end: for [`FrontEnd::Tokio`], starts the testee's
    /// runtime (two worker threads); for [`FrontEnd::EventLoop`], each
    /// case starts an event-loop server of its own (the server role only:
    /// a client-role case fails, saying so).
    pub fn with_front_end(front_end: FrontEnd) -> io::Result<Tcp> {
        let runtime = match front_end {
            FrontEnd::Tokio => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("sockeye-deflate-testee")
                    .enable_all()
                    .build()?,
            ),
            FrontEnd::EventLoop => None,
        };
        Ok(Tcp { front_end, runtime })
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the tokio front-end has its runtime until drop")
    }
}

impl Drop for Tcp {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// What the testee's task reports.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The engine's `deflate_params()`, once open.
    pub(crate) params: Option<Option<DeflateParams>>,
    /// How the engine said the connection ended.
    pub(crate) ending: Option<TesteeEnding>,
    /// What went wrong besides the wire.
    pub(crate) problems: Vec<String>,
    finished: bool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The testee's connection is over: [`report`](Self::report) need
    /// wait no longer.
    pub(crate) fn finish(&self) {
        self.lock().finished = true;
        self.finished.notify_all();
    }

    /// Waits for the testee's task to end, then says what it saw.
    pub(crate) fn report(&self) -> TesteeReport {
        let state = self.lock();
        let (mut state, _) = self
            .finished
            .wait_timeout_while(state, END_TIMEOUT, |state| !state.finished)
            .unwrap_or_else(|poison| poison.into_inner());
        let mut problems = std::mem::take(&mut state.problems);
        if !state.finished {
            problems.push(format!(
                "the testee's task was still running {} s after the case",
                END_TIMEOUT.as_secs()
            ));
        }
        TesteeReport {
            params: state.params,
            ending: state.ending.clone(),
            problems,
        }
    }
}

/// Echoes until the connection ends; records how.
pub(crate) async fn echo<S>(ws: &mut WebSocket<S>, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    shared.lock().params = Some(ws.connection().deflate_params());
    let mut failure = None;
    while let Some(message) = ws.recv().await {
        match message {
            Ok(message) => {
                if let Err(error) = ws.send(message).await {
                    failure = Some(format!("send failed: {error}"));
                    break;
                }
            }
            Err(error) => {
                failure = Some(format!("recv returned an error: {error}"));
                break;
            }
        }
    }
    let mut state = shared.lock();
    state.ending = ws.closed().map(TesteeEnding::from_closed);
    if let Some(failure) = failure {
        match &mut state.ending {
            Some(ending) => {
                ending.clean = false;
                ending.detail = format!("{failure}; {}", ending.detail);
            }
            None => state
                .problems
                .push(format!("the echo loop ended: {failure}")),
        }
    }
}

/// Runs `work` as a task; a panic is recorded, and the end signalled.
pub(crate) fn supervise<F>(runtime: &tokio::runtime::Handle, shared: Arc<Shared>, work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let task = runtime.spawn(work);
    runtime.spawn(async move {
        if let Err(error) = task.await {
            let why = if error.is_panic() {
                let payload = error.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-text panic".into())
            } else {
                "cancelled".into()
            };
            shared
                .lock()
                .problems
                .push(format!("the testee's task panicked: {why}"));
        }
        shared.finish();
    });
}

impl DeflateTargets for Tcp {
    fn name(&self) -> &str {
        match self.front_end {
            FrontEnd::Tokio => "sockeye tokio ServerBuilder/ClientBuilder::deflate (loopback TCP)",
            FrontEnd::EventLoop => {
                "sockeye event-loop server with ServerBuilder::deflate (loopback TCP)"
            }
        }
    }

    fn start(&self, role: Role, setup: &TesteeSetup) -> Result<Box<dyn Testee>, String> {
        let shared = Arc::new(Shared::default());
        let mut server = None;
        let stream = match (role, self.front_end) {
            (Role::Server, FrontEnd::Tokio) => self.start_server(setup, Arc::clone(&shared))?,
            (Role::Client, FrontEnd::Tokio) => self.start_client(setup, Arc::clone(&shared))?,
            (Role::Server, FrontEnd::EventLoop) => {
                let (stream, running) = event_loop::start(setup, Arc::clone(&shared))?;
                server = Some(running);
                stream
            }
            (Role::Client, FrontEnd::EventLoop) => {
                return Err("the event loop is a server only: no client-role cases".into());
            }
        };
        let mut testee = TcpTestee::new(stream, shared).map_err(|e| e.to_string())?;
        testee.server = server;
        Ok(Box::new(testee))
    }
}

impl Tcp {
    /// A sockeye server accepting one connection; the runner connects.
    fn start_server(&self, setup: &TesteeSetup, shared: Arc<Shared>) -> Result<TcpStream, String> {
        let listener = self
            .runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|error| format!("could not listen: {error}"))?;
        let addr = listener.local_addr().map_err(|error| error.to_string())?;
        let server = ServerBuilder::new()
            .deflate(setup.policy)
            .config(setup.config.clone());
        let task_shared = Arc::clone(&shared);
        supervise(self.runtime().handle(), shared, async move {
            let accepted = tokio::time::timeout(OPEN_TIMEOUT, listener.accept()).await;
            let tcp = match accepted {
                Ok(Ok((tcp, _))) => tcp,
                Ok(Err(error)) => {
                    task_shared
                        .lock()
                        .problems
                        .push(format!("accept failed: {error}"));
                    return;
                }
                Err(_) => {
                    task_shared
                        .lock()
                        .problems
                        .push("the runner never connected".into());
                    return;
                }
            };
            match server.accept_tcp(tcp).await {
                Ok(mut ws) => echo(&mut ws, &task_shared).await,
                Err(error) => task_shared
                    .lock()
                    .problems
                    .push(format!("the testee server's handshake failed: {error}")),
            }
        });
        let stream = TcpStream::connect_timeout(&addr, OPEN_TIMEOUT)
            .map_err(|error| format!("could not connect to the testee server: {error}"))?;
        Ok(stream)
    }

    /// A sockeye client connecting to the runner's listener.
    fn start_client(&self, setup: &TesteeSetup, shared: Arc<Shared>) -> Result<TcpStream, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|error| format!("could not listen: {error}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let mut client = ClientBuilder::new(&format!("ws://127.0.0.1:{port}/deflate"))
            .deflate(setup.policy)
            .config(setup.config.clone())
            .no_proxy()
            .open_timeout(OPEN_TIMEOUT);
        if let Some(header) = &setup.extensions_header {
            client = client.extensions_header(header);
        }
        let task_shared = Arc::clone(&shared);
        supervise(self.runtime().handle(), Arc::clone(&shared), async move {
            match client.connect().await {
                Ok((mut ws, _response)) => echo(&mut ws, &task_shared).await,
                Err(error) => task_shared
                    .lock()
                    .problems
                    .push(format!("the testee client's handshake failed: {error}")),
            }
        });
        let started = Instant::now();
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                    return Ok(stream);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if started.elapsed() > OPEN_TIMEOUT {
                        let problems = shared.lock().problems.join("; ");
                        return Err(format!("the testee client did not connect. {problems}"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(error) => return Err(format!("accept failed: {error}")),
            }
        }
    }
}

/// What the reader thread gathered.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    eof: bool,
}

#[derive(Debug, Default)]
struct Incoming {
    inbox: Mutex<Inbox>,
    arrived: Condvar,
}

impl Incoming {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The runner's socket to one testee connection.
pub(crate) struct TcpTestee {
    stream: TcpStream,
    incoming: Arc<Incoming>,
    reader: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// The case's event-loop server, stopped when the case ends.
    pub(crate) server: Option<sockeye::event_loop::Running>,
}

impl TcpTestee {
    pub(crate) fn new(stream: TcpStream, shared: Arc<Shared>) -> io::Result<TcpTestee> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let mut reading = stream.try_clone()?;
        let incoming = Arc::new(Incoming::default());
        let sink = Arc::clone(&incoming);
        let reader = std::thread::Builder::new()
            .name("deflate-runner-reader".into())
            .spawn(move || {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let read = reading.read(&mut buffer);
                    let mut inbox = sink.lock();
                    match read {
                        Ok(0) | Err(_) => {
                            inbox.eof = true;
                            sink.arrived.notify_all();
                            return;
                        }
                        Ok(count) => inbox.bytes.extend_from_slice(&buffer[..count]),
                    }
                    sink.arrived.notify_all();
                }
            })?;
        Ok(TcpTestee {
            stream,
            incoming,
            reader: Some(reader),
            shared,
            server: None,
        })
    }
}

impl Testee for TcpTestee {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|error| format!("write failed: {error}"))
    }

    fn read(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Read {
        let inbox = self.incoming.lock();
        let (mut inbox, _) = self
            .incoming
            .arrived
            .wait_timeout_while(inbox, timeout, |inbox| inbox.bytes.is_empty() && !inbox.eof)
            .unwrap_or_else(|poison| poison.into_inner());
        if !inbox.bytes.is_empty() {
            if out.is_empty() {
                std::mem::swap(out, &mut inbox.bytes);
            } else {
                out.append(&mut inbox.bytes);
            }
            Read::Data
        } else if inbox.eof {
            Read::Eof
        } else {
            Read::Idle
        }
    }

    fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn synchronous(&self) -> bool {
        false
    }

    fn finish(&mut self) -> TesteeReport {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let mut report = self.shared.report();
        if let Some(server) = self.server.take()
            && let Err(error) = crate::tcp::event_loop::stop(server)
        {
            report.problems.push(error);
        }
        report
    }
}

impl Drop for TcpTestee {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some(server) = self.server.take() {
            let _ = crate::tcp::event_loop::stop(server);
        }
    }
}
