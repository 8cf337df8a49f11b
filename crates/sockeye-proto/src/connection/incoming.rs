//! The receiving side of a connection: bytes in, events out (RFC 6455
//! sections 5.2 to 5.5).
//!
//! Input is parsed lazily, one frame per step of [`Connection::next_event`],
//! so events come out in exactly the order their frames arrived, and
//! everything before a violation is delivered before the violation closes
//! the connection. Payloads are unmasked in place and text is validated as
//! the bytes arrive, even before a frame is complete, so invalid UTF-8 fails
//! the connection at the first impossible byte.

use bytes::{Buf, Bytes, BytesMut};

use super::{Connection, Event, Initiator, RSV1, State};
use crate::close::CloseFrame;
use crate::error::{Error, ProtocolError};
use crate::frame::mask::apply_mask;
use crate::frame::{FrameHeader, OpCode};
use crate::message::{Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// Room reserved past the end of a frame whose size is known, so that a
/// front-end reading into the buffer's spare room
/// ([`Connection::receive_buffer_with_room`]) reads what follows the frame
/// closely (a Ping, the next small message) together with its last bytes,
/// and so sees it before it would flush its replies.
const ROOM_AFTER_FRAME: usize = 4096;

/// A frame whose header has been read and whose payload is arriving: what
/// processing the payload needs, not the whole header, as every connection
/// carries one, idle ones included (issue 18 budgets those at 0.3 KiB).
#[derive(Debug)]
pub(super) struct IncomingFrame {
    /// The payload length, checked against the limits.
    pub(super) len: usize,
    /// Payload bytes already unmasked (and validated, for text).
    pub(super) processed: usize,
    /// The masking key; all zeros for an unmasked frame, since unmasking
    /// with that key leaves the bytes as they are.
    pub(super) mask: [u8; 4],
    pub(super) opcode: OpCode,
    pub(super) fin: bool,
    pub(super) payload: Payload,
}

/// What is done with a frame's payload as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    /// Kept in the input buffer as it is.
    Plain,
    /// Kept, and validated as UTF-8: it belongs to a text message.
    Text,
    /// Inflated as it arrives, and consumed from the input buffer as it
    /// goes: it belongs to a compressed message.
    Compressed,
}

impl IncomingFrame {
    /// Payload bytes still to come into the input buffer.
    fn missing(&self, input: usize) -> usize {
        let held = if self.payload == Payload::Compressed {
            self.processed
        } else {
            0
        };
        self.len.saturating_sub(held + input)
    }

    /// Whether the frame was masked with a key that changes its bytes.
    pub(super) fn masked(&self) -> bool {
        self.mask != [0; 4]
    }
}

/// A fragmented message being reassembled.
#[derive(Debug)]
pub(super) struct PartialMessage {
    pub(super) text: bool,
    /// The payload so far; inflated, for a compressed message.
    pub(super) payload: BytesMut,
    /// The per-fragment overhead charged so far. With the payload, what
    /// counts against `max_message_size`.
    pub(super) overhead: usize,
    /// The message has RSV1 set (permessage-deflate).
    pub(super) compressed: bool,
    /// Payload bytes of its frames so far, as they came on the wire.
    pub(super) wire_len: usize,
}

impl PartialMessage {
    fn cost(&self) -> usize {
        self.payload.len().saturating_add(self.overhead)
    }
}

/// What one step of parsing produced.
pub(super) enum Step {
    Event(Event),
    Continue,
    NeedMore,
}

impl Connection {
    /// Hands the engine bytes read from the transport. They are parsed by
    /// [`Connection::next_event`]. Once the connection is closed, input is
    /// dropped (RFC 6455 section 5.5.1: nothing after a Close counts).
    pub fn receive_data(&mut self, data: &[u8]) {
        if self.state != State::Closed {
            // A large frame's payload gets its whole room at once, rather
            // than a buffer copied each time it grows.
            if self.input.capacity() - self.input.len() < data.len() {
                let frame = self
                    .frame_bytes_missing()
                    .max(self.room_for_new_frame(data));
                let room = if frame > 0 {
                    frame + ROOM_AFTER_FRAME
                } else {
                    0
                };
                self.input.reserve(data.len().max(room));
            }
            self.input.extend_from_slice(data);
            if !data.is_empty() {
                self.timers.input_arrived();
            }
        }
    }

    /// Like [`Connection::receive_data`], for bytes the front-end read into
    /// a buffer it can give away: when the engine holds no input, `data`
    /// becomes its input buffer without a copy, and the buffer's spare room
    /// takes what follows (a front-end reading into one buffer shared by
    /// many connections hands over the buffer after a large read, and
    /// copies small ones with `receive_data`). Delivered messages may keep
    /// `data`'s allocation alive, as they do the engine's own buffer.
    pub fn receive_bytes(&mut self, data: BytesMut) {
        if self.input.is_empty() && !data.is_empty() && self.state != State::Closed {
            self.input = data;
            self.timers.input_arrived();
        } else {
            self.receive_data(&data);
        }
    }

