//! The header grammars: `Sec-WebSocket-Extensions` (RFC 6455 section
//! 9.1), the permessage-deflate offer and response parameters (RFC 7692
//! section 7.1) and token lists such as `Sec-WebSocket-Protocol`.
//!
//! Input: byte 0 picks the server's deflate policy, the rest is one header
//! value, read by every parser.
#![no_main]

use http::header::{
    HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use sockeye_proto::extension::deflate::{
    DeflateConfig, DeflateNegotiator, DeflateOffer, DeflateParams, MAX_WINDOW_BITS,
    MIN_WINDOW_BITS, PERMESSAGE_DEFLATE,
};
use sockeye_proto::handshake::{
    MAX_EXTENSION_PARAMS, MAX_EXTENSIONS, MAX_LIST_ELEMENTS, ServerHandshake, contains_token,
    format_extensions, is_token, parse_extension_list, parse_extensions, parse_token_list,
    parse_tokens,
};

fn policy(selector: u8) -> DeflateConfig {
    let window = |bits: u8| match bits & 3 {
        0 => None,
        1 => Some(MIN_WINDOW_BITS),
        2 => Some(11),
        _ => Some(MAX_WINDOW_BITS),
    };
    DeflateConfig::new()
        .enabled(selector & 0x80 == 0)
        .server_no_context_takeover(selector & 1 != 0)
        .client_no_context_takeover(selector & 2 != 0)
        .server_max_window_bits(window(selector >> 2))
        .client_max_window_bits(window(selector >> 4))
}

fn check_params(params: &DeflateParams) {
    assert!((MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&params.server_max_window_bits));
    assert!((MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&params.client_max_window_bits));
}

fuzz_target!(|data: &[u8]| {
    let [selector, value @ ..] = data else {
        return;
    };
    let config = policy(*selector);
    let negotiator = DeflateNegotiator::new(config);

    // Token lists: what parses is tokens, bounded, and formats back.
    if let Ok(tokens) = parse_token_list(value) {
        assert!(!tokens.is_empty() && tokens.len() <= MAX_LIST_ELEMENTS);
        assert!(tokens.iter().all(|token| is_token(token.as_bytes())));
        assert_eq!(parse_token_list(tokens.join(", ").as_bytes()), Ok(tokens));
    }

    // Extension lists: bounded, and what parses formats and parses back.
    if let Ok(offers) = parse_extension_list(value) {
        assert!(!offers.is_empty() && offers.len() <= MAX_EXTENSIONS);
        for offer in &offers {
            assert!(offer.params.len() <= MAX_EXTENSION_PARAMS);
            assert!(offer.is_valid(), "{offer:?}");
        }
        let formatted = format_extensions(&offers).expect("a parsed list formats");
        assert_eq!(
            parse_extension_list(formatted.as_bytes()),
            Ok(offers.clone())
        );

        for offer in &offers {
            let parsed_offer = DeflateOffer::parse_offer(offer);
            let _ = DeflateOffer::parse_response(offer);
            if let Ok(response) = DeflateParams::from_response(offer) {
                check_params(&response);
            }
            match negotiator.accept(offer) {
                Ok((answer, server_params)) => {
                    let parsed_offer = parsed_offer.expect("only valid offers are accepted");
                    assert_eq!(answer.name, PERMESSAGE_DEFLATE);
                    assert!(answer.is_valid());
                    check_params(&server_params);
                    assert_eq!(DeflateParams::from_response(&answer), Ok(server_params));
                    // The client that made this offer agrees with the
                    // answer, and on the same parameters.
                    assert_eq!(
                        parsed_offer.accept_response(&answer),
                        Ok(server_params),
                        "offer {offer} answered {answer}"
                    );
                }
                Err(_) => {
                    // Only an invalid offer (or a disabled policy) is
                    // declined.
                    assert!(!config.get_enabled() || parsed_offer.is_err(), "{offer}");
                }
            }
            // The client's check of this element as an answer never
            // panics, and what it accepts is within range.
            if let Ok(params) = config.accept_response(offer) {
                check_params(&params);
            }
        }
        let selected = negotiator.select(&offers);
        if let Some((answer, _)) = &selected {
            assert!(offers.iter().any(|offer| offer.name == answer.name));
        }
    }

    let Ok(header) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut map = HeaderMap::new();
    map.append(SEC_WEBSOCKET_EXTENSIONS, header.clone());
    map.append(SEC_WEBSOCKET_PROTOCOL, header.clone());
    map.append(UPGRADE, header.clone());
    assert_eq!(parse_extensions(&map), parse_extension_list(value));
    assert_eq!(
        parse_tokens(&map, &SEC_WEBSOCKET_PROTOCOL),
        parse_token_list(value)
    );
    let _ = contains_token(&map, &UPGRADE, "websocket");

    // A valid request carrying this value as its extension offers and its
    // subprotocol offers: accepted or refused with 400, never a 500.
    let request = Request::get("/chat")
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header(SEC_WEBSOCKET_EXTENSIONS, header.clone())
        .header(SEC_WEBSOCKET_PROTOCOL, header)
        .body(())
        .expect("a valid request");
    let server = ServerHandshake::new()
        .subprotocols(["chat", "superchat"])
        .extensions(negotiator);
    match server.accept(&request) {
        Ok(accepted) => {
            assert_eq!(accepted.response.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert!(accepted.negotiated.extensions.len() <= 1);
            let answered = accepted.response.headers().get(SEC_WEBSOCKET_EXTENSIONS);
            assert_eq!(
                answered.is_some(),
                !accepted.negotiated.extensions.is_empty()
            );
        }
        Err(error) => assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST), "{error}"),
    }
});
