//! The reconnecting client against servers that go away and come back,
//! close with final or retryable codes, refuse the handshake, or are not
//! there at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::{
    ClientBuilder, CloseCode, Failure, Message, ReconnectError, ReconnectEvent, ReconnectPolicy,
    Reconnecting, ServerBuilder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every test finishes well within this, or fails instead of hanging.
const GUARD: Duration = Duration::from_secs(20);

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("did not finish in time")
}

/// A fast policy for tests: waits of milliseconds.
fn fast() -> ReconnectPolicy {
    ReconnectPolicy::new()
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(50))
}

/// What the client reported, as text, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn attach(&self, client: Reconnecting) -> Reconnecting {
        let log = self.0.clone();
        client.on_event(move |event| {
            let line = match event {
                ReconnectEvent::Connected { reconnect, retries } => {
                    format!("connected reconnect={reconnect} retries={retries}")
                }
                ReconnectEvent::Disconnected(ending) => {
                    format!(
                        "disconnected {} by_us={}",
                        ending.code.as_u16(),
                        ending.by_us
                    )
                }
                ReconnectEvent::Waiting {
                    retry,
                    delay,
                    error,
                } => format!(
                    "waiting retry={retry} delay_ms={} error={}",
                    delay.as_millis(),
                    error.is_some()
                ),
                _ => "other".to_owned(),
            };
            log.lock().unwrap().push(line);
        })
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An echo server on a fixed address that can be stopped (its
/// connections closed with 1012, its listener dropped) and started again
/// on the same port.
struct Restartable {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Restartable {
    async fn start() -> Restartable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, _) = watch::channel(false);
        let mut server = Restartable {
            addr,
            stop,
            task: None,
        };
        server.run(listener);
        server
    }

    fn run(&mut self, listener: TcpListener) {
        let _ = self.stop.send(false);
        let mut stopped = self.stop.subscribe();
        let stop = self.stop.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        // Each connection closes itself with 1012 on stop.
                        tokio::spawn(echo(tcp, stop.subscribe()));
                    }
                    _ = stopped.changed() => break,
                }
            }
        }));
    }

    /// Stops listening and has every connection close with 1012.
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.run(listener);
    }
}

async fn echo(tcp: TcpStream, mut stop: watch::Receiver<bool>) {
    let Ok(mut ws) = ServerBuilder::new().accept(tcp).await else {
        return;
    };
    loop {
        tokio::select! {
            message = ws.recv() => match message {
                Some(Ok(message)) => {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            _ = stop.changed() => {
                let _ = ws.close(CloseCode::SERVICE_RESTART, "restarting").await;
                return;
            }
        }
    }
}

/// Sends `text` and expects it back.
async fn round_trip(ws: &mut sockeye::WebSocket<sockeye::ClientStream>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let echoed = ws.recv().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text(text));
}

#[tokio::test]
async fn survives_a_server_restart() {
    within(async {
        let mut server = Restartable::start().await;
        let log = Log::default();
        let mut client = log.attach(
            ClientBuilder::new(&format!("ws://{}/", server.addr))
                .no_proxy()
                .reconnect(fast()),
        );
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "before").await;

        server.stop().await;
        // The client sees the server's 1012 and reads to the end.
        assert!(ws.recv().await.is_none());
        assert_eq!(ws.closed().unwrap().code(), CloseCode::SERVICE_RESTART);

        // Down for a while: the client retries, refused, until it is back.
        let comeback = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart().await;
            server
        });
        let (mut ws, _) = client.next().await.unwrap();
        let mut server = comeback.await.unwrap();
        round_trip(&mut ws, "after").await;
        assert_eq!(client.connections(), 2);

        let lines = log.lines();
        assert_eq!(lines[0], "connected reconnect=false retries=0");
        assert_eq!(lines[1], "disconnected 1012 by_us=false");
        assert!(lines[2].starts_with("waiting retry=1 "), "{lines:?}");
        assert!(lines[2].ends_with("error=false"), "{lines:?}");
        // Refused attempts while it was down, each waiting longer at most.
        let refused: Vec<_> = lines[3..lines.len() - 1].to_vec();
        assert!(!refused.is_empty(), "{lines:?}");
        for (n, line) in refused.iter().enumerate() {
            assert!(
                line.starts_with(&format!("waiting retry={} ", n + 2))
                    && line.ends_with("error=true"),
                "{lines:?}"
            );
            let delay: u64 = line
                .split("delay_ms=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(delay <= 50, "a wait over max_delay: {lines:?}");
        }
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("connected reconnect=true"),
            "{lines:?}"
        );
        server.stop().await;
    })
    .await;
}

