//! Markus Kuhn's "UTF-8 decoder capability and stress test"
//! (<https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt>), in the
//! groups Autobahn numbers 6.5 to 6.23, and where in a byte string the
//! first impossible byte lies.
//!
//! Validity is UTF-8 as RFC 3629 defines it, which RFC 6455 section 8.1
//! requires: no overlong forms, no surrogates (U+D800-U+DFFF), nothing
//! past U+10FFFF. Noncharacters such as U+FFFE are valid UTF-8.

/// Where a text payload stops being valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAt {
    /// This byte cannot follow what came before it: a validator must fail
    /// as soon as it sees it.
    Byte(usize),
    /// Every byte could still begin valid UTF-8, but the payload ends in
    /// the middle of a character: a validator fails at the message's end.
    End,
}

/// Where `bytes` first becomes invalid UTF-8, or `None` if it is valid.
///
/// The standard library's error names the maximal valid prefix of the
/// broken character (`valid_up_to` .. `+ error_len`); the impossible byte
/// is the one right after it, unless the character's first byte cannot
/// start any character (a continuation byte, C0, C1, F5-FF).
pub fn first_invalid(bytes: &[u8]) -> Option<FailAt> {
    let error = std::str::from_utf8(bytes).err()?;
    let start = error.valid_up_to();
    Some(match error.error_len() {
        None => FailAt::End,
        Some(len) if matches!(bytes[start], 0xc2..=0xf4) => FailAt::Byte(start + len),
        Some(_) => FailAt::Byte(start),
    })
}

