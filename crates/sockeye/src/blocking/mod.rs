//! The blocking front-end over `std::io`, for scripts and simple tools.
//!
//! The same engine and the same [`Message`] API as the tokio front-end,
//! without a runtime: each call blocks the thread. Timers (keepalive,
//! closing handshake) work on transports that can bound a read's wait,
//! which [`Transport::set_read_timeout`] expresses; `TcpStream` does.
//!
//! ```
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let url = format!("ws://{}/", listener.local_addr()?);
//! let server = std::thread::spawn(move || -> Result<(), sockeye::Error> {
//!     let (stream, _) = listener.accept()?;
//!     let mut ws = sockeye::blocking::accept(stream)?;
//!     while let Some(message) = ws.recv() {
//!         ws.send(message?)?;
//!     }
//!     Ok(())
//! });
//! let (mut ws, _response) = sockeye::blocking::connect(&url)?;
//! ws.send(sockeye::Message::text("hello"))?;
//! assert_eq!(ws.recv().unwrap()?.as_text(), Some("hello"));
//! ws.close(sockeye::CloseCode::NORMAL, "")?;
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Over a stream whose handshake is done elsewhere:
//!
//! ```
//! use std::net::{TcpListener, TcpStream};
//! use sockeye::blocking::WebSocket;
//! use sockeye::proto::Config;
//! use sockeye::{CloseCode, Message, Role};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let address = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> Result<(), sockeye::Error> {
//!     let (stream, _) = listener.accept()?;
//!     let mut ws = WebSocket::from_raw(stream, Role::Server, Config::default(), &[]);
//!     while let Some(message) = ws.recv() {
//!         ws.send(message?)?;
//!     }
//!     Ok(())
//! });
//! let stream = TcpStream::connect(address)?;
//! let mut ws = WebSocket::from_raw(stream, Role::Client, Config::default(), &[]);
//! ws.send(Message::text("hello"))?;
//! assert_eq!(ws.recv().unwrap()?.as_text(), Some("hello"));
//! assert!(ws.close(CloseCode::NORMAL, "bye")?.is_clean());
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use sockeye_proto::{CloseCode, Closed, Config, Connection, Event, Message, Role};

use crate::drain::DrainSignal;
use crate::error::Error;
use crate::output::{MAX_IOVECS, Output};

/// The longest a blocking connection accepted through a
/// [`ServerBuilder`](crate::ServerBuilder) waits in one read, so that it
/// sees its server's [`Drain`](crate::Drain) start (and reach its
/// deadline) while its peer is silent: one wake-up a second at most.
pub const DRAIN_CHECK: Duration = Duration::from_secs(1);

mod handshake;

pub use handshake::{ClientStream, accept, accept_with, connect, connect_with};

/// A byte stream the blocking front-end can run on.
pub trait Transport: Read + Write {
    /// Bounds how long the next read may block (`None`: forever). Without
    /// it, timers fire only when data arrives. The default does nothing.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Ends the write side (TCP FIN). The default flushes.
    fn shutdown(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// The peer's address, if the transport has one (for a server's
    /// per-address connection cap). The default: `None`.
    fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout.map(|t| t.max(Duration::from_millis(1))))
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }

    fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }
}

