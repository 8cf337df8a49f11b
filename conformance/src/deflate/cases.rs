//! The case tables of sections 12 and 13.
//!
//! Every case sends `count` messages of one length in a row and expects
//! each echoed, in order. Autobahn sends 1000 messages per case; to keep
//! the suite's cost reasonable (both roles, in memory and over TCP, in
//! the dev profile), a case here sends 1000 messages of up to 1 KiB and
//! fewer of larger ones, so that no case moves more than 1 MiB of payload
//! each way ([`MAX_CASE_BYTES`]): 256 of 4 KiB, 128 of 8 KiB, ..., 8 of
//! 128 KiB.
//!
//! - Section 12 (default parameters): five payload kinds
//!   ([`PayloadKind`]), subsections 12.1 to 12.5, each with Autobahn's 18
//!   variants ([`VARIANTS`]): ten lengths from 16 bytes to 128 KiB
//!   unfragmented, then eight with the peer's compressed messages cut into
//!   frames of 256 to 32768 bytes and the testee's outgoing frames limited
//!   to the same size (`Config::outgoing_frame_size`), so fragmented
//!   compressed messages go both ways.
//! - Section 13 (parameters): JSON text in the same 18 variants under each
//!   negotiation of [`negotiations`], modelled on Autobahn 13.1 to 13.7,
//!   plus server policies (13.8 to 13.10) and the testee held to an 8-bit
//!   window (13.11).

use sockeye_proto::extension::deflate::DeflateConfig;

use super::payload::PayloadKind;

/// The most payload bytes a case sends each way.
pub const MAX_CASE_BYTES: usize = 1 << 20;

/// The most messages a case sends (Autobahn's count).
pub const MAX_MESSAGES: usize = 1000;

/// Autobahn's 18 variants: message length and fragment size (`None`:
/// unfragmented).
pub const VARIANTS: [(usize, Option<usize>); 18] = [
    (16, None),
    (64, None),
    (256, None),
    (1024, None),
    (4096, None),
    (8192, None),
    (16384, None),
    (32768, None),
    (65536, None),
    (131_072, None),
    (8192, Some(256)),
    (16384, Some(256)),
    (32768, Some(256)),
    (65536, Some(256)),
    (131_072, Some(256)),
    (131_072, Some(1024)),
    (131_072, Some(4096)),
    (131_072, Some(32768)),
];

/// The payload kinds of section 12, in subsection order.
pub const KINDS: [PayloadKind; 5] = [
    PayloadKind::Json,
    PayloadKind::Bitmap,
    PayloadKind::German,
    PayloadKind::Html,
    PayloadKind::Audio,
];

/// How many messages a case of `len`-byte messages sends.
pub fn message_count(len: usize) -> usize {
    (MAX_CASE_BYTES / len.max(1)).clamp(1, MAX_MESSAGES)
}

/// What both ends agree on, from the runner's reading of RFC 7692: the
/// runner compresses and inflates with these, independently of the
/// testee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its window after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its window after each message.
    pub client_no_context_takeover: bool,
    /// The server's window, in bits.
    pub server_max_window_bits: u8,
    /// The client's window, in bits.
    pub client_max_window_bits: u8,
}

impl Agreed {
    const fn new(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }
    }
}

/// One role's negotiation.
#[derive(Debug, Clone)]
pub struct RoleSetup {
    /// The testee's policy (`ServerBuilder::deflate`,
    /// `ClientBuilder::deflate`).
    pub policy: DeflateConfig,
    /// Testee as client: a raw `Sec-WebSocket-Extensions` it offers
    /// instead of its policy's offer (`ClientBuilder::extensions_header`).
    pub extensions_header: Option<&'static str>,
    /// The offer: what the runner sends (testee as server), what the
    /// testee must send (testee as client).
    pub offer: &'static str,
    /// The answer: what the testee must send (as server), what the runner
    /// sends (testee as client).
    pub answer: &'static str,
    /// What that agrees on.
    pub agreed: Agreed,
}

/// A negotiation, in both roles.
#[derive(Debug, Clone)]
pub struct Negotiation {
    /// Its subsection of section 13.
    pub subsection: u32,
    /// What it is about.
    pub description: &'static str,
    /// With the testee as server.
    pub server: RoleSetup,
    /// With the testee as client.
    pub client: RoleSetup,
}

