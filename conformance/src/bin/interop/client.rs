//! `interop-peer client URL`: sockeye's tokio client running the suite's
//! checks against a server that speaks the path protocol (a Python
//! `websockets` or Node `ws` server). Each check opens its own
//! connections and has its own timeout; each prints one `RESULT` line.
//! With `--http2`, all of them are streams of one HTTP/2 connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, Version};
use serde_json::Value;
use sockeye::http2::Http2Session;
use sockeye::{ClientBuilder, ClientStream, CloseCode, Event, HttpVersion, Message, WebSocket};

use crate::args::ClientArgs;
use crate::compression::{self, Compression};
use crate::payload;
use crate::server::{SERVER_CLOSE_CODE, SERVER_CLOSE_REASON};

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_CLOSE_CODE: u16 = 4000;
const CLIENT_CLOSE_REASON: &str = "client bye ✓";

type Socket = WebSocket<ClientStream>;

struct Context {
    url: String,
    compression: Compression,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `--http2`: the connection every WebSocket goes over.
    session: Option<Http2Session>,
}

pub async fn run(options: ClientArgs) -> Result<(), String> {
    let tls = match &options.ca {
        Some(ca) => Some(crate::pki::client_config(ca)?),
        None => None,
    };
    let mut context = Context {
        url: options.url,
        compression: options.compression,
        tls,
        session: None,
    };
    if options.http2 {
        let options = builder(&context, &context.url);
        let session = tokio::time::timeout(CHECK_TIMEOUT, Http2Session::open(&options))
            .await
            .map_err(|_| "opening the HTTP/2 connection timed out".to_owned())?
            .map_err(|error| format!("cannot open an HTTP/2 connection: {error}"))?;
        context.session = Some(session);
    }
    for (index, check) in options.checks.iter().enumerate() {
        let tag = format!("rs-{}-{index}-{check}", std::process::id());
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, run_check(&context, check, &tag))
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {CHECK_TIMEOUT:?}")));
        match outcome {
            Ok(()) => println!("RESULT ok {check}"),
            Err(why) => println!("RESULT FAIL {check}: {}", why.replace('\n', " ")),
        }
    }
    Ok(())
}

