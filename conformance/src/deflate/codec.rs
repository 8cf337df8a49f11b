//! The runner's own permessage-deflate (RFC 7692 section 7.2), written
//! apart from sockeye's codec: flate2 used directly for raw DEFLATE with
//! the agreed window, a sync flush whose `00 00 ff ff` tail is removed
//! before sending and appended before inflating, the compressor and
//! decompressor reset between messages when context takeover is off.
//!
//! zlib cannot compress raw DEFLATE with an 8-bit window; when 8 bits are
//! agreed for the runner's side, it sends stored blocks, which refer to
//! nothing and so are valid under any window.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The empty stored block a sync flush ends with (section 7.2.1).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression level the runner uses when it may compress: the
/// fastest, since any valid DEFLATE data will do.
const LEVEL: u32 = 1;

/// What compresses one direction: the runner's messages to the testee.
pub struct PeerCompressor {
    zlib: Option<Compress>,
    context_takeover: bool,
}

impl std::fmt::Debug for PeerCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCompressor")
            .field("stored", &self.zlib.is_none())
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

impl PeerCompressor {
    /// A compressor for an agreed window of `2^window_bits` bytes.
    pub fn new(window_bits: u8, context_takeover: bool) -> PeerCompressor {
        assert!((8..=15).contains(&window_bits));
        let zlib = (window_bits >= 9)
            .then(|| Compress::new_with_window_bits(Compression::new(LEVEL), false, window_bits));
        PeerCompressor {
            zlib,
            context_takeover,
        }
    }

    /// One message's payload: raw DEFLATE ending in a sync flush, the tail
    /// removed.
    pub fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        let Some(zlib) = self.zlib.as_mut() else {
            return stored(message);
        };
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        let start = zlib.total_in();
        loop {
            let consumed = (zlib.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let status = zlib
                .compress_vec(&message[consumed..], &mut out, FlushCompress::Sync)
                .expect("the runner's zlib stream is never corrupted");
            assert!(matches!(status, Status::Ok | Status::BufError));
            let done = (zlib.total_in() - start) as usize == message.len();
            // The flush is complete once zlib leaves output room unused.
            if done && out.len() < out.capacity() {
                break;
            }
        }
        assert!(
            out.ends_with(&TAIL),
            "a sync flush ends with an empty stored block"
        );
        out.truncate(out.len() - TAIL.len());
        if !self.context_takeover {
            zlib.reset();
        }
        out
    }
}

/// `message` as non-final stored blocks: each block's header byte (BFINAL
/// 0, BTYPE 00, padding), LEN and NLEN, the bytes. The sync flush's empty
/// stored block follows, minus the tail, which leaves its header byte.
pub fn stored(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 65535 * 5 + 6);
    for block in message.chunks(65535) {
        let len = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00);
    out
}

/// What decompresses the other direction: the testee's messages.
pub struct PeerDecompressor {
    zlib: Decompress,
    window_bits: u8,
    context_takeover: bool,
}

impl std::fmt::Debug for PeerDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerDecompressor")
            .field("window_bits", &self.window_bits)
            .field("context_takeover", &self.context_takeover)
            .finish()
    }
}

impl PeerDecompressor {
    /// A decompressor for an agreed window of `2^window_bits` bytes (zlib
    /// inflates with at least 9).
    pub fn new(window_bits: u8, context_takeover: bool) -> PeerDecompressor {
        let window_bits = window_bits.max(9);
        PeerDecompressor {
            zlib: Decompress::new_with_window_bits(false, window_bits),
            window_bits,
            context_takeover,
        }
    }

    /// Inflates one message's payload (the tail appended), or says why it
    /// does not inflate. With no context takeover the window starts empty,
    /// so a reference into an earlier message fails here.
    pub fn inflate(&mut self, payload: &[u8], expected_len: usize) -> Result<Vec<u8>, String> {
        if !self.context_takeover {
            self.zlib = Decompress::new_with_window_bits(false, self.window_bits);
        }
        let mut input = Vec::with_capacity(payload.len() + TAIL.len());
        input.extend_from_slice(payload);
        input.extend_from_slice(&TAIL);
        // Room for the message expected and a little more, so an overlong
        // one shows.
        let limit = expected_len + 1024;
        let mut out = Vec::with_capacity(expected_len + 64);
        let start = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start) as usize;
            if out.len() >= limit {
                return Err(format!("it inflates to more than {limit} bytes"));
            }
            if out.capacity() == out.len() {
                out.reserve(4096);
            }
            let status = self
                .zlib
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|error| format!("it does not inflate: {error}"))?;
            if status == Status::StreamEnd {
                return Err("it holds a final DEFLATE block (BFINAL set)".into());
            }
            let done = (self.zlib.total_in() - start) as usize == input.len();
            if done && out.len() < out.capacity() {
                return Ok(out);
            }
            if !done && status == Status::BufError && out.len() < out.capacity() {
                return Err("zlib makes no progress on it".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_takeover() {
        for bits in [8, 9, 12, 15] {
            for takeover in [true, false] {
                let mut compressor = PeerCompressor::new(bits, takeover);
                let mut decompressor = PeerDecompressor::new(bits, takeover);
                for round in 0..4 {
                    let message: Vec<u8> = (0..5000u32)
                        .map(|i| (i % 251) as u8 ^ round as u8)
                        .collect();
                    let compressed = compressor.compress(&message);
                    assert_eq!(
                        decompressor.inflate(&compressed, message.len()).unwrap(),
                        message
                    );
                }
            }
        }
    }

    #[test]
    fn stored_blocks_of_an_empty_and_a_long_message() {
        assert_eq!(stored(b""), [0x00]);
        let long = vec![7u8; 70_000];
        let mut decompressor = PeerDecompressor::new(15, false);
        assert_eq!(
            decompressor.inflate(&stored(&long), long.len()).unwrap(),
            long
        );
    }

    #[test]
    fn no_takeover_rejects_a_reference_into_the_previous_message() {
        let mut compressor = PeerCompressor::new(15, true);
        let message = b"a message that repeats, a message that repeats".repeat(4);
        let first = compressor.compress(&message);
        let second = compressor.compress(&message);
        let mut decompressor = PeerDecompressor::new(15, false);
        decompressor.inflate(&first, message.len()).unwrap();
        assert!(decompressor.inflate(&second, message.len()).is_err());
    }
}
