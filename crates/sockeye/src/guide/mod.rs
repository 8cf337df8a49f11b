//! A guide to sockeye, one task per chapter, each with a complete program.
//!
//! | chapter | what you build |
//! |---|---|
//! | [`chat_server`] | a chat server with rooms: accept, split, the [hub](crate::hub), a bad client that ends only itself |
//! | [`reconnecting_client`] | a client that survives server restarts and network loss, and subscribes again each time |
//! | [`axum`] | WebSockets in an axum application, on the same port as its routes |
//! | [`tls`] | `wss://` for a server and for a client that trusts a private CA |
//! | [`limits`] | the bounds a server keeps against hostile or broken peers, and what each default protects against |
//! | [`scaling_out`] | one topic across many server processes on Redis or NATS |
//!
//! The chapters are documentation only: this module has no items.

pub mod axum;
pub mod chat_server;
pub mod limits;
pub mod reconnecting_client;
pub mod scaling_out;
pub mod tls;
