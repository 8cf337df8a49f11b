//! Messages compressed ahead of time, so that the load generator does not
//! compress every message it sends (that costs it as much as the server's
//! own compression, and made it the bottleneck).
//!
//! With context takeover, a compressed message may refer back to the
//! messages before it, so one cannot be compressed once and sent again
//! anywhere. But in a stream that repeats with a period, it can be: the
//! connection's own engine (with the parameters the server agreed to)
//! compresses two periods, and from then on the second period's frames are
//! sent again and again. Whenever one of them is sent, the bytes behind it
//! are the same as when it was compressed, as far back as it can refer, so
//! it decompresses to the same message. The period is longer than the
//! largest window (32 KiB), so the compressor cannot see the repetition:
//! the server compresses and decompresses as much as with payloads that
//! never repeat. Each frame gets a fresh masking key when it is sent.

use bytes::{Bytes, BytesMut};
use sockeye::DeflateConfig;
use sockeye::proto::extension::deflate::DeflateParams;
use sockeye::proto::frame::FrameHeader;
use sockeye::proto::frame::mask::apply_mask;
use sockeye::proto::{Config, Connection, Message, Role, Utf8Bytes};

use super::payload::Payloads;

/// The largest window permessage-deflate allows (2^15 bytes).
const MAX_WINDOW: usize = 1 << 15;

/// Messages in a period at least, so that most of what is verified
/// differs from message to message...
const MIN_PERIOD: usize = 64;

/// ...unless that would hold more than this many payload bytes: each
/// connection keeps two periods, compressed. (A busy compressing
/// connection peaks at 250-370 KiB on a server, mostly zlib state; two
/// periods of 1 KiB JSON messages take about 38 KiB, of 1 MiB ones about
/// 1.2 MiB.)
const PERIOD_BYTES: usize = 1 << 20;

/// One connection's messages, encoded ahead of time as masked client
/// frames.
#[derive(Debug)]
pub struct Cycle {
    /// Two periods: the messages of the first are sent once, those of the
    /// second over and over.
    messages: Vec<Bytes>,
    period: usize,
}

impl Cycle {
    /// Encodes the payloads `0..period` twice over with a client engine
    /// like the connection's: `config`, and `deflate` with `params` when
    /// the server accepted permessage-deflate.
    pub fn new(
        payloads: &mut Payloads,
        text: bool,
        config: &Config,
        deflate: Option<(DeflateParams, &DeflateConfig)>,
    ) -> Result<Cycle, String> {
        let period = period(payloads.size());
        let mut engine = Connection::new(Role::Client, config.clone());
        if let Some((params, deflate)) = deflate {
            engine.enable_deflate(params, deflate);
        }
        let mut messages = Vec::with_capacity(2 * period);
        let mut wire = Vec::new();
        for index in 0..2 * period {
            let payload = payloads.make((index % period) as u64);
            let message = if text {
                Message::Text(
                    Utf8Bytes::try_from(payload)
                        .map_err(|_| "internal error: a text payload is not UTF-8")?,
                )
            } else {
                Message::Binary(payload)
            };
            engine
                .send(message)
                .map_err(|error| format!("encoding a message failed: {error}"))?;
            wire.clear();
            engine.data_to_send(&mut wire);
            messages.push(Bytes::copy_from_slice(&wire));
        }
        Ok(Cycle { messages, period })
    }

    /// The frames of message `sequence` of the stream.
    pub fn message(&self, sequence: u64) -> &Bytes {
        &self.messages[self.slot(sequence)]
    }

    /// The payload message `sequence` carries: the index to check its
    /// echo against.
    pub fn payload_index(&self, sequence: u64) -> u64 {
        sequence % self.period as u64
    }

    fn slot(&self, sequence: u64) -> usize {
        let period = self.period as u64;
        if sequence < period {
            sequence as usize
        } else {
            (period + sequence % period) as usize
        }
    }
}

/// Messages in one period for payloads of `size` bytes: more than the
/// largest window holds, so that no message is compressed against its
/// previous copy.
fn period(size: usize) -> usize {
    let past_window = MAX_WINDOW.div_ceil(size.max(1)) + 1;
    let for_checks = MIN_PERIOD.min(PERIOD_BYTES / size.max(1));
    past_window.max(for_checks)
}

