//! WebSocket extensions (RFC 6455 section 9), sans-I/O.
//!
//! permessage-deflate (RFC 7692): [`deflate::DeflateConfig`] is the user's
//! policy,
//! [`deflate::DeflateNegotiator`] plugs it into a server handshake as an
//! [`ExtensionNegotiator`](crate::handshake::ExtensionNegotiator), and
//! [`deflate::DeflateConfig::offer`] and
//! [`deflate::DeflateConfig::accept_response`] drive a client handshake. The
//! outcome, [`deflate::DeflateParams`], goes to
//! [`Connection::enable_deflate`](crate::Connection::enable_deflate), which
//! compresses and inflates messages from then on.

pub mod deflate;
