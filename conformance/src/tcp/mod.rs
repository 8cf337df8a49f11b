//! The cases against sockeye's front-ends over loopback TCP: the tokio
//! server (`ServerBuilder::accept_tcp`) and client
//! (`ClientBuilder::connect`), each running an echo loop, or the
//! event-loop server (`sockeye::event_loop`) running an echo `Handler`
//! ([`FrontEnd`]).
//!
//! - Testee as server: a sockeye echo server listens on an ephemeral port
//!   of 127.0.0.1 (one per distinct [`Settings`], kept for the run); the
//!   runner connects, performs the client's opening handshake itself
//!   (`upgrade`) and plays the case over the socket.
//! - Testee as client: the runner listens on an ephemeral port, the
//!   sockeye client connects to it, the runner answers its handshake and
//!   plays the case.
//!
//! Each chunk is one `write` with `TCP_NODELAY`; a reader thread gathers
//! the testee's output (`peer`). The runner paces the chunks with the
//! [`Timing`] given here (see `crate::pace`). Everything listens on and
//! connects to 127.0.0.1 only, every wait is bounded, and the runtime with
//! every testee task, or every event loop, stops when the [`Tcp`] factory
//! is dropped.

#[cfg(test)]
mod catches;
pub(crate) mod event_loop;
mod peer;
pub(crate) mod testee;
mod upgrade;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockeye_proto::Role;
use tokio::runtime::Runtime;

use crate::target::{Settings, Target, TargetFactory, Timing};
use crate::wire::Rng;
use peer::Peer;
use testee::{Ending, Server, Session, Sessions};

/// How long connecting and the opening handshake may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the runner waits, once the testee has closed the transport,
/// for its task to end (and for a panic to be reported).
pub(crate) const END_TIMEOUT: Duration = Duration::from_secs(2);

/// Which of sockeye's front-ends a [`Tcp`] factory runs the cases
/// against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrontEnd {
    /// The tokio server (`ServerBuilder::accept_tcp`, a task per
    /// connection) and the tokio client: both roles.
    #[default]
    Tokio,
    /// The event-loop server (`sockeye::event_loop::EventLoop`, an echo
    /// `Handler` on two loops): the server role only, as it has no client
    /// (a client-role case fails, saying so).
    EventLoop,
}

/// Starts [`Target`]s on sockeye's tokio server and client, or its
/// event-loop server, over loopback TCP.
#[derive(Debug)]
pub struct Tcp {
    front_end: FrontEnd,
    /// The tokio front-end's runtime (none for the event loop).
    runtime: Option<Runtime>,
    servers: Mutex<Vec<(Settings, Arc<Server>)>>,
    /// The event-loop servers, stopped with the factory.
    loops: Mutex<Vec<sockeye::event_loop::Running>>,
    timing: Timing,
}

impl Tcp {
    /// The default pacing: 25 ms of quiet before a chunk that may be
    /// answered by a Close, 2 s of patience for a reaction that is due.
    pub const TIMING: Timing = Timing {
        quiet: Duration::from_millis(25),
        patience: Duration::from_secs(2),
    };

    /// The tokio front-end: starts the testee's runtime (two worker
    /// threads).
    pub fn new(timing: Timing) -> io::Result<Tcp> {
        Tcp::with_front_end(FrontEnd::Tokio, timing)
    }

    /// The given front-end: for [`FrontEnd::Tokio`], starts the testee's
    /// runtime (two worker threads); the event-loop servers start on first
    /// use, one per distinct [`Settings`].
    pub fn with_front_end(front_end: FrontEnd, timing: Timing) -> io::Result<Tcp> {
        let runtime = match front_end {
            FrontEnd::Tokio => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("sockeye-testee")
                    .enable_all()
                    .build()?,
            ),
            FrontEnd::EventLoop => None,
        };
        Ok(Tcp {
            front_end,
            runtime,
            servers: Mutex::new(Vec::new()),
            loops: Mutex::new(Vec::new()),
            timing,
        })
    }

    /// Stops the testee: every event loop (waiting for its threads) and
    /// the runtime. An error if an event loop failed or panicked, or did
    /// not stop in time. Dropping the factory stops it too, silently.
    pub fn stop(&mut self) -> Result<(), String> {
        let loops = std::mem::take(
            &mut *self
                .loops
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        let failures: Vec<String> = loops
            .into_iter()
            .filter_map(|running| event_loop::stop(running).err())
            .collect();
        if let Some(runtime) = self.runtime.take() {
            // Cancels the servers' accept loops and any testee task left.
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the tokio front-end has its runtime until stopped")
    }

    /// The echo server for `settings`, started on first use.
    fn server(&self, settings: &Settings) -> io::Result<Arc<Server>> {
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, server)) = servers.iter().find(|(known, _)| known == settings) {
            return Ok(Arc::clone(server));
        }
        let server = match self.front_end {
            FrontEnd::Tokio => Arc::new(Server::start(self.runtime(), settings.config())?),
            FrontEnd::EventLoop => {
                let (server, running) = event_loop::start(settings.config())?;
                self.loops
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push(running);
                Arc::new(server)
            }
        };
        servers.push((settings.clone(), Arc::clone(&server)));
        Ok(server)
    }

    /// The testee is the server: connect and handshake as its client.
    fn connect_to_server(&self, settings: &Settings) -> Result<TcpTarget, String> {
        let server = self
            .server(settings)
            .map_err(|error| format!("could not start the echo server: {error}"))?;
        let mut stream = TcpStream::connect_timeout(&server.addr, OPEN_TIMEOUT)
            .map_err(|error| format!("could not connect to the echo server: {error}"))?;
        let local = stream.local_addr().map_err(|error| error.to_string())?;
        let session = testee::session(&server.sessions, local);
        let registered = (Arc::clone(&server.sessions), local);
        let mut rng = Rng::from_str_seed(&local.to_string());
        let opened = upgrade::as_client(&mut stream, &server.addr.to_string(), &mut rng)
            .and_then(|leftover| Peer::new(stream, leftover).map_err(|error| error.to_string()));
        match opened {
            Ok(peer) => Ok(TcpTarget::new(peer, session, Some(registered), self.timing)),
            Err(error) => {
                let ending = session.wait(END_TIMEOUT);
                testee::forget(&registered.0, local);
                Err(refusal("as the client", &error, ending))
            }
        }
    }

    /// The testee is the client: listen, let it connect, answer its
    /// handshake.
    fn accept_client(&self, settings: &Settings) -> Result<TcpTarget, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|error| format!("could not listen: {error}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let url = format!("ws://127.0.0.1:{port}/conformance");
        let session = testee::start_client(self.runtime(), url, settings.config());
        let started = Instant::now();
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if started.elapsed() > OPEN_TIMEOUT {
                        return Err(refusal(
                            "as the server",
                            "the client did not connect",
                            session.wait(Duration::ZERO),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(error) => return Err(format!("accept failed: {error}")),
            }
        };
        let opened = stream
            .set_nonblocking(false)
            .map_err(|error| error.to_string())
            .and_then(|()| upgrade::as_server(&mut stream))
            .and_then(|()| Peer::new(stream, Vec::new()).map_err(|error| error.to_string()));
        match opened {
            Ok(peer) => Ok(TcpTarget::new(peer, session, None, self.timing)),
            Err(error) => Err(refusal("as the server", &error, session.wait(END_TIMEOUT))),
        }
    }
}

