//! Messages encoded once for many receivers.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::extension::deflate::DeflateDirection;
use crate::extension::deflate::codec::Compressor;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use crate::message::Message;

/// A message framed once and sent to many connections, as a chat room or a
/// market-data fan-out does.
///
/// A server sends it with
/// [`Connection::send_prepared`](crate::Connection::send_prepared): the
/// frame is encoded on first use and the same bytes go to every
/// connection. Under permessage-deflate, a connection whose compressor
/// does not keep its window between messages (`server_no_context_takeover`
/// negotiated) gets a frame compressed once per window size and level and
/// shared too; a connection with context takeover must compress the
/// message against its own history, so it compresses its own copy.
///
/// Cloning is cheap (a reference count); the encodings are shared by all
/// clones, and the type is `Send + Sync`.
///
/// ```
/// use sockeye_proto::{Config, Connection, Message, PreparedMessage, Role};
///
/// let prepared = PreparedMessage::new(Message::text("market open"));
/// let mut a = Connection::new(Role::Server, Config::default());
/// let mut b = Connection::new(Role::Server, Config::default());
/// a.send_prepared(&prepared).unwrap();
/// b.send_prepared(&prepared).unwrap();
/// let (mut wire_a, mut wire_b) = (Vec::new(), Vec::new());
/// a.data_to_send(&mut wire_a);
/// b.data_to_send(&mut wire_b);
/// assert_eq!(wire_a, wire_b);
/// assert_eq!(&wire_a[2..], b"market open");
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    message: Message,
    /// The unmasked, uncompressed frame.
    plain: OnceLock<Bytes>,
    /// Compressed frames by (window bits, level); `None` where compressing
    /// does not pay and the plain frame is sent instead.
    compressed: Mutex<Vec<(CompressionKey, Option<Bytes>)>>,
}

/// What a shared compressed frame depends on: window bits and level.
type CompressionKey = (u8, u32);

impl std::fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("message", &self.inner.message)
            .finish_non_exhaustive()
    }
}

impl PreparedMessage {
    /// Prepares `message`. Nothing is encoded until the first send.
    pub fn new(message: Message) -> PreparedMessage {
        PreparedMessage {
            inner: Arc::new(Inner {
                message,
                plain: OnceLock::new(),
                compressed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    fn opcode(&self) -> OpCode {
        if self.inner.message.is_text() {
            OpCode::Text
        } else {
            OpCode::Binary
        }
    }

    /// The whole unmasked, uncompressed frame.
    pub(crate) fn plain_frame(&self) -> Bytes {
        self.inner
            .plain
            .get_or_init(|| encode(self.opcode(), 0, self.payload()))
            .clone()
    }

    /// The whole unmasked frame compressed without context takeover with
    /// `window_bits` and `level`, or `None` when compressing does not make
    /// it smaller (or failed): then the plain frame is what to send.
    pub(crate) fn compressed_frame(&self, window_bits: u8, level: u32) -> Option<Bytes> {
        let key = (window_bits, level);
        let mut cache = self
            .inner
            .compressed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, frame)) = cache.iter().find(|(k, _)| *k == key) {
            return frame.clone();
        }
        let direction = DeflateDirection {
            window_bits,
            context_takeover: false,
        };
        let payload = self.payload();
        let frame = Compressor::new(direction, level)
            .compress(payload)
            .ok()
            .filter(|compressed| compressed.len() < payload.len())
            .map(|compressed| encode(self.opcode(), 0b100, &compressed));
        cache.push((key, frame.clone()));
        frame
    }

    fn payload(&self) -> &[u8] {
        match &self.inner.message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }
}

/// One unmasked frame: header and payload in one buffer.
fn encode(opcode: OpCode, rsv: u8, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut frame = Vec::with_capacity(head_len + payload.len());
    frame.extend_from_slice(&head[..head_len]);
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}
