//! What `-v` and `-vv` show (issue 16, item 8, and the subprotocol
//! warning of item 10): `connect -v` the handshake's headers, secrets
//! masked, and what was negotiated; `connect -vv` each message and
//! control frame in and out; `serve -vv` each handshake and close. And
//! stdout stays the bare payload lines when it is not a terminal.

mod common;

use common::{run, serve};

#[test]
fn connect_v_prints_the_handshake_headers_and_masks_secrets() {
    let server = serve(&[]);
    let url = format!("ws://{}/chat?room=1", server.address);
    let finished = run(
        &[
            "connect",
            &url,
            "-v",
            "-H",
            "Authorization: Bearer s3cret",
            "-H",
            "Cookie: session=s3cret",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let stderr = &finished.stderr;
    for line in [
        "> GET /chat?room=1 HTTP/1.1",
        &format!("> host: {}", server.address),
        "> upgrade: websocket",
        "> sec-websocket-key: ",
        "> authorization: ***",
        "> cookie: ***",
        "> sec-websocket-extensions: permessage-deflate",
        "< HTTP/1.1 101 Switching Protocols",
        "< sec-websocket-accept: ",
        "sockeye: negotiated subprotocol: none; extensions: permessage-deflate",
    ] {
        assert!(stderr.contains(line), "{line:?} missing in:\n{stderr}");
    }
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // Not at -vv detail.
    assert!(!stderr.contains("text message"), "{stderr}");
}

#[test]
fn connect_vv_prints_each_message_and_control_frame() {
    let server = serve(&[]);
    let finished = run(
        &["connect", &server.url, "-vv", "-n", "2"],
        b"hello\nworld!\n",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    // stdout is a pipe: the bare payloads, nothing else.
    assert_eq!(finished.stdout, "hello\nworld!");
    let stderr = &finished.stderr;
    for line in [
        "sockeye: > text message, 5 bytes",
        "sockeye: < text message, 5 bytes",
        "sockeye: > text message, 6 bytes",
        "sockeye: < text message, 6 bytes",
        "sockeye: > close 1000, 2 bytes",
        "sockeye: closed by this side: 1000",
    ] {
        assert!(stderr.contains(line), "{line:?} missing in:\n{stderr}");
    }
    // And the frames themselves, from the engine: opcode, flags, length.
    // (Short messages are not compressed, so lengths are the payloads'.)
    for line in [
        "sockeye: > frame: text, FIN, masked, 5 bytes",
        "sockeye: < frame: text, FIN, 5 bytes",
        "sockeye: > frame: text, FIN, masked, 6 bytes",
        "sockeye: < frame: text, FIN, 6 bytes",
        "sockeye: > frame: close, FIN, masked, 2 bytes",
        "sockeye: < frame: close, FIN, 2 bytes",
    ] {
        assert!(stderr.contains(line), "{line:?} missing in:\n{stderr}");
    }
}

#[test]
fn connect_vv_shows_compressed_frames_with_rsv1() {
    let server = serve(&[]);
    let long = "a compressible line, a compressible line, a compressible line\n";
    let finished = run(&["connect", &server.url, "-vv", "--once"], long.as_bytes());
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let stderr = &finished.stderr;
    // permessage-deflate is on by default: the frames carry RSV1 and are
    // shorter than the 61-byte message.
    let compressed = stderr
        .lines()
        .filter(|line| line.starts_with("sockeye: < frame: text, FIN, RSV1, "))
        .count();
    assert_eq!(compressed, 1, "{stderr}");
    assert!(
        stderr.contains("sockeye: > frame: text, FIN, RSV1, masked, "),
        "{stderr}"
    );
}

#[test]
fn connect_vv_shows_binary_messages() {
    let server = serve(&[]);
    let finished = run(
        &["connect", &server.url, "-vv", "--binary", "--once"],
        b"\x00\x01\x02\n",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("sockeye: < binary message, 3 bytes"),
        "{}",
        finished.stderr
    );
}

#[test]
fn serve_vv_prints_each_handshake_and_close() {
    let server = serve(&["-vv", "-P", "chat"]);
    let url = format!("{}/room", server.url);
    let finished = run(&["connect", &url, "-P", "chat", "-P", "other"], b"hi\n");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let handshake = server.proc.wait_stderr("handshake: ");
    assert!(
        handshake.contains(
            "handshake: GET /room, subprotocol chat, extensions offered: permessage-deflate"
        ) && handshake.contains("compression on"),
        "{handshake}"
    );
    let closed = server.proc.wait_stderr("closed by the peer");
    assert!(closed.contains("closed by the peer: 1000"), "{closed}");
}

#[test]
fn connect_warns_when_no_offered_subprotocol_was_accepted() {
    let server = serve(&["-P", "chat"]);
    let refused = run(&["connect", &server.url, "-P", "v2.chat"], b"");
    assert_eq!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "sockeye: warning: the server accepted none of the subprotocols offered (v2.chat)"
        ),
        "{}",
        refused.stderr
    );
    let accepted = run(
        &["connect", &server.url, "-P", "v2.chat", "-P", "chat"],
        b"",
    );
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    assert!(accepted.stderr.contains("(subprotocol chat)"));
    assert!(!accepted.stderr.contains("warning"), "{}", accepted.stderr);
    // Nothing offered, nothing to warn about.
    let none = run(&["connect", &server.url], b"");
    assert!(!none.stderr.contains("warning"), "{}", none.stderr);
}

#[test]
fn received_lines_are_prefixed_in_a_terminal_only() {
    // `script` gives the command a terminal for stdout; a pipe is tested
    // above (bare lines).
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let server = serve(&[]);
    let line = format!(
        "printf 'ping\\n' | {} connect {} --once -q --no-proxy",
        common::BIN,
        server.url
    );
    for (no_color, expected) in [("1", "< ping"), ("", "\x1b[32m< ping\x1b[0m")] {
        let output = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("NO_COLOR", no_color)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(expected), "{expected:?} not in {stdout:?}");
    }
}
