//! The connection state machine (RFC 6455 sections 5, 6 and 7).
//!
//! Input is parsed lazily, one frame per step of [`Connection::next_event`],
//! so events come out in exactly the order their frames arrived, and
//! everything before a violation is delivered before the violation closes
//! the connection. Payloads are unmasked in place and text is validated as
//! the bytes arrive, even before a frame is complete, so invalid UTF-8 fails
//! the connection at the first impossible byte.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::{Error, ProtocolError, Timeout};
use crate::extension::deflate::codec::{Compressor, Decompressor, InflateError};
use crate::extension::deflate::{DeflateConfig, DeflateParams};
use crate::frame::mask::apply_mask;
use crate::frame::{FrameHeader, OpCode};
use crate::message::{Message, Utf8Bytes};
use crate::outgoing::Outgoing;
use crate::prepared::PreparedMessage;
use crate::role::Role;
use crate::timer::{Armed, Timers};
use crate::utf8::Utf8Validator;

/// Where a connection is in its life after the opening handshake (RFC 6455
/// section 4.1's OPEN, CLOSING and CLOSED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close frame and wait for the peer's; messages still arrive.
    Closing,
    /// The connection ended: the closing handshake completed, failed or
    /// timed out. Input is ignored and nothing more can be sent.
    Closed,
}

/// Which side started the end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This endpoint: it sent the first Close frame, failed the connection
    /// after a violation, or gave up waiting.
    Local,
    /// The peer: it sent the first Close frame or ended the transport.
    Remote,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Who started the end.
    pub initiated_by: Initiator,
    /// The code and reason of the Close frame this endpoint sent, if it
    /// sent one with a code.
    pub sent: Option<CloseFrame>,
    /// The code and reason of the Close frame the peer sent, if one arrived
    /// with a code.
    pub received: Option<CloseFrame>,
    /// Why the connection ended abnormally, or `None` when the closing
    /// handshake completed.
    pub error: Option<Error>,
}

impl Closed {
    /// The code that best describes the end: the peer's if it sent one,
    /// else ours; 1005 (no status) after a clean exchange of empty Close
    /// frames, and 1006 (abnormal) when the transport ended or a timer
    /// expired before any Close frame was exchanged.
    pub fn code(&self) -> CloseCode {
        match (&self.received, &self.sent) {
            (Some(frame), _) | (None, Some(frame)) => frame.code,
            (None, None) if self.error.is_none() => CloseCode::NO_STATUS,
            (None, None) => CloseCode::ABNORMAL,
        }
    }

    /// The reason that goes with [`Closed::code`], possibly empty.
    pub fn reason(&self) -> &str {
        match (&self.received, &self.sent) {
            (Some(frame), _) | (None, Some(frame)) => frame.reason.as_str(),
            (None, None) => "",
        }
    }

    /// Whether the closing handshake completed (both Close frames were
    /// exchanged) without an error.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
    }
}

/// What the engine reports, in the order things arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// A Ping arrived; with `auto_pong` on (the default) its Pong is already
    /// queued.
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The connection ended. This is always the last event.
    Closed(Closed),
}

/// Room reserved past the end of a frame whose size is known, so that a
/// front-end reading into the buffer's spare room
/// ([`Connection::receive_buffer_with_room`]) reads what follows the frame
/// closely (a Ping, the next small message) together with its last bytes,
/// and so sees it before it would flush its replies.
const ROOM_AFTER_FRAME: usize = 4096;

/// A frame whose header has been read and whose payload is arriving.
#[derive(Debug)]
struct IncomingFrame {
    header: FrameHeader,
    /// The payload length, checked against the limits.
    len: usize,
    /// Payload bytes already unmasked (and validated, for text).
    processed: usize,
    /// The payload belongs to a text message and is validated as UTF-8.
    text: bool,
    /// The payload belongs to a compressed message: it is inflated as it
    /// arrives, and the input buffer is consumed as it goes.
    compressed: bool,
}

