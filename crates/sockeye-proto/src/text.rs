//! [`Utf8Bytes`]: a reference-counted byte buffer that is always valid UTF-8.
//!
//! This is the crate's only module with `unsafe` code: handing out `&str`
//! without validating the bytes again needs `str::from_utf8_unchecked`. The
//! invariant it relies on is established here and nowhere else: the field is
//! private, and every constructor either validates or starts from a `str`.
//! Its tests run under Miri in CI.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Text that is guaranteed to be UTF-8, held in a [`Bytes`] so it can be
/// cloned and sliced without copying.
///
/// Received text messages are validated once, while they arrive; this type
/// carries that proof so [`Utf8Bytes::as_str`] costs nothing.
///
/// ```
/// use sockeye_proto::Utf8Bytes;
///
/// let text = Utf8Bytes::from("héllo");
/// assert_eq!(text.as_str(), "héllo");
/// assert_eq!(text.len(), 6);
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    pub const fn from_static(text: &'static str) -> Utf8Bytes {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` either starts from a `str`
        // or validates the bytes (`try_from`, `from_validated` after the
        // caller's `simdutf8`/`std` check below), and the field is private to
        // this module, so the bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Wraps bytes that the engine's incremental validator has already
    /// proven to be UTF-8. In debug builds the proof is checked again.
    pub(crate) fn from_validated(bytes: Bytes) -> Utf8Bytes {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        // A release build trusts the validator, which is what makes
        // receiving text cost one pass. The validator is tested against the
        // standard library's on every input the property tests produce.
        Utf8Bytes(bytes)
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        Utf8Bytes::from(text.as_str())
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Validates the bytes as UTF-8.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        if simdutf8::basic::from_utf8(&bytes).is_err() {
            // Take the slow path only to build the detailed error.
            std::str::from_utf8(&bytes)?;
        }
        Ok(Utf8Bytes(bytes))
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_keep_the_invariant() {
        assert_eq!(Utf8Bytes::from_static("a€").as_str(), "a€");
        assert_eq!(Utf8Bytes::from(String::from("ß")).as_str(), "ß");
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static("𝄞".as_bytes()))
                .unwrap()
                .as_str(),
            "𝄞"
        );
        let err = Utf8Bytes::try_from(Bytes::from_static(b"ok\xe2\x82")).unwrap_err();
        assert_eq!(err.valid_up_to(), 2);
        assert!(Utf8Bytes::try_from(vec![0xc0, 0x80]).is_err());
        assert_eq!(Utf8Bytes::default().as_str(), "");
    }

    #[test]
    fn derefs_and_compares_as_str() {
        let text = Utf8Bytes::from("hello");
        assert!(text.starts_with("he"));
        assert_eq!(text, "hello");
        assert_eq!(format!("{text:?}"), "\"hello\"");
    }
}
