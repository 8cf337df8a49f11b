//! RFC 6455 section 4: the opening handshake, on both ends, through the
//! public API of `sockeye_proto::handshake`.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use sockeye_proto::Bytes;
use sockeye_proto::handshake::{
    ClientBuilder, ClientHandshake, ExtensionOffer, HandshakeError, HandshakeErrorKind, Negotiated,
    RequestParser, ResponseParser, ServerHandshake, accept_key, is_valid_key, parse_extension_list,
    write_request, write_response, write_response_with_body,
};

const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The request of RFC 6455 section 1.2, from a non-browser client.
fn request() -> Request<()> {
    Request::get("/chat")
        .header("Host", "server.example.com")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", SAMPLE_KEY)
        .header("Sec-WebSocket-Version", "13")
        .body(())
        .unwrap()
}

/// `request()` with header fields appended (`Some`) or removed (`None`).
fn edited(edits: &[(&'static str, Option<&'static str>)]) -> Request<()> {
    let mut request = request();
    for &(name, value) in edits {
        match value {
            Some(value) => request
                .headers_mut()
                .append(name, HeaderValue::from_static(value)),
            None => request.headers_mut().remove(name).is_some(),
        };
    }
    request
}

/// `request()` with one header field replaced.
fn replaced(name: &'static str, value: &'static str) -> Request<()> {
    edited(&[(name, None), (name, Some(value))])
}

/// The refusal of the default server, checked against its response.
fn refusal(request: &Request<()>) -> HandshakeError {
    let error = ServerHandshake::new().accept(request).unwrap_err();
    let response = error.to_response().expect("server errors have a response");
    assert_eq!(Some(response.status()), error.status());
    let connection = response.headers()["connection"].to_str().unwrap();
    assert!(connection.ends_with("close"), "{connection}");
    error
}

fn status(server: &ServerHandshake, request: &Request<()>) -> u16 {
    match server.accept(request) {
        Ok(accepted) => accepted.response.status().as_u16(),
        Err(error) => error.status().unwrap().as_u16(),
    }
}

fn origin_status(server: &ServerHandshake, host: &'static str, origin: &'static str) -> u16 {
    let mut request = replaced("host", host);
    if !origin.is_empty() {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_static(origin));
    }
    status(server, &request)
}

fn client(builder: ClientBuilder) -> ClientHandshake {
    builder.build().unwrap()
}

/// Finishes `client` with a correct 101 response edited by `edit`.
fn finish(
    client: &ClientHandshake,
    edit: impl FnOnce(&mut HeaderMap),
) -> Result<Negotiated, HandshakeErrorKind> {
    let mut response = Response::builder()
        .status(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept_key(client.key().as_bytes()))
        .body(())
        .unwrap();
    edit(response.headers_mut());
    client.finish(&response).map_err(|error| {
        assert!(!error.is_server_side() && error.to_response().is_none());
        error.kind().clone()
    })
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}

// Section 4.2.2: Sec-WebSocket-Accept and the 101 response.

#[test]
fn rfc_sample_key_gives_the_rfc_accept_value() {
    assert_eq!(accept_key(SAMPLE_KEY.as_bytes()), SAMPLE_ACCEPT);
}

#[test]
fn server_answers_101_with_exactly_the_handshake_headers() {
    let accepted = ServerHandshake::new().accept(&request()).unwrap();
    let mut wire = Vec::new();
    write_response(&accepted.response, &mut wire);
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
    assert_eq!(accepted.negotiated, Negotiated::default());
}

// Section 4.2.1: each server refusal with its status.

#[test]
fn non_get_method_is_405_with_allow_get() {
    let mut post = request();
    *post.method_mut() = Method::POST;
    let response = refusal(&post).to_response().unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");
}

#[test]
fn http_1_0_is_400_and_http_2_is_505() {
    let mut old = request();
    *old.version_mut() = Version::HTTP_10;
    assert_eq!(refusal(&old).status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(
        refusal(&old).kind(),
        &HandshakeErrorKind::UnsupportedHttpVersion
    );
    let mut new = request();
    *new.version_mut() = Version::HTTP_2;
    assert_eq!(
        refusal(&new).status(),
        Some(StatusCode::HTTP_VERSION_NOT_SUPPORTED)
    );
}

#[test]
fn plain_http_request_is_426_naming_websocket() {
    for request in [
        edited(&[("upgrade", None), ("connection", None)]),
        replaced("upgrade", "h2c"),
    ] {
        let error = refusal(&request);
        assert_eq!(error.kind(), &HandshakeErrorKind::InvalidUpgrade);
        let response = error.to_response().unwrap();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()["upgrade"], "websocket");
        assert_eq!(response.headers()["connection"], "Upgrade, close");
    }
}

