//! The backplane's settings: [`NatsBackplaneBuilder`], its defaults, and
//! the reconnect backoff.

use std::str::FromStr;
use std::time::Duration;

use async_nats::ServerAddr;

use crate::NatsBackplane;
use crate::subject::SubjectPrefix;

/// The NATS server used unless [`NatsBackplaneBuilder::url`] says
/// otherwise: the NATS default port on the loopback interface.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The literal subject tokens every topic's subject starts with, by
/// default: topic `lobby` is subject `sockeye.lobby`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "sockeye";

/// Envelopes waiting to be handed to the NATS client, by default. When
/// the queue is full, [`Backplane::publish`](sockeye::hub::Backplane::publish)
/// returns `false` at once.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// Messages the NATS client holds for one topic's subscription while the
/// backplane hands earlier ones to the hub, by default. Past it the client
/// drops messages for that topic (a NATS "slow consumer").
pub const DEFAULT_RECEIVE_CAPACITY: usize = 8192;

/// The first wait before reconnecting, by default (before jitter).
pub const DEFAULT_RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);

/// The longest wait between two connection attempts, by default.
pub const DEFAULT_RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

/// How long one connection attempt (TCP, TLS, `INFO`, `CONNECT`) may take,
/// by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the client pings the server, by default. A server that
/// vanished without closing the TCP connection is noticed after two
/// unanswered pings (so within three intervals) rather than the NATS
/// client's own 60 s interval.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);

/// Envelopes handed to the NATS client between two flushes, at most. It
/// bounds what can still be sent late: envelopes the client holds when the
/// connection breaks go out after the reconnect (see the crate docs).
pub const PUBLISH_BATCH: usize = 64;

/// Why [`NatsBackplaneBuilder::build`] refused its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A server URL that does not parse, or whose scheme is not `nats` or
    /// `tls`.
    InvalidUrl(String),
    /// No server URL at all.
    NoServer,
    /// A subject prefix with an empty token, whitespace, a wildcard (`*`,
    /// `>`) or a non-ASCII character.
    InvalidSubjectPrefix(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::InvalidUrl(detail) => write!(f, "invalid NATS server URL: {detail}"),
            ConfigError::NoServer => f.write_str("no NATS server URL"),
            ConfigError::InvalidSubjectPrefix(prefix) => write!(
                f,
                "invalid NATS subject prefix {prefix:?}: tokens must be non-empty printable ASCII without '*' or '>'"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Credentials for the server.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
}

/// Builds a [`NatsBackplane`]; from [`NatsBackplane::builder`].
///
/// Building checks the settings and connects nothing: the backplane
/// connects when its hub starts it, and keeps trying (with backoff) until
/// a server answers.
#[derive(Clone)]
#[must_use]
pub struct NatsBackplaneBuilder {
    pub(crate) urls: Vec<String>,
    pub(crate) credentials: Credentials,
    pub(crate) subject_prefix: String,
    pub(crate) queue_capacity: usize,
    pub(crate) receive_capacity: usize,
    pub(crate) reconnect_delay_min: Duration,
    pub(crate) reconnect_delay_max: Duration,
    pub(crate) connection_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) connection_name: Option<String>,
}

impl std::fmt::Debug for NatsBackplaneBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = match self.credentials {
            Credentials::None => "none",
            Credentials::UserPassword(..) => "user and password",
            Credentials::Token(_) => "token",
        };
        f.debug_struct("NatsBackplaneBuilder")
            .field(
                "urls",
                &self.urls.iter().map(|url| redact(url)).collect::<Vec<_>>(),
            )
            .field("credentials", &credentials)
            .field("subject_prefix", &self.subject_prefix)
            .field("queue_capacity", &self.queue_capacity)
            .field("receive_capacity", &self.receive_capacity)
            .field("reconnect_delay_min", &self.reconnect_delay_min)
            .field("reconnect_delay_max", &self.reconnect_delay_max)
            .field("connection_timeout", &self.connection_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

/// `url` without the credentials it may carry, for display.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Default for NatsBackplaneBuilder {
    fn default() -> NatsBackplaneBuilder {
        NatsBackplaneBuilder {
            urls: vec![DEFAULT_URL.to_owned()],
            credentials: Credentials::None,
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            receive_capacity: DEFAULT_RECEIVE_CAPACITY,
            reconnect_delay_min: DEFAULT_RECONNECT_DELAY_MIN,
            reconnect_delay_max: DEFAULT_RECONNECT_DELAY_MAX,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            connection_name: None,
        }
    }
}

impl NatsBackplaneBuilder {
    /// The NATS server: `nats://HOST:PORT`, or `tls://HOST:PORT` for TLS
    /// (verified against the system's root certificates). Credentials may
    /// be written in the URL, `nats://USER:PASSWORD@HOST:PORT` or
    /// `nats://TOKEN@HOST:PORT` (percent-encoded), unless
    /// [`user_and_password`](Self::user_and_password) or
    /// [`token`](Self::token) set them. Without a scheme, `nats://` is
    /// meant; without a port, 4222. Default: [`DEFAULT_URL`]
    /// (`nats://127.0.0.1:4222`).
    pub fn url(self, url: impl Into<String>) -> NatsBackplaneBuilder {
        self.urls([url])
    }

