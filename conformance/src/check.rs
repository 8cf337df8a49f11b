//! Comparing what the testee did with what a case expects: messages and
//! Pongs (payload, order, timing, fragmentation), the ending (which Close,
//! after which chunk, who closed the transport) and what the engine itself
//! reported.

use std::fmt::Write as _;

use sockeye_proto::State;

use crate::case::{Case, Ending, Expected, Kind};
use crate::parse::{Observed, Reply};
use crate::run::{Stream, chunk_name};
use crate::target::EngineReport;

pub(crate) fn compare_messages(
    stream: &Stream,
    count: usize,
    case: &Case,
    replies: &[Observed],
    frame_size: usize,
    problems: &mut Vec<String>,
) {
    let expected: Vec<&Expected> = case
        .replies
        .iter()
        .filter(|reply| reply.kind != Kind::Pong)
        .collect();
    let observed: Vec<(bool, &[u8], &[usize], usize)> = replies
        .iter()
        .filter_map(|observed| match &observed.reply {
            Reply::Message {
                text,
                payload,
                frame_sizes,
            } => Some((*text, &payload[..], &frame_sizes[..], observed.chunk)),
            _ => None,
        })
        .collect();
    if expected.len() != observed.len() {
        problems.push(format!(
            "expected {} echoed message(s), got {}{}",
            expected.len(),
            observed.len(),
            summarize(
                observed
                    .iter()
                    .map(|(text, payload, _, _)| (*text, *payload))
            )
        ));
    }
    for (index, (want, (text, payload, sizes, chunk))) in
        expected.iter().zip(observed.iter()).enumerate()
    {
        let number = index + 1;
        if (want.kind == Kind::Text) != *text {
            problems.push(format!(
                "message {number}: expected {:?}, got {}",
                want.kind,
                if *text { "Text" } else { "Binary" }
            ));
        }
        if let Some(difference) = differ(&want.payload, payload) {
            problems.push(format!("message {number}: {difference}"));
        }
        let due = stream.chunk_of(want.by);
        if *chunk > due {
            problems.push(format!(
                "message {number}: echoed after {}, expected by {}",
                chunk_name(*chunk, count),
                chunk_name(due, count)
            ));
        }
        let want_sizes = frame_sizes(payload.len(), frame_size);
        if **sizes != want_sizes[..] {
            problems.push(format!(
                "message {number}: sent in frames of {} bytes, expected {} (outgoing frame size {frame_size})",
                short_list(sizes),
                short_list(&want_sizes)
            ));
        }
    }
}

pub(crate) fn compare_pongs(
    stream: &Stream,
    count: usize,
    case: &Case,
    replies: &[Observed],
    problems: &mut Vec<String>,
) {
    let expected: Vec<&Expected> = case
        .replies
        .iter()
        .filter(|reply| reply.kind == Kind::Pong)
        .collect();
    let observed: Vec<(&[u8], usize)> = replies
        .iter()
        .filter_map(|observed| match &observed.reply {
            Reply::Pong(payload) => Some((&payload[..], observed.chunk)),
            _ => None,
        })
        .collect();
    if expected.len() != observed.len() {
        problems.push(format!(
            "expected {} pong(s), got {}",
            expected.len(),
            observed.len()
        ));
    }
    for (index, (want, (payload, chunk))) in expected.iter().zip(observed.iter()).enumerate() {
        let number = index + 1;
        if let Some(difference) = differ(&want.payload, payload) {
            problems.push(format!("pong {number}: {difference}"));
        }
        let due = stream.chunk_of(want.by);
        if *chunk > due {
            problems.push(format!(
                "pong {number}: sent after {}, expected by {}",
                chunk_name(*chunk, count),
                chunk_name(due, count)
            ));
        }
    }
}