#[test]
fn request_announcing_a_body_is_400() {
    for (name, value) in [("content-length", "5"), ("transfer-encoding", "chunked")] {
        let error = refusal(&edited(&[(name, Some(value))]));
        assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
        let reason = "a handshake request has no body";
        let name = HeaderName::from_static(name);
        assert_eq!(
            error.kind(),
            &HandshakeErrorKind::InvalidHeader { name, reason }
        );
    }
    let empty_body = edited(&[("content-length", Some("0"))]);
    assert_eq!(status(&ServerHandshake::new(), &empty_body), 101);
}

#[test]
fn upgrade_and_connection_tokens_are_case_insensitive_lists() {
    let request = edited(&[
        ("upgrade", None),
        ("upgrade", Some("WebSocket")),
        ("connection", None),
        ("connection", Some("keep-alive")),
        ("connection", Some("close, UPGRADE")),
    ]);
    assert_eq!(status(&ServerHandshake::new(), &request), 101);
}

#[test]
fn missing_connection_upgrade_is_400() {
    let error = refusal(&replaced("connection", "keep-alive"));
    assert_eq!(error.kind(), &HandshakeErrorKind::InvalidConnection);
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
}

#[test]
fn missing_repeated_or_malformed_host_is_400() {
    for request in [
        edited(&[("host", None)]),
        edited(&[("host", Some("other.example.com"))]),
        replaced("host", "server.example.com:99999"),
        replaced("host", "user@server.example.com"),
        replaced("host", ""),
    ] {
        let error = refusal(&request);
        assert_eq!(error.kind(), &HandshakeErrorKind::InvalidHost);
        assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    }
}

#[test]
fn unsupported_version_is_426_with_version_13() {
    for request in [
        edited(&[("sec-websocket-version", None)]),
        replaced("sec-websocket-version", "8"),
        replaced("sec-websocket-version", "13, 8"),
        replaced("sec-websocket-version", "013"),
        edited(&[("sec-websocket-version", Some("13"))]),
    ] {
        let error = refusal(&request);
        assert_eq!(error.kind(), &HandshakeErrorKind::UnsupportedVersion);
        let response = error.to_response().unwrap();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        assert_eq!(response.headers()["upgrade"], "websocket");
    }
}

#[test]
fn missing_repeated_or_malformed_key_is_400() {
    for request in [
        edited(&[("sec-websocket-key", None)]),
        edited(&[("sec-websocket-key", Some(SAMPLE_KEY))]),
        replaced("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ"),
        replaced("sec-websocket-key", "c2hvcnQ="),
        replaced("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZXMh"),
        replaced("sec-websocket-key", "not base64 at all!!!!!=="),
    ] {
        let error = refusal(&request);
        assert_eq!(error.kind(), &HandshakeErrorKind::InvalidKey);
        assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    }
}

#[test]
fn request_target_must_be_a_path_or_absolute_uri() {
    let with_target = |target: &'static str| {
        let mut request = request();
        *request.uri_mut() = target.parse().unwrap();
        status(&ServerHandshake::new(), &request)
    };
    assert_eq!(with_target("http://server.example.com/chat"), 101);
    assert_eq!(with_target("*"), 400);
    assert_eq!(with_target("ftp://server.example.com/chat"), 400);
}

#[test]
fn malformed_subprotocol_or_extension_offers_are_400() {
    for (name, value, reason) in [
        (
            "sec-websocket-protocol",
            "chat, chat",
            "repeated subprotocol",
        ),
        ("sec-websocket-protocol", "", "empty list"),
        ("sec-websocket-protocol", "chat v2", "expected a comma"),
        ("sec-websocket-extensions", "", "empty list"),
        (
            "sec-websocket-extensions",
            "permessage-deflate;",
            "expected a parameter name",
        ),
        (
            "sec-websocket-extensions",
            "x; a=\"b c\"",
            "quoted value is not a token",
        ),
    ] {
        let error = refusal(&edited(&[(name, Some(value))]));
        assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
        let name = HeaderName::from_static(name);
        assert_eq!(
            error.kind(),
            &HandshakeErrorKind::InvalidHeader { name, reason }
        );
    }
}

