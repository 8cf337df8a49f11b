//! Section 2: Pings and Pongs (RFC 6455 sections 5.5.2 and 5.5.3).
//!
//! 2.1 to 2.11 are Autobahn's. Ours: 2.12 and 2.14 (a 126-byte Ping in
//! 1-byte chunks must fail once its length is known, before its payload),
//! 2.13 (a Ping between two messages), 2.15 to 2.17 (a Pong jumps ahead
//! of echoes queued but not yet sent, within one read and across several).

use crate::case::{Case, Chunking, Pos};
use crate::cases::binary_payload;
use crate::wire::{Frame, Length};

pub(super) fn cases() -> Vec<Case> {
    let binary: &[u8] = &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
    let mut cases = vec![
        Case::new("2.1", "ping without payload")
            .ponged(Frame::ping(""))
            .close_normally(),
        Case::new("2.2", "ping with a small text payload")
            .ponged(Frame::ping("Hello, world!"))
            .close_normally(),
        Case::new("2.3", "ping with a small binary payload")
            .ponged(Frame::ping(binary))
            .close_normally(),
        Case::new("2.4", "ping with a 125-byte binary payload")
            .ponged(Frame::ping(vec![0xfe; 125]))
            .close_normally(),
        Case::new("2.5", "ping with a 126-byte payload")
            .frame(Frame::ping(vec![0xfe; 126]))
            .fails(1002, Pos::LengthEnd(0), Pos::HeaderEnd(0)),
        Case::new("2.6", "ping with a 125-byte payload in 1-byte chunks")
            .ponged(Frame::ping(vec![0xfe; 125]))
            .close_normally()
            .chunking(Chunking::Size(1)),
        Case::new("2.7", "unsolicited pong without payload")
            .frame(Frame::pong(""))
            .close_normally(),
        Case::new("2.8", "unsolicited pong with a payload")
            .frame(Frame::pong("unsolicited pong payload"))
            .close_normally(),
        Case::new("2.9", "unsolicited pong, then a ping")
            .frame(Frame::pong("unsolicited pong payload"))
            .ponged(Frame::ping("ping payload"))
            .close_normally(),
    ];
    for (id, chunking, how) in [
        ("2.10", Chunking::Whole, ""),
        ("2.11", Chunking::Size(1), " in 1-byte chunks"),
    ] {
        let mut case = Case::new(id, format!("10 pings in a row{how}"));
        for index in 0..10 {
            case = case.ponged(Frame::ping(format!("payload-{index}")));
        }
        cases.push(case.close_normally().chunking(chunking));
    }
    cases.push(
        Case::new("2.12", "ping with a 126-byte payload in 1-byte chunks")
            .frame(Frame::ping(vec![0xfe; 126]))
            .fails(1002, Pos::LengthEnd(0), Pos::HeaderEnd(0))
            .chunking(Chunking::Size(1)),
    );
    cases.push(
        Case::new("2.13", "text, ping, text, one frame per chunk")
            .echoed(Frame::text("before"))
            .ponged(Frame::ping("between"))
            .echoed(Frame::text("after"))
            .close_normally()
            .chunking(Chunking::PerFrame),
    );
    cases.push(
        Case::new("2.14", "ping with a 126-byte payload in a 64-bit length")
            .frame(Frame::ping(vec![0xfe; 126]).length(Length::Extended64))
            .fails(1002, Pos::LengthEnd(0), Pos::HeaderEnd(0))
            .chunking(Chunking::Size(1)),
    );
    // Both frames fit in one 64 KiB read (front-ends read at most that
    // much at a time), so the testee sees the Ping before it would flush
    // the echo, however the machine schedules the two ends.
    cases.push(pong_ahead_of_echo(
        "2.15",
        "binary 60,000 bytes, then a ping, in one read",
        60_000,
    ));
    // The same across the 64 KiB read: the Ping comes with the frame's
    // last bytes, in the testee's second read.
    cases.push(pong_ahead_of_echo(
        "2.16",
        "binary 64 KiB, then a ping, in one write",
        65536,
    ));
    // And behind a frame that takes several reads (its room is reserved
    // at once, with room past its end for what follows).
    cases.push(pong_ahead_of_echo(
        "2.17",
        "binary 256 KiB, then a ping, in one write",
        256 * 1024,
    ));
    cases
}

/// A binary message of `size` bytes and a Ping sent together: the Pong
/// must go out ahead of the message's echo (queued, not yet flushed).
fn pong_ahead_of_echo(id: &str, what: &str, size: usize) -> Case {
    Case::new(id, format!("{what}: the pong goes ahead of the echo"))
        .echoed(Frame::binary(binary_payload(size)))
        .ponged(Frame::ping("ahead"))
        .close_normally()
        .ahead(1, 0)
}
