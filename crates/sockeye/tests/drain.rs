//! A server's graceful drain over loopback (issue 14, item 7): every
//! connection accepted through the builder is closed with the chosen code
//! over the window and counted; requests during the drain get 503; a
//! client that never answers is cut at the deadline; the blocking
//! front-end and connections upgraded through hyper are drained too.
//!
//! Real time (paused time would let tokio jump the clock while real
//! sockets are busy), short windows, and only generous upper bounds,
//! plus lower bounds the engine guarantees (a Close is never sent before
//! its time).
//!
//! Against the tokio server or the event loop (`SOCKEYE_TEST_SERVER`, see
//! `common::front`); the blocking and hyper cases are the tokio run's.

mod common;

use std::time::{Duration, Instant};

use common::front::{Front, LoopEnd, LoopServer, Serving, front, tokio_only};
use sockeye::proto::Config;
use sockeye::{ClientBuilder, CloseCode, DrainConfig, Error, Message, ServerBuilder};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(30);

/// Accepts with `server`, echoing, until the guard is dropped; each
/// connection's end (Ok for a clean close, as `recv` reports it) goes to
/// `ends`. Returns the URL.
/// Waits (boundedly) until `server` counts no open connection: the event
/// loop tells the application a connection ended (its `close` callback)
/// before it drops the connection and gives its place back, in the same
/// iteration.
async fn no_open_connections(server: &ServerBuilder) {
    for _ in 0..500 {
        if server.open_connections() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} connections still open", server.open_connections());
}

