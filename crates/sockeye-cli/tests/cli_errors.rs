//! Connection failures in plain words, with the next step and the exit
//! status `--help` documents (issue 16, item 7 and the password part of
//! item 10): TLS spoken to a plain server and the reverse, an unknown CA
//! and a self-signed certificate, a server that accepts and never
//! answers, a bad port, a silent or absent proxy, and a URL's password,
//! which is never printed.

mod common;

use std::net::TcpListener;

use common::{Scratch, assert_fails, pki, run, serve};

/// A TCP listener that accepts and then says nothing, until dropped.
struct Silent {
    address: String,
    _listener: TcpListener,
    held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

fn silent() -> Silent {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let accepting = listener.try_clone().unwrap();
    let keep = held.clone();
    // Ends with the test process (accept blocks on a listener it shares).
    std::thread::spawn(move || {
        while let Ok((stream, _)) = accepting.accept() {
            keep.lock().unwrap().push(stream);
        }
    });
    Silent {
        address,
        _listener: listener,
        held,
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn wss_to_a_plain_server_says_it_does_not_speak_tls() {
    let server = serve(&[]);
    let url = format!("wss://{}/", server.address);
    assert_fails(
        &run(&["connect", &url], b""),
        3,
        &format!(
            "the server does not speak TLS; try ws://{}/",
            server.address
        ),
    );
}

#[test]
fn ws_to_a_tls_server_says_try_wss() {
    let dir = Scratch::new("errors-tls-port");
    let (_ca, cert, key) = pki(&dir);
    let server = serve(&["--cert", &cert, "--key", &key]);
    let url = format!("ws://{}/", server.address);
    assert_fails(
        &run(&["connect", &url], b""),
        3,
        &format!("the server speaks TLS; try wss://{}/", server.address),
    );
}

#[test]
fn a_certificate_of_an_unknown_ca_asks_for_ca() {
    let dir = Scratch::new("errors-unknown-ca");
    let (ca, cert, key) = pki(&dir);
    let server = serve(&["--cert", &cert, "--key", &key]);
    let url = format!("wss://{}/", server.address);
    assert_fails(
        &run(&["connect", &url], b""),
        3,
        "the server's certificate is not signed by a trusted CA; pass --ca FILE",
    );
    // The advice works.
    let finished = run(&["connect", &url, "--ca", &ca], b"");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
}

#[test]
fn a_self_signed_certificate_is_named_and_the_advice_works() {
    use rcgen::{CertificateParams, KeyPair};
    let dir = Scratch::new("errors-self-signed");
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert = dir.write("self.pem", cert.pem().as_bytes());
    let key = dir.write("self-key.pem", key.serialize_pem().as_bytes());
    let server = serve(&["--cert", &cert, "--key", &key]);
    let url = format!("wss://{}/", server.address);
    assert_fails(
        &run(&["connect", &url], b""),
        3,
        "the server's certificate is self-signed; pass it with --ca FILE",
    );
    let finished = run(&["connect", &url, "--ca", &cert], b"");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
}

#[test]
fn a_server_that_never_answers_the_handshake_is_not_unreachable() {
    let silent = silent();
    let url = format!("ws://{}/", silent.address);
    let finished = run(&["connect", &url, "--connect-timeout", "300ms"], b"");
    assert_fails(
        &finished,
        3,
        &format!("connected to {url}, but no WebSocket handshake answer in 300 ms"),
    );
    assert!(!finished.stderr.contains("cannot connect"));
    assert!(!silent.held.lock().unwrap().is_empty(), "it did connect");
}

#[test]
fn bad_ports_are_url_errors() {
    for url in [
        "ws://127.0.0.1:99999/",
        "ws://127.0.0.1:abc/",
        "ws://127.0.0.1:0/",
    ] {
        assert_fails(&run(&["connect", url], b""), 2, "invalid port");
    }
}

#[test]
fn a_silent_socks5_proxy_is_named() {
    let silent = silent();
    let proxy = format!("socks5://{}", silent.address);
    let finished = run(
        &[
            "connect",
            "ws://127.0.0.1:9/",
            "--proxy",
            &proxy,
            "--connect-timeout",
            "300ms",
        ],
        b"",
    );
    assert_fails(
        &finished,
        3,
        &format!("the proxy {proxy} did not answer in 300 ms"),
    );
}

#[test]
fn a_refusing_proxy_is_named() {
    let proxy = format!("socks5://{}", closed_port());
    let finished = run(&["connect", "ws://127.0.0.1:9/", "--proxy", &proxy], b"");
    assert_fails(&finished, 3, &format!("cannot connect to proxy {proxy}"));
}

#[test]
fn passwords_in_urls_are_never_printed() {
    let port = closed_port();
    let url = format!("ws://user:hunter2@{port}/");
    let refused = run(&["connect", &url], b"");
    assert_fails(&refused, 3, &format!("ws://user:***@{port}/"));
    assert!(!refused.stderr.contains("hunter2"));
    // A URL error echoes the URL: masked too.
    let bad = run(&["connect", "ws://user:hunter2@127.0.0.1:abc/"], b"");
    assert_fails(&bad, 2, "invalid port");
    assert!(!bad.stderr.contains("hunter2"), "{}", bad.stderr);
    // Nor in the status lines and the -v headers of a connection that works.
    let server = serve(&[]);
    let url = format!("ws://user:hunter2@{}/", server.address);
    let finished = run(&["connect", &url, "-v"], b"");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains(&format!("connected to ws://user:***@{}/", server.address)),
        "{}",
        finished.stderr
    );
    assert!(finished.stderr.contains("> authorization: ***"));
    assert!(!finished.stderr.contains("hunter2"), "{}", finished.stderr);
    // "user:hunter2" in base64, as the Authorization header carries it.
    assert!(!finished.stderr.contains("dXNlcjpodW50ZXIy"));
}

#[test]
fn a_ca_certificate_used_as_the_servers_own_is_explained() {
    // What `openssl req -x509` makes by default: self-signed with CA:TRUE,
    // which webpki refuses as an end-entity certificate even when trusted.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = Scratch::new("errors-ca-as-leaf");
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert = dir.write("ca-leaf.pem", cert.pem().as_bytes());
    let key = dir.write("ca-leaf-key.pem", key.serialize_pem().as_bytes());
    let server = serve(&["--cert", &cert, "--key", &key]);
    let url = format!("wss://{}/", server.address);
    for args in [vec!["connect", &url], vec!["connect", &url, "--ca", &cert]] {
        assert_fails(
            &run(&args, b""),
            3,
            "the server's certificate is a CA certificate (CA:TRUE",
        );
    }
}

#[test]
fn http2_required_of_an_http1_server_fails_in_one_line() {
    let server = serve(&[]);
    let url = format!("ws://{}/", server.address);
    assert_fails(
        &run(&["connect", &url, "--http2"], b""),
        4,
        &format!("{url} does not offer WebSocket over HTTP/2: no HTTP/2 answer on a cleartext"),
    );
    // Over TLS, the server's ALPN answer says so (serve offers h2 unless
    // --no-http2).
    let dir = Scratch::new("errors-http2-alpn");
    let (ca, cert, key) = pki(&dir);
    let server = serve(&["--cert", &cert, "--key", &key, "--no-http2"]);
    let url = format!("wss://{}/", server.address);
    assert_fails(
        &run(&["connect", &url, "--ca", &ca, "--http2"], b""),
        4,
        "does not offer WebSocket over HTTP/2: the server did not choose h2 by ALPN",
    );
    // Without --http2, HTTP/1.1; --http1 forbids HTTP/2.
    for version in [None, Some("--http1")] {
        let mut args = vec!["connect", &url, "--ca", &ca];
        args.extend(version);
        let finished = run(&args, b"");
        assert_eq!(finished.code, 0, "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains(&format!("connected to {url} over HTTP/1.1")),
            "{}",
            finished.stderr
        );
    }
    assert_fails(
        &run(&["connect", &url, "--http1", "--http2"], b""),
        2,
        "--http2",
    );
    // A server that offers h2: HTTP/2 by default and with --http2,
    // HTTP/1.1 with --http1.
    let server = serve(&["--cert", &cert, "--key", &key]);
    let url = format!("wss://{}/", server.address);
    for (version, expected) in [
        (None, "HTTP/2"),
        (Some("--http2"), "HTTP/2"),
        (Some("--http1"), "HTTP/1.1"),
    ] {
        let mut args = vec!["connect", &url, "--ca", &ca];
        args.extend(version);
        let finished = run(&args, b"");
        assert_eq!(finished.code, 0, "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains(&format!("connected to {url} over {expected}")),
            "{version:?}: {}",
            finished.stderr
        );
    }
}
