//! The event-loop server: one loop per thread on `mio` (epoll, kqueue),
//! no task and no future per connection, callbacks instead of `await`.
//!
//! This is the front-end for servers that hold many connections and move
//! many small messages: a connection costs its slot, its engine and its
//! socket, and nothing more while it is idle (no task, no read buffer, no
//! timer object); each loop reads into one buffer shared by its
//! connections, and everything queued for a connection in one iteration
//! (the replies to a burst of messages, publishes, Pongs) leaves in one
//! write. It is how uWebSockets is built, and sockeye's sans-I/O engine
//! drives it unchanged: the same limits, timers, closing handshake and
//! permessage-deflate as the tokio [`WebSocket`](crate::WebSocket).
//!
//! The server's policy is the [`ServerBuilder`]'s, as for every other
//! front-end: Host allow-list, Origin, subprotocols, permessage-deflate,
//! connection limits per server and per address, the memory budget, the
//! handshake timeout and the graceful [`Drain`](crate::Drain).
//!
//! ```
//! use sockeye::event_loop::{EventLoop, Handler, Opening, Socket};
//! use sockeye::{Message, ServerBuilder};
//!
//! /// Echoes every message.
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Data = ();
//!
//!     fn open(&mut self, _socket: &mut Socket<'_>, _opening: &Opening<'_>) {}
//!
//!     fn message(&mut self, socket: &mut Socket<'_>, _data: &mut (), message: Message) {
//!         let _ = socket.send(message);
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let server = EventLoop::new(ServerBuilder::new())
//!     .threads(1)
//!     .bind("127.0.0.1:0".parse().unwrap(), |_loop| Echo)?;
//! println!("listening on {}", server.local_addr());
//! // ... later, from any thread:
//! server.handle().stop();
//! server.join()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//!
//! [`EventLoop::threads`] loops (default: one per CPU), each on its own
//! thread with its own listening socket on the same port
//! (`SO_REUSEPORT`: the kernel spreads new connections over them), or
//! sharing one listener given to [`EventLoop::listen`]. A connection
//! stays on the loop that accepted it. Handlers run on their loop's
//! thread; other threads (and tokio tasks) reach connections through a
//! [`ServerHandle`] or [`LoopHandle`], which queue and wake the loop.
//!
//! # Topics
//!
//! [`Socket::subscribe`] and [`Socket::publish`] (and
//! [`ServerHandle::publish`] from outside): a publish is framed once,
//! handed to every loop, and corked into each subscriber's write of that
//! iteration. A subscriber that has `max_buffered_bytes` or more queued
//! when a message comes is closed with 1008 (it cannot keep up), as the
//! tokio [hub](crate::hub)'s default policy does.
//!
//! # What is not here yet
//!
//! TLS, HTTP/2 and the hub's backplanes (Redis, NATS) are served by the
//! tokio front-end; this one serves `ws://` over HTTP/1.1.

mod core;
mod handler;
mod remote;
mod topics;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::thread::JoinHandle;

pub use handler::{Handler, Opening, Socket};
pub use remote::{ConnId, LoopHandle, ServerHandle};

use crate::policy::ServerBuilder;
use core::{Loop, Setup};
use remote::Signal;

/// The default [`EventLoop::send_timeout`].
pub const DEFAULT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The waker's token in each loop's poll.
const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// Builds an event-loop server: the policy, the number of loops.
#[derive(Debug, Clone)]
pub struct EventLoop {
    server: ServerBuilder,
    threads: usize,
    send_timeout: std::time::Duration,
}

/// What a loop's handler factory is told about the loop it makes a
/// handler for.
#[derive(Debug, Clone)]
pub struct LoopContext {
    /// The loop's index, from 0.
    pub index: usize,
    /// This loop's handle.
    pub handle: LoopHandle,
    /// Every loop's.
    pub server: ServerHandle,
}

