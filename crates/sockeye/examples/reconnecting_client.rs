//! A client that stays connected: it reconnects with backoff when the
//! server goes away, and subscribes again on every new connection.
//!
//! Run: `cargo run -p sockeye --example reconnecting_client [URL]`
//! (default ws://127.0.0.1:9001/), for instance against
//! `sockeye serve --broadcast`, and restart the server meanwhile.

use sockeye::{ClientBuilder, Message, ReconnectEvent, ReconnectPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".to_owned());
    let mut client = ClientBuilder::new(&url)
        .reconnect(ReconnectPolicy::new())
        .on_event(|event| match event {
            ReconnectEvent::Connected {
                reconnect: true, ..
            } => eprintln!("reconnected"),
            ReconnectEvent::Disconnected(ending) => {
                eprintln!("disconnected ({})", ending.code.as_u16())
            }
            ReconnectEvent::Waiting {
                retry,
                delay,
                error: Some(error),
            } => eprintln!("retry {retry} in {delay:.1?}: {error}"),
            _ => {}
        });
    loop {
        // An error here is final: a 403, an untrusted certificate, a
        // close code such as 1008.
        let (mut ws, _response) = client.next().await?;
        eprintln!("connected to {url}");
        if ws.send(Message::text("hello again")).await.is_err() {
            continue;
        }
        while let Some(Ok(message)) = ws.recv().await {
            match message.as_text() {
                Some(text) => println!("{text}"),
                None => println!("<binary message, {} bytes>", message.len()),
            }
        }
    }
}
