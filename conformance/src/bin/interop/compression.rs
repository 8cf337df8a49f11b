//! The compression dimension of the matrix: whether sockeye offers and
//! accepts permessage-deflate (RFC 7692).
//!
//! Every variant calls the builders' `deflate` switch explicitly: sockeye
//! negotiates permessage-deflate by default, so `off` is a refusal.

use sockeye::proto::extension::deflate::DeflateConfig;
use sockeye::{ClientBuilder, ServerBuilder};

/// Which side of the pair negotiates permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// sockeye refuses (server) or does not offer (client); the peer
    /// offers or accepts: the peer's fallback is tested.
    Off,
    /// Both sides want it: it is negotiated.
    On,
    /// sockeye wants it, the peer does not: sockeye's fallback is tested.
    PeerOff,
}

impl Compression {
    pub fn parse(name: &str) -> Result<Compression, String> {
        match name {
            "off" => Ok(Compression::Off),
            "on" => Ok(Compression::On),
            "peer-off" => Ok(Compression::PeerOff),
            other => Err(format!(
                "unknown compression mode {other:?} (off, on or peer-off)"
            )),
        }
    }

    /// Whether sockeye's own side offers or accepts permessage-deflate.
    pub fn sockeye_wants(self) -> bool {
        self != Compression::Off
    }

    /// Whether the handshake's response must name permessage-deflate.
    pub fn negotiated(self) -> bool {
        self == Compression::On
    }
}

/// Sets sockeye's server side of the variant: refuse, or accept.
pub fn server(builder: ServerBuilder, mode: Compression) -> Result<ServerBuilder, String> {
    Ok(builder.deflate(DeflateConfig::new().enabled(mode.sockeye_wants())))
}

/// Sets sockeye's client side of the variant: offer, or not.
pub fn client(builder: ClientBuilder, mode: Compression) -> Result<ClientBuilder, String> {
    Ok(builder.deflate(DeflateConfig::new().enabled(mode.sockeye_wants())))
}
