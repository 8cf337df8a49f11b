//! `sockeye bench` against `sockeye serve` (and against a faulty echo
//! server run in this process): verified payloads, the JSON and HTML
//! reports, and errors counted rather than ignored.

mod common;

use std::net::SocketAddr;

use common::{Scratch, pki, run, serve};
use serde_json::Value;
use sockeye::{Message, ServerBuilder};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[test]
fn bench_counts_verified_echoes_and_writes_reports() {
    let server = serve(&[]);
    let dir = Scratch::new("bench-report");
    let report = dir.path().join("report.html");
    let finished = run(
        &[
            "bench",
            &server.url,
            "-c",
            "3",
            "-n",
            "600",
            "-p",
            "4",
            "-s",
            "100",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["messages"], 600);
    assert_eq!(results["bytes"], 600 * 100);
    assert_eq!(results["connected"], 3);
    assert_eq!(results["errors"]["total"], 0, "{results}");
    assert_eq!(results["settings"]["kind"], "binary");
    assert_eq!(
        results["settings"]["compressed_connections"], 3,
        "deflate by default"
    );
    let latency = &results["latency_us"];
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency[field].as_f64().unwrap() > 0.0, "{field}: {latency}");
    }
    assert!(latency["p50"].as_f64() <= latency["max"].as_f64());
    assert!(results["msgs_per_sec"].as_f64().unwrap() > 0.0);
    let counted: u64 = results["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 600);

    let html = std::fs::read_to_string(&report).expect("the report was written");
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), 2, "histogram and timeline");
    assert!(html.contains("<rect"), "histogram bars");
    assert!(!html.contains("<script"), "no scripts");
}

