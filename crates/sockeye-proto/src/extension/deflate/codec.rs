//! Compressing and decompressing messages (RFC 7692 section 7.2).
//!
//! A message is compressed as raw DEFLATE ended by a sync flush, whose
//! trailing empty stored block (`00 00 ff ff`) is removed before sending
//! and appended again before inflating (section 7.2.1, 7.2.2).
//!
//! Both halves allocate their zlib state on first use, so a connection that
//! negotiated compression but sends only small messages, or none, pays
//! nothing for it; and both drop that state when the connection ends.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateDirection, MIN_COMPRESS_WINDOW_BITS};

/// The empty stored block a sync flush ends with (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output room to start inflating a chunk with, before growing. Small:
/// the room is zero-filled before zlib writes into it, and the sync-flush
/// tail that ends every message inflates to (almost) nothing.
const MIN_INFLATE_ROOM: usize = 256;
/// The first guess at how much a chunk inflates to, per input byte (text
/// such as JSON shrinks 4-10 times); the room doubles when it was too
/// small.
const INFLATE_GUESS: usize = 8;
/// Output room is never grown past this per step, so a bomb's output is
/// checked against the limit in bounded steps.
const MAX_INFLATE_ROOM: usize = 256 * 1024;

/// The compressing half: what this endpoint sends.
pub(crate) struct Compressor {
    zlib: Option<Compress>,
    level: Compression,
    window_bits: u8,
    context_takeover: bool,
    /// Reused output buffer: small messages are compressed without an
    /// allocation each.
    scratch: BytesMut,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("allocated", &self.zlib.is_some())
            .field("level", &self.level.level())
            .field("window_bits", &self.window_bits)
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

/// Why a compressor failed. zlib only fails on a corrupted stream state, so
/// this is an internal error, not the peer's.
#[derive(Debug)]
pub(crate) struct CompressFailed;

impl Compressor {
    pub(crate) fn new(direction: DeflateDirection, level: u32) -> Compressor {
        Compressor {
            zlib: None,
            level: Compression::new(level.min(9)),
            window_bits: direction.window_bits,
            context_takeover: direction.context_takeover,
            scratch: BytesMut::new(),
        }
    }

    /// Whether this compressor can compress at all: zlib cannot honour an
    /// 8-bit window (see the module documentation), so with one agreed the
    /// messages of this direction go uncompressed.
    pub(crate) fn can_compress(&self) -> bool {
        self.window_bits >= MIN_COMPRESS_WINDOW_BITS
    }

    /// Whether the window is kept from one message to the next.
    pub(crate) fn context_takeover(&self) -> bool {
        self.context_takeover
    }

    /// Frees zlib's state and the scratch buffer (allocated again on next
    /// use), for a connection that ended.
    pub(crate) fn release(&mut self) {
        self.zlib = None;
        self.scratch = BytesMut::new();
    }

    /// The window size compressed with.
    pub(crate) fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The zlib level.
    pub(crate) fn level(&self) -> u32 {
        self.level.level()
    }

    /// Compresses one whole message; the result has the sync-flush tail
    /// removed, ready to be a frame payload with RSV1 set.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Result<Bytes, CompressFailed> {
        if !self.can_compress() {
            return Err(CompressFailed);
        }
        let (level, bits) = (self.level, self.window_bits);
        let zlib = self
            .zlib
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        let out = &mut self.scratch;
        out.clear();
        let start_in = zlib.total_in();
        loop {
            let consumed = (zlib.total_in() - start_in) as usize;
            // Room for the rest of the input (DEFLATE expands incompressible
            // data by a few bytes per 16 KiB block) and the flush.
            let room = (payload.len() - consumed) / 2 + 64;
            let filled = out.len();
            out.resize(filled + room, 0);
            let before_out = zlib.total_out();
            let status = zlib.compress(
                &payload[consumed..],
                &mut out[filled..],
                FlushCompress::Sync,
            );
            let written = (zlib.total_out() - before_out) as usize;
            out.truncate(filled + written);
            match status {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) | Err(_) => {
                    // The stream is unusable; start over next time.
                    self.zlib = None;
                    return Err(CompressFailed);
                }
            }
            let done = zlib.total_in() - start_in == payload.len() as u64;
            // A sync flush is complete once zlib stops short of the room it
            // was given.
            if done && written < room {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // An empty message after a flush produces nothing; its smallest
            // valid encoding is the header of an empty stored block, which
            // the receiver's appended tail completes (section 7.2.3.6).
            out.extend_from_slice(&[0x00]);
        }
        if !self.context_takeover {
            zlib.reset();
        }
        Ok(out.split().freeze())
    }
}

