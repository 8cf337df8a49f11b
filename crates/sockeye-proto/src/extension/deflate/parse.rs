//! The strict reading of permessage-deflate parameters (RFC 7692 section
//! 7.1), and their writing.

use crate::handshake::ExtensionOffer;

use super::{
    CLIENT_MAX_WINDOW_BITS, CLIENT_NO_CONTEXT_TAKEOVER, DeflateError, PERMESSAGE_DEFLATE,
    SERVER_MAX_WINDOW_BITS, SERVER_NO_CONTEXT_TAKEOVER,
};

/// The parameters of one permessage-deflate offer or response, checked
/// against RFC 7692 section 7.1 but not yet against the other side.
///
/// Parsing is strict:
/// - the extension name must be exactly `permessage-deflate`;
/// - parameter names are compared ASCII case-insensitively (as
///   [`ExtensionOffer::param`] does), and any name outside the four of
///   section 7.1 is refused, as is any name given twice;
/// - `server_no_context_takeover` and `client_no_context_takeover` take no
///   value;
/// - window sizes follow section 7.1.2's `1*DIGIT`, "a decimal integer
///   value without leading zeroes between 8 to 15": `9` and `15` pass,
///   `08`, `+9`, `0x9`, `9 ` and `16` do not. A value that was quoted on
///   the wire (`"10"`) is accepted, since [`ExtensionOffer`] holds it
///   unquoted and RFC 7692 section 7.1 allows quoting;
/// - `server_max_window_bits` needs a value; `client_max_window_bits`
///   needs one in a response but not in an offer, where a bare
///   `client_max_window_bits` means the client supports the parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateOffer {
    /// `server_no_context_takeover` is present.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` is present.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits`, when present.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`: `None` when absent, `Some(None)` when
    /// present without a value (offers only), `Some(Some(bits))` otherwise.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl DeflateOffer {
    /// Reads a client's offer: a server declines the offer when this fails.
    pub fn parse_offer(offer: &ExtensionOffer) -> Result<DeflateOffer, DeflateError> {
        DeflateOffer::parse(offer, false)
    }

    /// Reads a server's response: a client fails the connection when this
    /// fails. Unlike an offer, `client_max_window_bits` needs a value.
    pub fn parse_response(response: &ExtensionOffer) -> Result<DeflateOffer, DeflateError> {
        DeflateOffer::parse(response, true)
    }

    fn parse(extension: &ExtensionOffer, response: bool) -> Result<DeflateOffer, DeflateError> {
        if extension.name != PERMESSAGE_DEFLATE {
            return Err(DeflateError::NotDeflate(extension.name.clone()));
        }
        let mut parsed = DeflateOffer::default();
        // Whether each of the four parameters has been seen.
        let mut seen = [false; 4];
        for (name, value) in &extension.params {
            let (index, param) = [
                SERVER_NO_CONTEXT_TAKEOVER,
                CLIENT_NO_CONTEXT_TAKEOVER,
                SERVER_MAX_WINDOW_BITS,
                CLIENT_MAX_WINDOW_BITS,
            ]
            .into_iter()
            .enumerate()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| DeflateError::UnknownParameter(name.clone()))?;
            if std::mem::replace(&mut seen[index], true) {
                return Err(DeflateError::DuplicateParameter(param));
            }
            let value = value.as_deref();
            match index {
                0 | 1 => {
                    if value.is_some() {
                        return Err(DeflateError::UnexpectedValue(param));
                    }
                    if index == 0 {
                        parsed.server_no_context_takeover = true;
                    } else {
                        parsed.client_no_context_takeover = true;
                    }
                }
                2 => {
                    let value = value.ok_or(DeflateError::MissingValue(param))?;
                    parsed.server_max_window_bits = Some(parse_window_bits(param, value)?);
                }
                _ => {
                    parsed.client_max_window_bits = Some(match value {
                        Some(value) => Some(parse_window_bits(param, value)?),
                        None if response => return Err(DeflateError::MissingValue(param)),
                        None => None,
                    });
                }
            }
        }
        Ok(parsed)
    }

    /// Writes these parameters as a `permessage-deflate` extension, in the
    /// order of RFC 7692 section 7.1.
    pub fn to_extension(&self) -> ExtensionOffer {
        let mut extension = ExtensionOffer::new(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            extension = extension.with_param(SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        if self.client_no_context_takeover {
            extension = extension.with_param(CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        if let Some(bits) = self.server_max_window_bits {
            extension = extension.with_param(SERVER_MAX_WINDOW_BITS, Some(&bits.to_string()));
        }
        if let Some(bits) = self.client_max_window_bits {
            let value = bits.map(|bits| bits.to_string());
            extension = extension.with_param(CLIENT_MAX_WINDOW_BITS, value.as_deref());
        }
        extension
    }
}

/// `1*DIGIT`, a decimal integer from 8 to 15 without leading zeros
/// (RFC 7692 sections 7.1.2.1 and 7.1.2.2).
fn parse_window_bits(param: &'static str, value: &str) -> Result<u8, DeflateError> {
    let bits = match value.as_bytes() {
        [digit @ b'8'..=b'9'] => digit - b'0',
        [b'1', digit @ b'0'..=b'5'] => 10 + (digit - b'0'),
        _ => {
            return Err(DeflateError::InvalidWindowBits {
                param,
                value: value.to_owned(),
            });
        }
    };
    Ok(bits)
}