fn setup(
    policy: DeflateConfig,
    offer: &'static str,
    answer: &'static str,
    agreed: Agreed,
) -> RoleSetup {
    RoleSetup {
        policy,
        extensions_header: None,
        offer,
        answer,
        agreed,
    }
}

/// The negotiations of section 13; the first is also section 12's.
pub fn negotiations() -> Vec<Negotiation> {
    let default = DeflateConfig::new();
    // A server policy with full windows: the cases after the first are
    // about the parameters they name, not the server's default limit.
    let full = default
        .server_max_window_bits(Some(15))
        .client_max_window_bits(Some(15));
    let nct = default
        .server_no_context_takeover(true)
        .client_no_context_takeover(true);
    vec![
        Negotiation {
            subsection: 1,
            description: "default offer and policy: a server limits both windows to 12 bits, \
                          a client takes the answer as is",
            server: setup(
                default,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                Agreed::new(false, false, 12, 12),
            ),
            client: setup(
                default,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate",
                Agreed::new(false, false, 15, 15),
            ),
        },
        Negotiation {
            subsection: 2,
            description: "no context takeover either way",
            server: setup(
                full,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Agreed::new(true, true, 15, 15),
            ),
            client: setup(
                nct,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Agreed::new(true, true, 15, 15),
            ),
        },
        Negotiation {
            subsection: 3,
            description: "the peer compresses with an 8-bit window (stored blocks)",
            server: setup(
                full,
                "permessage-deflate; client_max_window_bits=8",
                "permessage-deflate; client_max_window_bits=8",
                Agreed::new(false, false, 15, 8),
            ),
            client: setup(
                default.server_max_window_bits(Some(8)),
                "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
                "permessage-deflate; server_max_window_bits=8",
                Agreed::new(false, false, 8, 15),
            ),
        },
        Negotiation {
            subsection: 4,
            description: "15-bit windows asked both ways",
            server: setup(
                full,
                "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
                "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
                Agreed::new(false, false, 15, 15),
            ),
            client: setup(
                default
                    .server_max_window_bits(Some(15))
                    .client_max_window_bits(Some(15)),
                "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
                "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
                Agreed::new(false, false, 15, 15),
            ),
        },
        Negotiation {
            subsection: 5,
            description: "no context takeover, the peer's window 8 bits",
            server: setup(
                full,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 client_max_window_bits=8",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 client_max_window_bits=8",
                Agreed::new(true, true, 15, 8),
            ),
            client: setup(
                nct.server_max_window_bits(Some(8)),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=8; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=8",
                Agreed::new(true, true, 8, 15),
            ),
        },
        Negotiation {
            subsection: 6,
            description: "no context takeover, 15-bit windows",
            server: setup(
                full,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15; client_max_window_bits=15",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15; client_max_window_bits=15",
                Agreed::new(true, true, 15, 15),
            ),
            client: setup(
                nct.server_max_window_bits(Some(15))
                    .client_max_window_bits(Some(15)),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15; client_max_window_bits=15",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15; client_max_window_bits=15",
                Agreed::new(true, true, 15, 15),
            ),
        },
        Negotiation {
            subsection: 7,
            description: "several offers: the server takes the first acceptable one (an \
                          invalid value declined); the client's check finds the offer an \
                          answer fits",
            server: setup(
                full,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=16, \
                 permessage-deflate; server_no_context_takeover; server_max_window_bits=8; \
                 client_max_window_bits, \
                 permessage-deflate; server_no_context_takeover; client_max_window_bits, \
                 permessage-deflate",
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
                Agreed::new(true, false, 8, 15),
            ),
            client: RoleSetup {
                policy: default,
                extensions_header: Some(
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=8; \
                     client_max_window_bits, \
                     permessage-deflate; server_no_context_takeover; client_max_window_bits, \
                     permessage-deflate; client_max_window_bits",
                ),
                offer: "permessage-deflate; server_no_context_takeover; server_max_window_bits=8; \
                        client_max_window_bits, \
                        permessage-deflate; server_no_context_takeover; client_max_window_bits, \
                        permessage-deflate; client_max_window_bits",
                answer: "permessage-deflate; server_no_context_takeover",
                agreed: Agreed::new(true, false, 15, 15),
            },
        },
        Negotiation {
            subsection: 8,
            description: "the server asks client_no_context_takeover",
            server: setup(
                full.client_no_context_takeover(true),
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; client_no_context_takeover",
                Agreed::new(false, true, 15, 15),
            ),
            client: setup(
                default,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; client_no_context_takeover",
                Agreed::new(false, true, 15, 15),
            ),
        },
        Negotiation {
            subsection: 9,
            description: "the server answers smaller windows than offered",
            server: setup(
                default
                    .server_max_window_bits(Some(10))
                    .client_max_window_bits(Some(9)),
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
                Agreed::new(false, false, 10, 9),
            ),
            client: setup(
                default
                    .server_max_window_bits(Some(12))
                    .client_max_window_bits(Some(12)),
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
                Agreed::new(false, false, 10, 9),
            ),
        },
        Negotiation {
            subsection: 10,
            description: "the server adds unasked server_no_context_takeover and window limits",
            server: setup(
                default
                    .server_no_context_takeover(true)
                    .server_max_window_bits(Some(9))
                    .client_max_window_bits(Some(10)),
                "permessage-deflate",
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
                Agreed::new(true, false, 9, 15),
            ),
            client: setup(
                default,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
                 client_max_window_bits=11",
                Agreed::new(true, false, 9, 11),
            ),
        },
        Negotiation {
            subsection: 11,
            description: "the testee is held to an 8-bit window (Autobahn 13.3 and 13.5 ask \
                          it): it agrees and sends plain messages",
            server: setup(
                full,
                "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
                "permessage-deflate; server_max_window_bits=8",
                Agreed::new(false, false, 8, 15),
            ),
            client: setup(
                default,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; client_max_window_bits=8",
                Agreed::new(false, false, 15, 8),
            ),
        },
    ]
}