#[test]
fn bench_text_mode_for_a_duration_prints_a_summary() {
    let server = serve(&[]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "--text",
            "-c",
            "2",
            "-p",
            "2",
            "-d",
            "1s",
            "-s",
            "1KiB",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(
        out.contains("2 connection(s), 1.0 KiB text messages, pipeline 2"),
        "{out}"
    );
    assert!(out.contains("msgs/s"), "{out}");
    assert!(out.contains("p99.9"), "{out}");
    assert!(out.contains("errors     0"), "{out}");
    assert!(
        finished.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        finished.stderr
    );
}

#[test]
fn bench_ramps_up_and_works_over_tls() {
    let dir = Scratch::new("bench-tls");
    let (ca, cert, key) = pki(&dir);
    let server = serve(&["--cert", &cert, "--key", &key]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "--ca",
            &ca,
            "-c",
            "4",
            "--ramp-up",
            "40",
            "-n",
            "200",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["messages"], 200);
    assert_eq!(results["connected"], 4);
    assert_eq!(results["settings"]["ramp_up"], 40.0);
}

#[test]
fn bench_compressed_json_goes_round_its_prepared_cycle() {
    // 1 KiB messages repeat every 64 (compressed ahead of time, two
    // periods): 1,000 per connection go round the cycle many times, every
    // echo checked after the server inflated and compressed it again.
    let server = serve(&[]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "--text",
            "--payload",
            "json",
            "-c",
            "2",
            "-p",
            "8",
            "-n",
            "2000",
            "-s",
            "1KiB",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["messages"], 2000);
    assert_eq!(results["bytes"], 2000 * 1024);
    assert_eq!(results["errors"]["total"], 0, "{results}");
    assert_eq!(results["settings"]["compressed_connections"], 2);
}

/// An echo server in this process that alters every 10th message.
fn faulty_echo_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let Ok(mut ws) = ServerBuilder::new().accept_tcp(tcp).await else {
                        return;
                    };
                    let mut count = 0u64;
                    while let Some(Ok(message)) = ws.recv().await {
                        count += 1;
                        let reply = if count.is_multiple_of(10) {
                            let mut bytes = message.as_bytes().to_vec();
                            if let Some(last) = bytes.last_mut() {
                                *last ^= 1;
                            }
                            Message::binary(bytes)
                        } else {
                            message
                        };
                        if ws.send(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    address
}

#[test]
fn bench_detects_altered_echoes() {
    let address = faulty_echo_server();
    let url = format!("ws://{address}/");
    let finished = run(&["bench", &url, "-c", "1", "-n", "100", "--json"], b"");
    assert_eq!(finished.code, 1, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["messages"], 100);
    // The 10th, 20th, ... echo is altered.
    assert_eq!(results["errors"]["mismatched"], 10, "{results}");
    assert_eq!(results["errors"]["total"], 10);
    assert!(finished.stderr.contains("error"), "{}", finished.stderr);
}

#[test]
fn bench_counts_connections_the_server_drops() {
    // The server's message limit is below the bench's message size: each
    // connection is closed with 1009 at its first message.
    let server = serve(&["--max-message-size", "100"]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "-c",
            "2",
            "-n",
            "10",
            "-s",
            "200",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 1, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["errors"]["connection"], 2, "{results}");
    let first = results["errors"]["first"].as_str().unwrap();
    assert!(first.contains("1009"), "{first}");
}

/// A TCP echo server in this process (no WebSocket) that, when `alter`
/// is set, flips one byte of every 1000th chunk it echoes.
fn tcp_echo_server(alter: bool) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 64 * 1024];
                let mut chunks = 0u64;
                loop {
                    let read = match tcp.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(read) => read,
                    };
                    chunks += 1;
                    if alter && chunks.is_multiple_of(1000) {
                        buffer[read - 1] ^= 1;
                    }
                    if tcp.write_all(&buffer[..read]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[test]
fn bench_raw_echo_moves_masked_frames_through_a_tcp_echo_server() {
    let address = tcp_echo_server(false);
    let url = format!("ws://{address}/");
    for size in ["20", "1000", "70000"] {
        let finished = run(
            &[
                "bench",
                &url,
                "--raw-echo",
                "-c",
                "2",
                "-p",
                "4",
                "-s",
                size,
                "-n",
                "400",
                "--json",
            ],
            b"",
        );
        assert_eq!(finished.code, 0, "{}", finished.stderr);
        let results = json(&finished.stdout);
        assert_eq!(results["messages"], 400, "{results}");
        assert_eq!(results["settings"]["mode"], "raw-echo");
        assert_eq!(results["errors"]["total"], 0, "{results}");
    }
}

#[test]
fn bench_raw_echo_detects_altered_bytes() {
    let address = tcp_echo_server(true);
    let url = format!("ws://{address}/");
    let finished = run(
        &[
            "bench",
            &url,
            "--raw-echo",
            "-c",
            "1",
            "-s",
            "10",
            "-n",
            "5000",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 1, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["errors"]["mismatched"], 1, "{results}");
}

#[test]
fn bench_warmup_reports_a_window_and_announces_it() {
    let server = serve(&["--no-compression"]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "300ms",
            "--text",
            "--payload",
            "json",
            "-s",
            "512",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    let window = &results["window"];
    let seconds = window["seconds"].as_f64().unwrap();
    assert!((0.5..0.9).contains(&seconds), "{window}");
    assert!(window["messages"].as_u64().unwrap() > 0);
    assert!(window["messages"].as_u64() < results["messages"].as_u64());
    let start = finished
        .stderr
        .find("sockeye: window start")
        .expect("announced");
    let end = finished
        .stderr
        .find("sockeye: window end")
        .expect("announced");
    assert!(start < end, "{}", finished.stderr);
}

#[test]
fn bench_idle_holds_connections_from_spread_source_addresses() {
    let server = serve(&["--no-compression"]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "--idle",
            "-c",
            "40",
            "-d",
            "300ms",
            "--local-addresses",
            "3",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("sockeye: 40 idle connection(s) open"),
        "{}",
        finished.stderr
    );
    let results = json(&finished.stdout);
    assert_eq!(results["connected"], 40);
    assert_eq!(results["messages"], 0);
    assert_eq!(results["errors"]["total"], 0, "{results}");
    // Raw TCP idle connections need no WebSocket server.
    let address = tcp_echo_server(false);
    let url = format!("ws://{address}/");
    let finished = run(
        &[
            "bench",
            &url,
            "--idle",
            "--raw-echo",
            "-c",
            "10",
            "-d",
            "200ms",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
}

#[test]
fn bench_fanout_counts_deliveries_to_every_receiver() {
    for compression in [false, true] {
        let server = match compression {
            false => serve(&["--broadcast", "--no-compression"]),
            true => serve(&["--broadcast"]),
        };
        let mut args = vec![
            "bench",
            &server.url,
            "--fanout",
            "-c",
            "5",
            "-p",
            "4",
            "-n",
            "200",
            "-s",
            "256",
            "--text",
            "--payload",
            "json",
            "--json",
        ];
        if !compression {
            args.push("--no-compression");
        }
        let finished = run(&args, b"");
        assert_eq!(finished.code, 0, "{}", finished.stderr);
        let results = json(&finished.stdout);
        assert_eq!(results["connected"], 6, "five receivers and the publisher");
        assert_eq!(results["messages"], 5 * 200, "{results}");
        assert_eq!(results["errors"]["total"], 0, "{results}");
        let compressed = if compression { 6 } else { 0 };
        assert_eq!(results["settings"]["compressed_connections"], compressed);
    }
}

#[test]
fn bench_modes_refuse_what_they_cannot_do() {
    let finished = run(
        &["bench", "ws://127.0.0.1:9/", "--local-addresses", "2"],
        b"",
    );
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("--local-addresses"),
        "{}",
        finished.stderr
    );
    let finished = run(&["bench", "wss://127.0.0.1:9/", "--raw-echo"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    let finished = run(&["bench", "ws://127.0.0.1:9/", "--idle", "-n", "5"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
}

#[test]
fn bench_fanout_spreads_receivers_over_urls_and_publishes_at_a_rate() {
    // Two URLs of one server's default room (without a backplane, the
    // receivers of a second server would get nothing): receivers 1, 3, 5
    // on the first, 2, 4, 6 on the second.
    let server = serve(&["--broadcast", "--no-compression"]);
    let first = format!("{}/", server.url);
    let second = server.url.clone();
    let finished = run(
        &[
            "bench",
            &first,
            &second,
            "--fanout",
            "-c",
            "6",
            "-p",
            "8",
            "-n",
            "100",
            "--rate",
            "200",
            "-s",
            "256",
            "--text",
            "--payload",
            "json",
            "--no-compression",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("sockeye: 6 receiver(s) connected"),
        "{}",
        finished.stderr
    );
    let results = json(&finished.stdout);
    assert_eq!(results["connected"], 7, "{results}");
    assert_eq!(results["messages"], 600, "{results}");
    assert_eq!(results["errors"]["total"], 0, "{results}");
    assert_eq!(results["settings"]["urls"][1], second.as_str());
    assert_eq!(results["settings"]["rate"], 200.0);
    let fanout = &results["fanout"];
    assert_eq!(fanout["publishes"], 100, "{fanout}");
    assert_eq!(fanout["rate_target"], 200.0);
    // 100 messages 5 ms apart: about 200/s, whatever the machine's load
    // (the first is due 5 ms after the start, the last 500 ms after).
    let achieved = fanout["rate_achieved"].as_f64().unwrap();
    assert!((100.0..=260.0).contains(&achieved), "{fanout}");
    assert_eq!(fanout["reach_all_count"], 100, "{fanout}");
    let reach_all = &fanout["reach_all_us"];
    assert!(reach_all["p50"].as_f64().unwrap() > 0.0, "{fanout}");
    assert!(reach_all["max"].as_f64() >= reach_all["p50"].as_f64());
    let per_url = fanout["per_url"].as_array().unwrap();
    assert_eq!(per_url.len(), 2);
    for (url, expected) in per_url.iter().zip([&first, &second]) {
        assert_eq!(url["url"], expected.as_str());
        assert_eq!(url["receivers"], 3, "{url}");
        assert_eq!(url["deliveries"], 300, "{url}");
        let latency = &url["latency_us"];
        for field in ["p50", "p99", "p999", "max"] {
            assert!(latency[field].as_f64().unwrap() > 0.0, "{field}: {url}");
        }
        // No delivery is slower than the slowest reach-all.
        assert!(
            latency["max"].as_f64() <= reach_all["max"].as_f64(),
            "{fanout}"
        );
    }

    // The same for people: a line per URL.
    let finished = run(
        &[
            "bench",
            &first,
            &second,
            "--fanout",
            "-c",
            "2",
            "-n",
            "20",
            "--rate",
            "100",
            "-s",
            "64",
            "--no-compression",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(out.contains("publishes  20 at "), "{out}");
    assert!(out.contains("(asked 100/s; "), "{out}");
    assert!(out.contains("reach all  p50 "), "{out}");
    assert!(
        out.contains(&format!(
            "  {first}: 1 receiver(s), 20 deliveries; latency p50 "
        )),
        "{out}"
    );
    assert!(out.contains(&format!("  {second}: 1 receiver(s)")), "{out}");
}

/// A raw TCP broadcast server in this process (no WebSocket handshake):
/// every frame a connection sends is written, unmasked, to every other
/// connection, as the benchmark's raw broadcast peer does.
fn raw_broadcast_server() -> SocketAddr {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let members: Arc<Mutex<Vec<(u64, std::net::TcpStream)>>> = Arc::default();
    std::thread::spawn(move || {
        for (id, tcp) in (0u64..).zip(listener.incoming()) {
            let Ok(mut tcp) = tcp else { return };
            members.lock().unwrap().push((id, tcp.try_clone().unwrap()));
            let members = members.clone();
            std::thread::spawn(move || {
                while let Some(frame) = common::read_frame(&mut tcp) {
                    let mut bytes = vec![0x80 | frame.opcode];
                    match frame.payload.len() {
                        short @ 0..=125 => bytes.push(short as u8),
                        medium @ 126..=65535 => {
                            bytes.push(126);
                            bytes.extend_from_slice(&(medium as u16).to_be_bytes());
                        }
                        long => {
                            bytes.push(127);
                            bytes.extend_from_slice(&(long as u64).to_be_bytes());
                        }
                    }
                    bytes.extend_from_slice(&frame.payload);
                    for (other, stream) in members.lock().unwrap().iter_mut() {
                        if *other != id {
                            let _ = stream.write_all(&bytes);
                        }
                    }
                }
            });
        }
    });
    address
}

#[test]
fn bench_fanout_without_handshake_through_a_raw_broadcast_server() {
    let address = raw_broadcast_server();
    let url = format!("ws://{address}/");
    let finished = run(
        &[
            "bench",
            &url,
            "--fanout",
            "--no-handshake",
            "-c",
            "4",
            "-p",
            "4",
            "-n",
            "200",
            "-s",
            "300",
            "--text",
            "--payload",
            "json",
            "--local-addresses",
            "2",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["connected"], 5, "{results}");
    assert_eq!(results["messages"], 4 * 200, "{results}");
    assert_eq!(results["errors"]["total"], 0, "{results}");
    assert_eq!(results["settings"]["compression_offered"], false);
}

#[test]
fn bench_fanout_options_refuse_what_they_cannot_do() {
    for args in [
        // Several URLs spread fan-out receivers only.
        &["bench", "ws://127.0.0.1:9/", "ws://127.0.0.1:10/"][..],
        &["bench", "ws://127.0.0.1:9/", "--rate", "100"],
        &["bench", "ws://127.0.0.1:9/", "--fanout", "--rate", "0"],
        &["bench", "ws://127.0.0.1:9/", "--no-handshake"],
        &["bench", "wss://127.0.0.1:9/", "--fanout", "--no-handshake"],
        &[
            "bench",
            "ws://127.0.0.1:9/",
            "wss://127.0.0.1:9/",
            "--fanout",
            "--local-addresses",
            "2",
        ],
    ] {
        let finished = run(args, b"");
        assert_eq!(finished.code, 2, "{args:?}: {}", finished.stderr);
    }
}

#[test]
fn bench_fanout_over_servers_that_share_nothing_says_so() {
    // Two servers without a backplane: the second one's receivers never
    // get the publisher's probes.
    let first = serve(&["--broadcast", "--no-compression"]);
    let second = serve(&["--broadcast", "--no-compression"]);
    let finished = run(
        &[
            "bench",
            &first.url,
            &second.url,
            "--fanout",
            "-c",
            "2",
            "-n",
            "10",
            "--no-compression",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 1, "{}", finished.stderr);
    let results = json(&finished.stdout);
    let first_error = results["errors"]["first"].as_str().unwrap();
    assert!(
        first_error
            .contains("1 of 2 receivers got nothing in 5s: do the servers share their rooms"),
        "{results}"
    );
}

#[test]
fn bench_fanout_measures_latency_across_nodes_over_redis_and_nats() {
    for scheme in ["redis", "nats"] {
        let Some(broker) = common::broker(scheme, "bench_fanout_across_nodes") else {
            continue;
        };
        let nodes = [
            serve(&[
                "--broadcast",
                "--no-compression",
                "--backplane",
                &broker.url,
            ]),
            serve(&[
                "--broadcast",
                "--no-compression",
                "--backplane",
                &broker.url,
            ]),
        ];
        let finished = run(
            &[
                "bench",
                &nodes[0].url,
                &nodes[1].url,
                "--fanout",
                "-c",
                "4",
                "-p",
                "16",
                "-n",
                "100",
                "--rate",
                "500",
                "-s",
                "256",
                "--text",
                "--payload",
                "json",
                "--no-compression",
                "--json",
            ],
            b"",
        );
        assert_eq!(finished.code, 0, "{scheme}: {}", finished.stderr);
        let results = json(&finished.stdout);
        assert_eq!(results["errors"]["total"], 0, "{scheme}: {results}");
        assert_eq!(results["messages"], 400, "{scheme}: {results}");
        let per_url = results["fanout"]["per_url"].as_array().unwrap();
        for (url, node) in per_url.iter().zip(&nodes) {
            assert_eq!(url["url"], node.url.as_str());
            assert_eq!(url["receivers"], 2, "{scheme}: {url}");
            // Every message reached the other node's receivers too, in
            // order (each receiver checks the sequence).
            assert_eq!(url["deliveries"], 200, "{scheme}: {url}");
            assert!(url["latency_us"]["p99"].as_f64().unwrap() > 0.0);
        }
    }
}

#[test]
fn bench_says_when_the_server_broadcasts_or_echoes() {
    // Echo mode against a broadcast server: each connection gets the
    // others' messages.
    let broadcast = serve(&["--broadcast"]);
    for extra in [
        &["--no-compression"][..],
        &[],
        &["--payload", "json", "-s", "512"],
    ] {
        let mut args = vec![
            "bench",
            &broadcast.url,
            "-c",
            "4",
            "-p",
            "4",
            "-n",
            "100000",
        ];
        args.extend_from_slice(extra);
        let finished = run(&args, b"");
        assert_eq!(finished.code, 1, "{extra:?}: {}", finished.stderr);
        assert!(finished.stdout.is_empty(), "no report: {}", finished.stdout);
        assert_eq!(
            finished.stderr,
            "sockeye: the replies do not match what was sent: is this a broadcast server? \
             use --fanout",
            "{extra:?}"
        );
    }
    // Fan-out against an echo server: the publisher gets its messages
    // back, the receivers nothing.
    let echo = serve(&[]);
    for extra in [&["--no-compression"][..], &[]] {
        let mut args = vec!["bench", &echo.url, "--fanout", "-c", "3", "-n", "1000"];
        args.extend_from_slice(extra);
        let finished = run(&args, b"");
        assert_eq!(finished.code, 1, "{extra:?}: {}", finished.stderr);
        assert!(
            finished.stderr.ends_with(
                "sockeye: deliveries do not arrive at the other connections: is this an echo \
                 server? drop --fanout"
            ),
            "{extra:?}: {}",
            finished.stderr
        );
    }
}

#[test]
fn bench_fanout_reports_deliveries_and_counts_the_publisher_once() {
    let server = serve(&["--broadcast"]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "--fanout",
            "-c",
            "4",
            "-n",
            "50",
            "-s",
            "100",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(
        out.contains(
            "(fanout): 4 receiver(s) and a publisher, 100 B binary messages, window 1, compressed\n"
        ),
        "{out}"
    );
    assert!(out.contains("deliveries 200 in "), "{out}");
    assert!(out.contains(" deliveries/s, "), "{out}");
    let finished = run(
        &[
            "bench",
            &server.url,
            "--fanout",
            "-c",
            "4",
            "-n",
            "50",
            "--json",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let results = json(&finished.stdout);
    assert_eq!(results["settings"]["compressed_connections"], 5);
    let per_second = results["fanout"]["deliveries_per_sec"].as_f64().unwrap();
    assert!(per_second > 0.0, "{results}");
    assert_eq!(per_second, results["msgs_per_sec"].as_f64().unwrap());
}

#[test]
fn bench_checks_its_output_paths_before_the_run() {
    // Nothing listens on the port: a run would fail with 3; the paths are
    // checked first (2).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let dir = Scratch::new("bench-paths");
    let missing = dir.path().join("no/such/dir/report.html");
    let missing = missing.to_str().unwrap();
    let directory = dir.path().to_str().unwrap();
    let json_missing = format!("--json={missing}");
    for (args, expected) in [
        (
            vec!["bench", &url, "--report", missing],
            "cannot write the report to ",
        ),
        (
            vec!["bench", &url, &json_missing],
            "cannot write the results to ",
        ),
        (
            vec!["bench", &url, "--report", directory],
            "it is a directory",
        ),
    ] {
        let finished = run(&args, b"");
        assert_eq!(finished.code, 2, "{args:?}: {}", finished.stderr);
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
        assert!(finished.stderr.contains(expected), "{}", finished.stderr);
        assert!(finished.stdout.is_empty(), "{}", finished.stdout);
    }
    let finished = run(&["bench", &url, "--report", missing], b"");
    assert!(
        finished.stderr.contains("does not exist"),
        "{}",
        finished.stderr
    );
    assert!(!dir.path().join("no").exists());

    // --json=FILE writes the JSON there, the summary on stdout.
    let server = serve(&[]);
    let results = dir.path().join("results.json");
    let finished = run(
        &[
            "bench",
            &server.url,
            "-c",
            "2",
            "-n",
            "100",
            &format!("--json={}", results.display()),
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(
        finished.stdout.contains("messages   100 in "),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains("results written to "),
        "{}",
        finished.stdout
    );
    let written = json(&std::fs::read_to_string(&results).unwrap());
    assert_eq!(written["messages"], 100);
}

#[test]
fn bench_writes_progress_lines_when_stderr_is_not_a_terminal() {
    let server = serve(&[]);
    let finished = run(
        &[
            "bench",
            &server.url,
            "-c",
            "2",
            "-d",
            "1500ms",
            "--progress-interval",
            "300ms",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let lines: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains(" messages, ") && line.contains("connection(s) open"))
        .collect();
    assert!(!lines.is_empty(), "progress lines: {}", finished.stderr);
    assert!(lines[0].starts_with("sockeye: "), "{}", lines[0]);
    assert!(
        !finished.stderr.contains('\r'),
        "no bar: {:?}",
        finished.stderr
    );
}
