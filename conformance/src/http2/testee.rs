//! The testee over HTTP/2: sockeye's server (`ServerBuilder::serve_tcp`,
//! which serves HTTP/2 on a cleartext connection that starts with the
//! prior-knowledge preface) and sockeye's client side of an extended
//! CONNECT, each handing every WebSocket to an echo loop chosen by the
//! caller. Each WebSocket is found by its request's path, which the
//! runner makes unique per case.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request, Response, StatusCode};
use sockeye::http2::H2Stream;
use sockeye::http2::Http2Session;
use sockeye::proto::extension::deflate::DeflateConfig;
use sockeye::proto::handshake::{ClientHandshake, accept_key};
use sockeye::proto::{Config, Connection, Role};
use sockeye::{ClientBuilder, ClientStream, ServerBuilder, ServerStream, WebSocket};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// How long connecting and the opening handshake may take.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a testee server does with each WebSocket: `(ws, path)`.
pub(crate) type OnServerSocket =
    Arc<dyn Fn(WebSocket<ServerStream>, String) -> BoxFuture + Send + Sync>;

/// A boxed future of the testee's runtime.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Things of one case kept by path until its side picks them up.
#[derive(Debug)]
pub(crate) struct Registry<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T: Default> Registry<T> {
    /// Finds (or makes) the entry of `path`: the runner and the testee
    /// each look it up, whichever comes first.
    pub(crate) fn entry(&self, path: &str) -> Arc<T> {
        let mut map = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        Arc::clone(map.entry(path.to_string()).or_default())
    }

    /// Forgets the entry of `path`.
    pub(crate) fn forget(&self, path: &str) {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(path);
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry(Mutex::new(HashMap::new()))
    }
}

/// Starts a sockeye server on an ephemeral port of 127.0.0.1: every
/// connection is served by `ServerBuilder::serve_tcp` with `server`, and
/// each WebSocket goes to `on_socket` with its request's path. It runs
/// until the runtime shuts down.
pub(crate) fn start_server(
    runtime: &Runtime,
    server: ServerBuilder,
    on_socket: OnServerSocket,
) -> std::io::Result<SocketAddr> {
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    eprintln!("conformance HTTP/2 echo server: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let server = server.clone();
            let on_socket = Arc::clone(&on_socket);
            tokio::spawn(async move {
                let handler = move |ws: WebSocket<ServerStream>, request: Request<()>| {
                    on_socket(ws, request.uri().path().to_string())
                };
                if let Err(error) = server.serve_tcp(tcp, handler).await {
                    eprintln!("conformance HTTP/2 echo server: a connection failed: {error}");
                }
            });
        }
    });
    Ok(addr)
}

/// The testee client's HTTP/2 connection to the runner, shared by every
/// client case (made on first use, and again if it ended): sockeye's
/// [`Http2Session`], and for the runner's self-test a connection of the
/// `h2` crate's own.
#[derive(Debug)]
pub(crate) struct ClientConnection {
    addr: SocketAddr,
    session: tokio::sync::Mutex<Option<Http2Session>>,
    send: tokio::sync::Mutex<Option<SendRequest<Bytes>>>,
}

impl ClientConnection {
    /// A connection to the runner's HTTP/2 server at `addr`, not yet made.
    pub(crate) fn new(addr: SocketAddr) -> ClientConnection {
        ClientConnection {
            addr,
            session: tokio::sync::Mutex::new(None),
            send: tokio::sync::Mutex::new(None),
        }
    }

    /// The session, opened (by prior knowledge) on first use or when the
    /// last one ended.
    async fn session(&self) -> Result<Http2Session, String> {
        let mut session = self.session.lock().await;
        if let Some(open) = session.as_ref()
            && !open.is_closed()
        {
            return Ok(open.clone());
        }
        let builder = ClientBuilder::new(&format!("ws://{}/", self.addr))
            .no_proxy()
            .open_timeout(OPEN_TIMEOUT);
        let opened = Http2Session::open(&builder)
            .await
            .map_err(|error| format!("Http2Session::open failed: {error}"))?;
        *session = Some(opened.clone());
        Ok(opened)
    }

