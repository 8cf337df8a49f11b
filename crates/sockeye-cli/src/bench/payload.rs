//! Bench payloads: exact to verify, cheap to make.
//!
//! A plain payload of `size` bytes starts with the message's sequence
//! number in lowercase hexadecimal (its low `min(size, 16)` digits) and
//! goes on with letters that depend on the connection, so an echo that
//! comes back on the wrong connection, out of order, truncated or altered
//! is caught. A JSON payload (`--payload json`) is JSON-like market data
//! whose numbers are drawn from the connection and the sequence number:
//! keys and symbols repeat, numbers vary, so it compresses about as real
//! traffic does (a few times, not a hundred). Every byte is ASCII: the
//! same payload serves text and binary messages.

use bytes::{Bytes, BytesMut};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The most digits of the sequence number a payload holds.
const MAX_DIGITS: usize = 16;

/// What payloads look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PayloadKind {
    /// The sequence number, then letters: compresses extremely well.
    #[default]
    Plain,
    /// JSON-like market data updates: compresses a few times.
    Json,
}

/// The start of a JSON payload, before the sequence digits.
const JSON_HEAD: &[u8] = b"{\"seq\":\"";
/// Between the sequence digits and the first update.
const JSON_LIST: &[u8] = b"\",\"updates\":[";
/// The end of a JSON payload.
const JSON_TAIL: &[u8] = b"]}";
/// The longest update record (see [`push_update`]).
const MAX_UPDATE: usize = 96;
const SYMBOLS: [&str; 16] = [
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "NFLX", "INTC", "ORCL", "CSCO", "ADBE",
    "QCOM", "AMD", "IBM", "SAP",
];
const VENUES: [&str; 4] = ["XNAS", "XNYS", "BATS", "ARCX"];

/// Makes and checks one connection's payloads.
#[derive(Debug)]
pub struct Payloads {
    kind: PayloadKind,
    connection: u32,
    /// The whole plain payload with zero digits: the filler is copied
    /// from here.
    template: Vec<u8>,
    digits: usize,
    /// Outgoing payloads are split off this buffer, which reclaims its
    /// memory once they are dropped: no allocation per message.
    buffer: BytesMut,
    /// Where an expected JSON payload is made to be compared.
    scratch: BytesMut,
}

impl Payloads {
    /// Plain payloads of `size` bytes for connection `connection`, with
    /// room for `in_flight` of them before the buffer has to be reclaimed.
    #[cfg(test)]
    pub fn new(connection: u32, size: usize, in_flight: usize) -> Payloads {
        Payloads::with_kind(PayloadKind::Plain, connection, size, in_flight)
    }

    /// Payloads of `kind`. JSON payloads shorter than their frame (about
    /// 40 bytes) are plain.
    pub fn with_kind(
        kind: PayloadKind,
        connection: u32,
        size: usize,
        in_flight: usize,
    ) -> Payloads {
        let kind = match kind {
            PayloadKind::Json if size < json_overhead() => PayloadKind::Plain,
            kind => kind,
        };
        let digits = size.min(MAX_DIGITS);
        let mut template = vec![b'0'; size];
        for (index, byte) in template.iter_mut().enumerate().skip(digits) {
            *byte = letter(index, connection);
        }
        let capacity = size.saturating_mul(in_flight.saturating_mul(2).max(8));
        Payloads {
            kind,
            connection,
            template,
            digits,
            buffer: BytesMut::with_capacity(capacity.min(64 << 20)),
            scratch: BytesMut::new(),
        }
    }

    /// The payload size.
    pub fn size(&self) -> usize {
        self.template.len()
    }

    /// The payload of message `sequence`.
    pub fn make(&mut self, sequence: u64) -> Bytes {
        let mut buffer = std::mem::take(&mut self.buffer);
        self.append(sequence, &mut buffer);
        let payload = buffer.split().freeze();
        self.buffer = buffer;
        payload
    }

    /// Appends the payload of message `sequence` to `out`.
    pub fn append(&self, sequence: u64, out: &mut BytesMut) {
        out.reserve(self.template.len());
        match self.kind {
            PayloadKind::Plain => {
                let start = out.len();
                out.extend_from_slice(&self.template);
                write_sequence(&mut out[start..start + self.digits], sequence);
            }
            PayloadKind::Json => write_json(out, self.connection, sequence, self.template.len()),
        }
    }

    /// Whether `payload` is exactly the payload of message `sequence`.
    pub fn check(&mut self, sequence: u64, payload: &[u8]) -> bool {
        if payload.len() != self.template.len() {
            return false;
        }
        match self.kind {
            PayloadKind::Plain => {
                let mut expected = [0u8; MAX_DIGITS];
                write_sequence(&mut expected[..self.digits], sequence);
                payload[..self.digits] == expected[..self.digits]
                    && payload[self.digits..] == self.template[self.digits..]
            }
            PayloadKind::Json => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                write_json(&mut scratch, self.connection, sequence, self.template.len());
                let same = scratch[..] == *payload;
                self.scratch = scratch;
                same
            }
        }
    }
}