impl EventLoop {
    /// A server with `server`'s policy and one loop per CPU.
    pub fn new(server: ServerBuilder) -> EventLoop {
        EventLoop {
            server,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }

    /// How long a plain HTTP answer (from [`Handler::http`]) or a refusal
    /// may go without the client taking any of it before the connection
    /// is dropped (a slow client that keeps reading is not cut off).
    /// Default: 30 s ([`DEFAULT_SEND_TIMEOUT`]).
    pub fn send_timeout(mut self, timeout: std::time::Duration) -> EventLoop {
        self.send_timeout = timeout;
        self
    }

    /// How many loops (threads) to run. Default: the number of CPUs this
    /// process may use (`std::thread::available_parallelism`); at least 1.
    pub fn threads(mut self, threads: usize) -> EventLoop {
        self.threads = threads.max(1);
        self
    }

    /// Listens on `address` and starts the loops: with more than one, each
    /// binds its own socket with `SO_REUSEPORT` (port 0: the first picks a
    /// port, the others take the same). `make` is called on each loop's
    /// thread to make its handler.
    pub fn bind<H, F>(self, address: SocketAddr, make: F) -> io::Result<Running>
    where
        H: Handler,
        F: Fn(LoopContext) -> H + Send + Sync + 'static,
    {
        let reuse_port = self.threads > 1;
        let first = bind_listener(address, reuse_port)?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..self.threads {
            listeners.push(bind_listener(local, true)?);
        }
        self.start(listeners, local, make)
    }

    /// Starts the loops on a listener the caller bound; with more than
    /// one loop they all accept from it (each through a clone of it).
    pub fn listen<H, F>(self, listener: std::net::TcpListener, make: F) -> io::Result<Running>
    where
        H: Handler,
        F: Fn(LoopContext) -> H + Send + Sync + 'static,
    {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let mut listeners = Vec::with_capacity(self.threads);
        for _ in 1..self.threads {
            listeners.push(listener.try_clone()?);
        }
        listeners.push(listener);
        self.start(listeners, local, make)
    }

    fn start<H, F>(
        self,
        listeners: Vec<std::net::TcpListener>,
        local: SocketAddr,
        make: F,
    ) -> io::Result<Running>
    where
        H: Handler,
        F: Fn(LoopContext) -> H + Send + Sync + 'static,
    {
        let mut handles = Vec::with_capacity(listeners.len());
        let mut parts = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
            let (sender, receiver) = mpsc::channel();
            let signal = Arc::new(Signal {
                waker,
                commands: AtomicBool::new(false),
                scan: AtomicBool::new(false),
            });
            handles.push(LoopHandle {
                index: index as u32,
                commands: sender,
                signal: signal.clone(),
            });
            parts.push((poll, listener, receiver, signal));
        }
        let loops: Arc<[LoopHandle]> = handles.into();
        let handle = ServerHandle {
            loops: loops.clone(),
        };
        let make = Arc::new(make);
        let mut threads = Vec::with_capacity(parts.len());
        for (index, (poll, listener, commands, signal)) in parts.into_iter().enumerate() {
            let setup = Setup {
                index: index as u32,
                poll,
                listener: mio::net::TcpListener::from_std(listener),
                server: self.server.clone(),
                commands,
                signal,
                loops: loops.clone(),
                send_timeout: self.send_timeout,
            };
            let context = LoopContext {
                index,
                handle: loops[index].clone(),
                server: handle.clone(),
            };
            let make = make.clone();
            let thread = std::thread::Builder::new()
                .name(format!("sockeye-loop-{index}"))
                .spawn(move || Loop::new(setup, make(context))?.run())?;
            threads.push(thread);
        }
        Ok(Running {
            handle,
            local,
            threads,
        })
    }
}

fn bind_listener(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    )))]
    let _ = reuse_port;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A running event-loop server.
#[derive(Debug)]
pub struct Running {
    handle: ServerHandle,
    local: SocketAddr,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle to its loops, for any thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Waits until every loop has stopped ([`ServerHandle::stop`]). Blocks
    /// the calling thread: from async code, call it in
    /// `tokio::task::spawn_blocking`. Returns the first loop's error, if
    /// one failed.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("an event loop panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}
