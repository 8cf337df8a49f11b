//! Runs one deflate case in one role: the opening handshake on raw bytes
//! (offer, answer, both checked against the case), the messages in a row
//! compressed by the runner's own codec, every echo parsed, inflated with
//! the agreed window and context rule and compared, then the closing
//! handshake (1000 both ways) and the testee's own view of the
//! negotiation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sockeye_proto::{Config, Role};

use super::cases::{Agreed, DeflateCase, RoleSetup};
use super::codec::{PeerCompressor, PeerDecompressor};
use super::handshake::{
    Extension, check_response, head_end, parse_extensions, read_request, request, response,
    same_extensions,
};
use super::payload::{Messages, PayloadKind};
use super::testee::{DeflateTargets, Read, Testee, TesteeSetup};
use crate::wire::{Frame, Rng, apply_mask, encode, opcode};

/// How long the runner waits without any progress before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One read's wait on a testee that runs on its own.
const POLL: Duration = Duration::from_millis(50);

/// The payload bytes the runner keeps in flight (sent, not yet echoed).
const IN_FLIGHT: usize = 512 * 1024;

/// sockeye's default `DeflateConfig::threshold`: shorter messages may go
/// out uncompressed.
const THRESHOLD: usize = 32;

/// The result of one case in one role.
#[derive(Debug, Clone, Default)]
pub struct DeflateOutcome {
    /// What went wrong; empty when it passed.
    pub problems: Vec<String>,
    /// Echoes that arrived compressed (RSV1).
    pub compressed_echoes: usize,
    /// Echoes checked.
    pub echoes: usize,
    /// Payload bytes of the echoes on the wire (compressed or not).
    pub echo_wire_bytes: usize,
    /// Payload bytes of the echoes once inflated.
    pub echo_bytes: usize,
}

impl DeflateOutcome {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The setup of the role the testee plays.
pub fn role_setup(case: &DeflateCase, role: Role) -> &RoleSetup {
    match role {
        Role::Server => &case.negotiation.server,
        Role::Client => &case.negotiation.client,
    }
}

/// The testee's setup for `case` in `role`.
pub fn testee_setup(case: &DeflateCase, role: Role) -> TesteeSetup {
    let setup = role_setup(case, role);
    let mut config = Config::new();
    if let Some(size) = case.fragment {
        config = config.outgoing_frame_size(size);
    }
    TesteeSetup {
        policy: setup.policy,
        extensions_header: setup.extensions_header.map(str::to_string),
        config,
    }
}

/// Runs `case` with the testee in `role`.
pub fn run_case(case: &DeflateCase, role: Role, targets: &dyn DeflateTargets) -> DeflateOutcome {
    let mut outcome = DeflateOutcome::default();
    let mut testee = match targets.start(role, &testee_setup(case, role)) {
        Ok(testee) => testee,
        Err(problem) => {
            outcome.problems.push(problem);
            return outcome;
        }
    };
    let mut run = Run {
        case,
        role,
        setup: role_setup(case, role),
        link: Link::new(testee.as_mut()),
        rng: Rng::from_str_seed(&format!("deflate {role:?} {}", case.id)),
        outcome: &mut outcome,
    };
    if run.handshake() {
        let ended = run.messages();
        run.close(ended);
    }
    let report = testee.finish();
    let agreed = role_setup(case, role).agreed;
    match report.params {
        Some(Some(params)) => {
            let seen = Agreed {
                server_no_context_takeover: params.server_no_context_takeover,
                client_no_context_takeover: params.client_no_context_takeover,
                server_max_window_bits: params.server_max_window_bits,
                client_max_window_bits: params.client_max_window_bits,
            };
            if seen != agreed {
                outcome.problems.push(format!(
                    "the testee's engine uses {seen:?}, expected {agreed:?}"
                ));
            }
        }
        Some(None) => outcome
            .problems
            .push("the testee's engine did not enable permessage-deflate".into()),
        None => {}
    }
    let clean_close = outcome.problems.is_empty();
    match report.ending {
        Some(ending) if ending.code == 1000 && ending.clean => {}
        Some(ending) if clean_close => outcome.problems.push(format!(
            "the testee reports its connection ended with {} ({}), expected a clean 1000: {}",
            ending.code,
            if ending.clean { "clean" } else { "not clean" },
            ending.detail
        )),
        None if clean_close => outcome
            .problems
            .push("the testee never reported the end of its connection".into()),
        _ => {}
    }
    outcome.problems.extend(report.problems);
    outcome
}

/// The runner's end of the transport: bytes in, with patience.
struct Link<'t> {
    testee: &'t mut dyn Testee,
    input: Vec<u8>,
    eof: bool,
}

