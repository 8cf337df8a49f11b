//! A conformance case: the frames the peer sends, how the stream is cut
//! into transport reads, and exactly what the testee must answer.
//!
//! Positions in the stream are symbolic ([`Pos`]), because the same case
//! runs against a server (the peer masks, headers are 4 bytes longer) and
//! a client; the runner resolves them once the frames are encoded.

use bytes::Bytes;

use crate::target::Settings;
use crate::wire::{Frame, opcode};

/// A byte of the encoded stream, named by frame index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    /// Byte `k` of frame `i`'s header.
    Header(usize, usize),
    /// The last byte of frame `i`'s length field: where its payload length
    /// is known.
    LengthEnd(usize),
    /// The last byte of frame `i`'s header (masking key included).
    HeaderEnd(usize),
    /// Byte `k` of frame `i`'s payload.
    Payload(usize, usize),
    /// The last byte of frame `i`.
    FrameEnd(usize),
}

/// How the peer cuts its stream into transport reads ("chunks"). After
/// each chunk the runner collects the testee's output and checks whether
/// it has closed; once it has, no further chunk is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunking {
    /// Everything in one read.
    Whole,
    /// One read per frame.
    PerFrame,
    /// Reads of this many bytes (the last may be shorter).
    Size(usize),
    /// Cut just before each of these positions.
    SplitBefore(Vec<Pos>),
}

/// What a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A Pong.
    Pong,
}

/// A reply the testee must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// A message or a Pong.
    pub kind: Kind,
    /// Its exact payload.
    pub payload: Bytes,
    /// It must have arrived by the end of the chunk holding this position
    /// (the end of what it answers): no waiting for more input.
    pub by: Pos,
}

/// How the case ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The testee fails the connection (RFC 6455 section 7.1.7): it sends
    /// a Close with `code` and closes the transport, right after the chunk
    /// that lets it see the violation: no sooner than the chunk holding
    /// `earliest`, no later than the chunk holding `latest`.
    Fails {
        /// The close code it must send.
        code: u16,
        /// The first byte from which the violation can be seen.
        earliest: Pos,
        /// The byte by which it must have been seen.
        latest: Pos,
    },
    /// The peer's Close (frame `close_frame`) is answered with `code`
    /// (`None`: an empty Close) by the end of that frame's chunk; then a
    /// server closes the transport at once, while a client waits for the
    /// peer to close it (section 7.1.1).
    Answers {
        /// The code of the answer, or `None` for an empty Close.
        code: Option<u16>,
        /// Index of the peer's Close frame.
        close_frame: usize,
    },
    /// After the last chunk the peer ends the transport without a Close:
    /// the testee sends no Close (1006 never goes on the wire, section
    /// 7.4.1) and closes the transport once it reads the EOF, not before.
    Abandoned,
}

/// One conformance case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Autobahn-style id, `6.4.1`; its first number is the section.
    pub id: String,
    /// What it sends, in a few words.
    pub description: String,
    /// The testee's settings.
    pub settings: Settings,
    /// What the peer sends, in order.
    pub frames: Vec<Frame>,
    /// How it is cut into reads.
    pub chunking: Chunking,
    /// If set, the peer sends the stream only up to this byte (excluded).
    pub truncated_before: Option<Pos>,
    /// The messages and Pongs the testee must send, in order per kind.
    pub replies: Vec<Expected>,
    /// Pairs `(i, j)` of indices into `replies`: reply `i` must be sent
    /// before reply `j`.
    pub ahead: Vec<(usize, usize)>,
    /// How it must end.
    pub ending: Option<Ending>,
}

impl Case {
    /// An empty case; add frames and expectations with the builders.
    pub fn new(id: impl Into<String>, description: impl Into<String>) -> Case {
        Case {
            id: id.into(),
            description: description.into(),
            settings: Settings::default(),
            frames: Vec::new(),
            chunking: Chunking::Whole,
            truncated_before: None,
            replies: Vec::new(),
            ahead: Vec::new(),
            ending: None,
        }
    }

    /// The section number (the id's first component).
    pub fn section(&self) -> u32 {
        self.id
            .split('.')
            .next()
            .and_then(|section| section.parse().ok())
            .unwrap_or(0)
    }

    /// Index of the last frame added.
    pub fn last(&self) -> usize {
        self.frames.len() - 1
    }

    /// Adds a frame.
    pub fn frame(mut self, frame: Frame) -> Case {
        self.frames.push(frame);
        self
    }

