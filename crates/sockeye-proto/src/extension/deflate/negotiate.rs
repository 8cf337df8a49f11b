//! Both sides of the negotiation: the server's answer to an offer and the
//! client's check of that answer (RFC 7692 section 7.1).

use crate::handshake::{ExtensionNegotiator, ExtensionOffer};

use super::{
    CLIENT_MAX_WINDOW_BITS, DEFAULT_SERVER_WINDOW_BITS, DeflateConfig, DeflateError, DeflateOffer,
    DeflateParams, MAX_WINDOW_BITS, PERMESSAGE_DEFLATE, SERVER_MAX_WINDOW_BITS,
    SERVER_NO_CONTEXT_TAKEOVER,
};

/// A server's permessage-deflate policy, as an [`ExtensionNegotiator`].
///
/// Walks the client's offers in order and accepts the first
/// `permessage-deflate` offer that is valid and that it can serve;
/// invalid or unservable offers are declined (RFC 7692 section 7.1) and
/// other extensions ignored. The answer:
/// - has `server_no_context_takeover` when the client asked for it or the
///   configuration does;
/// - has `client_no_context_takeover` when the configuration asks for it,
///   or to confirm the client's own `client_no_context_takeover`;
/// - has `server_max_window_bits` when the client set a limit (answered
///   with the smaller of that limit and the configured one) or the
///   configured one is below 15 (8 is answered too, and then honoured by
///   sending uncompressed: see the [module documentation](super));
/// - has `client_max_window_bits` only when the client offered it: the
///   smaller of the client's value and the configured one, or the
///   configured one alone when it is below 15, or the client's value
///   alone, or nothing when neither sets a value.
///
/// Unless configured, both windows are [`DEFAULT_SERVER_WINDOW_BITS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DeflateNegotiator {
    config: DeflateConfig,
}

impl DeflateNegotiator {
    /// A negotiator applying `config`.
    pub fn new(config: DeflateConfig) -> DeflateNegotiator {
        DeflateNegotiator { config }
    }

    /// The policy applied.
    pub fn config(&self) -> &DeflateConfig {
        &self.config
    }

    /// The answer to one offer and what it agrees on, or why the offer is
    /// declined.
    pub fn accept(
        &self,
        offer: &ExtensionOffer,
    ) -> Result<(ExtensionOffer, DeflateParams), DeflateError> {
        if !self.config.enabled {
            return Err(DeflateError::Disabled);
        }
        let offer = DeflateOffer::parse_offer(offer)?;
        let config = &self.config;

        let wanted = config
            .server_max_window_bits
            .unwrap_or(DEFAULT_SERVER_WINDOW_BITS);
        let server_max_window_bits = match offer.server_max_window_bits {
            Some(limit) => Some(wanted.min(limit)),
            None => (wanted < MAX_WINDOW_BITS).then_some(wanted),
        };

        let asked = config
            .client_max_window_bits
            .unwrap_or(DEFAULT_SERVER_WINDOW_BITS);
        let asked = (asked < MAX_WINDOW_BITS).then_some(asked);
        let client_max_window_bits = match (offer.client_max_window_bits, asked) {
            (None, _) | (Some(None), None) => None,
            (Some(None), Some(asked)) => Some(Some(asked)),
            (Some(Some(limit)), None) => Some(Some(limit)),
            (Some(Some(limit)), Some(asked)) => Some(Some(limit.min(asked))),
        };

        let response = DeflateOffer {
            server_no_context_takeover: offer.server_no_context_takeover
                || config.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        };
        Ok((
            response.to_extension(),
            DeflateParams::from_parsed_response(&response),
        ))
    }

    /// The answer to the first acceptable offer among `offers`, and what it
    /// agrees on; `None` when none is acceptable.
    pub fn select(&self, offers: &[ExtensionOffer]) -> Option<(ExtensionOffer, DeflateParams)> {
        offers
            .iter()
            .filter(|offer| offer.name == PERMESSAGE_DEFLATE)
            .find_map(|offer| self.accept(offer).ok())
    }
}