impl IncomingFrame {
    /// Payload bytes still to come into the input buffer.
    fn missing(&self, input: usize) -> usize {
        let held = if self.compressed { self.processed } else { 0 };
        self.len.saturating_sub(held + input)
    }
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct PartialMessage {
    text: bool,
    /// The payload so far; inflated, for a compressed message.
    payload: BytesMut,
    /// The per-fragment overhead charged so far. With the payload, what
    /// counts against `max_message_size`.
    overhead: usize,
    /// The message has RSV1 set (permessage-deflate).
    compressed: bool,
    /// Payload bytes of its frames so far, as they came on the wire.
    wire_len: usize,
}

impl PartialMessage {
    fn cost(&self) -> usize {
        self.payload.len().saturating_add(self.overhead)
    }
}

/// RSV1: permessage-deflate's "compressed message" bit (RFC 7692 section 6).
const RSV1: u8 = 0b100;

/// A negotiated permessage-deflate.
#[derive(Debug)]
struct Deflate {
    compressor: Compressor,
    decompressor: Decompressor,
    threshold: usize,
    /// Where inflated messages are written: small ones share one
    /// allocation.
    inflated: BytesMut,
}

/// An inflated-messages buffer keeps at most this much spare capacity
/// between messages.
const MAX_SPARE_INFLATE_CAPACITY: usize = 64 * 1024;

/// How a connection is ending. Boxed in [`Connection`]: most of a
/// connection's life has none of it, and idle connections should be small.
#[derive(Debug, Default)]
struct Ending {
    /// The Close frame we sent: `None` before, `Some(None)` for an empty one.
    close_sent: Option<Option<CloseFrame>>,
    close_received: Option<Option<CloseFrame>>,
    error: Option<Error>,
    initiated_by: Option<Initiator>,
}

/// What one step of parsing produced.
enum Step {
    Event(Event),
    Continue,
    NeedMore,
}

/// A sans-I/O WebSocket connection after its opening handshake: bytes in,
/// events and bytes out, time passed in.
///
/// See the [crate documentation](crate) for how a front-end drives it.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    /// Shared: a server's connections all point at its one config.
    config: Arc<Config>,
    state: State,
    input: BytesMut,
    frame: Option<IncomingFrame>,
    /// Boxed: most messages are one frame, and idle connections should
    /// be small.
    message: Option<Box<PartialMessage>>,
    utf8: Utf8Validator,
    /// RSV bits a negotiated extension owns; any other set bit is an error.
    allowed_rsv: u8,
    /// permessage-deflate, once negotiated; dropped when the connection
    /// ends.
    deflate: Option<Box<Deflate>>,
    /// The negotiated permessage-deflate parameters (kept after the end).
    deflate_params: Option<DeflateParams>,
    eof: bool,
    /// The input buffer's length when `next_event` last returned.
    input_len_seen: usize,
    outgoing: Outgoing,
    /// How the connection is ending, from the first Close or failure on.
    ending: Option<Box<Ending>>,
    /// Whether [`Event::Closed`] was handed out.
    closed_reported: bool,
    /// The engine wants the transport shut down once output is written.
    close_transport: bool,
    timers: Timers,
    /// The Close frame [`Connection::close_at`] scheduled; boxed, as idle
    /// connections should be small.
    scheduled_close: Option<Box<CloseFrame>>,
    /// Data messages handed out by `next_event`, and queued to send: plain
    /// fields, which a front-end reads at coarse points to add to a
    /// server's shared counters.
    messages_received: u64,
    messages_sent: u64,
}

impl Connection {
    /// A connection playing `role` with `config`, in the [`State::Open`]
    /// state (its opening handshake is done, or not needed). Pass a
    /// [`Config`], or an `Arc<Config>` shared by many connections (a
    /// server's), which then cost a pointer each instead of a copy.
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Connection {
        Connection {
            role,
            config: config.into(),
            state: State::Open,
            input: BytesMut::new(),
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            allowed_rsv: 0,
            deflate: None,
            deflate_params: None,
            eof: false,
            input_len_seen: 0,
            outgoing: Outgoing::default(),
            ending: None,
            closed_reported: false,
            close_transport: false,
            timers: Timers::default(),
            scheduled_close: None,
            messages_received: 0,
            messages_sent: 0,
        }
    }

