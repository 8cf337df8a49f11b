//! Microbenchmarks of the receive path's kernels, each beside a plain
//! memcpy of the same bytes: unmasking, UTF-8 validation and frame parsing.
//!
//! Run with `cargo bench -p sockeye-proto --bench kernels`; criterion
//! prints throughput in GiB/s.

use std::hint::black_box;

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

criterion_group!(benches, memcpy_and_mask, utf8, parse);
criterion_main!(benches);