// Sections 4.2.2 and 10.2: the origin policy.

#[test]
fn default_origin_policy_accepts_same_host_and_missing_origin() {
    let server = ServerHandshake::new();
    for (host, origin) in [
        ("example.com", ""),
        ("example.com", "https://example.com"),
        ("example.com", "http://example.com"),
        ("Example.COM", "https://EXAMPLE.com"),
        ("example.com.", "https://example.com"),
        ("example.com:8080", "http://example.com:8080"),
        ("example.com:443", "https://example.com"),
        ("example.com", "https://example.com:443"),
    ] {
        assert_eq!(origin_status(&server, host, origin), 101, "{host} {origin}");
    }
}

#[test]
fn default_origin_policy_refuses_other_origins_with_403() {
    let server = ServerHandshake::new();
    for (host, origin) in [
        ("example.com", "https://evil.example"),
        ("example.com", "null"),
        ("example.com", "https://example.com.evil.example"),
        ("example.com", "https://example.com/"),
        ("example.com:8080", "http://example.com"),
        ("example.com", "http://example.com:8080"),
        // http on 443, https on 80: each scheme's default port counts.
        ("example.com:443", "http://example.com"),
        ("example.com:80", "https://example.com"),
    ] {
        assert_eq!(origin_status(&server, host, origin), 403, "{host} {origin}");
    }
    let request = edited(&[("origin", Some("https://evil.example"))]);
    assert_eq!(refusal(&request).kind(), &HandshakeErrorKind::OriginRefused);
}

#[test]
fn repeated_origin_is_400() {
    let origin = Some("https://server.example.com");
    let error = refusal(&edited(&[("origin", origin), ("origin", origin)]));
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
}

#[test]
fn origin_allow_list_replaces_the_same_host_rule() {
    let server = ServerHandshake::new().allow_origins(["https://app.example", "null"]);
    assert_eq!(
        origin_status(&server, "ws.example", "https://app.example"),
        101
    );
    assert_eq!(
        origin_status(&server, "ws.example", "HTTPS://APP.EXAMPLE:443"),
        101
    );
    assert_eq!(origin_status(&server, "ws.example", "null"), 101);
    assert_eq!(origin_status(&server, "ws.example", ""), 101);
    assert_eq!(
        origin_status(&server, "ws.example", "http://app.example"),
        403
    );
    assert_eq!(
        origin_status(&server, "ws.example", "https://app.example:8443"),
        403
    );
    assert_eq!(
        origin_status(&server, "ws.example", "https://ws.example"),
        403
    );
}

#[test]
fn any_origin_and_required_origin() {
    let any = ServerHandshake::new().allow_any_origin();
    assert_eq!(
        origin_status(&any, "example.com", "https://evil.example"),
        101
    );
    assert_eq!(origin_status(&any, "example.com", "null"), 101);
    let required = ServerHandshake::new().require_origin(true);
    assert_eq!(origin_status(&required, "example.com", ""), 403);
    assert_eq!(
        origin_status(&required, "example.com", "https://example.com"),
        101
    );
}

// Section 4.2.2 item 4: subprotocol selection.

#[test]
fn server_picks_its_most_preferred_offered_subprotocol() {
    let server = ServerHandshake::new().subprotocols(["chat.v3", "chat.v2", "chat.v1"]);
    let request = edited(&[("sec-websocket-protocol", Some("chat.v1, chat.v2"))]);
    let accepted = server.accept(&request).unwrap();
    assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("chat.v2"));
    assert_eq!(
        accepted.response.headers()["sec-websocket-protocol"],
        "chat.v2"
    );
}

#[test]
fn no_common_subprotocol_means_no_protocol_header() {
    let server = ServerHandshake::new().subprotocols(["chat"]);
    let request = edited(&[("sec-websocket-protocol", Some("CHAT, other"))]);
    let accepted = server.accept(&request).unwrap();
    assert_eq!(accepted.negotiated.subprotocol, None);
    assert!(
        !accepted
            .response
            .headers()
            .contains_key("sec-websocket-protocol")
    );
}

