//! Shared drivers for the fuzz targets.
//!
//! The engine targets (`engine_server`, `engine_client`) run one
//! [`Connection`] as a front-end would, from a script the fuzzer writes:
//!
//! ```text
//! byte 0          L, the length of the script
//! bytes 1..=L     the script, read with `arbitrary`: Settings, then Ops
//! bytes L+1..     the wire: what the peer sends, fed as the Ops say and
//!                 the rest in chunks of `Settings::tail_chunk` bytes
//! ```
//!
//! A seed of `\0` followed by real frames runs those frames through the
//! default config in one chunk, which is how the committed corpus is made.
//!
//! Everything the engine writes is fed to a second, strict `Connection` of
//! the other role: the engine must never send anything that peer calls a
//! protocol violation, and the messages the script sent must arrive intact
//! and in order.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateParams, PERMESSAGE_DEFLATE};
use sockeye_proto::frame::MAX_HEADER_LEN;
use sockeye_proto::handshake::ExtensionOffer;
use sockeye_proto::handshake::{HandshakeError, Parsed, RequestParser, ResponseParser};
use sockeye_proto::{
    CloseCode, CloseFrame, Config, Connection, Error, Event, Message, Role, State,
};

/// The engine's config, as the fuzzer picks it. Zero or absent values mean
/// the default, so an empty script runs the default config.
#[derive(Arbitrary, Debug)]
pub struct Settings {
    limits: Option<Limits>,
    auto_pong_off: bool,
    keepalive_ms: Option<u16>,
    keepalive_timeout_ms: u16,
    close_timeout_ms: u16,
    /// How the wire left over after the script is fed: in chunks of this
    /// many bytes, or all at once for 0.
    tail_chunk: u16,
    /// permessage-deflate as negotiated, on both the engine and its peer.
    deflate: Option<Deflate>,
}

/// What a permessage-deflate negotiation could have agreed on.
#[derive(Arbitrary, Debug)]
struct Deflate {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// 8 to 15, from the low 3 bits, or absent (15) when bit 3 is set.
    /// (With 8, the engine sends that direction uncompressed: zlib cannot
    /// compress with an 8-bit window.)
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    /// The size below which messages are sent uncompressed.
    threshold: u8,
}

impl Deflate {
    fn negotiated(&self) -> Option<(DeflateParams, DeflateConfig)> {
        let mut answer = ExtensionOffer::new(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            answer = answer.with_param("server_no_context_takeover", None);
        }
        if self.client_no_context_takeover {
            answer = answer.with_param("client_no_context_takeover", None);
        }
        for (name, bits) in [
            ("server_max_window_bits", self.server_max_window_bits),
            ("client_max_window_bits", self.client_max_window_bits),
        ] {
            if bits & 8 == 0 {
                answer = answer.with_param(name, Some(&(8 + (bits & 7)).to_string()));
            }
        }
        let params = DeflateParams::from_response(&answer).ok()?;
        let config = DeflateConfig::new().threshold(usize::from(self.threshold));
        Some((params, config))
    }
}

/// Small limits, so that the fuzzer reaches them.
#[derive(Arbitrary, Debug)]
struct Limits {
    max_frame_size: u16,
    max_message_size: u32,
    fragment_overhead: u8,
    max_queued_control_bytes: u16,
    outgoing_frame_size: u16,
}

impl Settings {
    fn config(&self) -> Config {
        let mut config = Config::new().auto_pong(!self.auto_pong_off);
        if let Some(limits) = &self.limits {
            config = config
                .max_frame_size(usize::from(limits.max_frame_size))
                .max_message_size((limits.max_message_size % (1 << 22)) as usize)
                .fragment_overhead(usize::from(limits.fragment_overhead))
                .max_queued_control_bytes(usize::from(limits.max_queued_control_bytes))
                .outgoing_frame_size(usize::from(limits.outgoing_frame_size));
        }
        if let Some(ms) = self.keepalive_ms {
            config = config.keepalive_interval(Some(Duration::from_millis(u64::from(ms) + 1)));
        }
        if self.keepalive_timeout_ms != 0 {
            config = config
                .keepalive_timeout(Duration::from_millis(u64::from(self.keepalive_timeout_ms)));
        }
        if self.close_timeout_ms != 0 {
            config = config.close_timeout(Duration::from_millis(u64::from(self.close_timeout_ms)));
        }
        config
    }
}