    /// Turns on permessage-deflate (RFC 7692) with the parameters the
    /// opening handshake agreed on: from then on, data messages of at least
    /// [`DeflateConfig::threshold`] bytes are sent compressed (RSV1 set),
    /// and received messages with RSV1 set are inflated. Call it before
    /// any data is exchanged.
    ///
    /// The inflated size of a received message counts against
    /// [`Config::max_message_size`] and is checked while inflating: a
    /// message that would inflate past it fails the connection with 1009
    /// after at most that many bytes were produced.
    ///
    /// # Memory
    ///
    /// zlib's state is allocated on first use, per direction: compressing
    /// takes about `2^(window_bits + 2)` bytes plus 128 KiB (256 KiB with
    /// 15 bits), inflating `2^window_bits` bytes plus about 7 KiB (39 KiB
    /// with 15 bits). Lower window bits in the negotiation bound it.
    pub fn enable_deflate(&mut self, params: DeflateParams, config: &DeflateConfig) {
        self.allowed_rsv |= RSV1;
        self.deflate_params = Some(params);
        self.deflate = Some(Box::new(Deflate {
            compressor: Compressor::new(params.outgoing(self.role), config.get_level()),
            decompressor: Decompressor::new(params.incoming(self.role)),
            threshold: config.get_threshold(),
            inflated: BytesMut::new(),
        }));
    }

