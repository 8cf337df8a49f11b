//! RFC 7692 section 7.1, rule by rule.

use crate::Role;
use crate::handshake::{ExtensionNegotiator, ExtensionOffer, parse_extension_list};

use super::*;

fn ext(header: &str) -> ExtensionOffer {
    let mut list = parse_extension_list(header.as_bytes()).unwrap();
    assert_eq!(list.len(), 1);
    list.remove(0)
}

fn list(header: &str) -> Vec<ExtensionOffer> {
    parse_extension_list(header.as_bytes()).unwrap()
}

fn server(config: DeflateConfig) -> DeflateNegotiator {
    DeflateNegotiator::new(config)
}

/// A server policy with full windows unless a client asks less: the
/// rules below are about the answer, not the default limit.
fn full() -> DeflateConfig {
    DeflateConfig::new()
        .server_max_window_bits(Some(MAX_WINDOW_BITS))
        .client_max_window_bits(Some(MAX_WINDOW_BITS))
}

fn answer(config: DeflateConfig, offers: &str) -> Option<String> {
    let answers = server(config).negotiate(&list(offers));
    assert!(answers.len() <= 1);
    answers.first().map(ToString::to_string)
}

// Parsing (section 7.1).

#[test]
fn parses_every_parameter() {
    let offer = DeflateOffer::parse_offer(&ext(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits",
    ))
    .unwrap();
    assert!(offer.server_no_context_takeover && offer.client_no_context_takeover);
    assert_eq!(offer.server_max_window_bits, Some(10));
    assert_eq!(offer.client_max_window_bits, Some(None));
    let bare = DeflateOffer::parse_offer(&ext("permessage-deflate")).unwrap();
    assert_eq!(bare, DeflateOffer::default());
}

#[test]
fn window_bits_are_plain_decimals_from_8_to_15() {
    for (value, bits) in [("8", 8), ("9", 9), ("10", 10), ("15", 15), ("\"12\"", 12)] {
        let offer = ext(&format!(
            "permessage-deflate; server_max_window_bits={value}"
        ));
        let parsed = DeflateOffer::parse_offer(&offer).unwrap();
        assert_eq!(parsed.server_max_window_bits, Some(bits), "{value}");
    }
    for value in [
        "7", "16", "0", "08", "015", "+9", "0x9", "99", "1", "a", "\"\"",
    ] {
        for param in [SERVER_MAX_WINDOW_BITS, CLIENT_MAX_WINDOW_BITS] {
            let offer = ExtensionOffer::new(PERMESSAGE_DEFLATE).with_param(param, Some(value));
            let error = DeflateOffer::parse_offer(&offer).unwrap_err();
            assert!(
                matches!(error, DeflateError::InvalidWindowBits { .. }),
                "{param}={value}: {error:?}"
            );
        }
    }
}

#[test]
fn refuses_unknown_duplicate_and_misvalued_parameters() {
    let cases = [
        (
            "permessage-deflate; mystery",
            DeflateError::UnknownParameter("mystery".into()),
        ),
        (
            "permessage-deflate; client_max_window_bits=10; CLIENT_MAX_WINDOW_BITS",
            DeflateError::DuplicateParameter(CLIENT_MAX_WINDOW_BITS),
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            DeflateError::DuplicateParameter(SERVER_NO_CONTEXT_TAKEOVER),
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            DeflateError::UnexpectedValue(SERVER_NO_CONTEXT_TAKEOVER),
        ),
        (
            "permessage-deflate; client_no_context_takeover=\"x\"",
            DeflateError::UnexpectedValue(CLIENT_NO_CONTEXT_TAKEOVER),
        ),
        (
            "permessage-deflate; server_max_window_bits",
            DeflateError::MissingValue(SERVER_MAX_WINDOW_BITS),
        ),
        (
            "x-webkit-deflate-frame",
            DeflateError::NotDeflate("x-webkit-deflate-frame".into()),
        ),
        (
            "Permessage-Deflate",
            DeflateError::NotDeflate("Permessage-Deflate".into()),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            DeflateOffer::parse_offer(&ext(header)),
            Err(expected.clone()),
            "{header}"
        );
        assert_eq!(
            DeflateOffer::parse_response(&ext(header)),
            Err(expected),
            "{header}"
        );
    }
}

#[test]
fn parameter_names_are_case_insensitive() {
    let offer =
        DeflateOffer::parse_offer(&ext("permessage-deflate; Server_Max_Window_Bits=9")).unwrap();
    assert_eq!(offer.server_max_window_bits, Some(9));
}

