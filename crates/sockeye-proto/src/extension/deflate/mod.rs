//! Negotiation of permessage-deflate (RFC 7692 section 7.1), sans-I/O.
//!
//! - [`DeflateConfig`] is the user's policy, the same type on both ends.
//! - A server hands a [`DeflateNegotiator`] to its handshake: it takes the
//!   first acceptable `permessage-deflate` offer and answers it.
//! - A client sends [`DeflateConfig::offer`] and checks the server's answer
//!   with [`DeflateConfig::accept_response`] (or
//!   [`DeflateConfig::client_params`] over the negotiated extensions).
//! - Both ends get [`DeflateParams`]: per direction, the window size and
//!   whether the LZ77 window is kept between messages.
//!
//! ```
//! use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
//! use sockeye_proto::handshake::ExtensionNegotiator;
//!
//! let client = DeflateConfig::new().client_no_context_takeover(true);
//! let server = DeflateNegotiator::new(DeflateConfig::new().server_max_window_bits(Some(12)));
//!
//! let offer = client.offer().unwrap();
//! assert_eq!(offer.to_string(), "permessage-deflate; client_no_context_takeover; client_max_window_bits");
//! let answer = server.negotiate(&[offer]);
//! assert_eq!(
//!     answer[0].to_string(),
//!     "permessage-deflate; client_no_context_takeover; \
//!      server_max_window_bits=12; client_max_window_bits=12",
//! );
//!
//! let params = client.accept_response(&answer[0]).unwrap();
//! assert_eq!(params.server_max_window_bits, 12);
//! assert_eq!(params.client_max_window_bits, 12);
//! assert!(params.client_no_context_takeover);
//! ```
//!
//! # Window bits 8 and zlib
//!
//! RFC 7692 allows window bits from 8 to 15, but zlib cannot compress raw
//! DEFLATE with an 8-bit window: it silently uses 9, whose back-references
//! a peer holding a 256-byte window may not resolve. sockeye still agrees
//! to 8 bits wherever a peer asks (Autobahn's cases 13.3 and 13.5 do, and
//! some peers answer `client_max_window_bits=8`), and honours it by
//! sending the messages of that direction uncompressed: RSV1 is chosen per
//! message, so a plain message is always valid. Receiving with 8 bits is
//! unaffected (a larger window decodes anything a smaller one encoded).
//! [`MIN_COMPRESS_WINDOW_BITS`] is the smallest window sockeye compresses
//! with.

pub(crate) mod codec;
mod error;
mod negotiate;
mod parse;
#[cfg(test)]
mod tests;

pub use error::DeflateError;
pub use negotiate::DeflateNegotiator;
pub use parse::DeflateOffer;

use crate::Role;
use crate::handshake::ExtensionOffer;

/// The extension token, `permessage-deflate` (RFC 7692 section 7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";
/// The `server_no_context_takeover` parameter (RFC 7692 section 7.1.1.1).
pub const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
/// The `client_no_context_takeover` parameter (RFC 7692 section 7.1.1.2).
pub const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
/// The `server_max_window_bits` parameter (RFC 7692 section 7.1.2.1).
pub const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
/// The `client_max_window_bits` parameter (RFC 7692 section 7.1.2.2).
pub const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The largest window, and the one used when nothing limits it.
pub const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window RFC 7692 allows.
pub const MIN_WINDOW_BITS: u8 = 8;
/// The window a server limits each direction to unless configured
/// otherwise (a 4 KiB window instead of 32 KiB), as Python `websockets`
/// does: its own compression window always, the client's whenever the
/// client's offer lets it (browsers' do). A busy connection compressing
/// with context takeover then peaks at about 110 KiB less (254 instead of
/// 366 KiB, measured over 1,000 connections), compression and inflation
/// touch less memory, and the server spent 24-31% less CPU per 1 KiB JSON
/// message, for messages about 4% larger than with 32 KiB windows. A server sets
/// [`DeflateConfig::server_max_window_bits`] and
/// [`DeflateConfig::client_max_window_bits`] to `Some(15)` for full
/// windows.
pub const DEFAULT_SERVER_WINDOW_BITS: u8 = 12;
/// The default [`DeflateConfig::threshold`].
pub const DEFAULT_THRESHOLD: usize = 32;
/// The default [`DeflateConfig::level`].
pub const DEFAULT_LEVEL: u32 = 1;

