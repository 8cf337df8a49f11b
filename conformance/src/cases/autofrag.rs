//! Section 10: automatic fragmentation of what the testee sends
//! (`Config::outgoing_frame_size`; RFC 6455 section 5.4).
//!
//! 10.1.1 is Autobahn's (64 KiB echoed in frames of 1300 bytes); the rest
//! are ours. Every echoed message must come in frames of exactly the
//! configured size but the last (the runner checks this in every section);
//! control frames are never fragmented (section 5.5), however small the
//! setting.

use crate::case::{Case, Chunking, Pos};
use crate::cases::{binary_payload, fragments, text_payload};
use crate::target::Settings;
use crate::wire::Frame;

fn frame_size(bytes: usize) -> Settings {
    Settings {
        outgoing_frame_size: Some(bytes),
        ..Settings::default()
    }
}

pub(super) fn cases() -> Vec<Case> {
    let echo = |id: &str, description: &str, size: usize, frame: Frame| {
        Case::new(
            id,
            format!("{description}, outgoing frames of {size} bytes"),
        )
        .settings(frame_size(size))
        .echoed(frame)
        .close_normally()
    };
    vec![
        echo(
            "10.1.1",
            "text 64 KiB",
            1300,
            Frame::text(text_payload(65536)),
        ),
        echo(
            "10.1.2",
            "binary 64 KiB",
            1300,
            Frame::binary(binary_payload(65536)),
        ),
        echo("10.1.3", "text of 10 bytes", 1, Frame::text("0123456789")),
        echo(
            "10.1.4",
            "text of 2 three-byte characters, split inside one",
            4,
            Frame::text("\u{20ac}\u{20ac}"),
        ),
        echo(
            "10.1.5",
            "binary 4 KiB, an exact multiple",
            1024,
            Frame::binary(binary_payload(4096)),
        ),
        echo("10.1.6", "empty text", 64, Frame::text("")),
        Case::new(
            "10.1.7",
            "ping of 125 bytes, outgoing frames of 16 bytes: pong whole",
        )
        .settings(frame_size(16))
        .ponged(Frame::ping(vec![b'p'; 125]))
        .close_normally(),
        echo(
            "10.1.8",
            "binary 65537 bytes",
            65536,
            Frame::binary(binary_payload(65537)),
        ),
        echo(
            "10.1.9",
            "binary 1 MiB",
            65536,
            Frame::binary(binary_payload(1 << 20)),
        ),
        Case::new(
            "10.1.10",
            "close with a 123-byte reason, outgoing frames of 16 bytes: answered whole",
        )
        .settings(frame_size(16))
        .peer_closes(Frame::close(1000, &[b'r'; 123])),
        {
            let frames = fragments(true, &text_payload(400), 100);
            Case::new(
                "10.1.11",
                "text in 4 fragments of 100 bytes, outgoing frames of 128 bytes",
            )
            .settings(frame_size(128))
            .frames(frames)
            .echo(3)
            .close_normally()
            .chunking(Chunking::PerFrame)
        },
        Case::new(
            "10.1.12",
            "invalid text, outgoing frames of 1 byte: the 1007 Close goes whole",
        )
        .settings(frame_size(1))
        .frame(Frame::text(&b"abc\xff"[..]))
        .fails(1007, Pos::Payload(0, 3), Pos::Payload(0, 3)),
        echo(
            "10.1.13",
            "text 1 MiB",
            4096,
            Frame::text(text_payload(1 << 20)),
        ),
    ]
}
