//! A bound on writes that make no progress: a client that asks for a
//! large file and never reads would otherwise hold its connection (and
//! its place under `--max-connections`) forever.
//!
//! The bound is on stalls, not on the whole response: a slow client that
//! keeps accepting bytes may take as long as it needs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::Sleep;

/// A writer that fails with [`io::ErrorKind::TimedOut`] when the stream
/// under it accepts no byte (and finishes no flush or shutdown) for
/// `timeout`.
pub struct StallTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Started by the first write that had to wait, dropped by any
    /// progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallTimeout<S> {
    /// Bounds the stalls of `inner` to `timeout`.
    pub fn new(inner: S, timeout: Duration) -> StallTimeout<S> {
        StallTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// What an operation on the stream returned: progress resets the
    /// clock, waiting starts it (or fails once it ran out).
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.stalled = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the client accepted no data for {timeout:?}"),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_fails_the_write_after_the_timeout() {
        // A pipe that holds 16 bytes, and nobody reading it.
        let (mut writer, _reader) = tokio::io::duplex(16);
        let mut writer = StallTimeout::new(&mut writer, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let error = writer.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        use tokio::io::AsyncReadExt;
        let (mut writer, mut reader) = tokio::io::duplex(16);
        let reading = tokio::spawn(async move {
            let mut total = 0;
            let mut buffer = [0; 16];
            loop {
                // Each read comes just before the stall would time out.
                tokio::time::sleep(Duration::from_secs(20)).await;
                match reader.read(&mut buffer).await.unwrap() {
                    0 => return total,
                    read => total += read,
                }
            }
        });
        let mut bounded = StallTimeout::new(&mut writer, Duration::from_secs(30));
        bounded.write_all(&[7; 160]).await.unwrap();
        bounded.shutdown().await.unwrap();
        drop(writer);
        assert_eq!(reading.await.unwrap(), 160);
    }
}