impl Payloads {
    /// Whether `payload` is one of connection `connection`'s payloads (of
    /// this kind and size), whatever its sequence number: to recognize a
    /// message that another connection sent. Payloads of 16 bytes or
    /// less carry no trace of their connection: any well-formed one
    /// matches.
    pub fn is_payload_of(&mut self, connection: u32, payload: &[u8]) -> bool {
        if payload.len() != self.template.len() || payload.is_empty() {
            return false;
        }
        match self.kind {
            PayloadKind::Plain => {
                let Some(sequence) = read_sequence(&payload[..self.digits]) else {
                    return false;
                };
                let mut expected = [0u8; MAX_DIGITS];
                write_sequence(&mut expected[..self.digits], sequence);
                payload[..self.digits] == expected[..self.digits]
                    && payload
                        .iter()
                        .enumerate()
                        .skip(self.digits)
                        .all(|(index, byte)| *byte == letter(index, connection))
            }
            PayloadKind::Json => {
                let digits = JSON_HEAD.len()..JSON_HEAD.len() + MAX_DIGITS;
                let Some(sequence) = payload.get(digits).and_then(read_sequence) else {
                    return false;
                };
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                write_json(&mut scratch, connection, sequence, self.template.len());
                let same = scratch[..] == *payload;
                self.scratch = scratch;
                same
            }
        }
    }
}

/// The filler letter at `index` of connection `connection`'s plain
/// payloads.
fn letter(index: usize, connection: u32) -> u8 {
    b'a' + ((index as u64 + u64::from(connection)) % 26) as u8
}

/// The number written by [`write_sequence`], if `digits` are lowercase
/// hexadecimal.
fn read_sequence(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |sequence, digit| {
        let value = HEX.iter().position(|hex| hex == digit)? as u64;
        Some(sequence << 4 | value)
    })
}

/// Writes the low digits of `sequence` in hexadecimal, right-aligned.
fn write_sequence(out: &mut [u8], mut sequence: u64) {
    for byte in out.iter_mut().rev() {
        *byte = HEX[(sequence & 0xf) as usize];
        sequence >>= 4;
    }
}

/// The bytes of a JSON payload that are not updates.
fn json_overhead() -> usize {
    JSON_HEAD.len() + MAX_DIGITS + JSON_LIST.len() + JSON_TAIL.len()
}