    /// With nothing buffered, the size of the frame that `data` starts, if
    /// its header is complete and acceptable and its payload is kept
    /// whole (a compressed one is inflated as it arrives): room for it is
    /// then reserved at once, not grown as it arrives. 0 otherwise.
    fn room_for_new_frame(&self, data: &[u8]) -> usize {
        if self.frame.is_some() || !self.input.is_empty() {
            return 0;
        }
        match FrameHeader::parse(data) {
            Ok(Some((header, header_len)))
                if (header_len as u64).saturating_add(header.payload_len) > data.len() as u64 =>
            {
                self.room_for_large_frame(&header, header_len)
            }
            _ => 0,
        }
    }

    /// [`Connection::room_for_new_frame`] for a frame larger than the read
    /// that brought its header (kept apart so that the hot path of small
    /// frames, which arrive whole, keeps its header check inlined).
    #[cold]
    #[inline(never)]
    fn room_for_large_frame(&self, header: &FrameHeader, header_len: usize) -> usize {
        match self.check_header(header) {
            Ok((len, _, false)) => header_len + len,
            _ => 0,
        }
    }

    /// The engine's input buffer, for a front-end that reads straight into
    /// it and so saves a copy: append bytes (e.g. with
    /// `tokio::io::AsyncReadExt::read_buf`), then call
    /// [`Connection::next_event`]. Never remove bytes from it.
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// [`Connection::receive_buffer`] with spare room for a read straight
    /// into it: for the whole rest of the frame being received (reserved
    /// at once, so a large payload lands in one allocation that never
    /// grows, with room past its end for what follows it closely), or for
    /// `read` bytes when no frame's size is known.
    pub fn receive_buffer_with_room(&mut self, read: usize) -> &mut BytesMut {
        let missing = self.frame_bytes_missing();
        let spare = self.input.capacity() - self.input.len();
        if spare < missing || (missing == 0 && spare < read / 2) {
            self.input.reserve(read.max(missing + ROOM_AFTER_FRAME));
        }
        &mut self.input
    }

    /// How many more bytes the frame being received needs before it is
    /// complete, once its header has been parsed (0 otherwise, and for
    /// compressed frames, which are inflated as they arrive). A front-end
    /// that reads into [`Connection::receive_buffer`] can reserve this much
    /// at once, so that a large payload is read into one allocation instead
    /// of a buffer that grows (and is copied) as it arrives. The amount is
    /// bounded by [`Config::max_frame_size`].
    ///
    /// [`Config::max_frame_size`]: crate::Config::max_frame_size
    pub fn frame_bytes_missing(&self) -> usize {
        match &self.frame {
            Some(frame) if frame.payload != Payload::Compressed => frame.missing(self.input.len()),
            _ => 0,
        }
    }

    /// Tells the engine the transport will deliver no more bytes. If the
    /// closing handshake was not complete, the connection ends abnormally
    /// (1006) once the bytes before the end have been parsed.
    pub fn receive_eof(&mut self) {
        self.eof = true;
        if self.state == State::Closed {
            // A client that completed the closing handshake was waiting for
            // exactly this.
            self.close_transport = true;
        }
    }

    /// Whether the front-end should read from the transport: false once the
    /// transport has ended or is to be closed, and while more Pongs wait
    /// than [`Config::max_queued_control_bytes`] allows (a peer that pings
    /// without reading gets TCP backpressure instead of our memory).
    ///
    /// [`Config::max_queued_control_bytes`]: crate::Config::max_queued_control_bytes
    pub fn wants_read(&self) -> bool {
        !self.eof && !self.close_transport && !self.control_backlogged()
    }

    fn control_backlogged(&self) -> bool {
        self.outgoing.control_len() > self.config.get_max_queued_control_bytes()
    }

