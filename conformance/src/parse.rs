//! Strict parsing of what the testee sends (RFC 6455 sections 5 and 7).
//!
//! The runner holds the testee to everything a sender MUST do, not only
//! to what a lenient receiver would tolerate: no RSV bits without an
//! extension (5.2), defined opcodes only (5.2), masking by the client and
//! only by the client (5.1, 5.3) with a fresh key per frame (5.3), the
//! minimal length encoding (5.2), unfragmented control frames of at most
//! 125 bytes (5.5), fragments in order (5.4), valid UTF-8 text (5.6, 8.1),
//! valid Close payloads (5.5.1, 7.4) and nothing after a Close (5.5.1).

use crate::wire::{apply_mask, opcode};

/// What the testee sent, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A data message.
    Message {
        /// Text (opcode 1) or binary (opcode 2).
        text: bool,
        /// The whole payload.
        payload: Vec<u8>,
        /// The payload length of each of its frames.
        frame_sizes: Vec<usize>,
    },
    /// A Ping.
    Ping(Vec<u8>),
    /// A Pong.
    Pong(Vec<u8>),
    /// A Close frame: its code and reason, or `None` when empty.
    Close(Option<(u16, Vec<u8>)>),
}

/// A reply and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The reply.
    pub reply: Reply,
    /// Index of the chunk after which it had arrived (the number of chunks
    /// for output that came after the peer's EOF).
    pub chunk: usize,
}

/// Whether a close code may be sent on the wire (RFC 6455 section 7.4.1
/// and the IANA registry of section 11.7): 1000-1003, 1007-1014 and
/// 3000-4999.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// An incremental, strict parser of the testee's output stream.
#[derive(Debug)]
pub struct OutputParser {
    testee_is_client: bool,
    buffer: Vec<u8>,
    /// A data message in progress: text?, payload, frame sizes.
    message: Option<(bool, Vec<u8>, Vec<usize>)>,
    last_key: Option<[u8; 4]>,
    close_seen: bool,
    broken: bool,
    frames: usize,
    /// Everything the testee sent, in order.
    pub replies: Vec<Observed>,
    /// Every rule the testee broke, in order.
    pub violations: Vec<String>,
}