/// Why inflating a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The inflated message would exceed the limit.
    TooLarge,
    /// The compressed data is not valid DEFLATE.
    Invalid,
}

/// The decompressing half: what this endpoint receives.
pub(crate) struct Decompressor {
    zlib: Option<Decompress>,
    window_bits: u8,
    context_takeover: bool,
    /// The peer ended the DEFLATE stream (a block with BFINAL set) within
    /// the current message.
    ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("allocated", &self.zlib.is_some())
            .field("window_bits", &self.window_bits)
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

impl Decompressor {
    pub(crate) fn new(direction: DeflateDirection) -> Decompressor {
        Decompressor {
            zlib: None,
            // A larger window decodes anything a smaller one encoded, and
            // zlib's raw inflate wants at least 9.
            window_bits: direction.window_bits.max(MIN_COMPRESS_WINDOW_BITS),
            context_takeover: direction.context_takeover,
            ended: false,
        }
    }

    /// Frees zlib's state, for a connection that ended.
    pub(crate) fn release(&mut self) {
        self.zlib = None;
    }

    /// Inflates `input`, a piece of a compressed message, appending to
    /// `out`, which never grows past `limit` bytes: once the output would
    /// exceed it, inflating stops with [`InflateError::TooLarge`].
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<(), InflateError> {
        if self.ended {
            // After a final block (section 7.2.3.3) the stream is over:
            // like zlib-based peers, ignore what follows in the message.
            return Ok(());
        }
        let bits = self.window_bits;
        let zlib = self
            .zlib
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut input = input;
        let mut room =
            (input.len().saturating_mul(INFLATE_GUESS)).clamp(MIN_INFLATE_ROOM, MAX_INFLATE_ROOM);
        loop {
            // One byte past the limit tells "exactly the limit" from "over".
            let allowed = (limit + 1).saturating_sub(out.len()).min(room);
            if allowed == 0 {
                return Err(InflateError::TooLarge);
            }
            let filled = out.len();
            out.resize(filled + allowed, 0);
            let (before_in, before_out) = (zlib.total_in(), zlib.total_out());
            let status = zlib.decompress(input, &mut out[filled..], FlushDecompress::Sync);
            let consumed = (zlib.total_in() - before_in) as usize;
            let written = (zlib.total_out() - before_out) as usize;
            out.truncate(filled + written);
            input = &input[consumed..];
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            match status {
                Err(_) => return Err(InflateError::Invalid),
                Ok(Status::StreamEnd) => {
                    self.ended = true;
                    return Ok(());
                }
                Ok(Status::Ok | Status::BufError) => {}
            }
            if input.is_empty() && written < allowed {
                // All input consumed and zlib stopped short of the room.
                return Ok(());
            }
            if consumed == 0 && written == 0 {
                // No progress: done if nothing is left, else stuck.
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(InflateError::Invalid)
                };
            }
            if written == allowed {
                room = (room * 2).min(MAX_INFLATE_ROOM);
            }
        }
    }

