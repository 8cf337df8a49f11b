//! permessage-deflate in the engine (RFC 7692 sections 6 and 7.2): what
//! goes on the wire, what is accepted, and how violations close.

mod common;

use std::io::Write;

use common::*;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator, DeflateParams};
use sockeye_proto::handshake::ExtensionNegotiator;
use sockeye_proto::{CloseCode, Config, Connection, Event, Message, Role};

const RSV1: u8 = 0b100;

/// What a server and a client agree on for `client_config`'s offer and
/// `server_config`'s policy, by running the real negotiation.
fn negotiate(client_config: DeflateConfig, server_config: DeflateConfig) -> DeflateParams {
    let offer = client_config.offer().expect("deflate is enabled");
    let answer = DeflateNegotiator::new(server_config).negotiate(&[offer]);
    client_config.accept_response(&answer[0]).unwrap()
}

fn pair_with(
    config: Config,
    params: DeflateParams,
    local: DeflateConfig,
) -> (Connection, Connection) {
    let mut client = Connection::new(Role::Client, config.clone());
    let mut server = Connection::new(Role::Server, config);
    client.enable_deflate(params, &local);
    server.enable_deflate(params, &local);
    (client, server)
}

fn pair(params: DeflateParams) -> (Connection, Connection) {
    pair_with(Config::default(), params, DeflateConfig::new())
}

/// Moves everything `from` queued into `to` and returns the frames and the
/// events they produced.
fn transfer(from: &mut Connection, to: &mut Connection) -> (Vec<Decoded>, Vec<Event>) {
    let mut wire = Vec::new();
    from.data_to_send(&mut wire);
    let frames = decode_all(&wire);
    let events = feed(to, &wire);
    (frames, events)
}

/// Raw DEFLATE of `data` ended by a sync flush, tail removed: what a peer
/// following section 7.2.1 sends, made by a different encoder than ours.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.flush().unwrap();
    let mut out = encoder.finish().unwrap();
    // finish() appends a final empty block after the sync flush; cut back
    // to the flush's 00 00 ff ff, then remove it.
    let end = out
        .windows(4)
        .rposition(|w| w == [0, 0, 0xff, 0xff])
        .unwrap();
    out.truncate(end);
    out
}

fn closed_code(events: &[Event]) -> Option<CloseCode> {
    events.iter().find_map(|event| match event {
        Event::Closed(closed) => Some(closed.code()),
        _ => None,
    })
}

fn messages(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn rfc7692_examples_are_understood() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let mut server = Connection::new(Role::Server, Config::default());
    server.enable_deflate(params, &DeflateConfig::new());
    // Section 7.2.3.1, then 7.2.3.2's second "Hello" sharing the window.
    let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    let mut wire = frame(true, RSV1, 1, Some(KEY), &first);
    wire.extend(frame(true, RSV1, 1, Some(KEY), &second));
    // Section 7.2.3.1's fragmented form: RSV1 on the first frame only.
    wire.extend(frame(false, RSV1, 1, Some(KEY), &first[..3]));
    wire.extend(frame(true, 0, 0, Some(KEY), &first[3..]));
    // Section 7.2.3.4: a stored block.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
    ];
    wire.extend(frame(true, RSV1, 1, Some(KEY), &stored));
    let events = feed(&mut server, &wire);
    assert_eq!(messages(&events), vec![Message::text("Hello"); 4]);
}

#[test]
fn messages_roundtrip_both_ways_for_every_negotiation() {
    let text = r#"{"channel":"trades","data":{"price":"101.25","qty":"3"}}"#.repeat(40);
    // A period zlib can match even with a 9-bit window (whose longest
    // distance is 512 - 262 bytes).
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i % 97) as u8).collect();
    for server_takeover in [true, false] {
        for client_takeover in [true, false] {
            for bits in [None, Some(9), Some(12), Some(15)] {
                let client_config = DeflateConfig::new()
                    .server_no_context_takeover(!server_takeover)
                    .client_no_context_takeover(!client_takeover)
                    .server_max_window_bits(bits)
                    .client_max_window_bits(bits);
                let params = negotiate(client_config, DeflateConfig::new());
                let (mut client, mut server) = pair(params);
                for _ in 0..3 {
                    client.send_text(text.clone()).unwrap();
                    client.send_binary(binary.clone()).unwrap();
                    let (frames, events) = transfer(&mut client, &mut server);
                    assert!(frames.iter().all(|f| f.rsv == RSV1 && f.masked));
                    assert!(frames[0].payload.len() < text.len() / 4);
                    let got = messages(&events);
                    assert_eq!(got.len(), 2);
                    assert_eq!(got[0].as_text(), Some(text.as_str()));
                    server.send(got[0].clone()).unwrap();
                    server.send(got[1].clone()).unwrap();
                    let (frames, events) = transfer(&mut server, &mut client);
                    assert!(frames.iter().all(|f| f.rsv == RSV1 && !f.masked));
                    assert_eq!(messages(&events), got);
                }
            }
        }
    }
}