async fn serve(
    server: ServerBuilder,
    ends: mpsc::UnboundedSender<Result<(), Error>>,
) -> (String, Serving) {
    if front() == Front::EventLoop {
        let server = LoopServer::start(server, None, move |end| {
            if let LoopEnd::Ended { closed, .. } = end {
                let _ = ends.send(closed.error.map_or(Ok(()), |error| Err(error.into())));
            }
        });
        return (server.url(), Serving::EventLoop(server));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            let ends = ends.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept_tcp(tcp).await else {
                    return;
                };
                let end = loop {
                    match ws.recv().await {
                        Some(Ok(message)) => {
                            if let Err(error) = ws.send(message).await {
                                break Err(error);
                            }
                        }
                        Some(Err(error)) => break Err(error),
                        None => break Ok(()),
                    }
                };
                let _ = ends.send(end);
            });
        }
    });
    (url, Serving::Tokio(task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_closed_with_1001_over_the_window_and_counted_clean() {
    const N: usize = 200;
    let window = Duration::from_millis(500);
    tokio::time::timeout(GUARD, async {
        let server = ServerBuilder::new();
        let drain = server.drain_handle();
        let (ends, mut ended) = mpsc::unbounded_channel();
        let (url, _server) = serve(server.clone(), ends).await;

        // N clients, each proves its connection works, then waits for the
        // end and tells when its Close arrived.
        let (closes, mut closed) = mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for i in 0..N {
            let (mut ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
            let closes = closes.clone();
            clients.push(tokio::spawn(async move {
                let text = format!("client {i}");
                ws.send(Message::text(text.clone())).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
                // A clean close ends `recv` with `None`.
                assert!(ws.recv().await.is_none(), "not a clean close");
                let at = Instant::now();
                let received = ws.closed().and_then(|closed| closed.received.clone());
                closes.send((at, received)).unwrap();
            }));
        }
        drop(closes);
        while server.open_connections() < N {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let started = Instant::now();
        assert!(drain.start(DrainConfig::new().window(window)));
        assert!(drain.is_started());

        // A WebSocket request during the drain: 503 with Retry-After.
        let Err(Error::Handshake(refusal)) = ClientBuilder::new(&url).connect().await else {
            panic!("a connection was admitted during the drain");
        };
        assert_eq!(
            refusal.status(),
            Some(http::StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(refusal.response().unwrap().headers()["retry-after"], "1");

        let report = drain.wait().await;
        assert_eq!(report.connections, N, "{report}");
        assert_eq!(report.clean, N, "{report}");
        assert_eq!(report.cut(), 0, "{report}");
        assert!(
            report.elapsed < window + Duration::from_secs(10),
            "{report:?}"
        );
        assert_eq!(
            report.to_string(),
            format!("{N} connections, {N} closed cleanly, 0 cut")
        );

        let mut times = Vec::new();
        for _ in 0..N {
            let (at, received) = closed.recv().await.unwrap();
            let received = received.expect("the server's Close had a code");
            assert_eq!(received.code, CloseCode::GOING_AWAY);
            assert_eq!(received.reason.as_str(), "server shutting down");
            times.push(at.duration_since(started));
        }
        for client in clients {
            client.await.unwrap();
        }
        for _ in 0..N {
            assert!(ended.recv().await.unwrap().is_ok(), "a server side failed");
        }
        // Spread over the window: the last Close is not sent before its
        // time (the engine guarantees it), and all came within a generous
        // bound.
        let last = times.iter().max().unwrap();
        assert!(
            *last >= window * (N as u32 - 1) / N as u32,
            "last at {last:?}"
        );
        assert!(*last < window + Duration::from_secs(10), "last at {last:?}");
        no_open_connections(&server).await;
        // Over: the same report again.
        assert_eq!(drain.wait().await, report);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_client_that_never_answers_the_close_is_cut_at_the_deadline() {
    tokio::time::timeout(GUARD, async {
        // The engine's own close timeout is longer than the drain's: the
        // deadline is what ends the silent one.
        let config = Config::new()
            .close_timeout(Duration::from_secs(60))
            .keepalive_interval(None);
        let server = ServerBuilder::new().config(config);
        let drain = server.drain_handle();
        let (ends, mut ended) = mpsc::unbounded_channel();
        let (url, _server) = serve(server.clone(), ends).await;
        let (mut polite, _) = ClientBuilder::new(&url).connect().await.unwrap();
        // Connected, then never polled again: it never answers the Close.
        let (silent, _) = ClientBuilder::new(&url).connect().await.unwrap();
        while server.open_connections() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let polite_task = tokio::spawn(async move {
            assert!(polite.recv().await.is_none());
            polite.closed().unwrap().received.clone().unwrap().code
        });

        let timeout = Duration::from_millis(800);
        drain.start(
            DrainConfig::new()
                .code(CloseCode::SERVICE_RESTART)
                .reason("restarting")
                .window(Duration::ZERO)
                .timeout(timeout),
        );
        let report = drain.wait().await;
        assert_eq!(
            (
                report.connections,
                report.clean,
                report.failed,
                report.abandoned
            ),
            (2, 1, 0, 1),
            "{report}"
        );
        assert!(report.elapsed >= timeout, "{report:?}");
        assert!(
            report.elapsed < timeout + Duration::from_secs(5),
            "{report:?}"
        );
        assert_eq!(
            report.to_string(),
            "2 connections, 1 closed cleanly, 1 cut (1 still open at the deadline, dropped)"
        );
        assert_eq!(polite_task.await.unwrap(), CloseCode::SERVICE_RESTART);

        // The silent one's server task ended with the closing-handshake
        // timeout, and its place is given back.
        let mut outcomes = vec![ended.recv().await.unwrap(), ended.recv().await.unwrap()];
        outcomes.sort_by_key(|outcome| outcome.is_ok());
        assert!(
            matches!(
                outcomes[0],
                Err(Error::Timeout(sockeye::proto::Timeout::Close))
            ),
            "{outcomes:?}"
        );
        assert!(outcomes[1].is_ok());
        no_open_connections(&server).await;
        // The silent client finds the server's Close and then the end of
        // the stream.
        let mut silent = silent;
        let end = silent.recv_event().await;
        assert!(
            matches!(end, Some(Ok(sockeye::Event::Closed(_))) | Some(Err(_))),
            "{end:?}"
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn blocking_connections_are_drained_too() {
    if tokio_only(
        "blocking_connections_are_drained_too",
        "tests the blocking front-end",
    ) {
        return;
    }
    tokio::time::timeout(GUARD, async {
        let server = ServerBuilder::new();
        let drain = server.drain_handle();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let accepting = server.clone();
        let server_thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let (mut ws, _) = sockeye::blocking::accept_with(&accepting, tcp).unwrap();
            while let Some(message) = ws.recv() {
                ws.send(message.unwrap()).unwrap();
            }
            ws.closed().cloned()
        });
        let client_thread = std::thread::spawn(move || {
            let (mut ws, _) = sockeye::blocking::connect(&url).unwrap();
            ws.send(Message::text("hello")).unwrap();
            assert_eq!(ws.recv().unwrap().unwrap(), Message::text("hello"));
            assert!(ws.recv().is_none(), "not a clean close");
            ws.closed().cloned()
        });
        while server.open_connections() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The server thread is blocked in a read; it sees the drain within
        // `DRAIN_CHECK` (1 s).
        drain.start(DrainConfig::new().window(Duration::ZERO));
        let report = drain.wait().await;
        assert_eq!((report.connections, report.clean), (1, 1), "{report}");
        assert!(
            report.elapsed < sockeye::blocking::DRAIN_CHECK + Duration::from_secs(5),
            "{report:?}"
        );
        let client_end = tokio::task::spawn_blocking(move || client_thread.join().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(client_end.received.unwrap().code, CloseCode::GOING_AWAY);
        let server_end = tokio::task::spawn_blocking(move || server_thread.join().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(server_end.is_clean(), "{server_end:?}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn hyper_upgrades_are_drained_and_refused_with_503() {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    if tokio_only(
        "hyper_upgrades_are_drained_and_refused_with_503",
        "tests upgrades through hyper (ServerBuilder::upgrade)",
    ) {
        return;
    }
    tokio::time::timeout(GUARD, async {
        let server = ServerBuilder::new();
        let drain = server.drain_handle();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let server = accepting.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |mut request: http::Request<_>| {
                        let answer = match server.upgrade(&mut request) {
                            Ok(upgrade) => {
                                tokio::spawn(async move {
                                    let Ok(mut ws) = upgrade.websocket.await else {
                                        return;
                                    };
                                    while let Some(Ok(message)) = ws.recv().await {
                                        if ws.send(message).await.is_err() {
                                            break;
                                        }
                                    }
                                });
                                upgrade
                                    .response
                                    .map(|()| http_body_util::Full::<bytes::Bytes>::default())
                            }
                            Err(refusal) => refusal.response.map(http_body_util::Full::new),
                        };
                        async move { Ok::<_, std::convert::Infallible>(answer) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        let (mut ws, _) = ClientBuilder::new(&url).connect().await.unwrap();
        ws.send(Message::text("over hyper")).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::text("over hyper")
        );
        drain.start(DrainConfig::new().window(Duration::ZERO));
        assert!(ws.recv().await.is_none(), "not a clean close");
        assert_eq!(
            ws.closed().unwrap().received.as_ref().unwrap().code,
            CloseCode::GOING_AWAY
        );
        let Err(Error::Handshake(refusal)) = ClientBuilder::new(&url).connect().await else {
            panic!("admitted during the drain");
        };
        assert_eq!(
            refusal.status(),
            Some(http::StatusCode::SERVICE_UNAVAILABLE)
        );
        let report = drain.wait().await;
        assert_eq!((report.connections, report.clean), (1, 1), "{report}");
    })
    .await
    .expect("bounded");
}