impl ExtensionNegotiator for DeflateNegotiator {
    fn negotiate(&self, offers: &[ExtensionOffer]) -> Vec<ExtensionOffer> {
        self.select(offers)
            .map(|(response, _)| response)
            .into_iter()
            .collect()
    }
}

impl DeflateConfig {
    /// The parameters a client offers under this policy.
    pub fn offered(&self) -> DeflateOffer {
        DeflateOffer {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits,
            client_max_window_bits: Some(self.client_max_window_bits),
        }
    }

    /// The client's `permessage-deflate` offer, for
    /// [`ClientBuilder::extension`](crate::handshake::ClientBuilder::extension);
    /// `None` when disabled. It always carries `client_max_window_bits`
    /// (bare unless limited), so that the server may limit the client's
    /// window.
    pub fn offer(&self) -> Option<ExtensionOffer> {
        self.enabled.then(|| self.offered().to_extension())
    }

    /// Checks the server's answer to [`offer`](DeflateConfig::offer); see
    /// [`DeflateOffer::accept_response`].
    pub fn accept_response(
        &self,
        response: &ExtensionOffer,
    ) -> Result<DeflateParams, DeflateError> {
        if !self.enabled {
            return Err(DeflateError::Disabled);
        }
        self.offered().accept_response(response)
    }

    /// Finds and checks the `permessage-deflate` answer among the
    /// extensions a client handshake negotiated
    /// ([`Negotiated::extensions`](crate::handshake::Negotiated::extensions)):
    /// `Ok(None)` when the server did not accept the offer.
    pub fn client_params(
        &self,
        negotiated: &[ExtensionOffer],
    ) -> Result<Option<DeflateParams>, DeflateError> {
        negotiated
            .iter()
            .find(|extension| extension.name == PERMESSAGE_DEFLATE)
            .map(|response| self.accept_response(response))
            .transpose()
    }
}

impl DeflateOffer {
    /// Checks a server's answer to this offer, on the client: the answer
    /// must be valid ([`DeflateOffer::parse_response`]) and
    /// - keep `server_no_context_takeover` if offered;
    /// - have `server_max_window_bits` if offered, at most the offered
    ///   value;
    /// - have `client_max_window_bits` only if offered, at most the offered
    ///   value if one was given, and not 8 (see the
    ///   [module documentation](super) on zlib).
    ///
    /// The server may add `server_no_context_takeover`,
    /// `client_no_context_takeover` and `server_max_window_bits` unasked.
    /// A `client_no_context_takeover` in the offer binds the client even
    /// when the answer leaves it out.
    pub fn accept_response(
        &self,
        response: &ExtensionOffer,
    ) -> Result<DeflateParams, DeflateError> {
        let answer = DeflateOffer::parse_response(response)?;
        if self.server_no_context_takeover && !answer.server_no_context_takeover {
            return Err(DeflateError::MissingParameter(SERVER_NO_CONTEXT_TAKEOVER));
        }
        match (self.server_max_window_bits, answer.server_max_window_bits) {
            (Some(_), None) => return Err(DeflateError::MissingParameter(SERVER_MAX_WINDOW_BITS)),
            (Some(offered), Some(answered)) if answered > offered => {
                return Err(DeflateError::WindowBitsTooLarge {
                    param: SERVER_MAX_WINDOW_BITS,
                    offered,
                    answered,
                });
            }
            _ => {}
        }
        if let Some(answered) = answer.client_max_window_bits.flatten() {
            match self.client_max_window_bits {
                None => return Err(DeflateError::UnofferedParameter(CLIENT_MAX_WINDOW_BITS)),
                Some(Some(offered)) if answered > offered => {
                    return Err(DeflateError::WindowBitsTooLarge {
                        param: CLIENT_MAX_WINDOW_BITS,
                        offered,
                        answered,
                    });
                }
                _ => {}
            }
        }
        let mut params = DeflateParams::from_parsed_response(&answer);
        params.client_no_context_takeover |= self.client_no_context_takeover;
        Ok(params)
    }
}