    /// Whether the bytes already received hold at least one more frame
    /// that [`Connection::next_event`] has not parsed (or a violation it
    /// will report). Front-ends use it to cork: replies to a burst of
    /// messages wait until the burst is processed, then leave in one write.
    pub fn has_buffered_frame(&self) -> bool {
        if self.state == State::Closed {
            return !self.closed_reported;
        }
        if let Some(frame) = &self.frame {
            return frame.missing(self.input.len()) == 0;
        }
        match FrameHeader::parse(&self.input) {
            Ok(Some((header, header_len))) => {
                (self.input.len() - header_len) as u64 >= header.payload_len
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The next event, or `None` when the bytes received so far hold no
    /// complete one. Call it until it returns `None` after each read, then
    /// write what [`Connection::poll_transmit`] hands out.
    pub fn next_event(&mut self) -> Option<Event> {
        // Bytes appended through `receive_buffer` since the last call are
        // input too, for the idle timer.
        if self.input.len() > self.input_len_seen as usize {
            self.timers.input_arrived();
        }
        let event = self.next_event_inner();
        if let Some(Event::Message(_)) = event {
            self.messages_received += 1;
        }
        if event.is_none() && self.input.is_empty() && self.input.capacity() > 0 {
            // Everything received was parsed: an idle connection holds no
            // input buffer (delivered payloads keep their part of it).
            self.input = BytesMut::new();
        }
        self.input_len_seen = u32::try_from(self.input.len()).unwrap_or(u32::MAX);
        event
    }

    fn next_event_inner(&mut self) -> Option<Event> {
        loop {
            if self.state == State::Closed {
                return self.report_closed();
            }
            if self.control_backlogged() {
                return None;
            }
            match self.step() {
                Ok(Step::Event(event)) => {
                    self.frame_completed();
                    return Some(event);
                }
                Ok(Step::Continue) => self.frame_completed(),
                Ok(Step::NeedMore) if self.eof => self.end(Error::UnexpectedEof, Initiator::Remote),
                Ok(Step::NeedMore) => return None,
                Err(error) => self.fail(error),
            }
        }
    }

    /// A frame was parsed whole: unless it left a message open, the
    /// message-completion timer starts afresh with the next one.
    fn frame_completed(&mut self) {
        if self.message.is_none() {
            self.timers.message_completed();
        }
    }

    /// Parses at most one frame, or what has arrived of one.
    fn step(&mut self) -> Result<Step, ProtocolError> {
        if self.frame.is_none() {
            let Some((header, header_len)) = FrameHeader::parse(&self.input)? else {
                return Ok(Step::NeedMore);
            };
            let (len, text, compressed) = self.check_header(&header)?;
            if let Some(trace) = self.outgoing.trace() {
                trace.record(false, header);
            }
            self.input.advance(header_len);
            if header.opcode != OpCode::Continuation && text {
                self.utf8 = Utf8Validator::new();
            }
            if compressed {
                self.start_compressed_frame(&header, text);
            }
            self.frame = Some(IncomingFrame {
                len,
                processed: 0,
                mask: header.mask.unwrap_or_default(),
                opcode: header.opcode,
                fin: header.fin,
                payload: match (compressed, text) {
                    (true, _) => Payload::Compressed,
                    (false, true) => Payload::Text,
                    (false, false) => Payload::Plain,
                },
            });
        }
        let Some(frame) = self.frame.as_mut() else {
            return Ok(Step::NeedMore);
        };
        if frame.payload == Payload::Compressed {
            return self.inflate_frame();
        }
        let available = self.input.len().min(frame.len);
        if available > frame.processed {
            let fresh = &mut self.input[frame.processed..available];
            if frame.masked() {
                apply_mask(fresh, frame.mask, frame.processed);
            }
            if frame.payload == Payload::Text {
                self.utf8
                    .feed(fresh)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            frame.processed = available;
        }
        if frame.processed < frame.len {
            return Ok(Step::NeedMore);
        }
        let Some(IncomingFrame {
            opcode, fin, len, ..
        }) = self.frame.take()
        else {
            return Ok(Step::NeedMore);
        };
        self.finish_frame(opcode, fin, len)
    }

    /// Checks a header against the role, the state and the limits before
    /// any of its payload is accepted. Returns the payload length, whether
    /// the payload is text to validate, and whether it is compressed.
    // Inlined into the parser's hot path, which is what it was written for.
    #[inline(always)]
    fn check_header(&self, header: &FrameHeader) -> Result<(usize, bool, bool), ProtocolError> {
        let reserved = header.rsv & !self.allowed_rsv;
        if reserved != 0 {
            return Err(ProtocolError::ReservedBits(reserved));
        }
        let rsv1 = header.rsv & RSV1 != 0;
        // RFC 7692 section 6.1: RSV1 marks the first frame of a compressed
        // message; control frames and continuations never carry it.
        if rsv1 && (header.opcode.is_control() || header.opcode == OpCode::Continuation) {
            return Err(ProtocolError::ReservedBits(RSV1));
        }
        if header.opcode.is_reserved() {
            return Err(ProtocolError::ReservedOpcode(header.opcode.bits()));
        }
        match (self.role.expects_masked(), header.mask.is_some()) {
            (true, false) => return Err(ProtocolError::UnmaskedFrame),
            (false, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
            }
            return Ok((header.payload_len as usize, false, false));
        }
        // A compressed frame is inflated as it arrives, never buffered
        // whole, and what it inflates to is held to the message limit; its
        // wire size gets headroom for DEFLATE's expansion of data that
        // does not compress (a 16 MiB random message is a little larger
        // compressed), so a limit means the same with or without
        // compression.
        let compressed = rsv1
            || (header.opcode == OpCode::Continuation
                && self.message.as_ref().is_some_and(|m| m.compressed));
        let max_frame = with_headroom(self.config.get_max_frame_size(), compressed);
        let len = usize::try_from(header.payload_len)
            .ok()
            .filter(|len| *len <= max_frame)
            .ok_or(ProtocolError::FrameTooLarge {
                size: header.payload_len,
                max: max_frame,
            })?;
        let max_message = self.config.get_max_message_size();
        let too_large = ProtocolError::MessageTooLarge { max: max_message };
        match (header.opcode, &self.message) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(message)) => {
                // A compressed fragment's inflated size is checked while
                // inflating; its wire size counts against the message limit
                // (with headroom) too, so that DEFLATE blocks that inflate
                // to nothing cannot go on forever.
                let payload = if message.compressed { 0 } else { len };
                let cost = message
                    .cost()
                    .saturating_add(self.config.get_fragment_overhead())
                    .saturating_add(payload);
                let wire = message.wire_len.saturating_add(len);
                if cost > max_message || wire > with_headroom(max_message, message.compressed) {
                    return Err(too_large);
                }
                Ok((len, message.text, message.compressed))
            }
            (_, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (_, None) if len > with_headroom(max_message, rsv1) => Err(too_large),
            (opcode, None) => Ok((len, opcode == OpCode::Text, rsv1)),
        }
    }

    /// Acts on a frame whose payload has fully arrived (unmasked and, for
    /// text, validated) at the front of the input buffer.
    fn finish_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        len: usize,
    ) -> Result<Step, ProtocolError> {
        match opcode {
            OpCode::Text | OpCode::Binary if fin => {
                let payload = self.input.split_to(len).freeze();
                Ok(Step::Event(Event::Message(
                    self.complete(opcode == OpCode::Text, payload)?,
                )))
            }
            OpCode::Text | OpCode::Binary => {
                let payload = BytesMut::from(&self.input[..len]);
                self.input.advance(len);
                self.message = Some(Box::new(PartialMessage {
                    text: opcode == OpCode::Text,
                    payload,
                    overhead: 0,
                    compressed: false,
                    wire_len: len,
                }));
                Ok(Step::Continue)
            }
            OpCode::Continuation => {
                let Some(message) = self.message.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                message.payload.extend_from_slice(&self.input[..len]);
                message.overhead += self.config.get_fragment_overhead();
                message.wire_len += len;
                self.input.advance(len);
                if !fin {
                    return Ok(Step::Continue);
                }
                let Some(message) = self.message.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                let payload = message.payload.freeze();
                Ok(Step::Event(Event::Message(
                    self.complete(message.text, payload)?,
                )))
            }
            OpCode::Ping => {
                let payload = self.input.split_to(len).freeze();
                if self.config.get_auto_pong() && self.state == State::Open {
                    self.outgoing
                        .push_frame(self.role, OpCode::Pong, true, 0, &payload);
                }
                Ok(Step::Event(Event::Ping(payload)))
            }
            OpCode::Pong => {
                let payload = self.input.split_to(len).freeze();
                self.timers.pong_received(&payload);
                Ok(Step::Event(Event::Pong(payload)))
            }
            OpCode::Close => {
                let payload = self.input.split_to(len).freeze();
                let frame = CloseFrame::parse(payload)?;
                self.close_received(frame);
                Ok(Step::Continue)
            }
            OpCode::ReservedData(bits) | OpCode::ReservedControl(bits) => {
                Err(ProtocolError::ReservedOpcode(bits))
            }
        }
    }

    /// Turns a complete payload into a message, finishing text validation.
    pub(super) fn complete(
        &mut self,
        text: bool,
        payload: Bytes,
    ) -> Result<Message, ProtocolError> {
        if !text {
            return Ok(Message::Binary(payload));
        }
        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Message::Text(Utf8Bytes::from_validated(payload)))
    }
}

/// A wire-size limit, with room for DEFLATE's worst-case expansion (about
/// 0.03% for stored blocks; zlib's Huffman blocks on random data add a
/// little more) when the payload is compressed.
pub(super) fn with_headroom(limit: usize, compressed: bool) -> usize {
    if compressed {
        limit.saturating_add(limit / 64).saturating_add(1024)
    } else {
        limit
    }
}
