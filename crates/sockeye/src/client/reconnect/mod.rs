//! A client that reconnects: [`Reconnecting`], built by
//! [`ClientBuilder::reconnect`] with a [`ReconnectPolicy`].
//!
//! Each call to [`Reconnecting::next`] hands out a new connection, waiting
//! first as long as the policy says. The application reads from it until
//! it ends, then asks for the next one, and subscribes again (or sends
//! whatever a new session needs) each time: what it sent on the old
//! connection is gone with it.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Response;
use sockeye_proto::{CloseCode, Closed, Initiator};

use crate::client::ClientBuilder;
use crate::error::Error;
use crate::tls::ClientStream;
use crate::tokio::WebSocket;

mod policy;

pub use policy::ReconnectPolicy;
/// How a connection handed out by [`Reconnecting::next`] ended, as far as
/// the client could see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The close code: the server's if it sent one, 1005 for a Close
    /// without a code, 1006 when the transport ended without a closing
    /// handshake.
    pub code: CloseCode,
    /// The reason that came with the code, possibly empty.
    pub reason: String,
    /// Whether this side closed it: the application, or the engine
    /// failing the connection after a violation or a time-out.
    pub by_us: bool,
    /// Whether the closing handshake completed.
    pub clean: bool,
    /// Whether the application closed it (cleanly or with a close that
    /// timed out), rather than the server or a failure.
    pub by_application: bool,
    /// How long the connection was open.
    pub lasted: Duration,
}

/// What a [`Reconnecting`] client is doing, for logs and metrics
/// ([`Reconnecting::on_event`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ReconnectEvent<'a> {
    /// A connection opened: the first one when `reconnect` is false.
    Connected {
        /// Whether an earlier connection had opened before this one.
        reconnect: bool,
        /// Failed attempts since the last stable connection (0: first try).
        retries: u32,
    },
    /// The connection handed out before ended.
    Disconnected(&'a Ending),
    /// An attempt failed, or a connection ended, and the client waits
    /// before trying again.
    Waiting {
        /// The retry about to be made (1 for the first).
        retry: u32,
        /// How long it waits.
        delay: Duration,
        /// Why the last attempt failed, if it was an attempt that failed
        /// (`None` after a connection that ended).
        error: Option<&'a Error>,
    },
}

/// Why [`Reconnecting::next`] stopped handing out connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReconnectError {
    /// The server ended the last connection with a close code the policy
    /// treats as final (1008 policy violation, 1000 normal closure, an
    /// application code).
    Closed(Ending),
    /// An attempt failed in a way that retrying will not mend (401, 403,
    /// a certificate the client does not trust, a bad URL).
    Refused(Error),
    /// The retry budget ([`ReconnectPolicy::max_retries`]) ran out.
    GaveUp {
        /// Attempts made since the last stable connection.
        attempts: u32,
        /// Why the last one failed.
        last: Failure,
    },
}

/// Why the last attempt of a [`Reconnecting`] client that gave up failed.
#[derive(Debug)]
pub enum Failure {
    /// Connecting failed.
    Attempt(Error),
    /// A connection opened but ended before it was stable.
    Ended(Ending),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Attempt(error) => error.fmt(f),
            Failure::Ended(ending) if ending.reason.is_empty() => write!(
                f,
                "the server closed the connection with {}",
                ending.code.as_u16()
            ),
            Failure::Ended(ending) => write!(
                f,
                "the server closed the connection with {} ({})",
                ending.code.as_u16(),
                ending.reason
            ),
        }
    }
}

impl fmt::Display for ReconnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconnectError::Closed(ending) => {
                write!(f, "{}, which is final", Failure::Ended(ending.clone()))
            }
            ReconnectError::Refused(error) => write!(f, "cannot reconnect: {error}"),
            ReconnectError::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
        }
    }
}

impl std::error::Error for ReconnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReconnectError::Refused(error)
            | ReconnectError::GaveUp {
                last: Failure::Attempt(error),
                ..
            } => Some(error),
            _ => None,
        }
    }
}

/// Where a handed-out connection writes how it ended. Shared with the
/// `WebSocket` (and its split halves).
#[derive(Debug, Default)]
pub(crate) struct EndSlot(Mutex<Option<(Ending, Instant)>>);

