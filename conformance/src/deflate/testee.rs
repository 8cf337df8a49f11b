//! What the deflate cases run against: a [`Testee`] is one connection to
//! sockeye, from the first byte of the opening handshake, echoing every
//! message. [`InMemory`] drives the sans-I/O engine with the real sans-I/O
//! negotiation (`ServerHandshake` with a `DeflateNegotiator`,
//! `ClientHandshake` with the policy's offer); `super::tcp` the tokio
//! server and client over loopback TCP.

use std::time::Duration;

use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator, DeflateParams};
use sockeye_proto::handshake::{
    ClientHandshake, RequestParser, ResponseParser, ServerHandshake, parse_extension_list,
    write_request, write_response,
};
use sockeye_proto::{Closed, Config, Connection, Event, Message, Role};

/// How the testee is set up for one case.
#[derive(Debug, Clone)]
pub struct TesteeSetup {
    /// Its permessage-deflate policy.
    pub policy: DeflateConfig,
    /// As a client: a raw extensions offer replacing the policy's.
    pub extensions_header: Option<String>,
    /// Its engine config (`outgoing_frame_size`).
    pub config: Config,
}

/// What a read from the testee gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Bytes were appended.
    Data,
    /// The testee closed the transport (and everything it wrote was read).
    Eof,
    /// Nothing within the time given.
    Idle,
}

/// How the testee's connection ended, as it saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesteeEnding {
    /// The close code it reports.
    pub code: u16,
    /// Whether it reports a clean close (no error).
    pub clean: bool,
    /// The rest, for reports.
    pub detail: String,
}

impl TesteeEnding {
    /// From the engine's [`Closed`].
    pub fn from_closed(closed: &Closed) -> TesteeEnding {
        TesteeEnding {
            code: closed.code().as_u16(),
            clean: closed.is_clean(),
            detail: format!("{closed:?}"),
        }
    }
}

/// What the testee saw, once the case is over.
#[derive(Debug, Clone, Default)]
pub struct TesteeReport {
    /// `deflate_params()` of its engine, where the target can see it:
    /// `Some(None)` when permessage-deflate was not enabled.
    pub params: Option<Option<DeflateParams>>,
    /// How it ended, if it did.
    pub ending: Option<TesteeEnding>,
    /// Problems besides the wire: a failed handshake, a panic.
    pub problems: Vec<String>,
}

/// One connection to the testee.
pub trait Testee {
    /// Hands `bytes` to the testee.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Appends what the testee wrote, waiting up to `timeout` for it.
    fn read(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Read;
    /// Closes the runner's end of the transport (the testee reads EOF).
    fn shutdown(&mut self);
    /// Whether it reacts to each write before `write` returns (then
    /// [`Read::Idle`] means it will write nothing more).
    fn synchronous(&self) -> bool;
    /// Ends the connection and says what the testee saw.
    fn finish(&mut self) -> TesteeReport;
    /// `Some` when the opening handshake travels apart from the bytes, in
    /// the transport's own headers (HTTP/2's extended CONNECT, RFC 8441);
    /// `None` (the default): in the bytes, as HTTP/1.1.
    fn headers(&mut self) -> Option<&mut dyn HeadersHandshake> {
        None
    }
}

/// The opening handshake in a transport's headers, for the runner to
/// drive and check (values are raw `Sec-WebSocket-Extensions` lists).
pub trait HeadersHandshake {
    /// Testee as server: sends the request offering `offer` and checks the
    /// answer's status and headers; returns its extensions (`None`: none).
    fn connect(&mut self, offer: &str) -> Result<Option<String>, String>;
    /// Testee as client: waits for its request and checks it; returns the
    /// extensions it offers (`None`: none).
    fn request(&mut self) -> Result<Option<String>, String>;
    /// Testee as client: accepts its request, answering `answer`.
    fn respond(&mut self, answer: &str) -> Result<(), String>;
}

/// Starts testees.
pub trait DeflateTargets {
    /// A name for reports.
    fn name(&self) -> &str;
    /// A fresh connection with the testee in `role`, before the handshake:
    /// a client testee has written its request, or is about to.
    fn start(&self, role: Role, setup: &TesteeSetup) -> Result<Box<dyn Testee>, String>;
}

/// A deliberate fault, for proving that the runner catches it.
#[derive(Debug, Clone)]
pub enum Sabotage {
    /// The echo of the message with this index has its last ASCII byte
    /// changed.
    WrongEcho(usize),
    /// RSV1 is cleared on the testee's outgoing frames (compressed
    /// payloads go out as if uncompressed).
    ClearRsv1,
    /// RSV1 is also set on the testee's continuation frames.
    Rsv1OnContinuation,
    /// The testee negotiates with this policy instead of the case's.
    Policy(DeflateConfig),
    /// The engine is enabled with the parameters of this answer instead of
    /// the negotiated ones.
    EngineParams(&'static str),
}

/// Starts in-memory testees: the engine and the sans-I/O handshake,
/// pumped synchronously.
#[derive(Debug, Clone, Default)]
pub struct InMemory {
    /// A fault to inject, for the runner's self-test.
    pub sabotage: Option<Sabotage>,
}

impl DeflateTargets for InMemory {
    fn name(&self) -> &str {
        if self.sabotage.is_some() {
            "sockeye-proto Connection (in memory, sabotaged)"
        } else {
            "sockeye-proto Connection with the sans-I/O handshake (in memory)"
        }
    }

