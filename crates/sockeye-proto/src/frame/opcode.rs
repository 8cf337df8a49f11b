//! Frame opcodes (RFC 6455 sections 5.2 and 11.8).

/// A frame's 4-bit opcode, including the reserved ones, so a decoder can
/// report exactly what it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: the next fragment of a message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: a Close control frame.
    Close,
    /// 0x9: a Ping control frame.
    Ping,
    /// 0xA: a Pong control frame.
    Pong,
    /// 0x3-0x7: reserved for future data frames.
    ReservedData(u8),
    /// 0xB-0xF: reserved for future control frames.
    ReservedControl(u8),
}

impl OpCode {
    /// Decodes the low four bits of `bits`.
    pub fn from_bits(bits: u8) -> OpCode {
        match bits & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            bits @ 0x3..=0x7 => OpCode::ReservedData(bits),
            bits => OpCode::ReservedControl(bits),
        }
    }

    /// The 4-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
            OpCode::ReservedData(bits) | OpCode::ReservedControl(bits) => bits & 0x0f,
        }
    }

    /// Whether this is a control opcode (the high bit set: 0x8-0xF).
    pub fn is_control(self) -> bool {
        self.bits() & 0x08 != 0
    }

    /// Whether this opcode is reserved (0x3-0x7, 0xB-0xF).
    pub fn is_reserved(self) -> bool {
        matches!(self, OpCode::ReservedData(_) | OpCode::ReservedControl(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_round_trips() {
        for bits in 0..16u8 {
            let op = OpCode::from_bits(bits);
            assert_eq!(op.bits(), bits);
            assert_eq!(op.is_control(), bits >= 8);
            assert_eq!(op.is_reserved(), matches!(bits, 3..=7 | 11..=15));
        }
    }
}
