//! Sec-WebSocket-Key and Sec-WebSocket-Accept (RFC 6455 sections 4.1 and
//! 4.2.2, 11.3.1 and 11.3.3).
//!
//! The key is a fresh 16-byte nonce, base64-encoded; the accept value proves
//! that the server read the key: `base64(SHA-1(key + GUID))`.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rand::Rng;
use sha1::{Digest, Sha1};

/// The GUID appended to the key before hashing (RFC 6455 section 1.3).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of a valid Sec-WebSocket-Key: 16 bytes in base64, with its
/// `==` padding.
const KEY_LENGTH: usize = 24;

/// A fresh Sec-WebSocket-Key: 16 bytes from the thread-local CSPRNG
/// (`rand::rng()`, ChaCha seeded from the operating system), base64-encoded.
///
/// RFC 6455 section 4.1 requires a new random nonce per connection; it is
/// not a secret, but predictable keys let a cache or proxy replay a stale
/// handshake.
pub fn generate_key() -> String {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    encode_key(&nonce)
}

/// The Sec-WebSocket-Key for a given nonce.
pub(crate) fn encode_key(nonce: &[u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key, as the server
/// sends it and the client expects it.
///
/// The key is hashed as the string it is on the wire, not base64-decoded.
///
/// ```
/// use sockeye_proto::handshake::accept_key;
///
/// // The example of RFC 6455 section 1.3.
/// assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key);
    hasher.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(hasher.finalize())
}

/// Decodes keys: the standard alphabet with its `=` padding required, but
/// non-zero unused bits in the last character allowed, because RFC 6455's
/// own example key (section 4.1 item 7, `AQIDBAUGBwgJCgsMDQ4PEC==`) has
/// them and RFC 4648 section 3.5 only permits rejecting them.
const KEY_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Whether a Sec-WebSocket-Key is the base64 encoding of exactly 16 bytes
/// (RFC 6455 section 4.2.1 item 5): 24 characters of the standard alphabet
/// ending in `==`, nothing else (no whitespace, no URL-safe alphabet, no
/// missing padding).
pub fn is_valid_key(key: &[u8]) -> bool {
    if key.len() != KEY_LENGTH {
        return false;
    }
    let mut decoded = [0u8; 18];
    matches!(KEY_DECODER.decode_slice(key, &mut decoded), Ok(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_sample_key_gives_the_rfc_accept_value() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn generated_keys_are_valid_and_differ() {
        let first = generate_key();
        let second = generate_key();
        assert_eq!(first.len(), 24);
        assert!(is_valid_key(first.as_bytes()));
        assert!(is_valid_key(second.as_bytes()));
        assert_ne!(first, second);
    }

    #[test]
    fn encoded_nonce_matches_the_rfc_example() {
        // RFC 6455 section 4.1 item 7 prints this example as
        // "AQIDBAUGBwgJCgsMDQ4PEC==", whose last character carries non-zero
        // unused bits; the canonical encoding ends in "EA==". Both decode to
        // the same 16 bytes and both are accepted.
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        assert_eq!(encode_key(&nonce), "AQIDBAUGBwgJCgsMDQ4PEA==");
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEA=="));
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEC=="));
    }

    #[test]
    fn keys_of_the_wrong_length_or_encoding_are_invalid() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // 15 and 17 bytes.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZXMh"));
        // Missing padding, URL-safe alphabet, whitespace, padding inside.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZ-_=="));
        assert!(!is_valid_key(b" GhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j===="));
        assert!(!is_valid_key(b"dGhl=HNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b""));
    }
}
