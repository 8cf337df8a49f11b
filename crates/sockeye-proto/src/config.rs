//! Protocol limits and timers: one [`Config`] with safe defaults.

use std::time::Duration;

use crate::Role;

/// The keepalive interval a server uses unless configured otherwise
/// ([`Config::keepalive_interval`]), as Python `websockets` does.
pub const DEFAULT_SERVER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// The message-completion timeout a server uses unless configured
/// otherwise ([`Config::message_timeout`]).
pub const DEFAULT_SERVER_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The engine's limits and timers.
///
/// Every setter takes and returns the config, so a config reads as one
/// expression:
///
/// ```
/// use std::time::Duration;
/// use sockeye_proto::Config;
///
/// let config = Config::new()
///     .max_message_size(1 << 20)
///     .keepalive_interval(Some(Duration::from_secs(30)));
/// assert_eq!(config.get_max_message_size(), 1 << 20);
/// ```
///
/// | setting | default | why |
/// |---|---|---|
/// | `max_frame_size` | 16 MiB | large enough for any real frame, small enough that one frame cannot exhaust memory |
/// | `max_message_size` | 64 MiB | admits 16 MiB messages however they are fragmented |
/// | `fragment_overhead` | 72 bytes | a message of a million empty fragments hits the message limit |
/// | `outgoing_frame_size` | 16 MiB | peers with common limits accept every frame we send |
/// | `auto_pong` | on | RFC 6455 section 5.5.2 requires a Pong for each Ping |
/// | `max_buffered_bytes` | 1 MiB | front-ends make `send` wait past this, and `try_send` refuse |
/// | `high_water_bytes` | a quarter of `max_buffered_bytes` (256 KiB) | `try_send` reports backpressure well before it must refuse |
/// | `max_queued_control_bytes` | 64 KiB | a peer that pings but never reads cannot grow memory |
/// | `keepalive_interval` | 20 s for a server, off for a client | a server notices dead and silent peers and frees their slots (as Python `websockets` does); a client is opt-in |
/// | `keepalive_timeout` | 20 s | a dead peer is noticed within one interval plus this |
/// | `close_timeout` | 10 s | a closing handshake never hangs |
/// | `idle_timeout` | off | opt-in: a connection may legitimately be quiet (a dashboard that only listens) |
/// | `message_timeout` | 60 s for a server, off for a client | a peer cannot hold a frame or message open for ever by sending it a byte at a time; 60 s admits a 64 MiB message at about 1 MB/s |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    max_frame_size: usize,
    max_message_size: usize,
    fragment_overhead: usize,
    outgoing_frame_size: usize,
    auto_pong: bool,
    max_buffered_bytes: usize,
    /// `None`: a quarter of `max_buffered_bytes`.
    high_water_bytes: Option<usize>,
    max_queued_control_bytes: usize,
    /// `None`: the role's default.
    keepalive_interval: Option<Option<Duration>>,
    keepalive_timeout: Duration,
    close_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// `None`: the role's default.
    message_timeout: Option<Option<Duration>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            fragment_overhead: 72,
            outgoing_frame_size: 16 << 20,
            auto_pong: true,
            max_buffered_bytes: 1 << 20,
            high_water_bytes: None,
            max_queued_control_bytes: 64 << 10,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(10),
            idle_timeout: None,
            message_timeout: None,
        }
    }
}

impl Config {
    /// The default config (see the table above).
    pub fn new() -> Config {
        Config::default()
    }

    /// The largest frame payload accepted; a larger frame fails the
    /// connection with 1009 as soon as its header arrives, before any of its
    /// payload is buffered. Default: 16 MiB.
    pub fn max_frame_size(mut self, bytes: usize) -> Config {
        self.max_frame_size = bytes;
        self
    }

