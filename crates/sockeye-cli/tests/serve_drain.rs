//! `sockeye serve` drains on SIGTERM (issue 14, item 7): with 1000 open
//! WebSockets, every client gets Close 1001 within the drain window plus
//! some slack, a WebSocket request during the drain gets 503, the process
//! exits 0, and its report line counts them all as closed cleanly.
//!
//! The clients are tokio tasks in this process over 127.0.0.1 (opened 50
//! at a time); the server and the clients each hold one descriptor per
//! connection, so the test needs about 2,100 descriptors (the open-files
//! limit is checked, and the count lowered if it is smaller).

mod common;

use std::time::{Duration, Instant};

use common::serve;
use futures_util::StreamExt;
use sockeye::{ClientBuilder, CloseCode, Error};

/// Connections to open, unless the descriptor limit is lower.
const CONNECTIONS: usize = 1000;

/// The soft limit on open files, from /proc (Linux); `None` elsewhere.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_1000_connections_with_1001_over_the_window() {
    let connections = match open_files_limit() {
        // Both ends are in processes with this limit; keep 100 spare.
        Some(limit) if limit < CONNECTIONS + 100 => {
            eprintln!("open-files limit {limit}: testing with fewer connections");
            limit.saturating_sub(100).max(10)
        }
        _ => CONNECTIONS,
    };
    let window = Duration::from_secs(1);
    // Every client is on 127.0.0.1: no per-address cap.
    let mut server = serve(&[
        "--drain-window",
        "1s",
        "--drain-timeout",
        "10s",
        "--max-connections-per-address",
        "off",
    ]);
    let url = format!("{}/", server.url);

    let opened = Instant::now();
    let clients: Vec<_> = futures_util::stream::iter(0..connections)
        .map(|_| {
            let url = url.clone();
            async move { ClientBuilder::new(&url).connect().await.map(|(ws, _)| ws) }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let (closes, mut closed) = tokio::sync::mpsc::unbounded_channel();
    for client in clients {
        let mut ws = client.expect("connected");
        let closes = closes.clone();
        tokio::spawn(async move {
            // `None`: a clean closing handshake.
            let clean = ws.recv().await.is_none();
            let code = ws
                .closed()
                .and_then(|closed| closed.received.as_ref())
                .map(|frame| frame.code);
            let _ = closes.send((Instant::now(), clean, code));
        });
    }
    drop(closes);
    eprintln!("{connections} connections opened in {:?}", opened.elapsed());

    let signalled = Instant::now();
    server.proc.terminate();
    let line = tokio::task::block_in_place(|| server.proc.wait_stderr("shutting down"));
    assert!(
        line.contains(&format!(
            "closing {connections} WebSocket connection(s) with 1001"
        )),
        "{line}"
    );
    // A WebSocket request during the drain.
    match ClientBuilder::new(&url).connect().await {
        Err(Error::Handshake(refusal)) => {
            assert_eq!(
                refusal.status(),
                Some(http::StatusCode::SERVICE_UNAVAILABLE)
            );
        }
        Ok(_) => panic!("admitted during the drain"),
        Err(error) => panic!("refused without 503: {error}"),
    }

    let slack = Duration::from_secs(5);
    let mut first = Duration::MAX;
    let mut last = Duration::ZERO;
    for _ in 0..connections {
        let (at, clean, code) = tokio::time::timeout(window + slack, closed.recv())
            .await
            .expect("every client closed in time")
            .expect("every client reports");
        assert!(clean, "a client's connection did not close cleanly");
        assert_eq!(code, Some(CloseCode::GOING_AWAY));
        let after = at.duration_since(signalled);
        first = first.min(after);
        last = last.max(after);
    }
    assert!(
        last < window + slack,
        "the last Close came {last:?} after SIGTERM"
    );
    eprintln!("Close frames arrived from {first:?} to {last:?} after SIGTERM");

    let code = tokio::task::block_in_place(|| server.proc.exit_code());
    assert_eq!(code, 0);
    let stderr = server.proc.stderr_lines().join("\n");
    let report = format!(
        "sockeye: shutdown: {connections} connections, {connections} closed cleanly, 0 cut"
    );
    assert!(stderr.contains(&report), "{stderr}");
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    for line in stderr.lines().filter(|line| line.contains("shutdown")) {
        eprintln!("{line}");
    }
}

#[test]
fn drain_code_1012_and_a_zero_window() {
    let mut server = serve(&["--drain-code", "1012", "--drain-window", "0"]);
    let mut client = common::connect(&server.url, &[]);
    server.proc.terminate();
    // `sockeye connect` exits 0 only for 1000 and 1001.
    assert_eq!(client.exit_code(), 1);
    let stderr = client.stderr_lines().join("\n");
    assert!(
        stderr.contains("closed by the server: 1012 (server restarting)"),
        "{stderr}"
    );
    assert_eq!(server.proc.exit_code(), 0);
    let stderr = server.proc.stderr_lines().join("\n");
    assert!(
        stderr.contains("sockeye: shutdown: 1 connection, 1 closed cleanly, 0 cut"),
        "{stderr}"
    );
}

#[test]
fn drain_code_must_be_1001_or_1012() {
    let finished = common::run(&["serve", "--drain-code", "1000"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(finished.stderr.contains("1001"), "{}", finished.stderr);
}
