//! The engine's per-message cost on a server's echo path, counted exactly:
//! a server [`Connection`] fed reads of `per_read` client messages (plus
//! a Ping per read with `ping`), each message sent back, the replies
//! taken as a front-end takes them and the timers polled, as the event
//! loop does. Prints allocations per message; run it under
//! `valgrind --tool=callgrind` with two message counts and divide the
//! difference in instructions by the difference in messages for
//! instructions per message (setup cancels out):
//!
//! ```text
//! cargo build --release -p sockeye-proto --example echo_cost
//! valgrind --tool=callgrind target/release/examples/echo_cost text 20 8 0 1000
//! valgrind --tool=callgrind target/release/examples/echo_cost text 20 8 0 2000
//! ```
//!
//! Arguments: `text|binary SIZE PER_READ PING(0|1) READS`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sockeye_proto::{Config, Connection, Event, Message, Role};

/// The system allocator, counting allocations (reallocations included).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: echo_cost text|binary SIZE PER_READ PING(0|1) READS";
    let [kind, size, per_read, ping, reads] = &args[..] else {
        panic!("{usage}");
    };
    let text = kind == "text";
    let size: usize = size.parse().expect(usage);
    let per_read: usize = per_read.parse().expect(usage);
    let ping = ping == "1";
    let reads: usize = reads.parse().expect(usage);

    let mut client = Connection::new(Role::Client, Config::default());
    for _ in 0..per_read {
        let message = if text {
            Message::text("x".repeat(size))
        } else {
            Message::binary(vec![0x42; size])
        };
        client.send(message).unwrap();
    }
    if ping {
        client.send_ping(&b"ping"[..]).unwrap();
    }
    let mut read = Vec::new();
    client.data_to_send(&mut read);

    let mut server = Connection::new(Role::Server, Arc::new(Config::default()));
    let now = Instant::now();
    let mut run = |reads: usize| {
        let mut sent = 0;
        for _ in 0..reads {
            server.receive_data(black_box(&read));
            while let Some(event) = server.next_event() {
                if let Event::Message(message) = event {
                    server.send(message).unwrap();
                }
            }
            // As the event loop writes: the corked replies from where
            // they lie, the rest (none here) chunk by chunk.
            if let Some(output) = server.peek_transmit() {
                let written = black_box(output).len();
                server.consume_transmit(written);
                sent += written;
            }
            while let Some(chunk) = server.poll_transmit() {
                sent += black_box(chunk).len();
            }
            black_box(server.poll_timeout(now));
        }
        sent
    };
    // Warm up: first allocations, the timers' origin.
    run(10);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let sent = run(reads);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let messages = reads * per_read;
    assert!(sent >= messages * size);
    println!(
        "{kind} {size} B, {per_read} per read{}: {messages} messages, {:.3} allocations/message",
        if ping { " + ping" } else { "" },
        allocations as f64 / messages as f64
    );
}