#[test]
fn subprotocol_selector_sees_offers_in_client_order_across_fields() {
    let server = ServerHandshake::new().select_subprotocol(|request, offers| {
        assert_eq!(request.uri(), "/chat");
        assert_eq!(offers, ["b", "a", "c"]);
        Some(offers[2].to_owned())
    });
    let protocols = [
        ("sec-websocket-protocol", Some("b, a")),
        ("sec-websocket-protocol", Some("c")),
    ];
    let accepted = server.accept(&edited(&protocols)).unwrap();
    assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("c"));
}

#[test]
fn selector_choosing_an_unoffered_subprotocol_is_500() {
    let server = ServerHandshake::new().select_subprotocol(|_, _| Some("mine".to_owned()));
    assert_eq!(
        status(
            &server,
            &edited(&[("sec-websocket-protocol", Some("chat"))])
        ),
        500
    );
}

// Section 9.1: extension offers and the negotiation hook.

#[test]
fn default_server_accepts_no_extension() {
    let offer = Some("permessage-deflate; client_max_window_bits");
    let accepted = ServerHandshake::new().accept(&edited(&[("sec-websocket-extensions", offer)]));
    let accepted = accepted.unwrap();
    assert!(accepted.negotiated.extensions.is_empty());
    assert!(
        !accepted
            .response
            .headers()
            .contains_key("sec-websocket-extensions")
    );
}

#[test]
fn negotiator_receives_parsed_offers_and_answers_in_the_response() {
    let server = ServerHandshake::new().extensions(|offers: &[ExtensionOffer]| {
        assert_eq!(offers.len(), 3);
        assert_eq!(offers[0].param("server_max_window_bits"), Some(Some("10")));
        assert_eq!(offers[1].params.len(), 2); // duplicates are kept
        let answer = ExtensionOffer::new("permessage-deflate");
        vec![answer.with_param("server_no_context_takeover", None)]
    });
    let request = edited(&[
        (
            "sec-websocket-extensions",
            Some("permessage-deflate; server_max_window_bits=\"10\""),
        ),
        (
            "sec-websocket-extensions",
            Some("x-test; a; a, permessage-deflate"),
        ),
    ]);
    let accepted = server.accept(&request).unwrap();
    assert_eq!(
        accepted.response.headers()["sec-websocket-extensions"],
        "permessage-deflate; server_no_context_takeover"
    );
    assert_eq!(accepted.negotiated.extensions[0].name, "permessage-deflate");
}

#[test]
fn negotiator_accepting_an_unoffered_extension_is_500() {
    let server = ServerHandshake::new()
        .extensions(|_: &[ExtensionOffer]| vec![ExtensionOffer::new("x-unoffered")]);
    let request = edited(&[("sec-websocket-extensions", Some("permessage-deflate"))]);
    assert_eq!(status(&server, &request), 500);
}

#[test]
fn extension_header_grammar() {
    let offers = parse_extension_list(b"foo, bar; baz=2;flag, q; v=\"tok\"").unwrap();
    let bar = ExtensionOffer::new("bar").with_param("baz", Some("2"));
    let expected = [
        ExtensionOffer::new("foo"),
        bar.with_param("flag", None),
        ExtensionOffer::new("q").with_param("v", Some("tok")),
    ];
    assert_eq!(offers, expected);
    for invalid in [
        "",
        ",",
        "foo;",
        "foo; =1",
        "foo; a=",
        "foo; a=\"\"",
        "foo; a=\"x y\"",
        "foo; a=\"open",
        "fo o",
        "foo/bar",
        "foo; a=b c",
        "foo; a=1,,; b",
    ] {
        assert!(
            parse_extension_list(invalid.as_bytes()).is_err(),
            "{invalid:?}"
        );
    }
}

// Section 4.2.2 items 2 and 3: application refusals and extra headers.

#[test]
fn request_filter_refuses_with_its_own_response() {
    let server = ServerHandshake::new().filter_request(|request| {
        if request.headers().contains_key("authorization") {
            return None;
        }
        let mut response = ServerHandshake::reject(StatusCode::UNAUTHORIZED, "log in first");
        let challenge = HeaderValue::from_static("Basic realm=\"chat\"");
        response.headers_mut().insert("www-authenticate", challenge);
        Some(response)
    });
    let error = server.accept(&request()).unwrap_err();
    assert_eq!(error.kind(), &HandshakeErrorKind::Refused);
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    let response = error.to_response().unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"chat\""
    );
    assert_eq!(&response.body()[..], b"log in first\n");
    let authorized = edited(&[("authorization", Some("Basic dTpw"))]);
    assert_eq!(status(&server, &authorized), 101);
}

