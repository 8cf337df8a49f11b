//! Sections 3 and 4: reserved bits and reserved opcodes (RFC 6455
//! section 5.2: "If a nonzero value is received and none of the negotiated
//! extensions defines the meaning of such a nonzero value, the receiving
//! endpoint MUST _Fail the WebSocket Connection_"; likewise for opcodes).
//!
//! 3.1 to 3.7 and 4.1.x, 4.2.x are Autobahn's. Ours: 3.8.x sets each RSV
//! combination on each kind of frame, in 1-byte chunks; 3.9 and 4.4.x
//! check that a Ping before the violation is still answered; 4.3.x sends
//! each reserved opcode without FIN, in 1-byte chunks.

use crate::case::{Case, Chunking};
use crate::wire::Frame;

/// Builds the frames of one kind of case; the last one gets the RSV bits.
type MakeFrames = fn() -> Vec<Frame>;

pub(super) fn cases() -> Vec<Case> {
    let mut cases = reserved_bits();
    cases.extend(reserved_opcodes());
    cases
}

fn reserved_bits() -> Vec<Case> {
    let mut cases = vec![
        Case::new("3.1", "small text with RSV = 1")
            .frame(Frame::text("Hello, world!").rsv(1))
            .protocol_error_at_last(),
    ];
    for (id, rsv, chunking, how) in [
        ("3.2", 2, Chunking::Whole, ""),
        ("3.3", 3, Chunking::PerFrame, ", one frame per chunk"),
        ("3.4", 4, Chunking::Size(1), ", in 1-byte chunks"),
    ] {
        cases.push(
            Case::new(
                id,
                format!("small text, then small text with RSV = {rsv}, then ping{how}"),
            )
            .echoed(Frame::text("Hello, world!"))
            .frame(Frame::text("Hello, world!").rsv(rsv))
            .frame(Frame::ping(""))
            .fails_at_header(1002, 1)
            .chunking(chunking),
        );
    }
    let bytes: Vec<u8> = (0..8).collect();
    cases.extend([
        Case::new("3.5", "small binary with RSV = 5")
            .frame(Frame::binary(bytes.clone()).rsv(5))
            .protocol_error_at_last(),
        Case::new("3.6", "ping with RSV = 6")
            .frame(Frame::ping(bytes).rsv(6))
            .protocol_error_at_last(),
        Case::new("3.7", "close with RSV = 7")
            .frame(Frame::close(1000, b"").rsv(7))
            .protocol_error_at_last(),
    ]);
    cases.push(
        Case::new(
            "3.9",
            "ping, then text with RSV = 1, in one read: the pong goes out before the close",
        )
        .ponged(Frame::ping("before"))
        .frame(Frame::text("Hello, world!").rsv(1))
        .fails_at_header(1002, 1),
    );
    let kinds: [(&str, MakeFrames); 6] = [
        ("text", || vec![Frame::text("Hello")]),
        ("binary", || vec![Frame::binary(vec![1, 2, 3])]),
        ("continuation", || {
            vec![Frame::text("start").fin(false), Frame::continuation("end")]
        }),
        ("ping", || vec![Frame::ping("ping")]),
        ("pong", || vec![Frame::pong("pong")]),
        ("close", || vec![Frame::close(1000, b"bye")]),
    ];
    let mut number = 0;
    for (name, frames) in kinds {
        for rsv in 1..=7 {
            number += 1;
            let mut frames = frames();
            let last = frames.pop().expect("at least one frame").rsv(rsv);
            cases.push(
                Case::new(
                    format!("3.8.{number}"),
                    format!("{name} with RSV = {rsv:03b}, in 1-byte chunks"),
                )
                .frames(frames)
                .frame(last)
                .protocol_error_at_last()
                .chunking(Chunking::Size(1)),
            );
        }
    }
    cases
}

fn reserved_opcodes() -> Vec<Case> {
    let mut cases = Vec::new();
    for (group, opcodes) in [(1, [3u8, 4, 5, 6, 7]), (2, [11, 12, 13, 14, 15])] {
        let kind = if group == 1 { "data" } else { "control" };
        for (index, op) in opcodes.into_iter().enumerate() {
            // As Autobahn: the first and third without payload.
            let payload: &'static [u8] = if index == 0 || index == 2 {
                b""
            } else {
                b"reserved opcode payload"
            };
            let id = format!("4.{group}.{}", index + 1);
            let with = if payload.is_empty() {
                ""
            } else {
                " with payload"
            };
            let case = if index < 2 {
                Case::new(id, format!("reserved {kind} opcode {op}{with}"))
                    .frame(Frame::new(op, payload))
                    .protocol_error_at_last()
            } else {
                Case::new(id, format!("text, reserved {kind} opcode {op}{with}, ping"))
                    .echoed(Frame::text("Hello, world!"))
                    .frame(Frame::new(op, payload))
                    .frame(Frame::ping(""))
                    .fails_at_header(1002, 1)
            };
            cases.push(case);
        }
    }
    for (index, op) in [3u8, 11].into_iter().enumerate() {
        cases.push(
            Case::new(
                format!("4.4.{}", index + 1),
                format!("ping, then reserved opcode {op}, in one read: pong, then close"),
            )
            .ponged(Frame::ping("before"))
            .frame(Frame::new(op, "payload"))
            .fails_at_header(1002, 1),
        );
    }
    for (index, op) in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15]
        .into_iter()
        .enumerate()
    {
        cases.push(
            Case::new(
                format!("4.3.{}", index + 1),
                format!("reserved opcode {op} without FIN, in 1-byte chunks"),
            )
            .frame(Frame::new(op, "payload").fin(false))
            .protocol_error_at_last()
            .chunking(Chunking::Size(1)),
        );
    }
    cases
}