impl EndSlot {
    /// Records the end: `closed` when the engine saw one, `None` when the
    /// transport failed first.
    pub(crate) fn record(&self, closed: Option<&Closed>) {
        let entry = match closed {
            Some(closed) => {
                let by_us = closed.initiated_by == Initiator::Local;
                let by_application = by_us
                    && matches!(
                        closed.error,
                        None | Some(sockeye_proto::Error::Timeout(sockeye_proto::Timeout::Close))
                    );
                let code = match &closed.error {
                    Some(sockeye_proto::Error::Timeout(sockeye_proto::Timeout::Keepalive)) => {
                        CloseCode::ABNORMAL
                    }
                    _ => closed.code(),
                };
                Ending {
                    code,
                    reason: closed.reason().to_owned(),
                    by_us,
                    clean: closed.is_clean(),
                    by_application,
                    lasted: Duration::ZERO,
                }
            }
            None => Ending {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                by_us: false,
                clean: false,
                by_application: false,
                lasted: Duration::ZERO,
            },
        };
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert((entry, Instant::now()));
        }
    }

    fn take(&self) -> Option<(Ending, Instant)> {
        self.0.lock().ok()?.take()
    }
}

type EventHook = Box<dyn FnMut(&ReconnectEvent<'_>) + Send>;

/// A client that opens a new connection each time the last one ends, as
/// long as its [`ReconnectPolicy`] says trying again can help. Built with
/// [`ClientBuilder::reconnect`].
///
/// Each call to [`Reconnecting::next`] hands out a new connection, waiting
/// first as long as the policy says. The application reads from it until
/// it ends, then asks for the next one, and subscribes again (or sends
/// whatever a new session needs) each time: what it sent on the old
/// connection is gone with it.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sockeye::{ClientBuilder, Message, ReconnectPolicy};
///
/// let mut client = ClientBuilder::new("ws://127.0.0.1:9001/feed")
///     .reconnect(ReconnectPolicy::new());
/// loop {
///     // Waits as the policy says; Err once it gives up.
///     let (mut ws, _response) = client.next().await?;
///     // A new connection: subscribe again.
///     ws.send(Message::text("subscribe ticker")).await?;
///     while let Some(message) = ws.recv().await {
///         match message {
///             Ok(message) => println!("{message:?}"),
///             Err(error) => eprintln!("connection lost: {error}"),
///         }
///     }
/// }
/// # }
/// ```
pub struct Reconnecting {
    builder: ClientBuilder,
    policy: ReconnectPolicy,
    /// Failed attempts (and short-lived connections) since the last
    /// stable connection.
    retries: u32,
    /// The connection handed out last: where it reports its end, and when
    /// it opened.
    current: Option<(Arc<EndSlot>, Instant)>,
    /// Whether a connection ever opened.
    connected_once: bool,
    /// The last attempt's failure, not yet weighed by the policy.
    failed: Option<Error>,
    /// The wait before the next attempt, once decided.
    wait: Option<Duration>,
    /// A wait the server asked for (`Retry-After`).
    retry_after: Option<Duration>,
    hook: Option<EventHook>,
    connections: u64,
}

impl fmt::Debug for Reconnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnecting")
            .field("builder", &self.builder)
            .field("policy", &self.policy)
            .field("retries", &self.retries)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A client that reconnects with this builder's options (URL, TLS,
    /// proxy, headers, subprotocols, deflate, limits) under `policy`:
    /// each [`Reconnecting::next`] opens a new connection. Nothing is
    /// connected until then.
    pub fn reconnect(self, policy: ReconnectPolicy) -> Reconnecting {
        Reconnecting {
            builder: self,
            policy,
            retries: 0,
            current: None,
            connected_once: false,
            failed: None,
            wait: None,
            retry_after: None,
            hook: None,
            connections: 0,
        }
    }
}

