//! Runs one case against one target and compares what happened with
//! what the case expects, to the chunk.

use sockeye_proto::Role;

use crate::case::{Case, Chunking, Ending, Pos};
use crate::check::{
    check_answer, check_failure, check_order, check_report, close_name, compare_messages,
    compare_pongs,
};
use crate::pace::Pace;
use crate::parse::{OutputParser, Reply};
use crate::target::TargetFactory;
use crate::wire::{Encoded, Layout, Rng, encode};

/// The result of one case in one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every way the testee departed from the expectation; empty if it
    /// passed.
    pub problems: Vec<String>,
}

impl Outcome {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The stream of a case, encoded for one role and cut into chunks.
pub(crate) struct Stream {
    encoded: Encoded,
    /// Offset one past each chunk's last byte.
    ends: Vec<usize>,
}

impl Stream {
    fn new(case: &Case, role: Role) -> Stream {
        let mut rng = Rng::from_str_seed(&format!("{role:?} {}", case.id));
        let mut encoded = encode(&case.frames, role == Role::Server, &mut rng);
        if let Some(pos) = case.truncated_before {
            let cut = offset(&encoded.layout, pos);
            encoded.bytes.truncate(cut);
        }
        let len = encoded.bytes.len();
        let mut ends: Vec<usize> = match &case.chunking {
            Chunking::Whole => vec![len],
            Chunking::PerFrame => encoded.layout.iter().map(Layout::end).collect(),
            Chunking::Size(size) => (1..=len.div_ceil(*size))
                .map(|index| (index * size).min(len))
                .collect(),
            Chunking::SplitBefore(positions) => {
                let mut ends: Vec<usize> = positions
                    .iter()
                    .map(|pos| offset(&encoded.layout, *pos))
                    .collect();
                ends.push(len);
                ends
            }
        };
        // A truncated stream ends early, whatever the chunking said.
        for end in &mut ends {
            *end = (*end).min(len);
        }
        ends.push(len);
        ends.sort_unstable();
        ends.dedup();
        ends.retain(|end| *end > 0);
        Stream { encoded, ends }
    }

    /// The index of the chunk holding `pos`.
    pub(crate) fn chunk_of(&self, pos: Pos) -> usize {
        let at = offset(&self.encoded.layout, pos);
        self.ends.partition_point(|end| *end <= at)
    }

    fn bytes(&self, chunk: usize) -> &[u8] {
        let start = if chunk == 0 { 0 } else { self.ends[chunk - 1] };
        &self.encoded.bytes[start..self.ends[chunk]]
    }
}

/// The stream offset of a position.
fn offset(layout: &[Layout], pos: Pos) -> usize {
    match pos {
        Pos::Header(frame, byte) => layout[frame].start + byte,
        Pos::LengthEnd(frame) => layout[frame].length_end,
        Pos::HeaderEnd(frame) => layout[frame].start + layout[frame].header_len - 1,
        Pos::Payload(frame, byte) => layout[frame].start + layout[frame].header_len + byte,
        Pos::FrameEnd(frame) => layout[frame].end() - 1,
    }
}

/// Names chunk `index` of `count` for reports: "chunk 3" or "EOF".
pub(crate) fn chunk_name(index: usize, count: usize) -> String {
    if index >= count {
        "the peer's EOF".to_string()
    } else {
        format!("chunk {}/{count}", index + 1)
    }
}

/// Runs `case` with the testee in `role`.
pub fn run_case(case: &Case, role: Role, factory: &dyn TargetFactory) -> Outcome {
    let stream = Stream::new(case, role);
    let count = stream.ends.len();
    let mut target = factory.start(role, &case.settings);
    let mut parser = OutputParser::new(role == Role::Client);
    let mut problems = Vec::new();
    let mut output = Vec::new();
    let mut closed_after = None;
    if target.has_closed() {
        problems.push("the testee closed the transport before any input".into());
    }
    let mut pace = Pace::new(case, role, &stream, count, target.timing());
    for chunk in 0..count {
        if closed_after.is_some() {
            break;
        }
        target.deliver(stream.bytes(chunk));
        pace.settle(&mut *target, &mut parser, &mut output, chunk);
        if target.has_closed() {
            closed_after = Some(chunk);
        }
    }
    let peer_ends = match case.ending {
        // The closing handshake is done; the server (the peer) closes TCP.
        Some(Ending::Answers { .. }) => role == Role::Client,
        Some(Ending::Abandoned) => true,
        _ => false,
    };
    if closed_after.is_none() && peer_ends {
        target.deliver_eof();
        pace.settle(&mut *target, &mut parser, &mut output, count);
        if target.has_closed() {
            closed_after = Some(count);
        }
    }
    parser.finish(target.has_closed());

    problems.extend(
        parser
            .violations
            .iter()
            .map(|v| format!("invalid output: {v}")),
    );
    let frame_size = case.settings.effective_outgoing_frame_size();
    compare_messages(
        &stream,
        count,
        case,
        &parser.replies,
        frame_size,
        &mut problems,
    );
    compare_pongs(&stream, count, case, &parser.replies, &mut problems);
    check_order(case, &parser.replies, &mut problems);
    if parser
        .replies
        .iter()
        .any(|observed| matches!(observed.reply, Reply::Ping(_)))
    {
        problems.push("the testee sent a Ping, which an echo never does".into());
    }
    let close = parser
        .replies
        .iter()
        .find_map(|observed| match &observed.reply {
            Reply::Close(payload) => Some((payload.clone(), observed.chunk)),
            _ => None,
        });
    match &case.ending {
        Some(Ending::Fails {
            code,
            earliest,
            latest,
        }) => {
            let window = (stream.chunk_of(*earliest), stream.chunk_of(*latest));
            check_failure(*code, window, count, close, closed_after, &mut problems);
        }
        Some(Ending::Answers { code, close_frame }) => {
            let due = stream.chunk_of(Pos::FrameEnd(*close_frame));
            let transport_due = if role == Role::Server { due } else { count };
            check_answer(
                *code,
                due,
                transport_due,
                count,
                close,
                closed_after,
                &mut problems,
            );
        }
        Some(Ending::Abandoned) => {
            if let Some((payload, chunk)) = close {
                problems.push(format!(
                    "expected no Close after the peer's EOF, got {} after {}",
                    close_name(payload.map(|(code, _)| code)),
                    chunk_name(chunk, count)
                ));
            }
            if closed_after != Some(count) {
                problems.push(format!(
                    "expected the testee to close the transport after the peer's EOF, {}",
                    closed_after.map_or("it never did".to_string(), |at| format!(
                        "it did after {}",
                        chunk_name(at, count)
                    ))
                ));
            }
        }
        None => problems.push("the case has no expected ending".into()),
    }
    if let (Some(report), Some(ending)) = (target.report(), &case.ending) {
        check_report(&report, ending, &mut problems);
    }
    problems.extend(target.problems());
    if !problems.is_empty() {
        // Context for the failure: the runner's patience ran out, how the
        // testee ended.
        problems.extend(pace.gave_up.take());
        problems.extend(target.notes());
    }
    Outcome { problems }
}
