//! Bench payloads: exact to verify, cheap to make.
//!
//! A payload of `size` bytes starts with the message's sequence number in
//! lowercase hexadecimal (its low `min(size, 16)` digits) and goes on
//! with letters that depend on the connection, so an echo that comes back
//! on the wrong connection, out of order, truncated or altered is caught.
//! Every byte is ASCII: the same payload serves text and binary messages.

use bytes::{Bytes, BytesMut};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The most digits of the sequence number a payload holds.
const MAX_DIGITS: usize = 16;

/// Makes and checks one connection's payloads.
#[derive(Debug)]
pub struct Payloads {
    /// The whole payload with zero digits: the filler is copied from here.
    template: Vec<u8>,
    digits: usize,
    /// Outgoing payloads are split off this buffer, which reclaims its
    /// memory once they are dropped: no allocation per message.
    buffer: BytesMut,
}

impl Payloads {
    /// Payloads of `size` bytes for connection `connection`, with room for
    /// `in_flight` of them before the buffer has to be reclaimed.
    pub fn new(connection: u32, size: usize, in_flight: usize) -> Payloads {
        let digits = size.min(MAX_DIGITS);
        let mut template = vec![b'0'; size];
        for (index, byte) in template.iter_mut().enumerate().skip(digits) {
            *byte = b'a' + ((index as u64 + u64::from(connection)) % 26) as u8;
        }
        let capacity = size.saturating_mul(in_flight.saturating_mul(2).max(8));
        Payloads {
            template,
            digits,
            buffer: BytesMut::with_capacity(capacity.min(64 << 20)),
        }
    }

    /// The payload of message `sequence`.
    pub fn make(&mut self, sequence: u64) -> Bytes {
        self.buffer.reserve(self.template.len());
        self.buffer.extend_from_slice(&self.template);
        write_sequence(&mut self.buffer[..self.digits], sequence);
        self.buffer.split().freeze()
    }

    /// Whether `payload` is exactly the payload of message `sequence`.
    pub fn check(&self, sequence: u64, payload: &[u8]) -> bool {
        if payload.len() != self.template.len() {
            return false;
        }
        let mut expected = [0u8; MAX_DIGITS];
        write_sequence(&mut expected[..self.digits], sequence);
        payload[..self.digits] == expected[..self.digits]
            && payload[self.digits..] == self.template[self.digits..]
    }
}

/// Writes the low digits of `sequence` in hexadecimal, right-aligned.
fn write_sequence(out: &mut [u8], mut sequence: u64) {
    for byte in out.iter_mut().rev() {
        *byte = HEX[(sequence & 0xf) as usize];
        sequence >>= 4;
    }
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
        let other = Payloads::new(4, 40, 4);
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
}
