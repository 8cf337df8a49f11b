//! `sockeye serve` over HTTP/2 (RFC 8441): the page and files as HTTP/2
//! responses, and each extended CONNECT a WebSocket in echo or broadcast
//! mode, as over HTTP/1.1.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use sockeye::http2::{Http2Request, Rewind};
use sockeye::{ConnectionInfo, ServerStream};
use tracing::{debug, info};

use super::{Mode, Shared, echo};
use crate::broadcast;

/// Serves one HTTP/2 connection until it ends: its requests answered in
/// turn, its WebSockets each in a task of their own.
pub(super) async fn serve(io: Rewind<ServerStream>, peer: SocketAddr, shared: Arc<Shared>) {
    let known = ConnectionInfo::new(Some(peer), Some(shared.tls.is_some()));
    let mut connection = match shared.server.accept_http2(io, known).await {
        Ok(connection) => connection,
        Err(error) => {
            debug!("{peer}: HTTP/2 connection failed to open: {error}");
            return;
        }
    };
    info!("{peer}: HTTP/2 connection");
    while let Some(request) = connection.next().await {
        match request {
            Ok(Http2Request::Http(request)) => answer(request, peer, &shared).await,
            Ok(Http2Request::WebSocket(pending)) => open(pending, peer, &shared),
            Err(error) => {
                info!("{peer}: HTTP/2 connection failed: {error}");
                return;
            }
        }
    }
    debug!("{peer}: HTTP/2 connection ended");
}

/// A page or a file, or the refusal of a name this server does not serve.
async fn answer(request: Box<sockeye::http2::HttpRequest>, peer: SocketAddr, shared: &Shared) {
    let head = request.request();
    let line = format!("{} {}", head.method(), head.uri().path());
    let response = match shared.server.check_host(head) {
        Err(refusal) => refusal
            .to_response()
            .unwrap_or_else(|| http::Response::new(Bytes::new())),
        Ok(()) => crate::http::response(head, &shared.site).await,
    };
    let status = response.status();
    match request.respond(response) {
        Ok(()) => info!("{peer}: {line} -> {status} (HTTP/2)"),
        Err(error) => info!("{peer}: {line} -> failed: {error} (HTTP/2)"),
    }
}

/// A WebSocket request: its room (broadcast mode) joined before the
/// `200`, the policy's checks, then the WebSocket in a task of its own.
fn open(pending: Box<sockeye::http2::PendingWebSocket>, peer: SocketAddr, shared: &Arc<Shared>) {
    let path = pending.request().uri().path().to_owned();
    let member = match shared.mode {
        Mode::Echo => None,
        Mode::Broadcast => match broadcast::room_for_path(&path) {
            Ok(room) => Some(broadcast::join(&shared.hub, room)),
            Err(why) => {
                let mut response = http::Response::new(Bytes::from(format!("{why}\n")));
                *response.status_mut() = StatusCode::NOT_FOUND;
                pending.refuse(response);
                info!("{peer}: CONNECT {path} -> 404 ({why}) (HTTP/2)");
                return;
            }
        },
    };
    let ws = match pending.accept() {
        Ok(ws) => ws,
        Err(sockeye::Error::Handshake(error)) => {
            info!("{peer}: WebSocket handshake refused (HTTP/2): {error}");
            return;
        }
        Err(error) => {
            debug!("{peer}: {error}");
            return;
        }
    };
    info!(
        "{peer}: WebSocket connected over HTTP/2 ({} {path}{})",
        shared.mode.name(),
        if ws.connection().deflate_params().is_some() {
            ", compressed"
        } else {
            ""
        }
    );
    let ws = Box::new(ws);
    let shared = shared.clone();
    tokio::spawn(async move {
        match member {
            None => echo(ws, peer).await,
            Some(member) => broadcast::serve(&shared.hub, member, *ws, peer).await,
        }
    });
}