/// A server that answers each connection in turn with the next of
/// `plans`: an HTTP refusal written raw, or a WebSocket closed at once
/// with a code, or (past the end of the list) an echo.
enum Plan {
    Refuse(&'static str),
    CloseWith(u16),
}

async fn scripted(plans: Vec<Plan>) -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut plans = plans.into_iter();
        let (_never, stop) = watch::channel(false);
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            *count.lock().unwrap() += 1;
            match plans.next() {
                Some(Plan::Refuse(head)) => {
                    // Read the request (one small head) before answering.
                    let mut buffer = [0; 4096];
                    let _ = tcp.read(&mut buffer).await;
                    let _ = tcp.write_all(head.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                }
                Some(Plan::CloseWith(code)) => {
                    tokio::spawn(async move {
                        if let Ok(mut ws) = ServerBuilder::new().accept(tcp).await {
                            let _ = ws.close(CloseCode::new(code), "planned").await;
                        }
                    });
                }
                None => {
                    tokio::spawn(echo(tcp, stop.clone()));
                }
            }
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_final_close_code_stops_and_an_opted_in_one_is_retried() {
    within(async {
        // 1008 is final by default.
        let (addr, _) = scripted(vec![Plan::CloseWith(1008)]).await;
        let mut client = ClientBuilder::new(&format!("ws://{addr}/"))
            .no_proxy()
            .reconnect(fast());
        let (mut ws, _) = client.next().await.unwrap();
        assert!(ws.recv().await.is_none());
        match client.next().await {
            Err(ReconnectError::Closed(ending)) => {
                assert_eq!(ending.code, CloseCode::POLICY_VIOLATION);
                assert_eq!(ending.reason, "planned");
                assert!(!ending.by_us);
            }
            other => panic!("expected a final close, got {other:?}"),
        }

        // An application code: final by default, retried when asked.
        let (addr, _) = scripted(vec![Plan::CloseWith(4000)]).await;
        let mut client = ClientBuilder::new(&format!("ws://{addr}/"))
            .no_proxy()
            .reconnect(fast());
        let (mut ws, _) = client.next().await.unwrap();
        assert!(ws.recv().await.is_none());
        assert!(matches!(
            client.next().await,
            Err(ReconnectError::Closed(_))
        ));

        let (addr, accepted) = scripted(vec![Plan::CloseWith(4000)]).await;
        let mut client = ClientBuilder::new(&format!("ws://{addr}/"))
            .no_proxy()
            .reconnect(fast().retry_close_code(CloseCode::new(4000)));
        let (mut ws, _) = client.next().await.unwrap();
        assert!(ws.recv().await.is_none());
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "second").await;
        assert_eq!(*accepted.lock().unwrap(), 2);
    })
    .await;
}

#[tokio::test]
async fn refusals_are_final_or_retried_by_status() {
    within(async {
        // 403: final at once, one attempt.
        let (addr, accepted) = scripted(vec![Plan::Refuse(
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
        )])
        .await;
        let mut client = ClientBuilder::new(&format!("ws://{addr}/"))
            .no_proxy()
            .reconnect(fast());
        match client.next().await {
            Err(ReconnectError::Refused(sockeye::Error::Handshake(error))) => {
                assert_eq!(error.status().map(|s| s.as_u16()), Some(403));
            }
            other => panic!("expected a final refusal, got {other:?}"),
        }
        assert_eq!(*accepted.lock().unwrap(), 1);

        // 503 and 429 are retried (Retry-After: 0 honoured), then it opens.
        let (addr, accepted) = scripted(vec![
            Plan::Refuse(
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\n\r\n",
            ),
            Plan::Refuse("HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n"),
        ])
        .await;
        let log = Log::default();
        let mut client = log.attach(
            ClientBuilder::new(&format!("ws://{addr}/"))
                .no_proxy()
                .reconnect(fast()),
        );
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "third time").await;
        assert_eq!(*accepted.lock().unwrap(), 3);
        assert_eq!(client.retries(), 2);
        let lines = log.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].starts_with("connected reconnect=false retries=2"));

