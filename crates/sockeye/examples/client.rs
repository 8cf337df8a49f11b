//! A line-based WebSocket client: each line typed (or piped) on stdin goes
//! out as a text message, and every message received is printed on
//! stdout. End of input or Ctrl-C closes the connection with 1000.
//!
//! Run: `cargo run -p sockeye --example client [URL]` (default
//! ws://127.0.0.1:9001), for instance against
//! `cargo run -p sockeye --example echo_server`.
//! `wss://` URLs work too, checked against the Mozilla root certificates.

use std::io::BufRead;

use sockeye::{ClientBuilder, ClientStream, CloseCode, Event, Message, SendHalf};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (ws, _response) = ClientBuilder::new(&url).connect().await?;
    eprintln!("connected to {url}; type lines to send, Ctrl-D or Ctrl-C to close");

    // Stdin is read on a plain thread: a blocking read there cannot keep
    // the runtime from shutting down once the connection is over.
    let (lines_tx, mut lines) = mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    // Split, so that after our Close frame goes out, the server's last
    // messages and its Close answer are still received and printed.
    let (mut receiver, mut sender) = ws.split();
    let mut closing = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            // `recv_event` is cancel-safe: a message is never lost to the
            // race with stdin.
            event = receiver.recv_event() => match event {
                Some(Ok(Event::Message(message))) => print(&message),
                Some(Ok(Event::Closed(closed))) => {
                    if !closed.is_clean() {
                        eprintln!("connection ended abnormally ({})", closed.code());
                    } else if closed.reason().is_empty() {
                        eprintln!("closed ({})", closed.code());
                    } else {
                        eprintln!("closed ({}: {})", closed.code(), closed.reason());
                    }
                    break;
                }
                // Pings are answered by sockeye itself.
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    eprintln!("connection failed: {error}");
                    std::process::exit(1);
                }
                None => break,
            },
            line = lines.recv(), if !closing => match line {
                Some(line) => sender.send(Message::text(line)).await?,
                None => closing = start_close(&mut sender).await,
            },
            _ = &mut ctrl_c, if !closing => closing = start_close(&mut sender).await,
        }
    }
    Ok(())
}

/// Sends a Close frame with 1000; the receiving half then sees the
/// server's answer (or gives up after the config's close timeout).
async fn start_close(sender: &mut SendHalf<ClientStream>) -> bool {
    if let Err(error) = sender.close(CloseCode::NORMAL, "").await {
        eprintln!("close failed: {error}");
        std::process::exit(1);
    }
    true
}

fn print(message: &Message) {
    match message.as_text() {
        Some(text) => println!("{text}"),
        None => println!("<binary message, {} bytes>", message.len()),
    }
}
