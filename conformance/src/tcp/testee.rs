//! The testee: sockeye's tokio server and client, each running the same
//! echo loop, on a runtime the runner owns. (The event-loop server's echo
//! handler, `super::event_loop`, records into the same sessions.)

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sockeye::proto::Config;
use sockeye::{ClientBuilder, ServerBuilder, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// How one testee connection went, from inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The echo loop ran and ended this way (`recv` returned `None`, an
    /// error, or a `send` failed).
    Echoed(String),
    /// It never got to the echo loop: the opening handshake failed.
    Refused(String),
    /// Its task panicked.
    Panicked(String),
    /// The connection ended, but the front-end failed the echo
    /// application on the way: it refused to queue an echo (the event
    /// loop's `Socket::send` answered `Dropped`).
    Failed(String),
}

/// One testee connection's [`Ending`], once known.
#[derive(Debug, Default)]
pub(crate) struct Session {
    ending: Mutex<Option<Ending>>,
    ended: Condvar,
}

impl Session {
    /// Records how the connection ended and wakes the runner.
    pub(crate) fn finish(&self, ending: Ending) {
        *self.lock() = Some(ending);
        self.ended.notify_all();
    }

    /// Waits up to `timeout` for the connection to end.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Ending> {
        let (ending, _) = self
            .ended
            .wait_timeout_while(self.lock(), timeout, |ending| ending.is_none())
            .unwrap_or_else(|poison| poison.into_inner());
        ending.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Ending>> {
        self.ending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The echo application: every message goes back as it came.
pub(crate) async fn echo<S>(ws: &mut WebSocket<S>) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = ws.recv().await {
        match message {
            Ok(message) => {
                if let Err(error) = ws.send(message).await {
                    return format!("send failed: {error}");
                }
            }
            Err(error) => return format!("recv returned an error: {error}"),
        }
    }
    "recv returned None".into()
}

/// Runs `work` as its own task, so that a panic is caught and recorded.
pub(crate) fn supervise<F>(runtime: &tokio::runtime::Handle, session: Arc<Session>, work: F)
where
    F: Future<Output = Ending> + Send + 'static,
{
    let task = runtime.spawn(work);
    runtime.spawn(async move {
        let ending = match task.await {
            Ok(ending) => ending,
            Err(error) if error.is_panic() => {
                let payload = error.into_panic();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-text panic".into());
                Ending::Panicked(text)
            }
            Err(_) => Ending::Panicked("the task was cancelled".into()),
        };
        session.finish(ending);
    });
}

/// The sessions of a server, by the runner's address.
pub(crate) type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Finds (or makes) the session of the connection from `peer`: the runner
/// and the server each look it up, whichever comes first.
pub(crate) fn session(sessions: &Sessions, peer: SocketAddr) -> Arc<Session> {
    let mut map = sessions.lock().unwrap_or_else(|poison| poison.into_inner());
    Arc::clone(map.entry(peer).or_default())
}

/// Forgets the session of `peer`.
pub(crate) fn forget(sessions: &Sessions, peer: SocketAddr) {
    sessions
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .remove(&peer);
}

/// A running echo server with one config.
#[derive(Debug)]
pub(crate) struct Server {
    /// Where it listens (on 127.0.0.1).
    pub(crate) addr: SocketAddr,
    /// Its connections, by the runner's address.
    pub(crate) sessions: Sessions,
}

impl Server {
    /// Starts an echo server on an ephemeral port of 127.0.0.1: each
    /// connection is accepted by `ServerBuilder::accept_tcp` with `config`
    /// and then echoed. It runs until the runtime shuts down.
    pub(crate) fn start(runtime: &Runtime, config: Config) -> std::io::Result<Server> {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let sessions = Sessions::default();
        let server = ServerBuilder::new().config(config);
        let handle = runtime.handle().clone();
        let registry = Arc::clone(&sessions);
        runtime.spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors, say: try again shortly.
                        eprintln!("conformance echo server: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let server = server.clone();
                supervise(&handle, session(&registry, peer), async move {
                    match server.accept_tcp(tcp).await {
                        Ok(mut ws) => Ending::Echoed(echo(&mut ws).await),
                        Err(error) => Ending::Refused(error.to_string()),
                    }
                });
            }
        });
        Ok(Server { addr, sessions })
    }
}

/// Starts a client connecting to `url` with `config`, then echoing; its
/// ending goes to the returned session.
pub(crate) fn start_client(runtime: &Runtime, url: String, config: Config) -> Arc<Session> {
    let session = Arc::new(Session::default());
    supervise(runtime.handle(), Arc::clone(&session), async move {
        match ClientBuilder::new(&url).config(config).connect().await {
            Ok((mut ws, _response)) => Ending::Echoed(echo(&mut ws).await),
            Err(error) => Ending::Refused(error.to_string()),
        }
    });
    session
}
