//! # A client that reconnects
//!
//! A dashboard or a trading client must outlive server restarts, deploys
//! and network loss. [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect)
//! turns a builder into a [`Reconnecting`](crate::Reconnecting) client:
//! each [`next`](crate::Reconnecting::next) hands out a new connection,
//! after waiting as its [`ReconnectPolicy`](crate::ReconnectPolicy) says.
//!
//! ```
//! use std::time::Duration;
//! use sockeye::{ClientBuilder, Message, ReconnectEvent, ReconnectPolicy};
//!
//! async fn follow(url: &str) -> Result<(), sockeye::ReconnectError> {
//!     let policy = ReconnectPolicy::new()
//!         .initial_delay(Duration::from_millis(500))
//!         .max_delay(Duration::from_secs(30));
//!     let mut client = ClientBuilder::new(url)
//!         .reconnect(policy)
//!         .on_event(|event| {
//!             if let ReconnectEvent::Waiting { retry, delay, .. } = event {
//!                 eprintln!("retry {retry} in {delay:?}");
//!             }
//!         });
//!     loop {
//!         // Err when the policy says retrying cannot help: a final close
//!         // code (1008, 1000), a 401 or 403, an untrusted certificate.
//!         let (mut ws, _) = client.next().await?;
//!         // A new connection knows nothing of the old one: subscribe
//!         // again.
//!         if ws.send(Message::text(r#"{"subscribe":"prices"}"#)).await.is_err() {
//!             continue;
//!         }
//!         while let Some(message) = ws.recv().await {
//!             match message {
//!                 Ok(message) => println!("{}", message.as_text().unwrap_or("<binary>")),
//!                 Err(error) => eprintln!("lost: {error}"),
//!             }
//!             # break;
//!         }
//!         # return Ok(());
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let url = format!("ws://{}/", listener.local_addr().unwrap());
//! #     tokio::spawn(async move {
//! #         let (tcp, _) = listener.accept().await.unwrap();
//! #         let mut ws = sockeye::accept(tcp).await.unwrap();
//! #         let subscribe = ws.recv().await.unwrap().unwrap();
//! #         ws.send(subscribe).await.unwrap();
//! #     });
//! #     tokio::time::timeout(Duration::from_secs(10), follow(&url)).await.unwrap().unwrap();
//! # }
//! ```
//!
//! What it retries, and how:
//! - **Connection refused or reset, DNS failure, time-outs, a proxy it
//!   cannot reach, HTTP 408, 425, 429, 500, 502, 503, 504**: retried.
//!   A 429 or 503 with `Retry-After` waits at least that long (up to the
//!   cap).
//! - **Other refusals** (400, 401, 403, 404, 426), a certificate it does
//!   not trust, a bad URL: final, [`ReconnectError::Refused`](crate::ReconnectError::Refused).
//! - **Close codes**: 1001 (going away), 1006 (no close at all), 1011,
//!   1012 (restarting), 1013 (try again later), 1014 are retried; 1000,
//!   1008 (policy violation) and the protocol errors are final, and so are
//!   application codes 3000-4999 unless you name them with
//!   [`retry_close_code`](crate::ReconnectPolicy::retry_close_code).
//! - **Backoff**: the wait before retry `n` is random between zero and
//!   `min(max_delay, initial_delay * 2^n)` ("full jitter"), so thousands
//!   of clients dropped by one restart come back spread out. A connection
//!   must stay up for [`stable_after`](crate::ReconnectPolicy::stable_after)
//!   (10 s) to reset the count, so a server that accepts and closes at
//!   once is not hammered.
//! - **Budget**: [`max_retries`](crate::ReconnectPolicy::max_retries)
//!   bounds retries in a row; by default there is no bound (the client
//!   keeps trying, at most every `max_delay`).
//! - A connection the application closes itself is replaced at once, if
//!   it asks for the next one.
//!
//! Messages sent while the connection was down are not queued for the
//! next one: what a new session needs (subscriptions, the last id seen)
//! is the application's to send after each `next`.