impl OutputParser {
    /// A parser for the output of a client (`true`) or server testee.
    pub fn new(testee_is_client: bool) -> OutputParser {
        OutputParser {
            testee_is_client,
            buffer: Vec::new(),
            message: None,
            last_key: None,
            close_seen: false,
            broken: false,
            frames: 0,
            replies: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Takes the bytes that arrived after chunk `chunk` and parses every
    /// complete frame.
    pub fn feed(&mut self, bytes: &[u8], chunk: usize) {
        if self.broken {
            return;
        }
        self.buffer.extend_from_slice(bytes);
        let mut consumed = 0;
        while let Some(used) = self.parse_frame(consumed, chunk) {
            consumed += used;
            if self.broken {
                break;
            }
        }
        self.buffer.drain(..consumed);
    }

    /// Ends the stream: bytes of an incomplete frame or an unfinished
    /// message are violations.
    pub fn finish(&mut self, transport_closed: bool) {
        if self.broken {
            return;
        }
        if !self.buffer.is_empty() {
            let when = if transport_closed {
                "the transport closed"
            } else {
                "the case ended"
            };
            self.violation(format!(
                "{} bytes of an incomplete frame were left when {when}",
                self.buffer.len()
            ));
        }
        if transport_closed && self.message.is_some() {
            self.violation("the transport closed in the middle of a fragmented message".into());
        }
    }

    fn violation(&mut self, text: String) {
        self.violations.push(text);
    }

    /// Parses one frame starting at `at`; returns how many bytes it used,
    /// or `None` if it is not complete yet.
    fn parse_frame(&mut self, at: usize, chunk: usize) -> Option<usize> {
        let input = &self.buffer[at..];
        if input.len() < 2 {
            return None;
        }
        let (first, second) = (input[0], input[1]);
        let masked = second & 0x80 != 0;
        let (len, mut header_len) = match second & 0x7f {
            126 => {
                let bytes = input.get(2..4)?;
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
            }
            127 => {
                let bytes: [u8; 8] = input.get(2..10)?.try_into().ok()?;
                (u64::from_be_bytes(bytes), 10)
            }
            short => (u64::from(short), 2),
        };
        if masked {
            header_len += 4;
        }
        let index = self.frames;
        let fin = first & 0x80 != 0;
        let rsv = (first >> 4) & 0x7;
        let op = first & 0xf;
        let what = format!("frame {} ({})", index + 1, opcode::name(op));
        if len >> 63 != 0 {
            self.violation(format!(
                "{what}: 64-bit length with its most significant bit set (5.2)"
            ));
            self.broken = true;
            return Some(0);
        }
        let Ok(len) = usize::try_from(len) else {
            self.violation(format!("{what}: absurd length {len}"));
            self.broken = true;
            return Some(0);
        };
        if input.len() < header_len + len {
            return None;
        }
        self.frames += 1;
        let mut payload = input[header_len..header_len + len].to_vec();
        let key: Option<[u8; 4]> = masked
            .then(|| input[header_len - 4..header_len].try_into().ok())
            .flatten();
        let minimal = match second & 0x7f {
            126 => len >= 126,
            127 => len > 0xffff,
            _ => true,
        };
        if !minimal {
            self.violation(format!(
                "{what}: {len}-byte length not in its minimal encoding (5.2)"
            ));
        }
        if let Some(key) = key {
            apply_mask(&mut payload, key);
            if self.last_key == Some(key) {
                self.violation(format!(
                    "{what}: masking key {key:02x?} repeated from the previous frame (5.3)"
                ));
            }
            self.last_key = Some(key);
        }
        if masked != self.testee_is_client {
            self.violation(if self.testee_is_client {
                format!("{what}: a client must mask every frame it sends (5.3)")
            } else {
                format!("{what}: a server must not mask the frames it sends (5.1)")
            });
        }
        if rsv != 0 {
            self.violation(format!(
                "{what}: RSV bits {rsv:03b} set without an extension (5.2)"
            ));
        }
        if self.close_seen {
            self.violation(format!("{what}: sent after a Close frame (5.5.1)"));
        }
        self.frame(&what, fin, op, payload, chunk);
        Some(header_len + len)
    }

    fn frame(&mut self, what: &str, fin: bool, op: u8, payload: Vec<u8>, chunk: usize) {
        if !opcode::is_defined(op) {
            self.violation(format!("{what}: reserved opcode {op:#x} (5.2)"));
            return;
        }
        if opcode::is_control(op) {
            if !fin {
                self.violation(format!("{what}: fragmented control frame (5.5)"));
            }
            if payload.len() > 125 {
                self.violation(format!(
                    "{what}: control frame of {} bytes, over 125 (5.5)",
                    payload.len()
                ));
            }
            let reply = match op {
                opcode::PING => Reply::Ping(payload),
                opcode::PONG => Reply::Pong(payload),
                _ => {
                    self.close_seen = true;
                    Reply::Close(self.close_payload(what, payload))
                }
            };
            self.replies.push(Observed { reply, chunk });
            return;
        }
        let len = payload.len();
        match (op, self.message.take()) {
            (opcode::CONTINUATION, None) => {
                self.violation(format!(
                    "{what}: continuation with no message started (5.4)"
                ));
                return;
            }
            (opcode::CONTINUATION, Some((text, mut data, mut sizes))) => {
                data.extend_from_slice(&payload);
                sizes.push(len);
                self.message = Some((text, data, sizes));
            }
            (_, Some(_)) => {
                self.violation(format!(
                    "{what}: new data frame inside an unfinished message (5.4)"
                ));
                self.message = Some((op == opcode::TEXT, payload, vec![len]));
            }
            (_, None) => self.message = Some((op == opcode::TEXT, payload, vec![len])),
        }
        if fin {
            let (text, payload, frame_sizes) = self.message.take().expect("set just above");
            if text && std::str::from_utf8(&payload).is_err() {
                self.violation(format!("{what}: text message is not valid UTF-8 (8.1)"));
            }
            self.replies.push(Observed {
                reply: Reply::Message {
                    text,
                    payload,
                    frame_sizes,
                },
                chunk,
            });
        }
    }

    fn close_payload(&mut self, what: &str, payload: Vec<u8>) -> Option<(u16, Vec<u8>)> {
        match payload.len() {
            0 => None,
            1 => {
                self.violation(format!("{what}: one-byte Close payload (5.5.1)"));
                None
            }
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_sendable_close_code(code) {
                    self.violation(format!("{what}: close code {code} may not be sent (7.4)"));
                }
                if std::str::from_utf8(&payload[2..]).is_err() {
                    self.violation(format!("{what}: close reason is not valid UTF-8 (5.5.1)"));
                }
                Some((code, payload[2..].to_vec()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, Length, Rng, encode};

    fn parse(frames: &[Frame], from_client: bool) -> OutputParser {
        let encoded = encode(frames, from_client, &mut Rng::new(5));
        let mut parser = OutputParser::new(from_client);
        // Byte by byte, to exercise incomplete frames.
        for byte in &encoded.bytes {
            parser.feed(std::slice::from_ref(byte), 0);
        }
        parser.finish(true);
        parser
    }

    #[test]
    fn valid_output_has_no_violations() {
        let frames = [
            Frame::text("he").fin(false),
            Frame::ping("p"),
            Frame::continuation("llo"),
            Frame::binary(vec![0u8; 70000]),
            Frame::close(1000, b"bye"),
        ];
        for from_client in [false, true] {
            let parser = parse(&frames, from_client);
            assert!(parser.violations.is_empty(), "{:?}", parser.violations);
            let replies: Vec<_> = parser.replies.iter().map(|o| &o.reply).collect();
            assert_eq!(replies[0], &Reply::Ping(b"p".to_vec()));
            assert_eq!(
                replies[1],
                &Reply::Message {
                    text: true,
                    payload: b"hello".to_vec(),
                    frame_sizes: vec![2, 3]
                }
            );
            assert_eq!(replies[3], &Reply::Close(Some((1000, b"bye".to_vec()))));
        }
    }

    #[test]
    fn each_sender_rule_is_enforced() {
        let cases: Vec<(Vec<Frame>, &str)> = vec![
            (vec![Frame::text("x").rsv(4)], "RSV"),
            (vec![Frame::new(3, "")], "reserved opcode"),
            (vec![Frame::ping("").fin(false)], "fragmented control"),
            (vec![Frame::ping(vec![0; 126])], "over 125"),
            (vec![Frame::continuation("x")], "no message started"),
            (
                vec![Frame::text("a").fin(false), Frame::text("b")],
                "unfinished",
            ),
            (vec![Frame::text(&b"\xff"[..])], "UTF-8"),
            (vec![Frame::close_raw(&b"\x03"[..])], "one-byte"),
            (vec![Frame::close(1005, b"")], "may not be sent"),
            (vec![Frame::close(1000, b"\xc0")], "reason"),
            (
                vec![Frame::close(1000, b""), Frame::ping("")],
                "after a Close",
            ),
            (vec![Frame::text("x").length(Length::Extended16)], "minimal"),
            (vec![Frame::text("x").fin(false)], "fragmented message"),
        ];
        for (frames, expected) in cases {
            let parser = parse(&frames, false);
            assert!(
                parser.violations.iter().any(|v| v.contains(expected)),
                "{expected}: {:?}",
                parser.violations
            );
        }
    }

    #[test]
    fn masking_follows_the_role() {
        let parser = parse(&[Frame::text("x")], true);
        assert!(parser.violations.is_empty());
        let wrong = encode(&[Frame::text("x")], false, &mut Rng::new(1));
        let mut parser = OutputParser::new(true);
        parser.feed(&wrong.bytes, 0);
        assert!(parser.violations[0].contains("must mask"));
        let mut parser = OutputParser::new(false);
        let masked = encode(&[Frame::text("x")], true, &mut Rng::new(1));
        parser.feed(&masked.bytes, 0);
        assert!(parser.violations[0].contains("must not mask"));
    }

    #[test]
    fn a_repeated_masking_key_is_caught() {
        let mut bytes = vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1];
        bytes.extend_from_slice(&[0x81, 0x81, 1, 2, 3, 4, b'b' ^ 1]);
        let mut parser = OutputParser::new(true);
        parser.feed(&bytes, 0);
        assert!(parser.violations[0].contains("repeated"));
    }
}