#[test]
fn threshold_and_opt_out_send_plain_frames() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let local = DeflateConfig::new().threshold(100);
    let (mut client, mut server) = pair_with(Config::default(), params, local);
    client.send_text("short").unwrap();
    client.send_text("x".repeat(100)).unwrap();
    client
        .send_uncompressed(Message::text("y".repeat(1000)))
        .unwrap();
    let (frames, events) = transfer(&mut client, &mut server);
    let rsv: Vec<u8> = frames.iter().map(|f| f.rsv).collect();
    assert_eq!(rsv, vec![0, RSV1, 0]);
    assert_eq!(messages(&events).len(), 3);
    assert_eq!(messages(&events)[2].len(), 1000);
}

#[test]
fn compressed_messages_fragment_with_rsv1_on_the_first_frame_only() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let config = Config::default().outgoing_frame_size(64);
    let (mut client, mut server) = pair_with(config, params, DeflateConfig::new());
    let noise: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    client.send_binary(noise.clone()).unwrap();
    let (frames, events) = transfer(&mut client, &mut server);
    assert!(frames.len() > 2);
    assert_eq!(frames[0].rsv, RSV1);
    assert_eq!(frames[0].opcode, 2);
    assert!(frames[1..].iter().all(|f| f.rsv == 0 && f.opcode == 0));
    assert_eq!(messages(&events), vec![Message::binary(noise)]);
}

#[test]
fn control_frames_are_never_compressed() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let (mut client, mut server) =
        pair_with(Config::default(), params, DeflateConfig::new().threshold(0));
    client.send_ping(vec![b'p'; 100]).unwrap();
    client
        .send_close(CloseCode::NORMAL, &"r".repeat(100))
        .unwrap();
    let (frames, _) = transfer(&mut client, &mut server);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.rsv == 0));
}

#[test]
fn empty_messages_roundtrip_compressed() {
    for takeover in [true, false] {
        let config = DeflateConfig::new()
            .client_no_context_takeover(!takeover)
            .server_no_context_takeover(!takeover);
        let params = negotiate(config, DeflateConfig::new());
        let (mut client, mut server) = pair_with(Config::default(), params, config.threshold(0));
        for text in ["", "hello hello hello", "", ""] {
            client.send_text(text).unwrap();
            let (frames, events) = transfer(&mut client, &mut server);
            // Without takeover, a message that does not shrink goes plain.
            let shrinks = takeover || !text.is_empty();
            assert_eq!(frames[0].rsv, if shrinks { RSV1 } else { 0 });
            assert_eq!(messages(&events), vec![Message::text(text)]);
        }
    }
}

#[test]
fn rsv1_where_it_may_not_be_fails_with_1002() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ping", frame(true, RSV1, 9, Some(KEY), b"")),
        (
            "close",
            frame(true, RSV1, 8, Some(KEY), &close_payload(1000, "")),
        ),
        ("continuation", {
            let mut wire = frame(false, RSV1, 1, Some(KEY), &deflate(b"hello")[..2]);
            wire.extend(frame(true, RSV1, 0, Some(KEY), &deflate(b"hello")[2..]));
            wire
        }),
        ("rsv2", frame(true, 0b010, 1, Some(KEY), b"x")),
    ];
    for (name, wire) in cases {
        let mut server = Connection::new(Role::Server, Config::default());
        server.enable_deflate(params, &DeflateConfig::new());
        let events = feed(&mut server, &wire);
        assert_eq!(
            closed_code(&events),
            Some(CloseCode::PROTOCOL_ERROR),
            "{name}"
        );
    }
    // Without negotiation, RSV1 is a reserved bit.
    let mut server = Connection::new(Role::Server, Config::default());
    let events = feed(
        &mut server,
        &frame(true, RSV1, 1, Some(KEY), &deflate(b"hi")),
    );
    assert_eq!(closed_code(&events), Some(CloseCode::PROTOCOL_ERROR));
}

