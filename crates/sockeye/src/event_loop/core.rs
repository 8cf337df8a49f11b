//! One loop: a `mio::Poll`, its connections in a slab, one read buffer,
//! a timer heap, its topics, and the iteration that ties them together.
//!
//! An iteration waits for readiness (or the next deadline), reads every
//! ready connection and hands what arrived to its engine and the
//! application, fires due timers, delivers publishes, and then writes
//! each connection that has output once: everything queued for it during
//! the iteration (replies to a burst of messages, publishes, Pongs) leaves
//! in one `write`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sockeye_proto::handshake::{self, HandshakeError, RequestParser};
use sockeye_proto::{CloseCode, Closed, Connection, Event, PreparedMessage, State};

use super::handler::{Handler, Opening, Socket};
use super::remote::{Command, ConnId, LoopHandle, Signal};
use super::topics::Topics;
use crate::budget::Share;
use crate::drain::DrainSignal;
use crate::output::{MAX_IOVECS, Output};
use crate::policy::{ConnectionInfo, ConnectionPermit, ServerBuilder};
use crate::stats::{Batch, RefusalReason};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// The loop's read buffer: the most one read takes.
const READ_BUFFER: usize = 64 * 1024;
/// A read at least this large is handed to the engine whole (the loop
/// takes a new buffer) rather than copied.
const HAND_OVER_READ: usize = READ_BUFFER / 4;
/// Reading straight into the engine's buffer (the middle of a large
/// frame): at most this much per read, as the room read into is zeroed
/// first (no `unsafe` here).
const DIRECT_READ: usize = 256 * 1024;
/// Reads of one connection per readiness before the others get a turn.
const READS_PER_TURN: usize = 4;
/// After failing a connection on a violation, how long to read and drop
/// what the peer still sends before closing (see the tokio front-end's
/// `poll_linger`: closing with unread input sends a reset that can
/// destroy our Close frame).
const LINGER: Duration = Duration::from_millis(200);
/// After a refusal or an HTTP answer, how much of what the client still
/// sends is read and dropped (so that a reset does not destroy the
/// answer) before closing: what a client that means well may still have
/// in flight. One that goes on writing (an endless request line) is cut
/// off there, not fed the loop's time until the deadline.
const ANSWER_DRAIN: usize = 1 << 20;
/// Events taken from the poll at once.
const EVENTS: usize = 1024;
/// After a failed accept (out of file descriptors), wait this long before
/// trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

// Slot flags.
/// Readiness to read was reported and the socket not read dry since.
const READABLE: u8 = 1;
/// Output waits for the socket to become writable.
const BLOCKED: u8 = 2;
/// In the dirty list: flushed at the end of the iteration.
const DIRTY: u8 = 4;
/// Not reading: the server's memory budget is exhausted.
const STALLED: u8 = 8;
/// A send met backpressure: `Handler::writable` when it drains.
const PRESSED: u8 = 16;
/// The transport failed or ended: nothing more is written.
const BROKEN: u8 = 32;

/// The part of a loop that callbacks may use: everything but the slab and
/// the handler.
pub(crate) struct Shared {
    pub(super) topics: Topics,
    pub(super) handle: LoopHandle,
    /// Every loop of the server, this one included, by index.
    pub(super) loops: Arc<[LoopHandle]>,
    /// Publishes for this loop's subscribers, delivered before the
    /// iteration's writes.
    pending: Vec<(Arc<str>, PreparedMessage, Option<ConnId>)>,
}

impl Shared {
    /// Publishes to this loop's subscribers (this iteration) and to every
    /// other loop's (through its handle).
    pub(super) fn publish(
        &mut self,
        topic: &str,
        prepared: PreparedMessage,
        exclude: Option<ConnId>,
    ) {
        let topic: Arc<str> = Arc::from(topic);
        for other in self.loops.iter() {
            if other.index != self.handle.index {
                other.command(Command::Publish(topic.clone(), prepared.clone(), None));
            }
        }
        self.pending.push((topic, prepared, exclude));
    }
}

/// A deadline in a loop's timer heap: see `Loop::tick`.
type Tick = u64;

/// A connection's slot.
struct Slot<D> {
    generation: u32,
    flags: u8,
    /// The deadline this slot has in the timer heap, as a [`Tick`]; 0:
    /// none.
    scheduled: Tick,
    conn: Option<Conn<D>>,
}

struct Conn<D> {
    stream: TcpStream,
    phase: Phase<D>,
}

enum Phase<D> {
    /// Reading the request.
    Handshake(Box<Handshake>),
    /// A WebSocket.
    Open(Box<Open<D>>),
    /// Writing a last answer (a refusal, an HTTP response), or lingering
    /// after a failure, then closing.
    Ending(Box<Ending>),
}

struct Handshake {
    parser: RequestParser,
    deadline: Instant,
    remote: SocketAddr,
}

struct Open<D> {
    engine: Connection,
    /// Output taken from the engine that the socket did not take.
    output: Unwritten,
    /// Bytes of the `101` at the front of `output` not written yet: not
    /// WebSocket bytes, so not counted in the server's stats.
    head: u32,
    permit: ConnectionPermit,
    budget: Share,
    /// `None` once `Handler::close` has it.
    data: Option<D>,
    /// How the connection ended, once the engine said so.
    closed: Option<Box<Closed>>,
}

struct Ending {
    output: Output,
    deadline: Instant,
    shut_down: bool,
    /// The client, for `Handler::answer_failed`; `None` after a WebSocket.
    remote: Option<SocketAddr>,
    /// How much more of what the peer sends is read and dropped before
    /// the connection is closed regardless.
    drain_left: usize,
}

/// What a thread needs to run a loop.
pub(super) struct Setup {
    pub(super) index: u32,
    pub(super) poll: Poll,
    pub(super) listener: TcpListener,
    pub(super) server: ServerBuilder,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) signal: Arc<Signal>,
    pub(super) loops: Arc<[LoopHandle]>,
    pub(super) send_timeout: Duration,
}

