//! `sockeye connect` hears SIGTERM and Ctrl-C in every state (issue 14):
//! while connecting it stops at once with the interrupted status (130),
//! not at the end of the open timeout; once open the first signal closes
//! with 1000; while closing a second one stops at once.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{Proc, WAIT, read_frame, read_head};

/// The exit status for an interruption (see `sockeye --help`).
const INTERRUPTED: i32 = 130;

/// Well below the open timeout the tests set (60 s).
const PROMPTLY: Duration = Duration::from_secs(5);

/// A loopback listener that accepts connections and never answers: each
/// accepted stream is sent back to the test, which holds it.
fn silent_listener() -> (String, Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (accepted, streams) = channel();
    std::thread::spawn(move || {
        while let Ok((stream, _)) = listener.accept() {
            if accepted.send(stream).is_err() {
                return;
            }
        }
    });
    (address, streams)
}

/// Waits for the process to exit and checks it was prompt and reported
/// as interrupted, on one line.
fn assert_interrupted(proc: &mut Proc, signalled: Instant, state: &str) {
    let code = proc.exit_code();
    let took = signalled.elapsed();
    let stderr = proc.stderr_lines();
    assert_eq!(code, INTERRUPTED, "{state}: {stderr:?}");
    assert!(took < PROMPTLY, "{state}: exited {took:?} after the signal");
    let last = stderr.last().map(String::as_str).unwrap_or_default();
    assert!(last.contains("interrupted"), "{state}: {stderr:?}");
}

#[test]
fn sigterm_while_the_server_does_not_answer_the_handshake() {
    let (address, streams) = silent_listener();
    for scheme in ["ws", "wss"] {
        let url = format!("{scheme}://{address}/");
        let mut client = Proc::spawn(&["connect", &url, "--connect-timeout", "60s", "-q"]);
        // Connected over TCP: now in the HTTP handshake (ws) or the TLS
        // handshake (wss), and the server says nothing.
        let _held = streams.recv_timeout(WAIT).expect("the client connects");
        std::thread::sleep(Duration::from_millis(200));
        let signalled = Instant::now();
        client.terminate();
        assert_interrupted(&mut client, signalled, scheme);
        let stderr = client.stderr_lines();
        assert_eq!(stderr.len(), 1, "{stderr:?}");
        assert!(
            stderr[0].contains("interrupted while connecting to"),
            "{stderr:?}"
        );
    }
}

#[test]
fn ctrl_c_while_connecting_stops_at_once_too() {
    let (address, streams) = silent_listener();
    let url = format!("ws://{address}/");
    let mut client = Proc::spawn(&["connect", &url, "--connect-timeout", "60s"]);
    let _held = streams.recv_timeout(WAIT).expect("the client connects");
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    client.interrupt();
    assert_interrupted(&mut client, signalled, "ws");
}

#[test]
fn sigterm_closes_an_open_connection_and_a_second_one_stops_at_once() {
    // A server that completes the handshake, then reads the client's
    // frames but never answers its Close.
    let (address, streams) = silent_listener();
    let url = format!("ws://{address}/");
    let mut client = Proc::spawn(&["connect", &url, "--connect-timeout", "60s"]);
    let mut server = streams.recv_timeout(WAIT).expect("the client connects");
    server.set_read_timeout(Some(WAIT)).unwrap();
    let request = read_head(&mut server);
    let key = request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    let accept = sockeye::proto::handshake::accept_key(key.as_bytes());
    server
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    client.wait_stderr("connected to");

    client.terminate();
    client.wait_stderr("interrupted, closing");
    let close = read_frame(&mut server).expect("the client's Close");
    assert_eq!(close.opcode, 0x8, "{close:?}");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");

    // No answer comes: a second signal does not wait for one.
    let signalled = Instant::now();
    client.terminate();
    assert_interrupted(&mut client, signalled, "closing");
}