/// The smallest window sockeye compresses with (zlib's raw-deflate floor):
/// with 8 bits agreed, messages go uncompressed (see the
/// [module documentation](self)).
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// The user's permessage-deflate policy, on a client or a server.
///
/// Names follow RFC 7692: "server" parameters concern what the server
/// compresses (the server-to-client direction), "client" parameters what
/// the client compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateConfig {
    enabled: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
    threshold: usize,
    level: u32,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig::new()
    }
}

impl DeflateConfig {
    /// The default policy: enabled, context takeover allowed both ways; no
    /// window limit on a client, [`DEFAULT_SERVER_WINDOW_BITS`] on a
    /// server.
    pub fn new() -> DeflateConfig {
        DeflateConfig {
            enabled: true,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            threshold: DEFAULT_THRESHOLD,
            level: DEFAULT_LEVEL,
        }
    }

    /// Messages shorter than this many bytes are sent uncompressed (a local
    /// choice, not negotiated): below a few dozen bytes DEFLATE's block
    /// overhead outweighs what it saves. Default: 32.
    pub fn threshold(mut self, bytes: usize) -> DeflateConfig {
        self.threshold = bytes;
        self
    }

    /// The zlib compression level, 0 (store) to 9 (smallest, slowest); values
    /// above 9 mean 9. A local choice, not negotiated. Default: 1, the
    /// fastest: on JSON-like text it compressed about 8 times faster than
    /// zlib's default of 6 for a ratio of 4.0 instead of 5.9 (see
    /// `bench/NOTES.md`); uWebSockets makes the same choice.
    pub fn level(mut self, level: u32) -> DeflateConfig {
        self.level = level.min(9);
        self
    }

    /// The size below which messages are sent uncompressed.
    pub fn get_threshold(&self) -> usize {
        self.threshold
    }

    /// The compression level.
    pub fn get_level(&self) -> u32 {
        self.level
    }

    /// Whether to offer (client) or accept (server) permessage-deflate at
    /// all. Default: `true`.
    pub fn enabled(mut self, on: bool) -> DeflateConfig {
        self.enabled = on;
        self
    }

    /// Asks the server to reset its compression window after each message.
    /// A client sends `server_no_context_takeover` in its offer (and fails
    /// if the server does not agree); a server answers it even when not
    /// asked. Default: `false`.
    pub fn server_no_context_takeover(mut self, on: bool) -> DeflateConfig {
        self.server_no_context_takeover = on;
        self
    }

    /// Asks the client to reset its compression window after each message.
    /// A client sends `client_no_context_takeover` in its offer and holds
    /// itself to it; a server asks it in its answer. Default: `false`.
    pub fn client_no_context_takeover(mut self, on: bool) -> DeflateConfig {
        self.client_no_context_takeover = on;
        self
    }

    /// Limits the server's compression window to `2^bits` bytes. A client
    /// offers `server_max_window_bits=bits`; a server answers at most
    /// `bits`. With 8, the server sends its messages uncompressed (see the
    /// [module documentation](self)). `None`: a client asks no limit, a
    /// server limits its window to [`DEFAULT_SERVER_WINDOW_BITS`] (12);
    /// `Some(15)` is no limit. Default: `None`.
    ///
    /// # Panics
    ///
    /// If `bits` is outside 8..=15.
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> DeflateConfig {
        check_window_bits(bits);
        self.server_max_window_bits = bits;
        self
    }

