//! WebSocket over HTTP/2 (RFC 8441): each WebSocket is one stream of an
//! HTTP/2 connection, opened by an extended CONNECT.

mod client;
mod stream;

pub use client::Http2Session;
pub use stream::H2Stream;
