//! Connecting through proxies over loopback: tiny in-test HTTP CONNECT and
//! SOCKS5 proxies tunnel to a real `ServerBuilder` echo server (plain and
//! TLS), with and without required credentials, and the errors a client
//! sees when a proxy refuses, is unreachable or stays silent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use sockeye::proxy::{Proxy, ProxyError};
use sockeye::{ClientBuilder, ClientStream, Error, Message, ServerBuilder, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every wait in these tests is bounded by this: a hang is a failure.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// What a test proxy saw: one line per request (the CONNECT line and its
/// `Proxy-Authorization`, or the SOCKS destination).
type Seen = Arc<Mutex<Vec<String>>>;

/// An echo server on an ephemeral loopback port, plain or TLS.
async fn echo_server(server: ServerBuilder) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
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
    address
}

/// Reads a request head byte by byte (a test proxy must not read into the
/// tunnel).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    String::from_utf8(head).ok()
}

/// An HTTP proxy that answers CONNECT, requiring `Proxy-Authorization:
/// Basic` with `credentials` when given (407 otherwise), then relays.
async fn http_proxy(credentials: Option<&str>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let expected = credentials.map(|pair| format!("Basic {}", STANDARD.encode(pair)));
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (expected, log) = (expected.clone(), log.clone());
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or_default().to_owned();
                let authorization = lines
                    .filter_map(|line| line.split_once(": "))
                    .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
                    .map(|(_, value)| value.to_owned());
                log.lock().unwrap().push(format!(
                    "{request_line} | {}",
                    authorization.as_deref().unwrap_or("-")
                ));
                if expected.is_some() && authorization != expected {
                    let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\n\
                                   Proxy-Authenticate: Basic realm=\"test\"\r\n\
                                   Content-Length: 0\r\n\r\n";
                    let _ = client.write_all(refusal.as_bytes()).await;
                    return;
                }
                let destination = request_line.split(' ').nth(1).unwrap_or_default();
                let Ok(mut server) = TcpStream::connect(destination).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
                if client.write_all(established).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (url, seen)
}

/// How a test SOCKS5 proxy behaves.
#[derive(Clone, Copy)]
struct Socks {
    /// Username and password required (RFC 1929), or none.
    credentials: Option<(&'static str, &'static str)>,
    /// Answer every CONNECT with this reply code instead of connecting.
    refuse_with: Option<u8>,
}

/// A SOCKS5 proxy (RFC 1928) that records each destination as
/// `host:port`, then relays.
async fn socks_proxy(socks: Socks) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5h://{}", listener.local_addr().unwrap());
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let _ = socks_session(&mut client, socks, &log).await;
            });
        }
    });
    (url, seen)
}

async fn socks_session(client: &mut TcpStream, socks: Socks, log: &Seen) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods).await?;
    let wanted = if socks.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        return client.write_all(&[5, 0xff]).await;
    }
    client.write_all(&[5, wanted]).await?;
    if let Some((user, password)) = socks.credentials {
        let mut header = [0u8; 2];
        client.read_exact(&mut header).await?;
        let mut got_user = vec![0u8; usize::from(header[1])];
        client.read_exact(&mut got_user).await?;
        let got_password_length = client.read_u8().await?;
        let mut got_password = vec![0u8; usize::from(got_password_length)];
        client.read_exact(&mut got_password).await?;
        let ok =
            header[0] == 1 && got_user == user.as_bytes() && got_password == password.as_bytes();
        client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Ok(());
        }
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut address = [0u8; 4];
            client.read_exact(&mut address).await?;
            std::net::Ipv4Addr::from(address).to_string()
        }
        3 => {
            let length = client.read_u8().await?;
            let mut name = vec![0u8; usize::from(length)];
            client.read_exact(&mut name).await?;
            format!("name:{}", String::from_utf8_lossy(&name))
        }
        _ => return Ok(()),
    };
    let port = client.read_u16().await?;
    log.lock().unwrap().push(format!("{host}:{port}"));
    if let Some(code) = socks.refuse_with {
        return client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    }
    let host = host.trim_start_matches("name:").to_owned();
    let mut server = TcpStream::connect((host.as_str(), port)).await?;
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    tokio::io::copy_bidirectional(client, &mut server).await?;
    Ok(())
}

