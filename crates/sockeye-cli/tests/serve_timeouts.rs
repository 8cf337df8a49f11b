//! `sockeye serve` stays up against clients that stop (issue 14): a
//! WebSocket client that never answers a Ping is closed with 1011, a
//! silent one with 1001 under `--idle-timeout`, and a download the client
//! never reads is dropped after `--send-timeout` without progress.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Scratch, WAIT, client_frame, raw_websocket, read_frame, serve};

const PING: u8 = 0x9;
const CLOSE: u8 = 0x8;

/// Reads until the server closes the stream; panics if it does not
/// within [`WAIT`] (the read time-out of [`raw_websocket`]).
fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "nothing after the Close: {rest:?}"),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the server did not close the connection: {error}"),
    }
}

#[test]
fn a_peer_that_never_answers_a_ping_is_closed_with_1011() {
    let server = serve(&["--ping-interval", "200ms", "--ping-timeout", "300ms"]);
    let started = Instant::now();
    let mut peer = raw_websocket(&server.address);
    // Neither reads nor answers for a while: the server's Ping, its Pong
    // deadline and its Close all pass meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let ping = read_frame(&mut peer).expect("a Ping");
    assert_eq!(ping.opcode, PING, "{ping:?}");
    let close = read_frame(&mut peer).expect("a Close");
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(1011), "{close:?}");
    assert_closed(&mut peer);
    assert!(started.elapsed() < WAIT);
}

#[test]
fn a_silent_peer_is_closed_with_1001_after_the_idle_timeout() {
    let server = serve(&["--ping-interval", "off", "--idle-timeout", "300ms"]);
    let mut peer = raw_websocket(&server.address);
    // With pings off, the first frame is the Close.
    let close = read_frame(&mut peer).expect("a Close");
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(1001), "{close:?}");
    // The closing handshake: our answer, then the server closes TCP.
    peer.write_all(&client_frame(CLOSE, &close.payload[..2]))
        .unwrap();
    assert_closed(&mut peer);
}

#[test]
fn a_peer_that_answers_pings_is_not_idle() {
    // The idle timeout is longer than the ping interval: the Pongs keep
    // the connection alive for a client that sends nothing else.
    let server = serve(&["--ping-interval", "100ms", "--idle-timeout", "400ms"]);
    let mut peer = raw_websocket(&server.address);
    let deadline = Instant::now() + Duration::from_millis(1200);
    let mut pings = 0;
    while Instant::now() < deadline {
        let frame = read_frame(&mut peer).expect("a frame");
        assert_eq!(frame.opcode, PING, "only Pings, no Close: {frame:?}");
        peer.write_all(&client_frame(0xA, &frame.payload)).unwrap();
        pings += 1;
    }
    assert!(pings >= 3, "{pings} pings");
}

#[test]
fn a_download_that_makes_no_progress_is_dropped() {
    let site = Scratch::new("stalled-download");
    // Far more than loopback's socket buffers hold (a few MiB each way).
    let size = 32 << 20;
    site.write("big.bin", &vec![0x5a; size]);
    let server = serve(&[
        "--dir",
        site.path().to_str().unwrap(),
        "--send-timeout",
        "500ms",
        "-v",
    ]);
    let mut client = TcpStream::connect(&server.address).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("GET /big.bin HTTP/1.1\r\nHost: {}\r\n\r\n", server.address);
    client.write_all(request.as_bytes()).unwrap();
    // Does not read: the buffers fill, the server's writes stall, and
    // after 500 ms without progress it drops the connection.
    server.proc.wait_stderr("accepted no data for 500ms");
    let mut received = Vec::new();
    let ended = client.read_to_end(&mut received);
    match ended {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the server did not drop the connection: {error}"),
    }
    let head = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("the response head arrived");
    assert!(
        String::from_utf8_lossy(&received[..head]).contains(&format!("Content-Length: {size}")),
        "{}",
        String::from_utf8_lossy(&received[..head])
    );
    let body = received.len() - head - 4;
    assert!(body < size, "the download was cut short: {body} of {size}");

    // The server is still there for everyone else.
    let (head, _) = common::get(&server.address, "/missing");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}
