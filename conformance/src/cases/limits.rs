//! Section 9: limits and performance.
//!
//! 9.1 to 9.8 are Autobahn's: large messages whole (9.1, 9.2), in many
//! frames (9.3, 9.4), in many small reads (9.5, 9.6; ours add 4 MiB
//! messages in reads of 64 KiB to 4 MiB as 9.5.7-9 and 9.6.7-9), and 1000
//! round trips (9.7, 9.8: one message per read, each echoed before the
//! next is sent). Ours: 9.9.x, the configured limits, which fail with 1009
//! as soon as a frame header announces too much (before its payload).

use bytes::Bytes;

use crate::case::{Case, Chunking, Pos};
use crate::cases::{binary_payload, data_frame, fragments, kind_name, size_name, text_payload};
use crate::target::Settings;
use crate::wire::Frame;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn payload(text: bool, len: usize) -> Bytes {
    if text {
        text_payload(len)
    } else {
        binary_payload(len)
    }
}

pub(super) fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for text in [true, false] {
        let group = if text { 0 } else { 1 };
        let kind = kind_name(text);
        let sizes = [64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB];
        for (index, size) in sizes.into_iter().enumerate() {
            cases.push(
                Case::new(
                    format!("9.{}.{}", 1 + group, index + 1),
                    format!("{kind} message of {}", size_name(size)),
                )
                .echoed(data_frame(text, payload(text, size)))
                .close_normally(),
            );
        }
        let message = payload(text, 4 * MIB);
        let frame_sizes = [
            64,
            256,
            KIB,
            4 * KIB,
            16 * KIB,
            64 * KIB,
            256 * KIB,
            MIB,
            4 * MIB,
        ];
        for (index, size) in frame_sizes.into_iter().enumerate() {
            let frames = fragments(text, &message, size);
            let last = frames.len() - 1;
            cases.push(
                Case::new(
                    format!("9.{}.{}", 3 + group, index + 1),
                    format!("{kind} message of 4 MiB in frames of {}", size_name(size)),
                )
                .frames(frames)
                .echo(last)
                .close_normally(),
            );
        }
        let reads = [
            (MIB, 64),
            (MIB, 128),
            (MIB, 256),
            (MIB, 512),
            (MIB, KIB),
            (MIB, 2 * KIB),
            (4 * MIB, 64 * KIB),
            (4 * MIB, MIB),
            (4 * MIB, 4 * MIB),
        ];
        let one_mib = payload(text, MIB);
        for (index, (len, chunk)) in reads.into_iter().enumerate() {
            let body = if len == MIB {
                one_mib.clone()
            } else {
                message.clone()
            };
            cases.push(
                Case::new(
                    format!("9.{}.{}", 5 + group, index + 1),
                    format!(
                        "{kind} message of {} in reads of {}",
                        size_name(len),
                        size_name(chunk)
                    ),
                )
                .echoed(data_frame(text, body))
                .close_normally()
                .chunking(Chunking::Size(chunk)),
            );
        }
        for (index, size) in [0, 16, 64, 256, KIB, 4 * KIB].into_iter().enumerate() {
            let body = payload(text, size);
            let mut case = Case::new(
                format!("9.{}.{}", 7 + group, index + 1),
                format!("1000 round trips of {kind} messages of {}", size_name(size)),
            );
            for _ in 0..1000 {
                case = case.echoed(data_frame(text, body.clone()));
            }
            cases.push(case.close_normally().chunking(Chunking::PerFrame));
        }
    }
    cases.extend(configured_limits());
    cases
}

fn configured_limits() -> Vec<Case> {
    let frame_limit = Settings {
        max_frame_size: Some(KIB),
        ..Settings::default()
    };
    let message_limit = |overhead| Settings {
        max_message_size: Some(4 * KIB),
        fragment_overhead: Some(overhead),
        ..Settings::default()
    };
    let too_big = |case: Case, frame: usize| {
        case.fails(1009, Pos::LengthEnd(frame), Pos::HeaderEnd(frame))
            .chunking(Chunking::Size(1))
    };
    let two = |first: usize, second: usize| {
        [
            Frame::binary(binary_payload(first)).fin(false),
            Frame::continuation(binary_payload(second)),
        ]
    };
    vec![
        Case::new("9.9.1", "binary frame at max_frame_size (1 KiB): echoed")
            .settings(frame_limit.clone())
            .echoed(Frame::binary(binary_payload(KIB)))
            .close_normally(),
        too_big(
            Case::new(
                "9.9.2",
                "binary frame 1 byte over max_frame_size, 1-byte chunks",
            )
            .settings(frame_limit.clone())
            .frame(Frame::binary(binary_payload(KIB + 1))),
            0,
        ),
        too_big(
            Case::new(
                "9.9.3",
                "text fragment over max_frame_size after a valid one, 1-byte chunks",
            )
            .settings(frame_limit)
            .frame(Frame::text(text_payload(KIB)).fin(false))
            .frame(Frame::continuation(text_payload(KIB + 1))),
            1,
        ),
        Case::new(
            "9.9.4",
            "max_message_size 4 KiB, no overhead: 2 fragments of 2 KiB echoed",
        )
        .settings(message_limit(0))
        .frames(two(2 * KIB, 2 * KIB))
        .echo(1)
        .close_normally(),
        too_big(
            Case::new(
                "9.9.5",
                "max_message_size 4 KiB, no overhead: fragments 1 byte over, 1-byte chunks",
            )
            .settings(message_limit(0))
            .frames(two(2 * KIB, 2 * KIB + 1)),
            1,
        ),
        too_big(
            Case::new(
                "9.9.6",
                "max_message_size 4 KiB, no overhead: one frame 1 byte over, 1-byte chunks",
            )
            .settings(message_limit(0))
            .frame(Frame::binary(binary_payload(4 * KIB + 1))),
            0,
        ),
        // The overhead is charged per continuation frame: a message of
        // n fragments costs its payload plus (n - 1) * overhead, so an
        // unfragmented message of exactly max_message_size fits.
        Case::new(
            "9.9.7",
            "max_message_size 4 KiB, overhead 64: 2 fragments of 2016 bytes echoed",
        )
        .settings(message_limit(64))
        .frames(two(2016, 2016))
        .echo(1)
        .close_normally(),
        too_big(
            Case::new(
                "9.9.8",
                "max_message_size 4 KiB, overhead 64: 2 fragments of 2016 and 2017 bytes",
            )
            .settings(message_limit(64))
            .frames(two(2016, 2017)),
            1,
        ),
        Case::new(
            "9.9.9",
            "max_message_size 4 KiB, overhead 64: one frame of exactly 4 KiB echoed",
        )
        .settings(message_limit(64))
        .echoed(Frame::binary(binary_payload(4 * KIB)))
        .close_normally(),
        Case::new(
            "9.9.10",
            "default max_frame_size: a 16 MiB + 1 frame fails before its payload is sent",
        )
        .frame(Frame::binary(binary_payload(16 * MIB + 1)))
        .fails(1009, Pos::LengthEnd(0), Pos::HeaderEnd(0))
        .chunking(Chunking::SplitBefore(vec![Pos::Payload(0, 0)])),
    ]
}
