//! The peer's frame encoder (RFC 6455 section 5.2), written apart from
//! sockeye-proto's codec on purpose: if the runner used the engine's own
//! encoder, a bug shared by both sides would go unseen. It can also write
//! frames no correct encoder would: reserved bits and opcodes, the wrong
//! masking for the role, non-minimal and out-of-range length encodings.

use bytes::Bytes;

/// The opcodes of RFC 6455 section 5.2 (and a few reserved ones are just
/// other numbers).
pub mod opcode {
    /// A continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A Close frame.
    pub const CLOSE: u8 = 0x8;
    /// A Ping frame.
    pub const PING: u8 = 0x9;
    /// A Pong frame.
    pub const PONG: u8 = 0xA;

    /// Whether `opcode` is a control opcode (section 5.5), reserved or not.
    pub fn is_control(opcode: u8) -> bool {
        opcode & 0x8 != 0
    }

    /// Whether RFC 6455 defines `opcode` (section 5.2; the rest are
    /// reserved).
    pub fn is_defined(opcode: u8) -> bool {
        matches!(opcode, 0x0..=0x2 | 0x8..=0xA)
    }

    /// A short name for reports.
    pub fn name(opcode: u8) -> &'static str {
        match opcode {
            CONTINUATION => "continuation",
            TEXT => "text",
            BINARY => "binary",
            CLOSE => "close",
            PING => "ping",
            PONG => "pong",
            _ => "reserved",
        }
    }
}

/// Whether a frame the peer sends is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// As section 5.1 requires of the peer: masked towards a server,
    /// unmasked towards a client.
    Proper,
    /// The opposite: unmasked towards a server, masked towards a client.
    Wrong,
}

/// How the payload length is written (section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// The minimal encoding: 7 bits, else 16, else 64.
    Minimal,
    /// Always the 16-bit form (non-minimal below 126 bytes).
    Extended16,
    /// Always the 64-bit form (non-minimal below 65536 bytes).
    Extended64,
    /// The 64-bit form with its most significant bit set, which section
    /// 5.2 forbids ("the most significant bit MUST be 0").
    Extended64HighBit,
}

/// One frame as the peer will write it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (RSV1 is 4).
    pub rsv: u8,
    /// The 4-bit opcode.
    pub opcode: u8,
    /// The unmasked payload.
    pub payload: Bytes,
    /// Whether to mask it as the role requires.
    pub masking: Masking,
    /// How to write its length.
    pub length: Length,
}

impl Frame {
    /// A final frame with `opcode` and `payload`, masked properly, with a
    /// minimal length.
    pub fn new(opcode: u8, payload: impl Into<Bytes>) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.into(),
            masking: Masking::Proper,
            length: Length::Minimal,
        }
    }

    /// A final text frame.
    pub fn text(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::TEXT, payload)
    }

    /// A final binary frame.
    pub fn binary(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::BINARY, payload)
    }

    /// A final continuation frame.
    pub fn continuation(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::CONTINUATION, payload)
    }

    /// A Ping.
    pub fn ping(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::PING, payload)
    }

    /// A Pong.
    pub fn pong(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::PONG, payload)
    }

    /// A Close frame with a code and a reason (the reason may be any bytes).
    pub fn close(code: u16, reason: &[u8]) -> Frame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        Frame::new(opcode::CLOSE, payload)
    }

    /// A Close frame with exactly this payload (empty, one byte, ...).
    pub fn close_raw(payload: impl Into<Bytes>) -> Frame {
        Frame::new(opcode::CLOSE, payload)
    }

    /// Sets the FIN bit.
    pub fn fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }

    /// Sets RSV1..RSV3 (a 3-bit number).
    pub fn rsv(mut self, rsv: u8) -> Frame {
        assert!(rsv < 8, "RSV is three bits");
        self.rsv = rsv;
        self
    }

    /// Sets how the frame is masked.
    pub fn masking(mut self, masking: Masking) -> Frame {
        self.masking = masking;
        self
    }

    /// Sets how the length is written.
    pub fn length(mut self, length: Length) -> Frame {
        self.length = length;
        self
    }

    /// Whether this is a control frame.
    pub fn is_control(&self) -> bool {
        opcode::is_control(self.opcode)
    }

    /// A one-line description for reports: `text(fin, 5 bytes)`.
    pub fn describe(&self) -> String {
        format!(
            "{}{}(fin={}, rsv={}, {} bytes)",
            opcode::name(self.opcode),
            if opcode::is_defined(self.opcode) {
                String::new()
            } else {
                format!(" {:#x}", self.opcode)
            },
            u8::from(self.fin),
            self.rsv,
            self.payload.len()
        )
    }
}

/// Where one frame lies in an encoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the frame's first byte.
    pub start: usize,
    /// Length of the header, masking key included.
    pub header_len: usize,
    /// Length of the payload.
    pub payload_len: usize,
    /// Offset of the last byte of the length field (byte 1, 3 or 9 of
    /// the header): where the payload length becomes known.
    pub length_end: usize,
}

impl Layout {
    /// Offset one past the frame's last byte.
    pub fn end(&self) -> usize {
        self.start + self.header_len + self.payload_len
    }
}

/// Frames encoded back to back.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
    /// Where each frame lies, in order.
    pub layout: Vec<Layout>,
}