/// Checks `case.ahead`: expected replies are matched to observed ones by
/// their rank among replies of their kind (messages or pongs).
pub(crate) fn check_order(case: &Case, replies: &[Observed], problems: &mut Vec<String>) {
    let is_pong = |kind: Kind| kind == Kind::Pong;
    let position = |index: usize| {
        let pong = is_pong(case.replies[index].kind);
        let rank = case.replies[..index]
            .iter()
            .filter(|reply| is_pong(reply.kind) == pong)
            .count();
        replies
            .iter()
            .enumerate()
            .filter(|(_, observed)| match observed.reply {
                Reply::Pong(_) => pong,
                Reply::Message { .. } => !pong,
                _ => false,
            })
            .nth(rank)
            .map(|(position, _)| position)
    };
    let name = |index: usize| {
        let reply = &case.replies[index];
        format!("{:?} of {} bytes", reply.kind, reply.payload.len())
    };
    for &(first, second) in &case.ahead {
        if let (Some(a), Some(b)) = (position(first), position(second))
            && a > b
        {
            problems.push(format!(
                "expected the {} to be sent ahead of the {}, it came after",
                name(first),
                name(second)
            ));
        }
    }
}

pub(crate) type SeenClose = Option<(Option<(u16, Vec<u8>)>, usize)>;

pub(crate) fn close_name(code: Option<u16>) -> String {
    code.map_or_else(
        || "an empty close".to_string(),
        |code| format!("close {code}"),
    )
}

pub(crate) fn check_failure(
    code: u16,
    (earliest, latest): (usize, usize),
    count: usize,
    close: SeenClose,
    closed_after: Option<usize>,
    problems: &mut Vec<String>,
) {
    let window = if earliest == latest {
        format!("after {}", chunk_name(earliest, count))
    } else {
        format!(
            "after one of {} to {}",
            chunk_name(earliest, count),
            chunk_name(latest, count)
        )
    };
    let want = format!("expected close {code} {window}");
    match (close, closed_after) {
        (None, None) => problems.push(format!(
            "{want}, got no close and an open transport after all {count} chunks"
        )),
        (None, Some(chunk)) => problems.push(format!(
            "{want}, got the transport closed without a Close frame after {}",
            chunk_name(chunk, count)
        )),
        (Some((payload, chunk)), transport) => {
            let got = payload.as_ref().map(|(code, _)| *code);
            if got != Some(code) || chunk < earliest || chunk > latest {
                problems.push(format!(
                    "{want}, got {} after {}",
                    close_name(got),
                    chunk_name(chunk, count)
                ));
            }
            if transport != Some(chunk) {
                problems.push(format!(
                    "after failing, the transport must close at once (7.1.7): Close sent after {}, transport {}",
                    chunk_name(chunk, count),
                    transport.map_or("still open".to_string(), |at| format!(
                        "closed after {}",
                        chunk_name(at, count)
                    ))
                ));
            }
        }
    }
}

pub(crate) fn check_answer(
    code: Option<u16>,
    due: usize,
    transport_due: usize,
    count: usize,
    close: SeenClose,
    closed_after: Option<usize>,
    problems: &mut Vec<String>,
) {
    let want = format!(
        "expected {} answering the peer's Close after {}",
        close_name(code),
        chunk_name(due, count)
    );
    match close {
        None => problems.push(format!("{want}, got no close")),
        Some((payload, chunk)) => {
            let got = payload.as_ref().map(|(code, _)| *code);
            if got != code || chunk != due {
                problems.push(format!(
                    "{want}, got {} after {}",
                    close_name(got),
                    chunk_name(chunk, count)
                ));
            }
        }
    }
    if closed_after != Some(transport_due) {
        let who = if transport_due < count {
            "a server closes the transport right after the closing handshake (7.1.1)"
        } else {
            "a client keeps the transport open until the server closes it, then closes (7.1.1)"
        };
        problems.push(format!(
            "{who}: expected the testee to close it after {}, {}",
            chunk_name(transport_due, count),
            closed_after.map_or("it never did".to_string(), |at| format!(
                "it did after {}",
                chunk_name(at, count)
            ))
        ));
    }
}

