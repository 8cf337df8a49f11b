//! Microbenchmarks of the receive path's kernels, each beside a plain
//! memcpy of the same bytes: unmasking, UTF-8 validation and frame parsing;
//! and the engine's whole per-message path, a server echoing messages.
//!
//! Run with `cargo bench -p sockeye-proto --bench kernels`; criterion
//! prints throughput in GiB/s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockeye_proto::frame::mask::{apply_mask, apply_mask_reference};
use sockeye_proto::utf8::Utf8Validator;
use sockeye_proto::{Config, Connection, Event, Message, Role};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn memcpy_and_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [1 << 10, 64 << 10, 1 << 20] {
        let source = vec![0x5au8; size];
        let mut target = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| target.copy_from_slice(black_box(&source)))
        });
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut target), KEY, 1))
        });
        group.bench_with_input(BenchmarkId::new("bytewise", size), &size, |b, _| {
            b.iter(|| apply_mask_reference(black_box(&mut target), KEY, 1))
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let size = 1 << 20;
    let ascii: Vec<u8> = b"{\"id\":12345,\"name\":\"sockeye\",\"tags\":[\"a\",\"b\"]} "
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect();
    let mixed: Vec<u8> = "héllo wörld, κόσμε, 日本語のテキスト, 🐟 "
        .bytes()
        .cycle()
        .take(size)
        .collect();
    // Cut at a character boundary so the input is valid.
    let mixed = std::str::from_utf8(&mixed)
        .map(|_| mixed.clone())
        .unwrap_or_else(|e| mixed[..e.valid_up_to()].to_vec());
    let mut target = vec![0u8; size];
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| target.copy_from_slice(black_box(&ascii)))
    });
    for (name, text) in [("ascii", &ascii), ("mixed", &mixed)] {
        group.bench_function(BenchmarkId::new("validator", name), |b| {
            b.iter(|| {
                let mut validator = Utf8Validator::new();
                validator.feed(black_box(text)).unwrap();
                validator.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("std", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(text)).unwrap().len())
        });
    }
    group.finish();
}

/// Bytes a client would send: `count` binary messages of `size` bytes.
fn client_stream(count: usize, size: usize) -> Vec<u8> {
    let mut client = Connection::new(Role::Client, Config::default());
    for _ in 0..count {
        client.send(Message::binary(vec![0x42; size])).unwrap();
    }
    let mut wire = Vec::new();
    client.data_to_send(&mut wire);
    wire
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (count, size) in [(10_000, 20), (1000, 1024), (1, 1 << 20)] {
        let wire = client_stream(count, size);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut target = vec![0u8; wire.len()];
        let name = format!("{count}x{size}");
        group.bench_function(BenchmarkId::new("memcpy", &name), |b| {
            b.iter(|| target.copy_from_slice(black_box(&wire)))
        });
        group.bench_function(BenchmarkId::new("server_receive", &name), |b| {
            b.iter(|| {
                let mut server = Connection::new(Role::Server, Config::default());
                server.receive_data(black_box(&wire));
                let mut received = 0;
                while let Some(Event::Message(message)) = server.next_event() {
                    received += message.len();
                }
                assert_eq!(received, count * size);
            })
        });
    }
    group.finish();
}

/// A server's whole per-message path as a front-end drives it: bytes in,
/// each message sent back, the replies taken for one vectored write and the
/// timers polled (a server's defaults run keepalive and message timers).
/// `batch`: the client's messages arrive in one read; `per_read`: one read
/// each, so every message also pays for a read cycle (the input and output
/// buffers taken and given back); `per_read_ping`: each read also holds a
/// Ping, whose Pong overtakes the corked reply.
fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo");
    let config = Arc::new(Config::default());
    let now = Instant::now();
    let ping = {
        let mut client = Connection::new(Role::Client, Config::default());
        client.send_ping(&b"ping"[..]).unwrap();
        let mut wire = Vec::new();
        client.data_to_send(&mut wire);
        wire
    };
    for (count, size) in [(1000, 20), (1000, 1024), (1, 1 << 20)] {
        let frames: Vec<Vec<u8>> = (0..count).map(|_| client_stream(1, size)).collect();
        let wire = frames.concat();
        let with_pings: Vec<Vec<u8>> = frames
            .iter()
            .map(|frame| [&frame[..], &ping[..]].concat())
            .collect();
        group.throughput(Throughput::Elements(count as u64));
        let name = format!("{count}x{size}");
        let reads: [(&str, &[Vec<u8>]); 3] = [
            ("batch", std::slice::from_ref(&wire)),
            ("per_read", &frames),
            ("per_read_ping", &with_pings),
        ];
        for (mode, reads) in reads {
            group.bench_function(BenchmarkId::new(mode, &name), |b| {
                b.iter(|| {
                    let mut server = Connection::new(Role::Server, config.clone());
                    let mut sent = 0;
                    for read in reads {
                        server.receive_data(black_box(read));
                        while let Some(event) = server.next_event() {
                            if let Event::Message(message) = event {
                                server.send(message).unwrap();
                            }
                        }
                        while let Some(chunk) = server.poll_transmit() {
                            sent += chunk.len();
                        }
                        black_box(server.poll_timeout(now));
                    }
                    assert!(sent > count * size);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, memcpy_and_mask, utf8, parse, echo);
criterion_main!(benches);
