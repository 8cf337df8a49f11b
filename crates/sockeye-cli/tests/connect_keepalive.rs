//! `sockeye connect --ping-interval` against a server that never answers
//! its Pings: the keepalive Ping waits for its Pong (20 s by default)
//! without spinning. Before the fix the engine handed out a deadline
//! already past once the interval (here 100 ms) had run out while the
//! Ping waited, and the command burnt a whole core and did not hear
//! SIGTERM.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, WAIT, read_frame, read_head};

/// The exit status for an interruption (see `sockeye --help`).
const INTERRUPTED: i32 = 130;

/// How long the command's CPU time is watched while its Ping goes
/// unanswered: fifteen keepalive intervals.
const WINDOW: Duration = Duration::from_millis(1500);

/// The most CPU time the command may use over [`WINDOW`]: a waiting one
/// uses next to none, a spinning one all the CPU it gets (0.6 to 0.7 s on
/// a loaded two-core machine).
const MAX_CPU: Duration = Duration::from_millis(200);

/// Well above what a signal takes to be heard.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Clock ticks per second, the unit of /proc/PID/stat's times.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The CPU time (user + system, all threads) process `pid` has used so
/// far, from /proc/PID/stat (fields 14 and 15, in clock ticks).
fn cpu_time(pid: u32, ticks: u64) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // The command name, field 2, is in parentheses and may hold spaces:
    // the fields after it start at the last ')'.
    let rest = &stat[stat.rfind(')').expect("a command name") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (the state), so field 14 is fields[11].
    let used: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(used * 1000 / ticks)
}

/// Accepts the client's connection and completes its handshake (no
/// extension, no subprotocol); the stream is then never read until the
/// test says so, and nothing is ever written on it.
fn accept_websocket(listener: &TcpListener) -> TcpStream {
    let (mut stream, _) = listener.accept().expect("the client connects");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = read_head(&mut stream);
    let key = request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    let accept = sockeye::proto::handshake::accept_key(key.as_bytes());
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    stream
}

#[test]
fn an_unanswered_keepalive_ping_waits_without_spinning_and_sigterm_is_heard() {
    let ticks = clock_ticks();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    // stdin stays open (piped, never written): no end of input closes it.
    let mut client = Proc::spawn(&["connect", &url, "--ping-interval", "100ms"]);
    let mut server = accept_websocket(&listener);
    client.wait_stderr("connected to");

    // The first Ping goes out after 100 ms and is never answered; the
    // Pong timeout (20 s, the default) is far off.
    let before = cpu_time(client.id(), ticks);
    std::thread::sleep(WINDOW);
    let used = cpu_time(client.id(), ticks) - before;
    assert!(
        used < MAX_CPU,
        "sockeye connect used {used:?} of CPU over {WINDOW:?} while its Ping waited \
         (a spin); stderr: {:?}",
        client.stderr_lines()
    );

    let signalled = Instant::now();
    client.terminate();
    client.wait_stderr("interrupted, closing");
    assert!(
        signalled.elapsed() < PROMPTLY,
        "SIGTERM heard {:?} after it was sent",
        signalled.elapsed()
    );

    // All the client sent: one Ping (the next one waits for its Pong),
    // then its Close, both masked.
    let mut pings = 0;
    let close = loop {
        let frame = read_frame(&mut server).expect("the client's Close");
        assert!(frame.masked, "a client frame must be masked: {frame:?}");
        match frame.opcode {
            0x9 => pings += 1,
            0x8 => break frame,
            _ => panic!("only Pings before the Close: {frame:?}"),
        }
    };
    assert_eq!(
        pings, 1,
        "Pings sent while the first one waited for its Pong"
    );
    assert_eq!(close.close_code(), Some(1000), "{close:?}");

    // The server never answers the Close: a second SIGTERM stops the
    // command at once.
    let signalled = Instant::now();
    client.terminate();
    let code = client.exit_code();
    let took = signalled.elapsed();
    assert_eq!(code, INTERRUPTED, "{:?}", client.stderr_lines());
    assert!(took < PROMPTLY, "exited {took:?} after the second SIGTERM");
}
