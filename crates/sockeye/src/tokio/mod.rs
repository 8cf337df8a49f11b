//! The tokio front-end.

mod socket;
mod split;

pub use socket::WebSocket;
pub use split::{RecvHalf, SendHalf};
