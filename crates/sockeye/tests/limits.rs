//! Server resource limits over loopback: the connection limit (503) and
//! the idle timeout (1001), against the tokio server or the event loop
//! (`SOCKEYE_TEST_SERVER`, see `common::front`).

mod common;

use std::time::Duration;

use common::front::{Front, LoopServer, Serving, front};
use sockeye::proto::Config;
use sockeye::{ClientBuilder, CloseCode, Error, Message, ServerBuilder};
use tokio::net::TcpListener;

const GUARD: Duration = Duration::from_secs(10);

/// Accepts with `server`, echoing, until the guard is dropped; returns
/// the URL.
async fn serve(server: ServerBuilder) -> (String, Serving) {
    if front() == Front::EventLoop {
        let server = LoopServer::start(server, None, |_| {});
        return (server.url(), Serving::EventLoop(server));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept_tcp(tcp).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, Serving::Tokio(task))
}

#[tokio::test]
async fn connections_past_the_limit_get_503_until_one_closes() {
    tokio::time::timeout(GUARD, async {
        let server = ServerBuilder::new().max_connections(2);
        let (url, _server) = serve(server.clone()).await;
        let (mut first, _) = ClientBuilder::new(&url).connect().await.unwrap();
        let (mut second, _) = ClientBuilder::new(&url).connect().await.unwrap();
        assert_eq!(server.open_connections(), 2);
        let Err(Error::Handshake(refusal)) = ClientBuilder::new(&url).connect().await else {
            panic!("a third connection was accepted");
        };
        assert_eq!(
            refusal.status(),
            Some(http::StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(refusal.response().unwrap().headers()["retry-after"], "1");
        // The two admitted connections still work.
        second.send(Message::text("still here")).await.unwrap();
        assert_eq!(
            second.recv().await.unwrap().unwrap(),
            Message::text("still here")
        );
        // Once one ends, there is room again.
        first.close(CloseCode::NORMAL, "").await.unwrap();
        drop(first);
        let mut admitted = None;
        for _ in 0..100 {
            if let Ok((ws, _)) = ClientBuilder::new(&url).connect().await {
                admitted = Some(ws);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut third = admitted.expect("a place freed up");
        third.send(Message::text("in")).await.unwrap();
        assert_eq!(third.recv().await.unwrap().unwrap(), Message::text("in"));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn silent_connections_are_closed_with_1001() {
    tokio::time::timeout(GUARD, async {
        let config = Config::new().idle_timeout(Some(Duration::from_millis(300)));
        let (url, _server) = serve(ServerBuilder::new().config(config)).await;
        let (mut ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
        // Activity keeps it open past the timeout...
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            ws.send(Message::text("tick")).await.unwrap();
            assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("tick"));
        }
        // ...silence does not.
        let started = tokio::time::Instant::now();
        assert!(ws.recv().await.is_none(), "the server closes cleanly");
        let closed = ws.closed().expect("closed");
        assert_eq!(closed.code(), CloseCode::GOING_AWAY);
        assert_eq!(closed.reason(), "idle timeout");
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await
    .expect("bounded");
}
