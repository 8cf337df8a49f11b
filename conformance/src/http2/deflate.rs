//! The permessage-deflate cases (sections 12 and 13) over HTTP/2 streams:
//! sockeye's server (`ServerBuilder::deflate(...)`, one per distinct
//! policy and config) and client, each WebSocket a stream of a shared
//! connection as in [`super`]. The offer and the answer travel in the
//! extended CONNECT and its `200` (`sec-websocket-extensions`), checked
//! by the same rules as over HTTP/1.1 (`crate::deflate::run`).

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{Request, Response};
use sockeye::ServerBuilder;
use sockeye::proto::Config;
use sockeye::proto::extension::deflate::DeflateConfig;
use sockeye_proto::Role;
use tokio::runtime::Handle;

use super::peer::Peer;
use super::runner::{self, Health};
use super::testee::{self, OPEN_TIMEOUT, Registry};
use super::{ClientSide, Runtimes, case_path, check_request, check_response, values};
use crate::deflate::tcp::{Shared, echo, supervise};
use crate::deflate::testee::{
    DeflateTargets, HeadersHandshake, Read, Testee, TesteeReport, TesteeSetup,
};

/// A testee server for one policy and config, and the runner's client
/// of it.
#[derive(Debug)]
struct DeflateServer {
    reports: Arc<Registry<Shared>>,
    runner: runner::Client,
}

/// What tells testee servers apart: their policy and engine config.
type ServerKey = (DeflateConfig, Config);

/// Starts deflate testees on sockeye's server and client over HTTP/2.
#[derive(Debug)]
pub struct H2Deflate {
    runtimes: Runtimes,
    servers: Mutex<Vec<(ServerKey, Arc<DeflateServer>)>>,
    client_side: Mutex<Option<Arc<ClientSide>>>,
    paths: AtomicUsize,
}

impl H2Deflate {
    /// Starts the runtimes.
    pub fn new() -> std::io::Result<H2Deflate> {
        Ok(H2Deflate {
            runtimes: Runtimes::new("sockeye-h2-deflate")?,
            servers: Mutex::new(Vec::new()),
            client_side: Mutex::new(None),
            paths: AtomicUsize::new(0),
        })
    }

    /// The HTTP/2 connections used and the WebSockets they carried:
    /// `(connections, streams)`.
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

    fn server(&self, setup: &TesteeSetup) -> Result<Arc<DeflateServer>, String> {
        let key = (setup.policy, setup.config.clone());
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, server)) = servers.iter().find(|(known, _)| *known == key) {
            return Ok(Arc::clone(server));
        }
        let reports = Arc::new(Registry::<Shared>::default());
        let registry = Arc::clone(&reports);
        let on_socket: testee::OnServerSocket = Arc::new(move |mut ws, path| {
            let shared = registry.entry(&path);
            Box::pin(async move {
                let task_shared = Arc::clone(&shared);
                supervise(&Handle::current(), shared, async move {
                    echo(&mut ws, &task_shared).await;
                });
            })
        });
        let builder = ServerBuilder::new()
            .deflate(setup.policy)
            .config(setup.config.clone());
        let addr = testee::start_server(self.runtimes.testee(), builder, on_socket)
            .map_err(|error| format!("could not start the testee server: {error}"))?;
        let server = Arc::new(DeflateServer {
            reports,
            runner: runner::Client::new(addr),
        });
        servers.push((key, Arc::clone(&server)));
        Ok(server)
    }
}

impl DeflateTargets for H2Deflate {
    fn name(&self) -> &str {
        "sockeye ServerBuilder/client deflate over HTTP/2 streams (RFC 8441)"
    }

    fn start(&self, role: Role, setup: &TesteeSetup) -> Result<Box<dyn Testee>, String> {
        let runner = self.runtimes.runner().clone();
        let path = case_path(&self.paths, role);
        let mut registered = None;
        let (stage, shared) = match role {
            Role::Server => {
                let server = self.server(setup)?;
                let shared = server.reports.entry(&path);
                registered = Some(Arc::clone(&server.reports));
                (Stage::Connect(server), shared)
            }
            Role::Client => {
                let side = ClientSide::get(&self.client_side, &self.runtimes)
                    .map_err(|error| format!("could not listen: {error}"))?;
                let shared = Arc::new(Shared::default());
                let task_shared = Arc::clone(&shared);
                let connection = Arc::clone(&side.connection);
                let (config, policy) = (setup.config.clone(), setup.policy);
                let header = setup.extensions_header.clone();
                let task_path = path.clone();
                supervise(
                    self.runtimes.testee().handle(),
                    Arc::clone(&shared),
                    async move {
                        let opened = testee::connect(
                            &connection,
                            &task_path,
                            config,
                            policy,
                            header.as_deref(),
                        )
                        .await;
                        match opened {
                            Ok(mut ws) => echo(&mut ws, &task_shared).await,
                            Err(error) => task_shared
                                .lock()
                                .problems
                                .push(format!("the testee client's handshake failed: {error}")),
                        }
                    },
                );
                (Stage::Accept(side), shared)
            }
        };
        Ok(Box::new(H2Testee {
            runner,
            path,
            stage,
            peer: None,
            health: None,
            shared,
            registered,
            problems: Vec::new(),
        }))
    }
}

