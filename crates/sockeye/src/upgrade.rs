//! Serving WebSocket from a hyper 1.x or axum application, on the same
//! port as its HTTP routes (RFC 6455 section 1.7: the opening handshake is
//! an HTTP Upgrade).
//!
//! The application routes a request here; [`ServerBuilder::upgrade`]
//! checks it with the same policy as [`ServerBuilder::accept`] and returns
//! the `101` response to send plus a future that resolves to the
//! [`WebSocket`] once hyper hands the connection over.
//!
//! Over HTTP/2 (hyper's `http2` server with `enable_connect_protocol()`,
//! feature `http2`), the same call takes an extended CONNECT (RFC 8441):
//! the response is a `200`, and the WebSocket is that stream.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use sockeye::ServerBuilder;
//!
//! async fn handle(
//!     mut request: http::Request<hyper::body::Incoming>,
//!     server: ServerBuilder,
//! ) -> http::Response<Full<Bytes>> {
//!     match server.upgrade(&mut request) {
//!         Ok(upgrade) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = upgrade.websocket.await else { return };
//!                 while let Some(Ok(message)) = ws.recv().await {
//!                     if ws.send(message).await.is_err() { break }
//!                 }
//!             });
//!             upgrade.response.map(|()| Full::default())
//!         }
//!         Err(refusal) => refusal.response.map(Full::new),
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use sockeye_proto::handshake::HandshakeError;

use crate::error::Error;
use crate::policy::{Admission, ConnectionInfo, ServerBuilder, Via};
use crate::tokio::WebSocket;

/// A WebSocket over a connection hyper handed over.
pub type UpgradedWebSocket = WebSocket<TokioIo<Upgraded>>;

/// An accepted upgrade: send `response`, then await `websocket`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upgrade {
    /// The `101 Switching Protocols` response to return to hyper (over
    /// HTTP/2, the extended CONNECT's `200`).
    pub response: Response<()>,
    /// Resolves to the connection once hyper has sent the response.
    pub websocket: PendingUpgrade,
}

/// A refused upgrade: return `response` (400, 403, 426, ...).
#[derive(Debug)]
#[non_exhaustive]
pub struct Refusal {
    /// Why the request was refused.
    pub error: HandshakeError,
    /// The response to return, with a short text body.
    pub response: Response<Bytes>,
}

/// The connection after the upgrade; see [`Upgrade`].
#[must_use = "the WebSocket is only available by awaiting this"]
pub struct PendingUpgrade {
    on_upgrade: OnUpgrade,
    engine: Option<sockeye_proto::Connection>,
    permit: Option<crate::policy::ConnectionPermit>,
    budget: Option<crate::budget::Share>,
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade").finish_non_exhaustive()
    }
}

impl Future for PendingUpgrade {
    type Output = Result<UpgradedWebSocket, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let upgraded = ready!(Pin::new(&mut this.on_upgrade).poll(cx))
            .map_err(|error| Error::Io(std::io::Error::other(error)))?;
        let engine = this.engine.take().ok_or(Error::AlreadyClosed)?;
        let mut ws = WebSocket::from_engine(TokioIo::new(upgraded), engine, &[]);
        ws.permit = this.permit.take();
        ws.budget = this.budget.take();
        Poll::Ready(Ok(ws))
    }
}

impl ServerBuilder {
    /// Checks a request that hyper (or axum) parsed, with this builder's
    /// policy. On success, return [`Upgrade::response`] from the handler
    /// and await [`Upgrade::websocket`] in a task; on refusal, return
    /// [`Refusal::response`].
    ///
    /// The engine config applies; the handshake timeout and head limits do
    /// not (hyper enforces its own).
    pub fn upgrade<B>(&self, request: &mut Request<B>) -> Result<Upgrade, Box<Refusal>> {
        let mut head = Request::new(());
        *head.method_mut() = request.method().clone();
        *head.uri_mut() = request.uri().clone();
        *head.version_mut() = request.version();
        *head.headers_mut() = request.headers().clone();
        *head.extensions_mut() = connection_info(request.extensions());
        let protocol = extended_connect_protocol(request.extensions());
        let admission = self.admit_upgrade(&head, protocol.as_deref())?;
        Ok(admission.into_upgrade(hyper::upgrade::on(request)))
    }

    /// Runs the policy on a request head, answering a refusal with its
    /// response. An HTTP/2 request is an extended CONNECT (RFC 8441) with
    /// `protocol` its `:protocol`.
    pub(crate) fn admit_upgrade(
        &self,
        head: &Request<()>,
        protocol: Option<&str>,
    ) -> Result<Admission, Box<Refusal>> {
        let via = if head.version() == http::Version::HTTP_2 {
            Via::Http2 { protocol }
        } else {
            Via::Http1
        };
        self.admit_via(head, ConnectionInfo::new(None, None), via)
            .map_err(|error| Box::new(Refusal::new(error)))
    }
}

impl Refusal {
    pub(crate) fn new(error: HandshakeError) -> Refusal {
        let response = error.to_response().unwrap_or_else(|| {
            sockeye_proto::handshake::rejection(
                StatusCode::INTERNAL_SERVER_ERROR,
                "handshake failed",
            )
        });
        Refusal { error, response }
    }
}

impl Admission {
    /// The `101` to send, and the connection once hyper hands it over.
    pub(crate) fn into_upgrade(self, on_upgrade: OnUpgrade) -> Upgrade {
        Upgrade {
            websocket: PendingUpgrade {
                on_upgrade,
                engine: Some(self.engine),
                permit: Some(self.permit),
                budget: Some(self.budget),
            },
            response: self.response,
        }
    }
}

/// The `:protocol` of an HTTP/2 extended CONNECT, as hyper passes it.
pub(crate) fn extended_connect_protocol(extensions: &http::Extensions) -> Option<String> {
    #[cfg(feature = "http2")]
    {
        extensions
            .get::<hyper::ext::Protocol>()
            .map(|protocol| protocol.as_str().to_owned())
    }
    #[cfg(not(feature = "http2"))]
    {
        let _ = extensions;
        None
    }
}

/// The [`ConnectionInfo`] (or bare `SocketAddr`) the application put in
/// the request's extensions, for the policy's per-address cap and origin
/// check.
pub(crate) fn connection_info(carried: &http::Extensions) -> http::Extensions {
    let mut extensions = http::Extensions::new();
    if let Some(info) = carried.get::<ConnectionInfo>() {
        extensions.insert(*info);
    }
    if let Some(address) = carried.get::<std::net::SocketAddr>() {
        extensions.insert(*address);
    }
    extensions
}