/// A small deterministic generator (xorshift64*) for masking keys, so a
/// failing case replays byte for byte.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A seed derived from a string, such as a case id.
    pub fn from_str_seed(text: &str) -> Rng {
        // FNV-1a: stable across platforms and Rust versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng::new(hash)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Four random bytes.
    pub fn key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_be_bytes()
    }
}

/// XORs `data` with `key`, the first byte with `key[0]` (section 5.3).
/// Works a word at a time so that 16 MiB payloads stay quick in the
/// unoptimized test profile.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[index % 4];
    }
}

/// Encodes `frames` back to back. `towards_server` says whether the testee
/// is a server, so [`Masking::Proper`] frames are masked; masking keys come
/// from `rng`.
pub fn encode(frames: &[Frame], towards_server: bool, rng: &mut Rng) -> Encoded {
    let total: usize = frames.iter().map(|frame| frame.payload.len() + 14).sum();
    let mut bytes = Vec::with_capacity(total);
    let mut layout = Vec::with_capacity(frames.len());
    for frame in frames {
        let start = bytes.len();
        let masked = towards_server == (frame.masking == Masking::Proper);
        bytes.push((u8::from(frame.fin) << 7) | ((frame.rsv & 0x7) << 4) | (frame.opcode & 0xf));
        let mask_bit = if masked { 0x80 } else { 0 };
        let len = frame.payload.len();
        let length = match frame.length {
            Length::Minimal if len < 126 => None,
            Length::Minimal if len <= 0xffff => Some(Length::Extended16),
            Length::Minimal => Some(Length::Extended64),
            other => Some(other),
        };
        match length {
            None => bytes.push(mask_bit | len as u8),
            Some(Length::Extended16) => {
                let len = u16::try_from(len).expect("a 16-bit length holds at most 65535");
                bytes.push(mask_bit | 126);
                bytes.extend_from_slice(&len.to_be_bytes());
            }
            Some(Length::Extended64) => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&(len as u64).to_be_bytes());
            }
            Some(Length::Extended64HighBit) => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&((len as u64) | (1 << 63)).to_be_bytes());
            }
            Some(Length::Minimal) => unreachable!("resolved above"),
        }
        let length_end = bytes.len() - 1;
        let payload_start = if masked {
            let key = rng.key();
            bytes.extend_from_slice(&key);
            let payload_start = bytes.len();
            bytes.extend_from_slice(&frame.payload);
            apply_mask(&mut bytes[payload_start..], key);
            payload_start
        } else {
            let payload_start = bytes.len();
            bytes.extend_from_slice(&frame.payload);
            payload_start
        };
        layout.push(Layout {
            start,
            header_len: payload_start - start,
            payload_len: len,
            length_end,
        });
    }
    Encoded { bytes, layout }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Section 5.7's examples, byte for byte.
    #[test]
    fn rfc_examples() {
        let mut rng = Rng::new(1);
        let hello = encode(&[Frame::text("Hello")], false, &mut rng);
        assert_eq!(hello.bytes, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let fragments = encode(
            &[Frame::text("Hel").fin(false), Frame::continuation("lo")],
            false,
            &mut rng,
        );
        assert_eq!(
            fragments.bytes,
            [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
        let big = encode(&[Frame::binary(vec![0; 256])], false, &mut rng);
        assert_eq!(big.bytes[..4], [0x82, 0x7e, 0x01, 0x00]);
        let huge = encode(&[Frame::binary(vec![0; 65536])], false, &mut rng);
        assert_eq!(
            huge.bytes[..10],
            [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]
        );
        assert_eq!(huge.layout[0].length_end, 9);
    }

    #[test]
    fn masked_hello_unmasks_to_hello() {
        let mut rng = Rng::new(7);
        let encoded = encode(&[Frame::text("Hello")], true, &mut rng);
        assert_eq!(encoded.bytes[..2], [0x81, 0x85]);
        let key: [u8; 4] = encoded.bytes[2..6].try_into().unwrap();
        let mut payload = encoded.bytes[6..].to_vec();
        apply_mask(&mut payload, key);
        assert_eq!(payload, b"Hello");
        assert_eq!(encoded.layout[0].header_len, 6);
    }

    #[test]
    fn odd_encodings() {
        let mut rng = Rng::new(3);
        let frame = Frame::ping("x")
            .length(Length::Extended16)
            .rsv(5)
            .fin(false);
        let encoded = encode(&[frame], false, &mut rng);
        assert_eq!(encoded.bytes, [0x59, 126, 0, 1, b'x']);
        let frame = Frame::binary("x")
            .length(Length::Extended64HighBit)
            .masking(Masking::Wrong);
        let encoded = encode(&[frame], true, &mut rng);
        assert_eq!(encoded.bytes[..3], [0x82, 127, 0x80]);
        assert_eq!(encoded.bytes.len(), 11);
    }

    #[test]
    fn word_masking_matches_bytewise() {
        let key = [1, 2, 3, 4];
        for len in 0..40 {
            let mut data: Vec<u8> = (0..len as u8).collect();
            apply_mask(&mut data, key);
            for (index, byte) in data.iter().enumerate() {
                assert_eq!(*byte, index as u8 ^ key[index % 4]);
            }
        }
    }
}
