//! The blocking front-end over real loopback TCP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sockeye::blocking::WebSocket;
use sockeye::proto::{Config, Connection};
use sockeye::{CloseCode, Error, Event, Message, Role};

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn echo_and_close() {
    let (a, b) = tcp_pair();
    let server = thread::spawn(move || {
        let mut ws = WebSocket::from_raw(b, Role::Server, Config::default(), &[]);
        let mut count = 0;
        while let Some(message) = ws.recv() {
            ws.send(message.unwrap()).unwrap();
            count += 1;
        }
        (count, ws.closed().cloned())
    });
    let mut ws = WebSocket::from_raw(a, Role::Client, Config::default(), &[]);
    for size in [0, 125, 126, 65535, 65536, 1 << 20] {
        ws.send(Message::binary(vec![3u8; size])).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap().len(), size);
    }
    ws.ping(&b"x"[..]).unwrap();
    assert_eq!(
        ws.recv_event().unwrap().unwrap(),
        Event::Pong(b"x"[..].into())
    );
    let closed = ws.close(CloseCode::GOING_AWAY, "bye").unwrap();
    assert!(closed.is_clean());
    let (count, server_closed) = server.join().unwrap();
    assert_eq!(count, 6);
    assert_eq!(server_closed.unwrap().code(), CloseCode::GOING_AWAY);
}

#[test]
fn violation_closes_with_1002_after_delivering_what_came_first() {
    let (mut raw, b) = tcp_pair();
    let server = thread::spawn(move || {
        let mut ws = WebSocket::from_raw(b, Role::Server, Config::default(), &[]);
        let first = ws.recv().unwrap().unwrap();
        let second = ws.recv();
        (first, matches!(second, Some(Err(Error::Protocol(_)))))
    });
    let mut client = Connection::new(Role::Client, Config::default());
    client.send(Message::text("first")).unwrap();
    let mut bytes = Vec::new();
    client.data_to_send(&mut bytes);
    bytes.extend_from_slice(&[0x82, 0x00]); // unmasked
    raw.write_all(&bytes).unwrap();
    let (first, failed) = server.join().unwrap();
    assert_eq!(first.as_text(), Some("first"));
    assert!(failed);
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[2..4], &1002u16.to_be_bytes());
}

#[test]
fn close_is_bounded_by_the_close_timeout() {
    let (a, _silent) = tcp_pair();
    let config = Config::new().close_timeout(Duration::from_millis(200));
    let mut ws = WebSocket::from_raw(a, Role::Client, config, &[]);
    let started = Instant::now();
    let closed = ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(!closed.is_clean());
    // Bounded, not timed: the engine gave up instead of hanging.
    assert!(started.elapsed() < Duration::from_secs(30));
}
