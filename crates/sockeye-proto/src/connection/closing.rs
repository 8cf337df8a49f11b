//! Ending a connection (RFC 6455 section 7): the closing handshake from
//! either side, failing the connection after a violation, and the record
//! of how it ended that [`Event::Closed`] reports.

use std::time::Instant;

use bytes::BytesMut;

use super::{Closed, Connection, Event, Initiator, State};
use crate::close::{CloseCode, CloseFrame};
use crate::error::{Error, ProtocolError};
use crate::frame::OpCode;
use crate::message::Utf8Bytes;
use crate::role::Role;

/// How a connection is ending, or is scheduled to. Boxed in
/// [`Connection`]: most of a connection's life has none of it, and idle
/// connections should be small.
#[derive(Debug, Default)]
pub(super) struct Ending {
    /// The closing handshake [`Connection::close_at`] scheduled, and when:
    /// dropped once the connection starts closing some other way.
    pub(super) scheduled: Option<(Instant, CloseFrame)>,
    /// The Close frame we sent: `None` before, `Some(None)` for an empty one.
    pub(super) close_sent: Option<Option<CloseFrame>>,
    pub(super) close_received: Option<Option<CloseFrame>>,
    pub(super) error: Option<Error>,
    pub(super) initiated_by: Option<Initiator>,
}

impl Connection {
    /// Starts the closing handshake (RFC 6455 section 7.1.2): queues a Close
    /// frame after every message already queued. Messages may still arrive
    /// until the peer's Close does, then [`Event::Closed`] reports the end.
    /// If the peer does not answer within [`Config::close_timeout`], the
    /// connection ends with [`Timeout::Close`].
    ///
    /// `code` must be sendable ([`CloseCode::is_sendable`]) and `reason` at
    /// most 123 bytes.
    ///
    /// [`Config::close_timeout`]: crate::Config::close_timeout
    /// [`Timeout::Close`]: crate::Timeout::Close
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
        self.ending().scheduled = Some((at, frame));
        Ok(())
    }

    /// When the close scheduled by [`Connection::close_at`] is due, while
    /// it still is.
    pub fn scheduled_close(&self) -> Option<Instant> {
        match &self.ending {
            Some(ending) if self.state == State::Open => {
                ending.scheduled.as_ref().map(|(at, _)| *at)
            }
            _ => None,
        }
    }

    /// The close [`Connection::close_at`] scheduled, if it is due by `now`:
    /// taken, so that it is handled once.
    pub(super) fn take_scheduled_close_due(&mut self, now: Instant) -> Option<CloseFrame> {
        let ending = self.ending.as_mut()?;
        let (_, frame) = ending.scheduled.take_if(|(at, _)| now >= *at)?;
        Some(frame)
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
        let at_frame_boundary = self.outgoing.clear_for_abort();
        if self.state == State::Open && at_frame_boundary {
            self.queue_close(Some(CloseFrame::new(code, reason)));
        }
        self.end(Error::Aborted(code), Initiator::Local);
        Ok(())
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
    pub(super) fn start_closing(&mut self, frame: CloseFrame) {
        self.queue_close(Some(frame));
        self.ending().initiated_by = Some(Initiator::Local);
        self.state = State::Closing;
        self.ending().scheduled = None;
    }

    pub(super) fn queue_close(&mut self, frame: Option<CloseFrame>) {
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

    /// The peer's Close frame arrived (RFC 6455 section 5.5.1).
    pub(super) fn close_received(&mut self, frame: Option<CloseFrame>) {
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
    pub(super) fn fail(&mut self, error: ProtocolError) {
        if self.state == State::Open {
            self.queue_close(Some(CloseFrame::new(
                error.close_code(),
                Utf8Bytes::from_static(error.reason()),
            )));
        }
        self.end(Error::Protocol(error), Initiator::Local);
    }

    /// Ends the connection after a failure of this endpoint: Close 1011.
    pub(super) fn fail_internal(&mut self, reason: &'static str) {
        if self.state == State::Open {
            self.queue_close(Some(CloseFrame::new(
                CloseCode::INTERNAL_ERROR,
                Utf8Bytes::from_static(reason),
            )));
        }
        self.end(Error::Internal(reason), Initiator::Local);
    }

    /// Ends the connection abnormally.
    pub(super) fn end(&mut self, error: Error, initiated_by: Initiator) {
        self.ending().error = Some(error);
        self.ending().initiated_by.get_or_insert(initiated_by);
        self.enter_closed();
        self.close_transport = true;
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        if let Some(ending) = &mut self.ending {
            ending.scheduled = None;
        }
        self.input = BytesMut::new();
        self.frame = None;
        self.message = None;
        // zlib's state is large; nothing is compressed or inflated now.
        if let Some(deflate) = &mut self.deflate {
            deflate.release();
        }
    }

    pub(super) fn report_closed(&mut self) -> Option<Event> {
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
    pub(super) fn ending(&mut self) -> &mut Ending {
        self.ending.get_or_insert_with(Box::default)
    }
}
