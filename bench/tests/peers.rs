//! The benchmark's echo servers echo, as sockeye's client sees them:
//! text and binary messages of every length encoding, permessage-deflate
//! where the peer has it, and the raw servers' byte-for-byte echo (with
//! backpressure, and connections that come and go).

use std::io::{Read, Write};

use sockeye::{ClientBuilder, DeflateConfig, Message};
use sockeye_bench::peers::{Peer, spawn_for_test};

async fn echo_checks(peer: Peer, deflate: bool) {
    let address = spawn_for_test(peer, deflate).expect("the peer starts");
    let url = format!("ws://{address}/");
    let (mut ws, _) = ClientBuilder::new(&url)
        .deflate(DeflateConfig::new().enabled(deflate))
        .no_proxy()
        .connect()
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", peer.name()));
    assert_eq!(
        ws.connection().deflate_params().is_some(),
        deflate,
        "{}: permessage-deflate agreed as asked",
        peer.name()
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let messages = [
        Message::text("hello"),
        Message::text("é".repeat(100)),
        Message::binary(vec![7u8; 300]),
        Message::binary(big),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echo = ws.recv().await.expect("an echo").expect("no error");
        assert_eq!(echo, message, "{}", peer.name());
    }
    let closed = ws.close(sockeye::CloseCode::NORMAL, "").await.unwrap();
    assert!(closed.is_clean(), "{}: {closed:?}", peer.name());
}

#[tokio::test]
async fn tungstenite_echoes() {
    echo_checks(Peer::Tungstenite, false).await;
}

#[tokio::test]
async fn fastwebsockets_echoes() {
    echo_checks(Peer::Fastwebsockets, false).await;
}

#[tokio::test]
async fn yawc_echoes_with_and_without_deflate() {
    echo_checks(Peer::Yawc, false).await;
    echo_checks(Peer::Yawc, true).await;
}

/// The raw echoes: tokio's task per connection, the mio event loop and
/// the tokio-readiness prototype.
const RAW: [Peer; 3] = [Peer::Raw, Peer::RawMio, Peer::RawReadiness];

/// Sends `size` bytes on one connection and checks they come back
/// verbatim; the reader starts `delay` after the writer.
fn echo_verbatim(address: std::net::SocketAddr, size: u32, delay: std::time::Duration) {
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let sent: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
    let writer = {
        let mut tcp = tcp.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || tcp.write_all(&sent).unwrap())
    };
    std::thread::sleep(delay);
    let mut echoed = vec![0u8; sent.len()];
    tcp.read_exact(&mut echoed).unwrap();
    writer.join().unwrap();
    assert!(echoed == sent);
}

#[test]
fn raw_echoes_bytes_verbatim() {
    for peer in RAW {
        let address = spawn_for_test(peer, false).unwrap();
        // More than the shared read buffer holds, so some of it is left
        // over and written from the connection's own memory.
        echo_verbatim(address, 3_000_000, std::time::Duration::ZERO);
    }
}

#[test]
fn raw_echoes_hold_back_a_reader_that_does_not_read() {
    for peer in RAW {
        let address = spawn_for_test(peer, false).unwrap();
        // The client reads nothing for a while: the server's send buffer
        // and the client's receive buffer fill, the server keeps what the
        // socket would not take and stops reading that connection, then
        // writes the rest once the client reads. Four connections at once,
        // twice over, so that closed connections' slots are reused.
        for _ in 0..2 {
            let clients: Vec<_> = (0..4)
                .map(|_| {
                    std::thread::spawn(move || {
                        echo_verbatim(address, 16 << 20, std::time::Duration::from_millis(300))
                    })
                })
                .collect();
            for client in clients {
                client.join().unwrap_or_else(|_| panic!("{}", peer.name()));
            }
        }
    }
}

#[test]
fn raw_echoes_survive_connections_that_come_and_go() {
    for peer in RAW {
        let address = spawn_for_test(peer, false).unwrap();
        // Idle connections, some closed, some reset while data is in
        // flight; then the server still echoes on new ones.
        let mut idle: Vec<std::net::TcpStream> = (0..200)
            .map(|_| std::net::TcpStream::connect(address).unwrap())
            .collect();
        for tcp in idle.iter_mut().step_by(3) {
            tcp.write_all(&[1; 100_000]).unwrap();
        }
        idle.truncate(50);
        for _ in 0..3 {
            echo_verbatim(address, 100_000, std::time::Duration::ZERO);
        }
        drop(idle);
        echo_verbatim(address, 100_000, std::time::Duration::ZERO);
    }
}

#[test]
fn peer_names() {
    for peer in Peer::ALL {
        assert_eq!(Peer::from_name(peer.name()), Some(peer));
    }
    assert!(Peer::Yawc.supports_deflate());
    assert!(!Peer::Tungstenite.supports_deflate());
    assert!(!Peer::RawMio.supports_deflate());
    assert_eq!(Peer::from_name("raw-mio"), Some(Peer::RawMio));
    assert_eq!(Peer::from_name("raw-readiness"), Some(Peer::RawReadiness));
}

/// A WebSocket client over plain TCP without the opening handshake, as
/// `sockeye bench --fanout --no-handshake` connects.
async fn raw_client(address: std::net::SocketAddr) -> sockeye::WebSocket<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    sockeye::WebSocket::from_raw(tcp, sockeye::Role::Client, Default::default(), &[])
}

#[tokio::test]
async fn raw_broadcast_copies_frames_unmasked_to_every_other_connection() {
    let address = sockeye_bench::raw_broadcast::spawn_for_test().unwrap();
    let mut receivers = Vec::new();
    for _ in 0..3 {
        receivers.push(raw_client(address).await);
    }
    let mut publisher = raw_client(address).await;
    // Let the server take every connection before the first frame.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let messages = [
        Message::text("hello"),
        Message::text("é".repeat(100)),
        Message::binary(vec![7u8; 300]),
        Message::binary(big),
    ];
    for message in &messages {
        publisher.send(message.clone()).await.unwrap();
    }
    // The engines check the frames: unmasked, as a server's must be.
    for receiver in &mut receivers {
        for message in &messages {
            let received = receiver.recv().await.expect("a message").expect("no error");
            assert_eq!(&received, message);
        }
    }
}