pub(super) struct Loop<H: Handler> {
    /// How long a last answer may make no progress.
    send_timeout: Duration,
    index: u32,
    poll: Poll,
    listener: Option<TcpListener>,
    accept_retry: Option<Instant>,
    slots: Vec<Slot<H::Data>>,
    free: Vec<u32>,
    /// Deadlines as ticks after `epoch`, with each slot's index and
    /// generation (16 bytes an entry).
    timers: BinaryHeap<Reverse<(Tick, u32, u32)>>,
    epoch: Instant,
    dirty: Vec<u32>,
    /// Connections to read again (readable, but left for fairness or
    /// resumed after a stall).
    again: Vec<u32>,
    read_buffer: BytesMut,
    /// Output chunks of the connection being written (reused).
    staging: Vec<Bytes>,
    /// Subscribers of the topic being delivered (reused).
    targets: Vec<ConnId>,
    /// The iteration's counts for the server's stats, added to them once
    /// at its end.
    batch: Batch,
    shared: Shared,
    handler: H,
    server: ServerBuilder,
    commands: mpsc::Receiver<Command>,
    signal: Arc<Signal>,
    /// Wakes this loop for the drain and the memory budget.
    waker: Waker,
    now: Instant,
    stopping: bool,
}

impl<H: Handler> Loop<H> {
    pub(super) fn new(setup: Setup, handler: H) -> io::Result<Loop<H>> {
        let Setup {
            index,
            poll,
            mut listener,
            server,
            commands,
            signal,
            loops,
            send_timeout,
        } = setup;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let handle = loops[index as usize].clone();
        Ok(Loop {
            send_timeout,
            index,
            poll,
            listener: Some(listener),
            accept_retry: None,
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            epoch: Instant::now(),
            dirty: Vec::new(),
            again: Vec::new(),
            read_buffer: BytesMut::zeroed(READ_BUFFER),
            staging: Vec::new(),
            targets: Vec::new(),
            batch: Batch::default(),
            shared: Shared {
                topics: Topics::default(),
                handle,
                loops,
                pending: Vec::new(),
            },
            handler,
            server,
            commands,
            waker: Waker::from(signal.clone()),
            signal,
            now: Instant::now(),
            stopping: false,
        })
    }

