//! The README's client: sends one message, prints what comes back, and
//! closes. Run: `cargo run -p sockeye --example hello_client [URL]`.
use sockeye::{CloseCode, Message};

#[tokio::main]
async fn main() -> Result<(), sockeye::Error> {
    let url = std::env::args().nth(1);
    let url = url.as_deref().unwrap_or("ws://127.0.0.1:9001/");
    let (mut ws, _response) = sockeye::connect(url).await?;
    ws.send(Message::text("hello")).await?;
    if let Some(reply) = ws.recv().await {
        println!("{:?}", reply?);
    }
    ws.close(CloseCode::NORMAL, "done").await?;
    Ok(())
}