    async fn sender(&self) -> Result<SendRequest<Bytes>, String> {
        let mut send = self.send.lock().await;
        if let Some(ready) = send.as_ref()
            && let Ok(ready) = ready.clone().ready().await
        {
            return Ok(ready);
        }
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|error| format!("could not connect to the runner: {error}"))?;
        let _ = tcp.set_nodelay(true);
        // The data-frame budget as sockeye's server sets it
        // (crates/sockeye/src/h2/server.rs): h2's default closes the
        // connection once ~100 small frames wait unread.
        let (made, connection) = h2::client::Builder::new()
            .enable_push(false)
            .data_frame_budget(65_535 * 255)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|error| format!("the HTTP/2 handshake with the runner failed: {error}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        *send = Some(made.clone());
        made.ready()
            .await
            .map_err(|error| format!("the HTTP/2 connection is not ready: {error}"))
    }
}

/// Opens a WebSocket to `path` on the runner as sockeye's client over
/// HTTP/2 ([`Http2Session`], one connection for every case), with
/// `config`, the permessage-deflate policy `deflate` and, if given, a raw
/// `extensions_header` offered instead of the policy's.
pub(crate) async fn connect(
    connection: &ClientConnection,
    path: &str,
    config: Config,
    deflate: DeflateConfig,
    extensions_header: Option<&str>,
) -> Result<WebSocket<ClientStream>, String> {
    let session = connection.session().await?;
    let mut builder = session
        .builder(path)
        .config(config)
        .deflate(deflate)
        .open_timeout(OPEN_TIMEOUT);
    if let Some(header) = extensions_header {
        builder = builder.extensions_header(header);
    }
    let (ws, _response) = session
        .connect(&builder)
        .await
        .map_err(|error| error.to_string())?;
    Ok(ws)
}

/// The runner's self-test's client (`Fault::KeepsStreamOpen`, which wraps
/// the stream in a faulty transport): the opening handshake written on
/// the library's public pieces (the sans-I/O `ClientHandshake` builds the
/// offer and checks the answer, the `200`'s headers presented to it as
/// the `101` they stand for; the `h2` crate sends the extended CONNECT),
/// returning the stream and the engine. Before sockeye's HTTP/2 client
/// existed, this was the client-role testee.
pub(crate) async fn open(
    connection: &ClientConnection,
    path: &str,
    config: Config,
    deflate: DeflateConfig,
    extensions_header: Option<&str>,
) -> Result<(H2Stream, Connection), String> {
    let authority = connection.addr.to_string();
    let url = format!("ws://{authority}{path}");
    let mut builder = ClientHandshake::builder(url);
    match extensions_header {
        Some(header) => builder = builder.extensions_header(header),
        None => {
            if let Some(offer) = deflate.offer() {
                builder = builder.extension(offer);
            }
        }
    }
    let handshake = builder
        .build()
        .map_err(|error| format!("the client handshake did not build: {error}"))?;
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{authority}{path}"))
        .header("sec-websocket-version", "13");
    for value in handshake
        .request()
        .headers()
        .get_all("sec-websocket-extensions")
    {
        request = request.header("sec-websocket-extensions", value);
    }
    let mut request = request
        .body(())
        .map_err(|error| format!("the CONNECT did not build: {error}"))?;
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let mut send = connection.sender().await?;
    let (response, stream) = send
        .send_request(request, false)
        .map_err(|error| format!("sending the extended CONNECT failed: {error}"))?;
    let response = tokio::time::timeout(OPEN_TIMEOUT, response)
        .await
        .map_err(|_| "no response to the extended CONNECT".to_string())?
        .map_err(|error| format!("the extended CONNECT failed: {error}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!(
            "the extended CONNECT was answered {}",
            response.status()
        ));
    }
    let (parts, body) = response.into_parts();
    let mut switching = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header(
            "sec-websocket-accept",
            accept_key(handshake.key().as_bytes()),
        );
    for (name, value) in &parts.headers {
        switching = switching.header(name, value);
    }
    let switching = switching
        .body(())
        .map_err(|error| format!("the answer's headers: {error}"))?;
    let negotiated = handshake
        .finish(&switching)
        .map_err(|error| format!("the client refused the answer: {error}"))?;
    let mut engine = Connection::new(Role::Client, config);
    if let Some(params) = negotiated.deflate {
        engine.enable_deflate(params, &deflate);
    }
    Ok((H2Stream::new(stream, body), engine))
}