/// One step of the script.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Feed the next `n` bytes of the wire (at least one), if the engine
    /// wants to read.
    Feed(u16),
    /// Take at most this many events.
    Events(u8),
    /// Write everything queued to the peer.
    Transmit,
    /// Let time pass (milliseconds), then run the timers.
    Advance(u16),
    /// Jump to the engine's next deadline and run the timers.
    NextTimer,
    SendText(String),
    SendBinary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    /// The transport ended.
    Eof,
}

/// The engine under test and everything the invariants need to know.
struct Harness {
    conn: Connection,
    config: Config,
    now: Instant,
    /// The strict peer that reads everything the engine writes.
    peer: Connection,
    /// Messages sent and not yet seen by the peer.
    in_flight: VecDeque<Message>,
    closed: bool,
    eof: bool,
    /// The script started the closing handshake itself.
    close_sent_by_us: bool,
    /// Bytes fed so far, to bound the events they can produce.
    fed: usize,
    events: usize,
}

impl Harness {
    fn new(role: Role, config: Config) -> Harness {
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Harness {
            conn: Connection::new(role, config.clone()),
            config,
            now: Instant::now(),
            peer: Connection::new(
                peer_role,
                Config::new().max_queued_control_bytes(usize::MAX),
            ),
            in_flight: VecDeque::new(),
            closed: false,
            eof: false,
            close_sent_by_us: false,
            fed: 0,
            events: 0,
        }
    }

    /// Whether a front-end would read now.
    fn reads(&self) -> bool {
        self.conn.wants_read() && !self.conn.should_close_transport()
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.conn.receive_data(bytes);
        self.fed += bytes.len();
    }

