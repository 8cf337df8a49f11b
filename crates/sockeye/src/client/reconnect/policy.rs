//! What a reconnecting client retries, and how long it waits.

use std::time::Duration;

use http::StatusCode;
use sockeye_proto::CloseCode;

#[cfg(doc)]
use super::{ReconnectError, Reconnecting};
use crate::error::Error;
use crate::proxy::ProxyError;

/// When and how often a [`Reconnecting`] client tries again.
///
/// The policy decides from how the last connection ended, or why the last
/// attempt failed, whether trying again can help:
///
/// | outcome | default |
/// |---|---|
/// | connection refused, reset, DNS failure, time-outs (connecting, TLS, the handshake answer), proxy unreachable or silent | retried |
/// | HTTP 408, 425, 429, 500, 502, 503, 504 | retried (`Retry-After` honoured, up to the cap) |
/// | other HTTP statuses (400, 401, 403, 404, 426, 3xx not followed) | final |
/// | TLS certificate or protocol failure, `ws://` to a TLS port, bad URL, bad handshake answer | final |
/// | close 1001, 1005, 1006, 1011, 1012, 1013, 1014, keepalive time-out | retried |
/// | close 1000, 1002, 1003, 1007, 1008, 1009, 1010, 1015 | final |
/// | application codes 3000-4999 | final unless [`ReconnectPolicy::retry_close_code`] |
///
/// Delays follow exponential backoff with full jitter: before retry `n`
/// (counted from 0 since the last stable connection) the client waits a
/// random time between zero and `min(max_delay, initial_delay * 2^n)`,
/// so that clients dropped together by a restarting server come back
/// spread out. A connection that stayed open for
/// [`ReconnectPolicy::stable_after`] resets the count; one that ends
/// sooner counts as a failed attempt, so a server that accepts and closes
/// at once is not hammered.
///
/// ```
/// use std::time::Duration;
/// use sockeye::{CloseCode, ReconnectPolicy};
///
/// let policy = ReconnectPolicy::new()
///     .initial_delay(Duration::from_millis(250))
///     .max_delay(Duration::from_secs(10))
///     .max_retries(20)
///     .retry_close_code(CloseCode::new(4000))
///     .stop_on_status(http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    pub(super) initial_delay: Duration,
    pub(super) max_delay: Duration,
    pub(super) max_retries: Option<u32>,
    pub(super) stable_after: Duration,
    close_codes: Vec<(CloseCode, bool)>,
    statuses: Vec<(StatusCode, bool)>,
}

impl Default for ReconnectPolicy {
    fn default() -> ReconnectPolicy {
        ReconnectPolicy::new()
    }
}

