//! A chat server: every message a client sends goes to all the other
//! connected clients (text prefixed with the sender's address).
//!
//! Run: `cargo run -p sockeye --example chat_server [ADDRESS]` (default
//! 127.0.0.1:9001), then start two or more
//! `cargo run -p sockeye --example client ws://127.0.0.1:9001` and type.
//!
//! Each connection is split in two: its receiving half reads what the
//! client says and hands it to the hub, its sending half drains a small
//! per-client queue. The hub never waits for anyone: a client whose queue
//! is full is too slow to keep up and is disconnected (close code 1008),
//! so one stalled reader cannot hold back the room.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use sockeye::{CloseCode, Message, ServerBuilder, ServerStream, WebSocket};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// Messages queued for one client before it counts as too slow.
const QUEUE: usize = 1024;

/// The longest one message may take to go out to a client before it
/// counts as too slow (its queue may not be full yet when it stops
/// reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Everyone connected, by address.
#[derive(Default)]
struct Hub {
    clients: Mutex<HashMap<SocketAddr, Client>>,
}

/// The hub's handle on one client.
struct Client {
    /// What is still to be sent to it.
    queue: mpsc::Sender<Message>,
    /// Told when the client is dropped for being too slow, so that its
    /// writer stops waiting for it at once.
    kicked: Arc<Notify>,
}

impl Hub {
    fn join(&self, peer: SocketAddr, client: Client) -> usize {
        let mut clients = self.clients.lock().unwrap();
        clients.insert(peer, client);
        clients.len()
    }

    fn leave(&self, peer: SocketAddr) {
        self.clients.lock().unwrap().remove(&peer);
    }

    /// Queues `message` for everyone but `from`, without waiting: clients
    /// whose queues are full are dropped from the room, and their writers
    /// told to disconnect them.
    fn broadcast(&self, from: SocketAddr, message: Message) {
        let mut clients = self.clients.lock().unwrap();
        clients.retain(|peer, client| {
            if *peer == from {
                return true;
            }
            match client.queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    eprintln!("{peer}: too slow, disconnecting");
                    client.kicked.notify_one();
                    false
                }
                // Its writer is gone; it is leaving anyway.
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&address).await?;
    println!(
        "chat server listening on ws://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let server = ServerBuilder::new();
    let hub = Arc::new(Hub::default());
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
        let server = server.clone();
        let hub = hub.clone();
        tokio::spawn(async move {
            match server.accept_tcp(tcp).await {
                Ok(ws) => serve(ws, peer, hub).await,
                Err(error) => eprintln!("{peer}: handshake failed: {error}"),
            }
        });
    }
    eprintln!("bye");
    Ok(())
}

async fn serve(ws: WebSocket<ServerStream>, peer: SocketAddr, hub: Arc<Hub>) {
    let (mut receiver, mut sender) = ws.split();
    let (queue, mut outgoing) = mpsc::channel::<Message>(QUEUE);
    let kicked = Arc::new(Notify::new());
    let present = hub.join(
        peer,
        Client {
            queue,
            kicked: kicked.clone(),
        },
    );
    eprintln!("{peer}: joined ({present} in the room)");

    // The writer: drains this client's queue, writing whatever has piled
    // up in one go. It ends when the hub drops the client (too slow), or a
    // write fails or stalls.
    let mut writer = tokio::spawn(async move {
        while let Some(first) = outgoing.recv().await {
            let batch = async {
                sender.feed(first).await?;
                while let Ok(next) = outgoing.try_recv() {
                    sender.feed(next).await?;
                }
                sender.flush().await
            };
            tokio::select! {
                written = tokio::time::timeout(SEND_TIMEOUT, batch) => match written {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        eprintln!("{peer}: stalled for {SEND_TIMEOUT:?}, disconnecting");
                        return;
                    }
                },
                // Dropped while a write waits for it: give up on it now.
                () = kicked.notified() => return,
            }
        }
        // Dropped by the hub (or leaving): say why, if the client still
        // listens. Bounded, since a slow client may not take even this.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sender.close(CloseCode::POLICY_VIOLATION, "too slow to keep up"),
        )
        .await;
    });

    // The reader: hands what the client says to the hub.
    let reader = async {
        while let Some(received) = receiver.recv().await {
            match received {
                Ok(message) => {
                    let message = match message.as_text() {
                        Some(text) => Message::text(format!("{peer}: {text}")),
                        None => message,
                    };
                    hub.broadcast(peer, message);
                }
                Err(error) => {
                    eprintln!("{peer}: connection failed: {error}");
                    return;
                }
            }
        }
    };

    tokio::select! {
        () = reader => writer.abort(),
        _ = &mut writer => {}
    }
    hub.leave(peer);
    eprintln!("{peer}: left");
}
