//! One HTTP/2 stream as a byte transport for a WebSocket: DATA frames in,
//! DATA frames out.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one write hands to HTTP/2 at once: a WebSocket frame larger
/// than this goes out in several DATA frames, each taken only when the
/// peer's flow-control window has room.
const MAX_CHUNK: usize = 64 * 1024;

/// A WebSocket's transport over one HTTP/2 stream (RFC 8441): what is
/// written goes out in DATA frames, what arrives in DATA frames is read.
///
/// HTTP/2 flow control is the WebSocket's backpressure: window is given
/// back to the peer only for bytes the WebSocket has read, so a reader
/// that stops reading stalls its own stream, never its neighbours on the
/// same connection. Shutting down the write side ends the stream
/// (`END_STREAM`); dropping it before then resets it (`RST_STREAM` with
/// `CANCEL`).
#[derive(Debug)]
pub struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received and not yet read.
    pending: Bytes,
    /// `END_STREAM` was sent.
    finished: bool,
    /// The server connection's count of open WebSockets, given back when
    /// this stream is dropped.
    live: Option<Arc<AtomicUsize>>,
}

impl H2Stream {
    /// A transport over a stream whose extended CONNECT was answered with
    /// `200`.
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> H2Stream {
        H2Stream {
            send,
            recv,
            pending: Bytes::new(),
            finished: false,
            live: None,
        }
    }

    /// Counted in `live` (incremented by the caller) until dropped.
    pub(crate) fn counted(mut self, live: Arc<AtomicUsize>) -> H2Stream {
        self.live = Some(live);
        self
    }

    /// The HTTP/2 stream's id.
    pub fn stream_id(&self) -> u32 {
        self.send.stream_id().as_u32()
    }

    /// Resets the stream with `reason` (a protocol error resets only its
    /// own stream, never the connection).
    pub fn reset(&mut self, reason: Reason) {
        self.send.send_reset(reason);
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::AcqRel);
        }
        // A stream dropped before both sides ended is reset with CANCEL
        // by h2 itself: RFC 8441 section 5's equivalent of a TCP RST.
    }
}

/// An HTTP/2 error as an I/O error: a reset by the peer or a connection
/// going away ends this transport like a TCP reset would.
pub(crate) fn to_io(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 I/O error"));
    }
    let kind = match error.reason() {
        Some(Reason::CANCEL) | Some(Reason::NO_ERROR) => io::ErrorKind::ConnectionReset,
        Some(Reason::REFUSED_STREAM) => io::ErrorKind::ConnectionRefused,
        _ if error.is_go_away() => io::ErrorKind::ConnectionAborted,
        _ => io::ErrorKind::ConnectionReset,
    };
    io::Error::new(kind, error)
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.pending = data,
                Some(Err(error)) => return Poll::Ready(Err(to_io(error))),
                // END_STREAM: the peer's side is done (EOF).
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        // Window for exactly what was read: the peer may send as much
        // again. A WebSocket that does not read gives none back.
        let _ = this.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.finished {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let wanted = buf.len().min(MAX_CHUNK);
        if this.send.capacity() == 0 {
            this.send.reserve_capacity(wanted);
            loop {
                // A reset from the peer while we wait for window.
                if let Poll::Ready(reset) = this.send.poll_reset(cx) {
                    let error = match reset {
                        Ok(reason) => io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            format!("stream reset by the peer: {reason:?}"),
                        ),
                        Err(error) => to_io(error),
                    };
                    return Poll::Ready(Err(error));
                }
                match ready!(this.send.poll_capacity(cx)) {
                    Some(Ok(0)) => continue,
                    Some(Ok(_)) => break,
                    Some(Err(error)) => return Poll::Ready(Err(to_io(error))),
                    None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                }
            }
        }
        let n = this.send.capacity().min(wanted);
        this.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(to_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's own task writes queued DATA frames.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.finished {
            this.finished = true;
            this.send.send_data(Bytes::new(), true).map_err(to_io)?;
        }
        Poll::Ready(Ok(()))
    }
}
