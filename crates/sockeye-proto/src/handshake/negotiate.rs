//! What a handshake agreed on, and the hook through which a server chooses
//! extensions (RFC 6455 sections 4.2.2 and 9.1).

use super::extensions::ExtensionOffer;
use crate::extension::deflate::DeflateParams;

/// The outcome of a successful handshake, the same on both ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol the server chose, if any (RFC 6455's "Subprotocol In
    /// Use").
    pub subprotocol: Option<String>,
    /// The extensions in use with the parameters of the server's answer, in
    /// the order the server listed them, which is the order they apply to
    /// outgoing data (RFC 6455 section 9.1's "Extensions In Use").
    pub extensions: Vec<ExtensionOffer>,
    /// The permessage-deflate parameters, when `extensions` holds a valid
    /// `permessage-deflate` answer (checked against the offer, on a
    /// client). Hand them to
    /// [`Connection::enable_deflate`](crate::Connection::enable_deflate).
    pub deflate: Option<DeflateParams>,
}

/// A server's choice of extensions.
///
/// [`ServerHandshake`](super::ServerHandshake) parses the client's
/// `Sec-WebSocket-Extensions` offers (refusing malformed ones with 400)
/// and hands them to its negotiator, in the client's order of preference.
/// The negotiator answers with the extensions to use, each with the
/// parameters to send back, in the order they are to be applied; those
/// become the response's `Sec-WebSocket-Extensions` and
/// [`Negotiated::extensions`]. Each answer must name an extension the
/// client offered (RFC 6455 section 4.2.2); an answer that does not is a
/// server bug, refused with 500 rather than sent.
///
/// An offer the negotiator cannot accept (unknown extension, parameters it
/// does not support) is declined by leaving it out, as RFC 7692 section 5
/// asks of permessage-deflate, not by failing the handshake.
///
/// Closures `Fn(&[ExtensionOffer]) -> Vec<ExtensionOffer>` are negotiators.
pub trait ExtensionNegotiator: Send + Sync {
    /// The extensions to accept among `offers`, with their response
    /// parameters.
    fn negotiate(&self, offers: &[ExtensionOffer]) -> Vec<ExtensionOffer>;
}

impl<F> ExtensionNegotiator for F
where
    F: Fn(&[ExtensionOffer]) -> Vec<ExtensionOffer> + Send + Sync,
{
    fn negotiate(&self, offers: &[ExtensionOffer]) -> Vec<ExtensionOffer> {
        self(offers)
    }
}

/// The default negotiator: accepts no extension.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtensions;

impl ExtensionNegotiator for NoExtensions {
    fn negotiate(&self, _offers: &[ExtensionOffer]) -> Vec<ExtensionOffer> {
        Vec::new()
    }
}
