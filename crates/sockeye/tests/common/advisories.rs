//! Shared by the replays of other implementations' advisories
//! (`advisories_server.rs`, `advisories_client.rs`): a sockeye client that
//! ignores the environment's proxies, and frames whose length field is
//! encoded as the attacker chose.
#![allow(dead_code)]

use std::net::SocketAddr;

use sockeye::{ClientBuilder, ClientStream, Error, WebSocket};

use super::hostile::{HANG_GUARD, MASK, within};

/// A sockeye client of `addr` (direct: no proxy from the environment).
pub fn client(addr: SocketAddr) -> ClientBuilder {
    ClientBuilder::new(&format!("ws://{addr}/")).no_proxy()
}

/// `connect` within the hang guard.
pub async fn connect(builder: ClientBuilder) -> Result<WebSocket<ClientStream>, Error> {
    within(HANG_GUARD, "connect", builder.connect())
        .await
        .map(|(ws, _)| ws)
}

/// How a frame's payload length is encoded (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// In the 7 bits of the second byte (below 126).
    Short,
    /// 126, then 16 bits.
    Bits16,
    /// 127, then 64 bits.
    Bits64,
}

/// A frame whose length `len` is written with `encoding`, whatever its
/// value (so possibly not the minimal one), masked with `MASK` or not, and
/// followed by `payload` (masked likewise), which need not be `len` bytes.
pub fn frame_with_length(
    opcode: u8,
    len: u64,
    encoding: Length,
    masked: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![0x80 | opcode];
    match encoding {
        Length::Short => out.push(mask_bit | len as u8),
        Length::Bits16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Length::Bits64 => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ MASK[index % 4]),
        );
    } else {
        out.extend_from_slice(payload);
    }
    out
}