/// A group of the stress test: a title and its byte strings.
pub type Group = (&'static str, Vec<Vec<u8>>);

/// The 19 groups, in Autobahn's order (6.5 to 6.23).
pub fn kuhn_groups() -> Vec<Group> {
    let kosme: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    let list = |items: &[&[u8]]| items.iter().map(|item| item.to_vec()).collect::<Vec<_>>();
    let lonely = [
        (0xc0u8, 0xdfu8),
        (0xe0, 0xef),
        (0xf0, 0xf7),
        (0xf8, 0xfb),
        (0xfc, 0xfd),
    ]
    .iter()
    .map(|(first, last)| (*first..=*last).flat_map(|byte| [byte, b' ']).collect())
    .collect();
    let missing_last: &[&[u8]] = &[
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    let mut noncharacters: Vec<Vec<u8>> = list(&[b"\xef\xbf\xbe", b"\xef\xbf\xbf"]);
    for first in 0xf0u8..=0xf4 {
        for second in [0x8fu8, 0x9f, 0xaf, 0xbf] {
            // F4 9F.. and above lie past U+10FFFF; F0 8F.. is overlong.
            if (first == 0xf4 && second != 0x8f) || (first == 0xf0 && second == 0x8f) {
                continue;
            }
            for last in [0xbeu8, 0xbf] {
                noncharacters.push(vec![first, second, 0xbf, last]);
            }
        }
    }
    vec![
        (
            "some valid UTF-8 sequences",
            list(&[
                b"hello\x24world",
                b"hello\xc2\xa2world",
                b"hello\xe2\x82\xacworld",
                b"hello\xf0\xa4\xad\xa2world",
                kosme,
            ]),
        ),
        (
            "all prefixes of a valid string with multi-byte characters",
            (1..=kosme.len()).map(|len| kosme[..len].to_vec()).collect(),
        ),
        (
            "first possible sequence of each length",
            list(&[b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
        ),
        (
            "first possible sequence of length 5 and 6 (invalid)",
            list(&[b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
        ),
        (
            "last possible sequence of each length",
            list(&[b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]),
        ),
        (
            "last possible sequence of length 4, 5 and 6 (invalid)",
            list(&[
                b"\xf7\xbf\xbf\xbf",
                b"\xfb\xbf\xbf\xbf\xbf",
                b"\xfd\xbf\xbf\xbf\xbf\xbf",
            ]),
        ),
        (
            "other boundary conditions",
            list(&[
                b"\xed\x9f\xbf",
                b"\xee\x80\x80",
                b"\xef\xbf\xbd",
                b"\xf4\x8f\xbf\xbf",
                b"\xf4\x90\x80\x80",
            ]),
        ),
        (
            "unexpected continuation bytes",
            vec![
                b"\x80".to_vec(),
                b"\xbf".to_vec(),
                b"\x80\xbf".to_vec(),
                b"\x80\xbf\x80".to_vec(),
                b"\x80\xbf\x80\xbf".to_vec(),
                b"\x80\xbf\x80\xbf\x80".to_vec(),
                b"\x80\xbf\x80\xbf\x80\xbf".to_vec(),
                (0x80u8..=0xbf).collect(),
            ],
        ),
        ("lonely start characters, each followed by a space", lonely),
        ("sequences with the last byte missing", list(missing_last)),
        (
            "concatenation of incomplete sequences",
            vec![missing_last.concat()],
        ),
        (
            "impossible bytes",
            list(&[b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
        ),
        (
            "overlong ASCII character",
            list(&[
                b"\xc0\xaf",
                b"\xe0\x80\xaf",
                b"\xf0\x80\x80\xaf",
                b"\xf8\x80\x80\x80\xaf",
                b"\xfc\x80\x80\x80\x80\xaf",
            ]),
        ),
        (
            "maximum overlong sequences",
            list(&[
                b"\xc1\xbf",
                b"\xe0\x9f\xbf",
                b"\xf0\x8f\xbf\xbf",
                b"\xf8\x87\xbf\xbf\xbf",
                b"\xfc\x83\xbf\xbf\xbf\xbf",
            ]),
        ),
        (
            "overlong NUL",
            list(&[
                b"\xc0\x80",
                b"\xe0\x80\x80",
                b"\xf0\x80\x80\x80",
                b"\xf8\x80\x80\x80\x80",
                b"\xfc\x80\x80\x80\x80\x80",
            ]),
        ),
        (
            "single UTF-16 surrogates",
            list(&[
                b"\xed\xa0\x80",
                b"\xed\xad\xbf",
                b"\xed\xae\x80",
                b"\xed\xaf\xbf",
                b"\xed\xb0\x80",
                b"\xed\xbe\x80",
                b"\xed\xbf\xbf",
            ]),
        ),
        (
            "paired UTF-16 surrogates",
            list(&[
                b"\xed\xa0\x80\xed\xb0\x80",
                b"\xed\xa0\x80\xed\xbf\xbf",
                b"\xed\xad\xbf\xed\xb0\x80",
                b"\xed\xad\xbf\xed\xbf\xbf",
                b"\xed\xae\x80\xed\xb0\x80",
                b"\xed\xae\x80\xed\xbf\xbf",
                b"\xed\xaf\xbf\xed\xb0\x80",
                b"\xed\xaf\xbf\xed\xbf\xbf",
            ]),
        ),
        ("noncharacters (valid UTF-8)", noncharacters),
        (
            "Unicode specials (valid)",
            list(&[
                b"\xef\xbf\xb9",
                b"\xef\xbf\xba",
                b"\xef\xbf\xbb",
                b"\xef\xbf\xbc",
                b"\xef\xbf\xbd",
                b"\xef\xbf\xbe",
                b"\xef\xbf\xbf",
            ]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_autobahns_shape() {
        let sizes: Vec<usize> = kuhn_groups().iter().map(|group| group.1.len()).collect();
        assert_eq!(
            sizes,
            [5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7]
        );
    }

    #[test]
    fn groups_meant_valid_are_valid() {
        for (title, items) in kuhn_groups() {
            let valid_group = title.contains("(valid") || title.starts_with("some valid");
            let boundaries = title.contains("possible sequence of each length");
            if valid_group || boundaries {
                for item in items {
                    assert_eq!(first_invalid(&item), None, "{title}: {item:02x?}");
                }
            }
        }
    }

    #[test]
    fn first_impossible_byte() {
        assert_eq!(first_invalid(b"abc"), None);
        assert_eq!(first_invalid(b"\xef\xbf\xbe"), None); // U+FFFE
        assert_eq!(first_invalid(b"\xc0"), Some(FailAt::Byte(0)));
        assert_eq!(first_invalid(b"ab\x80"), Some(FailAt::Byte(2)));
        assert_eq!(first_invalid(b"\xf4\x90\x80\x80"), Some(FailAt::Byte(1)));
        assert_eq!(first_invalid(b"\xed\xa0\x80"), Some(FailAt::Byte(1)));
        assert_eq!(first_invalid(b"\xe0\x80\xaf"), Some(FailAt::Byte(1)));
        assert_eq!(first_invalid(b"\xe1\x80\x41"), Some(FailAt::Byte(2)));
        assert_eq!(first_invalid(b"\xf0\x90\x80"), Some(FailAt::End));
        assert_eq!(first_invalid(b"\xdf"), Some(FailAt::End));
        assert_eq!(first_invalid(b"x\xf5"), Some(FailAt::Byte(1)));
        assert_eq!(first_invalid(b"\xc2\x20"), Some(FailAt::Byte(1)));
    }
}