/// Connects with `builder` within the hang guard.
async fn connect(builder: ClientBuilder) -> Result<WebSocket<ClientStream>, Error> {
    tokio::time::timeout(HANG_GUARD, builder.connect())
        .await
        .expect("connect finished")
        .map(|(ws, _)| ws)
}

/// One message there and back.
async fn assert_echo(ws: &mut WebSocket<ClientStream>) {
    ws.send(Message::text("through the tunnel")).await.unwrap();
    let back = tokio::time::timeout(HANG_GUARD, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(back.as_text(), Some("through the tunnel"));
}

fn proxy_error(result: Result<WebSocket<ClientStream>, Error>) -> ProxyError {
    match result {
        Err(Error::Proxy(error)) => error,
        Err(other) => panic!("expected a proxy error, got {other:?}"),
        Ok(_) => panic!("expected a proxy error, connected"),
    }
}

#[tokio::test]
async fn http_connect_tunnels_ws() {
    let server = echo_server(ServerBuilder::new()).await;
    let (proxy, seen) = http_proxy(None).await;
    let builder =
        ClientBuilder::new(&format!("ws://{server}/chat")).proxy(Proxy::http(&proxy).unwrap());
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("CONNECT {server} HTTP/1.1 | -")]
    );
}

#[tokio::test]
async fn http_connect_answers_407_without_credentials() {
    let server = echo_server(ServerBuilder::new()).await;
    let (proxy, _) = http_proxy(Some("alice:s3cret")).await;
    let url = format!("ws://{server}/");
    let error =
        proxy_error(connect(ClientBuilder::new(&url).proxy(Proxy::http(&proxy).unwrap())).await);
    assert_eq!(
        error.status(),
        Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert_eq!(
        Error::Proxy(error).to_string(),
        "HTTP proxy refused CONNECT: 407 Proxy Authentication Required"
    );
    let wrong = proxy.replace("http://", "http://alice:guess@");
    let error =
        proxy_error(connect(ClientBuilder::new(&url).proxy(Proxy::http(&wrong).unwrap())).await);
    assert_eq!(
        error.status(),
        Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
}

#[tokio::test]
async fn http_connect_with_basic_credentials() {
    let server = echo_server(ServerBuilder::new()).await;
    let (proxy, seen) = http_proxy(Some("alice:s3cret@x")).await;
    // The password's '@' is percent-encoded in the URL, decoded on the wire.
    let proxy = proxy.replace("http://", "http://alice:s3cret%40x@");
    let builder =
        ClientBuilder::new(&format!("ws://{server}/")).proxy(Proxy::http(&proxy).unwrap());
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    let expected = format!("Basic {}", STANDARD.encode("alice:s3cret@x"));
    assert!(seen.lock().unwrap()[0].ends_with(&expected));
}

/// A `wss://` server for `localhost` with a fresh self-signed
/// certificate, and a client TLS configuration that trusts it.
async fn tls_echo_server() -> (SocketAddr, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let certificate = certified.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = sockeye::tls::crypto_provider();
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
    let address = echo_server(ServerBuilder::new().tls(Arc::new(server_config))).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).unwrap();
    let client_config = sockeye::tls::client_config_with_roots(roots);
    (address, Arc::new(client_config))
}

#[tokio::test]
async fn wss_runs_tls_inside_an_http_connect_tunnel() {
    let (server, tls) = tls_echo_server().await;
    let (proxy, seen) = http_proxy(None).await;
    let url = format!("wss://localhost:{}/", server.port());
    let builder = ClientBuilder::new(&url)
        .tls_config(tls)
        .proxy(Proxy::http(&proxy).unwrap());
    let mut ws = connect(builder).await.unwrap();
    assert!(matches!(ws.get_ref(), ClientStream::Tls(_)));
    assert_echo(&mut ws).await;
    let expected = format!("CONNECT localhost:{} HTTP/1.1 | -", server.port());
    assert_eq!(*seen.lock().unwrap(), [expected]);
}

#[tokio::test]
async fn socks5_without_authentication() {
    let server = echo_server(ServerBuilder::new()).await;
    let socks = Socks {
        credentials: None,
        refuse_with: None,
    };
    let (proxy, seen) = socks_proxy(socks).await;
    let builder =
        ClientBuilder::new(&format!("ws://{server}/")).proxy(Proxy::socks5(&proxy).unwrap());
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(*seen.lock().unwrap(), [server.to_string()]);
}

#[tokio::test]
async fn socks5_sends_names_for_the_proxy_to_resolve_and_carries_tls() {
    let (server, tls) = tls_echo_server().await;
    let socks = Socks {
        credentials: None,
        refuse_with: None,
    };
    let (proxy, seen) = socks_proxy(socks).await;
    let url = format!("wss://localhost:{}/", server.port());
    let builder = ClientBuilder::new(&url)
        .tls_config(tls)
        .proxy(Proxy::socks5(&proxy).unwrap());
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("name:localhost:{}", server.port())]
    );
}