impl<'t> Link<'t> {
    fn new(testee: &'t mut dyn Testee) -> Link<'t> {
        Link {
            testee,
            input: Vec::new(),
            eof: false,
        }
    }

    /// Reads once; `Err` when the testee will not write more (EOF, or a
    /// synchronous testee that is idle) or stayed silent past
    /// [`PATIENCE`] since `since`.
    fn pull(&mut self, since: Instant) -> Result<(), String> {
        if self.eof {
            return Err("the testee closed the transport".into());
        }
        match self.testee.read(&mut self.input, POLL) {
            Read::Data => Ok(()),
            Read::Eof => {
                self.eof = true;
                Err("the testee closed the transport".into())
            }
            Read::Idle if self.testee.synchronous() => Err("the testee wrote nothing more".into()),
            Read::Idle if since.elapsed() > PATIENCE => Err(format!(
                "the testee wrote nothing for {} s",
                PATIENCE.as_secs()
            )),
            Read::Idle => Ok(()),
        }
    }
}

/// A frame the testee sent.
#[derive(Debug)]
struct InFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// Takes one whole frame off the front of `input`, if there is one.
fn take_frame(input: &mut Vec<u8>) -> Option<InFrame> {
    if input.len() < 2 {
        return None;
    }
    let masked = input[1] & 0x80 != 0;
    let (len, mut header) = match input[1] & 0x7f {
        126 if input.len() >= 4 => (u64::from(u16::from_be_bytes([input[2], input[3]])), 4),
        127 if input.len() >= 10 => {
            let mut len = [0u8; 8];
            len.copy_from_slice(&input[2..10]);
            (u64::from_be_bytes(len), 10)
        }
        126 | 127 => return None,
        len => (u64::from(len), 2),
    };
    let key_at = header;
    if masked {
        header += 4;
    }
    let len = usize::try_from(len).ok()?;
    if input.len() < header + len {
        return None;
    }
    let mut payload = input[header..header + len].to_vec();
    if masked {
        let key = [
            input[key_at],
            input[key_at + 1],
            input[key_at + 2],
            input[key_at + 3],
        ];
        apply_mask(&mut payload, key);
    }
    let frame = InFrame {
        fin: input[0] & 0x80 != 0,
        rsv: (input[0] >> 4) & 0x7,
        opcode: input[0] & 0x0f,
        masked,
        payload,
    };
    input.drain(..header + len);
    Some(frame)
}

/// A message being reassembled.
struct Partial {
    opcode: u8,
    compressed: bool,
    payload: Vec<u8>,
}

struct Run<'a, 't> {
    case: &'a DeflateCase,
    role: Role,
    setup: &'a RoleSetup,
    link: Link<'t>,
    rng: Rng,
    outcome: &'a mut DeflateOutcome,
}

impl Run<'_, '_> {
    fn problem(&mut self, problem: String) {
        self.outcome.problems.push(problem);
    }

    /// Reads up to the end of a head; returns it.
    fn read_head(&mut self) -> Option<Vec<u8>> {
        let since = Instant::now();
        loop {
            if let Some(end) = head_end(&self.link.input) {
                let head: Vec<u8> = self.link.input.drain(..end).collect();
                return Some(head);
            }
            if let Err(why) = self.link.pull(since) {
                self.problem(format!("no complete handshake head: {why}"));
                return None;
            }
        }
    }

