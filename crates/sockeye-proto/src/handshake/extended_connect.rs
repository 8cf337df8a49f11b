//! The opening handshake over HTTP/2 (RFC 8441): an extended CONNECT
//! request with `:protocol websocket` on a stream of its own, answered
//! with `200`. Neither `Sec-WebSocket-Key` nor `Sec-WebSocket-Accept`
//! exists there, nor `Upgrade` and `Connection` (HTTP/2 forbids
//! connection-specific header fields); version, Origin, subprotocols and
//! extensions work as over HTTP/1.1.
//!
//! This module checks a request an HTTP/2 implementation decoded (its
//! pseudo-header fields as the [`Request`]'s method and URI, `:protocol`
//! passed beside it) and builds the response; the HTTP/2 framing, flow
//! control and `SETTINGS_ENABLE_CONNECT_PROTOCOL` are the transport's.

use http::header::{
    CONTENT_LENGTH, HOST, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
};
use http::{Method, Request, Response, StatusCode};

use super::error::{HandshakeError, HandshakeErrorKind};
use super::extensions::format_extensions;
use super::origin::parse_host_port;
use super::server::{
    Accepted, ServerHandshake, bad_request, invalid_header, is_handshake_header, negotiation_bug,
    reject, single,
};

/// The `:protocol` value that asks for a WebSocket (RFC 8441 section 4).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// Whether `name` is a connection-specific header field, which HTTP/2
/// forbids (RFC 9113 section 8.2.2): `Connection`, `Upgrade`,
/// `Transfer-Encoding`, `Keep-Alive`, `Proxy-Connection`. (`TE` is
/// allowed with the value `trailers` only; callers decide on it.) The
/// client leaves these out of an extended CONNECT, the server out of its
/// answers.
pub fn is_connection_specific(name: &http::HeaderName) -> bool {
    use http::header::{CONNECTION, TRANSFER_ENCODING, UPGRADE};
    name == CONNECTION
        || name == UPGRADE
        || name == TRANSFER_ENCODING
        || name == "keep-alive"
        || name == "proxy-connection"
}

/// Whether an HTTP/2 request is a WebSocket opening handshake: `CONNECT`
/// with `:protocol websocket`. Such requests go to
/// [`ServerHandshake::accept_extended_connect`]; every other request is
/// ordinary HTTP.
pub fn is_extended_connect(method: &Method, protocol: Option<&str>) -> bool {
    method == Method::CONNECT
        && protocol.is_some_and(|protocol| protocol.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL))
}

