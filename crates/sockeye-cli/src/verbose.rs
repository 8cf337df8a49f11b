//! What `-v` and `-vv` print on stderr, beyond the logs: for `connect`,
//! the handshake's request and response headers (`-v`) and each message
//! and control frame in and out (`-vv`); for `serve`, the lines of each
//! handshake and close (see `describe_closed`). Secrets in headers are
//! masked: these lines end up in terminals, bug reports and CI logs.

use http::{HeaderMap, HeaderName, Response};
use sockeye::Message;
use sockeye::proto::frame::{OpCode, TracedFrame};
use sockeye::proto::{Closed, Initiator};

/// Headers whose values are credentials: shown as `***`.
const SECRET_HEADERS: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
];

/// The request sent (from the response's extensions) and the response
/// received, curl-style (`> ` out, `< ` in), then what was negotiated.
pub fn handshake(response: &Response<()>, compressed: bool) {
    if let Some(request) = response.extensions().get::<http::Request<()>>() {
        status!(
            "> {} {} {:?}",
            request.method(),
            request
                .uri()
                .path_and_query()
                .map_or("/", |path| path.as_str()),
            request.version()
        );
        headers('>', request.headers());
    }
    status!(
        "< {:?} {}",
        response.version(),
        crate::failure::status_text(response.status())
    );
    headers('<', response.headers());
    let value = |name| {
        response
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let subprotocol = value(http::header::SEC_WEBSOCKET_PROTOCOL);
    let extensions = value(http::header::SEC_WEBSOCKET_EXTENSIONS);
    status!(
        "sockeye: negotiated subprotocol: {}; extensions: {}{}",
        if subprotocol.is_empty() {
            "none"
        } else {
            &subprotocol
        },
        if extensions.is_empty() {
            "none"
        } else {
            &extensions
        },
        if compressed { " (compression on)" } else { "" }
    );
}

fn headers(direction: char, headers: &HeaderMap) {
    for (name, value) in headers {
        status!("{direction} {name}: {}", shown_value(name, value));
    }
}

/// A header's value for printing: `***` for credentials, the text
/// otherwise (bytes that are not visible ASCII escaped).
fn shown_value(name: &HeaderName, value: &http::HeaderValue) -> String {
    if SECRET_HEADERS.contains(name) || value.is_sensitive() {
        return "***".to_owned();
    }
    value.as_bytes().escape_ascii().to_string()
}

/// A data message in (`<`) or out (`>`).
pub fn message(direction: char, message: &Message) {
    let kind = if message.is_text() { "text" } else { "binary" };
    status!(
        "sockeye: {direction} {kind} message, {} bytes",
        message.len()
    );
}

/// A control frame in or out.
pub fn control(direction: char, kind: &str, length: usize, detail: &str) {
    status!("sockeye: {direction} {kind}{detail}, {length} bytes");
}

/// Frames as they crossed the wire (`-vv`), from the engine's trace:
/// `> frame: text, FIN, masked, 5 bytes`, `< frame: binary, RSV1, 120
/// bytes` (RSV1: compressed), and how many the trace had to drop.
pub fn frames(frames: &mut Vec<TracedFrame>, dropped: u64) {
    if dropped > 0 {
        status!("sockeye: ({dropped} frame(s) not shown: too many at once)");
    }
    for TracedFrame { outgoing, header } in frames.drain(..) {
        let direction = if outgoing { '>' } else { '<' };
        let mut flags = String::new();
        if header.fin {
            flags.push_str(", FIN");
        }
        for (bit, name) in [(0b100, "RSV1"), (0b010, "RSV2"), (0b001, "RSV3")] {
            if header.rsv & bit != 0 {
                flags.push_str(", ");
                flags.push_str(name);
            }
        }
        if header.mask.is_some() {
            flags.push_str(", masked");
        }
        status!(
            "sockeye: {direction} frame: {}{flags}, {} bytes",
            opcode_name(header.opcode),
            header.payload_len
        );
    }
}

fn opcode_name(opcode: OpCode) -> String {
    match opcode {
        OpCode::Continuation => "continuation".to_owned(),
        OpCode::Text => "text".to_owned(),
        OpCode::Binary => "binary".to_owned(),
        OpCode::Close => "close".to_owned(),
        OpCode::Ping => "ping".to_owned(),
        OpCode::Pong => "pong".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The Close frames of an ended connection.
pub fn closed(closed: &Closed) {
    status!("sockeye: {}", describe_closed(closed));
}

/// `closed by the peer: 1000 (bye)`, `closed by us: 1001`, ...
pub fn describe_closed(closed: &Closed) -> String {
    let who = match closed.initiated_by {
        Initiator::Local => "closed by this side",
        Initiator::Remote => "closed by the peer",
    };
    let reason = match closed.reason() {
        "" => String::new(),
        reason => format!(" ({reason})"),
    };
    let error = closed
        .error
        .as_ref()
        .map(|error| format!(": {error}"))
        .unwrap_or_default();
    format!("{who}: {}{reason}{error}", closed.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let value = http::HeaderValue::from_static("Bearer secret");
        assert_eq!(shown_value(&http::header::AUTHORIZATION, &value), "***");
        assert_eq!(shown_value(&http::header::COOKIE, &value), "***");
        assert_eq!(
            shown_value(&http::header::USER_AGENT, &value),
            "Bearer secret"
        );
        let mut sensitive = http::HeaderValue::from_static("x");
        sensitive.set_sensitive(true);
        assert_eq!(shown_value(&http::header::USER_AGENT, &sensitive), "***");
        let odd = http::HeaderValue::from_bytes(b"a\xffb").unwrap();
        assert_eq!(shown_value(&http::header::USER_AGENT, &odd), "a\\xffb");
    }
}