/// Why a connection could not be opened, with the testee's side of it.
pub(crate) fn refusal(runner_role: &str, error: &str, ending: Option<Ending>) -> String {
    let testee = match ending {
        Some(Ending::Refused(why)) => format!("; the testee said: {why}"),
        Some(Ending::Panicked(why)) => format!("; the testee panicked: {why}"),
        Some(Ending::Echoed(how)) => format!("; the testee's echo loop ended: {how}"),
        Some(Ending::Failed(why)) => format!("; the testee failed its echo application: {why}"),
        None => String::new(),
    };
    format!("the opening handshake failed (the runner {runner_role}): {error}{testee}")
}

impl Drop for Tcp {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl TargetFactory for Tcp {
    fn name(&self) -> &str {
        match self.front_end {
            FrontEnd::Tokio => "sockeye tokio server and client (loopback TCP)",
            FrontEnd::EventLoop => "sockeye event-loop server (loopback TCP)",
        }
    }

    fn start(&self, role: Role, settings: &Settings) -> Box<dyn Target> {
        let opened = match (role, self.front_end) {
            (Role::Server, _) => self.connect_to_server(settings),
            (Role::Client, FrontEnd::Tokio) => self.accept_client(settings),
            (Role::Client, FrontEnd::EventLoop) => {
                Err("the event loop is a server only: no client-role cases".into())
            }
        };
        match opened {
            Ok(target) => Box::new(target),
            Err(problem) => Box::new(Unopened(problem)),
        }
    }
}

/// One case's connection to the tokio testee.
#[derive(Debug)]
struct TcpTarget {
    peer: Option<Peer>,
    session: Arc<Session>,
    /// The server's registry entry, removed at the end.
    registered: Option<(Sessions, SocketAddr)>,
    timing: Timing,
    ending: Option<Ending>,
}

impl TcpTarget {
    fn new(
        peer: Peer,
        session: Arc<Session>,
        registered: Option<(Sessions, SocketAddr)>,
        timing: Timing,
    ) -> TcpTarget {
        TcpTarget {
            peer: Some(peer),
            session,
            registered,
            timing,
            ending: None,
        }
    }

    fn peer(&mut self) -> &mut Peer {
        self.peer.as_mut().expect("the peer lives until drop")
    }

    fn ending(&mut self) -> Option<Ending> {
        if self.ending.is_none() {
            // A testee that closed the transport ends at once; one that did
            // not has failed its case already.
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

impl Target for TcpTarget {
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
        let mut problems = Vec::new();
        match self.ending() {
            Some(Ending::Panicked(why)) => problems.push(format!("the testee panicked: {why}")),
            Some(Ending::Refused(why)) => {
                problems.push(format!("the testee's opening handshake failed: {why}"));
            }
            Some(Ending::Failed(why)) => {
                problems.push(format!("the testee failed its echo application: {why}"));
            }
            _ => {}
        }
        problems.extend(self.peer().stalled().map(str::to_string));
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
        if let Some(error) = peer.close_error() {
            notes.push(format!(
                "the testee's transport ended with an error: {error}"
            ));
        }
        if let Some(error) = peer.write_failure() {
            notes.push(error.to_string());
        }
        notes
    }
}

impl Drop for TcpTarget {
    fn drop(&mut self) {
        // Closing the runner's end ends the testee's loop; waiting for it
        // keeps one case's testee from running into the next case.
        drop(self.peer.take());
        if self.ending.is_none() {
            let _ = self.session.wait(END_TIMEOUT);
        }
        if let Some((sessions, peer)) = &self.registered {
            testee::forget(sessions, *peer);
        }
    }
}

/// A connection that could not be opened: the case fails with why.
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
