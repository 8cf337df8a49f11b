//! A chat server on the publish/subscribe hub: every message a client
//! sends goes to the other clients in its room (text prefixed with the
//! sender's address). A WebSocket at `/` joins the lobby, one at
//! `/room/NAME` joins room NAME; other paths get 404.
//!
//! Run: `cargo run -p sockeye --example chat_server [ADDRESS]` (default
//! 127.0.0.1:9001), then start two or more
//! `cargo run -p sockeye --example client ws://127.0.0.1:9001/room/rust`
//! and type.
//!
//! The hub writes to each client from a small task of its own, through a
//! bounded queue: it never waits for anyone, and a client too slow to keep
//! up is disconnected (close code 1008), so one stalled reader cannot hold
//! back its room.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use sockeye::hub::{Hub, SubscriberState};
use sockeye::{Message, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

/// The room a request path asks for: `/` is the lobby, `/room/NAME` is
/// NAME.
fn room(path: &str) -> Option<&str> {
    if path == "/" {
        return Some("lobby");
    }
    let name = path.strip_prefix("/room/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&address).await?;
    let local = listener.local_addr()?;
    println!("chat server listening on ws://{local}/ and ws://{local}/room/NAME (Ctrl-C to stop)");
    // Other paths are refused before the handshake is answered.
    let server = ServerBuilder::new().filter_request(|request| {
        room(request.uri().path()).is_none().then(|| {
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Bytes::from_static(b"no room here: use / or /room/NAME\n"))
                .unwrap()
        })
    });
    let hub = Hub::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        tokio::spawn(serve(server.clone(), hub.clone(), tcp, peer));
    }
    eprintln!("bye");
    Ok(())
}

async fn serve(server: ServerBuilder, hub: Hub, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let (ws, request) = match server.accept_with_request(tcp).await {
        Ok(accepted) => accepted,
        Err(error) => return eprintln!("{peer}: handshake failed: {error}"),
    };
    let Some(room) = room(request.uri().path()) else {
        return; // (the filter refused it)
    };
    let (mut receiver, sender) = ws.split();
    // The hub writes to the client from now on; `me` is our handle on it.
    let me = hub.attach(sender);
    me.subscribe(room);
    eprintln!(
        "{peer}: joined {room} ({} here)",
        hub.subscriber_count(room)
    );

    while let Some(received) = receiver.recv().await {
        match received {
            Ok(message) => {
                let message = match message.as_text() {
                    Some(text) => Message::text(format!("{peer}: {text}")),
                    None => message,
                };
                hub.publish_excluding(room, message, &me);
            }
            Err(error) => {
                eprintln!("{peer}: connection failed: {error}");
                break;
            }
        }
    }
    if matches!(
        me.state(),
        SubscriberState::TooSlow | SubscriberState::Stalled
    ) {
        eprintln!("{peer}: too slow to keep up, disconnected");
    }
    // Dropping `me` leaves the room.
    eprintln!("{peer}: left {room}");
}
