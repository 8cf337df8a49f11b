//! The backplane's settings: [`RedisBackplaneBuilder`], its defaults, and
//! the errors [`RedisBackplaneBuilder::build`] reports.

use std::fmt;
use std::time::Duration;

use crate::RedisBackplane;

/// Channel names are this prefix followed by the topic, by default.
pub const DEFAULT_CHANNEL_PREFIX: &str = "sockeye:";

/// Envelopes waiting to be sent to Redis, at most, by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// Bytes of envelopes waiting to be sent to Redis, at most, by default
/// (64 MiB).
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;

/// Messages from Redis buffered for the receiving task, by default.
pub const DEFAULT_RECEIVE_BUFFER: usize = 1024;

/// The first delay before connecting again, by default.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(100);

/// The longest delay before connecting again, by default.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How long connecting (TCP, `AUTH`, `SELECT`, `INFO`) may take, by
/// default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one command (a batch of publishes, a subscription, a `PING`)
/// may wait for Redis's reply before the connection counts as lost, by
/// default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// How often both connections are checked with a `PING`, by default.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Whether to use sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`, Redis 7.0 and
/// later) or the classic commands (`PUBLISH`, `SUBSCRIBE`).
///
/// Sharded and classic pub/sub are separate namespaces in Redis: a message
/// sent with `SPUBLISH` reaches only `SSUBSCRIBE`rs. Every node of one
/// application must therefore end up in the same mode; [`Sharded::Auto`]
/// does, as long as the nodes talk to the same server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sharded {
    /// Sharded when the server supports it: Redis 7.0 or later by the
    /// `redis_version` of its `INFO`, or, where `INFO` tells no version,
    /// when `COMMAND INFO SPUBLISH` knows the command. Decided again at
    /// every connection. The default.
    #[default]
    Auto,
    /// Always sharded: fails on servers older than 7.0 (every publish is
    /// counted as dropped).
    Always,
    /// Never sharded: the classic commands, which every Redis has.
    Never,
}

/// Builds a [`RedisBackplane`]; from [`RedisBackplane::builder`].
///
/// Every setting has a default (see the [crate docs](crate#defaults)); only
/// the URL is required.
#[derive(Clone)]
#[must_use]
pub struct RedisBackplaneBuilder {
    pub(crate) url: String,
    pub(crate) channel_prefix: String,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) receive_buffer: usize,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) health_check_interval: Duration,
    pub(crate) sharded: Sharded,
}

impl fmt::Debug for RedisBackplaneBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplaneBuilder")
            .field("url", &redact(&self.url))
            .field("channel_prefix", &self.channel_prefix)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_bytes", &self.queue_bytes)
            .field("receive_buffer", &self.receive_buffer)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("health_check_interval", &self.health_check_interval)
            .field("sharded", &self.sharded)
            .finish()
    }
}

