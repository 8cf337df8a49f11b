//! The benchmark's echo servers echo, as sockeye's client sees them:
//! text and binary messages of every length encoding, permessage-deflate
//! where the peer has it, and the raw server's byte-for-byte echo.

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

#[test]
fn raw_echoes_bytes_verbatim() {
    let address = spawn_for_test(Peer::Raw, false).unwrap();
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // More than the shared read buffer holds, so some of it is left over
    // and written from the connection's own memory.
    let sent: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let writer = {
        let mut tcp = tcp.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || tcp.write_all(&sent).unwrap())
    };
    let mut echoed = vec![0u8; sent.len()];
    tcp.read_exact(&mut echoed).unwrap();
    writer.join().unwrap();
    assert!(echoed == sent);
}

#[test]
fn peer_names() {
    for peer in Peer::ALL {
        assert_eq!(Peer::from_name(peer.name()), Some(peer));
    }
    assert!(Peer::Yawc.supports_deflate());
    assert!(!Peer::Tungstenite.supports_deflate());
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
