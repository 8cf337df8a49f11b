//! The runner's side of the opening handshake with permessage-deflate, on
//! raw bytes and written apart from sockeye-proto's: it sends the case's
//! offer and reads the testee's `Sec-WebSocket-Extensions` answer itself
//! (testee as server), or reads the testee's offer and answers with the
//! case's parameters (testee as client).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use crate::wire::Rng;

/// The GUID of RFC 6455 section 1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// One extension of a `Sec-WebSocket-Extensions` list: its name and its
/// parameters, values unquoted, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The token, such as `permessage-deflate`.
    pub name: String,
    /// `(name, value)`, names lower-cased.
    pub params: Vec<(String, Option<String>)>,
}

impl Extension {
    /// The parameters sorted by name, for comparing regardless of order.
    fn sorted(&self) -> Vec<(String, Option<String>)> {
        let mut params = self.params.clone();
        params.sort();
        params
    }
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
/// `name *( ";" param [ "=" (token | quoted-string) ] )`, comma-separated.
pub fn parse_extensions(value: &str) -> Result<Vec<Extension>, String> {
    let mut list = Vec::new();
    for item in split_outside_quotes(value, ',') {
        let mut parts = split_outside_quotes(&item, ';').into_iter();
        let name = parts.next().unwrap_or_default().trim().to_string();
        if !is_token(&name) {
            return Err(format!("{value:?}: {name:?} is not an extension token"));
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, val) = match part.split_once('=') {
                Some((key, val)) => (key.trim(), Some(val.trim())),
                None => (part.trim(), None),
            };
            if !is_token(key) {
                return Err(format!("{value:?}: {key:?} is not a parameter token"));
            }
            let val = match val {
                None => None,
                Some(val) if val.len() >= 2 && val.starts_with('"') && val.ends_with('"') => {
                    Some(val[1..val.len() - 1].replace('\\', ""))
                }
                Some(val) if is_token(val) => Some(val.to_string()),
                Some(val) => return Err(format!("{value:?}: {val:?} is not a value")),
            };
            params.push((key.to_ascii_lowercase(), val));
        }
        list.push(Extension { name, params });
    }
    Ok(list)
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == separator && !quoted {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Whether two extension lists say the same: same extensions in the same
/// order, each with the same parameters in any order.
pub fn same_extensions(a: &[Extension], b: &[Extension]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.name == b.name && a.sorted() == b.sorted())
}

/// `base64(SHA-1(key + GUID))` (section 4.2.2).
pub fn accept_value(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.as_bytes());
    hasher.update(GUID.as_bytes());
    STANDARD.encode(hasher.finalize())
}

/// An upgrade request offering `extensions` (no header when `None`), and
/// its key.
pub fn request(host: &str, extensions: Option<&str>, rng: &mut Rng) -> (Vec<u8>, String) {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    nonce[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    let key = STANDARD.encode(nonce);
    let mut request = format!(
        "GET /deflate HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(extensions) = extensions {
        request.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    request.push_str("\r\n");
    (request.into_bytes(), key)
}

/// Where a head ends (`\r\n\r\n`), one past it.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The values of header `name` in a parsed head.
fn values(headers: &[httparse::Header<'_>], name: &str) -> Result<Vec<String>, String> {
    headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case(name))
        .map(|header| {
            std::str::from_utf8(header.value)
                .map(|value| value.trim().to_string())
                .map_err(|_| format!("{name} is not text"))
        })
        .collect()
}

/// The extensions listed over every `Sec-WebSocket-Extensions` field;
/// `None` when there is none.
fn extensions_of(headers: &[httparse::Header<'_>]) -> Result<Option<Vec<Extension>>, String> {
    let fields = values(headers, "sec-websocket-extensions")?;
    if fields.is_empty() {
        return Ok(None);
    }
    let mut list = Vec::new();
    for field in &fields {
        list.extend(parse_extensions(field)?);
    }
    Ok(Some(list))
}

/// Checks the testee server's response head to [`request`] with `key`:
/// `101`, the accept value; returns its extensions (`None`: no header)
/// and the raw header for reports.
pub fn check_response(head: &[u8], key: &str) -> Result<(Option<Vec<Extension>>, String), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("an incomplete response head".into()),
        Err(error) => return Err(format!("an invalid response head: {error}")),
    }
    if response.code != Some(101) || response.version != Some(1) {
        return Err(format!(
            "expected HTTP/1.1 101, got {:?}",
            String::from_utf8_lossy(head.split(|b| *b == b'\r').next().unwrap_or_default())
        ));
    }
    let accept = values(response.headers, "sec-websocket-accept")?;
    if accept != [accept_value(key)] {
        return Err(format!(
            "Sec-WebSocket-Accept is {accept:?}, expected {:?}",
            accept_value(key)
        ));
    }
    let raw = values(response.headers, "sec-websocket-extensions")?.join(", ");
    Ok((extensions_of(response.headers)?, raw))
}

/// Reads the testee client's request head: returns its key, its offered
/// extensions (`None`: no header) and the raw header for reports.
pub fn read_request(head: &[u8]) -> Result<(String, Option<Vec<Extension>>, String), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("an incomplete request head".into()),
        Err(error) => return Err(format!("an invalid request head: {error}")),
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return Err("expected a GET over HTTP/1.1".into());
    }
    let key = match values(request.headers, "sec-websocket-key")?.as_slice() {
        [key] => key.clone(),
        other => return Err(format!("Sec-WebSocket-Key is {other:?}")),
    };
    if values(request.headers, "sec-websocket-version")? != ["13"] {
        return Err("Sec-WebSocket-Version is not 13".into());
    }
    let raw = values(request.headers, "sec-websocket-extensions")?.join(", ");
    Ok((key, extensions_of(request.headers)?, raw))
}

/// The `101` answer to a request with `key`, carrying `extensions` (no
/// header when `None`).
pub fn response(key: &str, extensions: Option<&str>) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_value(key)
    );
    if let Some(extensions) = extensions {
        response.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    response.push_str("\r\n");
    response.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_quoted_values() {
        let list = parse_extensions(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].params[1],
            ("server_max_window_bits".into(), Some("10".into()))
        );
        assert!(parse_extensions("permessage-deflate; a=b c").is_err());
        let swapped = parse_extensions(
            "permessage-deflate; server_max_window_bits=10; Client_Max_Window_Bits, x-foo",
        )
        .unwrap();
        assert!(same_extensions(&list, &swapped));
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
