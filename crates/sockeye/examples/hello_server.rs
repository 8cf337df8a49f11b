//! The README's server: echoes every message; a client that fails ends
//! only its own task. Run: `cargo run -p sockeye --example hello_server`.
use sockeye::ServerBuilder;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:9001").await?;
    let server = ServerBuilder::new().subprotocols(["chat.v2", "chat.v1"]);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept failed: {error}"); // e.g. out of file descriptors
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let mut ws = match server.accept_tcp(tcp).await {
                Ok(ws) => ws,
                Err(error) => return eprintln!("{peer}: handshake failed: {error}"),
            };
            while let Some(Ok(message)) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
