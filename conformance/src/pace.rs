//! Pacing a case over a real transport, where the runner cannot know when
//! the testee has processed a chunk.
//!
//! In memory, a chunk's whole reaction is there when `deliver` returns.
//! Over TCP the testee runs on its own, so the runner must not send the
//! next chunk too early (a reaction that is merely slow would be counted
//! against a later chunk) and must not miss a reaction that comes too
//! early (a premature Close, seen only after the chunk that allows it,
//! would pass). After each chunk it therefore:
//!
//! 1. waits for every reaction due by this chunk: the echoes and Pongs
//!    whose last byte it held, the Close and the closed transport the
//!    case's ending requires (and, once the testee has sent a Close that
//!    must be followed by closing the transport, that close), as long as
//!    output keeps coming or for at most [`Timing::patience`] of silence;
//! 2. after a *guard* chunk, the last one before a Close or a closed
//!    transport becomes allowed, waits until the testee has been silent
//!    for [`Timing::quiet`]: whatever it would do too early, in reaction to
//!    this chunk or any before, shows up before the next chunk is sent.
//!
//! Echoes and Pongs have no guard: coming early is no fault. So a case
//! waits for quiet once or twice, however many chunks it has, and
//! per-byte cases stay fast. The rule assumes the testee reacts to a
//! chunk within `quiet`; one slower than that is judged as if it had
//! reacted to the next chunk, which can only make a case fail, except
//! that a premature reaction slower than `quiet` would go unseen.

use std::time::Duration;

use sockeye_proto::Role;

use crate::case::{Case, Ending, Kind, Pos};
use crate::parse::{OutputParser, Reply};
use crate::run::Stream;
use crate::target::{Target, Timing};

/// The longest one settle may take while output keeps coming.
const MAX_SETTLE: Duration = Duration::from_secs(120);

/// When each reaction of a case is due, for one role.
pub(crate) struct Pace {
    timing: Option<Timing>,
    /// Per chunk (and one more for the peer's EOF): the echoes and the
    /// Pongs due by then.
    messages_due: Vec<usize>,
    pongs_due: Vec<usize>,
    /// The first chunk after which the testee's Close must be there.
    close_from: Option<usize>,
    /// The first chunk after which the transport must be closed.
    transport_from: Option<usize>,
    /// Whether the testee's Close must be followed at once by closing the
    /// transport (failing; a server answering a Close).
    close_then_transport: bool,
    /// The chunks after which the runner waits for quiet.
    guards: Vec<usize>,
    /// Why the runner stopped waiting, if it did: the testee was late.
    pub(crate) gave_up: Option<String>,
}

impl Pace {
    /// The pacing of `case` in `role`; `timing` is the target's (`None`:
    /// synchronous, no waiting).
    pub(crate) fn new(
        case: &Case,
        role: Role,
        stream: &Stream,
        count: usize,
        timing: Option<Timing>,
    ) -> Pace {
        let due_by = |pong: bool| {
            let dues: Vec<usize> = case
                .replies
                .iter()
                .filter(|reply| (reply.kind == Kind::Pong) == pong)
                .map(|reply| stream.chunk_of(reply.by))
                .collect();
            (0..=count)
                .map(|chunk| dues.iter().filter(|due| **due <= chunk).count())
                .collect()
        };
        let mut pace = Pace {
            timing,
            messages_due: due_by(false),
            pongs_due: due_by(true),
            close_from: None,
            transport_from: None,
            close_then_transport: false,
            guards: Vec::new(),
            gave_up: None,
        };
        let before = |chunk: usize| chunk.checked_sub(1);
        match &case.ending {
            Some(Ending::Fails {
                earliest, latest, ..
            }) => {
                let latest = stream.chunk_of(*latest);
                pace.close_from = Some(latest);
                pace.transport_from = Some(latest);
                pace.close_then_transport = true;
                pace.guards.extend(before(stream.chunk_of(*earliest)));
            }
            Some(Ending::Answers { close_frame, .. }) => {
                let due = stream.chunk_of(Pos::FrameEnd(*close_frame));
                pace.close_from = Some(due);
                pace.guards.extend(before(due));
                if role == Role::Server {
                    pace.transport_from = Some(due);
                    pace.close_then_transport = true;
                } else {
                    // A client keeps the transport open until the peer's
                    // EOF: check that it does after the last chunk.
                    pace.transport_from = Some(count);
                    pace.guards.extend(before(count));
                }
            }
            Some(Ending::Abandoned) => {
                pace.transport_from = Some(count);
                pace.guards.extend(before(count));
            }
            None => {}
        }
        pace
    }

    /// Collects the testee's reaction to chunk `chunk` (`count` for the
    /// peer's EOF) into `parser`, waiting as the module docs say.
    pub(crate) fn settle(
        &mut self,
        target: &mut dyn Target,
        parser: &mut OutputParser,
        output: &mut Vec<u8>,
        chunk: usize,
    ) {
        let mut take = |target: &mut dyn Target, parser: &mut OutputParser| {
            output.clear();
            target.collect(output);
            parser.feed(output, chunk);
            target.has_closed()
        };
        if take(target, parser) {
            return;
        }
        let Some(timing) = self.timing else { return };
        if self.gave_up.is_some() {
            return;
        }
        let started = std::time::Instant::now();
        while let Some(missing) = self.missing(chunk, parser) {
            if started.elapsed() > MAX_SETTLE || !target.wait(timing.patience) {
                self.gave_up = Some(format!(
                    "the runner gave up waiting for {missing} after {} ({} s without output)",
                    crate::run::chunk_name(chunk, self.messages_due.len() - 1),
                    timing.patience.as_secs_f64()
                ));
                return;
            }
            if take(target, parser) {
                return;
            }
        }
        if self.guards.contains(&chunk) {
            while started.elapsed() < MAX_SETTLE && target.wait(timing.quiet) {
                if take(target, parser) {
                    return;
                }
            }
        }
    }

    /// The first reaction due by `chunk` that has not come yet (the
    /// transport is still open).
    fn missing(&self, chunk: usize, parser: &OutputParser) -> Option<String> {
        let (mut messages, mut pongs, mut close) = (0, 0, false);
        for observed in &parser.replies {
            match observed.reply {
                Reply::Message { .. } => messages += 1,
                Reply::Pong(_) => pongs += 1,
                Reply::Close(_) => close = true,
                Reply::Ping(_) => {}
            }
        }
        let due = |from: Option<usize>| from.is_some_and(|from| chunk >= from);
        if messages < self.messages_due[chunk] {
            Some(format!("echo {}", messages + 1))
        } else if pongs < self.pongs_due[chunk] {
            Some(format!("pong {}", pongs + 1))
        } else if due(self.close_from) && !close {
            Some("the testee's Close".into())
        } else if due(self.transport_from) || (close && self.close_then_transport) {
            Some("the testee to close the transport".into())
        } else {
            None
        }
    }
}
