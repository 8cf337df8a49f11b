//! `interop-peer client URL`: sockeye's tokio client running the suite's
//! checks against a server that speaks the path protocol (a Python
//! `websockets` or Node `ws` server). Each check opens its own
//! connections and has its own timeout; each prints one `RESULT` line.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use serde_json::Value;
use sockeye::{ClientBuilder, ClientStream, CloseCode, Event, Message, WebSocket};

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
}

pub async fn run(options: ClientArgs) -> Result<(), String> {
    let tls = match &options.ca {
        Some(ca) => Some(crate::pki::client_config(ca)?),
        None => None,
    };
    let context = Context {
        url: options.url,
        compression: options.compression,
        tls,
    };
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
    let mut builder = ClientBuilder::new(&url)
        .no_proxy()
        .open_timeout(Duration::from_secs(10));
    if !subprotocols.is_empty() {
        builder = builder.subprotocols(subprotocols.iter().copied());
    }
    if let Some(tls) = &context.tls {
        builder = builder.tls_config(tls.clone());
    }
    builder = compression::client(builder, context.compression)?;
    builder
        .connect()
        .await
        .map_err(|e| format!("connect to {url}: {e}"))
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
    let (mut ws, _) = connect(context, &format!("report/{tag}"), &[]).await?;
    let message = receive(&mut ws).await?;
    let _ = ws.close(CloseCode::NORMAL, "").await;
    let report: Value = serde_json::from_slice(message.as_bytes())
        .map_err(|e| format!("report is not JSON: {e}"))?;
    let closed = report["events"]
        .as_array()
        .and_then(|events| events.iter().find(|event| event["event"] == "closed"))
        .ok_or_else(|| format!("the server recorded no close: {report}"))?;
    Ok((
        closed["code"].as_u64(),
        closed["reason"].as_str().map(str::to_owned),
    ))
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