    /// Several servers of one NATS cluster, tried in random order (and the
    /// servers they announce, as NATS clients do). Replaces what
    /// [`url`](Self::url) set. Default: [`DEFAULT_URL`] alone.
    pub fn urls<I, S>(mut self, urls: I) -> NatsBackplaneBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Authenticates with a user name and password. Default: the URL's, or
    /// none.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> NatsBackplaneBuilder {
        self.credentials = Credentials::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticates with a token. Default: the URL's, or none.
    pub fn token(mut self, token: impl Into<String>) -> NatsBackplaneBuilder {
        self.credentials = Credentials::Token(token.into());
        self
    }

    /// The literal subject tokens before each topic's token, with or
    /// without the final dot: `myapp.ws` puts topic `lobby` on
    /// `myapp.ws.lobby`; the empty string puts topics at the root. Every
    /// node of one application must use the same prefix; applications
    /// sharing a NATS server keep apart with different ones. Default:
    /// [`DEFAULT_SUBJECT_PREFIX`] (`sockeye`).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> NatsBackplaneBuilder {
        self.subject_prefix = prefix.into();
        self
    }

    /// Envelopes waiting to be handed to the NATS client (at least 1); when
    /// it is full, publishing returns `false` at once and the envelope is
    /// counted as dropped. Default: [`DEFAULT_QUEUE_CAPACITY`] (4096).
    pub fn queue_capacity(mut self, envelopes: usize) -> NatsBackplaneBuilder {
        self.queue_capacity = envelopes.max(1);
        self
    }

    /// Messages the NATS client may hold for one topic before they reach
    /// the hub (at least 1); past it the client drops that topic's
    /// messages. Default: [`DEFAULT_RECEIVE_CAPACITY`] (8192).
    pub fn receive_capacity(mut self, messages: usize) -> NatsBackplaneBuilder {
        self.receive_capacity = messages.max(1);
        self
    }

    /// The reconnect backoff: the wait before the n-th attempt in a row is
    /// drawn uniformly between half and all of `min × 2^(n−1)`, capped at
    /// `max` (so from 50–100 ms up to 2.5–5 s with the defaults). The
    /// jitter keeps a fleet of nodes from reconnecting in step after an
    /// outage. A `max` below `min` is raised to `min`. Default:
    /// [`DEFAULT_RECONNECT_DELAY_MIN`] (100 ms) to
    /// [`DEFAULT_RECONNECT_DELAY_MAX`] (5 s). The backplane never gives up.
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> NatsBackplaneBuilder {
        self.reconnect_delay_min = min;
        self.reconnect_delay_max = max.max(min);
        self
    }

    /// How long one connection attempt may take. Default:
    /// [`DEFAULT_CONNECTION_TIMEOUT`] (5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> NatsBackplaneBuilder {
        self.connection_timeout = timeout;
        self
    }

    /// How often the client pings the server to find out a connection that
    /// died silently (after two unanswered pings). Default:
    /// [`DEFAULT_PING_INTERVAL`] (10 s).
    pub fn ping_interval(mut self, interval: Duration) -> NatsBackplaneBuilder {
        self.ping_interval = interval;
        self
    }

    /// The connection's name, as the server's monitoring shows it.
    /// Default: `sockeye-` followed by the hub's node id in hex.
    pub fn connection_name(mut self, name: impl Into<String>) -> NatsBackplaneBuilder {
        self.connection_name = Some(name.into());
        self
    }

    /// Checks the settings and builds the backplane, which connects once a
    /// hub starts it (see [`HubBuilder::backplane`]).
    ///
    /// [`HubBuilder::backplane`]: sockeye::hub::HubBuilder::backplane
    pub fn build(self) -> Result<NatsBackplane, ConfigError> {
        let prefix = SubjectPrefix::parse(&self.subject_prefix)
            .map_err(|_| ConfigError::InvalidSubjectPrefix(self.subject_prefix.clone()))?;
        if self.urls.is_empty() {
            return Err(ConfigError::NoServer);
        }
        let mut servers = Vec::with_capacity(self.urls.len());
        let mut credentials = self.credentials.clone();
        for url in &self.urls {
            let (server, found) = parse_server(url)?;
            if matches!(credentials, Credentials::None) {
                credentials = found;
            }
            servers.push(server);
        }
        Ok(NatsBackplane::new(Settings {
            servers,
            credentials,
            prefix,
            queue_capacity: self.queue_capacity,
            receive_capacity: self.receive_capacity,
            backoff: Backoff {
                min: self.reconnect_delay_min,
                max: self.reconnect_delay_max,
            },
            connection_timeout: self.connection_timeout,
            ping_interval: self.ping_interval,
            connection_name: self.connection_name,
        }))
    }
}

