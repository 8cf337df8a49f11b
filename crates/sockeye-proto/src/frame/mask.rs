//! Masking and unmasking payloads in place (RFC 6455 section 5.3).
//!
//! Masking XORs the payload with a 4-byte key repeated. This is on the hot
//! path of every frame a server receives and every frame a client sends, so
//! it works a 64-bit word at a time, eight words per step, which the
//! compiler turns into SIMD loads and stores: safe code, at memory
//! bandwidth (see `benches/kernels.rs`).

/// XORs `buf` with `key`, where `buf` starts `offset` bytes into the
/// payload. The offset lets a payload be unmasked piece by piece as it
/// arrives. Masking and unmasking are the same operation.
///
/// ```
/// use sockeye_proto::frame::mask::apply_mask;
///
/// let key = [1, 2, 3, 4];
/// let mut data = *b"hello world";
/// apply_mask(&mut data, key, 0);
/// // Unmask in two pieces: the offset keeps the key aligned.
/// let (head, tail) = data.split_at_mut(3);
/// apply_mask(head, key, 0);
/// apply_mask(tail, key, 3);
/// assert_eq!(&data, b"hello world");
/// ```
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    // The key twice: both halves are equal, so this is the same word in
    // either byte order (built from bytes, it cost ~30 instructions, more
    // than masking a small payload).
    let half = u64::from(u32::from_ne_bytes(key));
    let word = half | (half << 32);
    let rest = if buf.len() >= 64 {
        // Eight independent words per step give the vectorizer a full
        // 64-byte block; the 8-byte loop after it handles what is left of
        // the block.
        let mut blocks = buf.chunks_exact_mut(64);
        for block in &mut blocks {
            for chunk in block.chunks_exact_mut(8) {
                xor_word(chunk, word);
            }
        }
        blocks.into_remainder()
    } else {
        // A small message's payload: no block loop to set up.
        buf
    };
    let mut words = rest.chunks_exact_mut(8);
    for chunk in &mut words {
        xor_word(chunk, word);
    }
    // Each step covered a multiple of 4 bytes, so the key is still aligned.
    // At most 7 bytes are left: one 4-byte word and 3 bytes, rather than a
    // loop of 7 (a small message's payload is mostly its last bytes).
    let mut rest = words.into_remainder();
    if rest.len() >= 4 {
        let (chunk, after) = rest.split_at_mut(4);
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u32::from_ne_bytes(bytes) ^ u32::from_ne_bytes(key)).to_ne_bytes());
        rest = after;
    }
    for (byte, key) in rest.iter_mut().zip(key) {
        *byte ^= key;
    }
}

#[inline(always)]
fn xor_word(chunk: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

/// The key as seen from `offset` bytes into the payload.
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // One register rotation (a slice rotation costs ~20 instructions, as
    // much as masking a small payload).
    let shift = 8 * (offset & 3) as u32;
    let word = u32::from_ne_bytes(key);
    let rotated = if cfg!(target_endian = "little") {
        word.rotate_right(shift)
    } else {
        word.rotate_left(shift)
    };
    rotated.to_ne_bytes()
}

/// The byte-per-iteration definition of masking that [`apply_mask`] must
/// match, kept as the reference for tests and benchmarks.
#[doc(hidden)]
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_at_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        for len in 0..200 {
            for offset in 0..4 {
                for start in 0..3 {
                    let mut fast = data[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_reference(&mut slow, key, offset);
                    assert_eq!(fast, slow, "len {len} offset {offset} start {start}");
                }
            }
        }
    }

    #[test]
    fn piecewise_unmasking_equals_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let original: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for cut in [1, 3, 5, 64, 65, 999] {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, whole, "cut {cut}");
        }
    }

    #[test]
    fn rfc_example() {
        // Section 5.7: a masked "Hello".
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }
}