    /// The opening handshake; whether messages may follow.
    fn handshake(&mut self) -> bool {
        let expected_offer = parse_extensions(self.setup.offer).expect("the case's offer parses");
        let expected_answer =
            parse_extensions(self.setup.answer).expect("the case's answer parses");
        if self.link.testee.headers().is_some() {
            return self.headers_handshake(&expected_offer, &expected_answer);
        }
        match self.role {
            Role::Server => {
                let (bytes, key) = request("127.0.0.1", Some(self.setup.offer), &mut self.rng);
                if let Err(why) = self.link.testee.write(&bytes) {
                    self.problem(format!("sending the request failed: {why}"));
                    return false;
                }
                let Some(head) = self.read_head() else {
                    return false;
                };
                match check_response(&head, &key) {
                    Err(why) => {
                        self.problem(format!("the testee's response: {why}"));
                        false
                    }
                    Ok((None, _)) => {
                        self.problem(format!(
                            "the testee declined every offer (no Sec-WebSocket-Extensions), \
                             expected {:?}",
                            self.setup.answer
                        ));
                        false
                    }
                    Ok((Some(answer), raw)) => {
                        if same_extensions(&answer, &expected_answer) {
                            true
                        } else {
                            self.problem(format!(
                                "the testee answered Sec-WebSocket-Extensions: {raw:?}, \
                                 expected {:?}",
                                self.setup.answer
                            ));
                            false
                        }
                    }
                }
            }
            Role::Client => {
                let Some(head) = self.read_head() else {
                    return false;
                };
                if !self.link.input.is_empty() {
                    self.problem(format!(
                        "the testee sent {} bytes after its request, before the 101",
                        self.link.input.len()
                    ));
                    return false;
                }
                let (key, offer, raw) = match read_request(&head) {
                    Ok(read) => read,
                    Err(why) => {
                        self.problem(format!("the testee's request: {why}"));
                        return false;
                    }
                };
                if !offer.is_some_and(|offer| same_extensions(&offer, &expected_offer)) {
                    self.problem(format!(
                        "the testee offered Sec-WebSocket-Extensions: {raw:?}, expected {:?}",
                        self.setup.offer
                    ));
                    return false;
                }
                if let Err(why) = self
                    .link
                    .testee
                    .write(&response(&key, Some(self.setup.answer)))
                {
                    self.problem(format!("sending the 101 failed: {why}"));
                    return false;
                }
                true
            }
        }
    }

    /// The opening handshake in the transport's headers (HTTP/2): the
    /// same offers and answers, checked the same way.
    fn headers_handshake(
        &mut self,
        expected_offer: &[Extension],
        expected_answer: &[Extension],
    ) -> bool {
        let setup = self.setup;
        let Some(headers) = self.link.testee.headers() else {
            return false;
        };
        match self.role {
            Role::Server => {
                let answered = headers.connect(setup.offer);
                match answered {
                    Err(why) => {
                        self.problem(format!("the testee's response: {why}"));
                        false
                    }
                    Ok(None) => {
                        self.problem(format!(
                            "the testee declined every offer (no sec-websocket-extensions), \
                             expected {:?}",
                            setup.answer
                        ));
                        false
                    }
                    Ok(Some(raw)) => {
                        let same = parse_extensions(&raw)
                            .is_ok_and(|answer| same_extensions(&answer, expected_answer));
                        if !same {
                            self.problem(format!(
                                "the testee answered sec-websocket-extensions: {raw:?}, \
                                 expected {:?}",
                                setup.answer
                            ));
                        }
                        same
                    }
                }
            }
            Role::Client => {
                let offered = headers.request();
                let offer = match offered {
                    Ok(offer) => offer,
                    Err(why) => {
                        self.problem(format!("the testee's request: {why}"));
                        return false;
                    }
                };
                let same = offer
                    .as_deref()
                    .and_then(|raw| parse_extensions(raw).ok())
                    .is_some_and(|offer| same_extensions(&offer, expected_offer));
                if !same {
                    self.problem(format!(
                        "the testee offered sec-websocket-extensions: {offer:?}, expected {:?}",
                        setup.offer
                    ));
                    return false;
                }
                let Some(headers) = self.link.testee.headers() else {
                    return false;
                };
                if let Err(why) = headers.respond(setup.answer) {
                    self.problem(format!("sending the 200 failed: {why}"));
                    return false;
                }
                true
            }
        }
    }

    /// The agreed window and context rule of what the runner compresses
    /// and of what it inflates.
    fn directions(&self) -> ((u8, bool), (u8, bool)) {
        let agreed = self.setup.agreed;
        let server = (
            agreed.server_max_window_bits,
            !agreed.server_no_context_takeover,
        );
        let client = (
            agreed.client_max_window_bits,
            !agreed.client_no_context_takeover,
        );
        match self.role {
            // The runner is the client.
            Role::Server => (client, server),
            Role::Client => (server, client),
        }
    }

