//! WebSocket over HTTP/2 (RFC 8441): each WebSocket is one stream of an
//! HTTP/2 connection, opened by an extended CONNECT. Public through
//! [`crate::http2`].

mod client;
mod rewind;
mod server;
mod stream;

pub use client::Http2Session;
pub use rewind::{Detected, PREFACE, Rewind, detect};
pub(crate) use server::refusal;
pub use server::{Http2Connection, Http2Request, HttpRequest, PendingWebSocket};
pub use stream::H2Stream;