    /// Runs until stopped.
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        while !self.stopping {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.woken(),
                    LISTENER => self.accept(),
                    Token(slot) => {
                        let slot = slot as u32;
                        if event.is_writable() {
                            self.writable(slot);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.readable(slot);
                        }
                    }
                }
            }
            if self.accept_retry.is_some_and(|at| at <= self.now) {
                self.accept_retry = None;
                self.accept();
            }
            let again = std::mem::take(&mut self.again);
            for slot in again {
                self.read(slot);
            }
            self.fire_timers();
            self.flush_all();
            self.batch.publish(self.server.counters());
        }
        self.shut_down();
        Ok(())
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() || !self.dirty.is_empty() {
            // Work left over (`flush_all` stops after a few rounds): a
            // socket that took everything gives no new readiness.
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let next = self
            .timers
            .peek()
            .map(|&Reverse((at, _, _))| self.instant(at))
            .into_iter()
            .chain(self.accept_retry)
            .min()?;
        // Round up: waking a little early would spin until the deadline.
        Some(next.saturating_duration_since(now) + Duration::from_micros(500))
    }

    fn id(&self, slot: u32) -> ConnId {
        ConnId {
            loop_index: self.index,
            slot,
            generation: self.slots[slot as usize].generation,
        }
    }

    fn live(&self, id: ConnId) -> bool {
        self.slots
            .get(id.slot as usize)
            .is_some_and(|slot| slot.generation == id.generation && slot.conn.is_some())
    }

    // ---- accepting and the handshake ----

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, remote)) => {
                    if let Err(error) = self.insert(stream, remote) {
                        tracing_note(&error);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(_) => {
                    // Out of file descriptors (or memory): readiness is
                    // edge-triggered, so try again shortly rather than
                    // wait for the next client.
                    self.accept_retry = Some(self.now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn insert(&mut self, mut stream: TcpStream, remote: SocketAddr) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&index| (index as usize) < usize::MAX - 2)
                    .ok_or_else(|| io::Error::other("too many connections"))?;
                self.slots.push(Slot {
                    generation: 0,
                    flags: 0,
                    scheduled: 0,
                    conn: None,
                });
                index
            }
        };
        if let Err(error) = self.poll.registry().register(
            &mut stream,
            Token(index as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(index);
            return Err(error);
        }
        let deadline = self.now + self.server.get_handshake_timeout();
        let slot = &mut self.slots[index as usize];
        slot.flags = 0;
        slot.conn = Some(Conn {
            stream,
            phase: Phase::Handshake(Box::new(Handshake {
                parser: self.server.request_parser(),
                deadline,
                remote,
            })),
        });
        self.schedule(index, deadline);
        Ok(())
    }

    fn read_handshake(&mut self, index: u32) {
        loop {
            let slot = &mut self.slots[index as usize];
            let Some(Conn {
                stream,
                phase: Phase::Handshake(handshake),
            }) = &mut slot.conn
            else {
                return;
            };
            let remote = handshake.remote;
            let read = match stream.read(&mut self.read_buffer) {
                Ok(0) => return self.refuse(index, remote, crate::Error::UnexpectedEof),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    slot.flags &= !READABLE;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return self.refuse(index, remote, crate::Error::Io(error)),
            };
            match handshake.parser.parse(&self.read_buffer[..read]) {
                Ok(None) => {}
                Ok(Some(parsed)) => {
                    let leftover = self.read_buffer[parsed.consumed..read].to_vec();
                    let remote = handshake.remote;
                    return self.request(index, parsed.head, remote, &leftover);
                }
                Err(refusal) => {
                    self.server
                        .record_refusal(RefusalReason::of_handshake(&refusal));
                    return self.refuse_with(index, remote, refusal);
                }
            }
        }
    }

    /// A request arrived: a WebSocket to admit, or plain HTTP for the
    /// application.
    fn request(&mut self, index: u32, request: Request<()>, remote: SocketAddr, leftover: &[u8]) {
        if !is_websocket_request(&request) {
            if let Err(refusal) = self.server.check_host(&request) {
                return self.refuse_with(index, remote, refusal);
            }
            let handler = &mut self.handler;
            match catch(|| handler.http(&request, remote)) {
                Ok(Some(response)) => return self.answer(index, Some(response)),
                Ok(None) => {}
                // A panicking `http` answers 500, and the loop goes on.
                Err(()) => return self.answer(index, Some(internal_error_response())),
            }
        }
        let admission = match self
            .server
            .admit(&request, ConnectionInfo::new(Some(remote), Some(false)))
        {
            Ok(admission) => admission,
            Err(refusal) => return self.refuse_with(index, remote, refusal),
        };
        let mut head = Vec::with_capacity(256);
        handshake::write_response(&admission.response, &mut head);
        let head_len = u32::try_from(head.len()).unwrap_or(u32::MAX);
        let mut output = Unwritten::default();
        output.push(Bytes::from(head));
        let mut open = Box::new(Open {
            engine: admission.engine,
            output,
            head: head_len,
            permit: admission.permit,
            budget: admission.budget,
            data: None,
            closed: None,
        });
        // The drain wakes this loop (its signals are read in `scan`).
        let cx = Context::from_waker(&self.waker);
        if let Some(DrainSignal::Close { at, code, reason }) = open.permit.drain.poll(Some(&cx)) {
            let _ = open.engine.close_at(at, code, &reason);
        }
        open.engine.receive_data(leftover);
        open.permit.tally.read(leftover.len());
        let id = self.id(index);
        let mut socket = Socket {
            id,
            engine: &mut open.engine,
            unwritten: 0,
            shared: &mut self.shared,
            wrote: false,
            pressed: false,
        };
        let opening = Opening {
            request: &request,
            response: &admission.response,
            remote,
        };
        let handler = &mut self.handler;
        let opened = catch(|| handler.open(&mut socket, &opening));
        let pressed = socket.pressed;
        match opened {
            Ok(data) => open.data = Some(data),
            // A panicking `open`: the connection closes with 1011 and has
            // no `close` callback, as for `message`.
            Err(()) => {
                let _ = open
                    .engine
                    .abort(CloseCode::INTERNAL_ERROR, "internal error");
            }
        }
        let slot = &mut self.slots[index as usize];
        if pressed {
            slot.flags |= PRESSED;
        }
        if let Some(conn) = &mut slot.conn {
            conn.phase = Phase::Open(open);
        }
        slot.scheduled = 0;
        self.mark_dirty(index);
        self.process(index);
        self.reschedule(index);
    }

    /// Refuses with the refusal's response (if it has one), and tells the
    /// application.
    fn refuse_with(&mut self, index: u32, remote: SocketAddr, refusal: HandshakeError) {
        let response = refusal.to_response();
        let handler = &mut self.handler;
        let _ = catch(|| handler.refused(remote, &crate::Error::Handshake(refusal)));
        self.answer(index, response);
    }

    /// The connection ended before its request was complete.
    fn refuse(&mut self, index: u32, remote: SocketAddr, error: crate::Error) {
        let handler = &mut self.handler;
        let _ = catch(|| handler.refused(remote, &error));
        self.remove(index);
    }

    /// Answers with `response` (if any) and closes.
    fn answer(&mut self, index: u32, response: Option<Response<Bytes>>) {
        let remote = match self.slots[index as usize]
            .conn
            .as_ref()
            .map(|conn| &conn.phase)
        {
            Some(Phase::Handshake(handshake)) => Some(handshake.remote),
            _ => None,
        };
        let mut output = Output::default();
        if let Some(mut response) = response {
            // The connection ends after it; a response that names other
            // options (`Upgrade, close` on a 426) keeps its own.
            if !response.headers().contains_key(CONNECTION) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            let mut bytes = Vec::with_capacity(256 + response.body().len());
            handshake::write_response_with_body(&response, &mut bytes);
            output.push(Bytes::from(bytes));
        }
        let deadline = self.now + self.send_timeout;
        let slot = &mut self.slots[index as usize];
        if let Some(conn) = &mut slot.conn {
            conn.phase = Phase::Ending(Box::new(Ending {
                output,
                deadline,
                shut_down: false,
                remote,
                drain_left: ANSWER_DRAIN,
            }));
        }
        slot.scheduled = 0;
        self.schedule(index, deadline);
        self.mark_dirty(index);
    }

    // ---- reading ----

    fn readable(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize)
            && slot.conn.is_some()
        {
            slot.flags |= READABLE;
            self.read(index);
        }
    }

    fn read(&mut self, index: u32) {
        let Some(slot) = self.slots.get(index as usize) else {
            return;
        };
        if slot.flags & READABLE == 0 {
            return;
        }
        match slot.conn.as_ref().map(|conn| &conn.phase) {
            Some(Phase::Handshake(_)) => self.read_handshake(index),
            Some(Phase::Open(_)) => self.read_open(index),
            Some(Phase::Ending(_)) => self.read_ending(index),
            None => {}
        }
    }

    fn read_open(&mut self, index: u32) {
        for _ in 0..READS_PER_TURN {
            let slot = &mut self.slots[index as usize];
            let Some(Conn {
                stream,
                phase: Phase::Open(open),
            }) = &mut slot.conn
            else {
                return;
            };
            if slot.flags & (STALLED | BROKEN) != 0
                || !open.engine.wants_read()
                || over_buffer_limit(&open.engine, &open.output)
            {
                // Resumed by `after_write` once the cause is gone.
                return;
            }
            if let Share::Joined(_) = open.budget {
                let mut cx = Context::from_waker(&self.waker);
                if let Err(due) = open.budget.poll_read_at(&mut cx, self.now) {
                    // Woken (a scan) when memory is freed or this one is
                    // shed; at `due` its timer asks again, which sheds
                    // the largest holders.
                    slot.flags |= STALLED;
                    self.schedule(index, due);
                    return;
                }
            }
            let (result, asked) = read_into_engine(stream, &mut open.engine, &mut self.read_buffer);
            match result {
                Ok(0) => {
                    slot.flags &= !READABLE;
                    open.engine.receive_eof();
                    self.process(index);
                    return;
                }
                Ok(read) => {
                    open.permit.tally.read(read);
                    self.process(index);
                    // Input can start a timer (a message's or a frame's
                    // completion timeout) that nothing else would
                    // schedule when no reply is written.
                    self.reschedule(index);
                    if read < asked {
                        // Read dry: the next edge reports more.
                        if let Some(slot) = self.slots.get_mut(index as usize) {
                            slot.flags &= !READABLE;
                        }
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    slot.flags &= !READABLE;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    slot.flags = (slot.flags & !READABLE) | BROKEN;
                    open.engine.receive_eof();
                    open.output = Unwritten::default();
                    self.process(index);
                    return;
                }
            }
        }
        // Still readable: the others get their turn first.
        self.again.push(index);
    }

    fn read_ending(&mut self, index: u32) {
        loop {
            let slot = &mut self.slots[index as usize];
            let Some(conn) = &mut slot.conn else {
                return;
            };
            match conn.stream.read(&mut self.read_buffer) {
                Ok(0) => {
                    slot.flags &= !READABLE;
                    if let Phase::Ending(ending) = &conn.phase
                        && ending.shut_down
                    {
                        return self.remove(index);
                    }
                    return;
                }
                Ok(read) => {
                    if let Phase::Ending(ending) = &mut conn.phase {
                        ending.drain_left = ending.drain_left.saturating_sub(read);
                        if ending.drain_left == 0 {
                            return self.remove(index);
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    slot.flags &= !READABLE;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.remove(index),
            }
        }
    }

    /// Hands the engine's events to the application, and marks the
    /// connection for writing if anything was queued.
    fn process(&mut self, index: u32) {
        let id = self.id(index);
        let Loop {
            slots,
            shared,
            handler,
            dirty,
            ..
        } = self;
        let slot = &mut slots[index as usize];
        let Some(Conn {
            phase: Phase::Open(open),
            ..
        }) = &mut slot.conn
        else {
            return;
        };
        let mut pressed = false;
        if open.closed.is_none() {
            loop {
                if slot.flags & BROKEN != 0 {
                    // Nothing more can be written: what is queued is
                    // dropped, so that neither the buffer limit nor a
                    // backlog of Pongs holds up the engine's end.
                    while open.engine.poll_transmit().is_some() {}
                } else if over_buffer_limit(&open.engine, &open.output) {
                    // The peer does not read what it is sent: what it
                    // sent stays unparsed (and unread, see `read_open`)
                    // until the writes drain, as a tokio server waits in
                    // `send`. Nothing is dropped.
                    break;
                }
                let Some(event) = open.engine.next_event() else {
                    break;
                };
                let event = match event {
                    Event::Closed(closed) => {
                        if let Some(data) = open.data.take() {
                            let _ = catch(|| handler.close(id, data, &closed));
                        }
                        open.closed = Some(Box::new(closed));
                        break;
                    }
                    event => event,
                };
                let Some(data) = open.data.as_mut() else {
                    // Its handler panicked: events until the end are
                    // dropped.
                    continue;
                };
                let mut socket = Socket {
                    id,
                    engine: &mut open.engine,
                    unwritten: open.output.len(),
                    shared,
                    wrote: false,
                    pressed: false,
                };
                // A callback that panics ends its own connection (1011),
                // not the loop and its other connections.
                let called = std::panic::catch_unwind(AssertUnwindSafe(|| match event {
                    Event::Message(message) => handler.message(&mut socket, data, message),
                    Event::Ping(payload) => handler.ping(&mut socket, data, &payload),
                    Event::Pong(payload) => handler.pong(&mut socket, data, &payload),
                    _ => {}
                }));
                pressed |= socket.pressed;
                if called.is_err() {
                    open.data = None;
                    let _ = open
                        .engine
                        .abort(CloseCode::INTERNAL_ERROR, "internal error");
                }
            }
        }
        open.budget
            .update(open.engine.memory_held() + open.output.held());
        open.permit.tally.see(&open.engine);
        if pressed {
            slot.flags |= PRESSED;
        }
        if slot.flags & DIRTY == 0
            && (open.engine.wants_write() || !open.output.is_empty() || open.closed.is_some())
        {
            slot.flags |= DIRTY;
            dirty.push(index);
        }
    }

    // ---- writing ----

    fn mark_dirty(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if slot.flags & DIRTY == 0 {
            slot.flags |= DIRTY;
            self.dirty.push(index);
        }
    }

    fn writable(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize)
            && slot.flags & BLOCKED != 0
        {
            slot.flags &= !BLOCKED;
            self.mark_dirty(index);
        }
    }

    /// Delivers the iteration's publishes, then writes every connection
    /// that has output, once. Callbacks run meanwhile (`writable`) may
    /// queue more: repeated until nothing is left (bounded).
    fn flush_all(&mut self) {
        for _ in 0..4 {
            self.deliver_publishes();
            if self.dirty.is_empty() {
                return;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for &index in &dirty {
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    slot.flags &= !DIRTY;
                    self.flush(index);
                }
            }
            // Keep the list's allocation.
            if self.dirty.is_empty() {
                self.dirty = dirty;
                self.dirty.clear();
            }
        }
    }

    fn flush(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = &mut slot.conn else {
            return;
        };
        match &mut conn.phase {
            Phase::Handshake(_) => {}
            Phase::Ending(ending) => {
                if slot.flags & BLOCKED != 0 {
                    return;
                }
                let before = ending.output.len();
                let written = write_output(&mut conn.stream, &mut ending.output);
                let progress = ending.output.len() < before;
                let first_end = matches!(written, Ok(true)) && !ending.shut_down;
                if first_end {
                    ending.shut_down = true;
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    ending.deadline = self.now + LINGER;
                } else if progress && !ending.shut_down {
                    // The send timeout counts from the last progress.
                    ending.deadline = self.now + self.send_timeout;
                }
                let deadline = ending.deadline;
                match written {
                    Ok(_) if first_end || progress => {
                        if let Ok(false) = written {
                            slot.flags |= BLOCKED;
                        }
                        slot.scheduled = 0;
                        self.schedule(index, deadline);
                        if first_end {
                            // What the client sent meanwhile is read and
                            // dropped; its end closes ours.
                            self.slots[index as usize].flags |= READABLE;
                            self.read(index);
                        }
                    }
                    Ok(true) => {}
                    Ok(false) => slot.flags |= BLOCKED,
                    Err(_) => self.remove(index),
                }
            }
            Phase::Open(open) => {
                if slot.flags & (BLOCKED | BROKEN) == 0 {
                    let written = write_open(
                        &mut conn.stream,
                        &mut open.engine,
                        &mut open.output,
                        &mut self.staging,
                    );
                    match written {
                        Ok((bytes, done)) => {
                            let head = bytes.min(open.head as usize);
                            open.head -= head as u32;
                            open.permit.tally.wrote(bytes - head);
                            if !done {
                                slot.flags |= BLOCKED;
                            }
                        }
                        Err(_) => {
                            slot.flags |= BROKEN;
                            open.output = Unwritten::default();
                            open.engine.receive_eof();
                        }
                    }
                    open.budget
                        .update(open.engine.memory_held() + open.output.held());
                    // Publishes queued sends too (`deliver`).
                    open.permit.tally.see(&open.engine);
                    open.permit.tally.publish_into(&mut self.batch);
                }
                self.after_write(index);
            }
        }
    }

    /// After a write: the application's `writable`, resumed reading, and
    /// the end of a closed connection.
    fn after_write(&mut self, index: u32) {
        let id = self.id(index);
        let slot = &self.slots[index as usize];
        if let Some(Conn {
            phase: Phase::Open(open),
            ..
        }) = &slot.conn
            && open.closed.is_none()
            && (slot.flags & BROKEN != 0
                || (open.engine.wants_read() && open.engine.has_buffered_frame()))
        {
            // The engine stops handing out frames on a backlog of Pongs:
            // now written, the frames it received meanwhile (perhaps all
            // the peer sent, so no read will come) are handed out. Their
            // replies are written by the next round of `flush_all`. A
            // write that failed (the peer reset the connection while
            // parsing waited for its writes) hands out the rest and the
            // end now: no other readiness comes.
            self.process(index);
        }
        let slot = &mut self.slots[index as usize];
        let Some(Conn {
            stream,
            phase: Phase::Open(open),
        }) = &mut slot.conn
        else {
            return;
        };
        let flushed = open.output.is_empty() && !open.engine.wants_write();
        if flushed && slot.flags & PRESSED != 0 && open.data.is_some() {
            let buffered = open.engine.buffered_amount();
            if buffered <= open.engine.config().get_high_water_bytes() {
                slot.flags &= !PRESSED;
                let mut socket = Socket {
                    id,
                    engine: &mut open.engine,
                    unwritten: 0,
                    shared: &mut self.shared,
                    wrote: false,
                    pressed: false,
                };
                let handler = &mut self.handler;
                let called = open
                    .data
                    .as_mut()
                    .map(|data| catch(|| handler.writable(&mut socket, data)));
                if socket.pressed {
                    slot.flags |= PRESSED;
                }
                if let Some(Err(())) = called {
                    // As a panicking `message`: 1011, data dropped.
                    open.data = None;
                    let _ = open
                        .engine
                        .abort(CloseCode::INTERNAL_ERROR, "internal error");
                }
                if open.engine.wants_write() {
                    slot.flags |= DIRTY;
                    self.dirty.push(index);
                }
            }
        }
        if flushed && open.closed.is_none() && open.engine.has_buffered_frame() {
            // Parsing had stopped at the buffer limit (see `process`).
            self.process(index);
            return self.after_write(index);
        }
        if slot.flags & READABLE != 0 && open.engine.wants_read() && slot.flags & STALLED == 0 {
            // Reading had stopped on a backlog of Pongs or at the buffer
            // limit, now written.
            self.again.push(index);
        }
        if open.engine.state() == State::Closed && open.closed.is_none() {
            // Closed by a write error or a timer: hand out the end.
            self.process(index);
            return self.after_write(index);
        }
        let broken = slot.flags & BROKEN != 0;
        let give_up = open.engine.close_timed_out();
        if open.closed.is_some()
            && (broken || give_up || (flushed && open.engine.should_close_transport()))
        {
            let failed = open.closed.as_ref().is_some_and(|closed| {
                matches!(
                    closed.error,
                    Some(sockeye_proto::Error::Protocol(_) | sockeye_proto::Error::Aborted(_))
                )
            });
            let clean = open.closed.as_ref().is_some_and(|closed| closed.is_clean());
            open.permit.tally.see(&open.engine);
            // Its counts before its end, as the tokio front-end's.
            self.batch.publish(self.server.counters());
            open.permit.finish(clean);
            if broken || give_up {
                return self.remove(index);
            }
            let _ = stream.shutdown(Shutdown::Write);
            if !failed {
                return self.remove(index);
            }
            // Linger: read and drop what the peer still sends.
            let deadline = self.now + LINGER;
            self.shared.topics.remove_connection(id);
            let slot = &mut self.slots[index as usize];
            if let Some(conn) = &mut slot.conn {
                conn.phase = Phase::Ending(Box::new(Ending {
                    output: Output::default(),
                    deadline,
                    shut_down: true,
                    remote: None,
                    // Bounded by the linger's deadline, as the tokio
                    // front-end's `poll_linger` is.
                    drain_left: usize::MAX,
                }));
            }
            slot.scheduled = 0;
            self.schedule(index, deadline);
            self.read(index);
            return;
        }
        self.reschedule(index);
    }

    fn deliver_publishes(&mut self) {
        while !self.shared.pending.is_empty() {
            let mut pending = std::mem::take(&mut self.shared.pending);
            let mut start = 0;
            while start < pending.len() {
                // A run of publishes to one topic goes to each subscriber
                // together (in order: runs are taken in publish order).
                let topic = pending[start].0.clone();
                let run = pending[start..]
                    .iter()
                    .take_while(|(other, ..)| **other == *topic)
                    .count();
                self.deliver(&topic, &pending[start..start + run]);
                start += run;
            }
            // Keep the list's allocation.
            pending.clear();
            if self.shared.pending.is_empty() {
                self.shared.pending = pending;
            }
        }
    }

    /// Queues a run of publishes to `topic` for each of this loop's
    /// subscribers and writes it at once, subscriber by subscriber (as
    /// uWebSockets drains a topic): one subscriber's output buffer is
    /// allocated, written and freed before the next one's, so a thousand
    /// subscribers reuse one block of memory instead of holding a
    /// thousand at the same time.
    fn deliver(&mut self, topic: &str, run: &[(Arc<str>, PreparedMessage, Option<ConnId>)]) {
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        targets.extend_from_slice(self.shared.topics.subscribers(topic));
        for &id in &targets {
            let Some(slot) = self.slots.get_mut(id.slot as usize) else {
                continue;
            };
            if slot.generation != id.generation {
                continue;
            }
            let Some(Conn {
                phase: Phase::Open(open),
                ..
            }) = &mut slot.conn
            else {
                continue;
            };
            let mut queued = false;
            for (_, prepared, exclude) in run {
                if Some(id) == *exclude {
                    continue;
                }
                if open.closed.is_some() {
                    break;
                }
                let buffered = open.engine.buffered_amount() + open.output.len();
                if buffered >= open.engine.config().get_max_buffered_bytes() {
                    // Too slow to keep up with the topic: closed with
                    // 1008, as the tokio hub's default policy does; what
                    // it holds is dropped.
                    crate::budget::shed_with(
                        &mut open.engine,
                        &mut open.output.take(),
                        CloseCode::POLICY_VIOLATION,
                        "too slow to keep up",
                    );
                    // Its end is handed out by `process`, reached through
                    // the read path.
                    self.again.push(id.slot);
                    slot.flags |= READABLE;
                    queued = true;
                    break;
                }
                if open.engine.send_prepared(prepared).is_ok() {
                    queued = true;
                }
            }
            if queued {
                if slot.flags & (BLOCKED | BROKEN) == 0 {
                    self.flush(id.slot);
                } else {
                    self.mark_dirty(id.slot);
                }
            }
        }
        self.targets = targets;
    }

    // ---- timers ----

    fn schedule(&mut self, index: u32, at: Instant) {
        let at = self.tick(at);
        let slot = &mut self.slots[index as usize];
        // A later deadline keeps the earlier entry: it fires early, finds
        // nothing due and schedules the real one. The heap so gets an
        // entry only when a deadline comes closer, not each time input
        // pushes the idle or keepalive deadline back.
        if slot.scheduled != 0 && slot.scheduled <= at {
            return;
        }
        slot.scheduled = at;
        self.timers.push(Reverse((at, index, slot.generation)));
    }

    /// `at` as a tick: nanoseconds after the loop's epoch, plus one (0
    /// is no deadline). 64 bits last 584 years.
    fn tick(&self, at: Instant) -> Tick {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    fn instant(&self, tick: Tick) -> Instant {
        self.epoch + Duration::from_nanos(tick.saturating_sub(1))
    }

    fn reschedule(&mut self, index: u32) {
        let now = self.now;
        let slot = &mut self.slots[index as usize];
        let deadline = match slot.conn.as_mut().map(|conn| &mut conn.phase) {
            Some(Phase::Handshake(handshake)) => Some(handshake.deadline),
            Some(Phase::Open(open)) => open.engine.poll_timeout(now),
            Some(Phase::Ending(ending)) => Some(ending.deadline),
            None => None,
        };
        if let Some(deadline) = deadline {
            self.schedule(index, deadline);
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        let due = self.tick(now);
        while let Some(&Reverse((at, index, generation))) = self.timers.peek() {
            if at > due {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if slot.generation != generation || slot.scheduled != at || slot.conn.is_none() {
                continue;
            }
            slot.scheduled = 0;
            match slot.conn.as_mut().map(|conn| &mut conn.phase) {
                Some(Phase::Handshake(handshake)) if handshake.deadline <= now => {
                    // No request within the handshake timeout: dropped,
                    // as the tokio server drops it.
                    let remote = handshake.remote;
                    self.refuse(index, remote, crate::Error::OpenTimeout);
                }
                Some(Phase::Ending(ending)) if ending.deadline <= now => {
                    if !ending.shut_down
                        && let Some(remote) = ending.remote
                    {
                        let error = io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the client accepted no data for {:?}", self.send_timeout),
                        );
                        let handler = &mut self.handler;
                        let _ = catch(|| handler.answer_failed(remote, &error));
                    }
                    self.remove(index);
                }
                Some(Phase::Open(open)) => {
                    open.engine.handle_timeout(now);
                    if slot.flags & STALLED != 0 {
                        // Perhaps the memory budget's timeout: asked
                        // again, the budget sheds or lets it read.
                        slot.flags &= !STALLED;
                        self.again.push(index);
                    }
                    self.process(index);
                    self.mark_dirty(index);
                    self.reschedule(index);
                }
                _ => self.reschedule(index),
            }
        }
        // Entries outlive their connections' deadlines (a handshake's,
        // once open): after a crowd of clients, give the memory back.
        let capacity = self.timers.capacity();
        if capacity > 1024 && self.timers.len() < capacity / 4 {
            self.timers.shrink_to(self.timers.len() * 2);
        }
    }

    // ---- commands, drain and budget ----

    fn woken(&mut self) {
        if self.signal.commands.swap(false, Ordering::AcqRel) {
            while let Ok(command) = self.commands.try_recv() {
                self.command(command);
            }
        }
        if self.signal.scan.swap(false, Ordering::AcqRel) {
            self.scan();
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Send(id, message) => {
                if !self.live(id) {
                    return;
                }
                if let Some(Conn {
                    phase: Phase::Open(open),
                    ..
                }) = &mut self.slots[id.slot as usize].conn
                {
                    let buffered = open.engine.buffered_amount() + open.output.len();
                    if buffered < open.engine.config().get_max_buffered_bytes()
                        && open.engine.send(message).is_ok()
                    {
                        self.mark_dirty(id.slot);
                    }
                }
            }
            Command::Close(id, code, reason) => {
                if !self.live(id) {
                    return;
                }
                if let Some(Conn {
                    phase: Phase::Open(open),
                    ..
                }) = &mut self.slots[id.slot as usize].conn
                    && open.engine.send_close(code, &reason).is_ok()
                {
                    self.mark_dirty(id.slot);
                    self.reschedule(id.slot);
                }
            }
            Command::Publish(topic, prepared, exclude) => {
                self.shared.pending.push((topic, prepared, exclude));
            }
            Command::Stop => self.stopping = true,
        }
    }

    /// A drain or memory-budget signal came for some connection: looks
    /// at each open one's.
    fn scan(&mut self) {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        for index in 0..self.slots.len() as u32 {
            let slot = &mut self.slots[index as usize];
            let Some(Conn {
                phase: Phase::Open(open),
                ..
            }) = &mut slot.conn
            else {
                continue;
            };
            match open.permit.drain.poll(Some(&cx)) {
                Some(DrainSignal::Close { at, code, reason }) => {
                    let _ = open.engine.close_at(at, code, &reason);
                    self.reschedule(index);
                }
                Some(DrainSignal::Abort) => {
                    let aborted = open
                        .engine
                        .abort(CloseCode::GOING_AWAY, "server shutting down");
                    if aborted.is_ok() && open.closed.is_none() {
                        // Cut at the drain's deadline: it ends as
                        // `DrainReport::abandoned` says, and as a tokio
                        // connection does, with the closing handshake
                        // timed out (not as one aborted by this side).
                        while let Some(event) = open.engine.next_event() {
                            if let Event::Closed(mut closed) = event {
                                closed.error = Some(sockeye_proto::Error::Timeout(
                                    sockeye_proto::Timeout::Close,
                                ));
                                if let Some(data) = open.data.take() {
                                    let id = ConnId {
                                        loop_index: self.index,
                                        slot: index,
                                        generation: slot.generation,
                                    };
                                    let handler = &mut self.handler;
                                    let _ = catch(|| handler.close(id, data, &closed));
                                }
                                open.closed = Some(Box::new(closed));
                                break;
                            }
                        }
                    }
                    let slot = &mut self.slots[index as usize];
                    slot.flags |= BROKEN;
                    self.process(index);
                    self.after_write(index);
                    continue;
                }
                None => {}
            }
            let slot = &mut self.slots[index as usize];
            let Some(Conn {
                phase: Phase::Open(open),
                ..
            }) = &mut slot.conn
            else {
                continue;
            };
            if open.closed.is_none() && open.budget.poll_shed(&mut cx) {
                crate::budget::shed(&mut open.engine, &mut open.output.take());
                self.process(index);
                self.mark_dirty(index);
                continue;
            }
            if slot.flags & STALLED != 0 {
                match open.budget.poll_read_at(&mut cx, self.now) {
                    Ok(()) => {
                        slot.flags &= !STALLED;
                        self.again.push(index);
                    }
                    Err(due) => self.schedule(index, due),
                }
            }
        }
    }

    // ---- ending ----

    /// Drops a connection: its socket, its subscriptions, its slot.
    fn remove(&mut self, index: u32) {
        let id = self.id(index);
        let slot = &mut self.slots[index as usize];
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        slot.flags = 0;
        slot.scheduled = 0;
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Phase::Open(mut open) = conn.phase {
            if let Some(data) = open.data.take() {
                // Ended without the engine saying how (the loop stopped, a
                // drain's deadline): tell the application all the same.
                let closed = open.closed.take().map(|closed| *closed).unwrap_or(Closed {
                    initiated_by: sockeye_proto::Initiator::Local,
                    sent: None,
                    received: None,
                    error: Some(sockeye_proto::Error::Aborted(CloseCode::GOING_AWAY)),
                });
                let handler = &mut self.handler;
                let _ = catch(|| handler.close(id, data, &closed));
            }
            open.permit.tally.see(&open.engine);
            // Its counts before its end (the permit counts it when
            // dropped here).
            self.batch.publish(self.server.counters());
        }
        self.shared.topics.remove_connection(id);
        self.free.push(index);
    }

    fn shut_down(&mut self) {
        self.listener = None;
        for index in 0..self.slots.len() as u32 {
            self.remove(index);
        }
    }
}

/// Whether a connection has `max_buffered_bytes` or more queued: it
/// neither reads nor parses more until that drains.
fn over_buffer_limit(engine: &Connection, output: &Unwritten) -> bool {
    engine.buffered_amount() + output.len() >= engine.config().get_max_buffered_bytes()
}

fn tracing_note(_error: &io::Error) {
    // A connection that could not be set up (registration failed) is
    // dropped; the client sees its connection closed.
}

/// Whether a request asks for a WebSocket upgrade (`Upgrade: websocket`
/// and `Connection: upgrade`); the policy judges the rest. Other requests
/// go to `Handler::http` first.
pub(crate) fn is_websocket_request(request: &Request<()>) -> bool {
    let headers = request.headers();
    handshake::contains_token(headers, &http::header::UPGRADE, "websocket")
        && handshake::contains_token(headers, &http::header::CONNECTION, "upgrade")
}

/// Reads once for an open connection: into the loop's buffer between
/// frames (copied into the engine, or handed over whole when large), or
/// straight into the engine's buffer in the middle of a large frame.
/// Returns what the read returned and how much it asked for.
fn read_into_engine(
    stream: &mut TcpStream,
    engine: &mut Connection,
    read_buffer: &mut BytesMut,
) -> (io::Result<usize>, usize) {
    let missing = engine.frame_bytes_missing();
    if !engine.receive_buffer().is_empty() || missing > READ_BUFFER {
        let buffer = engine.receive_buffer_with_room(READ_BUFFER);
        let start = buffer.len();
        let room = (buffer.capacity() - start).clamp(4096, DIRECT_READ);
        buffer.resize(start + room, 0);
        let result = stream.read(&mut buffer[start..]);
        buffer.truncate(start + *result.as_ref().unwrap_or(&0));
        return (result, room);
    }
    let result = stream.read(read_buffer);
    if let Ok(read) = result {
        if read >= HAND_OVER_READ {
            let mut full = std::mem::replace(read_buffer, BytesMut::zeroed(READ_BUFFER));
            full.truncate(read);
            engine.receive_bytes(full);
        } else if read > 0 {
            engine.receive_data(&read_buffer[..read]);
        }
    }
    (result, READ_BUFFER)
}

/// Writes what is queued for an open connection: output left from
/// before, then what the engine has. One `write` for a single chunk (the
/// common case: every small frame of the iteration corked together),
/// vectored for more. Returns the bytes written and whether all was.
fn write_open(
    stream: &mut TcpStream,
    engine: &mut Connection,
    output: &mut Unwritten,
    staging: &mut Vec<Bytes>,
) -> io::Result<(usize, bool)> {
    let mut total = 0;
    loop {
        if !output.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = output.slices(&mut slices);
            match stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    output.advance(written);
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, false));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        // The common case: every frame of the iteration corked in one
        // buffer, written from where it lies (no chunk to share and drop).
        if let Some(pending) = engine.peek_transmit() {
            let offered = pending.len();
            match stream.write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    engine.consume_transmit(written);
                    if written < offered {
                        // The rest stays in the engine, handed out next.
                        return Ok((total, false));
                    }
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, false));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        staging.clear();
        while staging.len() < MAX_IOVECS {
            match engine.poll_transmit() {
                Some(chunk) => staging.push(chunk),
                None => break,
            }
        }
        if staging.is_empty() {
            return Ok((total, true));
        }
        let result = loop {
            let result = if staging.len() == 1 {
                stream.write(&staging[0])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                for (slice, chunk) in slices.iter_mut().zip(staging.iter()) {
                    *slice = IoSlice::new(chunk);
                }
                stream.write_vectored(&slices[..staging.len()])
            };
            match result {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let mut written = match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => return Err(error),
        };
        total += written;
        let mut blocked = false;
        for mut chunk in staging.drain(..) {
            if written >= chunk.len() {
                written -= chunk.len();
                continue;
            }
            let _ = chunk.split_to(written);
            written = 0;
            blocked = true;
            output.push(chunk);
        }
        if blocked {
            // The socket took less than offered: full for now.
            return Ok((total, false));
        }
    }
}

/// Writes a last answer; true once all of it is written.
fn write_output(stream: &mut TcpStream, output: &mut Output) -> io::Result<bool> {
    while !output.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = output.slices(&mut slices);
        match stream.write_vectored(&slices[..count]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => output.advance(written),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// Output taken from an open connection's engine that its socket did not
/// take: boxed, and only while there is some, so that an idle connection
/// holds a null pointer instead of a queue (and the queue's allocation).
#[derive(Default)]
struct Unwritten(Option<Box<Output>>);

impl Unwritten {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |output| output.len())
    }

    fn held(&self) -> usize {
        self.0.as_ref().map_or(0, |output| output.held())
    }

    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.0.get_or_insert_default().push(chunk);
        }
    }

    fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        self.0.as_ref().map_or(0, |output| output.slices(slices))
    }

    /// Drops `written` bytes from the front; the queue itself once empty.
    fn advance(&mut self, written: usize) {
        if let Some(output) = &mut self.0 {
            output.advance(written);
            if output.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Everything, taken out.
    fn take(&mut self) -> Output {
        self.0.take().map(|output| *output).unwrap_or_default()
    }
}

/// Runs an application callback; a panic in it is caught (and has been
/// printed by the panic hook), so that it ends at most its own connection,
/// not the loop and every other connection on it.
fn catch<T>(callback: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(AssertUnwindSafe(callback)).map_err(|_| ())
}

/// The answer to a request whose `Handler::http` panicked.
fn internal_error_response() -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(b"internal server error\n"));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
