//! `sockeye connect` against `sockeye serve`, end to end over loopback:
//! echo, broadcast between three clients, HTTP on the WebSocket port,
//! TLS with a private CA, graceful shutdown, and the exit statuses that
//! tell how a connection ended.

mod common;

use common::{Scratch, connect, get, http, pki, run, serve};

#[test]
fn connect_echoes_lines_and_closes_on_end_of_input() {
    let server = serve(&[]);
    let finished = run(
        &["connect", &server.url],
        b"hello\n{\"json\": true}\r\n\nlast",
    );
    assert_eq!(finished.code, 0, "stderr: {}", finished.stderr);
    // Only the messages on stdout: an empty line is an empty message,
    // CRLF is taken off, a last line without newline is sent too.
    assert_eq!(finished.stdout, "hello\n{\"json\": true}\n\nlast");
    assert!(
        finished.stderr.contains("connected to ws://127.0.0.1:"),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("closed: 1000"),
        "{}",
        finished.stderr
    );
}

#[test]
fn connect_count_and_once_exit_after_that_many_messages() {
    let server = serve(&[]);
    let mut client = connect(&server.url, &["--count", "2", "--binary"]);
    for line in ["one", "two", "three"] {
        client.send(line);
    }
    assert_eq!(client.line(), "one");
    assert_eq!(client.line(), "two");
    assert_eq!(client.exit_code(), 0, "stdin still open, --count ends it");
    assert_eq!(client.remaining_stdout(), Vec::<String>::new());

    // -q prints no status line to wait for; stdin is read once connected.
    let mut once = common::Proc::spawn(&["connect", &server.url, "--once", "-q"]);
    once.send("just this");
    assert_eq!(once.line(), "just this");
    assert_eq!(once.exit_code(), 0);
    assert!(
        once.stderr_lines().is_empty(),
        "-q: {:?}",
        once.stderr_lines()
    );
}

#[test]
fn connect_ctrl_c_sends_close_1000_and_waits_for_the_handshake() {
    let server = serve(&["-v"]);
    let mut client = connect(&server.url, &[]);
    client.send("ping me");
    assert_eq!(client.line(), "ping me");
    client.interrupt();
    assert_eq!(client.exit_code(), 0);
    let stderr = client.stderr_lines().join("\n");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("closed: 1000"), "{stderr}");
    // The server saw a clean close with 1000.
    server.proc.wait_stderr("closed 1000");
}

#[test]
fn serve_broadcast_between_three_clients() {
    let server = serve(&["--broadcast"]);
    let mut alice = connect(&server.url, &[]);
    let mut bob = connect(&server.url, &[]);
    let mut carol = connect(&server.url, &[]);
    alice.send("hello from alice");
    assert_eq!(bob.line(), "hello from alice");
    assert_eq!(carol.line(), "hello from alice");
    bob.send("hi, bob here");
    // Alice's next line is Bob's message: her own never came back.
    assert_eq!(alice.line(), "hi, bob here");
    assert_eq!(carol.line(), "hi, bob here");
    carol.send("carol too");
    assert_eq!(alice.line(), "carol too");
    assert_eq!(bob.line(), "carol too");
    for client in [&mut alice, &mut bob, &mut carol] {
        client.close_stdin();
        assert_eq!(client.exit_code(), 0);
    }
}

#[test]
fn serve_broadcast_rooms_by_path() {
    let server = serve(&["--broadcast", "-v"]);
    let lobby_url = format!("{}/", server.url);
    let red_url = format!("{}/room/red", server.url);
    // "café", percent-encoded as a browser does.
    let cafe_url = format!("{}/room/caf%C3%A9", server.url);
    let mut lobby = connect(&lobby_url, &[]);
    let mut red_a = connect(&red_url, &[]);
    let mut red_b = connect(&red_url, &[]);
    let mut cafe = connect(&cafe_url, &[]);
    server.proc.wait_stderr("joined room \"café\"");
    red_a.send("in red");
    assert_eq!(red_b.line(), "in red");
    cafe.send("in café");
    lobby.send("in the lobby");
    red_b.send("red again");
    assert_eq!(red_a.line(), "red again", "nothing from the other rooms");
    // The lobby and café members heard nobody: their next line is what
    // is said in their own room now.
    let mut lobby_b = connect(&lobby_url, &[]);
    lobby_b.send("lobby two");
    assert_eq!(lobby.line(), "lobby two");
    let mut cafe_b = connect(&cafe_url, &[]);
    cafe_b.send("café two");
    assert_eq!(cafe.line(), "café two");
    for client in [
        &mut lobby,
        &mut lobby_b,
        &mut red_a,
        &mut red_b,
        &mut cafe,
        &mut cafe_b,
    ] {
        client.close_stdin();
        assert_eq!(client.exit_code(), 0);
    }

    // A WebSocket at any other path has no room: 404, and the client
    // says so.
    for path in ["/chat", "/room/", "/room/a/b", "/room/%ff"] {
        let finished = run(
            &["connect", &format!("{}{path}", server.url), "--once"],
            b"",
        );
        assert_eq!(finished.code, 4, "{path}: {}", finished.stderr);
        assert!(
            finished.stderr.contains("404"),
            "{path}: {}",
            finished.stderr
        );
    }
    // The page offers the room picker in broadcast mode.
    let (head, body) = get(&server.address, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("id=\"rooms\""), "{page}");
    assert!(page.contains("/room/"), "{page}");
}