impl ServerHandshake {
    /// Checks a WebSocket request that arrived over HTTP/2 as an extended
    /// CONNECT (RFC 8441), `protocol` being its `:protocol` pseudo-header,
    /// and builds the `200` response.
    ///
    /// `secure` tells whether the connection is TLS, as in
    /// [`accept_secure`](ServerHandshake::accept_secure) (`None`: not
    /// known). The checks and their refusals:
    ///
    /// | check | refusal |
    /// |---|---|
    /// | method is CONNECT | 405, `Allow: CONNECT` is the caller's to add |
    /// | `:protocol` is `websocket` | 400 |
    /// | `:scheme` and `:path` present, `:path` a path; `:authority` a valid host (or one valid `Host`) | 400 |
    /// | no body announced (`content-length` other than 0) | 400 |
    /// | one `sec-websocket-version: 13` | 400 with `sec-websocket-version: 13` (there is no upgrade to require over HTTP/2) |
    /// | no `sec-websocket-key` (RFC 8441 section 5: not used) | 400 |
    /// | Origin, subprotocols, extensions, the request filter | as over HTTP/1.1 |
    ///
    /// The response carries the chosen subprotocol and extensions and the
    /// policy's extra headers; it has no connection-specific header.
    pub fn accept_extended_connect(
        &self,
        request: &Request<()>,
        protocol: Option<&str>,
        secure: Option<bool>,
    ) -> Result<Accepted, HandshakeError> {
        if request.method() != Method::CONNECT {
            return Err(reject(
                HandshakeErrorKind::MethodNotAllowed,
                StatusCode::METHOD_NOT_ALLOWED,
            ));
        }
        if !is_extended_connect(request.method(), protocol) {
            return Err(bad_request(HandshakeErrorKind::InvalidProtocol));
        }
        let uri = request.uri();
        if uri.scheme().is_none() || !uri.path().starts_with('/') {
            return Err(bad_request(HandshakeErrorKind::InvalidRequestTarget));
        }
        let headers = request.headers();
        if headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|length| length != "0")
        {
            return Err(invalid_header(
                CONTENT_LENGTH,
                "a WebSocket handshake request has no body",
            ));
        }
        // `:authority`, or a Host header when a client sent that instead
        // (RFC 9113 section 8.3.1 allows either; both must then agree).
        let authority = uri.authority().map(|authority| authority.as_str());
        let host_header = single(headers, &HOST).and_then(|value| value.to_str().ok());
        if headers.contains_key(HOST) && host_header.is_none() {
            return Err(bad_request(HandshakeErrorKind::InvalidHost));
        }
        let host_text = match (authority, host_header) {
            (Some(authority), Some(host)) if !authority.eq_ignore_ascii_case(host) => {
                return Err(bad_request(HandshakeErrorKind::InvalidHost));
            }
            (Some(text), _) | (None, Some(text)) => text,
            (None, None) => return Err(bad_request(HandshakeErrorKind::InvalidHost)),
        };
        let host = parse_host_port(host_text)
            .ok_or_else(|| bad_request(HandshakeErrorKind::InvalidHost))?;
        if single(headers, &SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
            // 400, not 426: there is no Upgrade over HTTP/2. The error's
            // response names the version (see `HandshakeError::to_response`).
            return Err(reject(
                HandshakeErrorKind::UnsupportedVersion,
                StatusCode::BAD_REQUEST,
            ));
        }
        if headers.contains_key(SEC_WEBSOCKET_KEY) {
            return Err(invalid_header(
                SEC_WEBSOCKET_KEY,
                "not used over HTTP/2 (RFC 8441 section 5)",
            ));
        }
        let negotiated = self.negotiate(request, host, secure)?;
        let mut response = Response::new(());
        let headers = response.headers_mut();
        if let Some(subprotocol) = &negotiated.subprotocol {
            let value = HeaderValue::try_from(subprotocol.as_str())
                .map_err(|_| negotiation_bug("unencodable subprotocol"))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !negotiated.extensions.is_empty() {
            let value = format_extensions(&negotiated.extensions).map_err(|_| {
                negotiation_bug("the extension negotiator answered parameters that are not tokens")
            })?;
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        for (name, value) in &self.headers {
            if !is_handshake_header(name) {
                headers.append(name, value.clone());
            }
        }
        Ok(Accepted {
            response,
            negotiated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::NoExtensions;

    fn connect(authority: &str) -> http::request::Builder {
        Request::builder()
            .method(Method::CONNECT)
            .uri(format!("https://{authority}/chat?room=1"))
            .version(http::Version::HTTP_2)
            .header("sec-websocket-version", "13")
    }

    fn status(result: Result<Accepted, HandshakeError>) -> u16 {
        match result {
            Ok(accepted) => accepted.response.status().as_u16(),
            Err(error) => error.status().unwrap().as_u16(),
        }
    }

    #[test]
    fn a_valid_request_gets_200_with_the_choices_and_no_connection_headers() {
        let server = ServerHandshake::new()
            .subprotocols(["chat.v2", "chat.v1"])
            .header(http::header::SERVER, HeaderValue::from_static("sockeye"));
        let request = connect("example.com")
            .header("origin", "https://example.com")
            .header("sec-websocket-protocol", "chat.v1, chat.v2")
            .body(())
            .unwrap();
        let accepted = server
            .accept_extended_connect(&request, Some("websocket"), Some(true))
            .unwrap();
        let response = &accepted.response;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
        assert_eq!(response.headers()["server"], "sockeye");
        for forbidden in ["upgrade", "connection", "sec-websocket-accept"] {
            assert!(!response.headers().contains_key(forbidden), "{forbidden}");
        }
        assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("chat.v2"));
    }

    #[test]
    fn each_rule_of_rfc_8441_has_its_refusal() {
        let server = ServerHandshake::new().extensions(NoExtensions);
        let ok = |builder: http::request::Builder| builder.body(()).unwrap();
        let accept = |request: &Request<()>, protocol| {
            status(server.accept_extended_connect(request, protocol, Some(true)))
        };
        let valid = ok(connect("example.com"));
        assert_eq!(accept(&valid, Some("websocket")), 200);
        assert_eq!(accept(&valid, Some("WebSocket")), 200);
        // No :protocol: a plain CONNECT (a proxy tunnel), not a WebSocket.
        assert_eq!(accept(&valid, None), 400);
        assert_eq!(accept(&valid, Some("webtransport")), 400);
        let get = ok(Request::get("https://example.com/").header("sec-websocket-version", "13"));
        assert_eq!(accept(&get, Some("websocket")), 405);
        let no_version = ok(Request::builder()
            .method(Method::CONNECT)
            .uri("https://example.com/"));
        let refusal = server
            .accept_extended_connect(&no_version, Some("websocket"), None)
            .unwrap_err();
        assert_eq!(refusal.status().unwrap().as_u16(), 400);
        let response = refusal.to_response().unwrap();
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        let wrong_version = ok(connect("example.com").header("sec-websocket-version", "8"));
        assert_eq!(accept(&wrong_version, Some("websocket")), 400);
        let with_key =
            ok(connect("example.com").header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(accept(&with_key, Some("websocket")), 400);
        let with_body = ok(connect("example.com").header("content-length", "5"));
        assert_eq!(accept(&with_body, Some("websocket")), 400);
        let empty_body = ok(connect("example.com").header("content-length", "0"));
        assert_eq!(accept(&empty_body, Some("websocket")), 200);
        // :authority and Host must agree.
        let disagreeing = ok(connect("example.com").header("host", "other.example"));
        assert_eq!(accept(&disagreeing, Some("websocket")), 400);
        // No :scheme or :path (an authority-form CONNECT target).
        let authority_form = ok(Request::builder()
            .method(Method::CONNECT)
            .uri("example.com:443")
            .header("sec-websocket-version", "13"));
        assert_eq!(accept(&authority_form, Some("websocket")), 400);
        // Same-origin policy, with :authority as the host.
        let foreign = ok(connect("example.com").header("origin", "https://evil.example"));
        assert_eq!(accept(&foreign, Some("websocket")), 403);
        let same = ok(connect("example.com:8443").header("origin", "https://example.com:8443"));
        assert_eq!(accept(&same, Some("websocket")), 200);
    }

    #[test]
    fn only_connect_with_the_websocket_protocol_is_a_websocket() {
        assert!(is_extended_connect(&Method::CONNECT, Some("websocket")));
        assert!(!is_extended_connect(&Method::CONNECT, None));
        assert!(!is_extended_connect(&Method::GET, Some("websocket")));
        assert!(!is_extended_connect(&Method::CONNECT, Some("connect-udp")));
    }
}
