//! The case tables, one module per Autobahn section. Ids follow Autobahn
//! where Autobahn has the case; the cases it lacks get the numbers after
//! its own (each module's docs say which are ours).

use bytes::Bytes;

use crate::case::Case;
use crate::wire::Frame;

mod autofrag;
mod close;
mod fragmentation;
mod framing;
mod limits;
mod pings;
mod reserved;
mod utf8;
mod utf8_table;

pub use utf8_table::{FailAt, first_invalid, kuhn_groups};

/// Every case, in section order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(framing::cases());
    cases.extend(pings::cases());
    cases.extend(reserved::cases());
    cases.extend(fragmentation::cases());
    cases.extend(utf8::cases());
    cases.extend(close::cases());
    cases.extend(limits::cases());
    cases.extend(autofrag::cases());
    cases
}

/// `len` bytes of valid UTF-8 mixing 1- to 4-byte characters (so that
/// large text cases exercise the validator, not only its ASCII fast path).
pub fn text_payload(len: usize) -> Bytes {
    const UNIT: &str =
        "sockeye \u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5} \u{2713} \u{1d11e} 0123456789 ";
    let mut text = Vec::with_capacity(len);
    while text.len() + UNIT.len() <= len {
        text.extend_from_slice(UNIT.as_bytes());
    }
    text.resize(len, b'x');
    Bytes::from(text)
}

/// `len` bytes running through every byte value.
pub fn binary_payload(len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|index| (index.wrapping_mul(167) >> 3) as u8 ^ (index as u8))
            .collect::<Vec<u8>>(),
    )
}

/// A final text or binary frame.
pub fn data_frame(text: bool, payload: Bytes) -> Frame {
    if text {
        Frame::text(payload)
    } else {
        Frame::binary(payload)
    }
}

/// `text` or `binary`.
pub fn kind_name(text: bool) -> &'static str {
    if text { "text" } else { "binary" }
}

/// The frames of a message split into fragments of `size` bytes.
pub fn fragments(text: bool, payload: &Bytes, size: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + size).min(payload.len());
        let part = payload.slice(start..end);
        let frame = if start == 0 {
            data_frame(text, part)
        } else {
            Frame::continuation(part)
        };
        frames.push(frame.fin(end == payload.len()));
        if end == payload.len() {
            return frames;
        }
        start = end;
    }
}

/// A size for humans: `64 KiB`, `16 MiB`, `997 B`.
pub fn size_name(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_case_has_an_ending() {
        let cases = all();
        let mut ids: Vec<&str> = cases.iter().map(|case| case.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicate case ids");
        for case in &cases {
            assert!(case.ending.is_some(), "{} has no ending", case.id);
            assert!(!case.frames.is_empty(), "{} sends nothing", case.id);
        }
        assert!(cases.len() >= 300, "{} cases", cases.len());
    }

    #[test]
    fn payload_helpers() {
        for len in [0, 1, 10, 125, 126, 65535, 65536] {
            let text = text_payload(len);
            assert_eq!(text.len(), len);
            assert!(std::str::from_utf8(&text).is_ok());
            assert_eq!(binary_payload(len).len(), len);
        }
        let payload = Bytes::from_static(b"abcdefg");
        let frames = fragments(true, &payload, 3);
        let sizes: Vec<usize> = frames.iter().map(|frame| frame.payload.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert!(!frames[0].fin && frames[2].fin && frames[1].opcode == 0);
        assert_eq!(size_name(65536), "64 KiB");
    }
}
