//! A PROTOTYPE, for comparison with [`crate::raw_mio`]: the same raw TCP
//! echo loop driven through tokio's readiness API instead of mio
//! (`sockeye-bench-peer --peer raw-readiness`). It answers the issue's
//! question of whether an event-loop server could keep tokio's I/O driver
//! (and so the rest of the tokio ecosystem on the same thread) without a
//! task per connection. It is not a server to build on as it is.
//!
//! One tokio current-thread runtime runs ONE task, the driver, which owns
//! the listener, the connections (a [`Slab`]) and one read buffer of
//! [`READ_BUFFER`] bytes shared by all of them. There is no task per
//! connection: every connection has a small waker of its own
//! (`ConnectionWaker`, an `Arc`) that, when tokio's I/O driver finds the socket
//! ready, puts the connection's index on a ready list shared with the
//! driver and wakes the driver. The driver, when polled, accepts what the
//! listener has, then drives only the connections on the ready list:
//! `poll_read_ready` / `poll_write_ready` with that connection's waker
//! (which leaves the waker with tokio when the socket is not ready), then
//! `try_read` / `try_write`. The echo itself is raw-mio's: each read
//! written back once; what the socket does not take is kept for that
//! connection alone, which is then not read until it has gone out; a
//! short read is taken to have drained the socket (see the next
//! paragraph). TCP_NODELAY on every connection.
//!
//! tokio details the prototype depends on:
//!
//! - `try_read` clears tokio's readiness only when the call returns
//!   `WouldBlock`. A short read is made to clear it too by running the
//!   read inside `try_io` and returning `WouldBlock` from the closure when
//!   it was short (the bytes read are kept aside): as tokio's own
//!   `poll_read` does, and as raw-mio does. Likewise a partial write, so
//!   that `poll_write_ready` then waits for room instead of reporting the
//!   stale readiness (which would cost a `write` that finds none).
//! - `poll_read_ready` takes from tokio's cooperative budget (128 per
//!   poll of a task): one task driving thousands of sockets would run out
//!   and be told `Pending` for sockets that are ready. The driver runs
//!   under `tokio::task::unconstrained`; it is fair by construction (one
//!   pass over the ready list per poll, then it yields).
//! - Every connection costs, besides its slab entry and socket, tokio's
//!   registration state (`ScheduledIo`, an `Arc` per socket, aligned to
//!   128 bytes on x86-64: 256 bytes with the `Arc`'s counts) and the `Arc`
//!   of its waker. A waker that is only an index would need `unsafe`
//!   (`RawWaker`), which this crate forbids.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

/// Bytes read at once, into the driver's one buffer.
pub const READ_BUFFER: usize = 64 * 1024;

/// How long to wait before accepting again when accepting failed (most
/// likely out of file descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// What the connections' wakers share with the driver.
#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<ReadyList>,
}

/// The connections woken since the driver last looked, and the driver's
/// own waker.
#[derive(Debug, Default)]
struct ReadyList {
    ready: Vec<usize>,
    driver: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ReadyList> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's waker: tokio holds it while the socket is not ready,
/// and waking it queues the connection for the driver.
#[derive(Debug)]
struct ConnectionWaker {
    index: usize,
    /// On the ready list already (it is put there once however often it
    /// is woken before the driver gets to it).
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for ConnectionWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut list = self.shared.lock();
        list.ready.push(self.index);
        // The driver takes the whole list when it runs: it needs waking
        // for the first entry only.
        if list.ready.len() == 1
            && let Some(driver) = &list.driver
        {
            driver.wake_by_ref();
        }
    }
}

/// One connection: its socket, its waker and, only while the socket
/// would not take an echo whole, the bytes still to write.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    waker: Arc<ConnectionWaker>,
    /// What is left to write; while there is any, the connection is not
    /// read.
    unwritten: Option<Vec<u8>>,
}

/// The driver task's state.
struct Driver {
    listener: TcpListener,
    connections: Slab<Connection>,
    shared: Arc<Shared>,
    buffer: Vec<u8>,
    /// The ready list taken from `shared` (kept to reuse its room).
    taken: Vec<usize>,
    /// After a failed accept: when to try again.
    retry: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Binds `listen`, prints `listening on ADDR` and serves forever on a
/// current-thread runtime with the one driver task.
pub fn run(listen: &str) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener).await
    })
}

/// Drives `listener` and every connection it accepts from the calling
/// task, forever.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let mut driver = Driver {
        listener,
        connections: Slab::new(),
        shared: Arc::default(),
        buffer: vec![0; READ_BUFFER],
        taken: Vec::new(),
        retry: None,
    };
    tokio::task::unconstrained(std::future::poll_fn(move |cx| driver.poll(cx))).await
}