    /// Sends the messages and checks the echoes; whether the connection is
    /// still fit for the closing handshake.
    fn messages(&mut self) -> bool {
        let case = self.case;
        let ((out_bits, out_takeover), (in_bits, in_takeover)) = self.directions();
        let mut compressor = PeerCompressor::new(out_bits, out_takeover);
        let mut decompressor = PeerDecompressor::new(in_bits, in_takeover);
        let mut messages = Messages::new(case.kind, case.len);
        let text = case.kind.is_text();
        let data_opcode = if text { opcode::TEXT } else { opcode::BINARY };
        let window = (IN_FLIGHT / case.len).max(2);
        let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
        let mut sent = 0;
        let mut partial: Option<Partial> = None;
        let mut since = Instant::now();
        while self.outcome.echoes < case.count {
            while sent < case.count && pending.len() < window {
                let message = messages.next_message();
                let compressed = compressor.compress(&message);
                let frames = fragment(data_opcode, &compressed, case.fragment);
                let encoded = encode(&frames, self.role == Role::Server, &mut self.rng);
                if let Err(why) = self.link.testee.write(&encoded.bytes) {
                    self.problem(format!("sending message {sent} failed: {why}"));
                    return false;
                }
                pending.push_back(message);
                sent += 1;
            }
            if self.outcome.echoes >= case.count {
                break;
            }
            if let Err(why) = self.link.pull(since) {
                self.problem(format!(
                    "after {} of {} echoes ({sent} messages sent): {why}",
                    self.outcome.echoes, case.count
                ));
                return false;
            }
            while let Some(frame) = take_frame(&mut self.link.input) {
                since = Instant::now();
                if !self.check_frame(&frame) {
                    return false;
                }
                if frame.opcode == opcode::CLOSE {
                    self.problem(format!(
                        "the testee sent a Close {} after {} of {} echoes",
                        close_name(&frame.payload),
                        self.outcome.echoes,
                        case.count
                    ));
                    return false;
                }
                match (&mut partial, frame.opcode) {
                    (None, opcode::TEXT | opcode::BINARY) => {
                        partial = Some(Partial {
                            opcode: frame.opcode,
                            compressed: frame.rsv & 0x4 != 0,
                            payload: frame.payload,
                        });
                    }
                    (Some(message), opcode::CONTINUATION) => {
                        message.payload.extend_from_slice(&frame.payload);
                    }
                    (_, other) => {
                        self.problem(format!(
                            "the testee sent a {} frame {} a message, after {} echoes",
                            opcode::name(other),
                            if partial.is_some() {
                                "inside"
                            } else {
                                "outside"
                            },
                            self.outcome.echoes
                        ));
                        return false;
                    }
                }
                if frame.fin {
                    let message = partial.take().expect("set above");
                    let expected = pending.pop_front();
                    if !self.check_echo(message, expected, data_opcode, &mut decompressor) {
                        return false;
                    }
                }
            }
        }
        // The testee's own window: zlib cannot compress with 8 bits, so
        // sockeye honours an agreed 8 by sending plain messages.
        let agreed = self.setup.agreed;
        let testee_bits = match self.role {
            Role::Server => agreed.server_max_window_bits,
            Role::Client => agreed.client_max_window_bits,
        };
        if testee_bits < 9 {
            if self.outcome.compressed_echoes > 0 {
                self.problem(format!(
                    "{} echoes were compressed although the testee agreed to an 8-bit window, \
                     which its compressor (zlib) cannot honour",
                    self.outcome.compressed_echoes
                ));
            }
        } else if case.kind != PayloadKind::Audio
            && case.len >= 2 * THRESHOLD
            && self.outcome.compressed_echoes == 0
        {
            self.problem(format!(
                "none of the testee's {} echoes was compressed (RSV1): the case tested nothing \
                 of the testee's compressor",
                self.outcome.echoes
            ));
        }
        true
    }

    /// The rules every testee frame follows; false after a violation.
    fn check_frame(&mut self, frame: &InFrame) -> bool {
        let mut violations = Vec::new();
        let must_mask = self.role == Role::Client;
        if frame.masked != must_mask {
            violations.push(if must_mask {
                "is not masked"
            } else {
                "is masked"
            });
        }
        if frame.rsv & 0x3 != 0 {
            violations.push("has RSV2 or RSV3 set");
        }
        let data_first = matches!(frame.opcode, opcode::TEXT | opcode::BINARY);
        if frame.rsv & 0x4 != 0 && !data_first {
            violations.push("has RSV1 set, which only a message's first frame may carry");
        }
        if !opcode::is_control(frame.opcode)
            && let Some(size) = self.case.fragment
            && frame.payload.len() > size
        {
            violations.push("is longer than the outgoing frame size");
        }
        if violations.is_empty() {
            return true;
        }
        self.problem(format!(
            "after {} echoes, a {} frame (fin={}, rsv={}, {} bytes) {}",
            self.outcome.echoes,
            opcode::name(frame.opcode),
            u8::from(frame.fin),
            frame.rsv,
            frame.payload.len(),
            violations.join(", ")
        ));
        false
    }

