//! Decompression bombs (RFC 7692 section 8.1's concern): a few KiB that
//! inflate to a GiB must close with 1009 after at most the message limit
//! was produced, and the process's peak memory must stay near that limit.
//!
//! Peak memory is the kernel's resident high-water mark (`VmHWM`), reset
//! before each bomb through `/proc/self/clear_refs`; the tests in this
//! file run one at a time so they do not see each other's peaks.

mod common;

use std::io::Write;
use std::sync::Mutex;

use flate2::Compression;
use flate2::write::DeflateEncoder;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
use sockeye_proto::handshake::ExtensionNegotiator;
use sockeye_proto::{CloseCode, Config, Connection, Event, Role};

const LIMIT: usize = 16 << 20;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// 1 GiB of zeros, deflated and sync-flushed, tail removed (made once).
fn bomb() -> Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(make_bomb).clone()
}

fn make_bomb() -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.flush().unwrap();
    let mut out = encoder.finish().unwrap();
    let end = out
        .windows(4)
        .rposition(|w| w == [0, 0, 0xff, 0xff])
        .unwrap();
    out.truncate(end);
    out
}

/// A masked client frame, built by the shared test helper.
fn masked_frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    common::frame(
        fin,
        if rsv1 { 0b100 } else { 0 },
        opcode,
        Some(KEY),
        payload,
    )
}

fn server() -> Connection {
    let client = DeflateConfig::new();
    let answer = DeflateNegotiator::new(DeflateConfig::new()).negotiate(&[client.offer().unwrap()]);
    let params = client.accept_response(&answer[0]).unwrap();
    let mut server = Connection::new(Role::Server, Config::default().max_message_size(LIMIT));
    server.enable_deflate(params, &DeflateConfig::new());
    server
}

/// The resident high-water mark in bytes, or `None` off Linux.
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the high-water mark to the current resident size.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Feeds `wire` in 64 KiB reads, as a socket would deliver it, and returns
/// the close code and how much the peak grew (if it can be measured).
fn run(wire: &[u8]) -> (Option<CloseCode>, Option<usize>) {
    let mut server = server();
    let measurable = reset_peak();
    let before = peak_rss();
    let mut code = None;
    'feed: for chunk in wire.chunks(64 * 1024) {
        server.receive_data(chunk);
        while let Some(event) = server.next_event() {
            match event {
                Event::Closed(closed) => {
                    code = Some(closed.code());
                    break 'feed;
                }
                Event::Message(message) => panic!("a {} byte message got through", message.len()),
                _ => {}
            }
        }
    }
    let after = peak_rss();
    let growth = match (measurable, before, after) {
        (true, Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    (code, growth)
}

fn assert_bounded(growth: Option<usize>) {
    if let Some(growth) = growth {
        // The inflated message may reach the limit; the buffer grows
        // geometrically, so allow a second copy of it plus zlib's state.
        assert!(
            growth < 2 * LIMIT + (4 << 20),
            "peak memory grew by {} MiB for a {} MiB limit",
            growth >> 20,
            LIMIT >> 20
        );
        eprintln!(
            "peak memory grew by {:.1} MiB",
            growth as f64 / (1 << 20) as f64
        );
    }
}

#[test]
fn a_one_frame_bomb_closes_with_1009_near_the_limit() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let payload = bomb();
    assert!(payload.len() < 2 << 20, "{} bytes", payload.len());
    let wire = masked_frame(true, true, 2, &payload);
    let (code, growth) = run(&wire);
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    assert_bounded(growth);
}

#[test]
fn a_fragmented_bomb_closes_with_1009_near_the_limit() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let payload = bomb();
    let mut wire = Vec::new();
    let pieces: Vec<&[u8]> = payload.chunks(payload.len().div_ceil(1000)).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == pieces.len();
        wire.extend(masked_frame(last, first, if first { 1 } else { 0 }, piece));
    }
    let (code, growth) = run(&wire);
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    assert_bounded(growth);
}

#[test]
fn a_malformed_block_after_the_limit_still_closes_with_1009() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut payload = bomb();
    payload.extend_from_slice(&[0xff; 64]);
    let wire = masked_frame(true, true, 1, &payload);
    let (code, _) = run(&wire);
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
}