#[test]
fn filter_only_sees_valid_websocket_requests() {
    let server = ServerHandshake::new().filter_request(|_| panic!("must not be called"));
    assert_eq!(
        status(&server, &edited(&[("sec-websocket-key", None)])),
        400
    );
}

#[test]
fn extra_response_headers_follow_the_handshake_headers() {
    let header = |name, value| {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let (cookie, first) = header("set-cookie", "a=1");
    let (_, second) = header("set-cookie", "b=2");
    let (accept, forged) = header("sec-websocket-accept", "forged");
    let server = ServerHandshake::new()
        .header(cookie.clone(), first)
        .header(cookie, second)
        .header(accept, forged);
    let accepted = server.accept(&request()).unwrap();
    let cookies: Vec<_> = accepted
        .response
        .headers()
        .get_all("set-cookie")
        .iter()
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(
        accepted.response.headers()["sec-websocket-accept"],
        SAMPLE_ACCEPT
    );
}

#[test]
fn refusal_serializes_with_length_and_reason() {
    let error = refusal(&edited(&[("sec-websocket-key", None)]));
    let mut wire = Vec::new();
    write_response_with_body(&error.to_response().unwrap(), &mut wire);
    let parsed = ResponseParser::new().parse(&wire).unwrap().unwrap();
    assert_eq!(parsed.head.status(), StatusCode::BAD_REQUEST);
    let body = &wire[parsed.consumed..];
    assert_eq!(body, b"missing or invalid Sec-WebSocket-Key header\n");
    assert_eq!(
        parsed.head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(
        parsed.head.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
}

// Section 4.1: the client's request.

#[test]
fn client_request_has_every_required_field() {
    let client = ClientHandshake::new("ws://example.com/chat?x=1").unwrap();
    let request = client.request();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.version(), Version::HTTP_11);
    assert_eq!(request.uri(), "/chat?x=1");
    let headers = request.headers();
    assert_eq!(headers["host"], "example.com");
    assert_eq!(headers["upgrade"], "websocket");
    assert_eq!(headers["connection"], "Upgrade");
    assert_eq!(headers["sec-websocket-version"], "13");
    assert_eq!(headers["sec-websocket-key"], client.key());
    assert!(is_valid_key(client.key().as_bytes()));
    assert_eq!(headers.len(), 5);
    assert_ne!(
        ClientHandshake::new("ws://example.com/").unwrap().key(),
        client.key()
    );
}

#[test]
fn client_host_header_and_target() {
    let host = |uri: &str| ClientHandshake::new(uri).unwrap().request().headers()["host"].clone();
    assert_eq!(host("ws://example.com:80/"), "example.com");
    assert_eq!(host("wss://example.com:443/"), "example.com");
    assert_eq!(host("wss://example.com:80/"), "example.com:80");
    assert_eq!(host("ws://[::1]:9001/"), "[::1]:9001");
    assert_eq!(host("WSS://[::1]/"), "[::1]");
    assert_eq!(
        ClientHandshake::new("ws://example.com")
            .unwrap()
            .request()
            .uri(),
        "/"
    );
}

#[test]
fn client_options_become_headers() {
    let client = client(
        ClientHandshake::builder("wss://user:s%3Acret@example.com/")
            .origin("https://example.com")
            .subprotocols(["v2", "v1"])
            .extensions_header("permessage-deflate; client_max_window_bits")
            .extension(ExtensionOffer::new("x-test").with_param("level", Some("3")))
            .header("user-agent", "sockeye-test"),
    );
    let headers = client.request().headers();
    assert_eq!(headers["origin"], "https://example.com");
    assert_eq!(headers["sec-websocket-protocol"], "v2, v1");
    assert_eq!(
        headers["sec-websocket-extensions"],
        "permessage-deflate; client_max_window_bits, x-test; level=3"
    );
    assert_eq!(headers["user-agent"], "sockeye-test");
    assert_eq!(headers["authorization"], "Basic dXNlcjpzOmNyZXQ="); // user:s:cret
    assert!(headers["authorization"].is_sensitive());
}

#[test]
fn client_header_option_replaces_host_but_not_handshake_fields() {
    let builder = ClientHandshake::builder("ws://10.0.0.1/").header("host", "virtual.example");
    assert_eq!(
        client(builder).request().headers()["host"],
        "virtual.example"
    );
    let builder = ClientHandshake::builder("ws://example.com/").header("sec-websocket-key", "x");
    assert!(matches!(
        builder.build().unwrap_err().kind(),
        HandshakeErrorKind::InvalidOption(_)
    ));
}

#[test]
fn client_refuses_invalid_options_and_uris() {
    let kind = |builder: ClientBuilder| builder.build().unwrap_err().kind().clone();
    let base = || ClientHandshake::builder("ws://example.com/");
    for uri in [
        "http://example.com/",
        "ws://example.com/#x",
        "ws://example.com:0x50/",
    ] {
        assert!(matches!(
            kind(ClientHandshake::builder(uri)),
            HandshakeErrorKind::InvalidUri(_)
        ));
    }
    for builder in [
        base().subprotocol("a b"),
        base().subprotocols(["a", "a"]),
        base().extensions_header("x;"),
        base().extension(ExtensionOffer::new("a=b")),
        base().origin("a\nb"),
        base().header("bad name", "v"),
    ] {
        assert!(matches!(
            kind(builder),
            HandshakeErrorKind::InvalidOption(_)
        ));
    }
}

// Section 4.1: the client's checks of the response.

#[test]
fn client_accepts_a_correct_response() {
    let client = client(ClientHandshake::builder("ws://example.com/").subprotocols(["a", "b"]));
    let negotiated = finish(&client, |headers| {
        set(headers, "sec-websocket-protocol", "b")
    });
    let negotiated = negotiated.unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("b"));
    assert!(negotiated.extensions.is_empty());
}

#[test]
fn client_fails_on_a_status_other_than_101_keeping_status_and_head() {
    let client = ClientHandshake::new("ws://example.com/").unwrap();
    let response = Response::builder()
        .status(302)
        .header("location", "wss://example.com/");
    let mut error = client.finish(&response.body(()).unwrap()).unwrap_err();
    assert_eq!(error.kind(), &HandshakeErrorKind::UnexpectedStatus);
    assert_eq!(error.status(), Some(StatusCode::FOUND));
    assert_eq!(
        error.response().unwrap().headers()["location"],
        "wss://example.com/"
    );
    error.set_body(Bytes::from_static(b"moved"));
    assert_eq!(error.body().map(|body| &body[..]), Some(&b"moved"[..]));
}

#[test]
fn client_checks_upgrade_and_connection() {
    let client = ClientHandshake::new("ws://example.com/").unwrap();
    let with = |name, value| finish(&client, |headers| set(headers, name, value)).err();
    let without = |name| finish(&client, |headers| drop(headers.remove(name))).err();
    assert_eq!(without("upgrade"), Some(HandshakeErrorKind::InvalidUpgrade));
    assert_eq!(
        with("upgrade", "h2c"),
        Some(HandshakeErrorKind::InvalidUpgrade)
    );
    assert_eq!(
        with("upgrade", "websocket, h2c"),
        Some(HandshakeErrorKind::InvalidUpgrade)
    );
    assert_eq!(with("upgrade", "WebSocket"), None);
    assert_eq!(
        without("connection"),
        Some(HandshakeErrorKind::InvalidConnection)
    );
    assert_eq!(
        with("connection", "close"),
        Some(HandshakeErrorKind::InvalidConnection)
    );
    assert_eq!(with("connection", "keep-alive, UPGRADE"), None);
}

#[test]
fn client_refuses_a_101_that_is_not_http_1_1() {
    let client = ClientHandshake::new("ws://example.com/").unwrap();
    let mut response = Response::builder().status(101).version(Version::HTTP_10);
    response = response
        .header("upgrade", "websocket")
        .header("connection", "upgrade");
    let response = response.header("sec-websocket-accept", accept_key(client.key().as_bytes()));
    let error = client.finish(&response.body(()).unwrap()).unwrap_err();
    assert_eq!(error.kind(), &HandshakeErrorKind::UnsupportedHttpVersion);
}

#[test]
fn client_checks_the_accept_value() {
    let client = ClientHandshake::new("ws://example.com/").unwrap();
    let wrong = finish(&client, |headers| {
        set(headers, "sec-websocket-accept", SAMPLE_ACCEPT)
    });
    assert_eq!(wrong.err(), Some(HandshakeErrorKind::InvalidAccept));
    let missing = finish(&client, |headers| {
        drop(headers.remove("sec-websocket-accept"))
    });
    assert_eq!(missing.err(), Some(HandshakeErrorKind::InvalidAccept));
    let repeated = finish(&client, |headers| {
        let accept = headers["sec-websocket-accept"].clone();
        headers.append("sec-websocket-accept", accept);
    });
    assert_eq!(repeated.err(), Some(HandshakeErrorKind::InvalidAccept));
}

#[test]
fn client_refuses_unoffered_or_malformed_subprotocols() {
    let offered = client(ClientHandshake::builder("ws://example.com/").subprotocol("chat"));
    let not_offered = ClientHandshake::new("ws://example.com/").unwrap();
    let answer = |client: &ClientHandshake, values: &[&'static str]| {
        finish(client, |headers| {
            for value in values {
                headers.append("sec-websocket-protocol", HeaderValue::from_static(value));
            }
        })
    };
    let unoffered = |name: &str| Err(HandshakeErrorKind::UnofferedSubprotocol(name.to_owned()));
    assert_eq!(answer(&offered, &["other"]), unoffered("other"));
    assert_eq!(answer(&offered, &["CHAT"]), unoffered("CHAT"));
    assert_eq!(answer(&not_offered, &["chat"]), unoffered("chat"));
    for values in [&["chat", "chat"][..], &["chat, chat"], &[""]] {
        let error = answer(&offered, values).unwrap_err();
        assert!(
            matches!(error, HandshakeErrorKind::InvalidHeader { .. }),
            "{values:?}"
        );
    }
    // A server may decline every subprotocol.
    assert_eq!(answer(&offered, &[]).unwrap().subprotocol, None);
}

#[test]
fn client_refuses_unoffered_repeated_or_malformed_extensions() {
    let builder = ClientHandshake::builder("ws://example.com/")
        .extensions_header("permessage-deflate; client_max_window_bits");
    let client = client(builder);
    let answer = |value| {
        finish(&client, |headers| {
            set(headers, "sec-websocket-extensions", value)
        })
    };
    let accepted = answer("permessage-deflate; client_max_window_bits=10").unwrap();
    let deflate = ExtensionOffer::new("permessage-deflate");
    assert_eq!(
        accepted.extensions,
        [deflate.with_param("client_max_window_bits", Some("10"))]
    );
    let unoffered = |name: &str| Err(HandshakeErrorKind::UnofferedExtension(name.to_owned()));
    assert_eq!(answer("x-other"), unoffered("x-other"));
    assert_eq!(
        answer("permessage-deflate, permessage-deflate"),
        unoffered("permessage-deflate")
    );
    let malformed = answer("permessage-deflate;").unwrap_err();
    assert!(matches!(
        malformed,
        HandshakeErrorKind::InvalidHeader { .. }
    ));
    let bare = ClientHandshake::new("ws://example.com/").unwrap();
    let error = finish(&bare, |headers| {
        set(headers, "sec-websocket-extensions", "x-other")
    });
    assert_eq!(error, unoffered("x-other"));
}

// HTTP/1.1 on the wire: incremental, bounded parsing.

fn request_bytes() -> Vec<u8> {
    let builder = ClientHandshake::builder("ws://example.com:8080/chat")
        .origin("http://example.com:8080")
        .subprotocols(["chat.v1", "chat.v2"]);
    let mut wire = Vec::new();
    write_request(client(builder).request(), &mut wire);
    wire
}

#[test]
fn request_fed_one_byte_at_a_time_parses_like_a_whole_one() {
    let wire = request_bytes();
    let whole = RequestParser::new().parse(&wire).unwrap().unwrap();
    let mut parser = RequestParser::new();
    let (head, last) = wire.split_at(wire.len() - 1);
    for (index, byte) in head.iter().enumerate() {
        assert!(parser.parse(std::slice::from_ref(byte)).unwrap().is_none());
        assert_eq!(parser.buffered(), index + 1);
    }
    let parsed = parser.parse(last).unwrap().unwrap();
    assert_eq!(parsed.consumed, 1);
    assert_eq!(parsed.head.uri(), whole.head.uri());
    assert_eq!(parsed.head.headers(), whole.head.headers());
    assert_eq!(parser.buffered(), 0);
}

#[test]
fn one_byte_at_a_time_is_linear() {
    // A 1 MiB head fed byte by byte: a parser that rescanned or re-parsed
    // from the start on every byte would take some 5 * 10^11 steps, and
    // this test would never finish. (No timing assertion: performance is
    // measured in benchmarks, not tests.)
    let mut wire = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    wire.resize(1 << 20, b'a');
    wire.extend_from_slice(b"\r\n\r\n");
    let mut parser = RequestParser::new().max_head_size(2 << 20);
    let (head, last) = wire.split_at(wire.len() - 1);
    for byte in head {
        assert!(parser.parse(std::slice::from_ref(byte)).unwrap().is_none());
    }
    let parsed = parser.parse(last).unwrap().unwrap();
    assert_eq!(parsed.head.headers()["x-filler"].len(), (1 << 20) - 26);
}

#[test]
fn bytes_after_the_head_are_left_untouched() {
    let wire = request_bytes();
    let frame = [
        0x81,
        0x85,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'e' ^ 2,
        b'l' ^ 3,
        b'l' ^ 4,
        b'o' ^ 1,
    ];
    for split in [0, 1, wire.len() - 3, wire.len() - 1] {
        let mut parser = RequestParser::new();
        assert!(parser.parse(&wire[..split]).unwrap().is_none());
        let mut rest = wire[split..].to_vec();
        rest.extend_from_slice(&frame);
        let parsed = parser.parse(&rest).unwrap().unwrap();
        assert_eq!(&rest[parsed.consumed..], &frame[..], "split at {split}");
    }
}

#[test]
fn head_too_large_is_431_even_without_a_blank_line() {
    let mut parser = RequestParser::new().max_head_size(1024);
    assert!(parser.parse(b"GET / HTTP/1.1\r\nX: ").unwrap().is_none());
    let error = parser.parse(&[b'a'; 2048]).unwrap_err();
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::HeadTooLarge { max: 1024 }
    );
    let response = error.to_response().unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // The default limit is 16 KiB.
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.resize(16 * 1024 + 1, b'a');
    let error = RequestParser::new().parse(&big).unwrap_err();
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::HeadTooLarge { max: 16 * 1024 }
    );
}

