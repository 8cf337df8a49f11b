//! WebSocket in an axum application: the [`WebSocketUpgrade`] extractor,
//! in the style of axum's own, with sockeye's server policy.
//!
//! ```no_run
//! use axum::{Extension, Router, response::Response, routing::get};
//! use sockeye::ServerBuilder;
//!
//! async fn echo(ws: sockeye::axum::WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(|mut socket| async move {
//!         while let Some(Ok(message)) = socket.recv().await {
//!             if socket.send(message).await.is_err() { break }
//!         }
//!     })
//! }
//!
//! # async fn serve() -> std::io::Result<()> {
//! // The policy, once for the router (without it: `ServerBuilder::new()`'s).
//! let policy = ServerBuilder::new()
//!     .subprotocols(["chat.v2", "chat.v1"])
//!     .allow_origins(["https://example.com"]);
//! let app = Router::new().route("/ws", get(echo)).layer(Extension(policy));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The policy is a [`ServerBuilder`] in the request's extensions, which
//! axum's `Extension` layer puts there: its Origin allow-list,
//! subprotocols, permessage-deflate, `Host` allow-list, connection limits,
//! memory budget, drain and engine config (message size limits,
//! keepalive) apply as with [`ServerBuilder::accept`]. A route with no
//! such layer gets one process-wide `ServerBuilder::new()`.
//!
//! WebSocket over HTTP/2 (RFC 8441) comes as an extended CONNECT, not a
//! GET: route with `any(echo)` (or `on(MethodFilter::GET.or(MethodFilter::CONNECT), echo)`)
//! and serve HTTP/2 with hyper's `enable_connect_protocol()`; the
//! extractor then answers `200` and the WebSocket is that stream, with
//! the same policy.
//!
//! A request the policy refuses is answered by the extractor's rejection,
//! a [`Refusal`], with the same status and headers as every other sockeye
//! server: 400 for a malformed handshake, 403 for a refused Origin, 405
//! for a method other than GET, 426 with `Sec-WebSocket-Version: 13` for
//! another version, 421 for a host not allowed, 503 past a connection
//! limit or while draining. The peer's address, for the per-address limit,
//! comes from axum's `ConnectInfo<SocketAddr>` when the application serves
//! with `into_make_service_with_connect_info`.
//!
//! [`ServerBuilder::upgrade`] remains for hyper applications, and for
//! axum handlers that want the request whole.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, FromRequestParts};
use ::axum::response::{IntoResponse, Response};
use http::header::{SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use hyper::upgrade::OnUpgrade;
use sockeye_proto::handshake::{HandshakeError, rejection};

use crate::error::Error;
use crate::policy::ServerBuilder;
use crate::upgrade::{PendingUpgrade, Refusal, Upgrade, UpgradedWebSocket, connection_info};

/// An extractor for a WebSocket opening handshake that passed the route's
/// policy (see the [module docs](self)); [`on_upgrade`](Self::on_upgrade)
/// answers it and runs the connection.
///
/// Its rejection, [`Refusal`] (boxed), answers a refused handshake with
/// its status.
#[must_use = "the handshake is answered by returning on_upgrade's response"]
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
    on_failed: Option<Box<dyn FnOnce(Error) + Send>>,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    /// The subprotocol the policy chose from the client's offer, if any
    /// (sent in the `101`'s `Sec-WebSocket-Protocol`).
    pub fn protocol(&self) -> Option<&str> {
        self.upgrade
            .response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
    }

    /// Called with the error if the connection cannot be taken over after
    /// the `101` (the client went away, or the server is not serving with
    /// upgrades). By default such a failure is dropped silently.
    pub fn on_failed_upgrade<C>(mut self, callback: C) -> WebSocketUpgrade
    where
        C: FnOnce(Error) + Send + 'static,
    {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// Answers the handshake: returns the `101 Switching Protocols` for the
    /// handler to return, and runs `callback` with the connection in a new
    /// tokio task once axum has sent it.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(UpgradedWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WebSocketUpgrade { upgrade, on_failed } = self;
        let pending: PendingUpgrade = upgrade.websocket;
        tokio::spawn(async move {
            match pending.await {
                Ok(socket) => callback(socket).await,
                Err(error) => {
                    if let Some(on_failed) = on_failed {
                        on_failed(error);
                    }
                }
            }
        });
        upgrade.response.map(|()| Body::empty())
    }
}

impl<S> FromRequestParts<S> for WebSocketUpgrade
where
    S: Send + Sync,
{
    type Rejection = Box<Refusal>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let policy = match parts.extensions.get::<ServerBuilder>() {
            Some(policy) => policy,
            None => default_policy(),
        };
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        *head.extensions_mut() = connection_info(&parts.extensions);
        if let Some(ConnectInfo(address)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            head.extensions_mut().get_or_insert(*address);
        }
        let protocol = crate::upgrade::extended_connect_protocol(&parts.extensions);
        let admission = policy.admit_upgrade(&head, protocol.as_deref())?;
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            // A valid handshake on a connection that cannot be taken over
            // (HTTP/2, a server without upgrades, a router called
            // directly): answered as axum's own extractor does.
            let mut response = rejection(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded to WebSocket",
            );
            response
                .headers_mut()
                .insert(UPGRADE, HeaderValue::from_static("websocket"));
            return Err(Box::new(Refusal::new(HandshakeError::refused(response))));
        };
        Ok(WebSocketUpgrade {
            upgrade: admission.into_upgrade(on_upgrade),
            on_failed: None,
        })
    }
}

/// The policy of routes without a `ServerBuilder` extension: one per
/// process, so that its connection limits and statistics are shared.
fn default_policy() -> &'static ServerBuilder {
    static DEFAULT: OnceLock<ServerBuilder> = OnceLock::new();
    DEFAULT.get_or_init(ServerBuilder::new)
}

impl IntoResponse for Refusal {
    /// The refusal's status, headers (such as `Sec-WebSocket-Version` with
    /// a 426) and short text body.
    fn into_response(self) -> Response {
        self.response.map(Body::from)
    }
}

impl IntoResponse for Box<Refusal> {
    /// The refusal's response, as for an unboxed [`Refusal`].
    fn into_response(self) -> Response {
        (*self).into_response()
    }
}