#[test]
fn invalid_deflate_data_fails_with_1007_after_earlier_messages() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let mut server = Connection::new(Role::Server, Config::default());
    server.enable_deflate(params, &DeflateConfig::new());
    let mut wire = frame(true, RSV1, 1, Some(KEY), &deflate(b"first"));
    // BTYPE 11 is reserved in DEFLATE.
    wire.extend(frame(true, RSV1, 2, Some(KEY), &[0xff, 0xff, 0xff, 0xff]));
    wire.extend(frame(true, RSV1, 1, Some(KEY), &deflate(b"never")));
    let events = feed(&mut server, &wire);
    assert_eq!(messages(&events), vec![Message::text("first")]);
    assert_eq!(closed_code(&events), Some(CloseCode::INVALID_PAYLOAD));
}

#[test]
fn invalid_utf8_inside_a_compressed_message_fails_fast() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let mut server = Connection::new(Role::Server, Config::default());
    server.enable_deflate(params, &DeflateConfig::new());
    let mut text = b"valid prefix ".to_vec();
    text.extend_from_slice(&[0xc0, 0x80]);
    text.extend(std::iter::repeat_n(b'a', 10_000));
    let compressed = deflate(&text);
    // Only the first fragment arrives: the bad bytes are in it.
    let wire = frame(false, RSV1, 1, Some(KEY), &compressed);
    let events = feed(&mut server, &wire);
    assert_eq!(closed_code(&events), Some(CloseCode::INVALID_PAYLOAD));
}

#[test]
fn inflated_size_counts_against_max_message_size() {
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let config = Config::default().max_message_size(64 * 1024);
    for (size, fragments) in [(64 * 1024, 1), (64 * 1024 + 1, 1), (64 * 1024 + 1, 7)] {
        let mut server = Connection::new(Role::Server, config.clone());
        server.enable_deflate(params, &DeflateConfig::new());
        let compressed = deflate(&vec![b'a'; size]);
        let piece = compressed.len().div_ceil(fragments);
        let mut wire = Vec::new();
        for (i, chunk) in compressed.chunks(piece).enumerate() {
            let last = (i + 1) * piece >= compressed.len();
            let (rsv, opcode) = if i == 0 { (RSV1, 1) } else { (0, 0) };
            wire.extend(frame(last, rsv, opcode, Some(KEY), chunk));
        }
        let events = feed(&mut server, &wire);
        if size <= 64 * 1024 && fragments == 1 {
            assert_eq!(messages(&events)[0].len(), size);
        } else {
            assert_eq!(
                closed_code(&events),
                Some(CloseCode::MESSAGE_TOO_BIG),
                "{size} in {fragments}"
            );
        }
    }
}

#[test]
fn a_small_window_is_honoured_on_the_wire() {
    // A client limiting the server to 2^9 bytes of window must never see a
    // back-reference further than 512 bytes: inflate with exactly that
    // window (zlib's minimum for raw inflate) to check.
    let params = negotiate(
        DeflateConfig::new().server_max_window_bits(Some(9)),
        DeflateConfig::new(),
    );
    assert_eq!(params.server_max_window_bits, 9);
    let (mut client, mut server) = pair(params);
    // Repeats 600 bytes apart: a 32 KiB window would reference them.
    let block: Vec<u8> = (0..600u32).map(|i| (i * 7 % 256) as u8).collect();
    let message = block.repeat(20);
    server.send_binary(message.clone()).unwrap();
    let (frames, events) = transfer(&mut server, &mut client);
    assert_eq!(messages(&events), vec![Message::binary(message.clone())]);
    let mut inflater = flate2::Decompress::new_with_window_bits(false, 9);
    let mut input = frames[0].payload.clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = vec![0u8; message.len() + 100];
    inflater
        .decompress(&input, &mut out, flate2::FlushDecompress::Sync)
        .expect("a 512-byte window suffices");
    assert_eq!(&out[..inflater.total_out() as usize], &message[..]);
}