    /// Limits the client's compression window to `2^bits` bytes. A client
    /// offers `client_max_window_bits=bits` and, with `None`, a bare
    /// `client_max_window_bits` (it supports the parameter); a server asks
    /// `client_max_window_bits=bits` (at most what the client offered) when
    /// the client supports the parameter. With 8, the client sends its
    /// messages uncompressed. `None`: a client sets no limit, a server asks
    /// [`DEFAULT_SERVER_WINDOW_BITS`] (12) of a client that supports the
    /// parameter; `Some(15)` is no limit. Default: `None`.
    ///
    /// # Panics
    ///
    /// If `bits` is outside 8..=15.
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> DeflateConfig {
        check_window_bits(bits);
        self.client_max_window_bits = bits;
        self
    }

    /// Whether permessage-deflate is offered or accepted.
    pub fn get_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the server is asked not to take over its context.
    pub fn get_server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// Whether the client is asked not to take over its context.
    pub fn get_client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// The server's window limit, if any.
    pub fn get_server_max_window_bits(&self) -> Option<u8> {
        self.server_max_window_bits
    }

    /// The client's window limit, if any.
    pub fn get_client_max_window_bits(&self) -> Option<u8> {
        self.client_max_window_bits
    }
}

fn check_window_bits(bits: Option<u8>) {
    if let Some(bits) = bits {
        assert!(
            (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits),
            "permessage-deflate window bits must be in 8..=15, not {bits}"
        );
    }
}

/// What a permessage-deflate negotiation agreed on, the same on both ends.
///
/// Window sizes are maxima: a compressor may use a smaller window, and a
/// decompressor may use a larger one (sockeye's inflates with at least 9
/// bits, zlib's floor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server resets its compression window after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression window after each message.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most `2^server_max_window_bits` bytes
    /// of window.
    pub server_max_window_bits: u8,
    /// The client compresses with at most `2^client_max_window_bits` bytes
    /// of window.
    pub client_max_window_bits: u8,
}

/// One direction of a negotiated permessage-deflate: what the compressor
/// of that direction and the matching decompressor need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateDirection {
    /// The base-2 logarithm of the largest LZ77 window, 8 to 15.
    pub window_bits: u8,
    /// Whether the window is kept from one message to the next.
    pub context_takeover: bool,
}

impl DeflateParams {
    /// The parameters a server's own response stands for: how a server
    /// recovers [`DeflateParams`] from
    /// [`Negotiated::extensions`](crate::handshake::Negotiated::extensions).
    /// Checks the response's syntax only; a client must use
    /// [`DeflateConfig::accept_response`] or
    /// [`DeflateOffer::accept_response`], which also check it against the
    /// offer.
    pub fn from_response(response: &ExtensionOffer) -> Result<DeflateParams, DeflateError> {
        Ok(DeflateParams::from_parsed_response(
            &DeflateOffer::parse_response(response)?,
        ))
    }

    pub(crate) fn from_parsed_response(response: &DeflateOffer) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: response.server_no_context_takeover,
            client_no_context_takeover: response.client_no_context_takeover,
            server_max_window_bits: response.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
            client_max_window_bits: response
                .client_max_window_bits
                .flatten()
                .unwrap_or(MAX_WINDOW_BITS),
        }
    }

    /// The direction `role` compresses (what it sends).
    pub fn outgoing(&self, role: Role) -> DeflateDirection {
        match role {
            Role::Client => self.client(),
            Role::Server => self.server(),
        }
    }

    /// The direction `role` decompresses (what it receives).
    pub fn incoming(&self, role: Role) -> DeflateDirection {
        match role {
            Role::Client => self.server(),
            Role::Server => self.client(),
        }
    }

    fn client(&self) -> DeflateDirection {
        DeflateDirection {
            window_bits: self.client_max_window_bits,
            context_takeover: !self.client_no_context_takeover,
        }
    }

    fn server(&self) -> DeflateDirection {
        DeflateDirection {
            window_bits: self.server_max_window_bits,
            context_takeover: !self.server_no_context_takeover,
        }
    }
}
