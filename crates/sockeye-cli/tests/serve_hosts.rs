//! `sockeye serve` as a hostile web page or a hoarding peer meets it
//! (issue 14): Host checks against DNS rebinding, the Origin check with
//! its scheme, and the per-address connection cap.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{http, read_head, serve};

/// A WebSocket request with this Host and (optionally) Origin; the
/// server's answer head.
fn upgrade(address: &str, host: &str, origin: Option<&str>) -> String {
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_head(&mut stream)
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[test]
fn a_loopback_server_serves_loopback_names_and_same_origin_pages_only() {
    let server = serve(&[]);
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let address = server.address.as_str();
    // DNS rebinding: the attacker's name, pointed at 127.0.0.1, with its
    // own page as the Origin. Same-origin by the Origin check alone.
    let rebound = format!("evil.example:{port}");
    let head = upgrade(address, &rebound, Some(&format!("http://{rebound}")));
    assert_eq!(status(&head), "421", "{head}");
    // Its pages and files are not served to that name either.
    let (head, _) = http(
        address,
        &format!("GET / HTTP/1.1\r\nHost: {rebound}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status(&head), "421", "{head}");
    // A loopback name with another port is another server.
    let head = upgrade(address, "localhost:1", None);
    assert_eq!(status(&head), "421", "{head}");
    // The loopback names, with the page's own origin: accepted.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let head = upgrade(address, &host, Some(&format!("http://{host}")));
        assert_eq!(status(&head), "101", "{host}: {head}");
    }
    // A foreign Origin on a good Host: 403.
    let local = format!("localhost:{port}");
    let head = upgrade(address, &local, Some("http://evil.example"));
    assert_eq!(status(&head), "403", "{head}");
    // An https page is not the same origin as a plain ws:// server.
    let head = upgrade(address, &local, Some(&format!("https://{local}")));
    assert_eq!(status(&head), "403", "{head}");
    // The page at / still loads for the loopback names.
    let (head, _) = http(
        address,
        &format!("GET / HTTP/1.1\r\nHost: {local}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status(&head), "200", "{head}");
}

#[test]
fn allowed_hosts_can_be_named_or_any() {
    let server = serve(&["--allow-host", "chat.example"]);
    let address = server.address.as_str();
    let port = address.rsplit(':').next().unwrap();
    assert_eq!(status(&upgrade(address, "chat.example", None)), "101");
    assert_eq!(
        status(&upgrade(address, &format!("chat.example:{port}"), None)),
        "101"
    );
    // Naming hosts replaces the loopback default.
    assert_eq!(
        status(&upgrade(address, &format!("localhost:{port}"), None)),
        "421"
    );

    let any = serve(&["--allow-any-host"]);
    assert_eq!(
        status(&upgrade(&any.address, "anything.example", None)),
        "101"
    );
}

/// A connection from `local_ip` (another address of 127.0.0.0/8) to the
/// server, upgraded; the answer's head.
fn upgrade_from(local_ip: [u8; 4], server: &str) -> (TcpStream, String) {
    let mut stream = connect_from(local_ip, server);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut stream);
    (stream, head)
}

/// Connects from a chosen loopback address, with tokio's socket API
/// (std cannot bind before connecting).
fn connect_from(local_ip: [u8; 4], server: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let server: SocketAddr = server.parse().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((local_ip, 0)))
            .expect("bind a loopback address");
        let stream = socket.connect(server).await.expect("connect");
        stream.into_std().unwrap()
    });
    // tokio hands over a non-blocking socket; the test reads blocking.
    stream.set_nonblocking(false).unwrap();
    stream
}

#[test]
fn one_address_cannot_take_every_slot() {
    let server = serve(&["--max-connections-per-address", "20"]);
    let address = server.address.as_str();
    // One peer opens connections and keeps them, silent.
    let mut held = Vec::new();
    for _ in 0..20 {
        let (stream, head) = upgrade_from([127, 0, 0, 1], address);
        assert_eq!(status(&head), "101", "{head}");
        held.push(stream);
    }
    // Its next one is refused, and told when to come back.
    let (mut refused, head) = upgrade_from([127, 0, 0, 1], address);
    assert_eq!(status(&head), "503", "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let mut rest = Vec::new();
    let _ = refused.read_to_end(&mut rest);
    // Another client (another address) is served meanwhile.
    let (_other, head) = upgrade_from([127, 0, 0, 2], address);
    assert_eq!(status(&head), "101", "{head}");
    // A place given back is taken again.
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (stream, head) = upgrade_from([127, 0, 0, 1], address);
        if status(&head) == "101" {
            held.push(stream);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never freed: {head}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
