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

mod common;

#[test]
fn blocking_connect_and_accept_with_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/chat?room=1", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let builder = sockeye::ServerBuilder::new().subprotocols(["chat"]);
        let (mut ws, request) = sockeye::blocking::accept_with(&builder, stream).unwrap();
        while let Some(message) = ws.recv() {
            ws.send(message.unwrap()).unwrap();
        }
        request.uri().to_string()
    });
    let handshake = sockeye::proto::handshake::ClientHandshake::builder(&url)
        .subprotocols(["chat"])
        .build()
        .unwrap();
    let tls = sockeye::tls::default_client_config();
    let (mut ws, response) = sockeye::blocking::connect_with(
        &url,
        handshake,
        Config::default(),
        Duration::from_secs(10),
        tls,
    )
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap().as_text(), Some("hi"));
    assert!(ws.close(CloseCode::NORMAL, "").unwrap().is_clean());
    assert_eq!(server.join().unwrap(), "/chat?room=1");
}

#[test]
fn blocking_wss_with_a_test_ca() {
    let pki = common::pki(&["localhost"]);
    let server_config = pki.server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let connection = rustls::ServerConnection::new(server_config).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        let mut ws = sockeye::blocking::accept(TlsServer(tls)).unwrap();
        while let Some(message) = ws.recv() {
            ws.send(message.unwrap()).unwrap();
        }
    });
    let url = format!("wss://localhost:{port}/");
    let handshake = sockeye::proto::handshake::ClientHandshake::new(&url).unwrap();
    let (mut ws, _) = sockeye::blocking::connect_with(
        &url,
        handshake,
        Config::default(),
        Duration::from_secs(10),
        pki.client_config(),
    )
    .unwrap();
    ws.send(Message::binary(vec![5u8; 300_000])).unwrap();
    assert_eq!(ws.recv().unwrap().unwrap().len(), 300_000);
    assert!(ws.close(CloseCode::NORMAL, "").unwrap().is_clean());
    server.join().unwrap();

    // The default roots do not trust the test CA.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server_config = pki.server_config();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let connection = rustls::ServerConnection::new(server_config).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        let _ = tls.conn.complete_io(&mut tls.sock);
    });
    let result = sockeye::blocking::connect(&format!("wss://localhost:{port}/"));
    assert!(matches!(result, Err(Error::Tls(_))), "{result:?}");
    server.join().unwrap();
}

/// A rustls server stream as a blocking transport.
struct TlsServer(rustls::StreamOwned<rustls::ServerConnection, TcpStream>);

impl Read for TlsServer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsServer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl sockeye::blocking::Transport for TlsServer {
    fn shutdown(&mut self) -> std::io::Result<()> {
        self.0.conn.send_close_notify();
        self.0.flush()?;
        self.0.sock.shutdown(std::net::Shutdown::Write)
    }
}

#[test]
fn blocking_refusals_get_their_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        sockeye::blocking::accept(stream).err()
    });
    let mut raw = TcpStream::connect(address).unwrap();
    raw.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    raw.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(matches!(server.join().unwrap(), Some(Error::Handshake(_))));
}

#[test]
fn blocking_connect_bad_url_and_refused() {
    assert!(matches!(
        sockeye::blocking::connect("http://127.0.0.1/"),
        Err(Error::InvalidUrl(_))
    ));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(matches!(
        sockeye::blocking::connect(&format!("ws://127.0.0.1:{port}/")),
        Err(Error::Io(_))
    ));
}

#[test]
fn into_parts_keeps_what_was_read() {
    let (a, mut peer) = tcp_pair();
    peer.write_all(b"\x81\x03one\x81\x03two").unwrap();
    let mut ws = WebSocket::from_raw(a, Role::Client, Config::default(), &[]);
    assert_eq!(ws.recv().unwrap().unwrap().as_text(), Some("one"));
    let parts = ws.into_parts();
    assert!(parts.unwritten.is_empty());
    let mut connection = parts.connection;
    match connection.next_event() {
        Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("two")),
        other => panic!("the second message stayed in the engine, got {other:?}"),
    }
    let mut ws = WebSocket::from_engine(parts.stream, connection, &[]);
    peer.write_all(b"\x81\x05three").unwrap();
    assert_eq!(ws.recv().unwrap().unwrap().as_text(), Some("three"));
}
