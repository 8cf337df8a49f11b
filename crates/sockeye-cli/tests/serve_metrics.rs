//! `sockeye serve --metrics ADDR`: a scrape of `/metrics` after a scripted
//! broadcast session reports exact counts, and the whole answer parses as
//! Prometheus text exposition.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{WAIT, client_frame, get, http, raw_websocket, read_frame, run, serve};

/// Messages the talking client sends.
const K: usize = 5;

/// Every payload is this long: frames of 2 + 24 bytes from the server,
/// 6 + 24 (masked) from a client.
fn payload(index: usize) -> String {
    format!("broadcast message #{index:05}")
}

/// One scrape: the samples by `name{labels}`, after checking that every
/// line is a comment or a sample.
fn scrape(address: &str) -> HashMap<String, f64> {
    let (head, body) = get(address, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let text = String::from_utf8(body).expect("UTF-8 exposition");
    assert!(text.ends_with('\n'), "{text}");
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"HELP" | &"TYPE")) && words.len() >= 3,
                "a HELP or TYPE comment: {line:?}"
            );
            if words[0] == "TYPE" {
                assert!(
                    matches!(words[2], "counter" | "gauge"),
                    "a known type: {line:?}"
                );
            }
            continue;
        }
        let (series, value) = parse_sample(line);
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

/// `name{label="value",...} number`, checked by the exposition's grammar.
fn parse_sample(line: &str) -> (&str, f64) {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {line:?}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (
            name,
            Some(
                rest.strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}")),
            ),
        ),
        None => (series, None),
    };
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    assert!(
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(is_name_char),
        "a metric name: {line:?}"
    );
    if let Some(labels) = labels {
        for pair in labels.split(',') {
            let (key, quoted) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("a label pair: {line:?}"));
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "a label name: {line:?}"
            );
            assert!(
                quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                "a quoted label value: {line:?}"
            );
        }
    }
    (series, value)
}

/// Scrapes until `settled` holds (a connection adds its counts when it
/// next waits, a moment after the client saw its messages), then returns
/// that scrape.
fn scrape_until(
    address: &str,
    settled: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = scrape(address);
        if settled(&samples) || Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts exact values.
fn assert_samples(samples: &HashMap<String, f64>, expected: &[(&str, usize)]) {
    for &(series, value) in expected {
        assert_eq!(
            samples.get(series).copied(),
            Some(value as f64),
            "{series}; all: {samples:#?}"
        );
    }
}

#[test]
fn a_broadcast_session_is_counted_exactly() {
    let server = serve(&["--broadcast", "--metrics", "127.0.0.1:0"]);
    let line = server.proc.wait_stderr("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .expect("http://ADDRESS/metrics")
        .to_owned();

    // Two refusals: a Host this server does not serve (421), a room path
    // that does not exist (404).
    let (head, _) = http(
        &server.address,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 421"), "{head}");
    let address = &server.address;
    let (head, _) = http(
        address,
        &format!(
            "GET /nowhere HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // Three members of the default room (no compression: raw frames).
    let mut talker = raw_websocket(address);
    let mut listeners = [raw_websocket(address), raw_websocket(address)];
    use std::io::Write;
    for index in 0..K {
        talker
            .write_all(&client_frame(0x1, payload(index).as_bytes()))
            .unwrap();
    }
    for listener in &mut listeners {
        for index in 0..K {
            let frame = read_frame(listener).expect("a broadcast frame");
            assert_eq!(frame.payload, payload(index).as_bytes());
        }
    }
    // The talker leaves with a closing handshake: Close 1000 each way.
    talker
        .write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let reply = read_frame(&mut talker).expect("the Close reply");
    assert_eq!(reply.close_code(), Some(1000));

    let len = payload(0).len();
    let expected = [
        ("sockeye_connections_total", 3),
        ("sockeye_connections_open", 2),
        ("sockeye_connections_closed_total{how=\"clean\"}", 1),
        ("sockeye_connections_closed_total{how=\"abnormal\"}", 0),
        ("sockeye_connections_refused_total{reason=\"host\"}", 1),
        (
            "sockeye_connections_refused_total{reason=\"application\"}",
            1,
        ),
        (
            "sockeye_connections_refused_total{reason=\"bad_request\"}",
            0,
        ),
        ("sockeye_messages_total{direction=\"in\"}", K),
        ("sockeye_messages_total{direction=\"out\"}", 2 * K),
        // K masked frames and the masked Close (6 + 2) in; K frames to
        // each listener and the Close reply (2 + 2) out.
        ("sockeye_bytes_total{direction=\"in\"}", K * (6 + len) + 8),
        (
            "sockeye_bytes_total{direction=\"out\"}",
            2 * K * (2 + len) + 4,
        ),
        ("sockeye_hub_published_total", K),
        ("sockeye_hub_queued_total", 2 * K),
        ("sockeye_hub_delivered_total", 2 * K),
        ("sockeye_hub_dropped_total{reason=\"full\"}", 0),
        ("sockeye_hub_dropped_total{reason=\"slow\"}", 0),
        ("sockeye_hub_queue_depth", 0),
        ("sockeye_hub_queue_depth_max", 0),
        ("sockeye_hub_topics", 1),
        ("sockeye_hub_subscribers", 2),
        ("sockeye_hub_subscriptions", 2),
    ];
    let samples = scrape_until(&metrics, |samples| {
        expected
            .iter()
            .all(|&(series, value)| samples.get(series).copied() == Some(value as f64))
    });
    assert_samples(&samples, &expected);
    // No backplane was configured.
    assert!(
        !samples
            .keys()
            .any(|series| series.starts_with("sockeye_backplane"))
    );

    // Other paths of the metrics listener are not the exposition.
    let (head, _) = get(&metrics, "/");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

#[test]
fn echo_mode_has_no_hub_series() {
    let server = serve(&["--metrics", "127.0.0.1:0"]);
    let line = server.proc.wait_stderr("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .expect("http://ADDRESS/metrics")
        .to_owned();
    let samples = scrape(&metrics);
    assert_samples(&samples, &[("sockeye_connections_open", 0)]);
    assert!(
        !samples
            .keys()
            .any(|series| series.starts_with("sockeye_hub"))
    );
}

#[test]
fn help_documents_the_option() {
    let finished = run(&["serve", "--help"], b"");
    assert_eq!(finished.code, 0);
    assert!(
        finished.stdout.contains("--metrics <ADDR>"),
        "{}",
        finished.stdout
    );
    assert!(finished.stdout.contains("/metrics"), "{}", finished.stdout);
}
