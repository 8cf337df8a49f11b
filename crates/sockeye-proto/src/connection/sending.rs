//! Queueing data and control frames (RFC 6455 sections 5.4 to 5.6):
//! messages fragmented at the configured frame size, compressed when
//! permessage-deflate was negotiated (RFC 7692 section 6.1), and messages
//! prepared once for many connections.

use bytes::Bytes;

use super::{Connection, RSV1, State};
use crate::error::Error;
use crate::frame::OpCode;
use crate::message::{Message, Utf8Bytes};
use crate::prepared::PreparedMessage;
use crate::role::Role;

impl Connection {
    /// Queues a data message, fragmented at [`Config::outgoing_frame_size`].
    /// With permessage-deflate enabled, a message of at least the
    /// threshold is compressed first.
    ///
    /// Fails with [`Error::AlreadyClosed`] once a Close was sent or
    /// received.
    ///
    /// [`Config::outgoing_frame_size`]: crate::Config::outgoing_frame_size
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
    ///
    /// [`Config::outgoing_frame_size`]: crate::Config::outgoing_frame_size
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

    pub(super) fn check_open(&self) -> Result<(), Error> {
        match self.state {
            State::Open => Ok(()),
            State::Closing | State::Closed => Err(Error::AlreadyClosed),
        }
    }
}