/// One case.
#[derive(Debug, Clone)]
pub struct DeflateCase {
    /// `12.1.3`: section, subsection, variant.
    pub id: String,
    /// What it sends.
    pub description: String,
    /// What its messages are cut from.
    pub kind: PayloadKind,
    /// Each message's length.
    pub len: usize,
    /// How many messages.
    pub count: usize,
    /// The fragment size of the peer's compressed messages and the
    /// testee's `Config::outgoing_frame_size`; `None`: unfragmented.
    pub fragment: Option<usize>,
    /// The negotiation.
    pub negotiation: Negotiation,
}

impl DeflateCase {
    /// The section number.
    pub fn section(&self) -> u32 {
        self.id
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// `12.1`.
    pub fn subsection(&self) -> String {
        self.id
            .rsplit_once('.')
            .map_or(self.id.clone(), |(s, _)| s.to_string())
    }
}

fn variant_cases(
    prefix: &str,
    kind: PayloadKind,
    negotiation: &Negotiation,
    what: &str,
) -> Vec<DeflateCase> {
    VARIANTS
        .iter()
        .enumerate()
        .map(|(index, &(len, fragment))| {
            let count = message_count(len);
            DeflateCase {
                id: format!("{prefix}.{}", index + 1),
                description: format!(
                    "{count} x {len} bytes of {}, {}, {what}",
                    kind.describe(),
                    fragment.map_or("unfragmented".to_string(), |size| format!(
                        "in frames of {size} bytes"
                    ))
                ),
                kind,
                len,
                count,
                fragment,
                negotiation: negotiation.clone(),
            }
        })
        .collect()
}

/// Every case of sections 12 and 13, in order.
pub fn all() -> Vec<DeflateCase> {
    let negotiations = negotiations();
    let mut cases = Vec::new();
    for (index, kind) in KINDS.iter().enumerate() {
        cases.extend(variant_cases(
            &format!("12.{}", index + 1),
            *kind,
            &negotiations[0],
            "default parameters",
        ));
    }
    for negotiation in &negotiations {
        cases.extend(variant_cases(
            &format!("13.{}", negotiation.subsection),
            PayloadKind::Json,
            negotiation,
            negotiation.description,
        ));
    }
    cases
}

/// Section titles for reports.
pub fn section_title(section: u32) -> &'static str {
    match section {
        12 => "permessage-deflate: payloads (default parameters)",
        13 => "permessage-deflate: parameters",
        _ => "other",
    }
}
