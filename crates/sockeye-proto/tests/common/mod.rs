//! Helpers shared by the integration tests: raw frames built by hand, so
//! tests do not trust the engine's own encoder, and a decoder for what the
//! engine sends.
#![allow(dead_code)]

use sockeye_proto::{Config, Connection, Event, Role};

/// Builds one raw frame. `mask` is applied when given.
pub fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=65535 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

pub const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A frame as a client sends it (masked).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, Some(KEY), payload)
}

/// A frame as a server sends it (unmasked).
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, None, payload)
}

/// A decoded frame from the engine's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub fin: bool,
    /// RSV1-RSV3 as a 3-bit number (RSV1 = 4).
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Splits the engine's output into frames, unmasking them.
pub fn decode_all(mut bytes: &[u8]) -> Vec<Decoded> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let fin = bytes[0] & 0x80 != 0;
        let rsv = (bytes[0] >> 4) & 0x07;
        let opcode = bytes[0] & 0x0f;
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            len => (len as usize, 2),
        };
        let key = if masked {
            let key: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            at += 4;
            Some(key)
        } else {
            None
        };
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(key) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        frames.push(Decoded {
            fin,
            rsv,
            opcode,
            masked,
            payload,
        });
        bytes = &bytes[at + len..];
    }
    frames
}

/// Feeds bytes and collects every event.
pub fn feed(conn: &mut Connection, bytes: &[u8]) -> Vec<Event> {
    conn.receive_data(bytes);
    std::iter::from_fn(|| conn.next_event()).collect()
}

/// Everything the engine queued, decoded.
pub fn output(conn: &mut Connection) -> Vec<Decoded> {
    let mut out = Vec::new();
    conn.data_to_send(&mut out);
    decode_all(&out)
}

pub fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

pub fn client() -> Connection {
    Connection::new(Role::Client, Config::default())
}

/// The payload of a Close frame.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}