        // A status the application declares final.
        let (addr, accepted) = scripted(vec![Plan::Refuse(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        )])
        .await;
        let mut client = ClientBuilder::new(&format!("ws://{addr}/"))
            .no_proxy()
            .reconnect(fast().stop_on_status(http::StatusCode::SERVICE_UNAVAILABLE));
        assert!(matches!(
            client.next().await,
            Err(ReconnectError::Refused(_))
        ));
        assert_eq!(*accepted.lock().unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_retry_budget_runs_out() {
    within(async {
        // A port nobody listens on.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let log = Log::default();
        let mut client = log.attach(
            ClientBuilder::new(&format!("ws://{addr}/"))
                .no_proxy()
                .reconnect(fast().max_retries(3)),
        );
        match client.next().await {
            Err(ReconnectError::GaveUp { attempts, last }) => {
                assert_eq!(attempts, 4);
                assert!(
                    matches!(last, Failure::Attempt(sockeye::Error::Io(_))),
                    "{last:?}"
                );
            }
            other => panic!("expected to give up, got {other:?}"),
        }
        let waits = log
            .lines()
            .iter()
            .filter(|l| l.starts_with("waiting"))
            .count();
        assert_eq!(waits, 3);
    })
    .await;
}

#[tokio::test]
async fn a_server_that_closes_at_once_is_backed_off_from() {
    within(async {
        // Accepts and closes with 1013 (try again later), every time.
        let plans = (0..10).map(|_| Plan::CloseWith(1013)).collect();
        let (addr, accepted) = scripted(plans).await;
        let log = Log::default();
        let mut client = log.attach(
            ClientBuilder::new(&format!("ws://{addr}/"))
                .no_proxy()
                .reconnect(fast().max_retries(4)),
        );
        let outcome = loop {
            match client.next().await {
                Ok((mut ws, _)) => while ws.recv().await.is_some() {},
                Err(error) => break error,
            }
        };
        assert!(
            matches!(outcome, ReconnectError::GaveUp { attempts: 4, .. }),
            "{outcome:?}"
        );
        // Five short-lived connections; the waits between them count up.
        assert_eq!(*accepted.lock().unwrap(), 5);
        let retries: Vec<String> = log
            .lines()
            .iter()
            .filter(|l| l.starts_with("waiting"))
            .map(|l| l.split(' ').nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(retries, ["retry=1", "retry=2", "retry=3", "retry=4"]);
        assert_eq!(
            outcome.to_string(),
            "gave up after 4 attempts: the server closed the connection with 1013 (planned)"
        );
    })
    .await;
}

#[tokio::test]
async fn a_connection_the_application_closed_is_replaced_at_once() {
    within(async {
        let (addr, accepted) = scripted(Vec::new()).await;
        let log = Log::default();
        let mut client = log.attach(
            ClientBuilder::new(&format!("ws://{addr}/"))
                .no_proxy()
                .reconnect(fast()),
        );
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "one").await;
        ws.close(CloseCode::NORMAL, "done").await.unwrap();
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "two").await;
        // Dropped while open: also replaced at once.
        drop(ws);
        let (mut ws, _) = client.next().await.unwrap();
        round_trip(&mut ws, "three").await;
        assert_eq!(*accepted.lock().unwrap(), 3);
        let lines = log.lines();
        assert!(!lines.iter().any(|l| l.starts_with("waiting")), "{lines:?}");
        assert_eq!(lines[1], "disconnected 1000 by_us=true");
    })
    .await;
}