pub(crate) fn check_report(report: &EngineReport, ending: &Ending, problems: &mut Vec<String>) {
    for error in &report.errors {
        problems.push(format!("echo application: {error}"));
    }
    for event in &report.events_after_closed {
        problems.push(format!("engine reported {event} after Event::Closed"));
    }
    let Some(closed) = &report.closed else {
        problems.push("engine never reported Event::Closed".into());
        return;
    };
    if report
        .final_state
        .is_some_and(|state| state != State::Closed)
    {
        problems.push(format!(
            "engine state is {:?} at the end, expected Closed",
            report.final_state.expect("checked")
        ));
    }
    let (local, code, clean, sent, received) = match ending {
        Ending::Fails { code, .. } => (true, *code, false, Some(*code), None),
        Ending::Answers { code, .. } => (false, code.unwrap_or(1005), true, *code, *code),
        Ending::Abandoned => (false, 1006, false, None, None),
    };
    let summary = |local: bool, code: u16, error: Option<&str>, sent, received| {
        format!(
            "initiated by {}, code {code}, sent {}, received {}, {}",
            if local { "Local" } else { "Remote" },
            close_name(sent),
            close_name(received),
            error.map_or("clean".to_string(), |error| format!("error: {error}"))
        )
    };
    if closed.local != local
        || closed.code != code
        || closed.error.is_none() != clean
        || closed.sent != sent
        || closed.received != received
    {
        problems.push(format!(
            "engine reported Closed {{ {} }}, expected {{ {} }}",
            summary(
                closed.local,
                closed.code,
                closed.error.as_deref(),
                closed.sent,
                closed.received
            ),
            summary(local, code, (!clean).then_some("any"), sent, received)
        ));
    }
}

/// The frame payload sizes a message of `len` bytes must be sent in.
pub fn frame_sizes(len: usize, frame_size: usize) -> Vec<usize> {
    if len == 0 {
        return vec![0];
    }
    let mut sizes = vec![frame_size; len / frame_size];
    if !len.is_multiple_of(frame_size) {
        sizes.push(len % frame_size);
    }
    sizes
}

fn short_list(sizes: &[usize]) -> String {
    if sizes.len() <= 6 {
        return format!("{sizes:?}");
    }
    let mut text = format!("{:?}", &sizes[..3]);
    text.pop();
    let _ = write!(
        text,
        ", ... ({} frames) ..., {}]",
        sizes.len(),
        sizes[sizes.len() - 1]
    );
    text
}

/// How two payloads differ, without printing megabytes.
fn differ(want: &[u8], got: &[u8]) -> Option<String> {
    if want == got {
        return None;
    }
    let first = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    Some(format!(
        "payload differs: expected {} bytes {}, got {} bytes {} (first difference at byte {first})",
        want.len(),
        preview(want),
        got.len(),
        preview(got)
    ))
}

fn preview(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes.len() > 16 {
        format!("{shown}...")
    } else {
        shown
    }
}

fn summarize<'a>(messages: impl Iterator<Item = (bool, &'a [u8])>) -> String {
    let list: Vec<String> = messages
        .take(4)
        .map(|(text, payload)| {
            format!(
                "{} {} bytes {}",
                if text { "text" } else { "binary" },
                payload.len(),
                preview(payload)
            )
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" ({})", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_checked_by_rank_within_each_kind() {
        use crate::wire::Frame;
        let case = Case::new("0", "order")
            .echoed(Frame::binary("data"))
            .ponged(Frame::ping("ping"))
            .ahead(1, 0);
        let message = Observed {
            reply: Reply::Message {
                text: false,
                payload: b"data".to_vec(),
                frame_sizes: vec![4],
            },
            chunk: 0,
        };
        let pong = Observed {
            reply: Reply::Pong(b"ping".to_vec()),
            chunk: 0,
        };
        let mut problems = Vec::new();
        check_order(&case, &[pong.clone(), message.clone()], &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        check_order(&case, &[message, pong], &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("Pong of 4 bytes to be sent ahead of the Binary"));
    }

    #[test]
    fn frame_sizes_split_exactly() {
        assert_eq!(frame_sizes(0, 10), [0]);
        assert_eq!(frame_sizes(10, 10), [10]);
        assert_eq!(frame_sizes(25, 10), [10, 10, 5]);
        assert_eq!(frame_sizes(3, 1), [1, 1, 1]);
    }

    #[test]
    fn differ_names_the_first_difference() {
        assert_eq!(differ(b"abc", b"abc"), None);
        let text = differ(b"abc", b"abd").unwrap();
        assert!(text.contains("at byte 2"), "{text}");
        let text = differ(b"abc", b"ab").unwrap();
        assert!(text.contains("at byte 2"), "{text}");
    }
}