impl Driver {
    /// One pass: accept, then drive every connection woken since the last
    /// pass. Never ready.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut list = self.shared.lock();
            if !list
                .driver
                .as_ref()
                .is_some_and(|driver| driver.will_wake(cx.waker()))
            {
                list.driver = Some(cx.waker().clone());
            }
            std::mem::swap(&mut list.ready, &mut self.taken);
        }
        self.accept(cx);
        let mut taken = std::mem::take(&mut self.taken);
        for index in taken.drain(..) {
            let Some(connection) = self.connections.get_mut(index) else {
                // Closed since it was woken.
                continue;
            };
            connection.waker.queued.store(false, Ordering::Release);
            if let Err(error) = drive(connection, &mut self.buffer) {
                if error.kind() != io::ErrorKind::UnexpectedEof {
                    debug(&error);
                }
                self.connections.remove(index);
            }
        }
        self.taken = taken;
        Poll::Pending
    }

    /// Accepts what the listener has (the listener wakes the driver
    /// itself); new connections are driven at once, which hands their
    /// wakers to tokio.
    fn accept(&mut self, cx: &mut Context<'_>) {
        if let Some(retry) = &mut self.retry {
            if retry.as_mut().poll(cx).is_pending() {
                return;
            }
            self.retry = None;
        }
        loop {
            let stream = match self.listener.poll_accept(cx) {
                Poll::Pending => return,
                Poll::Ready(Ok((stream, _))) => stream,
                Poll::Ready(Err(error)) => {
                    eprintln!("accept failed: {error}");
                    let mut retry = Box::pin(tokio::time::sleep(ACCEPT_RETRY));
                    // Registers the driver's waker with the timer.
                    let _ = retry.as_mut().poll(cx);
                    self.retry = Some(retry);
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let entry = self.connections.vacant_entry();
            let waker = Arc::new(ConnectionWaker {
                index: entry.key(),
                queued: AtomicBool::new(false),
                shared: self.shared.clone(),
            });
            let index = entry.key();
            let connection = entry.insert(Connection {
                stream,
                waker,
                unwritten: None,
            });
            if let Err(error) = drive(connection, &mut self.buffer) {
                if error.kind() != io::ErrorKind::UnexpectedEof {
                    debug(&error);
                }
                self.connections.remove(index);
            }
        }
    }
}

/// Writes what is left, then reads and echoes until the socket is
/// drained or would not take a whole echo; leaves the connection's waker
/// with tokio for what it waits for. An error (`UnexpectedEof` when the
/// peer closed) means the connection is to be dropped.
fn drive(connection: &mut Connection, buffer: &mut [u8]) -> io::Result<()> {
    let waker = Waker::from(connection.waker.clone());
    let mut cx = Context::from_waker(&waker);
    let stream = &connection.stream;
    if let Some(unwritten) = &mut connection.unwritten {
        if !flush(stream, unwritten, &mut cx)? {
            return Ok(());
        }
        connection.unwritten = None;
    }
    loop {
        match stream.poll_read_ready(&mut cx) {
            Poll::Pending => return Ok(()),
            Poll::Ready(result) => result?,
        }
        let read = match read_some(stream, buffer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => read,
            // Drained, and tokio knows: the next poll_read_ready leaves
            // the waker with it.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        };
        let written = write_some(stream, &buffer[..read])?;
        if written < read {
            let mut unwritten = buffer[written..read].to_vec();
            if !flush(stream, &mut unwritten, &mut cx)? {
                connection.unwritten = Some(unwritten);
                return Ok(());
            }
        }
    }
}

/// One read into `buffer`. A short read clears tokio's read readiness as
/// `WouldBlock` would (the socket is drained: the next segment brings a
/// new edge), so that the next `poll_read_ready` waits instead of asking
/// the kernel again.
fn read_some(stream: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    let room = buffer.len();
    let mut read = 0;
    let outcome = stream.try_io(Interest::READABLE, || {
        read = stream.try_read(buffer)?;
        if read > 0 && read < room {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match outcome {
        Ok(()) => Ok(read),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock && read > 0 => Ok(read),
        Err(error) => Err(error),
    }
}

/// One write of `data`: how much the socket took. A partial write clears
/// tokio's write readiness as `WouldBlock` would (the send buffer is
/// full), so that `poll_write_ready` waits for room.
fn write_some(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    let outcome = stream.try_io(Interest::WRITABLE, || {
        written = stream.try_write(data)?;
        if written < data.len() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match outcome {
        Ok(()) => Ok(written),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(written),
        Err(error) => Err(error),
    }
}

/// Writes `unwritten` as far as the socket takes it: true once all of it
/// went out, false when the connection's waker was left with tokio for
/// WRITABLE.
fn flush(stream: &TcpStream, unwritten: &mut Vec<u8>, cx: &mut Context<'_>) -> io::Result<bool> {
    while !unwritten.is_empty() {
        match stream.poll_write_ready(cx) {
            Poll::Pending => return Ok(false),
            Poll::Ready(result) => result?,
        }
        let written = write_some(stream, unwritten)?;
        unwritten.drain(..written);
    }
    Ok(true)
}

/// Prints a connection's failure when `SOCKEYE_BENCH_DEBUG` is set.
fn debug(error: &io::Error) {
    if std::env::var_os("SOCKEYE_BENCH_DEBUG").is_some() {
        eprintln!("connection: {error}");
    }
}

/// Starts the driver on a thread of its own for tests: its address.
pub fn spawn_for_test() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("a listener");
            let _ = serve(listener).await;
        });
    });
    Ok(address)
}