#[test]
fn prepared_messages_share_their_frames_where_parameters_allow() {
    use sockeye_proto::PreparedMessage;
    let text = r#"{"room":"lobby","from":"ada","text":"hello everyone, hello again"}"#.repeat(8);
    let prepared = PreparedMessage::new(Message::text(text.clone()));
    let no_takeover = negotiate(
        DeflateConfig::new().server_no_context_takeover(true),
        DeflateConfig::new(),
    );
    let takeover = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let mut wires = Vec::new();
    for params in [
        Some(no_takeover),
        Some(no_takeover),
        Some(takeover),
        None,
        None,
    ] {
        let mut client = Connection::new(Role::Client, Config::default());
        let mut server = Connection::new(Role::Server, Config::default());
        if let Some(params) = params {
            client.enable_deflate(params, &DeflateConfig::new());
            server.enable_deflate(params, &DeflateConfig::new());
        }
        for _ in 0..2 {
            server.send_prepared(&prepared).unwrap();
        }
        let mut wire = Vec::new();
        server.data_to_send(&mut wire);
        let events = feed(&mut client, &wire);
        assert_eq!(messages(&events), vec![Message::text(text.clone()); 2]);
        wires.push(wire);
    }
    // No context takeover: the same compressed frame, twice, for both.
    assert_eq!(wires[0], wires[1]);
    let frames = decode_all(&wires[0]);
    assert_eq!(frames[0].rsv, RSV1);
    assert_eq!(frames[0], frames[1]);
    assert!(frames[0].payload.len() < text.len() / 4);
    // Context takeover: compressed per connection, the second message
    // smaller than the first.
    let frames = decode_all(&wires[2]);
    assert!(frames[1].payload.len() < frames[0].payload.len());
    // No compression: the plain frame.
    assert_eq!(wires[3], wires[4]);
    assert_eq!(decode_all(&wires[3])[0].payload, text.as_bytes());
}

#[test]
fn an_agreed_8_bit_window_is_honoured_by_sending_plain() {
    // The client offers a bare client_max_window_bits and asks the server
    // for 8 bits: both sides agree, and each sends plain what it cannot
    // compress within 8 bits (zlib's floor is 9).
    let params = negotiate(
        DeflateConfig::new().server_max_window_bits(Some(8)),
        DeflateConfig::new().client_max_window_bits(Some(8)),
    );
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (8, 8)
    );
    let (mut client, mut server) = pair(params);
    let text = "abcabcabc ".repeat(100);
    server.send_text(text.clone()).unwrap();
    let (frames, events) = transfer(&mut server, &mut client);
    assert_eq!(frames[0].rsv, 0);
    assert_eq!(messages(&events), vec![Message::text(text.clone())]);
    client.send_text(text.clone()).unwrap();
    let (frames, events) = transfer(&mut client, &mut server);
    assert_eq!(frames[0].rsv, 0);
    assert_eq!(messages(&events), vec![Message::text(text.clone())]);
    // Prepared messages too.
    server
        .send_prepared(&sockeye_proto::PreparedMessage::new(Message::text(
            text.clone(),
        )))
        .unwrap();
    let (frames, _) = transfer(&mut server, &mut client);
    assert_eq!(frames[0].rsv, 0);
    // Compressed input under an 8-bit window still inflates.
    let wire = frame(true, RSV1, 1, None, &deflate(b"hello hello"));
    assert_eq!(
        messages(&feed(&mut client, &wire)),
        vec![Message::text("hello hello")]
    );
}

#[test]
fn limits_mean_the_same_with_compression() {
    // A message at the frame limit that does not compress is a little
    // larger compressed: it is still accepted.
    let params = negotiate(DeflateConfig::new(), DeflateConfig::new());
    let limit = 64 * 1024;
    let config = Config::default()
        .max_frame_size(limit)
        .max_message_size(limit);
    // xorshift64: no repeats for DEFLATE to find.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..limit)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let compressed = deflate(&noise);
    assert!(compressed.len() > limit, "{}", compressed.len());
    let mut server = Connection::new(Role::Server, config.clone());
    server.enable_deflate(params, &DeflateConfig::new());
    let events = feed(&mut server, &frame(true, RSV1, 2, Some(KEY), &compressed));
    assert_eq!(messages(&events), vec![Message::binary(noise)]);
    // Blocks that inflate to nothing still count on the wire: a message of
    // empty stored blocks cannot go on forever.
    let mut server = Connection::new(Role::Server, config);
    server.enable_deflate(params, &DeflateConfig::new());
    let empty_blocks: Vec<u8> = [0x00, 0x00, 0x00, 0xff, 0xff].repeat(4000);
    let mut wire = frame(false, RSV1, 2, Some(KEY), &empty_blocks);
    let mut closed = None;
    for _ in 0..10 {
        wire.extend(frame(false, 0, 0, Some(KEY), &empty_blocks));
        let events = feed(&mut server, &std::mem::take(&mut wire));
        closed = closed.or(closed_code(&events));
    }
    assert_eq!(closed, Some(CloseCode::MESSAGE_TOO_BIG));
}
