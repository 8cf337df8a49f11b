//! Section 5: fragmentation (RFC 6455 section 5.4).
//!
//! 5.1 to 5.20 are Autobahn's (Autobahn's waits become chunk boundaries:
//! a Pong between fragments must go out before the next fragment arrives).
//! Ours: 5.21 onwards (binary fragments, fragmented Close, a data frame of
//! the other type inside a message, many tiny fragments, a 125-byte Ping
//! between fragments).

use crate::case::{Case, Chunking};
use crate::cases::binary_payload;
use crate::wire::Frame;

pub(super) fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new("5.1", "ping fragmented into 2 fragments")
            .frame(Frame::ping("fragment1").fin(false))
            .frame(Frame::continuation("fragment2"))
            .fails_at_header(1002, 0),
        Case::new("5.2", "pong fragmented into 2 fragments")
            .frame(Frame::pong("fragment1").fin(false))
            .frame(Frame::continuation("fragment2"))
            .fails_at_header(1002, 0),
    ];
    let chunkings = [
        (Chunking::Whole, ""),
        (Chunking::PerFrame, ", one frame per chunk"),
        (Chunking::Size(1), ", in 1-byte chunks"),
    ];
    for (number, (chunking, how)) in (3..).zip(chunkings.clone()) {
        cases.push(
            Case::new(format!("5.{number}"), format!("text in 2 fragments{how}"))
                .frame(Frame::text("fragment1").fin(false))
                .echoed(Frame::continuation("fragment2"))
                .close_normally()
                .chunking(chunking),
        );
    }
    for (number, (chunking, how)) in (6..).zip(chunkings.clone()) {
        cases.push(
            Case::new(
                format!("5.{number}"),
                format!("text in 2 fragments with a ping between them{how}"),
            )
            .frame(Frame::text("fragment1").fin(false))
            .ponged(Frame::ping("pongme!"))
            .echoed(Frame::continuation("fragment2"))
            .close_normally()
            .chunking(chunking),
        );
    }
    for (first, fin) in [(9, true), (12, false)] {
        for (number, (chunking, how)) in (first..).zip(chunkings.clone()) {
            cases.push(
                Case::new(
                    format!("5.{number}"),
                    format!(
                        "continuation with FIN = {} and nothing to continue, then text{how}",
                        u8::from(fin)
                    ),
                )
                .frame(Frame::continuation("non-continuation payload").fin(fin))
                .frame(Frame::text("Hello, world!"))
                .fails_at_header(1002, 0)
                .chunking(chunking),
            );
        }
    }
    cases.push(
        Case::new(
            "5.15",
            "text in 2 fragments, continuation with nothing to continue, then text",
        )
        .frame(Frame::text("fragment1").fin(false))
        .echoed(Frame::continuation("fragment2"))
        .frame(Frame::continuation("fragment3").fin(false))
        .frame(Frame::text("fragment4"))
        .fails_at_header(1002, 2),
    );
    for (number, fin) in [(16, false), (17, true)] {
        let mut case = Case::new(
            format!("5.{number}"),
            format!(
                "2x: continuation with FIN = {} and nothing to continue, then text in 2 fragments",
                u8::from(fin)
            ),
        );
        for _ in 0..2 {
            case = case
                .frame(Frame::continuation("fragment1").fin(fin))
                .frame(Frame::text("fragment2").fin(false))
                .frame(Frame::continuation("fragment3"));
        }
        cases.push(case.fails_at_header(1002, 0));
    }
    cases.push(
        Case::new("5.18", "text in 2 fragments, both with the text opcode")
            .frame(Frame::text("fragment1").fin(false))
            .frame(Frame::text("fragment2"))
            .fails_at_header(1002, 1),
    );
    for (number, chunking, how) in [
        (19, Chunking::PerFrame, "one frame per chunk"),
        (20, Chunking::Size(1), "in 1-byte chunks"),
    ] {
        cases.push(
            Case::new(
                format!("5.{number}"),
                format!("text in 5 fragments with 2 pings among them, {how}"),
            )
            .frame(Frame::text("fragment1").fin(false))
            .frame(Frame::continuation("fragment2").fin(false))
            .ponged(Frame::ping("pongme 1!"))
            .frame(Frame::continuation("fragment3").fin(false))
            .frame(Frame::continuation("fragment4").fin(false))
            .ponged(Frame::ping("pongme 2!"))
            .echoed(Frame::continuation("fragment5"))
            .close_normally()
            .chunking(chunking),
        );
    }
    cases.extend(ours());
    cases
}

fn ours() -> Vec<Case> {
    let mut many = Case::new(
        "5.25",
        "binary in 100 one-byte fragments with a ping every 10, in 1-byte chunks",
    );
    let payload = binary_payload(100);
    for index in 0..100 {
        let part = payload.slice(index..index + 1);
        let frame = if index == 0 {
            Frame::binary(part)
        } else {
            Frame::continuation(part)
        };
        many = many.frame(frame.fin(index == 99));
        if index % 10 == 5 {
            many = many.ponged(Frame::ping(format!("ping {index}")));
        }
    }
    let last = many.last();
    let many = many.echo(last).close_normally().chunking(Chunking::Size(1));
    vec![
        Case::new("5.21", "binary in 3 fragments, one frame per chunk")
            .frame(Frame::binary(binary_payload(10)).fin(false))
            .frame(Frame::continuation(binary_payload(20)).fin(false))
            .echoed(Frame::continuation(binary_payload(30)))
            .close_normally()
            .chunking(Chunking::PerFrame),
        Case::new(
            "5.22",
            "binary in 3 fragments, the first and last empty, with an unsolicited pong",
        )
        .frame(Frame::binary("").fin(false))
        .frame(Frame::continuation(binary_payload(50)).fin(false))
        .frame(Frame::pong("unsolicited"))
        .echoed(Frame::continuation(""))
        .close_normally(),
        Case::new("5.23", "close fragmented into 2 fragments")
            .frame(Frame::close(1000, b"").fin(false))
            .frame(Frame::continuation("bye"))
            .fails_at_header(1002, 0)
            .chunking(Chunking::Size(1)),
        Case::new(
            "5.24",
            "text fragment, then a binary frame inside the message",
        )
        .frame(Frame::text("fragment1").fin(false))
        .frame(Frame::binary(binary_payload(9)))
        .fails_at_header(1002, 1)
        .chunking(Chunking::Size(1)),
        many,
        Case::new(
            "5.26",
            "binary fragment, then a text frame without FIN inside the message",
        )
        .frame(Frame::binary(binary_payload(9)).fin(false))
        .frame(Frame::text("fragment2").fin(false))
        .fails_at_header(1002, 1),
        Case::new(
            "5.27",
            "text in 2 fragments with a 125-byte ping between them, one frame per chunk",
        )
        .frame(Frame::text("fragment1").fin(false))
        .ponged(Frame::ping(vec![b'p'; 125]))
        .echoed(Frame::continuation("fragment2"))
        .close_normally()
        .chunking(Chunking::PerFrame),
        Case::new(
            "5.28",
            "two fragmented messages back to back, then a pong, in 1-byte chunks",
        )
        .frame(Frame::text("one-").fin(false))
        .echoed(Frame::continuation("one"))
        .frame(Frame::binary(binary_payload(3)).fin(false))
        .echoed(Frame::continuation(binary_payload(4)))
        .frame(Frame::pong(""))
        .close_normally()
        .chunking(Chunking::Size(1)),
    ]
}
