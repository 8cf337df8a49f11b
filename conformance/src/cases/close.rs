//! Section 7: Close handling (RFC 6455 sections 5.5.1, 7 and 7.4).
//!
//! Strict where Autobahn is lenient: a valid code is echoed (not answered
//! with 1000), an empty Close is answered with an empty Close, and every
//! invalid code fails with 1002. 7.1.x, 7.3.x, 7.5.1, 7.7.1-13 and
//! 7.9.1-9 are Autobahn's; ours: 7.1.7-9 (frames after a Close in separate
//! chunks), 7.7.14-16 (1012-1014, registered after RFC 6455), 7.9.10-12
//! (1015, 5000, 65535, which Autobahn's 7.13 only reports), 7.10.x
//! (reasons: multi-byte, truncated, fail-fast, 1-byte chunks), 7.11.x (the
//! peer's EOF without a Close).

use crate::case::{Case, Chunking, Pos};
use crate::cases::{FailAt, first_invalid, text_payload};
use crate::wire::Frame;

const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

pub(super) fn cases() -> Vec<Case> {
    let mut cases = closing_handshake();
    cases.extend(payloads());
    cases.extend(codes());
    cases.extend(reasons());
    cases.extend(abandoned());
    cases
}

/// 7.11.x (ours): the peer's transport ends without a Close.
fn abandoned() -> Vec<Case> {
    let half_frame = Frame::text(text_payload(300));
    vec![
        Case::new("7.11.1", "text, then the peer's EOF without a close")
            .echoed(Frame::text("Hello World!"))
            .abandoned(),
        Case::new("7.11.2", "ping, then the peer's EOF without a close")
            .ponged(Frame::ping("ping"))
            .abandoned(),
        Case::new(
            "7.11.3",
            "the first fragment of a text, then the peer's EOF",
        )
        .frame(Frame::text("fragment1").fin(false))
        .abandoned(),
        Case::new("7.11.4", "half a frame, then the peer's EOF")
            .frame(half_frame)
            .abandoned()
            .truncated_before(Pos::Payload(0, 150)),
    ]
}

fn closing_handshake() -> Vec<Case> {
    let after = |id: &str, what: &str, frame: Frame, chunking: Chunking, how: &str| {
        Case::new(id, format!("close, then {what}{how}: ignored"))
            .close_normally()
            .frame(frame)
            .chunking(chunking)
    };
    let per_frame = ", one frame per chunk";
    vec![
        Case::new("7.1.1", "text, then close")
            .echoed(Frame::text("Hello World!"))
            .close_normally(),
        after(
            "7.1.2",
            "close again",
            Frame::close(1000, b""),
            Chunking::Whole,
            "",
        ),
        after("7.1.3", "ping", Frame::ping("ping"), Chunking::Whole, ""),
        after(
            "7.1.4",
            "text",
            Frame::text("Hello World!"),
            Chunking::Whole,
            "",
        ),
        Case::new(
            "7.1.5",
            "text fragment, close, last fragment: closes normally, no message",
        )
        .frame(Frame::text("fragment1").fin(false))
        .close_normally()
        .frame(Frame::continuation("fragment2")),
        Case::new("7.1.6", "256 KiB text, small text, close, ping")
            .echoed(Frame::text(text_payload(256 << 10)))
            .echoed(Frame::text("Hello World!"))
            .close_normally()
            .frame(Frame::ping("")),
        after(
            "7.1.7",
            "close again",
            Frame::close(1000, b""),
            Chunking::PerFrame,
            per_frame,
        ),
        after(
            "7.1.8",
            "ping",
            Frame::ping("ping"),
            Chunking::PerFrame,
            per_frame,
        ),
        after(
            "7.1.9",
            "text",
            Frame::text("Hello World!"),
            Chunking::PerFrame,
            per_frame,
        ),
    ]
}

