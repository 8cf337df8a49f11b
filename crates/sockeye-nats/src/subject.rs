//! Hub topics as NATS subjects, and back.
//!
//! A hub topic is any string: empty, with dots, spaces, `*` and `>`,
//! non-ASCII. A NATS subject is a list of dot-separated tokens with no
//! whitespace, in which a token `*` or `>` is a wildcard. So each topic
//! becomes exactly one literal token under the backplane's prefix:
//!
//! - every byte of the topic's UTF-8 in `A`–`Z`, `a`–`z`, `0`–`9`, `_` and
//!   `-` stands for itself;
//! - every other byte (`.`, `*`, `>`, `%`, spaces, control characters, each
//!   byte of a non-ASCII character) is written `%` and two uppercase hex
//!   digits, as in URLs: `a.b` is `a%2Eb`, `é` is `%C3%A9`;
//! - the empty topic, which would be an empty token, is the token `%`
//!   alone (which no other topic produces: every other `%` is followed by
//!   two hex digits).
//!
//! Under the default prefix the topic `chat.room 1` is the subject
//! `sockeye.chat%2Eroom%201`. Every token this produces is a valid literal
//! NATS token (never a wildcard), distinct topics give distinct tokens,
//! and [`decode_topic`] gives the topic back; it refuses anything
//! [`encode_topic`] cannot produce (lowercase hex, an escaped letter), so
//! each topic has exactly one subject.
//!
//! Other programs can publish to a topic's subscribers (with an envelope,
//! see [`sockeye::hub::backplane`]) or listen to a topic with the same
//! mapping; [`NatsBackplane::subject`](crate::NatsBackplane::subject) gives
//! a topic's full subject.

/// The longest subject the backplane uses, prefix included, in bytes.
///
/// A NATS server refuses a protocol line longer than its
/// `max_control_line` (4096 bytes by default) and closes the connection;
/// a `SUB` or `PUB` line is the subject plus at most 27 bytes. A topic
/// whose subject would be longer is carried to no other node: the hub
/// still delivers it locally, [`Backplane::publish`] refuses it (counted
/// as dropped) and it is not subscribed to on the server.
///
/// [`Backplane::publish`]: sockeye::hub::Backplane::publish
pub const MAX_SUBJECT_LEN: usize = 4000;

/// The token that stands for the empty topic.
pub const EMPTY_TOPIC_TOKEN: &str = "%";

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `byte` stands for itself in a token.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The bytes [`encode_topic`] would write for `topic`.
fn encoded_len(topic: &str) -> usize {
    if topic.is_empty() {
        return EMPTY_TOPIC_TOKEN.len();
    }
    topic
        .bytes()
        .map(|byte| if is_unreserved(byte) { 1 } else { 3 })
        .sum()
}

/// The subject token for a hub topic; see the [module docs](self).
pub fn encode_topic(topic: &str) -> String {
    let mut token = String::with_capacity(encoded_len(topic));
    push_token(&mut token, topic);
    token
}

fn push_token(out: &mut String, topic: &str) {
    if topic.is_empty() {
        out.push_str(EMPTY_TOPIC_TOKEN);
        return;
    }
    for byte in topic.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// The hub topic a subject token stands for, or `None` if [`encode_topic`]
/// produces no such token (not escaped as it would be, or not UTF-8).
pub fn decode_topic(token: &str) -> Option<String> {
    if token == EMPTY_TOPIC_TOKEN {
        return Some(String::new());
    }
    if token.is_empty() {
        return None;
    }
    let bytes = token.as_bytes();
    let mut topic = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if is_unreserved(byte) {
            topic.push(byte);
            at += 1;
        } else if byte == b'%' {
            let high = hex_value(*bytes.get(at + 1)?)?;
            let low = hex_value(*bytes.get(at + 2)?)?;
            let decoded = high << 4 | low;
            if is_unreserved(decoded) {
                return None;
            }
            topic.push(decoded);
            at += 3;
        } else {
            return None;
        }
    }
    String::from_utf8(topic).ok()
}

/// An uppercase hex digit's value.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Why a subject prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidPrefix;

/// The literal tokens every subject starts with, each followed by its dot
/// (`sockeye.`), or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubjectPrefix(String);

impl SubjectPrefix {
    /// `prefix` with or without its final dot (`sockeye`, `app.ws.`); the
    /// empty string puts topics at the root. Each token must be printable
    /// ASCII without `*` or `>` (no wildcard, no whitespace).
    pub(crate) fn parse(prefix: &str) -> Result<SubjectPrefix, InvalidPrefix> {
        let trimmed = prefix.strip_suffix('.').unwrap_or(prefix);
        if trimmed.is_empty() {
            return if prefix.is_empty() {
                Ok(SubjectPrefix(String::new()))
            } else {
                Err(InvalidPrefix)
            };
        }
        let valid_token = |token: &str| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b'*' && byte != b'>')
        };
        if !trimmed.split('.').all(valid_token) {
            return Err(InvalidPrefix);
        }
        // Leave room for at least one escaped byte.
        if trimmed.len() + 1 + 3 > MAX_SUBJECT_LEN {
            return Err(InvalidPrefix);
        }
        Ok(SubjectPrefix(format!("{trimmed}.")))
    }

    /// The prefix as it starts subjects (with its final dot, if any).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject for `topic`, or `None` if it would be longer than
    /// [`MAX_SUBJECT_LEN`].
    pub(crate) fn subject(&self, topic: &str) -> Option<String> {
        let len = self.0.len() + encoded_len(topic);
        if len > MAX_SUBJECT_LEN {
            return None;
        }
        let mut subject = String::with_capacity(len);
        subject.push_str(&self.0);
        push_token(&mut subject, topic);
        Some(subject)
    }

    /// The topic `subject` stands for, or `None` if it is not one of ours.
    pub(crate) fn topic(&self, subject: &str) -> Option<String> {
        decode_topic(subject.strip_prefix(self.0.as_str())?)
    }
}

