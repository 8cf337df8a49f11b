//! permessage-deflate through the front-ends: negotiated by default over
//! real loopback connections, refused when either side turns it off, used
//! by the blocking front-end and by prepared messages.

use std::time::Duration;

use sockeye::proto::extension::deflate::DeflateParams;
use sockeye::{ClientBuilder, DeflateConfig, Message, PreparedMessage, ServerBuilder};
use tokio::net::TcpListener;

const GUARD: Duration = Duration::from_secs(10);

/// An echo server with `server`'s policy; returns its URL and the
/// negotiated parameters each accepted connection reports.
async fn echo_server(
    server: ServerBuilder,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<Option<DeflateParams>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept_tcp(tcp).await else {
                    return;
                };
                let _ = tx.send(ws.connection().deflate_params());
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, rx)
}

fn json(i: usize) -> String {
    format!(r#"{{"seq":{i},"symbol":"ACME","bid":"101.25","ask":"101.27","venue":"XNAS"}}"#)
}

#[tokio::test]
async fn negotiated_by_default_and_messages_roundtrip() {
    tokio::time::timeout(GUARD, async {
        let (url, mut params) = echo_server(ServerBuilder::new()).await;
        let (mut ws, response) = ClientBuilder::new(&url).connect().await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-extensions"],
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            "the server's default 4 KiB windows"
        );
        let client_params = ws.connection().deflate_params().expect("negotiated");
        assert_eq!(params.recv().await.unwrap(), Some(client_params));
        assert_eq!(client_params.server_max_window_bits, 12);
        assert_eq!(client_params.client_max_window_bits, 12);
        assert!(!client_params.server_no_context_takeover);
        let big = "x".repeat(1 << 20);
        for i in 0..200 {
            ws.send(Message::text(json(i))).await.unwrap();
        }
        ws.send(Message::text(big.clone())).await.unwrap();
        ws.send(Message::binary(vec![0u8; 100_000])).await.unwrap();
        for i in 0..200 {
            assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(json(i)));
        }
        assert_eq!(
            ws.recv().await.unwrap().unwrap().as_text(),
            Some(big.as_str())
        );
        assert_eq!(ws.recv().await.unwrap().unwrap().len(), 100_000);
        ws.close(sockeye::CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn either_side_can_refuse() {
    tokio::time::timeout(GUARD, async {
        let off = DeflateConfig::new().enabled(false);
        let (url, mut params) = echo_server(ServerBuilder::new().deflate(off)).await;
        let (mut ws, response) = ClientBuilder::new(&url).connect().await.unwrap();
        assert!(response.headers().get("sec-websocket-extensions").is_none());
        assert_eq!(ws.connection().deflate_params(), None);
        assert_eq!(params.recv().await.unwrap(), None);
        ws.send(Message::text(json(1))).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(json(1)));

        let (url, mut params) = echo_server(ServerBuilder::new()).await;
        let (mut ws, response) = ClientBuilder::new(&url)
            .deflate(off)
            .connect()
            .await
            .unwrap();
        assert!(response.headers().get("sec-websocket-extensions").is_none());
        assert_eq!(params.recv().await.unwrap(), None);
        ws.send(Message::text(json(2))).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(json(2)));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn parameters_reach_both_engines() {
    tokio::time::timeout(GUARD, async {
        let server = ServerBuilder::new().deflate(
            DeflateConfig::new()
                .server_max_window_bits(Some(10))
                .client_no_context_takeover(true),
        );
        let (url, mut params) = echo_server(server).await;
        let client = DeflateConfig::new()
            .server_no_context_takeover(true)
            .client_max_window_bits(Some(12));
        let (mut ws, response) = ClientBuilder::new(&url)
            .deflate(client)
            .connect()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["sec-websocket-extensions"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
        let negotiated = ws.connection().deflate_params().unwrap();
        assert_eq!(params.recv().await.unwrap(), Some(negotiated));
        assert_eq!(negotiated.server_max_window_bits, 10);
        assert_eq!(negotiated.client_max_window_bits, 12);
        assert!(negotiated.server_no_context_takeover && negotiated.client_no_context_takeover);
        for i in 0..50 {
            ws.send(Message::text(json(i).repeat(30))).await.unwrap();
            assert_eq!(
                ws.recv().await.unwrap().unwrap(),
                Message::text(json(i).repeat(30))
            );
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn prepared_messages_reach_every_client() {
    tokio::time::timeout(GUARD, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let text = json(7).repeat(20);
        let prepared = PreparedMessage::new(Message::text(text.clone()));
        let server = tokio::spawn(async move {
            let builder = ServerBuilder::new();
            let mut clients = Vec::new();
            for _ in 0..3 {
                let (tcp, _) = listener.accept().await.unwrap();
                clients.push(builder.accept_tcp(tcp).await.unwrap());
            }
            for ws in &mut clients {
                for _ in 0..3 {
                    ws.send_prepared(&prepared).await.unwrap();
                }
            }
            clients
        });
        let mut readers = Vec::new();
        for takeover in [true, false, true] {
            let config = DeflateConfig::new().server_no_context_takeover(!takeover);
            readers.push(
                ClientBuilder::new(&url)
                    .deflate(config)
                    .connect()
                    .await
                    .unwrap()
                    .0,
            );
        }
        let _clients = server.await.unwrap();
        for ws in &mut readers {
            for _ in 0..3 {
                assert_eq!(
                    ws.recv().await.unwrap().unwrap().as_text(),
                    Some(text.as_str())
                );
            }
        }
    })
    .await
    .expect("bounded");
}

#[test]
fn the_blocking_front_end_negotiates_too() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = sockeye::blocking::accept(tcp).unwrap();
        let params = ws.connection().deflate_params();
        let message = ws.recv().unwrap().unwrap();
        ws.send(message).unwrap();
        params
    });
    let (mut ws, response) = sockeye::blocking::connect(&url).unwrap();
    assert_eq!(
        response.headers()["sec-websocket-extensions"],
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    );
    ws.send(Message::text(json(3).repeat(10))).unwrap();
    assert_eq!(
        ws.recv().unwrap().unwrap(),
        Message::text(json(3).repeat(10))
    );
    let params = server.join().unwrap();
    assert_eq!(params, ws.connection().deflate_params());
    assert!(params.is_some());
}