#[test]
fn serve_shutdown_closes_every_client_with_1001() {
    let mut server = serve(&[]);
    let mut first = connect(&server.url, &[]);
    let mut second = connect(&server.url, &["--binary"]);
    first.send("still here");
    assert_eq!(first.line(), "still here");
    server.proc.interrupt();
    for client in [&mut first, &mut second] {
        assert_eq!(client.exit_code(), 0, "1001 is a normal end");
        let stderr = client.stderr_lines().join("\n");
        assert!(
            stderr.contains("closed by the server: 1001 (server shutting down)"),
            "{stderr}"
        );
    }
    assert_eq!(server.proc.exit_code(), 0);
    let stderr = server.proc.stderr_lines().join("\n");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("sockeye: stopped"), "{stderr}");
}

#[test]
fn serve_broadcast_shutdown_closes_with_1001() {
    let mut server = serve(&["--broadcast"]);
    let mut client = connect(&server.url, &[]);
    server.proc.interrupt();
    assert_eq!(client.exit_code(), 0);
    let stderr = client.stderr_lines().join("\n");
    assert!(stderr.contains("closed by the server: 1001"), "{stderr}");
    assert_eq!(server.proc.exit_code(), 0);
}

#[test]
fn serve_built_in_page_on_the_websocket_port() {
    let server = serve(&[]);
    let (head, body) = get(&server.address, "/");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("new WebSocket("),
        "the page uses the browser's API"
    );
    assert!(
        page.contains("<b id=\"mode\">echo</b>"),
        "the mode is filled in"
    );
    assert!(!page.contains("<script src"), "no external scripts");
    // Everything else is not found, and only GET and HEAD are served.
    let (head, _) = get(&server.address, "/nothing-here");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = http(
        &server.address,
        &format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            server.address
        ),
    );
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    // And WebSocket still works on the same port.
    let finished = run(&["connect", &server.url], b"same port\n");
    assert_eq!(finished.stdout, "same port");
}

/// The value of a header in a response head (names compared
/// case-insensitively), if present once.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let mut values = head.lines().skip(1).filter_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim())
    });
    let value = values.next();
    assert!(values.next().is_none(), "{name} repeated: {head}");
    value
}

