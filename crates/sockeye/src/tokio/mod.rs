//! The tokio front-end.

mod socket;
mod split;
mod try_send;

pub use socket::WebSocket;
pub use split::{RecvHalf, SendHalf};
pub use try_send::SendStatus;
