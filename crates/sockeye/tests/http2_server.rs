//! The server side of WebSocket over HTTP/2 (RFC 8441), driven by a
//! client written on the `h2` crate directly.
#![cfg(feature = "http2")]

use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request, StatusCode};
use sockeye::http2::H2Stream;
use sockeye::{Message, Role, ServerBuilder, WebSocket};
use tokio::net::{TcpListener, TcpStream};

/// A server on loopback serving every connection with `serve_tcp` (echo).
async fn echo_server(server: ServerBuilder) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let _ = server
                    .serve_tcp(tcp, |mut ws, _request| async move {
                        while let Some(Ok(message)) = ws.recv().await {
                            if ws.send(message).await.is_err() {
                                break;
                            }
                        }
                    })
                    .await;
            });
        }
    });
    address
}

/// An HTTP/2 client connection (prior knowledge), driven in a task.
async fn h2_client(address: std::net::SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send.ready().await.unwrap()
}

fn extended_connect(authority: &str, path: &str) -> http::request::Builder {
    let mut builder = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{authority}{path}"))
        .header("sec-websocket-version", "13");
    builder
        .extensions_mut()
        .unwrap()
        .insert(h2::ext::Protocol::from_static("websocket"));
    builder
}

/// Opens a WebSocket over `send`'s connection: the response status, and
/// the WebSocket when it is 200.
async fn open(
    send: &mut SendRequest<Bytes>,
    request: Request<()>,
) -> (StatusCode, Option<WebSocket<H2Stream>>) {
    let (response, stream) = send.send_request(request, false).unwrap();
    let response = response.await.unwrap();
    let status = response.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    let transport = H2Stream::new(stream, response.into_body());
    let ws = WebSocket::from_raw(transport, Role::Client, Default::default(), &[]);
    (status, Some(ws))
}

#[tokio::test]
async fn two_websockets_share_one_connection_and_echo() {
    let server = ServerBuilder::new();
    let address = echo_server(server.clone()).await;
    let mut send = h2_client(address).await;
    let authority = address.to_string();
    let (status, first) = open(
        &mut send,
        extended_connect(&authority, "/a").body(()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The server's SETTINGS have arrived by now.
    assert!(send.is_extended_connect_protocol_enabled());
    let (_, second) = open(
        &mut send,
        extended_connect(&authority, "/b").body(()).unwrap(),
    )
    .await;
    let (mut first, mut second) = (first.unwrap(), second.unwrap());
    first.send(Message::text("one")).await.unwrap();
    second
        .send(Message::binary(vec![2u8; 100_000]))
        .await
        .unwrap();
    assert_eq!(first.recv().await.unwrap().unwrap(), Message::text("one"));
    assert_eq!(
        second.recv().await.unwrap().unwrap(),
        Message::binary(vec![2u8; 100_000])
    );
    let closed = first
        .close(sockeye::CloseCode::NORMAL, "done")
        .await
        .unwrap();
    assert!(
        closed.error.is_none() && closed.received.is_some(),
        "{closed:?}"
    );
    // The other WebSocket goes on after the first one's close.
    second.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        second.recv().await.unwrap().unwrap(),
        Message::text("still here")
    );
    let stats = server.stats();
    assert_eq!(stats.accepted_http2, 2);
    assert_eq!(stats.http2_connections, 1);
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.stats().closed_clean < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn rfc_8441_refusals_have_their_status() {
    let server = ServerBuilder::new();
    let address = echo_server(server.clone()).await;
    let mut send = h2_client(address).await;
    let authority = address.to_string();
    // No sec-websocket-version.
    let mut request = extended_connect(&authority, "/").body(()).unwrap();
    request.headers_mut().remove("sec-websocket-version");
    assert_eq!(open(&mut send, request).await.0, StatusCode::BAD_REQUEST);
    // A GET is not a WebSocket request.
    let request = Request::get(format!("http://{authority}/"))
        .body(())
        .unwrap();
    assert_eq!(
        open(&mut send, request).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // A Sec-WebSocket-Key has no place over HTTP/2.
    let request = extended_connect(&authority, "/")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    assert_eq!(open(&mut send, request).await.0, StatusCode::BAD_REQUEST);
    // The connection still serves WebSockets after the refusals.
    let request = extended_connect(&authority, "/").body(()).unwrap();
    assert_eq!(open(&mut send, request).await.0, StatusCode::OK);
}

/// hyper's own HTTP/2 server, with extended CONNECT enabled: every
/// request goes through `ServerBuilder::upgrade`, which answers an
/// extended CONNECT with `200`.
#[cfg(feature = "hyper")]
async fn hyper_h2_server(server: ServerBuilder) -> std::net::SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = server.clone();
            let service = service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                let server = server.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(match server.upgrade(&mut request) {
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
                                .map(|()| http_body_util::Full::<Bytes>::default())
                        }
                        Err(refusal) => refusal.response.map(http_body_util::Full::new),
                    })
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    address
}

#[cfg(feature = "hyper")]
#[tokio::test]
async fn hyper_http2_extended_connect_goes_through_the_same_policy() {
    let server = ServerBuilder::new().subprotocols(["chat.v2", "chat.v1"]);
    let address = hyper_h2_server(server.clone()).await;
    let mut send = h2_client(address).await;
    let authority = address.to_string();
    let request = extended_connect(&authority, "/ws")
        .header("sec-websocket-protocol", "chat.v1")
        .body(())
        .unwrap();
    let (response, stream) = send.send_request(request, false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert!(!response.headers().contains_key("sec-websocket-accept"));
    let transport = H2Stream::new(stream, response.into_body());
    let mut ws = WebSocket::from_raw(transport, Role::Client, Default::default(), &[]);
    ws.send(Message::text("over hyper's HTTP/2")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("over hyper's HTTP/2")
    );
    // The policy's refusals hold over hyper's HTTP/2 too.
    let mut request = extended_connect(&authority, "/ws").body(()).unwrap();
    request.headers_mut().remove("sec-websocket-version");
    assert_eq!(open(&mut send, request).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(server.stats().accepted, 1);
}