impl Reconnecting {
    /// Calls `hook` on every [`ReconnectEvent`]: each connection, each
    /// end, each wait. For logs and metrics; it runs inside
    /// [`next`](Reconnecting::next) and should not block.
    pub fn on_event<F>(mut self, hook: F) -> Reconnecting
    where
        F: FnMut(&ReconnectEvent<'_>) + Send + 'static,
    {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The policy in use.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Connections opened so far.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Failed attempts since the last stable connection.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The next connection and the server's `101` response.
    ///
    /// The first call connects at once. Later calls first look at how the
    /// connection handed out before ended: a close code the policy treats
    /// as final stops here with [`ReconnectError::Closed`]; a connection
    /// the application closed itself is replaced at once; otherwise the
    /// client waits its backoff delay. Each failed attempt is retried
    /// after a growing delay while the policy says it may help
    /// ([`ReconnectError::Refused`] when it cannot,
    /// [`ReconnectError::GaveUp`] when the retry budget runs out).
    ///
    /// The connection handed out before need not have ended: it is left
    /// alone (and counted as ended by the application if it has not).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons the current wait or
    /// attempt and keeps the retry count, so the next call goes on with
    /// the backoff where it was (its wait starts again).
    pub async fn next(
        &mut self,
    ) -> Result<(WebSocket<ClientStream>, Response<()>), ReconnectError> {
        if let Some((slot, opened)) = self.current.take() {
            self.after_connection(&slot, opened)?;
        }
        loop {
            if let Some(error) = self.failed.take() {
                if let Some(max) = self.policy.max_retries
                    && self.retries >= max
                {
                    return Err(ReconnectError::GaveUp {
                        attempts: self.retries + 1,
                        last: Failure::Attempt(error),
                    });
                }
                let delay = self.delay();
                self.retries += 1;
                self.emit(&ReconnectEvent::Waiting {
                    retry: self.retries,
                    delay,
                    error: Some(&error),
                });
                self.wait = Some(delay);
            }
            if let Some(delay) = self.wait {
                // Kept until the wait is over: a cancelled wait repeats.
                tokio::time::sleep(delay).await;
                self.wait = None;
            }
            match self.builder.clone().connect().await {
                Ok((mut ws, response)) => {
                    let slot = Arc::new(EndSlot::default());
                    ws.on_end = Some(slot.clone());
                    self.current = Some((slot, Instant::now()));
                    self.connections += 1;
                    let reconnect = self.connected_once;
                    self.connected_once = true;
                    self.emit(&ReconnectEvent::Connected {
                        reconnect,
                        retries: self.retries,
                    });
                    return Ok((ws, response));
                }
                Err(error) if self.policy.retries_error(&error) => {
                    self.retry_after = retry_after(&error);
                    self.failed = Some(error);
                }
                Err(error) => return Err(ReconnectError::Refused(error)),
            }
        }
    }

    /// Decides, from how the last connection ended, whether to go on, and
    /// sets the wait before the next attempt when the server ended it.
    fn after_connection(&mut self, slot: &EndSlot, opened: Instant) -> Result<(), ReconnectError> {
        // Still open, or dropped before its end was read: the application
        // let go of it.
        let (mut ending, ended) = slot.take().unwrap_or_else(|| {
            let ending = Ending {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                by_us: true,
                clean: false,
                by_application: true,
                lasted: Duration::ZERO,
            };
            (ending, Instant::now())
        });
        let lasted = ended.saturating_duration_since(opened);
        ending.lasted = lasted;
        self.emit(&ReconnectEvent::Disconnected(&ending));
        if lasted >= self.policy.stable_after {
            self.retries = 0;
        }
        if ending.by_application {
            return Ok(());
        }
        if !self.policy.retries_close_code(ending.code) {
            return Err(ReconnectError::Closed(ending));
        }
        // The server went away: come back after a jittered delay, so that
        // clients it dropped together do not return together.
        let delay = self.delay();
        if let Some(max) = self.policy.max_retries
            && self.retries >= max
        {
            return Err(ReconnectError::GaveUp {
                attempts: self.retries,
                last: Failure::Ended(ending),
            });
        }
        self.retries += 1;
        self.emit(&ReconnectEvent::Waiting {
            retry: self.retries,
            delay,
            error: None,
        });
        self.wait = Some(delay);
        Ok(())
    }

    /// The next wait: full jitter under the backoff ceiling, or what the
    /// server asked for.
    fn delay(&mut self) -> Duration {
        let ceiling = self.policy.ceiling(self.retries);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::random_range(0..=ceiling.as_nanos() as u64))
        };
        match self.retry_after.take() {
            Some(asked) => asked.min(self.policy.max_delay).max(jittered),
            None => jittered,
        }
    }

    fn emit(&mut self, event: &ReconnectEvent<'_>) {
        if let Some(hook) = &mut self.hook {
            hook(event);
        }
    }
}

/// The wait a `429` or `503` asked for in `Retry-After` (seconds; an HTTP
/// date is not followed).
fn retry_after(error: &Error) -> Option<Duration> {
    let Error::Handshake(handshake) = error else {
        return None;
    };
    let seconds: u64 = handshake
        .response()?
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}
