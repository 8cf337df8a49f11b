//! Telling HTTP/1.1 from HTTP/2 on a connection: by ALPN over TLS, by the
//! client connection preface (prior knowledge, RFC 9113 section 3.3) in
//! cleartext.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::tls::ServerStream;

/// What every HTTP/2 client sends first (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A stream with bytes already read from it put back in front: what
/// [`detect`] read while telling the version.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Vec<u8>,
    /// How much of `prefix` was read again.
    taken: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, to be read from after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind {
            prefix,
            taken: 0,
            inner,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken < this.prefix.len() {
            let rest = &this.prefix[this.taken..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.taken += n;
            if this.taken == this.prefix.len() {
                this.prefix = Vec::new();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Which HTTP a connection speaks, as [`detect`] found it.
#[derive(Debug)]
pub enum Detected {
    /// HTTP/1.1: `read` holds the start of the first request, already
    /// read from `stream` (feed it to the request parser first).
    Http1 {
        /// The connection.
        stream: ServerStream,
        /// Bytes read while telling the version.
        read: Vec<u8>,
    },
    /// HTTP/2: serve it with
    /// [`ServerBuilder::accept_http2`](crate::ServerBuilder::accept_http2).
    Http2(Rewind<ServerStream>),
}

/// Tells which HTTP `stream` speaks: HTTP/2 if TLS chose `h2` by ALPN, or
/// (in cleartext) if the client's first bytes are the HTTP/2 connection
/// preface; HTTP/1.1 otherwise. Reads at most the preface's 24 bytes, and
/// stops at the first byte that differs from it, so an HTTP/1.1 request
/// costs no extra wait. Over TLS without ALPN `h2` the answer is
/// HTTP/1.1 without reading (RFC 9113 section 3.2: `h2` is chosen by
/// ALPN only).
///
/// # Errors
/// The read's error; `UnexpectedEof` if the client closed first.
///
/// # Cancel safety
/// Dropping the future loses the bytes read so far; bound it with a
/// timeout and drop the connection with it.
pub async fn detect(mut stream: ServerStream) -> io::Result<Detected> {
    let tls = match &stream {
        ServerStream::Tls(tls) => Some(tls.get_ref().1.alpn_protocol() == Some(b"h2")),
        _ => None,
    };
    match tls {
        Some(true) => return Ok(Detected::Http2(Rewind::new(Vec::new(), stream))),
        Some(false) => {
            return Ok(Detected::Http1 {
                stream,
                read: Vec::new(),
            });
        }
        None => {}
    }
    let mut read = Vec::with_capacity(PREFACE.len());
    let mut chunk = [0u8; PREFACE.len()];
    while read.len() < PREFACE.len() {
        let wanted = PREFACE.len() - read.len();
        let n = stream.read(&mut chunk[..wanted]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        read.extend_from_slice(&chunk[..n]);
        if !PREFACE.starts_with(&read) {
            return Ok(Detected::Http1 { stream, read });
        }
    }
    Ok(Detected::Http2(Rewind::new(read, stream)))
}
