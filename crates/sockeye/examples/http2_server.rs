//! One port, HTTP/1.1 and HTTP/2 (RFC 8441): `serve_tcp` hands every
//! WebSocket to the same handler, however it came, many of them per
//! connection over HTTP/2. In cleartext a client speaks HTTP/2 by prior
//! knowledge; with `ServerBuilder::tls` and `h2` in the rustls config's
//! `alpn_protocols`, browsers choose it by ALPN.
//! Run: `cargo run -p sockeye --example http2_server`.
use sockeye::ServerBuilder;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:9001").await?;
    // At most 100 WebSockets per HTTP/2 connection (the default).
    let server = ServerBuilder::new().max_http2_streams(100);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let served = server
                .serve_tcp(tcp, move |mut ws, request| async move {
                    let over = if ws.get_ref().is_http2() {
                        "HTTP/2"
                    } else {
                        "HTTP/1.1"
                    };
                    println!("{peer}: WebSocket at {} over {over}", request.uri().path());
                    while let Some(Ok(message)) = ws.recv().await {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                })
                .await;
            if let Err(error) = served {
                eprintln!("{peer}: {error}");
            }
        });
    }
}
