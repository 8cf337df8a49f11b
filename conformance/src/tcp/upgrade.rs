//! The runner's own opening handshake (RFC 6455 section 4), written apart
//! from sockeye-proto's so the two cannot share a mistake: the client side
//! when the testee is the server, the server side when it is the client.
//! Strict about what the testee sends; just enough of HTTP/1.1 for that.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use crate::wire::Rng;

/// The GUID of RFC 6455 section 1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest head the runner reads.
const MAX_HEAD: usize = 16 * 1024;

/// How long the testee may take to send its head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// `base64(SHA-1(key + GUID))` (section 4.2.2, item 5.4).
pub(crate) fn accept_value(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.as_bytes());
    hasher.update(GUID.as_bytes());
    STANDARD.encode(hasher.finalize())
}

/// As the client: sends an upgrade request for `host` and checks the
/// `101` answer. Returns the bytes read past the response head.
pub(crate) fn as_client(
    stream: &mut TcpStream,
    host: &str,
    rng: &mut Rng,
) -> Result<Vec<u8>, String> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    nonce[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    let key = STANDARD.encode(nonce);
    let request = format!(
        "GET /conformance HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("sending the upgrade request failed: {error}"))?;
    let (head, leftover) = read_head(stream)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("an incomplete response head".into()),
        Err(error) => return Err(format!("an invalid response head: {error}")),
    }
    let status = response.code.unwrap_or(0);
    if status != 101 || response.version != Some(1) {
        return Err(format!("expected HTTP/1.1 101, got {}", first_line(&head)));
    }
    let headers = Headers(response.headers);
    headers.require_token("upgrade", "websocket")?;
    headers.require_token("connection", "upgrade")?;
    let accept = headers.single("sec-websocket-accept")?;
    if accept != accept_value(&key) {
        return Err(format!(
            "Sec-WebSocket-Accept is {accept:?}, expected {:?}",
            accept_value(&key)
        ));
    }
    for unasked in ["sec-websocket-extensions", "sec-websocket-protocol"] {
        if headers.find(unasked).next().is_some() {
            return Err(format!("the response has {unasked}, which was not offered"));
        }
    }
    Ok(leftover)
}

/// As the server: reads the testee's upgrade request, checks it, answers
/// `101`. A client must wait for the answer before it sends frames
/// (section 4.1), so bytes past the request head are an error.
pub(crate) fn as_server(stream: &mut TcpStream) -> Result<(), String> {
    let (head, leftover) = read_head(stream)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("an incomplete request head".into()),
        Err(error) => return Err(format!("an invalid request head: {error}")),
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return Err(format!(
            "expected a GET over HTTP/1.1, got {}",
            first_line(&head)
        ));
    }
    let headers = Headers(request.headers);
    headers.single("host")?;
    headers.require_token("upgrade", "websocket")?;
    headers.require_token("connection", "upgrade")?;
    let version = headers.single("sec-websocket-version")?;
    if version != "13" {
        return Err(format!("Sec-WebSocket-Version is {version:?}, expected 13"));
    }
    let key = headers.single("sec-websocket-key")?;
    match STANDARD.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => {
            return Err(format!(
                "Sec-WebSocket-Key {key:?} is not 16 bytes in base64"
            ));
        }
    }
    if !leftover.is_empty() {
        return Err(format!(
            "the client sent {} bytes after its request, before the 101",
            leftover.len()
        ));
    }
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_value(key)
    );
    stream
        .write_all(response.as_bytes())
        .map_err(|error| format!("sending the 101 failed: {error}"))
}

/// Reads up to the end of a head (`\r\n\r\n`); returns the head and what
/// came after it.
fn read_head(stream: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), String> {
    stream
        .set_read_timeout(Some(HEAD_TIMEOUT))
        .map_err(|error| error.to_string())?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream
            .read(&mut buffer)
            .map_err(|error| format!("reading the handshake failed: {error}"))?;
        if read == 0 {
            return Err(format!(
                "the testee closed the connection during the handshake, after {} bytes",
                head.len()
            ));
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buffer[..read]);
        if let Some(at) = head[searched_from..]
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
        {
            let end = searched_from + at + 4;
            let leftover = head.split_off(end);
            return Ok((head, leftover));
        }
        if head.len() > MAX_HEAD {
            return Err(format!("a handshake head over {MAX_HEAD} bytes"));
        }
    }
}

fn first_line(head: &[u8]) -> String {
    let line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    format!("{:?}", String::from_utf8_lossy(line))
}

/// Header lookups on a parsed head.
struct Headers<'h, 'b>(&'h [httparse::Header<'b>]);

impl<'b> Headers<'_, 'b> {
    fn find<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.0
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }

    /// The value of a header that must appear once.
    fn single(&self, name: &str) -> Result<&'b str, String> {
        let mut values = self.find(name);
        match (values.next(), values.next()) {
            (Some(value), None) => std::str::from_utf8(value)
                .map(str::trim)
                .map_err(|_| format!("{name} is not text")),
            (None, _) => Err(format!("no {name} header")),
            (Some(_), Some(_)) => Err(format!("{name} appears more than once")),
        }
    }

    /// Requires `token` among the comma-separated values of `name`.
    fn require_token(&self, name: &str, token: &str) -> Result<(), String> {
        let found = self.find(name).any(|value| {
            value
                .split(|byte| *byte == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        });
        if found {
            Ok(())
        } else {
            Err(format!("{name} does not hold {token:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_value_matches_rfc_6455_section_1_3() {
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn tokens_are_matched_in_lists_and_without_case() {
        let headers = [httparse::Header {
            name: "Connection",
            value: b"keep-alive, Upgrade",
        }];
        let headers = Headers(&headers);
        assert!(headers.require_token("connection", "upgrade").is_ok());
        assert!(headers.require_token("connection", "close").is_err());
        assert!(headers.single("upgrade").is_err());
    }
}
