//! Every bad input gets one clear line on stderr and the exit status
//! `--help` documents: 2 bad input, 3 cannot connect or listen, 4
//! handshake rejected.

mod common;

use common::{Scratch, assert_fails, run, serve};

#[test]
fn malformed_urls() {
    assert_fails(
        &run(&["connect", "ws://exa mple.com/"], b""),
        2,
        "malformed URL",
    );
    assert_fails(&run(&["connect", "ws:///path"], b""), 2, "malformed URL");
    assert_fails(&run(&["connect", "example.com"], b""), 2, "");
    assert_fails(&run(&["bench", "not a url"], b""), 2, "malformed URL");
}

#[test]
fn unknown_schemes() {
    let finished = run(&["connect", "http://127.0.0.1:9/"], b"");
    assert_fails(
        &finished,
        2,
        "unknown scheme \"http\" (use ws:// or wss://)",
    );
    assert_fails(&run(&["bench", "ftp://x/"], b""), 2, "unknown scheme");
}

#[test]
fn refused_connections() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}/");
    assert_fails(&run(&["connect", &url], b""), 3, "Connection refused");
    let finished = run(&["bench", &url, "-c", "2", "-n", "10"], b"");
    assert_fails(&finished, 3, "Connection refused");
}

#[test]
fn rejected_handshake_prints_the_status() {
    // An HTTP server that is not a WebSocket endpoint: the static one.
    let site = Scratch::new("rejected");
    site.write("index.html", b"hi");
    let server = serve(&[
        "--dir",
        site.path().to_str().unwrap(),
        "--allow-origin",
        "https://a.example",
    ]);
    let url = &server.url;
    let finished = run(&["connect", url, "--origin", "https://b.example"], b"");
    assert_fails(
        &finished,
        4,
        "rejected the WebSocket handshake with HTTP 403 Forbidden",
    );
    assert!(
        finished.stderr.contains("origin not allowed"),
        "{}",
        finished.stderr
    );
}

#[test]
fn tls_to_a_plain_server_fails() {
    let server = serve(&[]);
    let url = server.url.replace("ws://", "wss://");
    assert_fails(
        &run(&["connect", &url], b""),
        3,
        "the server does not speak TLS; try ws://",
    );
}

#[test]
fn port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let finished = run(&["serve", "--listen", &address], b"");
    assert_fails(&finished, 3, &format!("cannot listen on {address}"));
    assert!(finished.stderr.contains("in use"), "{}", finished.stderr);
}

#[test]
fn bad_options_and_files() {
    assert_fails(
        &run(&["serve", "--listen", "nowhere"], b""),
        2,
        "invalid listen address",
    );
    assert_fails(
        &run(&["serve", "--dir", "/no/such/dir"], b""),
        2,
        "--dir /no/such/dir",
    );
    assert_fails(
        &run(
            &["serve", "--cert", "/no/cert.pem", "--key", "/no/key.pem"],
            b"",
        ),
        2,
        "cannot read certificates from /no/cert.pem",
    );
    assert_fails(&run(&["serve", "--cert", "/no/cert.pem"], b""), 2, "--key");
    assert_fails(
        &run(&["connect", "ws://127.0.0.1:9/", "--ca", "/no/ca.pem"], b""),
        2,
        "/no/ca.pem",
    );
    assert_fails(
        &run(&["connect", "ws://x/", "-H", "no colon"], b""),
        2,
        "not a header",
    );
    assert_fails(
        &run(&["bench", "-s", "12 parsecs"], b""),
        2,
        "unknown size unit",
    );
    assert_fails(
        &run(&["bench", "-d", "0"], b""),
        2,
        "not a positive duration",
    );
    assert_fails(&run(&["bench", "-c", "0"], b""), 2, "--connections");
    assert_fails(&run(&["connect"], b""), 2, "<URL>");
    assert_fails(&run(&["frobnicate"], b""), 2, "unrecognized subcommand");
}

#[test]
fn bad_timer_values() {
    assert_fails(
        &run(&["serve", "--ping-interval", "soon"], b""),
        2,
        "--ping-interval",
    );
    assert_fails(
        &run(&["serve", "--ping-interval", "1.7e19"], b""),
        2,
        "too long",
    );
    // Only the optional timers can be turned off.
    assert_fails(
        &run(&["serve", "--ping-timeout", "off"], b""),
        2,
        "--ping-timeout",
    );
    assert_fails(
        &run(&["serve", "--ping-timeout", "0"], b""),
        2,
        "not a positive duration",
    );
    assert_fails(
        &run(&["serve", "--idle-timeout=-5s"], b""),
        2,
        "--idle-timeout",
    );
    assert_fails(
        &run(&["serve", "--send-timeout", "0ms"], b""),
        2,
        "not a positive duration",
    );
    assert_fails(
        &run(&["serve", "--send-timeout", "1e-12"], b""),
        2,
        "too short",
    );
    assert_fails(
        &run(&["serve", "--allow-host", "example.com:http"], b""),
        2,
        "--allow-host",
    );
    assert_fails(
        &run(&["serve", "--max-connections-per-address", "0"], b""),
        2,
        "--max-connections-per-address",
    );
}

#[test]
fn bad_metrics_addresses() {
    assert_fails(
        &run(&["serve", "--metrics", "metrics.example"], b""),
        2,
        "--metrics",
    );
    assert_fails(
        &run(&["serve", "--metrics", "127.0.0.1:99999"], b""),
        2,
        "expected IP:PORT",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let finished = run(
        &["serve", "--listen", "127.0.0.1:0", "--metrics", &address],
        b"",
    );
    assert_fails(
        &finished,
        3,
        &format!("cannot listen on {address} for --metrics"),
    );
}

#[test]
fn text_lines_must_be_utf8() {
    let server = serve(&[]);
    let finished = run(&["connect", &server.url, "-q"], b"fine\n\xff\xfe\n");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("line 2 of stdin is not valid UTF-8"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    // --binary sends the same bytes.
    let finished = run(&["connect", &server.url, "-q", "--binary"], b"\xff\xfe\n");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
}

#[test]
fn help_documents_the_exit_statuses() {
    for args in [
        &["--help"][..],
        &["connect", "--help"],
        &["serve", "--help"],
        &["bench", "--help"],
    ] {
        let finished = run(args, b"");
        assert_eq!(finished.code, 0);
        assert!(finished.stdout.contains("Exit status:"), "{args:?}");
        assert!(finished.stdout.contains("handshake rejected"), "{args:?}");
    }
}
