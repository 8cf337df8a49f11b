//! Redirects in the client's opening handshake, over loopback: raw servers
//! that answer 3xx, a real `ServerBuilder` behind them, and which
//! credentials reach which host.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use sockeye::{ClientBuilder, ClientStream, Error, Message, ServerBuilder, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Every wait in these tests is bounded by this: a hang is a failure.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Reads a request head byte by byte.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    String::from_utf8(head).ok()
}

/// Answers `response` (with `{port}` replaced by the listener's port) to
/// the first `redirects` connections, then, if `then_serve`, serves
/// WebSocket echo on the next ones. Sends each request's headers (raw head
/// for redirects, parsed for WebSocket) to the returned channel. Redirect
/// connections are left open, as a keep-alive server would.
async fn server(
    response: &str,
    redirects: usize,
    then_serve: bool,
) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let response = response.replace("{port}", &address.port().to_string());
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..redirects {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let Some(head) = read_head(&mut tcp).await else {
                return;
            };
            let _ = sender.send(head);
            let _ = tcp.write_all(response.as_bytes()).await;
            held.push(tcp);
        }
        if !then_serve {
            return;
        }
        while let Ok((tcp, _)) = listener.accept().await {
            serve_echo(tcp, sender.clone()).await;
        }
    });
    (address, receiver)
}

async fn serve_echo(tcp: TcpStream, sender: mpsc::UnboundedSender<String>) {
    let Ok((mut ws, request)) = ServerBuilder::new().accept_with_request(tcp).await else {
        return;
    };
    let _ = sender.send(describe(request.headers(), request.uri().to_string()));
    tokio::spawn(async move {
        while let Some(Ok(message)) = ws.recv().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    });
}

/// `path | authorization | cookie` of a WebSocket request.
fn describe(headers: &HeaderMap, path: String) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_else(|| "-".to_owned())
    };
    format!("{path} | {} | {}", get("authorization"), get("cookie"))
}

async fn next(receiver: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(HANG_GUARD, receiver.recv())
        .await
        .expect("a request arrived")
        .expect("the server is running")
}

async fn connect(builder: ClientBuilder) -> Result<WebSocket<ClientStream>, Error> {
    tokio::time::timeout(HANG_GUARD, builder.no_proxy().connect())
        .await
        .expect("connect finished")
        .map(|(ws, _)| ws)
}

async fn assert_echo(ws: &mut WebSocket<ClientStream>) {
    ws.send(Message::text("hello")).await.unwrap();
    let back = tokio::time::timeout(HANG_GUARD, ws.recv()).await.unwrap();
    assert_eq!(back.unwrap().unwrap().as_text(), Some("hello"));
}

fn found(location: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
}

/// `user:pw` in Basic form.
const USER_PW: &str = "Basic dXNlcjpwdw==";

#[tokio::test]
async fn redirects_are_not_followed_by_default() {
    let (redirector, _) = server(&found("/elsewhere"), 1, false).await;
    let result = connect(ClientBuilder::new(&format!("ws://{redirector}/"))).await;
    match result {
        Err(Error::Handshake(error)) => {
            assert_eq!(error.status(), Some(StatusCode::FOUND));
            let response = error.response().expect("the response head");
            assert_eq!(response.headers()["location"], "/elsewhere");
        }
        other => panic!(
            "expected the 302 as a handshake error, got {:?}",
            other.err()
        ),
    }
}

#[tokio::test]
async fn same_host_and_port_keeps_credentials() {
    // One port: a 302 to a relative path, then the WebSocket server.
    let (address, mut requests) = server(&found("real?x=1"), 1, true).await;
    let builder = ClientBuilder::new(&format!("ws://user:pw@{address}/a/start"))
        .header("cookie", "session=1")
        .max_redirects(1);
    let started = Instant::now();
    let mut ws = connect(builder).await.unwrap();
    // The redirect's connection stays open: the client did not wait for it
    // to close, nor for a body.
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_echo(&mut ws).await;
    let first = next(&mut requests).await;
    assert!(first.starts_with("GET /a/start HTTP/1.1\r\n"), "{first}");
    assert_eq!(
        next(&mut requests).await,
        format!("/a/real?x=1 | {USER_PW} | session=1")
    );
}

#[tokio::test]
async fn another_port_drops_credentials() {
    let (target, mut served) = server("", 0, true).await;
    let location = format!("http://127.0.0.1:{}/landing", target.port());
    let (redirector, _) = server(&found(&location), 1, false).await;
    let builder = ClientBuilder::new(&format!("ws://user:pw@{redirector}/"))
        .header("Authorization", "Bearer t")
        .header("cookie", "session=1")
        .header("x-kept", "yes")
        .max_redirects(3);
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(next(&mut served).await, "/landing | - | -");
}

#[tokio::test]
async fn another_host_drops_credentials() {
    // 127.0.0.1 and localhost reach the same socket but are different
    // hosts by name.
    let (target, mut served) = server("", 0, true).await;
    let location = format!("ws://localhost:{}/moved", target.port());
    let (redirector, _) = server(&found(&location), 1, false).await;
    let url = format!("ws://user:pw@127.0.0.1:{}/", redirector.port());
    let builder = ClientBuilder::new(&url)
        .header("cookie", "session=1")
        .max_redirects(1);
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(next(&mut served).await, "/moved | - | -");
}

#[tokio::test]
async fn every_redirect_status_is_followed() {
    for status in [
        "301 Moved Permanently",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let response = format!("HTTP/1.1 {status}\r\nLocation: /ws\r\nContent-Length: 0\r\n\r\n");
        let (address, _) = server(&response, 1, true).await;
        let builder = ClientBuilder::new(&format!("ws://{address}/")).max_redirects(1);
        let mut ws = connect(builder).await.unwrap();
        assert_echo(&mut ws).await;
    }
}

#[tokio::test]
async fn too_many_redirects() {
    let (address, mut requests) = server(&found("ws://127.0.0.1:{port}/again"), 10, false).await;
    let builder = ClientBuilder::new(&format!("ws://{address}/")).max_redirects(2);
    let Err(error) = connect(builder).await else {
        panic!("expected an error, connected");
    };
    assert!(
        matches!(error, Error::TooManyRedirects { max: 2 }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "too many redirects (more than 2)");
    for _ in 0..3 {
        next(&mut requests).await;
    }
    assert!(requests.try_recv().is_err(), "no fourth request");
}

#[tokio::test]
async fn a_redirect_without_location_is_an_error() {
    let response = "HTTP/1.1 307 Temporary Redirect\r\nContent-Length: 0\r\n\r\n";
    let (address, _) = server(response, 1, false).await;
    let builder = ClientBuilder::new(&format!("ws://{address}/")).max_redirects(5);
    match connect(builder).await {
        Err(error @ Error::InvalidRedirect { .. }) => assert_eq!(
            error.to_string(),
            "cannot follow redirect (307 Temporary Redirect): no Location header"
        ),
        other => panic!("expected InvalidRedirect, got {:?}", other.err()),
    }
}