    fn start(&self, role: Role, setup: &TesteeSetup) -> Result<Box<dyn Testee>, String> {
        let mut setup = setup.clone();
        if let Some(Sabotage::Policy(policy)) = &self.sabotage {
            setup.policy = *policy;
        }
        let mut testee = MemoryTestee {
            role,
            setup,
            sabotage: self.sabotage.clone(),
            phase: Phase::Failed,
            output: Vec::new(),
            transport_closed: false,
            params: None,
            ending: None,
            problems: Vec::new(),
            echoed: 0,
        };
        testee.phase = match role {
            Role::Server => Phase::Request(RequestParser::new()),
            Role::Client => {
                let mut builder = ClientHandshake::builder("ws://127.0.0.1/deflate");
                match &testee.setup.extensions_header {
                    Some(header) => builder = builder.extensions_header(header),
                    None => {
                        if let Some(offer) = testee.setup.policy.offer() {
                            builder = builder.extension(offer);
                        }
                    }
                }
                let handshake = builder
                    .build()
                    .map_err(|error| format!("the client handshake did not build: {error}"))?;
                write_request(handshake.request(), &mut testee.output);
                Phase::Response(Box::new(handshake), ResponseParser::new())
            }
        };
        Ok(Box::new(testee))
    }
}

enum Phase {
    Request(RequestParser),
    Response(Box<ClientHandshake>, ResponseParser),
    Open(Box<Connection>),
    Failed,
}

struct MemoryTestee {
    role: Role,
    setup: TesteeSetup,
    sabotage: Option<Sabotage>,
    phase: Phase,
    output: Vec<u8>,
    transport_closed: bool,
    params: Option<Option<DeflateParams>>,
    ending: Option<TesteeEnding>,
    problems: Vec<String>,
    echoed: usize,
}

impl MemoryTestee {
    fn fail(&mut self, problem: String) {
        self.problems.push(problem);
        self.phase = Phase::Failed;
        self.transport_closed = true;
    }

    fn open(&mut self, params: Option<DeflateParams>, leftover: &[u8]) {
        let mut connection = Connection::new(self.role, self.setup.config.clone());
        let params = match (&self.sabotage, params) {
            (Some(Sabotage::EngineParams(answer)), Some(_)) => {
                parse_extension_list(answer.as_bytes())
                    .ok()
                    .and_then(|list| list.first().cloned())
                    .and_then(|answer| DeflateParams::from_response(&answer).ok())
            }
            (_, params) => params,
        };
        if let Some(params) = params {
            connection.enable_deflate(params, &self.setup.policy);
        }
        self.params = Some(connection.deflate_params());
        self.phase = Phase::Open(Box::new(connection));
        if !leftover.is_empty() {
            self.feed(leftover);
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        match std::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::Request(mut parser) => match parser.parse(bytes) {
                Ok(None) => self.phase = Phase::Request(parser),
                Ok(Some(parsed)) => {
                    let server = ServerHandshake::new()
                        .extensions(DeflateNegotiator::new(self.setup.policy));
                    match server.accept(&parsed.head) {
                        Ok(accepted) => {
                            write_response(&accepted.response, &mut self.output);
                            self.open(accepted.negotiated.deflate, &bytes[parsed.consumed..]);
                        }
                        Err(error) => self.fail(format!("the server refused the request: {error}")),
                    }
                }
                Err(error) => self.fail(format!("the request did not parse: {error}")),
            },
            Phase::Response(handshake, mut parser) => match parser.parse(bytes) {
                Ok(None) => self.phase = Phase::Response(handshake, parser),
                Ok(Some(parsed)) => match handshake.finish(&parsed.head) {
                    Ok(negotiated) => self.open(negotiated.deflate, &bytes[parsed.consumed..]),
                    Err(error) => self.fail(format!("the client refused the response: {error}")),
                },
                Err(error) => self.fail(format!("the response did not parse: {error}")),
            },
            Phase::Open(mut connection) => {
                connection.receive_data(bytes);
                self.phase = Phase::Open(connection);
                self.pump();
            }
            Phase::Failed => {}
        }
    }