#[test]
fn too_many_headers_is_431() {
    let mut wire = b"GET / HTTP/1.1\r\n".to_vec();
    for index in 0..65 {
        wire.extend_from_slice(format!("X-{index}: v\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    let error = RequestParser::new().parse(&wire).unwrap_err();
    assert_eq!(
        error.kind(),
        &HandshakeErrorKind::TooManyHeaders { max: 64 }
    );
    assert_eq!(
        error.status(),
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );
    assert!(
        RequestParser::new()
            .max_headers(65)
            .parse(&wire)
            .unwrap()
            .is_some()
    );
}

#[test]
fn obsolete_line_folding_is_refused() {
    let request = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: a\r\n  b\r\n\r\n";
    let error = RequestParser::new().parse(request).unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: a\r\n\tb\r\n\r\n";
    let error = ResponseParser::new().parse(response).unwrap_err();
    assert!(matches!(error.kind(), HandshakeErrorKind::MalformedHead(_)));
    assert_eq!(error.status(), None);
}

#[test]
fn client_and_server_complete_a_handshake_over_bytes() {
    let builder = ClientHandshake::builder("ws://example.com:8080/chat")
        .origin("http://example.com:8080")
        .subprotocols(["chat.v1", "chat.v2"]);
    let client = client(builder);
    let mut wire = Vec::new();
    write_request(client.request(), &mut wire);
    let request = RequestParser::new().parse(&wire).unwrap().unwrap().head;
    let accepted = ServerHandshake::new()
        .subprotocols(["chat.v2"])
        .accept(&request)
        .unwrap();
    wire.clear();
    write_response(&accepted.response, &mut wire);
    wire.extend_from_slice(&[0x81, 0x00]); // the server's first frame
    let parsed = ResponseParser::new().parse(&wire).unwrap().unwrap();
    assert_eq!(&wire[parsed.consumed..], [0x81, 0x00]);
    let negotiated = client.finish(&parsed.head).unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("chat.v2"));
    assert_eq!(negotiated, accepted.negotiated);
}