    /// The permessage-deflate parameters in use, if it was enabled.
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.deflate_params
    }

    /// The role this engine plays.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The engine's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.state
    }

    // ----- input -------------------------------------------------------

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
    pub fn frame_bytes_missing(&self) -> usize {
        match &self.frame {
            Some(frame) if !frame.compressed => frame.missing(self.input.len()),
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
        if self.input.len() > self.input_len_seen {
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
        self.input_len_seen = self.input.len();
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
            self.input.advance(header_len);
            if header.opcode != OpCode::Continuation && text {
                self.utf8 = Utf8Validator::new();
            }
            if compressed {
                self.start_compressed_frame(&header, text);
            }
            self.frame = Some(IncomingFrame {
                header,
                len,
                processed: 0,
                text,
                compressed,
            });
        }
        let Some(frame) = self.frame.as_mut() else {
            return Ok(Step::NeedMore);
        };
        if frame.compressed {
            return self.inflate_frame();
        }
        let available = self.input.len().min(frame.len);
        if available > frame.processed {
            let fresh = &mut self.input[frame.processed..available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.processed);
            }
            if frame.text {
                self.utf8
                    .feed(fresh)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            frame.processed = available;
        }
        if frame.processed < frame.len {
            return Ok(Step::NeedMore);
        }
        let Some(IncomingFrame { header, len, .. }) = self.frame.take() else {
            return Ok(Step::NeedMore);
        };
        self.finish_frame(header, len)
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
    fn finish_frame(&mut self, header: FrameHeader, len: usize) -> Result<Step, ProtocolError> {
        match header.opcode {
            OpCode::Text | OpCode::Binary if header.fin => {
                let payload = self.input.split_to(len).freeze();
                Ok(Step::Event(Event::Message(
                    self.complete(header.opcode == OpCode::Text, payload)?,
                )))
            }
            OpCode::Text | OpCode::Binary => {
                let payload = BytesMut::from(&self.input[..len]);
                self.input.advance(len);
                self.message = Some(Box::new(PartialMessage {
                    text: header.opcode == OpCode::Text,
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
                if !header.fin {
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

    /// A compressed message's frame begins: the first one opens the
    /// message (its payload is inflated into the shared buffer), each
    /// continuation is charged the fragment overhead.
    fn start_compressed_frame(&mut self, header: &FrameHeader, text: bool) {
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
    fn inflate_frame(&mut self) -> Result<Step, ProtocolError> {
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
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.processed);
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
        let fin = frame.header.fin;
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

    /// Turns a complete payload into a message, finishing text validation.
    fn complete(&mut self, text: bool, payload: Bytes) -> Result<Message, ProtocolError> {
        if !text {
            return Ok(Message::Binary(payload));
        }
        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Message::Text(Utf8Bytes::from_validated(payload)))
    }

    /// The peer's Close frame arrived (RFC 6455 section 5.5.1).
    fn close_received(&mut self, frame: Option<CloseFrame>) {
        if self.state == State::Open {
            // Echo the code (section 5.5.1), without the reason: the reason
            // is the peer's to explain, not ours.
            let reply = frame
                .as_ref()
                .map(|frame| CloseFrame::new(frame.code, Utf8Bytes::default()));
            self.queue_close(reply);
            self.ending().initiated_by = Some(Initiator::Remote);
        }
        self.ending().close_received = Some(frame);
        self.enter_closed();
        // Section 7.1.1: the server closes TCP first; the client waits for
        // it (bounded by the close timer).
        if self.role == Role::Server {
            self.close_transport = true;
        }
    }

    /// Fails the connection after a violation by the peer (RFC 6455
    /// section 7.1.7): sends a Close with the violation's code unless one
    /// was sent already, and asks for the transport to be closed at once.
    fn fail(&mut self, error: ProtocolError) {
        if self.state == State::Open {
            self.queue_close(Some(CloseFrame::new(
                error.close_code(),
                Utf8Bytes::from_static(error.reason()),
            )));
        }
        self.end(Error::Protocol(error), Initiator::Local);
    }

    /// Ends the connection abnormally.
    fn end(&mut self, error: Error, initiated_by: Initiator) {
        self.ending().error = Some(error);
        self.ending().initiated_by.get_or_insert(initiated_by);
        self.enter_closed();
        self.close_transport = true;
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.scheduled_close = None;
        self.input = BytesMut::new();
        self.frame = None;
        self.message = None;
        // zlib's state is large; nothing is compressed or inflated now.
        self.deflate = None;
    }

    fn report_closed(&mut self) -> Option<Event> {
        if self.closed_reported {
            return None;
        }
        self.closed_reported = true;
        let ending = self.ending.take().map(|ending| *ending).unwrap_or_default();
        Some(Event::Closed(Closed {
            initiated_by: ending.initiated_by.unwrap_or(Initiator::Remote),
            sent: ending.close_sent.flatten(),
            received: ending.close_received.flatten(),
            error: ending.error,
        }))
    }

    /// The ending's record, started on first use.
    fn ending(&mut self) -> &mut Ending {
        self.ending.get_or_insert_with(Box::default)
    }

    // ----- sending -----------------------------------------------------

    /// Queues a data message, fragmented at [`Config::outgoing_frame_size`].
    /// With permessage-deflate enabled, a message of at least the
    /// threshold is compressed first.
    ///
    /// Fails with [`Error::AlreadyClosed`] once a Close was sent or
    /// received.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.send_message(message, true)
    }

    /// Queues a data message without compressing it, whatever was
    /// negotiated: for data that is already compressed (images, archives)
    /// or secret data that must not share a compression context with
    /// attacker-influenced data (see RFC 7692 section 10 on CRIME-style
    /// attacks). See [`Connection::send`].
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), Error> {
        self.send_message(message, false)
    }

    fn send_message(&mut self, message: Message, compress: bool) -> Result<(), Error> {
        self.check_open()?;
        let (opcode, payload) = match message {
            Message::Text(text) => (OpCode::Text, text.into_bytes()),
            Message::Binary(data) => (OpCode::Binary, data),
        };
        let (rsv, payload) = match self.deflate.as_deref_mut() {
            Some(deflate)
                if compress
                    && payload.len() >= deflate.threshold
                    && deflate.compressor.can_compress() =>
            {
                match deflate.compressor.compress(&payload) {
                    // Without context takeover, nothing depends on this
                    // message having been compressed: send whichever is
                    // smaller.
                    Ok(compressed)
                        if !deflate.compressor.context_takeover()
                            && compressed.len() >= payload.len() =>
                    {
                        (0, payload)
                    }
                    Ok(compressed) => (RSV1, compressed),
                    Err(_) => {
                        self.fail_internal("compression failed");
                        return Err(Error::Internal("compression failed"));
                    }
                }
            }
            _ => (0, payload),
        };
        self.push_message(opcode, rsv, payload);
        self.messages_sent += 1;
        Ok(())
    }

    /// Queues a message prepared for many connections, sharing its
    /// encoding with them where this connection's parameters allow (see
    /// [`PreparedMessage`]): a server sends the prepared frame as is, or
    /// the prepared compressed frame when its compressor does not take over
    /// context. Otherwise (a client, which masks each frame; context
    /// takeover; a message over [`Config::outgoing_frame_size`]) this is
    /// [`Connection::send`] of a clone of the message.
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.check_open()?;
        let message = prepared.message();
        let shareable =
            self.role == Role::Server && message.len() <= self.config.get_outgoing_frame_size();
        if !shareable {
            return self.send(message.clone());
        }
        let frame = match self.deflate.as_deref() {
            Some(deflate) if message.len() >= deflate.threshold => {
                let compressor = &deflate.compressor;
                if compressor.context_takeover() {
                    return self.send(message.clone());
                }
                prepared
                    .compressed_frame(compressor.window_bits(), compressor.level())
                    .unwrap_or_else(|| prepared.plain_frame())
            }
            _ => prepared.plain_frame(),
        };
        self.outgoing.push_encoded(&frame);
        self.messages_sent += 1;
        Ok(())
    }

    /// Queues a message's frames; `rsv` goes on the first.
    fn push_message(&mut self, opcode: OpCode, rsv: u8, payload: Bytes) {
        let frame_size = self.config.get_outgoing_frame_size();
        if payload.len() <= frame_size {
            self.outgoing
                .push_frame(self.role, opcode, true, rsv, &payload);
            return;
        }
        let mut offset = 0;
        while offset < payload.len() {
            let end = (offset + frame_size).min(payload.len());
            let (opcode, rsv) = if offset == 0 {
                (opcode, rsv)
            } else {
                (OpCode::Continuation, 0)
            };
            let piece = payload.slice(offset..end);
            self.outgoing
                .push_frame(self.role, opcode, end == payload.len(), rsv, &piece);
            offset = end;
        }
    }

    /// Ends the connection after a failure of this endpoint: Close 1011.
    fn fail_internal(&mut self, reason: &'static str) {
        if self.state == State::Open {
            self.queue_close(Some(CloseFrame::new(
                CloseCode::INTERNAL_ERROR,
                Utf8Bytes::from_static(reason),
            )));
        }
        self.end(Error::Internal(reason), Initiator::Local);
    }

    /// Queues a text message. See [`Connection::send`].
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message. See [`Connection::send`].
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a Ping (at most 125 bytes), sent ahead of queued data.
    pub fn send_ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload.into())
    }

    /// Queues an unsolicited Pong or, with `auto_pong` off, the answer to a
    /// Ping (at most 125 bytes), sent ahead of queued data.
    pub fn send_pong(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload.into())
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), Error> {
        self.check_open()?;
        if payload.len() > 125 {
            return Err(Error::InvalidInput("control frame payload over 125 bytes"));
        }
        self.outgoing
            .push_frame(self.role, opcode, true, 0, &payload);
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 section 7.1.2): queues a Close
    /// frame after every message already queued. Messages may still arrive
    /// until the peer's Close does, then [`Event::Closed`] reports the end.
    /// If the peer does not answer within [`Config::close_timeout`], the
    /// connection ends with [`Timeout::Close`].
    ///
    /// `code` must be sendable ([`CloseCode::is_sendable`]) and `reason` at
    /// most 123 bytes.
    pub fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.check_open()?;
        let frame = Self::close_frame(code, reason)?;
        self.start_closing(frame);
        Ok(())
    }

    /// Schedules the closing handshake for `at` (a time on the clock the
    /// front-end passes to [`Connection::handle_timeout`]): from then on
    /// [`Connection::poll_timeout`] hands `at` out as a deadline, and
    /// `handle_timeout` at or after `at` does what
    /// [`Connection::send_close`] does with `code` and `reason`, so a peer
    /// that answers ends the connection cleanly. A server that shuts down
    /// uses it to spread its Close frames over a window, so that clients
    /// do not all reconnect at once; the front-end needs no timer of its
    /// own.
    ///
    /// A time already past closes at the next `handle_timeout`. A later
    /// call replaces the schedule. The schedule is dropped once the
    /// connection closes some other way (either side's Close, a failure,
    /// a timeout). Fails like `send_close`: [`Error::AlreadyClosed`] once
    /// closing, [`Error::InvalidInput`] for a code that may not be sent or
    /// a reason over 123 bytes.
    pub fn close_at(&mut self, at: Instant, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.check_open()?;
        let frame = Self::close_frame(code, reason)?;
        self.scheduled_close = Some(Box::new(frame));
        self.timers.schedule_close(at);
        Ok(())
    }

    /// When the close scheduled by [`Connection::close_at`] is due, while
    /// it still is.
    pub fn scheduled_close(&self) -> Option<Instant> {
        if self.state == State::Open {
            self.timers.scheduled_close()
        } else {
            None
        }
    }

    /// A Close frame the application may send.
    fn close_frame(code: CloseCode, reason: &str) -> Result<CloseFrame, Error> {
        if !code.is_sendable() {
            return Err(Error::InvalidInput("close code may not be sent"));
        }
        if reason.len() > CloseFrame::MAX_REASON_LEN {
            return Err(Error::InvalidInput("close reason over 123 bytes"));
        }
        Ok(CloseFrame::new(code, reason))
    }

    /// Sends our Close first and waits for the peer's.
    fn start_closing(&mut self, frame: CloseFrame) {
        self.queue_close(Some(frame));
        self.ending().initiated_by = Some(Initiator::Local);
        self.state = State::Closing;
        self.scheduled_close = None;
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.state {
            State::Open => Ok(()),
            State::Closing | State::Closed => Err(Error::AlreadyClosed),
        }
    }

    fn queue_close(&mut self, frame: Option<CloseFrame>) {
        let mut payload = BytesMut::new();
        if let Some(frame) = &frame {
            frame.encode(&mut payload);
        }
        // A Pong still queued may go: the peer's Ping arrived before our
        // Close. Nothing is queued after the Close.
        self.outgoing
            .push_frame(self.role, OpCode::Close, true, 0, &payload.freeze());
        self.ending().close_sent = Some(frame);
    }

    // ----- output ------------------------------------------------------

    /// The next chunk of bytes to write, in wire order, or `None` when all
    /// queued output has been taken. Take chunks until `None` and write them
    /// with one vectored write: that is what corks many small frames into
    /// one system call. A taken chunk must be written whole before the next
    /// one (a chunk may end inside a frame whose payload is the next).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outgoing.poll_transmit()
    }

    /// Appends all queued output to `out` (a convenience over
    /// [`Connection::poll_transmit`] that copies).
    pub fn data_to_send(&mut self, out: &mut Vec<u8>) {
        while let Some(chunk) = self.poll_transmit() {
            out.extend_from_slice(&chunk);
        }
    }

    /// Data messages (text or binary, a fragmented one once) handed out by
    /// [`Connection::next_event`] so far.
    pub fn messages_received(&self) -> u64 {
        self.messages_received
    }

    /// Data messages queued to send so far ([`Connection::send`] and its
    /// variants, a fragmented one once); Pings, Pongs and Closes are not
    /// counted.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent
    }

    /// Bytes queued and not yet taken with [`Connection::poll_transmit`].
    /// Front-ends make `send` wait while this exceeds
    /// [`Config::max_buffered_bytes`].
    pub fn buffered_amount(&self) -> usize {
        self.outgoing.len()
    }

    /// Whether Pings or Pongs wait to be taken. Front-ends write these at
    /// once, while data replies may be corked.
    pub fn control_pending(&self) -> bool {
        self.outgoing.control_len() > 0
    }

    /// Whether output is waiting to be taken.
    pub fn wants_write(&self) -> bool {
        self.outgoing.len() > 0
    }

    /// Whether the front-end should now shut the transport down: the
    /// connection has ended, this endpoint is the one to close TCP (the
    /// server after a closing handshake, either side after a failure or a
    /// timeout, a client once the server closed), and all output has been
    /// taken. Write what was taken, then close.
    pub fn should_close_transport(&self) -> bool {
        self.close_transport && (self.outgoing.len() == 0 || self.timers.close_fired())
    }

    /// Whether the close timer expired: the peer had its time, so output
    /// not yet written is abandoned, and a front-end stops waiting to
    /// write it or to drain the peer's input, and closes the transport.
    pub fn close_timed_out(&self) -> bool {
        self.timers.close_fired()
    }

    // ----- memory ------------------------------------------------------

    /// The bytes this engine holds now on the peer's account, for a
    /// front-end that shares a memory budget among many connections:
    /// received bytes not yet delivered (the filled part of the input
    /// buffer), a fragmented or compressed message being assembled (its
    /// buffer's capacity: inflating writes all of it), the inflate buffer
    /// kept between messages, and output queued and not yet taken with
    /// [`Connection::poll_transmit`]. Cheap: a few loads and additions, no
    /// walk over any queue, so a front-end can ask after every step.
    ///
    /// Not counted: room reserved in the input buffer for a frame whose
    /// header arrived (address space that the frame's bytes fill as they
    /// are read, so a front-end that gates its reads on this figure bounds
    /// it too), zlib's state (fixed per connection, see
    /// [`Connection::enable_deflate`]), and messages already delivered
    /// (they belong to the application).
    pub fn memory_held(&self) -> usize {
        let message = self
            .message
            .as_ref()
            .map_or(0, |message| message.payload.capacity());
        let inflate = self
            .deflate
            .as_ref()
            .map_or(0, |deflate| deflate.inflated.capacity());
        self.input.len() + message + inflate + self.outgoing.len()
    }

    /// Ends the connection at once and gives its memory back: drops the
    /// input not yet parsed, the message being received, zlib's state and
    /// every frame queued and not yet taken, queues a Close frame with
    /// `code` and `reason`, and asks for the transport to be closed
    /// ([`Connection::should_close_transport`]). The connection ends with
    /// [`Error::Aborted`]. For a server that sheds load (a memory budget
    /// exhausted: [`CloseCode::TRY_AGAIN_LATER`]); a peer that reads sees
    /// the Close, one that does not cannot stop the memory being freed.
    ///
    /// No Close frame is queued when none may follow what was sent: after
    /// a Close already queued or sent, or when the last chunk taken with
    /// [`Connection::poll_transmit`] ended inside a frame (the rest of that
    /// frame is dropped). A front-end that drops output it took and did not
    /// write whole must not send the Close either: it takes it with
    /// `poll_transmit` (the only chunk left) and drops it.
    ///
    /// `code` must be sendable ([`CloseCode::is_sendable`]) and `reason` at
    /// most 123 bytes. Fails with [`Error::AlreadyClosed`] once the
    /// connection is closed.
    pub fn abort(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(Error::AlreadyClosed);
        }
        if !code.is_sendable() {
            return Err(Error::InvalidInput("close code may not be sent"));
        }
        if reason.len() > CloseFrame::MAX_REASON_LEN {
            return Err(Error::InvalidInput("close reason over 123 bytes"));
        }
        let at_frame_boundary = !self.outgoing.mid_frame();
        self.outgoing.clear();
        if self.state == State::Open && at_frame_boundary {
            self.queue_close(Some(CloseFrame::new(code, reason)));
        }
        self.end(Error::Aborted(code), Initiator::Local);
        Ok(())
    }

    // ----- time --------------------------------------------------------

    /// When [`Connection::handle_timeout`] should next be called, or `None`
    /// if no timer runs. Call it after every other call, with the current
    /// time: timers that were started since (keepalive, close handshake)
    /// count from `now`.
    ///
    /// Once `handle_timeout(now)` has run, this returns a deadline later
    /// than `now` (or `None`): a front-end that sleeps until the deadline
    /// it gets never loops without waiting.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        let open = self.state == State::Open;
        let armed = Armed {
            keepalive: self
                .config
                .get_keepalive_interval(self.role)
                .filter(|_| open),
            // A client that completed the handshake waits for the server
            // to close TCP; either side gives up writing its last frames
            // to a peer that does not read.
            close: (!open).then(|| self.config.get_close_timeout()),
            idle: self.config.get_idle_timeout().filter(|_| open),
            message: self
                .config
                .get_message_timeout(self.role)
                .filter(|_| open && self.peer_message_started()),
            scheduled_close: open,
        };
        self.timers.arm(now, armed)
    }

    /// Whether the peer has begun a frame or a message and not finished
    /// it (what the message-completion timeout bounds).
    fn peer_message_started(&self) -> bool {
        self.message.is_some()
            || ((self.frame.is_some() || !self.input.is_empty()) && !self.has_buffered_frame())
    }

    /// Runs the timers that expired by `now`: sends a keepalive Ping, fails
    /// the connection when a Pong is overdue ([`Timeout::Keepalive`], close
    /// code 1011) or a started message is overdue ([`Timeout::Message`],
    /// 1008), closes an idle one ([`Timeout::Idle`], 1001), starts the
    /// closing handshake [`Connection::close_at`] scheduled, and gives up on
    /// a closing handshake that took too long ([`Timeout::Close`]). Once
    /// the connection is closed, the close timer expiring means: stop
    /// waiting for the peer, close the transport now even if output is
    /// still unwritten ([`Connection::should_close_transport`] says so).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.take_close_expired(now) {
            match self.state {
                State::Closing => self.end(Error::Timeout(Timeout::Close), Initiator::Local),
                State::Closed => self.close_transport = true,
                State::Open => {}
            }
            return;
        }
        if self.state != State::Open {
            return;
        }
        if self.timers.message_expired(now) {
            self.outgoing.clear_control();
            self.queue_close(Some(CloseFrame::new(
                CloseCode::POLICY_VIOLATION,
                Utf8Bytes::from_static("message not completed in time"),
            )));
            self.end(Error::Timeout(Timeout::Message), Initiator::Local);
            return;
        }
        if self.timers.idle_expired(now) {
            // A Close 1001 and the closing handshake, bounded by the close
            // timer: a peer that is only slow still gets its say.
            self.outgoing.clear_control();
            self.queue_close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                Utf8Bytes::from_static("idle timeout"),
            )));
            self.ending().initiated_by = Some(Initiator::Local);
            self.state = State::Closing;
            self.ending().error = Some(Error::Timeout(Timeout::Idle));
            return;
        }
        if self.timers.pong_overdue(now) {
            self.outgoing.clear_control();
            self.queue_close(Some(CloseFrame::new(
                CloseCode::INTERNAL_ERROR,
                Utf8Bytes::from_static("keepalive ping timeout"),
            )));
            self.end(Error::Timeout(Timeout::Keepalive), Initiator::Local);
            return;
        }
        if self.timers.take_scheduled_close_due(now) {
            let frame = self.scheduled_close.take().map_or_else(
                || CloseFrame::new(CloseCode::NORMAL, Utf8Bytes::default()),
                |frame| *frame,
            );
            // Like `send_close`: a Ping still queued may go first, and the
            // closing handshake is bounded by the close timer.
            self.start_closing(frame);
            return;
        }
        if let Some(payload) = self
            .timers
            .ping_due(now, self.config.get_keepalive_timeout())
        {
            self.outgoing
                .push_frame(self.role, OpCode::Ping, true, 0, &payload);
        }
    }
}

/// A wire-size limit, with room for DEFLATE's worst-case expansion (about
/// 0.03% for stored blocks; zlib's Huffman blocks on random data add a
/// little more) when the payload is compressed.
fn with_headroom(limit: usize, compressed: bool) -> usize {
    if compressed {
        limit.saturating_add(limit / 64).saturating_add(1024)
    } else {
        limit
    }
}

/// The protocol error for a failed inflate.
fn inflate_error(error: InflateError, max: usize) -> ProtocolError {
    match error {
        InflateError::TooLarge => ProtocolError::MessageTooLarge { max },
        InflateError::Invalid => ProtocolError::InvalidCompressedData,
    }
}
