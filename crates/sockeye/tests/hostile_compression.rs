//! Hostile permessage-deflate input against the real tokio server over
//! loopback: decompression bombs in one frame and in fragments, window
//! amplification under context takeover, a malformed block after the
//! limit, and RSV1 where it may not be. Each case is bounded in time and
//! checks the close code.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::DeflateEncoder;
use sockeye::ServerBuilder;
use sockeye::proto::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GUARD: Duration = Duration::from_secs(20);
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LIMIT: usize = 1 << 20;

/// An echo server with a 1 MiB message limit.
async fn server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let builder = ServerBuilder::new().config(Config::new().max_message_size(LIMIT));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let builder = builder.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = builder.accept_tcp(tcp).await else {
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
    addr
}

/// Connects and completes a handshake offering `extensions`; returns the
/// stream and the response head.
async fn open(addr: std::net::SocketAddr, extensions: Option<&str>) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let offer = extensions
        .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (tcp, head)
}

fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Raw DEFLATE of `chunks` in sequence, sync-flushed, tail removed.
fn deflate_stream(encoder: &mut DeflateEncoder<Vec<u8>>, data: &[u8]) -> Vec<u8> {
    encoder.write_all(data).unwrap();
    encoder.flush().unwrap();
    let out = std::mem::take(encoder.get_mut());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out[..out.len() - 4].to_vec()
}

/// `size` zeros, deflated.
fn bomb(size: usize) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        encoder.write_all(&zeros).unwrap();
    }
    deflate_stream(&mut encoder, b"")
}

/// Writes `wire` (stopping quietly if the server hangs up first) and
/// returns the code of the Close frame the server sends, skipping data.
async fn close_code_after(tcp: &mut TcpStream, wire: &[u8]) -> Option<u16> {
    let (mut read, mut write) = tcp.split();
    let writer = async {
        for chunk in wire.chunks(64 * 1024) {
            if write.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // Parse whole frames from the front of `buf`.
            while buf.len() >= 2 {
                let (len, at) = match buf[1] & 0x7f {
                    126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                    127 if buf.len() >= 10 => (
                        u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => break,
                    len => (len as usize, 2),
                };
                if buf.len() < at + len {
                    break;
                }
                if buf[0] & 0x0f == 8 {
                    return (len >= 2).then(|| u16::from_be_bytes([buf[at], buf[at + 1]]));
                }
                buf.drain(..at + len);
            }
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let (_, code) = tokio::join!(writer, reader);
    code
}

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("bounded in time")
}

#[tokio::test]
async fn a_one_frame_bomb_closes_with_1009() {
    bounded(async {
        let addr = server().await;
        let (mut tcp, head) = open(addr, Some("permessage-deflate")).await;
        assert!(head.contains("permessage-deflate"));
        let payload = bomb(1 << 30);
        assert!(payload.len() < 2 << 20);
        let code = close_code_after(&mut tcp, &frame(true, true, 2, &payload)).await;
        assert_eq!(code, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn a_fragmented_bomb_closes_with_1009() {
    bounded(async {
        let addr = server().await;
        let (mut tcp, _) = open(addr, Some("permessage-deflate")).await;
        let payload = bomb(64 << 20);
        let pieces: Vec<&[u8]> = payload.chunks(payload.len().div_ceil(200)).collect();
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let first = i == 0;
            wire.extend(frame(
                i + 1 == pieces.len(),
                first,
                if first { 2 } else { 0 },
                piece,
            ));
        }
        assert_eq!(close_code_after(&mut tcp, &wire).await, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn a_malformed_block_after_the_limit_closes_with_1009() {
    bounded(async {
        let addr = server().await;
        let (mut tcp, _) = open(addr, Some("permessage-deflate")).await;
        let mut payload = bomb(8 << 20);
        payload.extend_from_slice(&[0xff; 32]);
        let code = close_code_after(&mut tcp, &frame(true, true, 2, &payload)).await;
        assert_eq!(code, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn window_amplification_stays_within_the_limit_per_message() {
    bounded(async {
        let addr = server().await;
        let (mut tcp, _) = open(addr, Some("permessage-deflate")).await;
        // Prime a 32 KiB window, then send small messages that each copy
        // it many times over: each inflates to 32 KiB x 30 (under the 1 MiB
        // limit) and is delivered; one that inflates past it is refused.
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        let window: Vec<u8> = (0..32 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut wire = frame(true, true, 2, &deflate_stream(&mut encoder, &window));
        let amplified = window.repeat(30);
        let mut sizes = Vec::new();
        for _ in 0..20 {
            let payload = deflate_stream(&mut encoder, &amplified);
            sizes.push(payload.len());
            wire.extend(frame(true, true, 2, &payload));
        }
        assert!(
            sizes[1] < 10_000,
            "back-references make it small: {sizes:?}"
        );
        let over = window.repeat(40);
        wire.extend(frame(true, true, 2, &deflate_stream(&mut encoder, &over)));
        assert_eq!(close_code_after(&mut tcp, &wire).await, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn rsv1_where_it_may_not_be_closes_with_1002() {
    bounded(async {
        let addr = server().await;
        let hello = {
            let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
            deflate_stream(&mut encoder, b"hello")
        };
        let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
            (
                "ping",
                Some("permessage-deflate"),
                frame(true, true, 9, b""),
            ),
            (
                "close",
                Some("permessage-deflate"),
                frame(true, true, 8, &[3, 232]),
            ),
            ("continuation", Some("permessage-deflate"), {
                let mut wire = frame(false, true, 1, &hello[..2]);
                wire.extend(frame(true, true, 0, &hello[2..]));
                wire
            }),
            ("not negotiated", None, frame(true, true, 1, &hello)),
        ];
        for (name, offer, wire) in cases {
            let (mut tcp, _) = open(addr, offer).await;
            assert_eq!(
                close_code_after(&mut tcp, &wire).await,
                Some(1002),
                "{name}"
            );
        }
    })
    .await;
}
