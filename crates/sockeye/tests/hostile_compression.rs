//! Hostile permessage-deflate input against a real sockeye server over
//! loopback (tokio or the event loop: `SOCKEYE_TEST_SERVER`, see
//! `common::front`): decompression bombs in one frame and in fragments,
//! window amplification under context takeover, a malformed block after
//! the limit, and RSV1 where it may not be. Each case is bounded in time
//! and checks the close code.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use common::hostile::*;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use sockeye::ServerBuilder;
use sockeye::proto::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const GUARD: Duration = Duration::from_secs(20);
const LIMIT: usize = 1 << 20;

/// An echo server with a 1 MiB message limit.
async fn server() -> TestServer {
    TestServer::start(ServerBuilder::new().config(Config::new().max_message_size(LIMIT))).await
}

/// Connects and completes a handshake offering `extensions`; returns the
/// stream and the response head.
async fn open(addr: SocketAddr, extensions: Option<&str>) -> (TcpStream, ResponseHead) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = request_with(addr, |headers| {
        if let Some(value) = extensions {
            headers.push(("Sec-WebSocket-Extensions", value.to_owned()));
        }
    });
    tcp.write_all(&request).await.unwrap();
    let head = read_response_head(&mut tcp).await.expect("a response");
    assert_eq!(head.status, 101, "{head:?}");
    (tcp, head)
}

/// A masked client frame with RSV1 set or not.
fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = client_frame(fin, opcode, payload);
    out[0] |= u8::from(rsv1) << 6;
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
async fn close_code_after(tcp: TcpStream, wire: &[u8]) -> Option<u16> {
    let (mut read, write) = tcp.into_split();
    let chunks = wire.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let writer = write_in_background(write, chunks);
    let seen = read_close(&mut read).await;
    let _ = writer.await;
    match seen {
        CloseSeen::Code(code) => Some(code),
        CloseSeen::Empty | CloseSeen::NoClose => None,
    }
}

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    within(GUARD, "the case", future).await
}

#[tokio::test]
async fn a_one_frame_bomb_closes_with_1009() {
    bounded(async {
        let server = server().await;
        let addr = server.addr;
        let (tcp, head) = open(addr, Some("permessage-deflate")).await;
        assert_eq!(
            head.header("sec-websocket-extensions"),
            Some("permessage-deflate; server_max_window_bits=12")
        );
        let payload = bomb(1 << 30);
        assert!(payload.len() < 2 << 20);
        let code = close_code_after(tcp, &frame(true, true, 2, &payload)).await;
        assert_eq!(code, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn a_fragmented_bomb_closes_with_1009() {
    bounded(async {
        let server = server().await;
        let addr = server.addr;
        let (tcp, _) = open(addr, Some("permessage-deflate")).await;
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
        assert_eq!(close_code_after(tcp, &wire).await, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn a_malformed_block_after_the_limit_closes_with_1009() {
    bounded(async {
        let server = server().await;
        let addr = server.addr;
        let (tcp, _) = open(addr, Some("permessage-deflate")).await;
        let mut payload = bomb(8 << 20);
        payload.extend_from_slice(&[0xff; 32]);
        let code = close_code_after(tcp, &frame(true, true, 2, &payload)).await;
        assert_eq!(code, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn window_amplification_stays_within_the_limit_per_message() {
    bounded(async {
        let server = server().await;
        let addr = server.addr;
        let (tcp, _) = open(addr, Some("permessage-deflate")).await;
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
        assert_eq!(close_code_after(tcp, &wire).await, Some(1009));
    })
    .await;
}

#[tokio::test]
async fn rsv1_where_it_may_not_be_closes_with_1002() {
    bounded(async {
        let server = server().await;
        let addr = server.addr;
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
            let (tcp, _) = open(addr, offer).await;
            assert_eq!(close_code_after(tcp, &wire).await, Some(1002), "{name}");
        }
    })
    .await;
}
