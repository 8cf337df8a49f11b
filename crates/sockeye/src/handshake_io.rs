//! Moving handshake bytes: the I/O half of the opening handshake, shared
//! by the client and the server. The checks live in
//! `sockeye_proto::handshake`.

use bytes::Bytes;
use sockeye_proto::handshake::{HandshakeError, Parsed};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::Error;

/// Bytes read per system call while the head arrives. Small: a
/// handshake is a few hundred bytes, and what is read past the head is
/// handed to the connection. On the heap, not in the future: a task's
/// future is as large as its largest state for the whole connection.
const HEAD_READ: usize = 4096;

/// Reads until `parse` returns a complete head. Returns the head and the
/// bytes read past it.
pub(crate) async fn read_head<S, T>(
    stream: &mut S,
    mut parse: impl FnMut(&[u8]) -> Result<Option<Parsed<T>>, HandshakeError>,
) -> Result<(T, Vec<u8>), Error>
where
    S: AsyncRead + Unpin,
{
    let mut buffer = vec![0u8; HEAD_READ];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Err(Error::UnexpectedEof);
        }
        if let Some(parsed) = parse(&buffer[..read])? {
            return Ok((parsed.head, buffer[parsed.consumed..read].to_vec()));
        }
    }
}

/// Writes `bytes` and flushes.
pub(crate) async fn write_all<S>(stream: &mut S, bytes: &[u8]) -> Result<(), Error>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads a refusal's body after its head, up to `limit` bytes: what
/// `Content-Length` announces, or until the server closes.
pub(crate) async fn read_body<S>(
    stream: &mut S,
    mut body: Vec<u8>,
    content_length: Option<usize>,
    limit: usize,
) -> Bytes
where
    S: AsyncRead + Unpin,
{
    let wanted = content_length.unwrap_or(limit).min(limit);
    let mut buffer = vec![0u8; HEAD_READ];
    while body.len() < wanted {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => body.extend_from_slice(&buffer[..read]),
        }
    }
    body.truncate(wanted);
    Bytes::from(body)
}
