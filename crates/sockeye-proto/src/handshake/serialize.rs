//! HTTP/1.1 heads on the wire: request and response serialization (RFC
//! 7230 sections 3.1 and 3.2).

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};

/// The usual spelling of a header name on the wire. The `http` crate stores
/// names in lowercase, which is valid HTTP/1.1, but some WebSocket servers
/// written against the RFC's examples compare names case-sensitively.
pub(crate) fn canonical_name(name: &HeaderName) -> Cow<'static, str> {
    const KNOWN: [(&str, &str); 6] = [
        ("sec-websocket-key", "Sec-WebSocket-Key"),
        ("sec-websocket-accept", "Sec-WebSocket-Accept"),
        ("sec-websocket-version", "Sec-WebSocket-Version"),
        ("sec-websocket-protocol", "Sec-WebSocket-Protocol"),
        ("sec-websocket-extensions", "Sec-WebSocket-Extensions"),
        ("www-authenticate", "WWW-Authenticate"),
    ];
    if let Some((_, spelling)) = KNOWN.iter().find(|(lower, _)| *lower == name.as_str()) {
        return Cow::Borrowed(spelling);
    }
    let mut spelled = String::with_capacity(name.as_str().len());
    let mut word_start = true;
    for character in name.as_str().chars() {
        spelled.push(if word_start {
            character.to_ascii_uppercase()
        } else {
            character
        });
        word_start = character == '-';
    }
    Cow::Owned(spelled)
}

fn write_headers(headers: &http::HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(canonical_name(name).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn version_text(version: Version) -> &'static [u8] {
    if version == Version::HTTP_10 {
        b"HTTP/1.0"
    } else {
        b"HTTP/1.1"
    }
}

/// Appends a request head to `out`: request line, header fields and the
/// blank line. The request target is the URI as stored: origin-form
/// (`/chat?room=1`, what [`ClientHandshake`](super::ClientHandshake)
/// builds), absolute-form when the URI has a scheme (for proxies), or `/`
/// when it has neither path nor query. The version is HTTP/1.1 unless the
/// request says HTTP/1.0.
///
/// Header values cannot hold CR or LF (the `http` crate refuses them), so
/// nothing can be injected into the head.
pub fn write_request(request: &Request<()>, out: &mut Vec<u8>) {
    let uri = request.uri();
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    match (uri.scheme(), uri.path_and_query()) {
        (Some(_), _) => out.extend_from_slice(uri.to_string().as_bytes()),
        (None, Some(target)) if !target.as_str().is_empty() => {
            out.extend_from_slice(target.as_str().as_bytes())
        }
        _ => match uri.authority() {
            Some(authority) => out.extend_from_slice(authority.as_str().as_bytes()),
            None => out.push(b'/'),
        },
    }
    out.push(b' ');
    out.extend_from_slice(version_text(request.version()));
    out.extend_from_slice(b"\r\n");
    write_headers(request.headers(), out);
    out.extend_from_slice(b"\r\n");
}

/// Appends a response head to `out`: status line with the status's
/// canonical reason phrase, header fields and the blank line.
pub fn write_response(response: &Response<()>, out: &mut Vec<u8>) {
    let status = response.status();
    out.extend_from_slice(version_text(response.version()));
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(response.headers(), out);
    out.extend_from_slice(b"\r\n");
}

/// Appends a response with its body to `out`, such as a refusal from
/// [`HandshakeError::to_response`](super::HandshakeError::to_response). A `Content-Length` is added when the
/// response has none and its status allows a body (not 1xx, 204 or 304), so
/// the client can tell where the body ends; the body itself is written as
/// is.
pub fn write_response_with_body(response: &Response<Bytes>, out: &mut Vec<u8>) {
    let status = response.status();
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut head = Response::new(());
    *head.status_mut() = status;
    *head.version_mut() = response.version();
    *head.headers_mut() = response.headers().clone();
    if !bodiless && !head.headers().contains_key(CONTENT_LENGTH) {
        head.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(response.body().len()));
    }
    write_response(&head, out);
    if !bodiless {
        out.extend_from_slice(response.body());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{RequestParser, ResponseParser};
    use http::Uri;

    #[test]
    fn requests_serialize_and_parse_back() {
        let mut request = Request::new(());
        *request.uri_mut() = Uri::from_static("/a?b=c");
        request
            .headers_mut()
            .insert("sec-websocket-key", HeaderValue::from_static("k"));
        request
            .headers_mut()
            .append("x-two-words", HeaderValue::from_static("v"));
        let mut out = Vec::new();
        write_request(&request, &mut out);
        assert_eq!(
            out,
            b"GET /a?b=c HTTP/1.1\r\nSec-WebSocket-Key: k\r\nX-Two-Words: v\r\n\r\n"
        );
        let parsed = RequestParser::new().parse(&out).unwrap().unwrap().head;
        assert_eq!(parsed.uri(), request.uri());
        assert_eq!(parsed.headers(), request.headers());
    }

    #[test]
    fn response_with_body_gets_a_content_length() {
        let mut response = Response::new(Bytes::from_static(b"no"));
        *response.status_mut() = StatusCode::FORBIDDEN;
        let mut out = Vec::new();
        write_response_with_body(&response, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
        );
    }

    #[test]
    fn unknown_status_has_an_empty_reason() {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(599).unwrap();
        let mut out = Vec::new();
        write_response(&response, &mut out);
        assert_eq!(out, b"HTTP/1.1 599 \r\n\r\n");
        let parsed = ResponseParser::new().parse(&out).unwrap().unwrap();
        assert_eq!(parsed.head.status().as_u16(), 599);
    }
}