impl std::fmt::Display for SubjectPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid literal NATS token: non-empty, no whitespace, no dot, not a
    /// wildcard, and (stricter than NATS) only the characters we write.
    fn is_literal_token(token: &str) -> bool {
        !token.is_empty()
            && token != "*"
            && token != ">"
            && token
                .bytes()
                .all(|byte| is_unreserved(byte) || byte == b'%')
    }

    #[test]
    fn examples() {
        assert_eq!(encode_topic(""), "%");
        assert_eq!(encode_topic("lobby"), "lobby");
        assert_eq!(encode_topic("room_1-a"), "room_1-a");
        assert_eq!(encode_topic("a.b"), "a%2Eb");
        assert_eq!(encode_topic("a*"), "a%2A");
        assert_eq!(encode_topic(">"), "%3E");
        assert_eq!(encode_topic("chat room"), "chat%20room");
        assert_eq!(encode_topic("é"), "%C3%A9");
        assert_eq!(encode_topic("%"), "%25");
        assert_eq!(encode_topic("\0"), "%00");
    }

    #[test]
    fn round_trip_and_distinct() {
        let mut topics: Vec<String> = vec![
            String::new(),
            "%".into(),
            "%25".into(),
            "a.b".into(),
            "a".into(),
            "a*".into(),
            "a>".into(),
            "*".into(),
            ">".into(),
            ".".into(),
            "..".into(),
            " ".into(),
            "\t\r\n".into(),
            "héllo wörld".into(),
            "日本語".into(),
            "🦀".into(),
            "a%2Eb".into(),
            "\u{7f}".into(),
        ];
        for byte in 0u8..128 {
            topics.push(char::from(byte).to_string());
        }
        topics.sort();
        topics.dedup();
        let mut tokens = std::collections::HashSet::new();
        for topic in &topics {
            let token = encode_topic(topic);
            assert!(is_literal_token(&token), "{topic:?} -> {token:?}");
            assert_eq!(decode_topic(&token).as_deref(), Some(topic.as_str()));
            assert!(tokens.insert(token), "{topic:?} collides");
        }
    }

    #[test]
    fn decode_refuses_what_encode_never_writes() {
        for token in [
            "", "%%", "%2", "%2e", "%41", "%5F", "%2D", "%G0", "a b", "a.b", "*", ">", "a*", "é",
            "%FF", "%C3", "%C3%", "a%",
        ] {
            assert_eq!(decode_topic(token), None, "{token:?}");
        }
    }

    #[test]
    fn prefixes() {
        let default = SubjectPrefix::parse("sockeye").unwrap();
        assert_eq!(default, SubjectPrefix::parse("sockeye.").unwrap());
        assert_eq!(default.subject("a.b").unwrap(), "sockeye.a%2Eb");
        assert_eq!(default.subject("").unwrap(), "sockeye.%");
        assert_eq!(default.topic("sockeye.a%2Eb").as_deref(), Some("a.b"));
        assert_eq!(default.topic("sockeye.a.b"), None);
        assert_eq!(default.topic("other.a"), None);

        let root = SubjectPrefix::parse("").unwrap();
        assert_eq!(root.subject("x y").unwrap(), "x%20y");
        assert_eq!(root.topic("x%20y").as_deref(), Some("x y"));

        let deep = SubjectPrefix::parse("app.prod.ws").unwrap();
        assert_eq!(deep.subject("t").unwrap(), "app.prod.ws.t");

        for bad in [
            ".", "a..b", ".a", "a.*", "a.>", "a b", "a\tb", "é", "a.b*c", "a>",
        ] {
            assert_eq!(SubjectPrefix::parse(bad), Err(InvalidPrefix), "{bad:?}");
        }
    }

    #[test]
    fn long_topics_have_no_subject() {
        let prefix = SubjectPrefix::parse("sockeye").unwrap();
        let room = MAX_SUBJECT_LEN - "sockeye.".len();
        assert_eq!(
            prefix.subject(&"a".repeat(room)).unwrap().len(),
            MAX_SUBJECT_LEN
        );
        assert_eq!(prefix.subject(&"a".repeat(room + 1)), None);
        // Three bytes per escaped byte.
        assert!(prefix.subject(&".".repeat(room / 3)).is_some());
        assert_eq!(prefix.subject(&".".repeat(room / 3 + 1)), None);
    }
}