/// A WebSocket connection over a blocking stream, after its opening
/// handshake.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    output: Output,
    closed: Option<Closed>,
    finished: bool,
    /// The connection's place under its server's connection limit.
    pub(crate) permit: Option<crate::policy::ConnectionPermit>,
    /// The connection's share of its server's memory budget.
    pub(crate) budget: Option<crate::budget::Share>,
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a stream whose opening handshake is done, playing `role`.
    /// `leftover` holds any bytes read past the handshake.
    pub fn from_raw(stream: S, role: Role, config: Config, leftover: &[u8]) -> WebSocket<S> {
        WebSocket::from_engine(stream, Connection::new(role, config), leftover)
    }

    /// Wraps a stream whose opening handshake is done, driving an engine
    /// the caller prepared (for example with
    /// [`Connection::enable_deflate`]). `leftover` holds any bytes read
    /// past the handshake.
    pub fn from_engine(stream: S, mut conn: Connection, leftover: &[u8]) -> WebSocket<S> {
        conn.receive_data(leftover);
        WebSocket {
            stream,
            conn,
            output: Output::default(),
            closed: None,
            finished: false,
            permit: None,
            budget: None,
        }
    }

    /// The protocol engine, for inspection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Takes the connection apart into its stream, its engine and the
    /// output taken from the engine but not yet written, for a caller that
    /// drives the engine itself from here on.
    /// [`WebSocket::from_engine`] puts the parts back together once the
    /// unwritten output is written.
    ///
    /// Nothing is lost: bytes read and not yet delivered stay in the
    /// engine. A connection accepted under a server's connection limit
    /// ([`crate::ServerBuilder::max_connections`]) gives its place back.
    pub fn into_parts(mut self) -> crate::Parts<S> {
        // The permit, dropped here, publishes the counts it has seen.
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
        }
        crate::Parts {
            stream: self.stream,
            connection: self.conn,
            unwritten: self.output.into_chunks(),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// Blocks until the next data message. `None` after a clean close; an
    /// error once if the connection ended otherwise, then `None`. Pings are
    /// answered and Closes completed meanwhile.
    pub fn recv(&mut self) -> Option<Result<Message, Error>> {
        loop {
            match self.recv_event()? {
                Ok(Event::Message(message)) => return Some(Ok(message)),
                Ok(Event::Closed(closed)) => return closed.error.map(|error| Err(error.into())),
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// Blocks until the next event: messages, Pings, Pongs, and the end.
    ///
    /// A connection accepted through a [`ServerBuilder`](crate::ServerBuilder)
    /// sees its server's [`Drain`](crate::Drain) here: it waits at most
    /// [`DRAIN_CHECK`] in each read, so that it notices the drain's start
    /// and its deadline.
    pub fn recv_event(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(error) = self.poll_drain() {
                return Some(Err(error));
            }
            self.shed_if_chosen();
            if self.closed.is_none() {
                let event = self.conn.next_event();
                self.account();
                match event {
                    Some(Event::Closed(closed)) => self.closed = Some(closed),
                    Some(event) => {
                        if self.conn.control_pending()
                            && let Err(error) = self.write_out()
                        {
                            return self.fail_io(error);
                        }
                        return Some(Ok(event));
                    }
                    None => {
                        if let Err(error) = self.write_out() {
                            return self.fail_io(error);
                        }
                    }
                }
            }
            if self.closed.is_some() {
                // A peer that went away cannot take our last frames.
                let _ = self.write_out();
                if self.conn.should_close_transport() {
                    let _ = self.stream.shutdown();
                    self.finished = true;
                    let clean = self.closed.as_ref().is_some_and(Closed::is_clean);
                    self.record_end(clean);
                    return self.closed.clone().map(|closed| Ok(Event::Closed(closed)));
                }
            }
            if let Err(error) = self.read_once() {
                if self.closed.is_none() {
                    return self.fail_io(error);
                }
                self.conn.receive_eof();
            }
        }
    }

    /// Acts on the server's drain: schedules the Close it asks for, or
    /// ends the connection at its deadline.
    fn poll_drain(&mut self) -> Option<Error> {
        match self.permit.as_mut()?.drain.poll(None)? {
            DrainSignal::Close { at, code, reason } => {
                let _ = self.conn.close_at(at, code, &reason);
                None
            }
            DrainSignal::Abort => {
                let _ = self.stream.shutdown();
                self.finished = true;
                self.record_end(false);
                Some(Error::Timeout(sockeye_proto::Timeout::Close))
            }
        }
    }

    /// Updates the connection's share of its server's memory budget, if
    /// it has one: what the engine holds and what was taken to write; and
    /// copies the engine's message counts into its tally (plain fields;
    /// published at coarse points, see `stats.rs`).
    fn account(&mut self) {
        if let Some(share) = &mut self.budget {
            share.update(self.conn.memory_held() + self.output.held());
        }
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
        }
    }

    /// Aborts the connection with 1013 if its server's memory budget chose
    /// it to be shed (as the tokio front-end does).
    fn shed_if_chosen(&mut self) {
        let chosen = self
            .budget
            .as_ref()
            .is_some_and(|share| share.chosen_to_shed());
        if !chosen || self.closed.is_some() || self.conn.state() == sockeye_proto::State::Closed {
            return;
        }
        crate::budget::shed(&mut self.conn, &mut self.output);
        self.account();
    }

    /// Tells the server (its drain, its counters) how the connection
    /// ended.
    fn record_end(&mut self, clean: bool) {
        if let Some(permit) = &mut self.permit {
            permit.tally.see(&self.conn);
            permit.finish(clean);
        }
    }

    /// One read, bounded by the engine's next deadline (and by
    /// [`DRAIN_CHECK`] for a connection a server's drain may close).
    fn read_once(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let mut wait = match self.conn.poll_timeout(now) {
            Some(deadline) if deadline <= now => {
                self.conn.handle_timeout(now);
                return Ok(());
            }
            Some(deadline) => Some(deadline - now),
            None => None,
        };
        if self.permit.is_some() {
            wait = Some(wait.map_or(DRAIN_CHECK, |wait| wait.min(DRAIN_CHECK)));
        }
        self.stream.set_read_timeout(wait)?;
        if !self.conn.wants_read() {
            // Only a Pong backlog stops reading; writing clears it.
            return self.write_out();
        }
        if let Some(share) = &mut self.budget
            && !share.wait_for_room(wait.unwrap_or(DRAIN_CHECK))
        {
            // The server's memory budget is exhausted: the peer's writes
            // stall. Back to the timers and the drain check, then again.
            return Ok(());
        }
        if let Some(permit) = &mut self.permit {
            // About to block: a coarse point to add this connection's
            // counts to its server's.
            permit.publish();
        }
        let stream = &mut self.stream;
        let conn = &mut self.conn;
        let read = crate::scratch::with(|chunk| {
            let read = stream.read(chunk);
            if let Ok(n) = read {
                conn.receive_data(&chunk[..n]);
            }
            read
        });
        match read {
            Ok(0) => self.conn.receive_eof(),
            Ok(read) => {
                if let Some(permit) = &mut self.permit {
                    permit.tally.read(read);
                }
                self.account();
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.conn.handle_timeout(Instant::now());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        Ok(())
    }

    fn fail_io<T>(&mut self, error: io::Error) -> Option<Result<T, Error>> {
        self.finished = true;
        self.record_end(false);
        Some(Err(Error::Io(error)))
    }

    /// Sends a message and blocks until it is written.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.conn.send(message.into())?;
        Ok(self.write_out()?)
    }

    /// Sends a Ping (at most 125 bytes) and blocks until it is written.
    pub fn ping(&mut self, payload: impl Into<bytes::Bytes>) -> Result<(), Error> {
        self.conn.send_ping(payload)?;
        Ok(self.write_out()?)
    }

    /// Closes the connection: sends a Close frame, waits for the peer's
    /// (dropping messages that arrive meanwhile) within the config's close
    /// timeout, and shuts the transport down. Returns how it ended.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        if self.closed.is_none() && !self.finished {
            match self.conn.send_close(code, reason) {
                Ok(()) | Err(sockeye_proto::Error::AlreadyClosed) => {}
                Err(error) => return Err(error.into()),
            }
        }
        loop {
            match self.recv_event() {
                Some(Ok(Event::Closed(closed))) => return Ok(closed),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return self.closed.clone().ok_or(Error::AlreadyClosed),
            }
        }
    }

    /// Writes everything queued, with vectored writes.
    pub fn flush(&mut self) -> Result<(), Error> {
        Ok(self.write_out()?)
    }

    fn write_out(&mut self) -> io::Result<()> {
        let written = self.write_queued();
        self.account();
        if let Some(permit) = &mut self.permit {
            permit.publish();
        }
        written
    }

    fn write_queued(&mut self) -> io::Result<()> {
        loop {
            self.output.refill(&mut self.conn);
            if self.output.is_empty() {
                return self.stream.flush();
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.output.slices(&mut slices);
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.output.advance(written);
                    if let Some(permit) = &mut self.permit {
                        permit.tally.wrote(written);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}
