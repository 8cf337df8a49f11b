//! Section 6: UTF-8 handling (RFC 6455 sections 5.6 and 8.1: a text
//! message that is not valid UTF-8 fails the connection with 1007).
//!
//! 6.1 to 6.23 are Autobahn's, with Autobahn's waits as chunk boundaries
//! (6.4.x: the testee must fail right after the chunk holding the first
//! impossible byte, before the rest is sent). Ours: 6.4.5 and 6.4.6 (a
//! Ping before the invalid fragment is answered, one after it is not),
//! 6.24.x sends every
//! 6.5-6.23 string in 1-byte chunks and 6.25.x in 1-byte fragments, one
//! frame per chunk, so the failure must come exactly after the impossible
//! byte (or after the message's last byte when the string ends inside a
//! character).

use bytes::Bytes;

use crate::case::{Case, Chunking, Pos};
use crate::cases::{FailAt, first_invalid, fragments, kuhn_groups};
use crate::wire::Frame;

const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
const HELLO: &str = "Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!";

pub(super) fn cases() -> Vec<Case> {
    let mut cases = basics();
    cases.extend(fail_fast());
    let groups = kuhn_groups();
    let mut chunked = 0;
    let mut fragmented = 0;
    for (number, (title, items)) in (5..).zip(&groups) {
        for (index, item) in items.iter().enumerate() {
            let origin = format!("6.{number}.{}", index + 1);
            let hex = hex(item);
            cases.push(utf8_case(
                origin.clone(),
                format!("{title}: {hex}"),
                item,
                None,
            ));
            chunked += 1;
            cases.push(
                utf8_case(
                    format!("6.24.{chunked}"),
                    format!("as {origin}, in 1-byte chunks: {hex}"),
                    item,
                    None,
                )
                .chunking(Chunking::Size(1)),
            );
            fragmented += 1;
            cases.push(
                utf8_case(
                    format!("6.25.{fragmented}"),
                    format!("as {origin}, in 1-byte fragments: {hex}"),
                    item,
                    Some(1),
                )
                .chunking(Chunking::PerFrame),
            );
        }
    }
    cases
}

