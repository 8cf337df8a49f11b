//! WebSocket extensions (RFC 6455 section 9), sans-I/O.
//!
//! For now this holds the negotiation half of permessage-deflate
//! (RFC 7692): [`deflate::DeflateConfig`] is the user's policy,
//! [`deflate::DeflateNegotiator`] plugs it into a server handshake as an
//! [`ExtensionNegotiator`](crate::handshake::ExtensionNegotiator), and
//! [`deflate::DeflateConfig::offer`] and
//! [`deflate::DeflateConfig::accept_response`] drive a client handshake. The
//! outcome, [`deflate::DeflateParams`], is what a compressor and a
//! decompressor need to be built.

pub mod deflate;
