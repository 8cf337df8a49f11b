//! `interop-peer server`: sockeye's tokio server speaking the suite's path
//! protocol, reporting what it saw, and (with `--web`) serving the
//! Chromium page on the same port.
//!
//! Paths (`TAG` names one check's connections):
//! - `/echo/TAG`: echoes every message; records Pongs and the Close it
//!   receives.
//! - `/ping/TAG`: sends a Ping `srv-ping` at once; when its Pong arrives,
//!   records it and sends the text `pong:PAYLOAD`; then echoes.
//! - `/close/TAG`: starts the closing handshake at once with 4001 and
//!   `server bye ✓`; records the client's reply.
//! - `/report/TAG`: sends what was recorded for TAG as one JSON text (after
//!   waiting up to 3 s for TAG's connection to end), then closes with 1000.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sockeye::{CloseCode, Closed, Event, Message, ServerBuilder, ServerStream, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::args::ServerArgs;
use crate::{compression, pki};

/// The subprotocols served, most preferred first.
pub const SUBPROTOCOLS: [&str; 2] = ["sockeye.v2", "sockeye.v1"];
/// The Close the server sends on `/close/TAG`.
pub const SERVER_CLOSE_CODE: u16 = 4001;
pub const SERVER_CLOSE_REASON: &str = "server bye ✓";
/// The server stops by itself after this long, whatever the driver does.
const LIFETIME: Duration = Duration::from_secs(600);
/// At most this many tags are remembered (a bound, not a limit a run
/// reaches).
const MAX_TAGS: usize = 10_000;
const MAX_HEAD: usize = 16 * 1024;

/// What the server saw, by tag.
#[derive(Default)]
struct Records {
    by_tag: Mutex<HashMap<String, Vec<Value>>>,
}

impl Records {
    /// Prints `record` as a JSON line and keeps it under `tag`.
    fn add(&self, tag: &str, mut record: Value) {
        record["tag"] = json!(tag);
        println!("{record}");
        if let Ok(mut by_tag) = self.by_tag.lock()
            && (by_tag.len() < MAX_TAGS || by_tag.contains_key(tag))
        {
            by_tag.entry(tag.to_owned()).or_default().push(record);
        }
    }

