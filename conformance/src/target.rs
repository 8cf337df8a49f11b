//! What the cases run against: a [`Target`] is one connection to a testee
//! that echoes every message back. The in-memory [`EchoTarget`] drives a
//! sockeye-proto [`Connection`] directly; a target over TCP (the tokio
//! server and client) implements the same trait.

use std::time::Duration;

use sockeye_proto::{Closed, Config, Connection, Event, Initiator, Role, State};

/// The testee's settings a case needs (everything else is the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `Config::outgoing_frame_size`, if not the default.
    pub outgoing_frame_size: Option<usize>,
    /// `Config::max_frame_size`, if not the default.
    pub max_frame_size: Option<usize>,
    /// `Config::max_message_size`, if not the default.
    pub max_message_size: Option<usize>,
    /// `Config::fragment_overhead`, if not the default.
    pub fragment_overhead: Option<usize>,
}

impl Settings {
    /// The engine config these settings describe.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        if let Some(bytes) = self.outgoing_frame_size {
            config = config.outgoing_frame_size(bytes);
        }
        if let Some(bytes) = self.max_frame_size {
            config = config.max_frame_size(bytes);
        }
        if let Some(bytes) = self.max_message_size {
            config = config.max_message_size(bytes);
        }
        if let Some(bytes) = self.fragment_overhead {
            config = config.fragment_overhead(bytes);
        }
        config
    }

    /// The payload size of the testee's outgoing data frames.
    pub fn effective_outgoing_frame_size(&self) -> usize {
        self.config().get_outgoing_frame_size()
    }
}

/// How the engine itself said the connection ended (in-memory targets
/// only; a TCP target sees only the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineReport {
    /// The `Event::Closed` it reported, summarized, if any.
    pub closed: Option<ClosedSummary>,
    /// Events reported after `Event::Closed`, which must be none.
    pub events_after_closed: Vec<String>,
    /// Errors from the echo application's calls into the engine.
    pub errors: Vec<String>,
    /// `Connection::state()` when the case ended.
    pub final_state: Option<State>,
}

/// The parts of [`Closed`] a case checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSummary {
    /// Whether the engine started the end.
    pub local: bool,
    /// `Closed::code()`.
    pub code: u16,
    /// The error, if the close was not clean.
    pub error: Option<String>,
    /// The code of the Close frame the engine sent (`None`: none or empty).
    pub sent: Option<u16>,
    /// The code of the Close frame the engine received (`None`: none,
    /// empty or invalid).
    pub received: Option<u16>,
}

impl ClosedSummary {
    /// Summarizes a [`Closed`] event.
    pub fn new(closed: &Closed) -> ClosedSummary {
        ClosedSummary {
            local: closed.initiated_by == Initiator::Local,
            code: closed.code().as_u16(),
            error: closed.error.as_ref().map(|error| error.to_string()),
            sent: closed.sent.as_ref().map(|frame| frame.code.as_u16()),
            received: closed.received.as_ref().map(|frame| frame.code.as_u16()),
        }
    }
}

/// How the runner paces a target whose testee runs on its own (over a
/// real transport), where it cannot know when a chunk has been processed;
/// see `crate::pace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the testee must stay silent after a chunk that may not
    /// yet cause a Close or a closed transport, before the chunk that may.
    pub quiet: Duration,
    /// How long, without any output, the runner waits for a reaction that
    /// is due before it takes the testee as late.
    pub patience: Duration,
}

/// One connection to a testee that echoes every data message it receives.
///
/// The in-memory target processes each read synchronously: what
/// [`Target::collect`] returns right after [`Target::deliver`] is the whole
/// reaction. A target over a real transport says so with
/// [`Target::timing`], and the runner then uses [`Target::wait`] to give
/// the testee time (`crate::pace`), so the per-chunk checks keep their
/// meaning.
pub trait Target {
    /// Hands `bytes` to the testee, as one read from the transport, and
    /// lets it process them.
    fn deliver(&mut self, bytes: &[u8]);

    /// Ends the transport from the peer's side (the testee reads EOF).
    fn deliver_eof(&mut self);

    /// Appends every byte the testee has written since the last call.
    fn collect(&mut self, out: &mut Vec<u8>);