    /// The largest message accepted, counted over all its fragments (plus
    /// [`Config::fragment_overhead`] for each fragment after the first, so
    /// a single frame of exactly this size is accepted); a larger one fails
    /// the connection with 1009 as soon as a frame header announces it.
    /// Default: 64 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Config {
        self.max_message_size = bytes;
        self
    }

    /// What each fragment of a message after the first (each continuation
    /// frame) costs against [`Config::max_message_size`] besides its
    /// payload. This is the budget
    /// that stops a message sent as millions of tiny fragments, while a
    /// 16 MiB message in 64-byte fragments still fits the default limit.
    /// Default: 72 bytes (a million empty fragments cost 72 MB, past the default 64 MiB message limit).
    pub fn fragment_overhead(mut self, bytes: usize) -> Config {
        self.fragment_overhead = bytes;
        self
    }

    /// The largest frame payload this engine sends: longer messages are
    /// fragmented automatically. Zero is treated as one. Default: 16 MiB.
    pub fn outgoing_frame_size(mut self, bytes: usize) -> Config {
        self.outgoing_frame_size = bytes.max(1);
        self
    }

    /// Whether each Ping is answered with a Pong automatically (RFC 6455
    /// section 5.5.2). Pings are reported as events either way; turn this
    /// off only to answer them yourself with `send_pong`. Default: on.
    pub fn auto_pong(mut self, on: bool) -> Config {
        self.auto_pong = on;
        self
    }

    /// How many outgoing bytes may wait in the engine before front-ends
    /// make `send` wait for the peer to read (backpressure). The engine
    /// reports the amount with `buffered_amount`. Default: 1 MiB.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Config {
        self.max_buffered_bytes = bytes;
        self
    }

    /// The high-water mark of outgoing bytes: a front-end's non-waiting
    /// `try_send` reports backpressure when more than this is still
    /// buffered after it queued and wrote what the socket took (and
    /// refuses at [`max_buffered_bytes`](Config::max_buffered_bytes)).
    /// `0` reports backpressure whenever the socket did not take
    /// everything at once, as uWebSockets' `send` does. Default: a quarter
    /// of `max_buffered_bytes` (256 KiB with its default).
    pub fn high_water_bytes(mut self, bytes: usize) -> Config {
        self.high_water_bytes = Some(bytes);
        self
    }

    /// How many bytes of unsent Pongs may wait before the engine stops
    /// reading input, so a peer that floods pings and never reads cannot
    /// grow memory: it gets TCP backpressure instead. Default: 64 KiB.
    pub fn max_queued_control_bytes(mut self, bytes: usize) -> Config {
        self.max_queued_control_bytes = bytes;
        self
    }

    /// How often to send a keepalive Ping, or `None` for no keepalive.
    /// Each Ping waits for its Pong ([`Config::keepalive_timeout`]) before
    /// the next one is scheduled, one interval after the Pong.
    /// Default: 20 s for a server ([`DEFAULT_SERVER_KEEPALIVE_INTERVAL`]),
    /// `None` for a client.
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> Config {
        self.keepalive_interval = Some(interval);
        self
    }

    /// Closes the connection with 1008 (policy violation) when a frame or
    /// message the peer started is not finished within this time of its
    /// first byte, however slowly its bytes keep coming: a peer cannot
    /// hold a message open (and its memory) by sending it a byte at a
    /// time. `None` disables it. Default: 60 s for a server
    /// ([`DEFAULT_SERVER_MESSAGE_TIMEOUT`]), `None` for a client; raise
    /// it to accept large messages over slow links.
    pub fn message_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.message_timeout = Some(timeout);
        self
    }

    /// See [`Config::message_timeout`]: the timeout in force for `role`.
    pub fn get_message_timeout(&self, role: Role) -> Option<Duration> {
        self.message_timeout.unwrap_or(match role {
            Role::Server => Some(DEFAULT_SERVER_MESSAGE_TIMEOUT),
            Role::Client => None,
        })
    }

    /// How long a keepalive Ping waits for its Pong before the connection
    /// is failed with [`Error::Timeout`](crate::Error::Timeout). Default: 20 s.
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Config {
        self.keepalive_timeout = timeout;
        self
    }

    /// How long the closing handshake may take: after our Close frame is
    /// queued, the peer has this long to answer; a client that completed
    /// the handshake waits this long for the server to close TCP.
    /// Default: 10 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Config {
        self.close_timeout = timeout;
        self
    }

    /// Closes the connection (with 1001, going away) when nothing at all
    /// arrives from the peer for this long: no data, no Ping, no Pong.
    /// With [`Config::keepalive_interval`] shorter than this, a live peer
    /// answers the keepalive Pings and is never idle; a dead one is
    /// dropped. `None` disables it. Default: `None`.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.idle_timeout = timeout;
        self
    }

    /// See [`Config::idle_timeout`].
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// See [`Config::max_frame_size`].
    pub fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// See [`Config::max_message_size`].
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// See [`Config::fragment_overhead`].
    pub fn get_fragment_overhead(&self) -> usize {
        self.fragment_overhead
    }

    /// See [`Config::outgoing_frame_size`].
    pub fn get_outgoing_frame_size(&self) -> usize {
        self.outgoing_frame_size
    }

    /// See [`Config::auto_pong`].
    pub fn get_auto_pong(&self) -> bool {
        self.auto_pong
    }

    /// See [`Config::max_buffered_bytes`].
    pub fn get_max_buffered_bytes(&self) -> usize {
        self.max_buffered_bytes
    }

    /// See [`Config::high_water_bytes`].
    pub fn get_high_water_bytes(&self) -> usize {
        self.high_water_bytes.unwrap_or(self.max_buffered_bytes / 4)
    }

    /// See [`Config::max_queued_control_bytes`].
    pub fn get_max_queued_control_bytes(&self) -> usize {
        self.max_queued_control_bytes
    }

    /// See [`Config::keepalive_interval`]: the interval in force for
    /// `role`.
    pub fn get_keepalive_interval(&self, role: Role) -> Option<Duration> {
        self.keepalive_interval.unwrap_or(match role {
            Role::Server => Some(DEFAULT_SERVER_KEEPALIVE_INTERVAL),
            Role::Client => None,
        })
    }

    /// See [`Config::keepalive_timeout`].
    pub fn get_keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }

    /// See [`Config::close_timeout`].
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }
}
