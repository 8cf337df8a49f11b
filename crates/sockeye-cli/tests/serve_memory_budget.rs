//! `sockeye serve --memory-budget`: a client that sends a message far
//! larger than the budget and never reads is stalled, then closed with
//! 1013 after the budget's timeout, while `sockeye connect` keeps being
//! echoed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{WAIT, run, serve};

/// Connects by hand and sends one `len`-byte binary frame from a thread
/// (it stalls when the server stops reading); never reads.
fn offender(address: &str, len: usize) -> (TcpStream, std::thread::JoinHandle<()>) {
    let mut tcp = TcpStream::connect(address).expect("the server accepts");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).expect("the 101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    let mut writer = tcp.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // Masked with a zero key: the payload goes as is.
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(len as u64).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.resize(frame.len() + len, 0x5a);
        // Fails once the server closes the connection.
        let _ = writer.write_all(&frame);
    });
    (tcp, sending)
}

#[test]
fn an_offender_is_closed_with_1013_while_others_are_echoed() {
    let server = serve(&["--memory-budget", "1MiB", "-v"]);
    let stderr = server.proc.stderr_lines();
    assert!(
        stderr
            .iter()
            .any(|line| line.contains("memory budget: 1 MiB")),
        "{stderr:?}"
    );
    let started = Instant::now();
    // 32 MiB: more than the budget plus what loopback buffers absorb.
    let (mut tcp, sending) = offender(&server.address, 32 << 20);
    std::thread::sleep(Duration::from_millis(500));

    // Stalled, not closed: another client is echoed meanwhile.
    let finished = run(&["connect", &server.url], b"still served\n");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert_eq!(finished.stdout, "still served");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "echo took too long"
    );

    // After the budget's 3 s, the offender is aborted with 1013.
    server.proc.wait_stderr("close code 1013");
    assert!(started.elapsed() >= Duration::from_secs(3));
    sending.join().unwrap();
    let mut received = Vec::new();
    let _ = tcp.read_to_end(&mut received);
    assert!(received.len() >= 4, "{received:?}");
    assert_eq!(received[0], 0x88, "a Close frame: {received:?}");
    assert_eq!(&received[2..4], &1013u16.to_be_bytes());
}