#[tokio::test]
async fn socks5_username_and_password() {
    let server = echo_server(ServerBuilder::new()).await;
    let socks = Socks {
        credentials: Some(("bob", "hunter2")),
        refuse_with: None,
    };
    let (proxy, _) = socks_proxy(socks).await;
    let url = format!("ws://{server}/");
    let with = |userinfo: &str| {
        let proxy = proxy.replace("socks5h://", &format!("socks5h://{userinfo}"));
        ClientBuilder::new(&url).proxy(Proxy::socks5(&proxy).unwrap())
    };
    let mut ws = connect(with("bob:hunter2@")).await.unwrap();
    assert_echo(&mut ws).await;
    let error = proxy_error(connect(with("bob:wrong@")).await);
    assert!(matches!(error, ProxyError::AuthFailed), "{error:?}");
    let error = proxy_error(connect(with("")).await);
    assert!(
        matches!(
            error,
            ProxyError::NoAcceptableAuth {
                credentials_offered: false
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("requires authentication"));
}

#[tokio::test]
async fn socks5_refusal_carries_the_reply_code() {
    let socks = Socks {
        credentials: None,
        refuse_with: Some(5),
    };
    let (proxy, _) = socks_proxy(socks).await;
    let builder = ClientBuilder::new("ws://127.0.0.1:9/").proxy(Proxy::socks5(&proxy).unwrap());
    let error = proxy_error(connect(builder).await);
    assert!(matches!(error, ProxyError::SocksReply(5)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "SOCKS5 proxy could not connect: connection refused by the destination (reply 5)"
    );
}

#[tokio::test]
async fn an_unreachable_proxy_is_named_in_the_error() {
    // A port that was free a moment ago: nothing listens there now.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let proxy = Proxy::http(&format!("http://u:secret@127.0.0.1:{port}")).unwrap();
    let error = proxy_error(connect(ClientBuilder::new("ws://127.0.0.1:9/").proxy(proxy)).await);
    assert!(matches!(error, ProxyError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with(&format!(
        "cannot connect to proxy http://127.0.0.1:{port}: "
    )));
    assert!(!text.contains("secret"));
}

#[tokio::test]
async fn the_open_timeout_covers_a_silent_proxy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(HANG_GUARD).await;
        drop(tcp);
    });
    let builder = ClientBuilder::new("ws://127.0.0.1:9/")
        .proxy(Proxy::http(&format!("http://{address}")).unwrap())
        .open_timeout(Duration::from_millis(200));
    // The error names the proxy, not the destination.
    match connect(builder).await {
        Err(Error::Proxy(ProxyError::Timeout { proxy })) => {
            assert_eq!(proxy, format!("http://{address}"));
        }
        other => panic!("expected a proxy timeout, got {:?}", other.map(|_| ())),
    }
    silent.abort();
}

#[tokio::test]
async fn no_proxy_connects_directly() {
    let server = echo_server(ServerBuilder::new()).await;
    let (proxy, seen) = http_proxy(None).await;
    let builder = ClientBuilder::new(&format!("ws://{server}/"))
        .proxy(Proxy::http(&proxy).unwrap())
        .no_proxy();
    let mut ws = connect(builder).await.unwrap();
    assert_echo(&mut ws).await;
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn native_roots_load_from_the_os_store() {
    // A machine without a CA bundle has nothing to load: a clear error.
    match sockeye::tls::native_client_config() {
        Ok(config) => assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]),
        Err(error) => assert!(
            error.to_string().contains("no root certificates"),
            "{error}"
        ),
    }
    // A self-signed server is not in the OS store.
    let (server, _) = tls_echo_server().await;
    let url = format!("wss://localhost:{}/", server.port());
    let result = connect(ClientBuilder::new(&url).no_proxy().native_roots()).await;
    assert!(matches!(result, Err(Error::Tls(_))), "{:?}", result.err());
}