    fn get(&self, tag: &str) -> Vec<Value> {
        self.by_tag
            .lock()
            .map(|by_tag| by_tag.get(tag).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn has_closed(&self, tag: &str) -> bool {
        self.get(tag)
            .iter()
            .any(|record| record["event"] == "closed")
    }
}

struct Shared {
    builder: ServerBuilder,
    records: Records,
    web: Option<PathBuf>,
}

pub async fn run(options: ServerArgs) -> Result<(), String> {
    let mut builder = ServerBuilder::new().subprotocols(SUBPROTOCOLS);
    if options.any_origin {
        builder = builder.allow_any_origin();
    }
    builder = compression::server(builder, options.compression)?;
    let secure = options.tls_dir.is_some();
    if let Some(dir) = &options.tls_dir {
        builder = builder.tls(pki::server_config(dir)?);
    }
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let scheme = if secure { "wss" } else { "ws" };
    eprintln!("sockeye: listening on {scheme}://{address}");
    println!(
        "{}",
        json!({"event": "listening", "url": format!("{scheme}://{address}")})
    );
    let shared = Arc::new(Shared {
        builder,
        records: Records::default(),
        // Pages are served over plain HTTP only.
        web: options.web.filter(|_| !secure),
    });
    let http2 = options.http2;
    let serve = async {
        loop {
            match listener.accept().await {
                Ok((tcp, _)) if http2 => {
                    tokio::spawn(handle_any(tcp, shared.clone()));
                }
                Ok((tcp, _)) => {
                    tokio::spawn(handle(tcp, shared.clone()));
                }
                Err(error) => eprintln!("interop-peer: accept: {error}"),
            }
        }
    };
    // The driver kills the server; this bounds it if the driver cannot.
    let _ = tokio::time::timeout(LIFETIME, serve).await;
    Ok(())
}

async fn handle(tcp: TcpStream, shared: Arc<Shared>) {
    if let Some(web) = &shared.web {
        match sniff(&tcp).await {
            Some(Sniffed::Http(head_len)) => {
                serve_file(tcp, head_len, web).await;
                return;
            }
            Some(Sniffed::WebSocket) => {}
            None => return,
        }
    }
    let path = Arc::new(Mutex::new(None));
    let slot = path.clone();
    let builder = shared.builder.clone().filter_request(move |request| {
        let offered = |name: &str| {
            request
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Ok(mut slot) = slot.lock() {
            *slot = Some((
                request.uri().path().to_owned(),
                offered("sec-websocket-extensions"),
                offered("sec-websocket-protocol"),
            ));
        }
        None
    });
    let ws = match builder.accept_tcp(tcp).await {
        Ok(ws) => ws,
        Err(error) => {
            println!(
                "{}",
                json!({"event": "handshake-error", "error": error.to_string()})
            );
            return;
        }
    };
    let Some((path, extensions, protocols)) = path.lock().ok().and_then(|mut slot| slot.take())
    else {
        return;
    };
    serve_websocket(ws, &path, &extensions, &protocols, &shared).await;
}

/// `--http2`: HTTP/1.1 or HTTP/2 by `serve_tcp`, each WebSocket (an
/// HTTP/2 connection may carry many) served by its path.
async fn handle_any(tcp: TcpStream, shared: Arc<Shared>) {
    let builder = shared.builder.clone();
    let served = builder
        .serve_tcp(tcp, move |ws, request| {
            let shared = shared.clone();
            async move {
                let offered = |name: &str| {
                    request
                        .headers()
                        .get_all(name)
                        .iter()
                        .filter_map(|value| value.to_str().ok())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let extensions = offered("sec-websocket-extensions");
                let protocols = offered("sec-websocket-protocol");
                let path = request.uri().path().to_owned();
                serve_websocket(ws, &path, &extensions, &protocols, &shared).await;
            }
        })
        .await;
    if let Err(error) = served {
        println!(
            "{}",
            json!({"event": "handshake-error", "error": error.to_string()})
        );
    }
}

/// Serves one WebSocket by its path (see the module's docs).
async fn serve_websocket(
    ws: WebSocket<ServerStream>,
    path: &str,
    extensions: &str,
    protocols: &str,
    shared: &Shared,
) {
    let (kind, tag) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let records = &shared.records;
    if kind != "report" {
        records.add(
            tag,
            json!({
                "event": "open",
                "path": path,
                "offered_extensions": extensions,
                "offered_protocols": protocols,
                "http2": matches!(ws.get_ref(), ServerStream::Http2(_)),
            }),
        );
    }
    match kind {
        "echo" => echo(ws, tag, records).await,
        "ping" => ping_then_echo(ws, tag, records).await,
        "close" => close(ws, tag, records).await,
        "report" => report(ws, tag, records).await,
        _ => {
            let mut ws = ws;
            let _ = ws.close(CloseCode::POLICY_VIOLATION, "unknown path").await;
        }
    }
}

/// Echoes messages until the connection ends; records Pongs and the end.
async fn echo(mut ws: WebSocket<ServerStream>, tag: &str, records: &Records) {
    while let Some(event) = ws.recv_event().await {
        match event {
            Ok(Event::Message(message)) => {
                if let Err(error) = ws.send(message).await {
                    records.add(tag, json!({"event": "error", "error": error.to_string()}));
                    return;
                }
            }
            Ok(Event::Pong(payload)) => records.add(tag, pong(&payload)),
            Ok(Event::Closed(closed)) => {
                records.add(tag, closed_record(&closed));
                return;
            }
            Ok(_) => {}
            Err(error) => {
                records.add(tag, json!({"event": "error", "error": error.to_string()}));
                return;
            }
        }
    }
}

async fn ping_then_echo(mut ws: WebSocket<ServerStream>, tag: &str, records: &Records) {
    if let Err(error) = ws.ping(Bytes::from_static(b"srv-ping")).await {
        records.add(tag, json!({"event": "error", "error": error.to_string()}));
        return;
    }
    loop {
        match ws.recv_event().await {
            Some(Ok(Event::Pong(payload))) => {
                records.add(tag, pong(&payload));
                let text = format!("pong:{}", String::from_utf8_lossy(&payload));
                if ws.send(Message::text(text)).await.is_err() {
                    return;
                }
                break;
            }
            Some(Ok(Event::Message(message))) => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            Some(Ok(Event::Closed(closed))) => {
                records.add(tag, closed_record(&closed));
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                records.add(tag, json!({"event": "error", "error": error.to_string()}));
                return;
            }
            None => return,
        }
    }
    echo(ws, tag, records).await;
}

async fn close(mut ws: WebSocket<ServerStream>, tag: &str, records: &Records) {
    match ws
        .close(CloseCode::new(SERVER_CLOSE_CODE), SERVER_CLOSE_REASON)
        .await
    {
        Ok(closed) => records.add(tag, closed_record(&closed)),
        Err(error) => records.add(tag, json!({"event": "error", "error": error.to_string()})),
    }
}

async fn report(mut ws: WebSocket<ServerStream>, tag: &str, records: &Records) {
    // The connection under test may still be finishing its closing
    // handshake on this side.
    for _ in 0..150 {
        if records.has_closed(tag) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = json!({"tag": tag, "events": records.get(tag)}).to_string();
    if ws.send(Message::text(report)).await.is_ok() {
        let _ = ws.close(CloseCode::NORMAL, "").await;
    }
}

fn pong(payload: &[u8]) -> Value {
    json!({"event": "pong", "data": String::from_utf8_lossy(payload)})
}

/// How a connection ended, from the server's side: `code` and `reason`
/// are those of the Close frame the client sent.
fn closed_record(closed: &Closed) -> Value {
    json!({
        "event": "closed",
        "code": closed.received.as_ref().map(|frame| frame.code.as_u16()),
        "reason": closed.received.as_ref().map(|frame| frame.reason.as_str()),
        "sent_code": closed.sent.as_ref().map(|frame| frame.code.as_u16()),
        "initiated_by": format!("{:?}", closed.initiated_by),
        "clean": closed.error.is_none(),
        "error": closed.error.as_ref().map(ToString::to_string),
    })
}

enum Sniffed {
    /// A plain HTTP request whose head is this long.
    Http(usize),
    WebSocket,
}

/// Peeks at the request head: a WebSocket upgrade is left for sockeye to
/// read, anything else is a file request.
async fn sniff(tcp: &TcpStream) -> Option<Sniffed> {
    let mut buffer = vec![0; MAX_HEAD];
    for _ in 0..500 {
        let peeked = tcp.peek(&mut buffer).await.ok()?;
        if peeked == 0 {
            return None;
        }
        let head = &buffer[..peeked];
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let upgrade = head.lines().any(|line| {
                line.split_once(':').is_some_and(|(name, value)| {
                    name.trim() == "upgrade" && value.contains("websocket")
                })
            });
            return Some(if upgrade {
                Sniffed::WebSocket
            } else {
                Sniffed::Http(end + 4)
            });
        }
        if peeked == buffer.len() {
            // Too long for a page request: let the handshake refuse it.
            return Some(Sniffed::WebSocket);
        }
        // Peeking again returns at once with the same bytes: wait a little
        // for the rest of the head.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Answers a GET for a file directly in `dir` (no subfolders, no dot
/// files), then closes.
async fn serve_file(mut tcp: TcpStream, head_len: usize, dir: &Path) {
    let mut head = vec![0; head_len];
    if tcp.read_exact(&mut head).await.is_err() {
        return;
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let name = target.split(['?', '#']).next().unwrap_or("");
    let name = match name.trim_start_matches('/') {
        "" => "index.html",
        name => name,
    };
    let valid = !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
    let file = if method == "GET" && valid {
        std::fs::read(dir.join(name)).ok()
    } else {
        None
    };
    let (status, kind, body) = match file {
        Some(body) => ("200 OK", content_type(name), body),
        None => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found\n".to_vec(),
        ),
    };
    println!(
        "{}",
        json!({"event": "http", "method": method, "target": target, "status": status})
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.write_all(&body).await;
    let _ = tcp.shutdown().await;
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