/// A server URL without its credentials, and the credentials it carried
/// (the NATS client ignores credentials in URLs).
fn parse_server(url: &str) -> Result<(ServerAddr, Credentials), ConfigError> {
    let invalid = |detail: String| ConfigError::InvalidUrl(format!("{}: {detail}", redact(url)));
    let server = ServerAddr::from_str(url).map_err(|error| invalid(error.to_string()))?;
    match server.scheme() {
        "nats" | "tls" => {}
        other => return Err(invalid(format!("scheme {other:?} (use nats:// or tls://)"))),
    }
    if server.host().is_empty() {
        return Err(invalid("no host".to_owned()));
    }
    let credentials = match (server.username(), server.password()) {
        (Some(user), Some(password)) => {
            Credentials::UserPassword(percent_decode(user), percent_decode(password))
        }
        (Some(token), None) => Credentials::Token(percent_decode(token)),
        _ => Credentials::None,
    };
    if matches!(credentials, Credentials::None) {
        return Ok((server, credentials));
    }
    let mut bare = server.into_inner();
    // Clearing the credentials of a URL that has a host cannot fail.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let server = ServerAddr::from_url(bare).map_err(|error| invalid(error.to_string()))?;
    Ok((server, credentials))
}

/// Decodes `%XX` escapes (as URLs write reserved characters in user names
/// and passwords); anything else is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|digit| (*digit as char).to_digit(16))
        };
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) = (hex(at + 1), hex(at + 2))
        {
            out.push((high * 16 + low) as u8);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The checked settings a backplane runs with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) servers: Vec<ServerAddr>,
    pub(crate) credentials: Credentials,
    pub(crate) prefix: SubjectPrefix,
    pub(crate) queue_capacity: usize,
    pub(crate) receive_capacity: usize,
    pub(crate) backoff: Backoff,
    pub(crate) connection_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) connection_name: Option<String>,
}

/// Exponential backoff with jitter; see
/// [`NatsBackplaneBuilder::reconnect_delay`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The longest wait before attempt `attempt` (1 for the first in a
    /// row).
    pub(crate) fn ceiling(&self, attempt: usize) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31) as u32;
        self.min.saturating_mul(1 << doublings).min(self.max)
    }

    /// The wait before attempt `attempt`: uniform between half and all of
    /// its ceiling.
    pub(crate) fn delay(&self, attempt: usize) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            rand::random::<u64>() % (spread + 1)
        };
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_with_jitter() {
        let backoff = Backoff {
            min: DEFAULT_RECONNECT_DELAY_MIN,
            max: DEFAULT_RECONNECT_DELAY_MAX,
        };
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(6), Duration::from_millis(3200));
        assert_eq!(backoff.ceiling(7), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(usize::MAX), Duration::from_secs(5));
        for attempt in [1, 2, 5, 9, 1000] {
            let ceiling = backoff.ceiling(attempt);
            for _ in 0..100 {
                let delay = backoff.delay(attempt);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?}");
            }
        }
        let zero = Backoff {
            min: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn urls_and_credentials() {
        let (server, credentials) = parse_server("nats://127.0.0.1:4222").unwrap();
        assert_eq!(server.port(), 4222);
        assert!(matches!(credentials, Credentials::None));

        let (server, credentials) = parse_server("nats://alice:p%40ss@localhost:5000").unwrap();
        assert_eq!(server.username(), None);
        assert_eq!(server.password(), None);
        assert_eq!(server.port(), 5000);
        assert!(matches!(
            credentials,
            Credentials::UserPassword(user, password) if user == "alice" && password == "p@ss"
        ));

        let (server, credentials) = parse_server("s3cr3t@example.com").unwrap();
        assert_eq!(server.scheme(), "nats");
        assert_eq!(server.port(), 4222);
        assert!(matches!(credentials, Credentials::Token(token) if token == "s3cr3t"));

        assert!(parse_server("ws://example.com").is_err());
        assert!(parse_server("http://example.com").is_err());
        assert!(parse_server("nats://exa mple.com").is_err());
    }

    #[test]
    fn builder_checks_its_settings() {
        assert!(NatsBackplaneBuilder::default().build().is_ok());
        assert_eq!(
            NatsBackplaneBuilder::default()
                .subject_prefix("a.*")
                .build()
                .err(),
            Some(ConfigError::InvalidSubjectPrefix("a.*".into()))
        );
        assert_eq!(
            NatsBackplaneBuilder::default()
                .urls(Vec::<String>::new())
                .build()
                .err(),
            Some(ConfigError::NoServer)
        );
        let error = NatsBackplaneBuilder::default()
            .url("redis://user:secret@host")
            .build()
            .err()
            .unwrap();
        assert!(matches!(error, ConfigError::InvalidUrl(_)));
        assert!(!error.to_string().contains("secret"), "{error}");
        let debug = format!(
            "{:?}",
            NatsBackplaneBuilder::default().url("nats://user:secret@host")
        );
        assert!(!debug.contains("secret"), "{debug}");
    }
}