async fn run_check(context: &Context, check: &str, tag: &str) -> Result<(), String> {
    let echo = format!("echo/{tag}");
    match check {
        "extensions" => {
            let (mut ws, response) = connect(context, &echo, &[]).await?;
            let extensions = header(&response, "sec-websocket-extensions");
            let deflate = extensions
                .as_deref()
                .is_some_and(|value| value.contains("permessage-deflate"));
            if deflate != context.compression.negotiated() {
                return Err(format!(
                    "Sec-WebSocket-Extensions is {extensions:?}, expected permessage-deflate {}",
                    if context.compression.negotiated() {
                        "negotiated"
                    } else {
                        "refused"
                    }
                ));
            }
            echo_one(&mut ws, Message::text("hello")).await?;
            close_normally(ws).await
        }
        "subprotocol" => {
            let (mut ws, response) = connect(context, &echo, &["x-unknown", "sockeye.v1"]).await?;
            let chosen = header(&response, "sec-websocket-protocol");
            if chosen.as_deref() != Some("sockeye.v1") {
                return Err(format!("server chose {chosen:?}, expected sockeye.v1"));
            }
            echo_one(&mut ws, Message::text("hello")).await?;
            close_normally(ws).await
        }
        "subprotocol-none" => {
            let (mut ws, response) = connect(context, &echo, &["x-unknown"]).await?;
            let chosen = header(&response, "sec-websocket-protocol");
            if chosen.is_some() {
                return Err(format!("server chose {chosen:?}, expected none"));
            }
            echo_one(&mut ws, Message::text("hello")).await?;
            close_normally(ws).await
        }
        "utf8" => {
            let (mut ws, _) = connect(context, &echo, &[]).await?;
            for text in payload::utf8_texts() {
                echo_one(&mut ws, Message::text(text)).await?;
            }
            close_normally(ws).await
        }
        "burst-1000" => {
            let (mut ws, _) = connect(context, &echo, &[]).await?;
            for index in 0..1000 {
                ws.send(Message::text(format!("burst {index}")))
                    .await
                    .map_err(|e| format!("send {index}: {e}"))?;
            }
            ws.flush().await.map_err(|e| format!("flush: {e}"))?;
            for index in 0..1000 {
                let message = receive(&mut ws).await?;
                let expected = format!("burst {index}");
                if message.as_text() != Some(expected.as_str()) {
                    return Err(format!(
                        "message {index} is {:?}, expected {expected:?}",
                        preview(&message)
                    ));
                }
            }
            close_normally(ws).await
        }
        "ping" => {
            let (mut ws, _) = connect(context, &echo, &[]).await?;
            ws.ping(Bytes::from_static(b"cli-ping"))
                .await
                .map_err(|e| format!("ping: {e}"))?;
            loop {
                match ws.recv_event().await {
                    Some(Ok(Event::Pong(data))) if data.as_ref() == b"cli-ping" => break,
                    Some(Ok(Event::Pong(data))) => {
                        return Err(format!("pong carries {data:?}, expected \"cli-ping\""));
                    }
                    Some(Ok(Event::Closed(closed))) => {
                        return Err(format!("closed before the pong: {closed:?}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("before the pong: {error}")),
                    None => return Err("ended before the pong".to_owned()),
                }
            }
            close_normally(ws).await
        }
        "server-ping" => {
            let (mut ws, _) = connect(context, &format!("ping/{tag}"), &[]).await?;
            let mut pinged = false;
            loop {
                match ws.recv_event().await {
                    Some(Ok(Event::Ping(data))) => {
                        if data.as_ref() != b"srv-ping" {
                            return Err(format!("ping carries {data:?}, expected \"srv-ping\""));
                        }
                        pinged = true;
                    }
                    Some(Ok(Event::Message(message))) => {
                        if message.as_text() != Some("pong:srv-ping") {
                            return Err(format!(
                                "server says {:?}, expected \"pong:srv-ping\"",
                                preview(&message)
                            ));
                        }
                        break;
                    }
                    Some(Ok(Event::Closed(closed))) => {
                        return Err(format!("closed before the server saw a pong: {closed:?}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("before the pong: {error}")),
                    None => return Err("ended before the pong".to_owned()),
                }
            }
            if !pinged {
                return Err("the server saw a pong, but no ping event was reported".to_owned());
            }
            close_normally(ws).await
        }
        "close-client" => {
            let (mut ws, _) = connect(context, &echo, &[]).await?;
            let closed = ws
                .close(CloseCode::new(CLIENT_CLOSE_CODE), CLIENT_CLOSE_REASON)
                .await
                .map_err(|e| format!("close: {e}"))?;
            if let Some(error) = &closed.error {
                return Err(format!("closing handshake not clean: {error}"));
            }
            let Some(reply) = &closed.received else {
                return Err("the server's Close carried no code".to_owned());
            };
            let seen = server_close(context, tag).await?;
            if seen.0 != Some(u64::from(CLIENT_CLOSE_CODE))
                || seen.1.as_deref() != Some(CLIENT_CLOSE_REASON)
            {
                return Err(format!(
                    "server saw close {:?} {:?}, expected {CLIENT_CLOSE_CODE} {CLIENT_CLOSE_REASON:?}",
                    seen.0, seen.1
                ));
            }
            if reply.code.as_u16() != CLIENT_CLOSE_CODE {
                // RFC 6455 section 5.5.1: the reply typically echoes the
                // code; any code is allowed, so this is only noted.
                eprintln!("note: server replied with {}", reply.code);
            }
            Ok(())
        }
        "close-server" => {
            let (mut ws, _) = connect(context, &format!("close/{tag}"), &[]).await?;
            let closed = loop {
                match ws.recv_event().await {
                    Some(Ok(Event::Closed(closed))) => break closed,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("before the close: {error}")),
                    None => return Err("ended without a Closed event".to_owned()),
                }
            };
            if let Some(error) = &closed.error {
                return Err(format!("closing handshake not clean: {error}"));
            }
            let received = closed
                .received
                .as_ref()
                .map(|frame| (frame.code.as_u16(), frame.reason.as_str()));
            if received != Some((SERVER_CLOSE_CODE, SERVER_CLOSE_REASON)) {
                return Err(format!(
                    "received close {received:?}, expected {SERVER_CLOSE_CODE} {SERVER_CLOSE_REASON:?}"
                ));
            }
            let seen = server_close(context, tag).await?;
            if seen.0.is_none() {
                return Err("the server saw no code in the client's reply".to_owned());
            }
            Ok(())
        }
        "http2-shared" => http2_shared(context, tag).await,
        other => {
            let (kind, size) = other.split_once('-').ok_or("unknown check")?;
            let size = payload::size(size).ok_or("unknown check")?;
            let message = match kind {
                "text" => Message::text(payload::text(size)),
                "binary" => Message::binary(payload::binary(size)),
                _ => return Err("unknown check".to_owned()),
            };
            let (mut ws, _) = connect(context, &echo, &[]).await?;
            echo_one(&mut ws, message).await?;
            close_normally(ws).await
        }
    }
}

async fn connect(
    context: &Context,
    path: &str,
    subprotocols: &[&str],
) -> Result<(Socket, Response<()>), String> {
    let url = format!("{}/{path}", context.url);
    let mut builder = builder(context, &url);
    if !subprotocols.is_empty() {
        builder = builder.subprotocols(subprotocols.iter().copied());
    }
    builder = compression::client(builder, context.compression)?;
    let Some(session) = &context.session else {
        return builder
            .connect()
            .await
            .map_err(|e| format!("connect to {url}: {e}"));
    };
    let (ws, response) = session
        .connect(&builder)
        .await
        .map_err(|e| format!("connect to {url} over HTTP/2: {e}"))?;
    if response.version() != Version::HTTP_2 {
        return Err(format!(
            "{url} opened over {:?}, not HTTP/2",
            response.version()
        ));
    }
    Ok((ws, response))
}

/// The options every connection shares.
fn builder(context: &Context, url: &str) -> ClientBuilder {
    let mut builder = ClientBuilder::new(url)
        .no_proxy()
        .open_timeout(Duration::from_secs(10));
    if let Some(tls) = &context.tls {
        builder = builder.tls_config(tls.clone());
    }
    if context.session.is_some() {
        builder = builder.http_version(HttpVersion::Http2);
    }
    builder
}

/// Sends `message` and checks the next message is the same.
async fn echo_one(ws: &mut Socket, message: Message) -> Result<(), String> {
    let text = message.is_text();
    let sent = message.as_bytes().to_vec();
    ws.send(message)
        .await
        .map_err(|e| format!("send {} bytes: {e}", sent.len()))?;
    let echoed = receive(ws).await?;
    if echoed.is_text() != text {
        return Err(format!(
            "sent a {} message, the echo is {}",
            if text { "text" } else { "binary" },
            if echoed.is_text() { "text" } else { "binary" }
        ));
    }
    if echoed.as_bytes() != sent.as_slice() {
        return Err(payload::describe_mismatch(&sent, echoed.as_bytes()));
    }
    Ok(())
}

async fn receive(ws: &mut Socket) -> Result<Message, String> {
    match ws.recv().await {
        Some(Ok(message)) => Ok(message),
        Some(Err(error)) => Err(format!("receive: {error}")),
        None => Err(format!(
            "the connection closed instead of echoing: {:?}",
            ws.closed()
        )),
    }
}

async fn close_normally(mut ws: Socket) -> Result<(), String> {
    let closed = ws
        .close(CloseCode::NORMAL, "")
        .await
        .map_err(|e| format!("close: {e}"))?;
    match &closed.error {
        None => Ok(()),
        Some(error) => Err(format!("closing handshake not clean: {error}")),
    }
}

/// The Close the server received on TAG's connection (code, reason), from
/// its `/report/TAG`.
async fn server_close(
    context: &Context,
    tag: &str,
) -> Result<(Option<u64>, Option<String>), String> {
    let report = server_report(context, tag).await?;
    let closed = report["events"]
        .as_array()
        .and_then(|events| events.iter().find(|event| event["event"] == "closed"))
        .ok_or_else(|| format!("the server recorded no close: {report}"))?;
    Ok((
        closed["code"].as_u64(),
        closed["reason"].as_str().map(str::to_owned),
    ))
}

/// What the server recorded for TAG, from its `/report/TAG`.
async fn server_report(context: &Context, tag: &str) -> Result<Value, String> {
    let (mut ws, _) = connect(context, &format!("report/{tag}"), &[]).await?;
    let message = receive(&mut ws).await?;
    let _ = ws.close(CloseCode::NORMAL, "").await;
    serde_json::from_slice(message.as_bytes()).map_err(|e| format!("report is not JSON: {e}"))
}

/// `http2-shared`: three WebSockets at once on the session's connection,
/// text and binary echoed on each, each closed on its own while the
/// others go on; the server must have seen them on one HTTP/2
/// connection, each closed with 1000 and its stream ended with
/// END_STREAM, not reset.
async fn http2_shared(context: &Context, tag: &str) -> Result<(), String> {
    let session = context
        .session
        .as_ref()
        .ok_or("http2-shared needs --http2")?;
    let tags: Vec<String> = (0..3).map(|index| format!("{tag}-{index}")).collect();
    let mut sockets = Vec::new();
    for tag in &tags {
        let (ws, _) = connect(context, &format!("echo/{tag}"), &[]).await?;
        sockets.push(Some(ws));
    }
    let binary = payload::binary(70_000);
    for order in [1, 0, 2] {
        for ws in sockets.iter_mut().flatten() {
            echo_one(ws, Message::text(format!("to {order}"))).await?;
            echo_one(ws, Message::binary(binary.clone())).await?;
        }
        let ws = sockets[order].take().ok_or("closed twice")?;
        close_normally(ws).await?;
    }
    if session.is_closed() {
        return Err("the HTTP/2 connection ended with its WebSockets".to_owned());
    }
    let mut connections = Vec::new();
    for tag in &tags {
        let report = server_report(context, tag).await?;
        let events = report["events"].as_array().cloned().unwrap_or_default();
        let find = |kind: &str| events.iter().find(|event| event["event"] == kind).cloned();
        let open = find("open").ok_or_else(|| format!("{tag}: no open event: {report}"))?;
        connections.push(open["connection"].clone());
        let closed = find("closed").ok_or_else(|| format!("{tag}: no closed event: {report}"))?;
        if closed["code"] != 1000 {
            return Err(format!("{tag}: the server saw close {}", closed["code"]));
        }
        if find("end_stream").is_none() || find("reset").is_some() {
            return Err(format!(
                "{tag}: the stream did not end with END_STREAM: {report}"
            ));
        }
    }
    if connections[0].is_null() || connections.iter().any(|c| *c != connections[0]) {
        return Err(format!(
            "not one HTTP/2 connection: the server saw {connections:?}"
        ));
    }
    Ok(())
}

fn header(response: &Response<()>, name: &str) -> Option<String> {
    let values: Vec<&str> = response
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn preview(message: &Message) -> String {
    let bytes = message.as_bytes();
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    if bytes.len() > 40 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}
