//! The client's side of the opening handshake over HTTP/2 (RFC 8441
//! sections 4 and 5): the extended CONNECT request for a `ws://` or
//! `wss://` URI, and the check of the server's answer.
//!
//! The same [`ClientHandshake`] serves both versions, so a client that
//! tries HTTP/2 and falls back to HTTP/1.1 builds its options once. Over
//! HTTP/2 the request has no `Sec-WebSocket-Key`, `Upgrade`, `Connection`
//! or `Host` (`:authority` carries the host); subprotocols, extensions and
//! Origin are offered as over HTTP/1.1, and the server's choices are
//! checked by the same code. The `:protocol websocket` pseudo-header, the
//! stream and `SETTINGS_ENABLE_CONNECT_PROTOCOL` are the transport's.

use http::header::{HOST, HeaderName, SEC_WEBSOCKET_KEY, TE};
use http::{Method, Request, Response, Uri, Version};

use super::client::ClientHandshake;
use super::error::{HandshakeError, HandshakeErrorKind};
use super::negotiate::Negotiated;

impl ClientHandshake {
    /// The request that opens this WebSocket on an HTTP/2 stream (RFC 8441
    /// section 5): `CONNECT`, HTTP/2, an absolute URI giving `:scheme`
    /// (`https` for `wss://`, `http` for `ws://`), `:authority` (the
    /// `Host` of [`request`](ClientHandshake::request), so a `Host` option
    /// applies here too) and `:path`; `sec-websocket-version: 13`, and the
    /// options' `sec-websocket-protocol`, `sec-websocket-extensions`,
    /// `origin`, `authorization` and other headers.
    ///
    /// Left out: `sec-websocket-key` (not used over HTTP/2), `host`, and
    /// the connection-specific fields HTTP/2 forbids (RFC 9113 section
    /// 8.2.2: `connection`, `upgrade`, `keep-alive`, `proxy-connection`,
    /// `transfer-encoding`, and `te` other than `trailers`).
    ///
    /// The transport adds `:protocol websocket` (with the `h2` crate, the
    /// `h2::ext::Protocol` request extension) and sends it only to a
    /// server that advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`. An error
    /// when the `Host` option cannot be an authority.
    ///
    /// ```
    /// use sockeye_proto::handshake::ClientHandshake;
    ///
    /// let handshake = ClientHandshake::builder("wss://example.com/chat")
    ///     .subprotocols(["chat"])
    ///     .build()
    ///     .unwrap();
    /// let request = handshake.extended_connect_request().unwrap();
    /// assert_eq!(request.method(), "CONNECT");
    /// assert_eq!(request.uri(), "https://example.com/chat");
    /// assert!(request.headers().get("sec-websocket-key").is_none());
    /// assert_eq!(request.headers()["sec-websocket-protocol"], "chat");
    /// ```
    pub fn extended_connect_request(&self) -> Result<Request<()>, HandshakeError> {
        let invalid = |what| HandshakeError::fail(HandshakeErrorKind::InvalidUri(what));
        let opening = self.request();
        let authority = opening
            .headers()
            .get(HOST)
            .and_then(|host| host.to_str().ok())
            .ok_or_else(|| invalid("invalid host"))?;
        let path = opening
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        let uri = Uri::builder()
            .scheme(if self.secure { "https" } else { "http" })
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|_| invalid("the host is not a valid :authority"))?;
        let mut request = Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for (name, value) in opening.headers() {
            let trailers = name == TE && value.as_bytes().eq_ignore_ascii_case(b"trailers");
            if trailers || !is_left_out(name) {
                headers.append(name, value.clone());
            }
        }
        Ok(request)
    }

    /// Checks the server's answer to
    /// [`extended_connect_request`](ClientHandshake::extended_connect_request)
    /// and returns the negotiated subprotocol and extensions.
    ///
    /// A `2xx` status opens the WebSocket (RFC 8441 section 5 says `200`;
    /// any success is taken, as for other CONNECT requests). Any other
    /// status is a refusal, the [`HandshakeErrorKind::UnexpectedStatus`]
    /// error an HTTP/1.1 refusal gives, carrying the status and head (the
    /// transport may add the body). The subprotocol and extensions are
    /// then checked exactly as [`finish`](ClientHandshake::finish) checks
    /// them over HTTP/1.1 (items 6 and 7 there). The HTTP version is not
    /// checked: the transport that received the answer knows it.
    pub fn finish_extended_connect(
        &self,
        response: &Response<()>,
    ) -> Result<Negotiated, HandshakeError> {
        if !response.status().is_success() {
            return Err(HandshakeError::unexpected_status(response));
        }
        self.negotiated(response.headers())
    }
}

