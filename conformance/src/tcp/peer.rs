//! The runner's end of a loopback TCP connection: it writes the case's
//! chunks, one `write` each with `TCP_NODELAY`, while a reader thread
//! gathers everything the testee writes, so neither side can block the
//! other (a 16 MiB echo comes back while the runner is still sending).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a write may make no progress before the runner takes the
/// testee as no longer reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a write that made no progress is described.
const STALLED: &str = "the testee stopped reading";

/// What the reader thread has gathered and not yet handed out.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    /// The testee closed the transport: `None` while open, the empty
    /// string for an orderly EOF, else the error (a reset).
    ended: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        // A poisoned lock only means the reader thread panicked; what it
        // gathered is still valid.
        self.inbox
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The runner's end of one connection.
#[derive(Debug)]
pub(crate) struct Peer {
    stream: TcpStream,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    /// `Some` once a collect saw the testee's end.
    closed: Option<String>,
    write_error: Option<String>,
    eof_sent: bool,
}

impl Peer {
    /// Takes over a connected stream whose opening handshake is done;
    /// `leftover` holds the testee's bytes read past the handshake.
    pub(crate) fn new(stream: TcpStream, leftover: Vec<u8>) -> io::Result<Peer> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_read_timeout(None)?;
        let shared = Arc::new(Shared::default());
        shared.lock().bytes = leftover;
        let mut reading = stream.try_clone()?;
        let gathered = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("conformance-reader".into())
            .spawn(move || read_all(&mut reading, &gathered))?;
        Ok(Peer {
            stream,
            shared,
            reader: Some(reader),
            closed: None,
            write_error: None,
            eof_sent: false,
        })
    }

    /// Writes one chunk. Errors after the testee closed are expected (the
    /// runner may send a chunk before it sees the close); a write that
    /// makes no progress is kept for [`Peer::problems`].
    pub(crate) fn deliver(&mut self, bytes: &[u8]) {
        if self.write_error.is_some() || self.eof_sent {
            return;
        }
        let started = Instant::now();
        if let Err(error) = self.stream.write_all(bytes) {
            self.write_error = Some(match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                    "{STALLED}: a write of {} bytes made no progress for {} s",
                    bytes.len(),
                    started.elapsed().as_secs()
                ),
                _ => format!("writing to the testee failed: {error}"),
            });
        }
    }

    /// Ends the runner's sending side (the testee reads EOF).
    pub(crate) fn deliver_eof(&mut self) {
        if !self.eof_sent {
            self.eof_sent = true;
            // The testee may have reset the connection already.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }

    /// Appends what has arrived and notes whether the testee had closed
    /// the transport by then.
    pub(crate) fn collect(&mut self, out: &mut Vec<u8>) {
        let mut inbox = self.shared.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut inbox.bytes);
        } else {
            out.append(&mut inbox.bytes);
        }
        self.closed.clone_from(&inbox.ended);
    }

    /// Whether the testee had closed the transport at the last collect.
    pub(crate) fn has_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How the testee closed the transport, if it did and not by an
    /// orderly EOF.
    pub(crate) fn close_error(&self) -> Option<&str> {
        self.closed.as_deref().filter(|error| !error.is_empty())
    }

    /// Waits up to `timeout` for bytes or the testee's close that the last
    /// collect did not see.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        let fresh = |inbox: &mut Inbox| {
            !inbox.bytes.is_empty() || (inbox.ended.is_some() && self.closed.is_none())
        };
        let inbox = self.shared.lock();
        let (mut inbox, _) = self
            .shared
            .arrived
            .wait_timeout_while(inbox, timeout, |inbox| !fresh(inbox))
            .unwrap_or_else(|poison| poison.into_inner());
        fresh(&mut inbox)
    }

    /// A write that made no progress: the testee stopped reading.
    pub(crate) fn stalled(&self) -> Option<&str> {
        self.write_error
            .as_deref()
            .filter(|error| error.starts_with(STALLED))
    }

    /// A write that failed otherwise (the testee had closed or reset the
    /// connection: expected when it closed before the runner saw it).
    pub(crate) fn write_failure(&self) -> Option<&str> {
        self.write_error
            .as_deref()
            .filter(|error| !error.starts_with(STALLED))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Ends both directions, which also wakes the reader thread and
        // tells a testee still running that the peer is gone.
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: gathers until EOF or an error.
fn read_all(stream: &mut TcpStream, shared: &Shared) {
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let ended = match stream.read(&mut buffer) {
            Ok(0) => Some(String::new()),
            Ok(read) => {
                shared.lock().bytes.extend_from_slice(&buffer[..read]);
                None
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => None,
            Err(error) => Some(error.to_string()),
        };
        let done = ended.is_some();
        if done {
            shared.lock().ended = ended;
        }
        shared.arrived.notify_all();
        if done {
            return;
        }
    }
}