    /// Takes at most `limit` events, checking each.
    fn events(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(event) = self.conn.next_event() else {
                self.check_idle();
                return;
            };
            self.events += 1;
            // Every event but the last consumes at least a 2-byte header,
            // so a loop that reports events without consuming is caught.
            assert!(
                self.events <= self.fed / 2 + 2,
                "{} events from {} bytes",
                self.events,
                self.fed
            );
            assert!(!self.closed, "an event after Closed: {event:?}");
            self.check_event(event);
        }
    }

    fn check_event(&mut self, event: Event) {
        match event {
            Event::Message(message) => {
                assert!(
                    message.len() <= self.config.get_max_message_size(),
                    "a message of {} bytes passed the limit of {}",
                    message.len(),
                    self.config.get_max_message_size()
                );
                if message.is_text() {
                    assert!(std::str::from_utf8(message.as_bytes()).is_ok());
                }
            }
            Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
            Event::Closed(closed) => {
                self.closed = true;
                assert_eq!(self.conn.state(), State::Closed);
                if let Some(sent) = &closed.sent {
                    check_close_frame(sent);
                }
                if let Some(received) = &closed.received {
                    check_close_frame(received);
                }
                if let Some(Error::Protocol(error)) = &closed.error {
                    // The engine failed the connection: unless the script
                    // had started closing, its Close carries the code of
                    // the violation.
                    if !self.close_sent_by_us && closed.received.is_none() {
                        let sent = closed.sent.as_ref().expect("a failure sends a Close");
                        assert_eq!(sent.code, error.close_code(), "{error}");
                    }
                }
                assert!(closed.code().as_u16() >= 1000);
                assert!(self.conn.next_event().is_none(), "an event after Closed");
            }
            _ => {}
        }
    }

    /// The engine had nothing more to say: check what it holds.
    fn check_idle(&mut self) {
        if self.closed {
            return;
        }
        if self.conn.wants_read() && self.conn.state() != State::Closed {
            // At most one incomplete frame is buffered.
            let max_frame = self.config.get_max_frame_size().max(125);
            let held = self.conn.receive_buffer().len();
            assert!(
                held <= max_frame + MAX_HEADER_LEN,
                "{held} input bytes held with max_frame_size {max_frame}"
            );
        }
    }

    /// Writes everything queued to the peer and checks what it makes of it.
    fn transmit(&mut self) {
        while let Some(chunk) = self.conn.poll_transmit() {
            self.peer.receive_data(&chunk);
        }
        assert_eq!(self.conn.buffered_amount(), 0);
        assert!(!self.conn.control_pending());
        while let Some(event) = self.peer.next_event() {
            match event {
                Event::Message(message) => {
                    let expected = self.in_flight.pop_front();
                    assert_eq!(
                        Some(&message),
                        expected.as_ref(),
                        "the peer got another message"
                    );
                }
                Event::Closed(closed) => {
                    if let Some(Error::Protocol(error)) = &closed.error {
                        panic!("the engine sent something its peer refused: {error}");
                    }
                    if let Some(received) = &closed.received {
                        check_close_frame(received);
                    }
                }
                _ => {}
            }
        }
        // The peer's answers (pongs, its Close) are not fed back.
        let mut discard = Vec::new();
        self.peer.data_to_send(&mut discard);
        // With its output taken, the engine either reads or is done.
        assert!(
            self.conn.wants_read() || self.eof || self.conn.should_close_transport(),
            "the engine neither reads nor ends (state {:?})",
            self.conn.state()
        );
    }

    /// Output the engine queued on its own (pongs, its Close) is bounded
    /// by the control queue limit: a peer that pings without reading gets
    /// backpressure, not our memory.
    fn check_output_bound(&self) {
        let bound = self
            .config
            .get_max_queued_control_bytes()
            .saturating_add(512);
        assert!(
            self.conn.buffered_amount() <= bound,
            "{} bytes queued by the engine alone (limit {})",
            self.conn.buffered_amount(),
            self.config.get_max_queued_control_bytes()
        );
    }

    fn timers(&mut self) {
        self.conn.handle_timeout(self.now);
        let _ = self.conn.poll_timeout(self.now);
    }

    fn send(&mut self, message: Message) {
        let open = self.conn.state() == State::Open;
        let result = self.conn.send(message.clone());
        assert_eq!(result.is_ok(), open, "send in {:?}", self.conn.state());
        if result.is_ok() {
            self.in_flight.push_back(message);
        }
    }

    fn control(&mut self, ping: bool, payload: Vec<u8>) {
        let open = self.conn.state() == State::Open;
        let valid = payload.len() <= 125;
        let result = if ping {
            self.conn.send_ping(payload)
        } else {
            self.conn.send_pong(payload)
        };
        assert_eq!(result.is_ok(), open && valid);
    }

    fn close(&mut self, code: u16, reason: String) {
        let open = self.conn.state() == State::Open;
        let valid =
            CloseCode::new(code).is_sendable() && reason.len() <= CloseFrame::MAX_REASON_LEN;
        let result = self.conn.send_close(CloseCode::new(code), &reason);
        assert_eq!(result.is_ok(), open && valid, "close {code} {reason:?}");
        if result.is_ok() {
            self.close_sent_by_us = true;
        }
    }

    /// Events and output until nothing changes.
    fn settle(&mut self) {
        for _ in 0..64 {
            let before = (self.events, self.closed);
            self.events(usize::MAX);
            self.transmit();
            if (self.events, self.closed) == before {
                return;
            }
        }
    }
}

fn check_close_frame(frame: &CloseFrame) {
    assert!(frame.code.is_sendable(), "close code {}", frame.code);
    assert!(frame.reason.len() <= CloseFrame::MAX_REASON_LEN);
}

