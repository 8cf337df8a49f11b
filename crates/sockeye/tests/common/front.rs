//! Which server front-end the server-side tests run against: the tokio
//! server (`ServerBuilder::accept`, one task per connection; the default)
//! or the event loop (`sockeye::event_loop`), chosen with the environment
//! variable `SOCKEYE_TEST_SERVER` (`tokio` or `event-loop`). `scripts/test`
//! runs the hostile-input suites once each way, with the same assertions.
//!
//! Tests of something only the tokio front-end has (its `send` futures,
//! split halves, the blocking or hyper front-ends, a client) return early
//! under `event-loop` through [`tokio_only`], saying why.
#![allow(dead_code)]

use std::net::SocketAddr;

use sockeye::Error;
use sockeye::proto::Closed;

/// The environment variable that picks the front-end.
pub const ENV: &str = "SOCKEYE_TEST_SERVER";

/// A server front-end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `ServerBuilder::accept` in a tokio task per connection.
    Tokio,
    /// `sockeye::event_loop::EventLoop`, one loop thread.
    EventLoop,
}

/// The front-end this run tests: `SOCKEYE_TEST_SERVER`, tokio when unset.
/// Any other value is a mistake in the command line, not a reason to
/// test the default silently.
pub fn front() -> Front {
    match std::env::var(ENV).as_deref() {
        Err(_) | Ok("") | Ok("tokio") => Front::Tokio,
        Ok("event-loop") if cfg!(feature = "event-loop") => Front::EventLoop,
        Ok("event-loop") => {
            panic!("{ENV}=event-loop, but sockeye was built without its `event-loop` feature")
        }
        Ok(other) => panic!("{ENV}={other:?}: expected `tokio` or `event-loop`"),
    }
}

/// For a test of what only the tokio front-end (or no server at all)
/// has: true, after printing why, when this run is against another
/// front-end; the test then returns without asserting anything.
pub fn tokio_only(test: &str, reason: &str) -> bool {
    if front() == Front::Tokio {
        return false;
    }
    eprintln!("{test}: skipped under {ENV}=event-loop: {reason}");
    true
}

/// How a connection to an event-loop test server ended, as its
/// `Handler` was told.
#[derive(Debug)]
pub enum LoopEnd {
    /// `Handler::refused`: the request was refused (with the status
    /// answered), timed out, or the client went away first.
    Refused { remote: SocketAddr, error: Error },
    /// `Handler::close`: an accepted connection ended so.
    Ended { remote: SocketAddr, closed: Closed },
}

impl LoopEnd {
    /// The client's address.
    pub fn remote(&self) -> SocketAddr {
        match self {
            LoopEnd::Refused { remote, .. } | LoopEnd::Ended { remote, .. } => *remote,
        }
    }
}

/// What `Handler::refused` lends, as an owned error (`io::Error` is not
/// `Clone`: its kind and text are kept).
pub fn owned_error(error: &Error) -> Error {
    match error {
        Error::Handshake(refusal) => Error::Handshake(refusal.clone()),
        Error::OpenTimeout => Error::OpenTimeout,
        Error::UnexpectedEof => Error::UnexpectedEof,
        Error::Io(error) => Error::Io(std::io::Error::new(error.kind(), error.to_string())),
        other => panic!("Handler::refused with an error it does not document: {other:?}"),
    }
}

/// Keeps a test's server running until dropped: a tokio accept task
/// (aborted then) or an event loop (stopped and joined then).
pub enum Serving {
    Tokio(tokio::task::JoinHandle<()>),
    EventLoop(LoopServer),
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Serving::Tokio(task) = self {
            task.abort();
        }
    }
}

#[cfg(feature = "event-loop")]
pub use self::event_loop::LoopServer;

/// Without the `event-loop` feature [`front`] never picks the event loop,
/// and nothing starts this.
#[cfg(not(feature = "event-loop"))]
pub struct LoopServer {
    pub addr: SocketAddr,
}

