//! permessage-deflate throughput and ratio on JSON-like text, beside the
//! same messages uncompressed: sending (compress + frame) and receiving
//! (parse + unmask + inflate + UTF-8 check) on a server.
//!
//! `cargo bench -p sockeye-proto --bench deflate`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator, DeflateParams};
use sockeye_proto::handshake::ExtensionNegotiator;
use sockeye_proto::{Config, Connection, Event, Message, Role};

/// `count` JSON messages of about `size` bytes, each different (sequence
/// numbers and prices move) but alike, as a market-data feed is.
fn messages(count: usize, size: usize) -> Vec<Message> {
    let mut state = 0x9e37_79b9_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    (0..count)
        .map(|seq| {
            let mut text = format!("{{\"seq\":{seq},\"updates\":[");
            while text.len() < size {
                let r = next();
                text.push_str(&format!(
                    "{{\"symbol\":\"{}\",\"bid\":\"{}.{:02}\",\"ask\":\"{}.{:02}\",\"size\":{}}},",
                    ["ACME", "GLOBX", "INITECH", "UMBRL", "HOOLI"][(r % 5) as usize],
                    100 + r % 50,
                    r % 100,
                    100 + (r >> 8) % 50,
                    (r >> 16) % 100,
                    (r >> 4) % 1000
                ));
            }
            text.truncate(size - 2);
            text.push_str("]}");
            Message::text(text)
        })
        .collect()
}

fn params(takeover: bool) -> DeflateParams {
    let client = DeflateConfig::new()
        .server_no_context_takeover(!takeover)
        .client_no_context_takeover(!takeover);
    let answer = DeflateNegotiator::new(DeflateConfig::new()).negotiate(&[client.offer().unwrap()]);
    client.accept_response(&answer[0]).unwrap()
}

fn connection(role: Role, deflate: Option<(bool, u32)>) -> Connection {
    let mut conn = Connection::new(role, Config::default());
    if let Some((takeover, level)) = deflate {
        conn.enable_deflate(params(takeover), &DeflateConfig::new().level(level));
    }
    conn
}

const VARIANTS: [(&str, Option<(bool, u32)>); 4] = [
    ("plain", None),
    ("deflate-takeover-l1", Some((true, 1))),
    ("deflate-takeover-l6", Some((true, 6))),
    ("deflate-no-takeover-l6", Some((false, 6))),
];

fn bench(c: &mut Criterion) {
    for (count, size) in [(1000, 1024), (20, 64 * 1024)] {
        let batch = messages(count, size);
        let total: usize = batch.iter().map(Message::len).sum();
        let mut group = c.benchmark_group(format!("deflate/{count}x{size}"));
        group.throughput(Throughput::Bytes(total as u64));
        for (name, deflate) in VARIANTS {
            // What a client sends for this batch, for the receive side.
            let mut client = connection(Role::Client, deflate);
            for message in &batch {
                client.send(message.clone()).unwrap();
            }
            let mut wire = Vec::new();
            client.data_to_send(&mut wire);
            eprintln!(
                "{count}x{size} {name}: {} bytes on the wire for {total} ({:.1}% , ratio {:.2}x)",
                wire.len(),
                100.0 * wire.len() as f64 / total as f64,
                total as f64 / wire.len() as f64
            );
            group.bench_function(BenchmarkId::new("server_send", name), |b| {
                b.iter(|| {
                    let mut server = connection(Role::Server, deflate);
                    let mut sent = 0;
                    for message in &batch {
                        server.send(message.clone()).unwrap();
                        while let Some(chunk) = server.poll_transmit() {
                            sent += black_box(chunk).len();
                        }
                    }
                    sent
                })
            });
            group.bench_function(BenchmarkId::new("server_receive", name), |b| {
                b.iter(|| {
                    let mut server = connection(Role::Server, deflate);
                    server.receive_data(black_box(&wire));
                    let mut received = 0;
                    while let Some(Event::Message(message)) = server.next_event() {
                        received += message.len();
                    }
                    assert_eq!(received, total);
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