/// Where one testee stands in its opening handshake.
enum Stage {
    /// Testee as server: the runner has yet to send its CONNECT.
    Connect(Arc<DeflateServer>),
    /// Testee as client: the runner has yet to read its CONNECT.
    Accept(Arc<ClientSide>),
    /// Testee as client: the runner read it, and answers next.
    Answer(SendResponse<Bytes>, RecvStream),
    /// Open, or failed.
    Done,
}

/// One deflate case's stream.
struct H2Testee {
    runner: Handle,
    path: String,
    stage: Stage,
    peer: Option<Peer>,
    health: Option<Arc<Health>>,
    shared: Arc<Shared>,
    /// The testee server's registry, whose entry goes at the end.
    registered: Option<Arc<Registry<Shared>>>,
    problems: Vec<String>,
}

impl HeadersHandshake for H2Testee {
    fn connect(&mut self, offer: &str) -> Result<Option<String>, String> {
        let Stage::Connect(server) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Err("the runner connects only to a testee server".into());
        };
        let opened = server.runner.open(&self.runner, &self.path, Some(offer))?;
        self.problems.extend(opened.earlier_break.clone());
        self.health = Some(Arc::clone(&opened.health));
        check_response(&opened.response, opened.connect_protocol, true)?;
        let answer = values(opened.response.headers(), "sec-websocket-extensions");
        let (_, body) = opened.response.into_parts();
        self.peer = Some(Peer::new(&self.runner, opened.send, body));
        Ok((!answer.is_empty()).then(|| answer.join(", ")))
    }

    fn request(&mut self) -> Result<Option<String>, String> {
        let Stage::Accept(side) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Err("the runner reads requests only from a testee client".into());
        };
        let Some(arrived) = side.server.take(&self.path, OPEN_TIMEOUT) else {
            let why = self.shared.lock().problems.join("; ");
            return Err(format!("the testee client sent no extended CONNECT. {why}"));
        };
        self.health = Some(Arc::clone(&arrived.health));
        let (parts, body) = arrived.request.into_parts();
        let request = Request::from_parts(parts, ());
        let offer = check_request(&request, &body, &side.server.addr.to_string(), &self.path)?;
        self.stage = Stage::Answer(arrived.respond, body);
        Ok(offer)
    }

    fn respond(&mut self, answer: &str) -> Result<(), String> {
        let Stage::Answer(mut respond, body) = std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return Err("no request to answer".into());
        };
        let response = Response::builder()
            .header("sec-websocket-extensions", answer)
            .body(())
            .map_err(|error| format!("the 200 did not build: {error}"))?;
        let send = respond
            .send_response(response, false)
            .map_err(|error| format!("sending the 200 failed: {error}"))?;
        self.peer = Some(Peer::new(&self.runner, send, body));
        Ok(())
    }
}

impl Testee for H2Testee {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.peer {
            Some(peer) => peer.send(bytes),
            None => Err("no stream is open".into()),
        }
    }

    fn read(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Read {
        let Some(peer) = &mut self.peer else {
            return Read::Eof;
        };
        let before = out.len();
        peer.collect(out);
        if out.len() == before && !peer.has_closed() {
            peer.wait(timeout);
            peer.collect(out);
        }
        if out.len() > before {
            Read::Data
        } else if peer.has_closed() {
            Read::Eof
        } else {
            Read::Idle
        }
    }

    fn shutdown(&mut self) {
        if let Some(peer) = &mut self.peer {
            peer.deliver_eof();
        }
    }

    fn synchronous(&self) -> bool {
        false
    }

    fn finish(&mut self) -> TesteeReport {
        let mut problems = std::mem::take(&mut self.problems);
        if let Some(end) = self.peer.as_ref().and_then(Peer::end)
            && !end.acceptable()
        {
            problems.push(format!(
                "the testee's stream ended by {}, not END_STREAM or RST_STREAM (CANCEL)",
                end.describe()
            ));
        }
        // Resets the stream if it is still open, which ends the testee.
        drop(self.peer.take());
        drop(std::mem::replace(&mut self.stage, Stage::Done));
        let mut report = self.shared.report();
        if let Some(health) = &self.health
            && let Some(error) = health.error()
        {
            problems.push(format!(
                "the shared HTTP/2 connection {} ended with an error: {error}",
                health.number
            ));
        }
        report.problems.extend(problems);
        report
    }

    fn headers(&mut self) -> Option<&mut dyn HeadersHandshake> {
        Some(self)
    }
}

impl Drop for H2Testee {
    fn drop(&mut self) {
        if let Some(reports) = &self.registered {
            reports.forget(&self.path);
        }
    }
}
