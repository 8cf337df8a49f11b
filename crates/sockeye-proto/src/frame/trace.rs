//! Frames as they cross the wire, recorded for debugging output (a
//! command-line client's `-vv`), off unless asked for.

use std::collections::VecDeque;

use super::FrameHeader;

/// The most frames kept between two drains; older ones are dropped (and
/// counted), so a peer cannot grow the record.
pub const MAX_TRACED_FRAMES: usize = 1024;

/// One frame received or queued to send, as
/// [`Connection::drain_frame_trace`](crate::Connection::drain_frame_trace)
/// hands it out: its header (opcode, FIN, RSV bits, mask, length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracedFrame {
    /// `true` for a frame this endpoint queued to send, `false` for one it
    /// received (recorded once its header passed the checks).
    pub outgoing: bool,
    /// The frame's header.
    pub header: FrameHeader,
}

/// The record: bounded, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FrameTrace {
    frames: VecDeque<TracedFrame>,
    dropped: u64,
}

impl FrameTrace {
    pub(crate) fn record(&mut self, outgoing: bool, header: FrameHeader) {
        if self.frames.len() == MAX_TRACED_FRAMES {
            self.frames.pop_front();
            self.dropped += 1;
        }
        self.frames.push_back(TracedFrame { outgoing, header });
    }

    /// Moves the frames into `into`; returns how many were dropped since
    /// the last drain.
    pub(crate) fn drain(&mut self, into: &mut Vec<TracedFrame>) -> u64 {
        into.extend(self.frames.drain(..));
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use crate::frame::{MAX_TRACED_FRAMES, OpCode, TracedFrame};
    use crate::{Config, Connection, Event, Message, Role};

    #[test]
    fn frames_in_and_out_are_recorded_only_when_asked() {
        let mut client = Connection::new(Role::Client, Config::default());
        let mut server = Connection::new(Role::Server, Config::default());
        let mut wire = Vec::new();
        let mut frames = Vec::new();

        client.send(Message::text("untraced")).unwrap();
        client.data_to_send(&mut wire);
        server.receive_data(&wire);
        assert!(matches!(server.next_event(), Some(Event::Message(_))));
        assert_eq!(server.drain_frame_trace(&mut frames), 0);
        assert!(frames.is_empty());

        server.trace_frames(true);
        wire.clear();
        client.send(Message::binary(vec![0u8; 300])).unwrap();
        client.send_ping(b"p".to_vec()).unwrap();
        client.data_to_send(&mut wire);
        server.receive_data(&wire);
        while server.next_event().is_some() {}
        server.send(Message::text("reply")).unwrap();
        assert_eq!(server.drain_frame_trace(&mut frames), 0);
        let summary: Vec<(bool, OpCode, bool, bool, u64)> = frames
            .iter()
            .map(|TracedFrame { outgoing, header }| {
                (
                    *outgoing,
                    header.opcode,
                    header.fin,
                    header.mask.is_some(),
                    header.payload_len,
                )
            })
            .collect();
        // The client's Ping overtakes its data on the wire, and the Pong is
        // queued as soon as the Ping is read, before the data is.
        assert_eq!(
            summary,
            [
                (false, OpCode::Ping, true, true, 1),
                (true, OpCode::Pong, true, false, 1),
                (false, OpCode::Binary, true, true, 300),
                (true, OpCode::Text, true, false, 5),
            ]
        );
        server.trace_frames(false);
        server.send(Message::text("again")).unwrap();
        frames.clear();
        assert_eq!(server.drain_frame_trace(&mut frames), 0);
        assert!(frames.is_empty());
    }

    #[test]
    fn the_record_is_bounded() {
        let mut server = Connection::new(Role::Server, Config::default());
        server.trace_frames(true);
        for _ in 0..MAX_TRACED_FRAMES + 10 {
            server.send(Message::text("x")).unwrap();
        }
        let mut frames = Vec::new();
        assert_eq!(server.drain_frame_trace(&mut frames), 10);
        assert_eq!(frames.len(), MAX_TRACED_FRAMES);
    }
}