/// Whether a field of the HTTP/1.1 opening request stays out of the
/// extended CONNECT: the key, `Host` (now `:authority`) and the
/// connection-specific fields.
fn is_left_out(name: &HeaderName) -> bool {
    [HOST, SEC_WEBSOCKET_KEY, TE].contains(name) || super::is_connection_specific(name)
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, StatusCode};

    use super::*;
    use crate::extension::deflate::{DeflateConfig, DeflateNegotiator};
    use crate::handshake::{ClientBuilder, ServerHandshake};

    fn handshake(builder: ClientBuilder) -> ClientHandshake {
        builder.build().unwrap()
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> Response<()> {
        let mut response = Response::builder().status(status).version(Version::HTTP_2);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(()).unwrap()
    }

    #[test]
    fn the_request_has_the_pseudo_header_fields_and_no_http1_fields() {
        let client = handshake(
            ClientHandshake::builder("wss://Example.com:8443/chat?room=1")
                .origin("https://example.com")
                .subprotocols(["chat.v2", "chat.v1"])
                .extension(DeflateConfig::new().offer().unwrap())
                .header("keep-alive", "timeout=5")
                .header("proxy-connection", "keep-alive")
                .header("transfer-encoding", "chunked")
                .header("te", "gzip")
                .header("x-trace", "1"),
        );
        let request = client.extended_connect_request().unwrap();
        assert_eq!(request.method(), Method::CONNECT);
        assert_eq!(request.version(), Version::HTTP_2);
        assert_eq!(request.uri().scheme_str(), Some("https"));
        assert_eq!(request.uri().authority().unwrap(), "example.com:8443");
        assert_eq!(request.uri().path_and_query().unwrap(), "/chat?room=1");
        let headers = request.headers();
        assert_eq!(headers["sec-websocket-version"], "13");
        assert_eq!(headers["sec-websocket-protocol"], "chat.v2, chat.v1");
        assert_eq!(
            headers["sec-websocket-extensions"],
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(headers["origin"], "https://example.com");
        assert_eq!(headers["x-trace"], "1");
        for absent in [
            "sec-websocket-key",
            "host",
            "upgrade",
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "te",
        ] {
            assert!(!headers.contains_key(absent), "{absent}");
        }
        // The HTTP/1.1 request of the same handshake is unchanged.
        assert_eq!(client.request().headers()["upgrade"], "websocket");
    }

    #[test]
    fn scheme_authority_and_credentials_follow_the_uri_and_options() {
        let plain = handshake(ClientHandshake::builder("ws://example.com:80"));
        let request = plain.extended_connect_request().unwrap();
        assert_eq!(request.uri(), "http://example.com/");
        let with_user = handshake(ClientHandshake::builder("wss://u:p@example.com/"));
        let request = with_user.extended_connect_request().unwrap();
        assert_eq!(request.uri(), "https://example.com/");
        assert_eq!(request.headers()["authorization"], "Basic dTpw");
        let virtual_host = handshake(
            ClientHandshake::builder("wss://127.0.0.1:8443/x")
                .header("host", "chat.example")
                .header("te", "trailers"),
        );
        let request = virtual_host.extended_connect_request().unwrap();
        assert_eq!(request.uri(), "https://chat.example/x");
        assert_eq!(request.headers()["te"], "trailers");
        let bad_host = handshake(ClientHandshake::builder("wss://a/").header("host", "a b"));
        let error = bad_host.extended_connect_request().unwrap_err();
        assert_eq!(
            error.kind(),
            &HandshakeErrorKind::InvalidUri("the host is not a valid :authority")
        );
    }

    #[test]
    fn a_success_opens_with_the_choices_checked_as_over_http1() {
        let client = handshake(
            ClientHandshake::builder("wss://example.com/")
                .subprotocols(["a", "b"])
                .extension(DeflateConfig::new().offer().unwrap()),
        );
        let negotiated = client
            .finish_extended_connect(&answer(
                200,
                &[
                    ("sec-websocket-protocol", "b"),
                    ("sec-websocket-extensions", "permessage-deflate"),
                ],
            ))
            .unwrap();
        assert_eq!(negotiated.subprotocol.as_deref(), Some("b"));
        assert!(negotiated.deflate.is_some());
        let plain = client.finish_extended_connect(&answer(200, &[])).unwrap();
        assert_eq!(plain.subprotocol, None);
        assert!(plain.extensions.is_empty());
        assert!(client.finish_extended_connect(&answer(204, &[])).is_ok());

        let refused = |headers: &[(&str, &str)]| {
            client
                .finish_extended_connect(&answer(200, headers))
                .unwrap_err()
                .kind()
                .clone()
        };
        assert_eq!(
            refused(&[("sec-websocket-protocol", "c")]),
            HandshakeErrorKind::UnofferedSubprotocol("c".into())
        );
        assert_eq!(
            refused(&[("sec-websocket-extensions", "x-unknown")]),
            HandshakeErrorKind::UnofferedExtension("x-unknown".into())
        );
        assert!(matches!(
            refused(&[("sec-websocket-extensions", "permessage-deflate; bogus")]),
            HandshakeErrorKind::InvalidExtension { .. }
        ));
    }

    #[test]
    fn any_other_status_is_a_refusal_carrying_it() {
        let client = handshake(ClientHandshake::builder("wss://example.com/"));
        for status in [101, 302, 400, 403, 404, 501, 503] {
            let error = client
                .finish_extended_connect(&answer(status, &[("x-reason", "no")]))
                .unwrap_err();
            assert_eq!(error.kind(), &HandshakeErrorKind::UnexpectedStatus);
            assert_eq!(error.status(), Some(StatusCode::from_u16(status).unwrap()));
            assert_eq!(error.response().unwrap().headers()["x-reason"], "no");
        }
        let error = client
            .finish_extended_connect(&answer(403, &[]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "WebSocket handshake failed: the server answered 403 Forbidden instead of 200 OK"
        );
    }

    #[test]
    fn a_sockeye_server_accepts_the_request_and_the_client_its_answer() {
        let client = handshake(
            ClientHandshake::builder("wss://example.com:8443/chat")
                .origin("https://example.com:8443")
                .subprotocols(["chat"])
                .extension(DeflateConfig::new().offer().unwrap()),
        );
        let request = client.extended_connect_request().unwrap();
        let server = ServerHandshake::new()
            .subprotocols(["chat"])
            .extensions(DeflateNegotiator::new(DeflateConfig::new()))
            .header(http::header::SERVER, HeaderValue::from_static("sockeye"));
        let accepted = server
            .accept_extended_connect(&request, Some("websocket"), Some(true))
            .unwrap();
        let negotiated = client.finish_extended_connect(&accepted.response).unwrap();
        assert_eq!(negotiated, accepted.negotiated);
        assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
        assert!(negotiated.deflate.is_some());
    }
}
