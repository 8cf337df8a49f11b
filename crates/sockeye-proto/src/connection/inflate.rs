//! Compressed messages arriving (RFC 7692 section 6.2): a message with
//! RSV1 set is unmasked and inflated as its bytes arrive, never buffered
//! whole, and what it inflates to is held to the message limit.

use bytes::{Buf, BytesMut};

use super::incoming::{PartialMessage, Step};
use super::{Connection, Event, RSV1};
use crate::error::ProtocolError;
use crate::extension::deflate::codec::InflateError;
use crate::frame::mask::apply_mask;
use crate::frame::{FrameHeader, OpCode};

/// An inflated-messages buffer keeps at most this much spare capacity
/// between messages.
const MAX_SPARE_INFLATE_CAPACITY: usize = 64 * 1024;

impl Connection {
    /// A compressed message's frame begins: the first one opens the
    /// message (its payload is inflated into the shared buffer), each
    /// continuation is charged the fragment overhead.
    pub(super) fn start_compressed_frame(&mut self, header: &FrameHeader, text: bool) {
        if header.opcode == OpCode::Continuation {
            if let Some(message) = &mut self.message {
                message.overhead += self.config.get_fragment_overhead();
            }
            return;
        }
        let payload = match &mut self.deflate {
            Some(deflate) => std::mem::take(&mut deflate.inflated),
            None => BytesMut::new(),
        };
        self.message = Some(Box::new(PartialMessage {
            text,
            payload,
            overhead: 0,
            compressed: true,
            wire_len: 0,
        }));
    }

    /// Unmasks and inflates what has arrived of a compressed frame, and
    /// consumes it from the input; validates inflated text as it comes.
    /// Ends the message after its last frame.
    pub(super) fn inflate_frame(&mut self) -> Result<Step, ProtocolError> {
        let max_message = self.config.get_max_message_size();
        let (Some(frame), Some(message), Some(deflate)) =
            (&mut self.frame, &mut self.message, &mut self.deflate)
        else {
            return Err(ProtocolError::ReservedBits(RSV1));
        };
        let limit = max_message.saturating_sub(message.overhead);
        let available = self.input.len().min(frame.len - frame.processed);
        let start = message.payload.len();
        if available > 0 {
            let fresh = &mut self.input[..available];
            if frame.masked() {
                apply_mask(fresh, frame.mask, frame.processed);
            }
            let inflated = deflate
                .decompressor
                .inflate(fresh, &mut message.payload, limit);
            self.input.advance(available);
            frame.processed += available;
            message.wire_len += available;
            inflated.map_err(|error| inflate_error(error, max_message))?;
        }
        let done = frame.processed == frame.len;
        let fin = frame.fin;
        if done && fin {
            deflate
                .decompressor
                .finish(&mut message.payload, limit)
                .map_err(|error| inflate_error(error, max_message))?;
        }
        if message.text {
            self.utf8
                .feed(&message.payload[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !done {
            return Ok(Step::NeedMore);
        }
        self.frame = None;
        if !fin {
            return Ok(Step::Continue);
        }
        let Some(mut message) = self.message.take() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        let payload = message.payload.split().freeze();
        if message.payload.capacity() <= MAX_SPARE_INFLATE_CAPACITY {
            deflate.inflated = message.payload;
        }
        Ok(Step::Event(Event::Message(
            self.complete(message.text, payload)?,
        )))
    }
}

/// The protocol error for a failed inflate.
fn inflate_error(error: InflateError, max: usize) -> ProtocolError {
    match error {
        InflateError::TooLarge => ProtocolError::MessageTooLarge { max },
        InflateError::Invalid => ProtocolError::InvalidCompressedData,
    }
}