    /// Compares one echo with the message it answers; false on mismatch.
    fn check_echo(
        &mut self,
        message: Partial,
        expected: Option<Vec<u8>>,
        data_opcode: u8,
        decompressor: &mut PeerDecompressor,
    ) -> bool {
        let index = self.outcome.echoes;
        let Some(expected) = expected else {
            self.problem(format!("echo {index} answers no message sent"));
            return false;
        };
        self.outcome.echo_wire_bytes += message.payload.len();
        let payload = if message.compressed {
            self.outcome.compressed_echoes += 1;
            match decompressor.inflate(&message.payload, expected.len()) {
                Ok(payload) => payload,
                Err(why) => {
                    let (bits, takeover) = self.directions().1;
                    self.problem(format!(
                        "echo {index} ({} compressed bytes) under a {bits}-bit window{}: {why}",
                        message.payload.len(),
                        if takeover {
                            ""
                        } else {
                            " without context takeover"
                        }
                    ));
                    return false;
                }
            }
        } else {
            message.payload
        };
        self.outcome.echo_bytes += payload.len();
        if message.opcode != data_opcode {
            self.problem(format!(
                "echo {index} is {}, the message was {}",
                opcode::name(message.opcode),
                opcode::name(data_opcode)
            ));
            return false;
        }
        if payload != expected {
            let at = payload
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(payload.len().min(expected.len()));
            let mut problem = format!(
                "echo {index} differs from the message sent: {} bytes{}, expected {}, first \
                 difference at byte {at}",
                payload.len(),
                if message.compressed {
                    " once inflated"
                } else {
                    ""
                },
                expected.len()
            );
            if !message.compressed
                && PeerDecompressor::new(15, false)
                    .inflate(&payload, expected.len())
                    .is_ok_and(|inflated| inflated == expected)
            {
                problem.push_str(
                    "; its payload is the message compressed: RSV1 is missing from its first \
                     frame",
                );
            }
            self.problem(problem);
            return false;
        }
        self.outcome.echoes += 1;
        true
    }

    /// The closing handshake: the runner's Close 1000, the testee's answer,
    /// the end of the transport.
    fn close(&mut self, fit: bool) {
        if !fit {
            self.link.testee.shutdown();
            return;
        }
        let close = encode(
            &[Frame::close(1000, b"")],
            self.role == Role::Server,
            &mut self.rng,
        );
        if let Err(why) = self.link.testee.write(&close.bytes) {
            self.problem(format!("sending the Close failed: {why}"));
            self.link.testee.shutdown();
            return;
        }
        let since = Instant::now();
        let answer = loop {
            if let Some(frame) = take_frame(&mut self.link.input) {
                if !self.check_frame(&frame) {
                    break None;
                }
                if frame.opcode == opcode::CLOSE {
                    break Some(frame);
                }
                self.problem(format!(
                    "the testee sent a {} frame after the echoes, before its Close",
                    opcode::name(frame.opcode)
                ));
                break None;
            }
            if let Err(why) = self.link.pull(since) {
                self.problem(format!("no Close answered the runner's Close 1000: {why}"));
                break None;
            }
        };
        if let Some(frame) = &answer
            && close_code(&frame.payload) != Some(1000)
        {
            self.problem(format!(
                "the testee answered the Close 1000 with a Close {}",
                close_name(&frame.payload)
            ));
        }
        match self.role {
            // A server closes the transport first (RFC 6455 section 7.1.1).
            Role::Server if answer.is_some() => {
                let since = Instant::now();
                loop {
                    match self.link.pull(since) {
                        Ok(()) if self.link.input.is_empty() => {}
                        Ok(()) => {
                            self.problem(format!(
                                "the testee sent {} bytes after its Close",
                                self.link.input.len()
                            ));
                            break;
                        }
                        Err(_) if self.link.eof => break,
                        Err(why) => {
                            self.problem(format!(
                                "the testee server did not close the transport after the \
                                 closing handshake: {why}"
                            ));
                            break;
                        }
                    }
                }
                self.link.testee.shutdown();
            }
            _ => self.link.testee.shutdown(),
        }
    }
}

/// `message`'s compressed payload as frames of at most `size` bytes, RSV1
/// on the first.
fn fragment(data_opcode: u8, payload: &[u8], size: Option<usize>) -> Vec<Frame> {
    let size = size.unwrap_or(usize::MAX).max(1);
    if payload.len() <= size {
        return vec![Frame::new(data_opcode, payload.to_vec()).rsv(4)];
    }
    let pieces: Vec<&[u8]> = payload.chunks(size).collect();
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| {
            let frame = if index == 0 {
                Frame::new(data_opcode, piece.to_vec()).rsv(4)
            } else {
                Frame::continuation(piece.to_vec())
            };
            frame.fin(index == last)
        })
        .collect()
}

fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

fn close_name(payload: &[u8]) -> String {
    close_code(payload).map_or("without a code".to_string(), |code| code.to_string())
}