impl RedisBackplaneBuilder {
    pub(crate) fn new(url: &str) -> RedisBackplaneBuilder {
        RedisBackplaneBuilder {
            url: url.to_owned(),
            channel_prefix: DEFAULT_CHANNEL_PREFIX.to_owned(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
            sharded: Sharded::Auto,
        }
    }

    /// What every channel name starts with: a topic's channel is this
    /// prefix followed by the topic's bytes, with no escaping, so every
    /// topic (the empty one included) has a channel of its own, and
    /// applications sharing one Redis keep apart by prefix. Nodes that
    /// should see each other's messages need the same prefix. Default:
    /// [`DEFAULT_CHANNEL_PREFIX`] (`"sockeye:"`).
    ///
    /// An empty prefix is allowed; then channels are the topics themselves,
    /// and topics starting with `__keyspace@` or `__keyevent@` are not
    /// delivered (the client takes them for keyspace notifications).
    pub fn channel_prefix(mut self, prefix: &str) -> RedisBackplaneBuilder {
        self.channel_prefix = prefix.to_owned();
        self
    }

    /// How many envelopes may wait to be sent (at least 1). When the queue
    /// is full, [`publish`](sockeye::hub::Backplane::publish) returns
    /// `false` at once and the message is counted as dropped. Default:
    /// [`DEFAULT_QUEUE_CAPACITY`] (4096).
    pub fn queue_capacity(mut self, envelopes: usize) -> RedisBackplaneBuilder {
        self.queue_capacity = envelopes.max(1);
        self
    }

    /// How many bytes of envelopes may wait to be sent, over all of them
    /// (at least 1). An envelope that would take the queue past it is
    /// dropped, as when the queue is full. Default:
    /// [`DEFAULT_QUEUE_BYTES`] (64 MiB).
    pub fn queue_bytes(mut self, bytes: usize) -> RedisBackplaneBuilder {
        self.queue_bytes = bytes.max(1);
        self
    }

    /// How many messages from Redis may wait for the task that hands them
    /// to the hub (at least 16). Past it the oldest are lost and counted
    /// in [`RedisStatus::lost_incoming`](crate::RedisStatus::lost_incoming);
    /// handing a message to the hub never waits, so this fills only when
    /// the runtime is starved. Default: [`DEFAULT_RECEIVE_BUFFER`] (1024).
    pub fn receive_buffer(mut self, messages: usize) -> RedisBackplaneBuilder {
        self.receive_buffer = messages.max(16);
        self
    }

    /// The delays between connection attempts: the first is about `min`,
    /// each failed attempt doubles it up to `max`, and each delay is drawn
    /// at random between half of it and all of it ("equal jitter"), so that
    /// many nodes do not all come back at once. A connection that lasted
    /// at least `max` starts the sequence over. `max` is raised to `min`
    /// if lower. Default: [`DEFAULT_RECONNECT_MIN`] (100 ms) to
    /// [`DEFAULT_RECONNECT_MAX`] (5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> RedisBackplaneBuilder {
        let min = min.max(Duration::from_millis(1));
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// How long connecting may take: TCP, then `AUTH`, `SELECT` and `INFO`
    /// on each of the two connections. Default:
    /// [`DEFAULT_CONNECT_TIMEOUT`] (5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> RedisBackplaneBuilder {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a command may wait for its reply: a batch of publishes, a
    /// subscription change, or a health check's `PING`. Past it the
    /// connection counts as lost and is made again. Default:
    /// [`DEFAULT_COMMAND_TIMEOUT`] (5 s).
    pub fn command_timeout(mut self, timeout: Duration) -> RedisBackplaneBuilder {
        self.command_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How often both connections send a `PING`, so that a connection whose
    /// peer vanished without closing it (a network partition, a host that
    /// went down) is noticed within this interval plus the
    /// [command timeout](Self::command_timeout). Default:
    /// [`DEFAULT_HEALTH_CHECK_INTERVAL`] (10 s).
    pub fn health_check_interval(mut self, interval: Duration) -> RedisBackplaneBuilder {
        self.health_check_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sharded pub/sub or the classic one; see [`Sharded`]. Default:
    /// [`Sharded::Auto`].
    pub fn sharded(mut self, sharded: Sharded) -> RedisBackplaneBuilder {
        self.sharded = sharded;
        self
    }

    /// Checks the URL and builds the backplane. It connects once a
    /// [`Hub`](sockeye::hub::Hub) is built with it.
    ///
    /// # Errors
    /// When the URL does not parse, or its scheme is not `redis`
    /// (`rediss`, Sentinel, cluster and Unix socket URLs are not
    /// supported).
    pub fn build(self) -> Result<RedisBackplane, ConfigError> {
        let server = self.server_config()?;
        Ok(RedisBackplane::from_parts(self, server))
    }

    fn server_config(&self) -> Result<fred::types::config::Config, ConfigError> {
        let scheme = self.url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some(scheme) if scheme.eq_ignore_ascii_case("redis") => {}
            Some(scheme) => {
                return Err(ConfigError::UnsupportedScheme(scheme.to_owned()));
            }
            None => return Err(ConfigError::InvalidUrl("no scheme".to_owned())),
        }
        fred::types::config::Config::from_url_centralized(&self.url)
            .map_err(|error| ConfigError::InvalidUrl(error.details().to_owned()))
    }
}

/// Why [`RedisBackplaneBuilder::build`] refused its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse as `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
    InvalidUrl(String),
    /// A URL scheme other than `redis`.
    UnsupportedScheme(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            ConfigError::UnsupportedScheme(scheme) => write!(
                f,
                "unsupported Redis URL scheme {scheme:?} (only redis:// is supported)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The URL with its password, if any, replaced by `***`, for `Debug`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = credentials
        .split_once(':')
        .map_or(credentials, |(user, _)| user);
    if credentials.contains(':') {
        format!("{scheme}://{user}:***@{host}{path}")
    } else {
        // A lone credential is the password (`redis://secret@host`).
        format!("{scheme}://***@{host}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(
            RedisBackplane::builder("redis://127.0.0.1:6379/2")
                .build()
                .is_ok()
        );
        assert!(
            RedisBackplane::builder("redis://:secret@localhost")
                .build()
                .is_ok()
        );
        assert!(
            RedisBackplane::builder("REDIS://localhost:1")
                .build()
                .is_ok()
        );
        assert_eq!(
            RedisBackplane::builder("rediss://localhost").build().err(),
            Some(ConfigError::UnsupportedScheme("rediss".to_owned()))
        );
        assert!(matches!(
            RedisBackplane::builder("redis-cluster://localhost").build(),
            Err(ConfigError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            RedisBackplane::builder("localhost:6379").build(),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            RedisBackplane::builder("redis://localhost/notadb").build(),
            Err(ConfigError::InvalidUrl(_))
        ));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:pw@host:1/0"),
            "redis://user:***@host:1/0"
        );
        assert_eq!(redact("redis://:pw@host"), "redis://:***@host");
        assert_eq!(redact("redis://pw@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        let builder = RedisBackplane::builder("redis://:hunter2@host");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn settings_are_clamped() {
        let builder = RedisBackplane::builder("redis://host")
            .queue_capacity(0)
            .queue_bytes(0)
            .receive_buffer(0)
            .reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(builder.queue_capacity, 1);
        assert_eq!(builder.queue_bytes, 1);
        assert_eq!(builder.receive_buffer, 16);
        assert_eq!(builder.reconnect_max, Duration::from_secs(2));
    }
}