    /// Adds frames.
    pub fn frames(mut self, frames: impl IntoIterator<Item = Frame>) -> Case {
        self.frames.extend(frames);
        self
    }

    /// Sets the chunking.
    pub fn chunking(mut self, chunking: Chunking) -> Case {
        self.chunking = chunking;
        self
    }

    /// Sends the stream only up to `pos` (excluded), as a peer that dies
    /// in the middle of a frame.
    pub fn truncated_before(mut self, pos: Pos) -> Case {
        self.truncated_before = Some(pos);
        self
    }

    /// Sets the testee's settings.
    pub fn settings(mut self, settings: Settings) -> Case {
        self.settings = settings;
        self
    }

    /// Expects the echo of the data message whose final frame is frame
    /// `last` (its payload gathered from its data frames, skipping
    /// interleaved control frames), by the end of that frame.
    pub fn echo(mut self, last: usize) -> Case {
        let mut parts = Vec::new();
        let mut index = last;
        let kind = loop {
            let frame = &self.frames[index];
            if !frame.is_control() {
                parts.push(frame.payload.clone());
                match frame.opcode {
                    opcode::TEXT => break Kind::Text,
                    opcode::BINARY => break Kind::Binary,
                    _ => {}
                }
            }
            index = index
                .checked_sub(1)
                .expect("a message's frames start with text or binary");
        };
        let payload = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            let mut payload = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
            for part in parts.iter().rev() {
                payload.extend_from_slice(part);
            }
            Bytes::from(payload)
        };
        self.replies.push(Expected {
            kind,
            payload,
            by: Pos::FrameEnd(last),
        });
        self
    }

    /// Adds a final frame and expects its echo.
    pub fn echoed(self, frame: Frame) -> Case {
        let case = self.frame(frame);
        let last = case.last();
        case.echo(last)
    }

    /// Expects a Pong answering the Ping in frame `ping`, by its end.
    pub fn pong(mut self, ping: usize) -> Case {
        let payload = self.frames[ping].payload.clone();
        self.replies.push(Expected {
            kind: Kind::Pong,
            payload,
            by: Pos::FrameEnd(ping),
        });
        self
    }

    /// Adds a Ping and expects its Pong.
    pub fn ponged(self, ping: Frame) -> Case {
        let case = self.frame(ping);
        let last = case.last();
        case.pong(last)
    }

    /// Expects reply `first` (an index into the expected replies, in the
    /// order they were added) to be sent before reply `second`.
    pub fn ahead(mut self, first: usize, second: usize) -> Case {
        self.ahead.push((first, second));
        self
    }

    /// Adds the peer's Close frame and expects it to be answered with
    /// its own code (or an empty Close for an empty one).
    pub fn peer_closes(mut self, close: Frame) -> Case {
        let code = (close.payload.len() >= 2)
            .then(|| u16::from_be_bytes([close.payload[0], close.payload[1]]));
        self.frames.push(close);
        self.ending = Some(Ending::Answers {
            code,
            close_frame: self.frames.len() - 1,
        });
        self
    }

    /// Ends with the peer's Close 1000, answered with 1000.
    pub fn close_normally(self) -> Case {
        self.peer_closes(Frame::close(1000, b""))
    }

    /// Expects the peer's Close in frame `close_frame` to be answered with
    /// `code` (`None`: empty).
    pub fn answers(mut self, code: Option<u16>, close_frame: usize) -> Case {
        self.ending = Some(Ending::Answers { code, close_frame });
        self
    }

    /// Ends with the peer closing the transport without a Close frame.
    pub fn abandoned(mut self) -> Case {
        self.ending = Some(Ending::Abandoned);
        self
    }

    /// Expects the testee to fail with `code` between `earliest` and
    /// `latest`.
    pub fn fails(mut self, code: u16, earliest: Pos, latest: Pos) -> Case {
        self.ending = Some(Ending::Fails {
            code,
            earliest,
            latest,
        });
        self
    }

    /// Expects the testee to fail with `code` because of frame `frame`'s
    /// header: once its first byte arrived and before its payload.
    pub fn fails_at_header(self, code: u16, frame: usize) -> Case {
        self.fails(code, Pos::Header(frame, 0), Pos::HeaderEnd(frame))
    }

    /// Expects a 1002 because of the last frame's header.
    pub fn protocol_error_at_last(self) -> Case {
        let last = self.last();
        self.fails_at_header(1002, last)
    }
}
