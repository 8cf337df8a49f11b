//! # Limits, and what each default protects against
//!
//! A server is only as strong as the worst peer it tolerates. Every
//! resource a peer can make a sockeye server spend has a bound with a safe
//! default; you raise the ones your application needs.
//!
//! ```
//! use std::time::Duration;
//! use sockeye::ServerBuilder;
//! use sockeye::proto::Config;
//!
//! let config = Config::new()
//!     .max_message_size(1 << 20)                  // 1 MiB messages are plenty for chat
//!     .keepalive_interval(Some(Duration::from_secs(30)));
//! let server = ServerBuilder::new()
//!     .max_connections(50_000)
//!     .max_connections_per_address(Some(64))
//!     .handshake_timeout(Duration::from_secs(5))
//!     .config(config);
//! # let _ = server;
//! ```
//!
//! | bound | default | protects against | past it |
//! |---|---|---|---|
//! | [`handshake_timeout`](crate::ServerBuilder::handshake_timeout) | 10 s | a client that opens TCP and sends its request a byte a minute (slowloris) | dropped |
//! | [`max_head_size`](crate::ServerBuilder::max_head_size), [`max_headers`](crate::ServerBuilder::max_headers) | 16 KiB, 64 | huge or endless headers | 431 |
//! | [`allowed_hosts`](crate::ServerBuilder::allowed_hosts) | any | DNS rebinding: a web page reaching a server on the visitor's machine | 421 |
//! | `Origin` check ([`allow_origins`](crate::ServerBuilder::allow_origins)) | same host and port | other sites using a visitor's browser and cookies (cross-site WebSocket hijacking) | 403 |
//! | [`max_connections`](crate::ServerBuilder::max_connections) | 10,000 | running out of file descriptors and memory | 503, `Retry-After: 1` |
//! | [`max_connections_per_address`](crate::ServerBuilder::max_connections_per_address) | off | one address taking every connection | 503, `Retry-After: 5` |
//! | [`memory_budget`](crate::ServerBuilder::memory_budget) | 1/4 of memory (cgroup-aware) | many peers each holding a large message or not reading what they are sent | they stop being read; after 3 s the largest holders close with 1013 |
//! | [`Config::max_frame_size`](crate::proto::Config::max_frame_size) | 16 MiB | a frame header announcing gigabytes | close 1009 |
//! | [`Config::max_message_size`](crate::proto::Config::max_message_size) | 64 MiB, counted after inflating | a compression bomb; endless fragments | close 1009 |
//! | [`Config::message_timeout`](crate::proto::Config::message_timeout) | servers 60 s | a message dribbled a byte at a time | close 1008 |
//! | [`Config::max_buffered_bytes`](crate::proto::Config::max_buffered_bytes) | 1 MiB | a peer that does not read what you send | `send` waits; `try_send` answers `Dropped` |
//! | [`Config::high_water_bytes`](crate::proto::Config::high_water_bytes) | 1/4 of `max_buffered_bytes` | a sender that would fill the buffer before noticing | `try_send` answers `Backpressure` |
//! | [`Config::max_queued_control_bytes`](crate::proto::Config::max_queued_control_bytes) | 64 KiB | a Ping flood from a peer that does not read the Pongs | reading stops |
//! | [`Config::keepalive_interval`](crate::proto::Config::keepalive_interval) | servers 20 s | peers that vanished without a FIN (a phone in a tunnel) | close 1011 |
//! | [`Config::close_timeout`](crate::proto::Config::close_timeout) | 10 s | a peer that never answers our Close | transport closed |
//! | [`Config::idle_timeout`](crate::proto::Config::idle_timeout) | off | quiet connections you do not want | close 1001 |
//!
//! Protocol violations are never a limit to tune: a bad frame closes with
//! 1002, bad UTF-8 with 1007, a bad handshake gets its HTTP status (400,
//! 403, 405, 426, 431), and nothing a peer sends makes sockeye panic.
//!
//! [`ServerBuilder::stats`](crate::ServerBuilder::stats) counts refusals by
//! reason, so an operator sees which bound is being hit.