    /// Ends a message: inflates the sync-flush tail and, without context
    /// takeover (or after the peer ended its stream), resets the window.
    pub(crate) fn finish(&mut self, out: &mut BytesMut, limit: usize) -> Result<(), InflateError> {
        let result = if self.ended {
            Ok(())
        } else {
            self.inflate(&TAIL, out, limit)
        };
        if !self.context_takeover || self.ended {
            if let Some(zlib) = &mut self.zlib {
                zlib.reset(false);
            }
            self.ended = false;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direction(window_bits: u8, context_takeover: bool) -> DeflateDirection {
        DeflateDirection {
            window_bits,
            context_takeover,
        }
    }

    fn roundtrip(bits: u8, takeover: bool, messages: &[&[u8]]) -> Vec<usize> {
        let mut compressor = Compressor::new(direction(bits, takeover), 6);
        let mut decompressor = Decompressor::new(direction(bits, takeover));
        let mut sizes = Vec::new();
        for message in messages {
            let compressed = compressor.compress(message).unwrap();
            assert!(!compressed.ends_with(&TAIL));
            sizes.push(compressed.len());
            let mut out = BytesMut::new();
            decompressor
                .inflate(&compressed, &mut out, 1 << 30)
                .unwrap();
            decompressor.finish(&mut out, 1 << 30).unwrap();
            assert_eq!(&out[..], *message);
        }
        sizes
    }

    #[test]
    fn rfc7692_hello_example() {
        // Section 7.2.3.1: "Hello" compressed is c2 48 cd c9 c9 07 00 ...
        let mut decompressor = Decompressor::new(direction(15, true));
        let mut out = BytesMut::new();
        let payload = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        decompressor.inflate(&payload, &mut out, 100).unwrap();
        decompressor.finish(&mut out, 100).unwrap();
        assert_eq!(&out[..], b"Hello");
        // Section 7.2.3.2: the same message again, with context takeover,
        // refers back to the first.
        let mut out = BytesMut::new();
        decompressor
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        decompressor.finish(&mut out, 100).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn rfc7692_bfinal_and_stored_blocks() {
        // Section 7.2.3.3: a block with BFINAL set.
        let mut decompressor = Decompressor::new(direction(15, true));
        let mut out = BytesMut::new();
        decompressor
            .inflate(
                &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
                &mut out,
                100,
            )
            .unwrap();
        decompressor.finish(&mut out, 100).unwrap();
        assert_eq!(&out[..], b"Hello");
        // Section 7.2.3.4: an uncompressed (stored) block.
        let mut out = BytesMut::new();
        decompressor
            .inflate(
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
                ],
                &mut out,
                100,
            )
            .unwrap();
        decompressor.finish(&mut out, 100).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn roundtrips_every_window_with_and_without_takeover() {
        let json = br#"{"symbol":"ACME","price":101.25,"size":300,"side":"buy"}"#;
        for bits in 9..=15 {
            for takeover in [true, false] {
                let sizes = roundtrip(bits, takeover, &[json, json, b"", b"x", json]);
                if takeover {
                    assert!(
                        sizes[1] < sizes[0] / 2,
                        "takeover reuses the window: {sizes:?}"
                    );
                } else {
                    assert_eq!(sizes[0], sizes[1]);
                }
            }
        }
    }

    #[test]
    fn an_8_bit_window_is_not_compressed_with() {
        let mut compressor = Compressor::new(direction(8, true), 6);
        assert!(!compressor.can_compress());
        assert!(compressor.compress(b"anything at all").is_err());
        // Receiving with 8 bits agreed works: zlib inflates with 9.
        let mut decompressor = Decompressor::new(direction(8, true));
        let mut out = BytesMut::new();
        decompressor
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        decompressor.finish(&mut out, 100).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn large_and_incompressible_messages_roundtrip() {
        let mut noise = vec![0u8; 300_000];
        let mut state = 0x1234_5678u32;
        for byte in &mut noise {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *byte = state as u8;
        }
        let text = "sockeye ".repeat(100_000);
        roundtrip(15, true, &[&noise, text.as_bytes(), &noise]);
        roundtrip(9, false, &[&noise, text.as_bytes()]);
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        let mut compressor = Compressor::new(direction(15, false), 9);
        let bomb = compressor.compress(&vec![0u8; 10 << 20]).unwrap();
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let mut decompressor = Decompressor::new(direction(15, false));
        let mut out = BytesMut::new();
        assert_eq!(
            decompressor.inflate(&bomb, &mut out, 1 << 20),
            Err(InflateError::TooLarge)
        );
        assert!(out.len() <= (1 << 20) + 1);
        // The buffer grows like a `Vec` (doubling, by `realloc`), so its
        // capacity stays within twice what the limit allows.
        assert!(out.capacity() <= 2 * ((1 << 20) + 1), "{}", out.capacity());
        // Exactly at the limit is fine.
        let mut decompressor = Decompressor::new(direction(15, false));
        let exact = Compressor::new(direction(15, false), 6)
            .compress(&vec![7u8; 5000])
            .unwrap();
        let mut out = BytesMut::new();
        decompressor.inflate(&exact, &mut out, 5000).unwrap();
        decompressor.finish(&mut out, 5000).unwrap();
        assert_eq!(out.len(), 5000);
    }

    #[test]
    fn invalid_data_is_an_error() {
        let mut decompressor = Decompressor::new(direction(15, true));
        let mut out = BytesMut::new();
        // BTYPE 11 is reserved.
        assert_eq!(
            decompressor.inflate(&[0xff, 0xff, 0xff], &mut out, 100),
            Err(InflateError::Invalid)
        );
        // A distance further back than anything inflated so far.
        let mut decompressor = Decompressor::new(direction(15, true));
        let mut out = BytesMut::new();
        assert_eq!(
            decompressor.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100),
            Err(InflateError::Invalid)
        );
    }

    #[test]
    fn input_split_anywhere_inflates_the_same() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(500);
        let compressed = Compressor::new(direction(15, true), 6)
            .compress(text.as_bytes())
            .unwrap();
        for piece in [1, 2, 3, 7, 100, 1000] {
            let mut decompressor = Decompressor::new(direction(15, true));
            let mut out = BytesMut::new();
            for chunk in compressed.chunks(piece) {
                decompressor.inflate(chunk, &mut out, 1 << 20).unwrap();
            }
            decompressor.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(&out[..], text.as_bytes());
        }
    }
}