/// Runs one fuzz input against an engine in `role`.
pub fn run_engine(role: Role, data: &[u8]) {
    let Some((&script_len, rest)) = data.split_first() else {
        return;
    };
    let script_len = usize::from(script_len).min(rest.len());
    let (script, mut wire) = rest.split_at(script_len);
    let mut script = Unstructured::new(script);
    let Ok(settings) = Settings::arbitrary(&mut script) else {
        return;
    };
    let config = settings.config();
    let mut harness = Harness::new(role, config);
    if let Some((params, deflate)) = settings.deflate.as_ref().and_then(Deflate::negotiated) {
        harness.conn.enable_deflate(params, &deflate);
        harness.peer.enable_deflate(params, &deflate);
    }

    while !script.is_empty() {
        let Ok(op) = Op::arbitrary(&mut script) else {
            break;
        };
        match op {
            Op::Feed(n) => {
                if harness.reads() && !wire.is_empty() {
                    let n = usize::from(n).clamp(1, wire.len());
                    let (now, later) = wire.split_at(n);
                    harness.feed(now);
                    wire = later;
                }
            }
            Op::Events(n) => harness.events(usize::from(n)),
            Op::Transmit => harness.transmit(),
            Op::Advance(ms) => {
                harness.now += Duration::from_millis(u64::from(ms));
                harness.timers();
            }
            Op::NextTimer => {
                if let Some(deadline) = harness.conn.poll_timeout(harness.now) {
                    harness.now = harness.now.max(deadline);
                    harness.timers();
                }
            }
            Op::SendText(text) => harness.send(Message::text(text)),
            Op::SendBinary(data) => harness.send(Message::binary(data)),
            Op::Ping(payload) => harness.control(true, payload),
            Op::Pong(payload) => harness.control(false, payload),
            Op::Close(code, reason) => harness.close(code, reason),
            Op::Eof => {
                harness.conn.receive_eof();
                harness.eof = true;
            }
        }
        if harness.in_flight.is_empty() {
            harness.check_output_bound();
        }
    }

    // The rest of the wire, as a front-end would read it.
    let chunk = match settings.tail_chunk {
        0 => usize::MAX,
        n => usize::from(n),
    };
    while !wire.is_empty() && !harness.eof && !harness.conn.should_close_transport() {
        if !harness.conn.wants_read() {
            // Backlogged: write, and the engine reads again.
            harness.transmit();
            assert!(harness.conn.wants_read() || harness.conn.should_close_transport());
            continue;
        }
        let (now, later) = wire.split_at(chunk.min(wire.len()));
        harness.feed(now);
        wire = later;
        harness.events(usize::MAX);
        if harness.in_flight.is_empty() {
            harness.check_output_bound();
        }
    }

    // The transport ends: the connection must end too, with one Closed.
    harness.settle();
    harness.conn.receive_eof();
    harness.eof = true;
    harness.settle();
    for _ in 0..8 {
        let Some(deadline) = harness.conn.poll_timeout(harness.now) else {
            break;
        };
        harness.now = harness.now.max(deadline);
        harness.timers();
        harness.settle();
    }
    assert!(harness.closed, "no Closed event after the transport ended");
    assert!(harness.conn.should_close_transport());
    assert!(harness.conn.next_event().is_none());
}

/// The two head parsers, for [`parse_in_chunks`].
pub trait HeadParser {
    /// The head type.
    type Head;
    /// Feeds bytes.
    fn feed(&mut self, input: &[u8]) -> Result<Option<Parsed<Self::Head>>, HandshakeError>;
    /// Bytes of an incomplete head held.
    fn held(&self) -> usize;
}

impl HeadParser for RequestParser {
    type Head = http::Request<()>;
    fn feed(&mut self, input: &[u8]) -> Result<Option<Parsed<Self::Head>>, HandshakeError> {
        self.parse(input)
    }
    fn held(&self) -> usize {
        self.buffered()
    }
}

impl HeadParser for ResponseParser {
    type Head = http::Response<()>;
    fn feed(&mut self, input: &[u8]) -> Result<Option<Parsed<Self::Head>>, HandshakeError> {
        self.parse(input)
    }
    fn held(&self) -> usize {
        self.buffered()
    }
}

/// What a head parser made of some bytes: the head and where it ended in
/// the whole input, an error, or `None` when the input ran out first.
pub type Outcome<T> = Option<Result<(T, usize), HandshakeError>>;

/// Feeds `input` to a head parser in chunks whose sizes come from `seed`
/// (a small generator, so that one byte of the input picks a whole
/// chunking; 0 feeds everything at once), and returns what the parser made
/// of it. The parser must never hold more than `max_head_size`, and must
/// hold nothing after an error.
pub fn parse_in_chunks<P: HeadParser>(
    parser: &mut P,
    input: &[u8],
    seed: u8,
    max_head_size: usize,
) -> Outcome<P::Head> {
    let mut state = u32::from(seed) | 1;
    let mut offset = 0;
    while offset < input.len() {
        // 1 to 64 bytes, or everything left when the seed is 0.
        let size = if seed == 0 {
            input.len() - offset
        } else {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((state >> 16) % 64 + 1) as usize
        };
        let end = (offset + size).min(input.len());
        match parser.feed(&input[offset..end]) {
            Ok(Some(parsed)) => {
                assert!(parsed.consumed <= end - offset);
                assert_eq!(parser.held(), 0, "the parser is empty after a head");
                return Some(Ok((parsed.head, offset + parsed.consumed)));
            }
            Ok(None) => assert!(parser.held() <= max_head_size),
            Err(error) => {
                assert_eq!(parser.held(), 0, "the parser forgets after an error");
                return Some(Err(error));
            }
        }
        offset = end;
    }
    None
}
