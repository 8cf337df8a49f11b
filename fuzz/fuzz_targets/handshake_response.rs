//! The client's side of the opening handshake.
//!
//! Input: byte 0 picks the chunking, byte 1 the mode and the client's
//! options, the rest is
//! - (byte 1 below 0x80) what the server answers, parsed in chunks and
//!   checked with `ClientHandshake::finish`. The RFC 6455 example accept
//!   value `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` anywhere in it is replaced by the
//!   right one for this handshake's (random) key, so that the fuzzer gets
//!   past the accept check;
//! - (byte 1 from 0x80) a URI: whatever request `ClientHandshake` builds
//!   for it must be accepted by our own server, and the server's answer by
//!   the client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_fuzz::parse_in_chunks;
use sockeye_proto::extension::deflate::{
    DeflateConfig, DeflateNegotiator, MAX_WINDOW_BITS, MIN_COMPRESS_WINDOW_BITS, MIN_WINDOW_BITS,
};
use sockeye_proto::handshake::{
    ClientHandshake, ExtensionOffer, RequestParser, ResponseParser, ServerHandshake, accept_key,
    write_request, write_response,
};

/// The accept value of RFC 6455 section 1.3, replaced in the input.
const EXAMPLE_ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn deflate_config(options: u8) -> DeflateConfig {
    let window = |bits: u8| match bits & 3 {
        0 => None,
        1 => Some(MIN_WINDOW_BITS),
        2 => Some(10),
        _ => Some(MAX_WINDOW_BITS),
    };
    DeflateConfig::new()
        .server_no_context_takeover(options & 4 != 0)
        .client_no_context_takeover(options & 8 != 0)
        .server_max_window_bits(window(options >> 4))
        .client_max_window_bits(window(options >> 2))
}

fn client(options: u8, uri: &str) -> Option<(ClientHandshake, DeflateConfig)> {
    let deflate = deflate_config(options);
    let mut builder = ClientHandshake::builder(uri);
    if options & 1 != 0 {
        builder = builder.subprotocols(["chat", "superchat"]);
    }
    if options & 2 != 0 {
        builder = builder.extension(ExtensionOffer::new("x-foo").with_param("a", Some("1")));
    }
    if let Some(offer) = deflate.offer() {
        builder = builder.extension(offer);
    }
    builder.build().ok().map(|handshake| (handshake, deflate))
}

/// Mode 1: a server's response, checked by the client.
fn response(seed: u8, options: u8, input: &[u8]) {
    let Some((handshake, deflate)) = client(options, "ws://example.com/chat") else {
        panic!("the fixed client options are valid");
    };
    let accept = accept_key(handshake.key().as_bytes());
    let mut input = input.to_vec();
    let mut at = 0;
    while let Some(found) = input[at..]
        .windows(EXAMPLE_ACCEPT.len())
        .position(|window| window == EXAMPLE_ACCEPT)
    {
        let start = at + found;
        input[start..start + EXAMPLE_ACCEPT.len()].copy_from_slice(accept.as_bytes());
        at = start + EXAMPLE_ACCEPT.len();
    }
    let max = 16 * 1024;
    let chunked = parse_in_chunks(&mut ResponseParser::new(), &input, seed, max);
    let whole = parse_in_chunks(&mut ResponseParser::new(), &input, 0, max);
    match (&chunked, &whole) {
        (None, None) => {}
        (Some(Ok((a, at))), Some(Ok((b, bt)))) => {
            assert_eq!(a.status(), b.status());
            assert_eq!(a.version(), b.version());
            assert_eq!(a.headers(), b.headers());
            assert_eq!(at, bt);
        }
        (Some(Err(a)), Some(Err(b))) => assert_eq!(a.kind(), b.kind()),
        (a, b) => panic!("chunked {a:?} but whole {b:?}"),
    }
    let Some(Ok((response, _))) = chunked else {
        return;
    };
    let Ok(negotiated) = handshake.finish(&response) else {
        return;
    };
    assert_eq!(response.status(), 101);
    if let Some(subprotocol) = &negotiated.subprotocol {
        assert!(handshake.subprotocols().contains(subprotocol));
    }
    for (index, extension) in negotiated.extensions.iter().enumerate() {
        assert!(
            handshake
                .extensions()
                .iter()
                .any(|offer| offer.name == extension.name)
        );
        assert!(
            !negotiated.extensions[..index]
                .iter()
                .any(|e| e.name == extension.name)
        );
    }
    if let Ok(Some(params)) = deflate.client_params(&negotiated.extensions) {
        assert!((MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&params.client_max_window_bits));
        if let Some(bits) = deflate.get_client_max_window_bits() {
            assert!(params.client_max_window_bits <= bits.max(MIN_COMPRESS_WINDOW_BITS));
        }
        assert!((MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&params.server_max_window_bits));
        if let Some(bits) = deflate.get_server_max_window_bits() {
            assert!(params.server_max_window_bits <= bits);
        }
        if deflate.get_server_no_context_takeover() {
            assert!(params.server_no_context_takeover);
        }
        if deflate.get_client_no_context_takeover() {
            assert!(params.client_no_context_takeover);
        }
    }
}

/// Mode 2: a round trip through our own client and server for any URI.
fn round_trip(options: u8, uri: &[u8]) {
    let Ok(uri) = std::str::from_utf8(uri) else {
        return;
    };
    let Some((handshake, deflate)) = client(options, uri) else {
        return;
    };
    let mut wire = Vec::new();
    write_request(handshake.request(), &mut wire);
    let request = RequestParser::new()
        .max_head_size(usize::MAX)
        .parse(&wire)
        .unwrap_or_else(|error| panic!("{error}: {:?}", String::from_utf8_lossy(&wire)))
        .expect("a complete request")
        .head;
    let server = ServerHandshake::new()
        .allow_any_origin()
        .subprotocols(["superchat"])
        .extensions(DeflateNegotiator::new(DeflateConfig::new()));
    let accepted = server
        .accept(&request)
        .unwrap_or_else(|error| panic!("{error}: {:?}", String::from_utf8_lossy(&wire)));
    wire.clear();
    write_response(&accepted.response, &mut wire);
    let response = ResponseParser::new()
        .parse(&wire)
        .expect("the response parses")
        .expect("a complete response")
        .head;
    let negotiated = handshake
        .finish(&response)
        .unwrap_or_else(|error| panic!("{error}: {:?}", String::from_utf8_lossy(&wire)));
    assert_eq!(negotiated, accepted.negotiated);
    let client_params = deflate.client_params(&negotiated.extensions);
    // Both ends are sockeye: the offer is accepted and agreed alike.
    let server_params = DeflateNegotiator::new(DeflateConfig::new())
        .select(handshake.extensions())
        .map(|(_, params)| params);
    assert_eq!(client_params.ok().flatten(), server_params);
    assert_eq!(negotiated.deflate, server_params);
}

fuzz_target!(|data: &[u8]| {
    let [seed, options, rest @ ..] = data else {
        return;
    };
    if options & 0x80 == 0 {
        response(*seed, *options, rest);
    } else {
        round_trip(*options, rest);
    }
});
