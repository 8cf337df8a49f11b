//! The raw TCP echo floor on an event loop (`sockeye-bench-peer --peer
//! raw-mio`): the loop shape of an event-loop WebSocket server, with no
//! WebSocket in it.
//!
//! One thread, one [`mio::Poll`], one listener, the connections in a
//! [`Slab`], and ONE read buffer of [`READ_BUFFER`] bytes for all of them.
//! No runtime, no task, no waker. mio registers every source
//! edge-triggered (`EPOLLET`), so a connection is read until the kernel
//! has nothing more for it; every read is written back at once with one
//! `write` of the same bytes. When the socket takes only part of them
//! (its send buffer is full), the rest is copied into the connection's
//! own memory (the only time a connection owns a buffer), the connection
//! is registered for WRITABLE instead of READABLE, and it is not read
//! again until that rest has gone out: backpressure, as a WebSocket server
//! must apply it. An idle connection holds its socket and its slab entry, nothing
//! else. TCP_NODELAY is set on every connection.
//!
//! "Read until the kernel has nothing more" stops at a short read (fewer
//! bytes than the buffer's room) as well as at `WouldBlock`: on Linux,
//! epoll queues a new edge for every segment that arrives after a read,
//! so a short read has emptied the receive queue, and the `recvfrom` that
//! would only return `WouldBlock` is saved. tokio's own `AsyncRead` for
//! its `TcpStream` does the same (it clears the readiness after a short
//! read), so sockeye's tokio front-end already saves that call; a floor
//! that paid it would not be the floor.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Bytes read at once, into the loop's one buffer.
pub const READ_BUFFER: usize = 64 * 1024;

/// Readiness events taken from the kernel per `epoll_wait`.
const EVENTS: usize = 1024;

/// The listener's token (connections are their slab index).
const LISTENER: Token = Token(usize::MAX);

/// How long to wait before accepting again when accepting failed (most
/// likely out of file descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// One connection: its socket and, only while the socket would not take
/// an echo whole, the bytes still to write.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// What is left to write; while there is any, the connection is not
    /// read and is registered for WRITABLE (not READABLE).
    unwritten: Option<Vec<u8>>,
}

/// What became of a connection after it was driven.
enum Outcome {
    /// Still open.
    Open,
    /// Closed by the peer, or failed: to be dropped.
    Closed,
}

/// Binds `listen` (`host:port`; port 0 picks a free one), prints
/// `listening on ADDR` and serves on this thread forever.
pub fn run(listen: &str) -> io::Result<()> {
    let address: SocketAddr = listen.parse().map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--listen {listen:?}: {error}"),
        )
    })?;
    let listener = TcpListener::bind(address)?;
    println!("listening on {}", listener.local_addr()?);
    serve(listener)
}

/// The event loop: accepts on `listener` and echoes on every connection,
/// forever (it returns only if polling itself fails).
pub fn serve(mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(EVENTS);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut connections: Slab<Connection> = Slab::new();
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut accept_failed = false;
    loop {
        let timeout = accept_failed.then_some(ACCEPT_RETRY);
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if accept_failed {
            // The listener's edge came while no descriptor was free: try
            // again without waiting for another.
            accept_failed = !accept(&listener, poll.registry(), &mut connections);
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_failed = !accept(&listener, poll.registry(), &mut connections);
                continue;
            }
            let key = event.token().0;
            // A connection closed earlier in this batch (its key possibly
            // reused since, which only costs a read that finds nothing).
            let Some(connection) = connections.get_mut(key) else {
                continue;
            };
            match drive(connection, key, poll.registry(), &mut buffer) {
                Outcome::Open => {}
                Outcome::Closed => {
                    // Closing the socket removes it from the epoll set.
                    connections.remove(key);
                }
            }
        }
    }
}

/// Accepts until the listener has no more connections; false if
/// accepting failed otherwise (to be retried after [`ACCEPT_RETRY`]).
fn accept(
    listener: &TcpListener,
    registry: &mio::Registry,
    connections: &mut Slab<Connection>,
) -> bool {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                eprintln!("accept failed: {error}");
                return false;
            }
        };
        let _ = stream.set_nodelay(true);
        let entry = connections.vacant_entry();
        // Registering reports data that came before it: the first edge is
        // not lost.
        match registry.register(&mut stream, Token(entry.key()), Interest::READABLE) {
            Ok(()) => {
                entry.insert(Connection {
                    stream,
                    unwritten: None,
                });
            }
            Err(error) => debug(&error),
        }
    }
}

/// Handles an event on connection `key`: writes what is left, then reads
/// and echoes until the socket is drained or will not take more.
fn drive(
    connection: &mut Connection,
    key: usize,
    registry: &mio::Registry,
    buffer: &mut [u8],
) -> Outcome {
    let was_waiting = connection.unwritten.is_some();
    let outcome = flush(connection).and_then(|()| echo(connection, buffer));
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            debug(&error);
            Outcome::Closed
        }
    };
    let waiting = connection.unwritten.is_some();
    if matches!(outcome, Outcome::Open) && waiting != was_waiting {
        // While it waits to write, it is not read: it is registered for
        // WRITABLE alone, so that the segments still coming in do not wake
        // the loop for nothing (errors and hang-ups are reported anyway).
        let interest = if waiting {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(error) = registry.reregister(&mut connection.stream, Token(key), interest) {
            debug(&error);
            return Outcome::Closed;
        }
    }
    outcome
}

/// Writes what is left of an earlier echo, as far as the socket takes it.
fn flush(connection: &mut Connection) -> io::Result<()> {
    let Some(unwritten) = &mut connection.unwritten else {
        return Ok(());
    };
    while !unwritten.is_empty() {
        match connection.stream.write(unwritten) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                unwritten.drain(..written);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    connection.unwritten = None;
    Ok(())
}

/// Reads into the shared buffer and writes each read back once, until
/// the socket is drained (a short read or `WouldBlock`) or did not take
/// a whole echo (the rest is kept; reading waits until it is written).
fn echo(connection: &mut Connection, buffer: &mut [u8]) -> io::Result<Outcome> {
    if connection.unwritten.is_some() {
        return Ok(Outcome::Open);
    }
    loop {
        let read = match connection.stream.read(buffer) {
            Ok(0) => return Ok(Outcome::Closed),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(Outcome::Open),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let written = loop {
            match connection.stream.write(&buffer[..read]) {
                Ok(written) => break written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        };
        if written < read {
            connection.unwritten = Some(buffer[written..read].to_vec());
            return Ok(Outcome::Open);
        }
        if read < buffer.len() {
            // A short read emptied the receive queue; the next segment
            // brings a new edge.
            return Ok(Outcome::Open);
        }
    }
}

/// Prints a connection's failure when `SOCKEYE_BENCH_DEBUG` is set.
fn debug(error: &io::Error) {
    if std::env::var_os("SOCKEYE_BENCH_DEBUG").is_some() {
        eprintln!("connection: {error}");
    }
}

/// Starts the event loop on a thread of its own for tests: its address.
pub fn spawn_for_test() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().expect("an address"))?;
    let address = listener.local_addr()?;
    std::thread::spawn(move || serve(listener));
    Ok(address)
}
