//! `ServerBuilder::memory_budget` with the blocking front-end: a
//! connection thread stalls its reads while the budget is exhausted, and
//! the largest holders are closed with 1013 after the budget's timeout,
//! as with tokio; a well-behaved client is served meanwhile.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockeye::proto::Config;
use sockeye::{Error, Message, ServerBuilder};

const BUDGET: usize = 2 << 20;
/// What each offender sends of a 4 MiB frame it never finishes.
const SENT: usize = 1536 << 10;
const OFFENDERS: usize = 3;

/// Opens a WebSocket by hand and checks the 101.
fn raw_client(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    stream
}

/// The close code of the first Close frame the server sends, if any
/// before the end.
fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let mut rest = &bytes[..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let len = usize::from(rest[1] & 0x7f);
        if len >= 126 || rest.len() < 2 + len {
            return None;
        }
        if opcode == 8 && len >= 2 {
            return Some(u16::from_be_bytes([rest[2], rest[3]]));
        }
        rest = &rest[2 + len..];
    }
    None
}

#[test]
fn blocking_connections_stall_and_the_largest_are_shed_with_1013() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = ServerBuilder::new()
        .config(Config::new().keepalive_interval(None))
        .memory_budget(BUDGET)
        .memory_budget_timeout(Duration::from_millis(300));
    let (endings, ended) = mpsc::channel();
    let accepting = server.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let server = accepting.clone();
            let endings = endings.clone();
            std::thread::spawn(move || {
                let Ok((mut ws, _)) = sockeye::blocking::accept_with(&server, tcp) else {
                    return;
                };
                loop {
                    match ws.recv() {
                        Some(Ok(message)) => {
                            if ws.send(message).is_err() {
                                return;
                            }
                        }
                        Some(Err(error)) => {
                            let _ = endings.send(error);
                            return;
                        }
                        None => return,
                    }
                }
            });
        }
    });

    // Each offender starts a 4 MiB frame and sends 1.5 MiB of it.
    let mut offenders: Vec<TcpStream> = (0..OFFENDERS).map(|_| raw_client(&address)).collect();
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(4u64 << 20).to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    let writers: Vec<_> = offenders
        .iter()
        .map(|stream| {
            let mut stream = stream.try_clone().unwrap();
            let header = header.clone();
            std::thread::spawn(move || {
                let _ = stream.write_all(&header);
                let _ = stream.write_all(&vec![0x5a; SENT]);
            })
        })
        .collect();

    // The accounted total reaches the budget, and stays near it.
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(2) {
        peak = peak.max(server.memory_in_use());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(peak >= BUDGET / 2, "offenders were not counted: {peak}");
    assert!(peak <= BUDGET + OFFENDERS * 128 * 1024, "{peak} bytes held");

    // A well-behaved client is served meanwhile.
    let (mut client, _) = sockeye::blocking::connect(&format!("ws://{address}/")).unwrap();
    client.send(Message::text("still here")).unwrap();
    let echo = client.recv().unwrap().unwrap();
    assert_eq!(echo.as_text(), Some("still here"));

    // Shed: at least one offender got 1013 (try again later), and its
    // server thread ended with the abort.
    let aborted = ended
        .recv_timeout(Duration::from_secs(10))
        .expect("an offender was shed");
    assert!(
        matches!(aborted, Error::Aborted(code) if code.as_u16() == 1013),
        "{aborted}"
    );
    let mut codes = Vec::new();
    for stream in &mut offenders {
        stream.shutdown(std::net::Shutdown::Write).ok();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        codes.push(close_code(stream));
    }
    assert!(codes.contains(&Some(1013)), "{codes:?}");
    assert!(
        server.memory_in_use() < BUDGET,
        "{}",
        server.memory_in_use()
    );
    for writer in writers {
        let _ = writer.join();
    }
}