/// Appends a copy of `frames` (whole masked frames) masked with `key`
/// instead of the keys they carry.
pub fn append_remasked(frames: &[u8], key: [u8; 4], out: &mut BytesMut) {
    let start = out.len();
    out.extend_from_slice(frames);
    let mut at = start;
    while at < out.len() {
        let Ok(Some((header, header_len))) = FrameHeader::parse(&out[at..]) else {
            unreachable!("frames encoded by the engine parse")
        };
        let old = header.mask.expect("client frames are masked");
        let key_at = at + header_len - 4;
        out[key_at..key_at + 4].copy_from_slice(&key);
        let payload = at + header_len..at + header_len + header.payload_len as usize;
        let change = std::array::from_fn(|i| old[i] ^ key[i]);
        apply_mask(&mut out[payload.clone()], change, 0);
        at = payload.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::payload::PayloadKind;
    use sockeye::proto::Event;
    use sockeye::proto::extension::deflate::DeflateNegotiator;

    /// The parameters a server that accepts the default offer agrees to.
    fn accepted(config: &DeflateConfig) -> DeflateParams {
        let offer = config.offer().expect("an offer");
        let (_, params) = DeflateNegotiator::new(*config)
            .select(std::slice::from_ref(&offer))
            .expect("accepted");
        params
    }

    #[test]
    fn the_period_outlasts_the_window() {
        for size in [0, 1, 20, 1024, 40_000, 16 << 20] {
            let period = period(size);
            assert!(
                period * size.max(1) > MAX_WINDOW + size.max(1) - 1,
                "{size}"
            );
            assert!(period >= 2);
        }
        assert_eq!(period(1024), MIN_PERIOD);
        assert_eq!(period(20), MAX_WINDOW.div_ceil(20) + 1);
    }

    /// A server engine decodes a stream that sends the second period
    /// three times over, with fresh keys, to the payloads it should.
    #[test]
    fn a_cycled_compressed_stream_decodes_to_the_payloads() {
        let deflate = DeflateConfig::new();
        let params = accepted(&deflate);
        assert!(
            !params.client_no_context_takeover,
            "context takeover tested"
        );
        let config = Config::new();
        let mut payloads = Payloads::with_kind(PayloadKind::Json, 7, 1024, 8);
        let cycle = Cycle::new(&mut payloads, true, &config, Some((params, &deflate))).unwrap();
        let period = cycle.period as u64;
        let mut server = Connection::new(Role::Server, config);
        server.enable_deflate(params, &deflate);
        let mut wire = BytesMut::new();
        let mut compressed = 0u64;
        for sequence in 0..4 * period {
            let frames = cycle.message(sequence);
            compressed += u64::from(frames[0] & 0x40 != 0);
            let key = (sequence as u32 ^ 0x5a5a_0f0f).to_be_bytes();
            append_remasked(frames, key, &mut wire);
            let sent = &wire[wire.len() - frames.len()..];
            let (header, _) = FrameHeader::parse(sent).unwrap().unwrap();
            assert_eq!(header.mask, Some(key));
            server.receive_data(&wire.split());
            match server.next_event() {
                Some(Event::Message(message)) => {
                    assert!(message.is_text());
                    let index = cycle.payload_index(sequence);
                    assert!(payloads.check(index, message.as_bytes()), "{sequence}");
                }
                other => panic!("message {sequence}: {other:?}"),
            }
        }
        assert_eq!(compressed, 4 * period, "every message was compressed");
        // The second period compresses no better than the first: the
        // compressor did not find the repetition (it would if the period
        // fitted in the window: a tenth of the size).
        let bytes = |range: std::ops::Range<u64>| -> usize {
            range.map(|sequence| cycle.message(sequence).len()).sum()
        };
        let (first, second) = (bytes(0..period), bytes(period..2 * period));
        assert!(second * 10 >= first * 9, "{second} vs {first}");
    }

    /// Without compression the frames are the payloads, masked.
    #[test]
    fn uncompressed_frames_carry_the_payloads() {
        let mut payloads = Payloads::new(1, 300, 2);
        let cycle = Cycle::new(&mut payloads, false, &Config::new(), None).unwrap();
        let mut server = Connection::new(Role::Server, Config::new());
        let mut wire = BytesMut::new();
        for sequence in [0, 1, 63, 64, 65, 1000] {
            append_remasked(cycle.message(sequence), [1, 2, 3, 4], &mut wire);
            server.receive_data(&wire.split());
            let Some(Event::Message(message)) = server.next_event() else {
                panic!("message {sequence}")
            };
            assert!(payloads.check(cycle.payload_index(sequence), message.as_bytes()));
        }
    }
}