#[test]
fn serve_answers_426_to_websocket_requests_without_the_upgrade() {
    let server = serve(&[]);
    let address = &server.address;
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let version = "Sec-WebSocket-Version: 13\r\n";
    for (what, headers) in [
        ("key and version, no Upgrade", format!("{key}{version}")),
        ("only the version", version.to_owned()),
        ("only the key", key.to_owned()),
        (
            "Upgrade without Connection: upgrade",
            format!("Upgrade: websocket\r\nConnection: keep-alive\r\n{key}{version}"),
        ),
        (
            "Connection: upgrade without Upgrade",
            format!("Connection: Upgrade\r\n{key}{version}"),
        ),
    ] {
        let (head, body) = http(
            address,
            &format!("GET / HTTP/1.1\r\nHost: {address}\r\n{headers}\r\n"),
        );
        assert!(
            head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{what}: {head}"
        );
        assert_eq!(
            header(&head, "upgrade"),
            Some("websocket"),
            "{what}: {head}"
        );
        assert_eq!(
            header(&head, "sec-websocket-version"),
            Some("13"),
            "{what}: {head}"
        );
        let connection = header(&head, "connection").unwrap_or_default();
        assert!(
            connection.to_ascii_lowercase().contains("upgrade"),
            "RFC 7230 section 6.7, {what}: {head}"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("WebSocket("),
            "{what}: not the page"
        );
    }

    // A browser's page request still gets the page, keep-alive and all.
    let (head, body) = http(
        address,
        &format!(
            "GET / HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\n\
             Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("new WebSocket("));
    // And a complete upgrade is still a WebSocket.
    let finished = run(&["connect", &server.url], b"upgraded\n");
    assert_eq!(finished.stdout, "upgraded", "{}", finished.stderr);
}

#[test]
fn serve_static_files_with_types_head_and_no_traversal() {
    let site = Scratch::new("site");
    site.write("index.html", b"<h1>home</h1>");
    site.write("style.css", b"h1 { color: red }");
    site.write("docs/notes.txt", b"notes");
    site.write("data.bin", &[0, 1, 2, 255]);
    let outside = Scratch::new("outside");
    outside.write("secret.txt", b"secret");
    let server = serve(&["--dir", site.path().to_str().unwrap()]);

    let (head, body) = get(&server.address, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"<h1>home</h1>");
    let (head, body) = get(&server.address, "/style.css");
    assert!(
        head.contains("Content-Type: text/css; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body, b"h1 { color: red }");
    let (head, body) = get(&server.address, "/docs/notes.txt");
    assert!(
        head.contains("Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body, b"notes");
    let (head, body) = get(&server.address, "/data.bin");
    assert!(
        head.contains("Content-Type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("Content-Length: 4"), "{head}");
    assert_eq!(body, [0, 1, 2, 255]);
    let (head, _) = get(&server.address, "/docs");
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert!(head.contains("Location: /docs/"), "{head}");
    let (head, _) = get(&server.address, "/missing.txt");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // HEAD: the same head, no body.
    let (head, body) = http(
        &server.address,
        &format!(
            "HEAD /style.css HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.address
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 17"), "{head}");
    assert!(body.is_empty());

    // Out of the directory: refused, however spelled.
    let escape = format!(
        "/../{}/secret.txt",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for path in [
        escape.as_str(),
        "/%2e%2e/%2e%2e/etc/passwd",
        "/docs/../../etc/passwd",
    ] {
        let (head, body) = get(&server.address, path);
        assert!(head.starts_with("HTTP/1.1 403"), "{path}: {head}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }

    // A malformed request gets 400.
    let (head, _) = http(&server.address, "GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // WebSocket on the same port.
    let finished = run(&["connect", &server.url], b"files and sockets\n");
    assert_eq!(finished.stdout, "files and sockets");
}

#[test]
fn tls_with_a_private_ca() {
    let dir = Scratch::new("tls");
    let (ca, cert, key) = pki(&dir);
    let server = serve(&["--cert", &cert, "--key", &key]);
    assert!(server.url.starts_with("wss://127.0.0.1:"), "{}", server.url);
    let finished = run(&["connect", &server.url, "--ca", &ca], b"over TLS\n");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert_eq!(finished.stdout, "over TLS");

    // Without the CA: a TLS failure, exit status 3.
    let finished = run(&["connect", &server.url], b"");
    assert_eq!(finished.code, 3, "{}", finished.stderr);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("not signed by a trusted CA; pass --ca FILE"),
        "{}",
        finished.stderr
    );
}

#[test]
fn subprotocols_are_negotiated() {
    let server = serve(&["-P", "chat.v2", "-P", "chat.v1"]);
    let mut client = common::Proc::spawn(&["connect", &server.url, "-P", "chat.v1"]);
    let line = client.wait_stderr("connected to");
    assert!(line.contains("(subprotocol chat.v1)"), "{line}");
    client.close_stdin();
    assert_eq!(client.exit_code(), 0);
}

#[test]
fn a_close_code_other_than_normal_exits_1() {
    // A message over the server's limit: the server closes with 1009.
    let server = serve(&["--max-message-size", "16"]);
    let finished = run(
        &["connect", &server.url],
        b"this line is longer than sixteen bytes\n",
    );
    assert_eq!(finished.code, 1, "{}", finished.stderr);
    assert!(finished.stderr.contains("1009"), "{}", finished.stderr);
}

#[test]
fn rejected_handshakes_print_the_http_status() {
    let server = serve(&["--allow-origin", "https://good.example"]);
    let finished = run(
        &["connect", &server.url, "--origin", "https://evil.example"],
        b"",
    );
    assert_eq!(finished.code, 4, "{}", finished.stderr);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("HTTP 403 Forbidden"),
        "{}",
        finished.stderr
    );
    let finished = run(
        &["connect", &server.url, "--origin", "https://good.example"],
        b"welcome\n",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert_eq!(finished.stdout, "welcome");
}

#[test]
fn connections_over_the_limit_get_503() {
    let server = serve(&["--max-connections", "1"]);
    let mut first = connect(&server.url, &[]);
    let finished = run(&["connect", &server.url], b"");
    assert_eq!(finished.code, 4, "{}", finished.stderr);
    assert!(finished.stderr.contains("HTTP 503"), "{}", finished.stderr);
    first.close_stdin();
    assert_eq!(first.exit_code(), 0);
}

#[test]
fn broadcast_drops_a_client_too_slow_to_keep_up() {
    use sockeye::{ClientBuilder, DeflateConfig, Message};
    use std::time::{Duration, Instant};

    // Uncompressed, so that the bytes really pile up in the socket.
    let server = serve(&["--broadcast", "--queue", "4", "--no-compression", "-v"]);
    let ws_connect = |url: String| async move {
        ClientBuilder::new(&url)
            .deflate(DeflateConfig::new().enabled(false))
            .no_proxy()
            .connect()
            .await
    };
    let url = server.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A member that never reads, and one that floods the room with
    // 64 KiB messages: far more than the socket buffers, the library's
    // write buffer and the 4-message queue hold.
    let (mut slow, mut flooder) = runtime.block_on(async {
        let (slow, _) = ws_connect(url.clone()).await.expect("slow member connects");
        let (flooder, _) = ws_connect(url).await.expect("flooder connects");
        (slow, flooder)
    });
    runtime.block_on(async {
        let noise: Vec<u8> = (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let chunk = Message::binary(noise);
        for _ in 0..400 {
            flooder
                .send(chunk.clone())
                .await
                .expect("the flooder is not held back");
        }
    });
    server
        .proc
        .wait_stderr("too slow to keep up (queue full), closed with 1008");

    // The room goes on without it.
    let mut newcomer = connect(&server.url, &[]);
    runtime.block_on(async {
        flooder.send(Message::text("after")).await.unwrap();
    });
    assert_eq!(newcomer.line(), "after");

    // The slow member's connection ends within the close timeout.
    let started = Instant::now();
    let ended = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(8), async {
            while let Some(Ok(_)) = slow.recv().await {}
        })
        .await
    });
    assert!(ended.is_ok(), "the slow member was disconnected");
    assert!(started.elapsed() < Duration::from_secs(8));
    newcomer.close_stdin();
    assert_eq!(newcomer.exit_code(), 0);
}

#[test]
fn compression_is_negotiated_unless_declined() {
    let long = "compressible ".repeat(500);
    let input = format!("{long}\nshort\n");
    let server = serve(&["-v"]);
    let finished = run(&["connect", &server.url], input.as_bytes());
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("(compressed)"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.stdout, format!("{long}\nshort"));
    server.proc.wait_stderr(", compressed)");

    let finished = run(
        &["connect", &server.url, "--no-compression"],
        input.as_bytes(),
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        !finished.stderr.contains("compressed"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.stdout, format!("{long}\nshort"));

    let plain = serve(&["--no-compression", "--broadcast"]);
    let mut alice = connect(&plain.url, &[]);
    let mut bob = connect(&plain.url, &[]);
    alice.send(&long);
    assert_eq!(bob.line(), long);
    for client in [&mut alice, &mut bob] {
        assert!(!client.stderr_lines().join("\n").contains("compressed"));
        client.close_stdin();
        assert_eq!(client.exit_code(), 0);
    }
}

/// A minimal HTTP CONNECT proxy on loopback: tunnels one connection and
/// records the CONNECT line it was asked.
fn connect_proxy() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (asked, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let target = line.split_whitespace().nth(1).unwrap().to_owned();
        let _ = asked.send(line.trim_end().to_owned());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                break;
            }
        }
        let upstream = TcpStream::connect(&target).unwrap();
        let mut client_writer = client.try_clone().unwrap();
        client_writer
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        let mut upstream_reader = upstream.try_clone().unwrap();
        let mut upstream_writer = upstream;
        let down = std::thread::spawn(move || {
            let _ = std::io::copy(&mut upstream_reader, &mut client_writer);
            // The server closed: pass the end on, as a proxy does.
            let _ = client_writer.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(std::net::Shutdown::Write);
        let _ = down.join();
    });
    (address, requests)
}

#[test]
fn connect_through_an_http_proxy() {
    let server = serve(&[]);
    let (proxy, requests) = connect_proxy();
    let proxy_url = format!("http://{proxy}");
    let finished = run(
        &["connect", &server.url, "--proxy", &proxy_url],
        b"via the proxy\n",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert_eq!(finished.stdout, "via the proxy");
    let asked = requests.recv_timeout(common::WAIT).unwrap();
    assert_eq!(asked, format!("CONNECT {} HTTP/1.1", server.address));
}

#[test]
fn keepalive_pings_are_answered() {
    let server = serve(&["--ping-interval", "100ms"]);
    let mut client = connect(&server.url, &["-vv"]);
    client.wait_stderr("sockeye: < ping, ");
    client.wait_stderr("sockeye: > pong (automatic)");
    client.close_stdin();
    assert_eq!(client.exit_code(), 0);
}