#[test]
fn bare_client_max_window_bits_only_in_offers() {
    let header = ext("permessage-deflate; client_max_window_bits");
    assert_eq!(
        DeflateOffer::parse_offer(&header)
            .unwrap()
            .client_max_window_bits,
        Some(None)
    );
    assert_eq!(
        DeflateOffer::parse_response(&header),
        Err(DeflateError::MissingValue(CLIENT_MAX_WINDOW_BITS))
    );
}

#[test]
fn to_extension_round_trips() {
    let header = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                  server_max_window_bits=10; client_max_window_bits=12";
    let parsed = DeflateOffer::parse_offer(&ext(header)).unwrap();
    assert_eq!(parsed.to_extension(), ext(header));
    assert!(parsed.to_extension().is_valid());
}

// Configuration.

#[test]
fn config_defaults_and_setters() {
    let config = DeflateConfig::default();
    assert_eq!(config, DeflateConfig::new());
    assert!(config.get_enabled());
    assert!(!config.get_server_no_context_takeover() && !config.get_client_no_context_takeover());
    assert_eq!(config.get_server_max_window_bits(), None);
    assert_eq!(config.get_client_max_window_bits(), None);
    let config = config
        .enabled(false)
        .server_no_context_takeover(true)
        .client_no_context_takeover(true)
        .server_max_window_bits(Some(8))
        .client_max_window_bits(Some(15));
    assert!(!config.get_enabled());
    assert!(config.get_server_no_context_takeover() && config.get_client_no_context_takeover());
    assert_eq!(config.get_server_max_window_bits(), Some(8));
    assert_eq!(config.get_client_max_window_bits(), Some(15));
}

#[test]
#[should_panic(expected = "8..=15")]
fn config_refuses_window_bits_out_of_range() {
    let _ = DeflateConfig::new().client_max_window_bits(Some(16));
}

#[test]
#[should_panic(expected = "8..=15")]
fn config_refuses_window_bits_below_8() {
    let _ = DeflateConfig::new().server_max_window_bits(Some(7));
}

// Client offers.

#[test]
fn client_offers() {
    let offer = |config: DeflateConfig| config.offer().map(|offer| offer.to_string());
    assert_eq!(
        offer(DeflateConfig::new()).as_deref(),
        Some("permessage-deflate; client_max_window_bits")
    );
    assert_eq!(offer(DeflateConfig::new().enabled(false)), None);
    assert_eq!(
        offer(
            DeflateConfig::new()
                .server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(8))
                .client_max_window_bits(Some(8))
        )
        .as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=8; client_max_window_bits=8"
        )
    );
}

// Server answers.