    /// Whether the testee has closed the transport. A target over a real
    /// transport answers as of the last [`Target::collect`], so that once
    /// it says yes, everything the testee wrote has been collected.
    fn has_closed(&self) -> bool;

    /// What the engine reported, where the target can see it.
    fn report(&self) -> Option<EngineReport> {
        None
    }

    /// How to pace this target; `None` (the default): it reacts to each
    /// delivery before `deliver` returns.
    fn timing(&self) -> Option<Timing> {
        None
    }

    /// Waits up to `timeout` for the testee to write more or to close the
    /// transport; returns whether it did (then [`Target::collect`] and
    /// [`Target::has_closed`] show it). Synchronous targets return `false`.
    fn wait(&mut self, _timeout: Duration) -> bool {
        false
    }

    /// Problems the target saw besides the wire, once the case is over: an
    /// opening handshake that failed, a testee that panicked.
    fn problems(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// What the target knows that helps explain a failed case (how the
    /// testee's echo loop ended, say); shown only when the case failed.
    fn notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Starts targets: one per case and role.
pub trait TargetFactory {
    /// A name for reports, such as `sockeye-proto (in memory)`.
    fn name(&self) -> &str;

    /// A fresh connection with the testee playing `role`.
    fn start(&self, role: Role, settings: &Settings) -> Box<dyn Target>;
}

/// The echo application on an in-memory [`Connection`], pumped
/// synchronously: every `deliver` feeds the engine, takes every event
/// (sending each message back), drains the output and honours
/// `should_close_transport`.
#[derive(Debug)]
pub struct EchoTarget {
    connection: Connection,
    output: Vec<u8>,
    transport_closed: bool,
    closed: Option<ClosedSummary>,
    events_after_closed: Vec<String>,
    errors: Vec<String>,
}

impl EchoTarget {
    /// An echo application on a fresh engine.
    pub fn new(role: Role, settings: &Settings) -> EchoTarget {
        EchoTarget {
            connection: Connection::new(role, settings.config()),
            output: Vec::new(),
            transport_closed: false,
            closed: None,
            events_after_closed: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn pump(&mut self) {
        while let Some(event) = self.connection.next_event() {
            if self.closed.is_some() {
                self.events_after_closed.push(describe(&event));
                continue;
            }
            match event {
                Event::Message(message) => {
                    if let Err(error) = self.connection.send(message) {
                        self.errors.push(format!("send of an echo failed: {error}"));
                    }
                }
                Event::Closed(closed) => self.closed = Some(ClosedSummary::new(&closed)),
                // Pongs are the engine's job (auto_pong); pongs received
                // need no answer.
                _ => {}
            }
        }
        self.connection.data_to_send(&mut self.output);
        if self.connection.should_close_transport() {
            self.transport_closed = true;
        }
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Message(message) => format!("message of {} bytes", message.len()),
        Event::Ping(payload) => format!("ping of {} bytes", payload.len()),
        Event::Pong(payload) => format!("pong of {} bytes", payload.len()),
        Event::Closed(closed) => format!("closed ({})", closed.code()),
        other => format!("{other:?}"),
    }
}

impl Target for EchoTarget {
    fn deliver(&mut self, bytes: &[u8]) {
        if self.transport_closed {
            self.errors
                .push("the runner delivered bytes after the transport closed".into());
            return;
        }
        self.connection.receive_data(bytes);
        self.pump();
    }

    fn deliver_eof(&mut self) {
        if self.transport_closed {
            return;
        }
        self.connection.receive_eof();
        self.pump();
    }

    fn collect(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            // Hands a 16 MiB echo over without copying it.
            std::mem::swap(out, &mut self.output);
        } else {
            out.append(&mut self.output);
        }
    }

    fn has_closed(&self) -> bool {
        self.transport_closed
    }

    fn report(&self) -> Option<EngineReport> {
        Some(EngineReport {
            closed: self.closed.clone(),
            events_after_closed: self.events_after_closed.clone(),
            errors: self.errors.clone(),
            final_state: Some(self.connection.state()),
        })
    }
}

/// Starts [`EchoTarget`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemory;

impl TargetFactory for InMemory {
    fn name(&self) -> &str {
        "sockeye-proto Connection (in memory)"
    }

    fn start(&self, role: Role, settings: &Settings) -> Box<dyn Target> {
        Box::new(EchoTarget::new(role, settings))
    }
}
