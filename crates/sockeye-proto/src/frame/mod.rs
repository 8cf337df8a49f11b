//! The frame codec (RFC 6455 section 5.2): opcodes, headers, masking.
//!
//! This layer is purely structural: it reads and writes the bits of a frame
//! header. Which frames are allowed when (roles, fragmentation, limits,
//! negotiated extensions) is decided by the [`Connection`](crate::Connection).

mod header;
pub mod mask;
mod opcode;
mod trace;

pub use header::{FrameHeader, MAX_HEADER_LEN};
pub use opcode::OpCode;
pub(crate) use trace::FrameTrace;
pub use trace::{MAX_TRACED_FRAMES, TracedFrame};
