//! Section 1: framing (RFC 6455 section 5.2).
//!
//! 1.1 and 1.2 are Autobahn's: text and binary messages at every length
//! encoding boundary. Ours: 1.3 and 1.4 send the same in 1-byte chunks;
//! 1.5 checks masking by role (5.1), the 64-bit length's most significant
//! bit (5.2) and that non-minimal length encodings are accepted.

use crate::case::{Case, Chunking, Pos};
use crate::cases::{binary_payload, data_frame, kind_name, text_payload};
use crate::wire::{Frame, Length, Masking};

const SIZES: [usize; 7] = [0, 125, 126, 127, 128, 65535, 65536];

pub(super) fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (group, text) in [(1, true), (2, false), (3, true), (4, false)] {
        let one_byte = group > 2;
        for (index, size) in SIZES.iter().copied().enumerate() {
            let payload = if text {
                text_payload(size)
            } else {
                binary_payload(size)
            };
            let mut case = Case::new(
                format!("1.{group}.{}", index + 1),
                format!(
                    "{} {size} bytes{}",
                    kind_name(text),
                    if one_byte { " in 1-byte chunks" } else { "" }
                ),
            )
            .echoed(data_frame(text, payload))
            .close_normally();
            if one_byte {
                case = case.chunking(Chunking::Size(1));
            }
            cases.push(case);
        }
        if !one_byte {
            let payload = if text {
                text_payload(65536)
            } else {
                binary_payload(65536)
            };
            cases.push(
                Case::new(
                    format!("1.{group}.8"),
                    format!("{} 65536 bytes in chunks of 997", kind_name(text)),
                )
                .echoed(data_frame(text, payload))
                .close_normally()
                .chunking(Chunking::Size(997)),
            );
        }
    }
    cases.extend(masking_and_lengths());
    cases
}

fn masking_and_lengths() -> Vec<Case> {
    let wrong = |frame: Frame| frame.masking(Masking::Wrong);
    let mut cases = vec![
        Case::new("1.5.1", "text frame masked wrongly for the role")
            .frame(wrong(Frame::text("Hello, world!")))
            .fails(1002, Pos::Header(0, 1), Pos::HeaderEnd(0)),
        Case::new("1.5.2", "binary frame masked wrongly for the role")
            .frame(wrong(Frame::binary(binary_payload(200))))
            .fails(1002, Pos::Header(0, 1), Pos::HeaderEnd(0)),
        Case::new("1.5.3", "ping masked wrongly for the role")
            .frame(wrong(Frame::ping("ping")))
            .fails(1002, Pos::Header(0, 1), Pos::HeaderEnd(0)),
        Case::new("1.5.4", "close masked wrongly for the role")
            .frame(wrong(Frame::close(1000, b"")))
            .fails(1002, Pos::Header(0, 1), Pos::HeaderEnd(0)),
        Case::new(
            "1.5.5",
            "text, then a text frame masked wrongly, then a ping, in 1-byte chunks",
        )
        .echoed(Frame::text("first"))
        .frame(wrong(Frame::text("second")))
        .frame(Frame::ping(""))
        .fails(1002, Pos::Header(1, 1), Pos::HeaderEnd(1))
        .chunking(Chunking::Size(1)),
        Case::new(
            "1.5.6",
            "continuation masked wrongly in a fragmented message",
        )
        .frame(Frame::text("frag").fin(false))
        .frame(wrong(Frame::continuation("ment")))
        .fails(1002, Pos::Header(1, 1), Pos::HeaderEnd(1)),
        Case::new(
            "1.5.7",
            "binary frame whose 64-bit length has its most significant bit set",
        )
        .frame(Frame::binary("x").length(Length::Extended64HighBit))
        .fails(1002, Pos::Header(0, 2), Pos::HeaderEnd(0))
        .chunking(Chunking::Size(1)),
    ];
    // RFC 6455 section 5.2 makes the minimal encoding a duty of the sender
    // only; a receiver has no grounds to fail the connection over it.
    let lengths = [
        (
            "1.5.8",
            "text 5 bytes with a 16-bit length",
            Length::Extended16,
            5,
        ),
        (
            "1.5.9",
            "text 5 bytes with a 64-bit length",
            Length::Extended64,
            5,
        ),
        (
            "1.5.10",
            "binary 300 bytes with a 64-bit length",
            Length::Extended64,
            300,
        ),
    ];
    for (id, description, length, size) in lengths {
        let text = size == 5;
        let payload = if text {
            text_payload(size)
        } else {
            binary_payload(size)
        };
        cases.push(
            Case::new(id, format!("{description} (non-minimal, accepted)"))
                .echoed(data_frame(text, payload).length(length))
                .close_normally(),
        );
    }
    cases.push(
        Case::new(
            "1.5.11",
            "ping of 5 bytes with a 16-bit length (non-minimal, accepted)",
        )
        .ponged(Frame::ping("hello").length(Length::Extended16))
        .close_normally(),
    );
    cases
}