    fn pump(&mut self) {
        let Phase::Open(connection) = &mut self.phase else {
            return;
        };
        while let Some(event) = connection.next_event() {
            match event {
                Event::Message(message) => {
                    let message = match &self.sabotage {
                        Some(Sabotage::WrongEcho(index)) if *index == self.echoed => spoil(message),
                        _ => message,
                    };
                    self.echoed += 1;
                    if let Err(error) = connection.send(message) {
                        self.problems
                            .push(format!("send of an echo failed: {error}"));
                    }
                }
                Event::Closed(closed) => self.ending = Some(TesteeEnding::from_closed(&closed)),
                _ => {}
            }
        }
        let start = self.output.len();
        connection.data_to_send(&mut self.output);
        match self.sabotage {
            Some(Sabotage::ClearRsv1) => {
                rewrite_first_bytes(&mut self.output[start..], |b| b & !0x40)
            }
            Some(Sabotage::Rsv1OnContinuation) => {
                rewrite_first_bytes(&mut self.output[start..], |b| {
                    if b & 0x0f == 0 { b | 0x40 } else { b }
                })
            }
            _ => {}
        }
        if connection.should_close_transport() {
            self.transport_closed = true;
        }
    }
}

/// Changes a message: its last ASCII byte (or last byte, in binary).
fn spoil(message: Message) -> Message {
    match message {
        Message::Text(text) => {
            let mut text = text.as_str().to_string().into_bytes();
            if let Some(byte) = text.iter_mut().rev().find(|byte| byte.is_ascii()) {
                *byte = if *byte == b'x' { b'y' } else { b'x' };
            }
            Message::text(String::from_utf8(text).expect("ASCII changes keep UTF-8"))
        }
        Message::Binary(data) => {
            let mut data = data.to_vec();
            if let Some(last) = data.last_mut() {
                *last ^= 1;
            }
            Message::Binary(data.into())
        }
    }
}

/// Applies `change` to the first byte of every frame in `bytes` (whole
/// frames, as the engine queues them).
fn rewrite_first_bytes(bytes: &mut [u8], change: impl Fn(u8) -> u8) {
    let mut at = 0;
    while at + 2 <= bytes.len() {
        bytes[at] = change(bytes[at]);
        let masked = bytes[at + 1] & 0x80 != 0;
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => (
                u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                4,
            ),
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&bytes[at + 2..at + 10]);
                (u64::from_be_bytes(len) as usize, 10)
            }
            len => (len as usize, 2),
        };
        at += header + if masked { 4 } else { 0 } + len;
    }
}

impl Testee for MemoryTestee {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.transport_closed {
            return Err("the testee has closed the transport".into());
        }
        self.feed(bytes);
        Ok(())
    }

    fn read(&mut self, out: &mut Vec<u8>, _timeout: Duration) -> Read {
        if !self.output.is_empty() {
            out.append(&mut self.output);
            Read::Data
        } else if self.transport_closed {
            Read::Eof
        } else {
            Read::Idle
        }
    }

    fn shutdown(&mut self) {
        if self.transport_closed {
            return;
        }
        if let Phase::Open(connection) = &mut self.phase {
            connection.receive_eof();
            self.pump();
        }
        self.transport_closed = true;
    }

    fn synchronous(&self) -> bool {
        true
    }

    fn finish(&mut self) -> TesteeReport {
        TesteeReport {
            params: self.params,
            ending: self.ending.clone(),
            problems: std::mem::take(&mut self.problems),
        }
    }
}
