//! The server's side of the opening handshake: arbitrary bytes to the
//! request parser, in arbitrary chunks, then `ServerHandshake::accept`
//! under several policies.
//!
//! Input: byte 0 picks the chunking, byte 1 the parser limits, the rest is
//! what the client sends.
#![no_main]

use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use sockeye_fuzz::parse_in_chunks;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
use sockeye_proto::handshake::{
    HandshakeError, RequestParser, ResponseParser, ServerHandshake, accept_key, parse_tokens,
    write_request, write_response, write_response_with_body,
};

/// The head size limits byte 1 picks from.
const HEAD_SIZES: [usize; 4] = [16 * 1024, 256, 1024, 100];

fn parser(limits: u8) -> RequestParser {
    let max_head_size = HEAD_SIZES[usize::from(limits & 3)];
    let max_headers = [64, 8, 100, 1][usize::from((limits >> 2) & 3)];
    RequestParser::new()
        .max_head_size(max_head_size)
        .max_headers(max_headers)
}

fn same_request(a: &Request<()>, b: &Request<()>) -> bool {
    a.method() == b.method()
        && a.uri() == b.uri()
        && a.version() == b.version()
        && a.headers() == b.headers()
}

fn same_error(a: &HandshakeError, b: &HandshakeError) -> bool {
    a.kind() == b.kind() && a.status() == b.status()
}

fn check_refusal(error: &HandshakeError) {
    let status = error.status().expect("a server-side error has a status");
    assert!(
        [400, 403, 405, 426, 431, 505].contains(&status.as_u16()),
        "refused with {status}: {error}"
    );
    let response = error.to_response().expect("a refusal to send");
    assert_eq!(response.status(), status);
    let mut wire = Vec::new();
    write_response_with_body(&response, &mut wire);
    let parsed = ResponseParser::new()
        .parse(&wire)
        .expect("the refusal parses")
        .expect("the refusal is complete");
    assert_eq!(parsed.head.status(), status);
}

fuzz_target!(|data: &[u8]| {
    let [seed, limits, input @ ..] = data else {
        return;
    };
    let max_head_size = HEAD_SIZES[usize::from(limits & 3)];
    let chunked_outcome = parse_in_chunks(&mut parser(*limits), input, *seed, max_head_size);
    let whole_outcome = parse_in_chunks(&mut parser(*limits), input, 0, max_head_size);
    // However the bytes are split, the parser decides the same.
    match (&chunked_outcome, &whole_outcome) {
        (None, None) => {}
        (Some(Ok((a, at))), Some(Ok((b, bt)))) => {
            assert!(same_request(a, b), "{a:?} != {b:?}");
            assert_eq!(at, bt);
        }
        (Some(Err(a)), Some(Err(b))) => assert!(same_error(a, b), "{a} != {b}"),
        (a, b) => panic!("chunked {a:?} but whole {b:?}"),
    }
    let request = match chunked_outcome {
        Some(Ok((request, _))) => request,
        Some(Err(error)) => return check_refusal(&error),
        None => return,
    };

    // What we parsed, we can write and parse back the same.
    let mut wire = Vec::new();
    write_request(&request, &mut wire);
    let reparsed = RequestParser::new()
        .max_head_size(usize::MAX)
        .max_headers(4096)
        .parse(&wire)
        .expect("a written request parses")
        .expect("a written request is complete");
    assert!(
        same_request(&request, &reparsed.head),
        "{request:?} written as {:?} parsed back as {:?}",
        String::from_utf8_lossy(&wire),
        reparsed.head
    );

    let policies = [
        ServerHandshake::new(),
        ServerHandshake::new()
            .allow_any_origin()
            .subprotocols(["chat", "superchat"])
            .extensions(DeflateNegotiator::new(DeflateConfig::new())),
        ServerHandshake::new()
            .allow_origins(["https://example.com", "null", "http://[::1]:8080"])
            .require_origin(true)
            .extensions(DeflateNegotiator::new(
                DeflateConfig::new()
                    .server_max_window_bits(Some(10))
                    .client_max_window_bits(Some(8))
                    .client_no_context_takeover(true),
            )),
    ];
    for policy in &policies {
        match policy.accept(&request) {
            Ok(accepted) => {
                let response = &accepted.response;
                assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
                assert_eq!(response.headers()[UPGRADE], "websocket");
                assert_eq!(response.headers()[CONNECTION], "Upgrade");
                let key = request.headers()[SEC_WEBSOCKET_KEY].as_bytes();
                assert_eq!(
                    response.headers()[SEC_WEBSOCKET_ACCEPT],
                    accept_key(key).as_str()
                );
                let offered = parse_tokens(request.headers(), &SEC_WEBSOCKET_PROTOCOL).unwrap();
                if let Some(chosen) = &accepted.negotiated.subprotocol {
                    assert!(offered.contains(chosen));
                }
                let mut wire = Vec::new();
                write_response(response, &mut wire);
                let parsed = ResponseParser::new()
                    .max_head_size(usize::MAX)
                    .parse(&wire)
                    .expect("the response parses")
                    .expect("the response is complete");
                assert_eq!(parsed.consumed, wire.len());
                assert_eq!(parsed.head.headers(), response.headers());
            }
            Err(error) => check_refusal(&error),
        }
    }
});
