//! A WebSocket echo server: every message comes back as it was sent.
//!
//! Run: `cargo run -p sockeye --example echo_server [ADDRESS]` (default
//! 127.0.0.1:9001), then connect with
//! `cargo run -p sockeye --example client ws://127.0.0.1:9001`.
//!
//! Connections are logged to stderr. Ctrl-C stops accepting, closes every
//! connection with 1001 (going away) and exits once the closing handshakes
//! are done (or after a few seconds).
//!
//! The handshake policy is sockeye's default: browsers are accepted only
//! from pages served by this same host and port, which stops other sites
//! from using a visitor's browser to talk to it. Add
//! `.allow_origins(["https://your.site"])` to the builder to serve pages
//! from elsewhere.

use std::net::SocketAddr;
use std::time::Duration;

use sockeye::{CloseCode, ServerBuilder, ServerStream, WebSocket};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long shutdown waits for connections to finish their closing
/// handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&address).await?;
    let local = listener.local_addr()?;
    println!("echo server listening on ws://{local}/ (Ctrl-C to stop)");

    let server = ServerBuilder::new();
    let (shutdown, shutting_down) = watch::channel(false);
    let mut connections = JoinSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: keep serving
                        // the connections there are.
                        eprintln!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let server = server.clone();
                let shutting_down = shutting_down.clone();
                connections.spawn(async move {
                    match server.accept_tcp(tcp).await {
                        Ok(ws) => {
                            eprintln!("{peer}: connected");
                            echo(ws, peer, shutting_down).await;
                        }
                        Err(error) => eprintln!("{peer}: handshake failed: {error}"),
                    }
                });
            }
            // Reap finished connections as we go, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut ctrl_c => break,
        }
    }

    drop(listener);
    let open = connections.len();
    eprintln!("shutting down: closing {open} connection(s)");
    let _ = shutdown.send(true);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed)
        .await
        .is_err()
    {
        eprintln!("gave up waiting for {} connection(s)", connections.len());
        connections.shutdown().await;
    }
    eprintln!("bye");
    Ok(())
}

/// Echoes until the client closes or the server shuts down.
async fn echo(
    mut ws: WebSocket<ServerStream>,
    peer: SocketAddr,
    mut shutting_down: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            // `recv` is cancel-safe: losing this race to shutdown loses no
            // message.
            received = ws.recv() => match received {
                Some(Ok(message)) => {
                    if let Err(error) = ws.send(message).await {
                        eprintln!("{peer}: send failed: {error}");
                        return;
                    }
                }
                Some(Err(error)) => {
                    eprintln!("{peer}: connection failed: {error}");
                    return;
                }
                None => break,
            },
            _ = shutting_down.changed() => {
                match ws.close(CloseCode::GOING_AWAY, "server shutting down").await {
                    Ok(closed) => eprintln!("{peer}: closed by shutdown ({})", closed.code()),
                    Err(error) => eprintln!("{peer}: closing failed: {error}"),
                }
                return;
            }
        }
    }
    log_end(&ws, peer);
}

fn log_end(ws: &WebSocket<ServerStream>, peer: SocketAddr) {
    match ws.closed() {
        Some(closed) if closed.reason().is_empty() => {
            eprintln!("{peer}: closed ({})", closed.code())
        }
        Some(closed) => eprintln!("{peer}: closed ({}: {})", closed.code(), closed.reason()),
        None => eprintln!("{peer}: closed"),
    }
}