fn hex(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(24)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes.len() > 24 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

/// A text message of `payload`, in one frame or in fragments of
/// `fragment` bytes: echoed if valid, else failing with 1007 exactly at
/// the first impossible byte.
fn utf8_case(id: String, description: String, payload: &[u8], fragment: Option<usize>) -> Case {
    let payload = Bytes::copy_from_slice(payload);
    let frames = match fragment {
        None => vec![Frame::text(payload.clone())],
        Some(size) => fragments(true, &payload, size),
    };
    let last = frames.len() - 1;
    let case = Case::new(id, description).frames(frames);
    let at = |offset: usize| match fragment {
        None => Pos::Payload(0, offset),
        Some(size) => Pos::Payload(offset / size, offset % size),
    };
    match first_invalid(&payload) {
        None => case.echo(last).close_normally(),
        Some(FailAt::Byte(offset)) => case.fails(1007, at(offset), at(offset)),
        Some(FailAt::End) => case.fails(1007, Pos::FrameEnd(last), Pos::FrameEnd(last)),
    }
}

fn basics() -> Vec<Case> {
    let hello = Bytes::from_static(HELLO.as_bytes());
    let split = HELLO.find('\u{fc}').expect("in HELLO");
    let mut cases = vec![
        Case::new("6.1.1", "empty text message")
            .echoed(Frame::text(""))
            .close_normally(),
        Case::new("6.1.2", "text message in 3 empty fragments")
            .frame(Frame::text("").fin(false))
            .frame(Frame::continuation("").fin(false))
            .echoed(Frame::continuation(""))
            .close_normally(),
        Case::new("6.1.3", "text in 3 fragments, the first and last empty")
            .frame(Frame::text("").fin(false))
            .frame(Frame::continuation("middle frame payload").fin(false))
            .echoed(Frame::continuation(""))
            .close_normally(),
        Case::new("6.2.1", "valid UTF-8 with 2-byte characters in one frame")
            .echoed(Frame::text(hello.clone()))
            .close_normally(),
        Case::new("6.2.2", "the same in 2 fragments split between characters")
            .frame(Frame::text(hello.slice(..split)).fin(false))
            .echoed(Frame::continuation(hello.slice(split..)))
            .close_normally(),
    ];
    for (id, payload) in [
        ("6.2.3", hello.clone()),
        ("6.2.4", Bytes::from_static(KOSME)),
    ] {
        let frames = fragments(true, &payload, 1);
        let last = frames.len() - 1;
        cases.push(
            Case::new(
                id,
                format!(
                    "{} in 1-byte fragments, splitting characters",
                    hex(&payload)
                ),
            )
            .frames(frames)
            .echo(last)
            .close_normally(),
        );
    }
    cases
}

/// 6.3 and 6.4: a surrogate (ED A0 80) or a code point past U+10FFFF
/// (F4 90 80 80) in the middle of a message.
fn fail_fast() -> Vec<Case> {
    let surrogate = [KOSME, b"\xed\xa0\x80", b"edited"].concat();
    let too_big = [KOSME, b"\xf4\x90\x80\x80", b"edited"].concat();
    assert_eq!(first_invalid(&surrogate), Some(FailAt::Byte(12)));
    assert_eq!(first_invalid(&too_big), Some(FailAt::Byte(12)));
    let too_big = Bytes::from(too_big);
    let mut cases = vec![
        utf8_case(
            "6.3.1".into(),
            "invalid UTF-8 (a surrogate) in one frame".into(),
            &surrogate,
            None,
        ),
        utf8_case(
            "6.3.2".into(),
            "the same in 1-byte fragments, one per chunk".into(),
            &surrogate,
            Some(1),
        )
        .chunking(Chunking::PerFrame),
        Case::new(
            "6.4.1",
            "3 fragments, the second invalid (F4 90 80 80): fail right after it",
        )
        .frame(Frame::text(too_big.slice(..11)).fin(false))
        .frame(Frame::continuation(too_big.slice(11..15)).fin(false))
        .frame(Frame::continuation(too_big.slice(15..)))
        .fails(1007, Pos::Payload(1, 1), Pos::Payload(1, 1))
        .chunking(Chunking::PerFrame),
        Case::new(
            "6.4.2",
            "3 fragments, the second only the impossible byte: fail right after it",
        )
        .frame(Frame::text(too_big.slice(..12)).fin(false))
        .frame(Frame::continuation(too_big.slice(12..13)).fin(false))
        .frame(Frame::continuation(too_big.slice(13..)))
        .fails(1007, Pos::Payload(1, 0), Pos::Payload(1, 0))
        .chunking(Chunking::PerFrame),
    ];
    let kosme = Bytes::from_static(KOSME);
    let rest = too_big.slice(11..);
    for (id, chunking, how) in [
        ("6.4.5", Chunking::Whole, "in one read"),
        ("6.4.6", Chunking::Size(1), "in 1-byte chunks"),
    ] {
        cases.push(
            Case::new(
                id,
                format!("text fragment, ping, invalid last fragment, ping, {how}: one pong"),
            )
            .frame(Frame::text(kosme.clone()).fin(false))
            .ponged(Frame::ping("before"))
            .frame(Frame::continuation(rest.clone()))
            .frame(Frame::ping("after"))
            .fails(1007, Pos::Payload(2, 1), Pos::Payload(2, 1))
            .chunking(chunking),
        );
    }
    for (id, cuts, how) in [
        ("6.4.3", [11, 15], "the second chunk holds F4 90 80 80"),
        (
            "6.4.4",
            [12, 13],
            "the second chunk is only the impossible byte",
        ),
    ] {
        cases.push(
            Case::new(
                id,
                format!("one frame in 3 chunks, {how}: fail right after it"),
            )
            .frame(Frame::text(too_big.clone()))
            .fails(1007, Pos::Payload(0, 12), Pos::Payload(0, 12))
            .chunking(Chunking::SplitBefore(
                cuts.iter().map(|cut| Pos::Payload(0, *cut)).collect(),
            )),
        );
    }
    cases
}
