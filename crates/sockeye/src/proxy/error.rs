//! Why a proxy did not open a tunnel: the proxy half of
//! [`Error`](crate::Error).

use std::fmt;
use std::io;

use http::StatusCode;

use super::socks5;
use crate::error::Error;

/// Why a proxy did not open a tunnel (inside [`Error::Proxy`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL cannot be used: its syntax, an unsupported scheme,
    /// invalid credentials. The text says which, and never repeats the
    /// URL (it may hold a password).
    InvalidUrl(String),
    /// The proxy itself could not be reached (DNS, refused, unreachable).
    Connect {
        /// The proxy, as `scheme://host:port` without credentials.
        proxy: String,
        /// What the connection attempt returned.
        source: io::Error,
    },
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx:
    /// 407 when it wants credentials (or other ones), 403 when its rules
    /// forbid the destination, 502 or 504 when the destination is down.
    Status(StatusCode),
    /// The SOCKS5 proxy accepts none of the authentication methods offered
    /// (RFC 1928 section 3, method `X'FF'`).
    NoAcceptableAuth {
        /// Whether username/password authentication was offered; when it
        /// was not, the proxy most likely requires it.
        credentials_offered: bool,
    },
    /// The SOCKS5 proxy rejected the username and password (RFC 1929).
    AuthFailed,
    /// The SOCKS5 proxy could not or would not connect to the destination:
    /// the reply code of RFC 1928 section 6 (1 to 8, or an unassigned one).
    SocksReply(u8),
    /// The proxy accepted the connection but did not open the tunnel
    /// within the client's open timeout
    /// ([`ClientBuilder::open_timeout`](crate::ClientBuilder::open_timeout)),
    /// or could not even be reached in that time.
    Timeout {
        /// The proxy, as `scheme://host:port` without credentials.
        proxy: String,
    },
    /// The proxy broke its protocol: a malformed answer, or the connection
    /// closed in the middle of the exchange.
    Protocol(String),
}

impl ProxyError {
    /// The HTTP status an HTTP proxy refused `CONNECT` with.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ProxyError::Status(status) => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::InvalidUrl(why) => write!(f, "invalid proxy URL: {why}"),
            ProxyError::Connect { proxy, source } => {
                write!(f, "cannot connect to proxy {proxy}: {source}")
            }
            ProxyError::Status(status) => write!(f, "HTTP proxy refused CONNECT: {status}"),
            ProxyError::NoAcceptableAuth {
                credentials_offered: false,
            } => f.write_str(
                "SOCKS5 proxy requires authentication (give user:password in the proxy URL)",
            ),
            ProxyError::NoAcceptableAuth {
                credentials_offered: true,
            } => f.write_str("SOCKS5 proxy accepts none of the offered authentication methods"),
            ProxyError::AuthFailed => {
                f.write_str("SOCKS5 proxy rejected the username and password")
            }
            ProxyError::SocksReply(code) => write!(
                f,
                "SOCKS5 proxy could not connect: {} (reply {code})",
                socks5::reply_text(*code)
            ),
            ProxyError::Timeout { proxy } => {
                write!(f, "proxy {proxy} did not answer in time")
            }
            ProxyError::Protocol(why) => write!(f, "proxy protocol error: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Connect { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ProxyError> for Error {
    fn from(error: ProxyError) -> Self {
        Error::Proxy(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_on_one_line() {
        let errors = [
            ProxyError::Status(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
            ProxyError::SocksReply(5),
            ProxyError::SocksReply(42),
            ProxyError::NoAcceptableAuth {
                credentials_offered: false,
            },
            ProxyError::AuthFailed,
        ];
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts[0],
            "HTTP proxy refused CONNECT: 407 Proxy Authentication Required"
        );
        assert_eq!(
            texts[1],
            "SOCKS5 proxy could not connect: connection refused by the destination (reply 5)"
        );
        assert!(texts[2].contains("unassigned reply code"));
        assert!(texts.iter().all(|text| !text.contains('\n')));
        assert_eq!(errors[0].status(), Some(StatusCode::from_u16(407).unwrap()));
    }
}