/// Appends exactly `size` bytes of JSON (`size` >= [`json_overhead`]):
/// `{"seq":"<16 hex digits>","updates":[{...},{...}   ]}`, padded with
/// spaces before the closing bracket.
fn write_json(out: &mut BytesMut, connection: u32, sequence: u64, size: usize) {
    let start = out.len();
    let end = start + size;
    out.extend_from_slice(JSON_HEAD);
    let digits = out.len();
    out.extend_from_slice(&[0; MAX_DIGITS]);
    write_sequence(&mut out[digits..digits + MAX_DIGITS], sequence);
    out.extend_from_slice(JSON_LIST);
    let mut random =
        (u64::from(connection) << 40 ^ sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    let mut first = true;
    while out.len() + MAX_UPDATE + 1 + JSON_TAIL.len() <= end {
        if !first {
            out.extend_from_slice(b",");
        }
        first = false;
        push_update(out, &mut random);
    }
    out.resize(end - JSON_TAIL.len(), b' ');
    out.extend_from_slice(JSON_TAIL);
}

/// One update record, at most [`MAX_UPDATE`] bytes:
/// `{"sym":"AAPL","bid":187.23,"ask":187.25,"size":300,"venue":"XNAS"}`.
fn push_update(out: &mut BytesMut, random: &mut u64) {
    let r = xorshift(random);
    let symbol = SYMBOLS[(r & 15) as usize];
    let venue = VENUES[((r >> 4) & 3) as usize];
    let bid = 10_000 + (r >> 8) % 90_000;
    let ask = bid + 1 + (r >> 28) % 20;
    let size = 100 * (1 + (r >> 40) % 50);
    out.extend_from_slice(b"{\"sym\":\"");
    out.extend_from_slice(symbol.as_bytes());
    out.extend_from_slice(b"\",\"bid\":");
    push_price(out, bid);
    out.extend_from_slice(b",\"ask\":");
    push_price(out, ask);
    out.extend_from_slice(b",\"size\":");
    push_number(out, size);
    out.extend_from_slice(b",\"venue\":\"");
    out.extend_from_slice(venue.as_bytes());
    out.extend_from_slice(b"\"}");
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// `cents` as `123.45`.
fn push_price(out: &mut BytesMut, cents: u64) {
    push_number(out, cents / 100);
    let rest = cents % 100;
    out.extend_from_slice(&[b'.', b'0' + (rest / 10) as u8, b'0' + (rest % 10) as u8]);
}

/// A decimal number.
fn push_number(out: &mut BytesMut, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_differ() {
        let mut payloads = Payloads::new(3, 40, 4);
        let first = payloads.make(0x1234);
        assert_eq!(first.len(), 40);
        assert_eq!(&first[..16], b"0000000000001234");
        assert!(first.is_ascii());
        assert!(payloads.check(0x1234, &first));
        assert!(!payloads.check(0x1235, &first), "another sequence number");
        let mut other = Payloads::new(4, 40, 4);
        assert!(!other.check(0x1234, &first), "another connection");
        assert!(!payloads.check(0x1234, &first[..39]), "truncated");
        let mut altered = first.to_vec();
        altered[30] ^= 1;
        assert!(!payloads.check(0x1234, &altered), "altered");
    }

    #[test]
    fn small_and_empty_payloads() {
        let mut payloads = Payloads::new(0, 2, 1);
        let payload = payloads.make(0x1ab);
        assert_eq!(&payload[..], b"ab");
        assert!(payloads.check(0x1ab, &payload));
        let mut empty = Payloads::new(0, 0, 1);
        assert!(empty.make(7).is_empty());
        assert!(empty.check(7, b""));
        assert!(!empty.check(7, b"x"));
    }

    #[test]
    fn the_buffer_is_reused() {
        let mut payloads = Payloads::new(0, 100, 1);
        let first = payloads.make(1);
        let address = first.as_ptr();
        drop(first);
        for sequence in 2..100 {
            let payload = payloads.make(sequence);
            assert!(payloads.check(sequence, &payload));
        }
        // After the buffer ran out and every payload was dropped, it is
        // reclaimed from its start rather than reallocated.
        let again = payloads.make(100);
        let start = address as usize;
        let offset = (again.as_ptr() as usize).wrapping_sub(start);
        assert!(offset < 100 * 8, "allocated anew: offset {offset}");
    }

    #[test]
    fn json_payloads_are_exact_json_and_vary() {
        let mut payloads = Payloads::with_kind(PayloadKind::Json, 7, 1024, 8);
        let first = payloads.make(1);
        let second = payloads.make(2);
        assert_eq!(first.len(), 1024);
        assert_eq!(second.len(), 1024);
        assert!(first.is_ascii());
        assert_ne!(first[40..], second[40..], "numbers vary by message");
        let text = std::str::from_utf8(&first).unwrap();
        assert!(
            text.starts_with("{\"seq\":\"0000000000000001\",\"updates\":[{\"sym\":\""),
            "{text}"
        );
        assert!(text.ends_with("]}"), "{text}");
        let value: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        assert!(value["updates"].as_array().unwrap().len() > 10);
        assert!(payloads.check(1, &first));
        assert!(payloads.check(2, &second));
        assert!(!payloads.check(2, &first));
        let mut other = Payloads::with_kind(PayloadKind::Json, 8, 1024, 8);
        assert!(!other.check(1, &first), "another connection");
        let mut altered = first.to_vec();
        altered[500] ^= 1;
        assert!(!payloads.check(1, &altered));
        // Too small for JSON: plain.
        let mut tiny = Payloads::with_kind(PayloadKind::Json, 0, 20, 1);
        let payload = tiny.make(3);
        assert_eq!(&payload[..16], b"0000000000000003");
        for size in 40..200 {
            let mut sized = Payloads::with_kind(PayloadKind::Json, 1, size, 1);
            assert_eq!(sized.make(9).len(), size);
        }
    }

    #[test]
    fn another_connections_payloads_are_recognized() {
        for kind in [PayloadKind::Plain, PayloadKind::Json] {
            let mut mine = Payloads::with_kind(kind, 1, 300, 1);
            let mut theirs = Payloads::with_kind(kind, 2, 300, 1);
            let payload = theirs.make(0x2a);
            assert!(mine.is_payload_of(2, &payload), "{kind:?}");
            assert!(!mine.is_payload_of(3, &payload), "{kind:?}");
            assert!(!mine.is_payload_of(2, &payload[..299]), "{kind:?}");
            let mut altered = payload.to_vec();
            altered[200] ^= 1;
            assert!(!mine.is_payload_of(2, &altered), "{kind:?}");
            altered = payload.to_vec();
            altered[JSON_HEAD.len()] = b'x';
            assert!(!mine.is_payload_of(2, &altered), "{kind:?}: not a sequence");
        }
        let mut empty = Payloads::new(0, 0, 1);
        assert!(!empty.is_payload_of(1, b""));
    }

    #[test]
    fn append_builds_in_place() {
        let payloads = Payloads::new(2, 30, 1);
        let mut out = BytesMut::from(&b"head"[..]);
        payloads.append(5, &mut out);
        assert_eq!(out.len(), 34);
        assert_eq!(&out[..4], b"head");
        assert_eq!(&out[4..20], b"0000000000000005");
    }
}
