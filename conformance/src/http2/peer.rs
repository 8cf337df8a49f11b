//! The runner's end of one HTTP/2 stream: it sends each chunk as DATA
//! (waiting for flow-control window, as a TCP write waits for buffer
//! space), while a task of the runner's runtime gathers the testee's DATA
//! and gives the window back at once, so neither side can block the
//! other. The testee ending its stream (`END_STREAM`, or `RST_STREAM`)
//! is the TCP runner's "the testee closed the transport"; the runner's
//! `END_STREAM` is its EOF.

use std::future::poll_fn;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// How long a write may make no progress (no window) before the runner
/// takes the testee as no longer reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a write that made no progress is described.
const STALLED: &str = "the testee stopped reading";

/// How the testee ended its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// `END_STREAM`: the analogue of a TCP FIN.
    Finished,
    /// `RST_STREAM` with this reason: the analogue of a TCP reset.
    Reset(Reason),
    /// The stream ended with the connection (GOAWAY, I/O error).
    Broken(String),
}

impl StreamEnd {
    /// Whether RFC 8441's mapping allows this end where TCP would close
    /// or reset the connection: `END_STREAM`, or `RST_STREAM` with
    /// `CANCEL` (or `NO_ERROR`, what h2 sends for a server that finished
    /// sending before the client did).
    pub(crate) fn acceptable(&self) -> bool {
        matches!(
            self,
            StreamEnd::Finished | StreamEnd::Reset(Reason::CANCEL | Reason::NO_ERROR)
        )
    }

    /// For reports.
    pub(crate) fn describe(&self) -> String {
        match self {
            StreamEnd::Finished => "END_STREAM".into(),
            StreamEnd::Reset(reason) => format!("RST_STREAM ({reason:?})"),
            StreamEnd::Broken(why) => format!("the connection broke: {why}"),
        }
    }
}

/// What the reader task has gathered and not yet handed out.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    ended: Option<StreamEnd>,
}

#[derive(Debug, Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The runner's end of one stream whose extended CONNECT was answered
/// `200`.
#[derive(Debug)]
pub(crate) struct Peer {
    runtime: Handle,
    send: SendStream<Bytes>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    /// `Some` once a collect saw the testee's end.
    closed: Option<StreamEnd>,
    write_error: Option<String>,
    eof_sent: bool,
}

impl Peer {
    /// Takes over the stream's two halves; the reader runs on `runtime`.
    pub(crate) fn new(runtime: &Handle, send: SendStream<Bytes>, recv: RecvStream) -> Peer {
        let shared = Arc::new(Shared::default());
        let reader = runtime.spawn(read_all(recv, Arc::clone(&shared)));
        Peer {
            runtime: runtime.clone(),
            send,
            shared,
            reader,
            closed: None,
            write_error: None,
            eof_sent: false,
        }
    }

    /// Sends one chunk as DATA. Errors after the testee ended its stream
    /// are expected (the runner may send a chunk before it sees the end);
    /// a write that gets no window is kept for [`Peer::stalled`].
    pub(crate) fn deliver(&mut self, bytes: &[u8]) {
        let _ = self.send(bytes);
    }

    /// [`Peer::deliver`], saying whether the chunk went out.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(error) = &self.write_error {
            return Err(error.clone());
        }
        if self.eof_sent {
            return Err("the runner has ended its side of the stream".into());
        }
        let started = Instant::now();
        let bytes = Bytes::copy_from_slice(bytes);
        let len = bytes.len();
        let send = &mut self.send;
        let sent = self
            .runtime
            .block_on(async { tokio::time::timeout(WRITE_TIMEOUT, send_all(send, bytes)).await });
        let error = match sent {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => format!("writing to the testee failed: {error}"),
            Err(_) => format!(
                "{STALLED}: a write of {len} bytes got no flow-control window for {} s",
                started.elapsed().as_secs()
            ),
        };
        self.write_error = Some(error.clone());
        Err(error)
    }

    /// Ends the runner's side of the stream (`END_STREAM`: the testee
    /// reads EOF).
    pub(crate) fn deliver_eof(&mut self) {
        if !self.eof_sent {
            self.eof_sent = true;
            // The testee may have reset the stream already.
            let _ = self.send.send_data(Bytes::new(), true);
        }
    }

    /// Appends what has arrived and notes whether the testee had ended
    /// its stream by then.
    pub(crate) fn collect(&mut self, out: &mut Vec<u8>) {
        let mut inbox = self.shared.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut inbox.bytes);
        } else {
            out.append(&mut inbox.bytes);
        }
        self.closed.clone_from(&inbox.ended);
    }

    /// Whether the testee had ended its stream at the last collect.
    pub(crate) fn has_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How the testee ended its stream, as of the last collect.
    pub(crate) fn end(&self) -> Option<&StreamEnd> {
        self.closed.as_ref()
    }

    /// Waits up to `timeout` for bytes or the testee's end that the last
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

    /// A write that got no window: the testee stopped reading.
    pub(crate) fn stalled(&self) -> Option<&str> {
        self.write_error
            .as_deref()
            .filter(|error| error.starts_with(STALLED))
    }

    /// A write that failed otherwise (expected when the testee ended its
    /// stream before the runner saw it).
    pub(crate) fn write_failure(&self) -> Option<&str> {
        self.write_error
            .as_deref()
            .filter(|error| !error.starts_with(STALLED))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Ends both directions of a stream still open, which also tells a
        // testee still running that the peer is gone; a stream both sides
        // have ended is left alone.
        let ended = self.shared.lock().ended.is_some();
        if !(ended && self.eof_sent) {
            self.send.send_reset(Reason::CANCEL);
        }
        self.reader.abort();
    }
}

/// Sends `bytes` as DATA, each piece when the stream has window for it.
async fn send_all(send: &mut SendStream<Bytes>, mut bytes: Bytes) -> Result<(), h2::Error> {
    while !bytes.is_empty() {
        send.reserve_capacity(bytes.len());
        let mut capacity = send.capacity();
        while capacity == 0 {
            capacity = match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(result) => result?,
                None => return Err(h2::Error::from(Reason::STREAM_CLOSED)),
            };
        }
        let piece = bytes.split_to(capacity.min(bytes.len()));
        send.send_data(piece, false)?;
    }
    Ok(())
}

/// The reader task: gathers DATA until the testee's `END_STREAM` or a
/// reset, giving the window back for every byte at once.
async fn read_all(mut recv: RecvStream, shared: Arc<Shared>) {
    loop {
        let ended = match recv.data().await {
            Some(Ok(data)) => {
                let _ = recv.flow_control().release_capacity(data.len());
                shared.lock().bytes.extend_from_slice(&data);
                None
            }
            Some(Err(error)) => Some(match error.reason() {
                Some(reason) if error.is_reset() => StreamEnd::Reset(reason),
                _ => StreamEnd::Broken(error.to_string()),
            }),
            None => Some(StreamEnd::Finished),
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
