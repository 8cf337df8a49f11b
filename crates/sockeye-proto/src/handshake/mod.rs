//! The opening handshake (RFC 6455 section 4), sans-I/O.
//!
//! The handshake is HTTP/1.1: the client sends a `GET` with
//! `Upgrade: websocket`, the server answers `101 Switching Protocols`, and
//! from the byte after the response's blank line on, both speak WebSocket
//! frames. This module does everything but move the bytes, on the `http`
//! crate's [`Request<()>`](http::Request) and [`Response<()>`](http::Response)
//! so that the same checks serve our own HTTP/1.1 parser and servers such
//! as hyper or axum that parse requests themselves.
//!
//! # Client
//!
//! 1. [`ClientHandshake::builder`] with a `ws://` or `wss://` URI and
//!    options, then [`build`](ClientBuilder::build): the key is generated.
//! 2. Send [`ClientHandshake::request`] with [`write_request`].
//! 3. Feed what the server sends to a [`ResponseParser`] until it returns
//!    the head; bytes after it ([`Parsed::consumed`]) are the first
//!    WebSocket frames (or a refusal's body).
//! 4. [`ClientHandshake::finish`] checks the response and returns the
//!    [`Negotiated`] subprotocol and extensions.
//!
//! Over HTTP/2 (RFC 8441), the same handshake gives the extended CONNECT
//! instead: [`ClientHandshake::extended_connect_request`] and
//! [`ClientHandshake::finish_extended_connect`]; the server checks it with
//! [`ServerHandshake::accept_extended_connect`].
//!
//! # Server
//!
//! 1. Build a [`ServerHandshake`] policy once.
//! 2. Feed what the client sends to a [`RequestParser`] until it returns the
//!    head (or take the request from hyper).
//! 3. [`ServerHandshake::accept`] checks it: send
//!    [`Accepted::response`] with [`write_response`] and start the
//!    connection with whatever followed the head; or send
//!    [`HandshakeError::to_response`] with [`write_response_with_body`] and
//!    close.
//!
//! ```
//! use sockeye_proto::handshake::{
//!     ClientHandshake, RequestParser, ResponseParser, ServerHandshake, write_request,
//!     write_response,
//! };
//!
//! let client = ClientHandshake::builder("ws://example.com/chat")
//!     .subprotocols(["chat"])
//!     .build()
//!     .unwrap();
//! let mut wire = Vec::new();
//! write_request(client.request(), &mut wire);
//!
//! let request = RequestParser::new().parse(&wire).unwrap().unwrap().head;
//! let accepted = ServerHandshake::new().subprotocols(["chat"]).accept(&request).unwrap();
//! wire.clear();
//! write_response(&accepted.response, &mut wire);
//!
//! let response = ResponseParser::new().parse(&wire).unwrap().unwrap().head;
//! let negotiated = client.finish(&response).unwrap();
//! assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
//! assert_eq!(negotiated, accepted.negotiated);
//! ```
//!
//! # Strictness
//!
//! Where RFC 6455 leaves room, this module takes the strict reading, as
//! Python `websockets` mostly does, and says so in the docs of the function
//! that applies it: lines end in CRLF; a handshake request has no body;
//! `Sec-WebSocket-Key` is 24 base64 characters; offered subprotocols are
//! distinct tokens; a server's `Upgrade` is exactly `websocket`; the
//! server's subprotocol is one token that was offered; each accepted
//! extension was offered and is accepted once; `Sec-WebSocket-Extensions`
//! follows section 9.1 to the letter on both ends. Browsers from other
//! hosts are refused unless the server says otherwise (see
//! [`ServerHandshake`]'s origin policy).

mod client;
mod error;
mod extended_connect;
mod extended_connect_client;
mod extensions;
mod h1;
mod headers;
mod key;
mod negotiate;
mod origin;
mod serialize;
mod server;

pub use client::{ClientBuilder, ClientHandshake};
pub use error::{HandshakeError, HandshakeErrorKind, rejection};
pub use extended_connect::{WEBSOCKET_PROTOCOL, is_connection_specific, is_extended_connect};
pub use extensions::{
    ExtensionOffer, MAX_EXTENSION_PARAMS, MAX_EXTENSIONS, format_extensions, parse_extension_list,
    parse_extensions,
};
pub use h1::{DEFAULT_MAX_HEAD_SIZE, DEFAULT_MAX_HEADERS, Parsed, RequestParser, ResponseParser};
pub use headers::{
    HeaderSyntaxError, MAX_LIST_ELEMENTS, contains_token, is_token, parse_token_list, parse_tokens,
};
pub use key::{WEBSOCKET_GUID, accept_key, generate_key, is_valid_key};
pub use negotiate::{ExtensionNegotiator, Negotiated, NoExtensions};
pub use origin::{HostPort, comparable_host, parse_host_port};
pub use serialize::{write_request, write_response, write_response_with_body};
pub use server::{Accepted, ServerHandshake};