#[cfg(not(feature = "event-loop"))]
impl LoopServer {
    pub fn start<R>(_: sockeye::ServerBuilder, _: Option<u32>, _: R) -> LoopServer
    where
        R: Fn(LoopEnd) + Send + Sync + 'static,
    {
        unreachable!("front() picks the event loop only with the `event-loop` feature")
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

#[cfg(feature = "event-loop")]
mod event_loop {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use sockeye::event_loop::{ConnId, EventLoop, Handler, LoopContext, Opening, Running, Socket};
    use sockeye::proto::Closed;
    use sockeye::{Error, Message, ServerBuilder};

    use super::{LoopEnd, owned_error};

    /// How long a stopped loop may take to finish.
    const STOP_GUARD: Duration = Duration::from_secs(10);

    /// An event-loop echo server on an ephemeral loopback port, one loop
    /// thread, reporting each connection's end to `report`. Stopped (and
    /// joined, within a guard) when dropped; a loop that failed or
    /// panicked fails the test then.
    pub struct LoopServer {
        pub addr: SocketAddr,
        running: Option<Running>,
    }

    /// Echoes every data message; tells `report` how each connection ended.
    struct Echo<R> {
        report: Arc<R>,
    }

    impl<R: Fn(LoopEnd) + Send + Sync + 'static> Handler for Echo<R> {
        type Data = SocketAddr;

        fn open(&mut self, _socket: &mut Socket<'_>, opening: &Opening<'_>) -> SocketAddr {
            opening.remote_addr()
        }

        fn message(&mut self, socket: &mut Socket<'_>, _remote: &mut SocketAddr, message: Message) {
            // Past `max_buffered_bytes` the loop hands the message back:
            // dropped, as the loop's API does (no task waits for room).
            let _ = socket.send(message);
        }

        fn close(&mut self, _id: ConnId, remote: SocketAddr, closed: &Closed) {
            (self.report)(LoopEnd::Ended {
                remote,
                closed: closed.clone(),
            });
        }

        fn refused(&mut self, remote: SocketAddr, error: &Error) {
            (self.report)(LoopEnd::Refused {
                remote,
                error: owned_error(error),
            });
        }
    }

    impl LoopServer {
        /// Starts the loop on a listener of its own with a backlog of
        /// 4096 and, with `buffer`, that many bytes of kernel send and
        /// receive buffer (inherited by the accepted sockets).
        pub fn start<R>(builder: ServerBuilder, buffer: Option<u32>, report: R) -> LoopServer
        where
            R: Fn(LoopEnd) + Send + Sync + 'static,
        {
            use socket2::{Domain, Protocol, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
            if let Some(size) = buffer {
                socket.set_recv_buffer_size(size as usize).unwrap();
                socket.set_send_buffer_size(size as usize).unwrap();
            }
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            socket.bind(&any.into()).unwrap();
            socket.listen(4096).unwrap();
            let listener: std::net::TcpListener = socket.into();
            let addr = listener.local_addr().unwrap();
            let report = Arc::new(report);
            let running = EventLoop::new(builder)
                .threads(1)
                .listen(listener, move |_: LoopContext| Echo {
                    report: report.clone(),
                })
                .unwrap();
            LoopServer {
                addr,
                running: Some(running),
            }
        }

        /// The server's URL (`ws://addr/`).
        pub fn url(&self) -> String {
            format!("ws://{}/", self.addr)
        }
    }

    impl Drop for LoopServer {
        fn drop(&mut self) {
            let Some(running) = self.running.take() else {
                return;
            };
            running.handle().stop();
            let (done, joined) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done.send(running.join());
            });
            let result = joined.recv_timeout(STOP_GUARD);
            if std::thread::panicking() {
                return;
            }
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => panic!("the event loop failed: {error}"),
                Err(_) => panic!("the event loop did not stop within {STOP_GUARD:?}"),
            }
        }
    }
}
