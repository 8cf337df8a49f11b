//! WebSocket over HTTP/2 (RFC 8441): many WebSockets as streams of one
//! connection, each opened by an extended CONNECT (`:protocol
//! websocket`) and answered `200`, then carrying the usual frames in DATA
//! frames.
//!
//! On the server, [`ServerBuilder::serve_tcp`](crate::ServerBuilder::serve_tcp)
//! serves HTTP/1.1 and HTTP/2 on one port (over TLS by ALPN, listing
//! `h2` in the rustls config's `alpn_protocols`; in cleartext by the
//! client's connection preface) with the same policy, and hands the
//! application the same [`WebSocket<ServerStream>`](crate::WebSocket)
//! either way. A server that also answers plain HTTP drives the pieces
//! itself: [`detect`], then
//! [`ServerBuilder::accept_http2`](crate::ServerBuilder::accept_http2)
//! and [`Http2Connection::next`].
//!
//! On the client, [`ClientBuilder::http_version`](crate::ClientBuilder::http_version)
//! chooses: by default a `wss://` connection offers `h2` by ALPN and uses
//! HTTP/2 when the server chose it and advertises
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`, HTTP/1.1 otherwise. An
//! [`Http2Session`] holds one connection to an origin and opens any
//! number of WebSockets on it.
//!
//! How HTTP/2 maps onto a WebSocket:
//!
//! | WebSocket over TCP | over an HTTP/2 stream |
//! |---|---|
//! | `101 Switching Protocols` | `200` to the extended CONNECT |
//! | TCP close after the closing handshake | `END_STREAM` |
//! | TCP reset (a failed connection) | `RST_STREAM` with `CANCEL` |
//! | TCP flow control | the stream's window, returned as the WebSocket reads |
//! | connection limit | each stream counts; at most [`max_http2_streams`](crate::ServerBuilder::max_http2_streams) per connection |

pub use crate::h2::{
    Detected, H2Stream, Http2Connection, Http2Request, Http2Session, HttpRequest, PREFACE,
    PendingWebSocket, Rewind, detect,
};
