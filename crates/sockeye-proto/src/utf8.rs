//! Incremental UTF-8 validation for text messages (RFC 6455 sections 5.6
//! and 8.1).
//!
//! A text message may arrive in many frames, and a frame in many reads; a
//! code point may be split anywhere. [`Utf8Validator`] checks each piece as
//! it arrives and fails at the first byte that can no longer start or
//! continue a valid sequence, so a connection carrying invalid text is
//! closed with 1007 before the rest of the message is read. Whole pieces
//! are checked with `simdutf8`'s SIMD validator; only a code point split
//! between pieces is checked byte-wise.

/// The error returned once a text can no longer be valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for InvalidUtf8 {}

/// Validates UTF-8 given in pieces.
///
/// ```
/// use sockeye_proto::utf8::Utf8Validator;
///
/// let mut validator = Utf8Validator::new();
/// // "€" is E2 82 AC; split it across pieces.
/// validator.feed(b"price: \xe2").unwrap();
/// assert!(!validator.is_complete());
/// validator.feed(b"\x82\xac").unwrap();
/// validator.finish().unwrap();
///
/// // F4 90 can never begin a valid code point: fails at once, before the
/// // sequence would have ended.
/// assert!(Utf8Validator::new().feed(b"\xf4\x90").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// The start of a code point split at the end of the last piece.
    partial: [u8; 4],
    /// A byte, not a `usize`: every connection carries a validator, idle
    /// ones included (issue 18 budgets those at 0.3 KiB).
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Checks the next piece of the text. Fails as soon as the text seen so
    /// far cannot be the prefix of any valid UTF-8 text.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let partial_len = usize::from(self.partial_len);
            let needed = sequence_len(self.partial[0]) - partial_len;
            let take = needed.min(piece.len());
            self.partial[partial_len..partial_len + take].copy_from_slice(&piece[..take]);
            match std::str::from_utf8(&self.partial[..partial_len + take]) {
                Ok(_) => self.partial_len = 0,
                Err(error) if error.error_len().is_none() => {
                    // Still a valid prefix: the piece was too short to
                    // finish the code point (so at most 3 bytes), and it
                    // is used up.
                    self.partial_len = (partial_len + take) as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            piece = &piece[take..];
        }
        // ASCII is checked a word at a time: for the short pieces most
        // messages are, that is several times faster than the SIMD
        // validator, which falls back to the standard library below 64
        // bytes.
        if piece.len() < 64 && piece.is_ascii() {
            return Ok(());
        }
        if simdutf8::basic::from_utf8(piece).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(error) if error.error_len().is_none() => {
                // A valid prefix of a code point: at most 3 bytes.
                let tail = &piece[error.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether the text seen so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Ends the text: fails if it stops inside a code point. The validator
    /// is then ready for a new text.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_complete();
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

/// The length of the sequence a valid lead byte starts.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` split at every pair of points and compares the outcome
    /// with the standard library's verdict on the whole.
    fn agrees_with_std(text: &[u8]) {
        let whole_ok = std::str::from_utf8(text).is_ok();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&text[..a]).is_ok()
                    && v.feed(&text[a..b]).is_ok()
                    && v.feed(&text[b..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, whole_ok, "{text:x?} split at {a},{b}");
            }
        }
    }

    #[test]
    fn split_points_never_change_the_verdict() {
        for text in [
            "".as_bytes(),
            "κόσμε".as_bytes(),
            "𝄞 and € and ß".as_bytes(),
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"abc\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xff",
            b"\x80",
            b"a\xf8\x88\x80\x80\x80",
        ] {
            agrees_with_std(text);
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // Each input is a valid prefix up to its last byte, which is the
        // first byte that makes it invalid: the validator must fail on it
        // without waiting for more.
        for (prefix, bad) in [
            (&b"hello "[..], 0xff_u8),
            (b"\xf4", 0x90),
            (b"\xed", 0xa0),
            (b"\xe0", 0x80),
            (b"\xf0", 0x80),
            (b"\xe2\x82", 0x41),
            (b"", 0xc0),
            (b"", 0xf5),
        ] {
            let mut v = Utf8Validator::new();
            v.feed(prefix).expect("valid prefix");
            assert!(v.feed(&[bad]).is_err(), "{prefix:x?} then {bad:#x}");
        }
    }

    #[test]
    fn unfinished_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xf0\x9f\x98").unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // After finish the validator starts a new text.
        v.feed(b"ok").unwrap();
        v.finish().unwrap();
    }
}