#[test]
fn server_answers_a_plain_offer_plainly() {
    let config = full();
    assert_eq!(
        answer(config, "permessage-deflate").as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(
        answer(config, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate")
    );
}

#[test]
fn server_windows_default_to_12_bits() {
    let config = DeflateConfig::new();
    assert_eq!(DEFAULT_SERVER_WINDOW_BITS, 12);
    let cases = [
        (
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        // A client that supports client_max_window_bits is asked 12 too
        // (browsers offer it bare).
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        // Smaller limits the client sets stand.
        (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
    ];
    for (offer, expected) in cases {
        assert_eq!(answer(config, offer).as_deref(), Some(expected), "{offer}");
    }
    // What a client agrees to from such an answer.
    let client = DeflateConfig::new();
    let response = answer(config, &client.offer().unwrap().to_string()).unwrap();
    let params = client.accept_response(&ext(&response)).unwrap();
    assert_eq!(params.server_max_window_bits, 12);
    assert_eq!(params.client_max_window_bits, 12);
    // A client's defaults limit nothing.
    assert_eq!(
        client.offer().unwrap().to_string(),
        "permessage-deflate; client_max_window_bits"
    );
}

#[test]
fn server_disabled_or_nothing_offered() {
    assert_eq!(
        answer(DeflateConfig::new().enabled(false), "permessage-deflate"),
        None
    );
    assert_eq!(answer(DeflateConfig::new(), "x-foo; bar"), None);
    assert!(server(DeflateConfig::new()).negotiate(&[]).is_empty());
    assert_eq!(
        server(DeflateConfig::new().enabled(false)).accept(&ext("permessage-deflate")),
        Err(DeflateError::Disabled)
    );
}

#[test]
fn server_context_takeover() {
    let config = full();
    assert_eq!(
        answer(config, "permessage-deflate; server_no_context_takeover").as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert_eq!(
        answer(config, "permessage-deflate; client_no_context_takeover").as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    let strict = config
        .server_no_context_takeover(true)
        .client_no_context_takeover(true);
    assert_eq!(
        answer(strict, "permessage-deflate").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

#[test]
fn server_max_window_bits_answers() {
    let config = DeflateConfig::new();
    let cases = [
        (
            config,
            "permessage-deflate; server_max_window_bits=10",
            Some("server_max_window_bits=10"),
        ),
        (
            config.server_max_window_bits(Some(12)),
            "permessage-deflate; server_max_window_bits=10",
            Some("server_max_window_bits=10"),
        ),
        (
            config.server_max_window_bits(Some(9)),
            "permessage-deflate; server_max_window_bits=10",
            Some("server_max_window_bits=9"),
        ),
        (
            config.server_max_window_bits(Some(11)),
            "permessage-deflate",
            Some("server_max_window_bits=11"),
        ),
        (
            config.server_max_window_bits(Some(8)),
            "permessage-deflate",
            Some("server_max_window_bits=8"),
        ),
        (
            config.server_max_window_bits(Some(15)),
            "permessage-deflate",
            None,
        ),
    ];
    for (config, offer, expected) in cases {
        let expected = match expected {
            Some(param) => format!("permessage-deflate; {param}"),
            None => PERMESSAGE_DEFLATE.to_owned(),
        };
        assert_eq!(answer(config, offer), Some(expected), "{offer}");
    }
}

#[test]
fn server_accepts_server_max_window_bits_8() {
    // It answers 8 and honours it by sending uncompressed.
    let offer = ext("permessage-deflate; server_max_window_bits=8");
    let (answer, params) = server(DeflateConfig::new()).accept(&offer).unwrap();
    assert_eq!(
        answer.to_string(),
        "permessage-deflate; server_max_window_bits=8"
    );
    assert_eq!(params.server_max_window_bits, 8);
}

#[test]
fn client_accepts_client_max_window_bits_8() {
    let params = DeflateConfig::new()
        .accept_response(&ext("permessage-deflate; client_max_window_bits=8"))
        .unwrap();
    assert_eq!(params.client_max_window_bits, 8);
}

#[test]
fn server_client_max_window_bits_answers() {
    let config = full();
    let limited = config.client_max_window_bits(Some(10));
    let cases = [
        (config, "permessage-deflate", None),
        (limited, "permessage-deflate", None),
        (config, "permessage-deflate; client_max_window_bits", None),
        (
            limited,
            "permessage-deflate; client_max_window_bits",
            Some("10"),
        ),
        (
            config,
            "permessage-deflate; client_max_window_bits=12",
            Some("12"),
        ),
        (
            limited,
            "permessage-deflate; client_max_window_bits=12",
            Some("10"),
        ),
        (
            limited,
            "permessage-deflate; client_max_window_bits=9",
            Some("9"),
        ),
        (
            config.client_max_window_bits(Some(8)),
            "permessage-deflate; client_max_window_bits",
            Some("8"),
        ),
    ];
    for (config, offer, expected) in cases {
        let expected = match expected {
            Some(bits) => format!("permessage-deflate; client_max_window_bits={bits}"),
            None => PERMESSAGE_DEFLATE.to_owned(),
        };
        assert_eq!(answer(config, offer), Some(expected), "{offer}");
    }
}

#[test]
fn server_falls_back_to_the_next_acceptable_offer() {
    let offers = "x-foo, permessage-deflate; mystery, permessage-deflate; server_max_window_bits=08, \
                  permessage-deflate; server_max_window_bits=16, \
                  permessage-deflate; server_no_context_takeover=yes, \
                  permessage-deflate; server_max_window_bits=10; client_max_window_bits, \
                  permessage-deflate";
    let negotiator = server(full());
    let (response, params) = negotiator.select(&list(offers)).unwrap();
    assert_eq!(
        response.to_string(),
        "permessage-deflate; server_max_window_bits=10"
    );
    assert_eq!(params.server_max_window_bits, 10);
    assert_eq!(
        answer(full(), "permessage-deflate; a, permessage-deflate; b"),
        None
    );
}

// Client checks of answers.

fn check(config: DeflateConfig, response: &str) -> Result<DeflateParams, DeflateError> {
    config.accept_response(&ext(response))
}

#[test]
fn client_accepts_valid_answers() {
    let config = DeflateConfig::new();
    let params = check(config, "permessage-deflate").unwrap();
    assert_eq!(
        params,
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    );
    // Unasked additions the server may make.
    let params = check(
        config,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=8; client_max_window_bits=9",
    )
    .unwrap();
    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (8, 9)
    );
    // A smaller window than offered.
    let limited = config
        .server_max_window_bits(Some(12))
        .client_max_window_bits(Some(12));
    let params = check(
        limited,
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11",
    )
    .unwrap();
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (10, 11)
    );
    // The client's own client_no_context_takeover binds it.
    let params = check(
        config.client_no_context_takeover(true),
        "permessage-deflate",
    )
    .unwrap();
    assert!(params.client_no_context_takeover);
}

#[test]
fn client_refuses_invalid_answers() {
    let config = DeflateConfig::new();
    let cases = [
        (
            config,
            "permessage-deflate; mystery",
            DeflateError::UnknownParameter("mystery".into()),
        ),
        (
            config,
            "permessage-deflate; client_max_window_bits",
            DeflateError::MissingValue(CLIENT_MAX_WINDOW_BITS),
        ),
        (
            config,
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            DeflateError::DuplicateParameter(SERVER_MAX_WINDOW_BITS),
        ),
        (
            config.server_no_context_takeover(true),
            "permessage-deflate",
            DeflateError::MissingParameter(SERVER_NO_CONTEXT_TAKEOVER),
        ),
        (
            config.server_max_window_bits(Some(10)),
            "permessage-deflate",
            DeflateError::MissingParameter(SERVER_MAX_WINDOW_BITS),
        ),
        (
            config.server_max_window_bits(Some(10)),
            "permessage-deflate; server_max_window_bits=11",
            DeflateError::WindowBitsTooLarge {
                param: SERVER_MAX_WINDOW_BITS,
                offered: 10,
                answered: 11,
            },
        ),
        (
            config.client_max_window_bits(Some(10)),
            "permessage-deflate; client_max_window_bits=12",
            DeflateError::WindowBitsTooLarge {
                param: CLIENT_MAX_WINDOW_BITS,
                offered: 10,
                answered: 12,
            },
        ),
        (
            config.enabled(false),
            "permessage-deflate",
            DeflateError::Disabled,
        ),
    ];
    for (config, response, expected) in cases {
        assert_eq!(check(config, response), Err(expected), "{response}");
    }
}

#[test]
fn client_refuses_unoffered_client_max_window_bits() {
    let offered = DeflateOffer::default();
    assert_eq!(
        offered.accept_response(&ext("permessage-deflate; client_max_window_bits=10")),
        Err(DeflateError::UnofferedParameter(CLIENT_MAX_WINDOW_BITS))
    );
}

#[test]
fn client_params_over_negotiated_extensions() {
    let config = DeflateConfig::new();
    assert_eq!(config.client_params(&list("x-foo")), Ok(None));
    assert_eq!(config.client_params(&[]), Ok(None));
    let params = config
        .client_params(&list("x-foo, permessage-deflate"))
        .unwrap();
    assert_eq!(params.map(|params| params.server_max_window_bits), Some(15));
    assert!(
        config
            .client_params(&list("permessage-deflate; x"))
            .is_err()
    );
}

// Both ends together.

#[test]
fn round_trips_agree_on_both_ends() {
    let windows = [None, Some(8), Some(9), Some(12), Some(15)];
    for client_nct in [false, true] {
        for server_nct in [false, true] {
            for client_bits in windows {
                for server_bits in windows {
                    let client = DeflateConfig::new()
                        .client_no_context_takeover(client_nct)
                        .server_max_window_bits(server_bits.filter(|&bits| bits > 8))
                        .client_max_window_bits(client_bits);
                    let server_config = DeflateConfig::new()
                        .server_no_context_takeover(server_nct)
                        .server_max_window_bits(server_bits)
                        .client_max_window_bits(client_bits);
                    let negotiator = server(server_config);
                    let offer = client.offer().unwrap();
                    let (response, server_params) = negotiator.select(&[offer]).unwrap();
                    let client_params = client.accept_response(&response).unwrap();
                    assert_eq!(client_params, server_params, "{response}");
                    assert_eq!(DeflateParams::from_response(&response), Ok(server_params));
                    assert!(server_params.server_max_window_bits >= MIN_WINDOW_BITS);
                    assert!(server_params.client_max_window_bits >= MIN_WINDOW_BITS);
                    assert_eq!(server_params.server_no_context_takeover, server_nct);
                    assert_eq!(server_params.client_no_context_takeover, client_nct);
                }
            }
        }
    }
}

#[test]
fn directions_by_role() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: false,
        server_max_window_bits: 10,
        client_max_window_bits: 12,
    };
    let server_side = DeflateDirection {
        window_bits: 10,
        context_takeover: false,
    };
    let client_side = DeflateDirection {
        window_bits: 12,
        context_takeover: true,
    };
    assert_eq!(params.outgoing(Role::Server), server_side);
    assert_eq!(params.incoming(Role::Client), server_side);
    assert_eq!(params.outgoing(Role::Client), client_side);
    assert_eq!(params.incoming(Role::Server), client_side);
}

#[test]
fn errors_display() {
    let error = DeflateError::WindowBitsTooLarge {
        param: SERVER_MAX_WINDOW_BITS,
        offered: 10,
        answered: 11,
    };
    assert_eq!(
        error.to_string(),
        "the response has server_max_window_bits=11, above the offered 10"
    );
    assert!(DeflateError::Disabled.to_string().contains("disabled"));
}