fn payloads() -> Vec<Case> {
    let reason = |len: usize| vec![b'*'; len];
    vec![
        Case::new(
            "7.3.1",
            "close without payload: answered with an empty close",
        )
        .peer_closes(Frame::close_raw("")),
        Case::new("7.3.2", "close with a 1-byte payload")
            .frame(Frame::close_raw("a"))
            .fails(1002, Pos::LengthEnd(0), Pos::FrameEnd(0)),
        Case::new("7.3.3", "close 1000 without reason").peer_closes(Frame::close(1000, b"")),
        Case::new("7.3.4", "close 1000 with a short reason")
            .peer_closes(Frame::close(1000, b"Hello World!")),
        Case::new("7.3.5", "close 1000 with a 123-byte reason (the longest)")
            .peer_closes(Frame::close(1000, &reason(123))),
        Case::new(
            "7.3.6",
            "close 1000 with a 124-byte reason (payload over 125)",
        )
        .frame(Frame::close(1000, &reason(124)))
        .fails(1002, Pos::LengthEnd(0), Pos::HeaderEnd(0)),
        {
            let reason = [KOSME, b"\xed\xa0\x80", b"edited"].concat();
            let Some(FailAt::Byte(at)) = first_invalid(&reason) else {
                unreachable!("a surrogate is invalid")
            };
            Case::new("7.5.1", "close 1000 with an invalid UTF-8 reason")
                .frame(Frame::close(1000, &reason))
                .fails(1007, Pos::Payload(0, 2 + at), Pos::FrameEnd(0))
        },
    ]
}

fn codes() -> Vec<Case> {
    let mut cases = Vec::new();
    let valid = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013,
        1014,
    ];
    for (index, code) in valid.into_iter().enumerate() {
        cases.push(
            Case::new(
                format!("7.7.{}", index + 1),
                format!("close with valid code {code}: echoed"),
            )
            .peer_closes(Frame::close(code, b"")),
        );
    }
    let invalid = [
        0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015, 5000, 65535,
    ];
    for (index, code) in invalid.into_iter().enumerate() {
        cases.push(
            Case::new(
                format!("7.9.{}", index + 1),
                format!("close with invalid code {code}"),
            )
            .frame(Frame::close(code, b""))
            .fails(1002, Pos::Payload(0, 1), Pos::FrameEnd(0)),
        );
    }
    cases
}

fn reasons() -> Vec<Case> {
    let euros = "\u{20ac}".repeat(41);
    let truncated = [KOSME, b"\xe2\x82"].concat();
    let invalid = [KOSME, b"\xf4\x90\x80\x80", b"edited"].concat();
    vec![
        Case::new(
            "7.10.1",
            "close 1000 with 41 three-byte characters (123 bytes)",
        )
        .peer_closes(Frame::close(1000, euros.as_bytes())),
        Case::new("7.10.2", "close with a reason ending inside a character")
            .frame(Frame::close(1000, &truncated))
            .fails(1007, Pos::FrameEnd(0), Pos::FrameEnd(0)),
        Case::new("7.10.3", "close with an invalid reason, in 1-byte chunks")
            .frame(Frame::close(1000, &invalid))
            .fails(1007, Pos::Payload(0, 2 + 12), Pos::FrameEnd(0))
            .chunking(Chunking::Size(1)),
        Case::new("7.10.4", "close 3000 with a reason, in 1-byte chunks")
            .peer_closes(Frame::close(3000, b"going"))
            .chunking(Chunking::Size(1)),
        Case::new("7.10.5", "close with invalid code 1005, in 1-byte chunks")
            .frame(Frame::close(1005, b""))
            .fails(1002, Pos::Payload(0, 1), Pos::FrameEnd(0))
            .chunking(Chunking::Size(1)),
        Case::new("7.10.6", "close with a 1-byte payload, in 1-byte chunks")
            .frame(Frame::close_raw(&b"\x03"[..]))
            .fails(1002, Pos::LengthEnd(0), Pos::FrameEnd(0))
            .chunking(Chunking::Size(1)),
        Case::new("7.10.7", "ping, text, then close 4000, in 1-byte chunks")
            .ponged(Frame::ping("ping"))
            .echoed(Frame::text("text"))
            .peer_closes(Frame::close(4000, b"done"))
            .chunking(Chunking::Size(1)),
    ]
}