impl ReconnectPolicy {
    /// The default policy: delays from up to 1 s growing to up to 30 s,
    /// no limit on retries, stable after 10 s.
    pub fn new() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retries: None,
            stable_after: Duration::from_secs(10),
            close_codes: Vec::new(),
            statuses: Vec::new(),
        }
    }

    /// The longest first wait: the first retry comes after a random delay
    /// up to this long, and each further one may wait twice as long as the
    /// one before, up to [`max_delay`](ReconnectPolicy::max_delay).
    /// Default: 1 s.
    pub fn initial_delay(mut self, delay: Duration) -> ReconnectPolicy {
        self.initial_delay = delay;
        self
    }

    /// The cap on any one wait (a `Retry-After` longer than this is cut to
    /// it). Default: 30 s.
    pub fn max_delay(mut self, delay: Duration) -> ReconnectPolicy {
        self.max_delay = delay;
        self
    }

    /// The retry budget: after this many retries in a row without a
    /// stable connection, [`Reconnecting::next`] gives up with
    /// [`ReconnectError::GaveUp`]. Default: no limit (a client that should
    /// stay connected keeps trying, at most every `max_delay`).
    pub fn max_retries(mut self, retries: u32) -> ReconnectPolicy {
        self.max_retries = Some(retries);
        self
    }

    /// How long a connection must stay open to count as a success that
    /// resets the backoff. Default: 10 s.
    pub fn stable_after(mut self, duration: Duration) -> ReconnectPolicy {
        self.stable_after = duration;
        self
    }

    /// Retries after the server closes with `code` (for example an
    /// application code that means "come back later"). Default: see the
    /// [`ReconnectPolicy`].
    pub fn retry_close_code(mut self, code: CloseCode) -> ReconnectPolicy {
        self.close_codes.push((code, true));
        self
    }

    /// Stops after the server closes with `code`. Default: see the
    /// [`ReconnectPolicy`].
    pub fn stop_on_close_code(mut self, code: CloseCode) -> ReconnectPolicy {
        self.close_codes.push((code, false));
        self
    }

    /// Retries when the server refuses the handshake with `status`.
    /// Default: 408, 425, 429, 500, 502, 503 and 504 are retried.
    pub fn retry_status(mut self, status: StatusCode) -> ReconnectPolicy {
        self.statuses.push((status, true));
        self
    }

    /// Stops when the server refuses the handshake with `status`.
    /// Default: every status but 408, 425, 429, 500, 502, 503 and 504.
    pub fn stop_on_status(mut self, status: StatusCode) -> ReconnectPolicy {
        self.statuses.push((status, false));
        self
    }

    /// Whether a connection that ended with `code` from the server is
    /// worth reopening.
    pub fn retries_close_code(&self, code: CloseCode) -> bool {
        if let Some(&(_, retry)) = self.close_codes.iter().rev().find(|(c, _)| *c == code) {
            return retry;
        }
        matches!(
            code.as_u16(),
            1001 | 1005 | 1006 | 1011 | 1012 | 1013 | 1014
        )
    }

    /// Whether a handshake refused with `status` is worth trying again.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        if let Some(&(_, retry)) = self.statuses.iter().rev().find(|(s, _)| *s == status) {
            return retry;
        }
        matches!(status.as_u16(), 408 | 425 | 429 | 500 | 502 | 503 | 504)
    }

    /// Whether an attempt that failed with `error` is worth trying again.
    pub fn retries_error(&self, error: &Error) -> bool {
        match error {
            Error::Io(_)
            | Error::OpenTimeout
            | Error::HandshakeTimeout
            | Error::UnexpectedEof
            | Error::Timeout(_) => true,
            // A TLS failure that rustls itself reports (certificate, protocol)
            // will not mend; a transport error during it may.
            Error::Tls(io) => !io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()),
            Error::Handshake(handshake) => handshake
                .status()
                .is_some_and(|status| self.retries_status(status)),
            Error::Proxy(ProxyError::Connect { .. } | ProxyError::Timeout { .. }) => true,
            Error::Proxy(proxy) => proxy
                .status()
                .is_some_and(|status| self.retries_status(status)),
            _ => false,
        }
    }

    /// The wait before retry `retry` (0 for the first since the last
    /// stable connection), before jitter: `min(max_delay, initial_delay *
    /// 2^retry)`.
    pub(super) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classification() {
        let policy = ReconnectPolicy::new();
        for code in [1001, 1005, 1006, 1011, 1012, 1013, 1014] {
            assert!(policy.retries_close_code(CloseCode::new(code)), "{code}");
        }
        for code in [
            1000, 1002, 1003, 1007, 1008, 1009, 1010, 1015, 3000, 4000, 4999,
        ] {
            assert!(!policy.retries_close_code(CloseCode::new(code)), "{code}");
        }
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert!(policy.retries_status(StatusCode::from_u16(status).unwrap()));
        }
        for status in [301, 400, 401, 403, 404, 426, 501] {
            assert!(!policy.retries_status(StatusCode::from_u16(status).unwrap()));
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(policy.retries_error(&Error::Io(refused)));
        assert!(policy.retries_error(&Error::OpenTimeout));
        assert!(policy.retries_error(&Error::HandshakeTimeout));
        // ws:// to a TLS port will not mend.
        assert!(!policy.retries_error(&Error::TlsExpected));
        assert!(!policy.retries_error(&Error::InvalidUrl("x".into())));
        let certificate = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(!policy.retries_error(&Error::Tls(certificate)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(policy.retries_error(&Error::Tls(reset)));
    }

    #[test]
    fn overrides_win_last_set_first() {
        let policy = ReconnectPolicy::new()
            .retry_close_code(CloseCode::new(4000))
            .stop_on_close_code(CloseCode::SERVICE_RESTART)
            .stop_on_status(StatusCode::SERVICE_UNAVAILABLE)
            .retry_status(StatusCode::SERVICE_UNAVAILABLE);
        assert!(policy.retries_close_code(CloseCode::new(4000)));
        assert!(!policy.retries_close_code(CloseCode::SERVICE_RESTART));
        assert!(policy.retries_status(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn backoff_doubles_to_the_cap_without_overflow() {
        let policy = ReconnectPolicy::new()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(3));
        let ceilings: Vec<u128> = (0..8).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(3));
        let huge = ReconnectPolicy::new()
            .initial_delay(Duration::MAX)
            .max_delay(Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX);
    }
}
