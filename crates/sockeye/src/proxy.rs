//! Connecting through proxies: HTTP CONNECT (RFC 9110 section 9.3.6, with
//! Basic proxy authentication, RFC 7617) and SOCKS5 (RFC 1928, with
//! username/password authentication, RFC 1929).
//!
//! RFC 6455 section 4.1 asks a client to reach the server through a
//! tunnel when a proxy is configured: the proxy opens a TCP connection to
//! the server and relays bytes, TLS (for `wss://`) runs end to end inside
//! that tunnel, and the proxy never sees the WebSocket handshake. A
//! [`Proxy`] opens such a tunnel; [`ClientBuilder`](crate::ClientBuilder)
//! uses one set with [`proxy`](crate::ClientBuilder::proxy) or, by
//! default, the one the environment names ([`Proxy::from_env`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockeye::Error> {
//! use sockeye::proxy::Proxy;
//!
//! let proxy = Proxy::http("http://alice:secret@proxy.example:3128")?;
//! let (ws, _) = sockeye::ClientBuilder::new("wss://example.com/chat")
//!     .proxy(proxy)
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Not supported: TLS to the proxy itself (`https://` proxy URLs), SOCKS4,
//! and proxy authentication schemes other than Basic (NTLM, Negotiate).

mod env;
mod error;
mod http_connect;
mod socks5;

pub use error::ProxyError;

use std::fmt;
use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::Error;

/// A proxy to tunnel client connections through.
///
/// Built from a URL: [`Proxy::http`], [`Proxy::socks5`], [`Proxy::from_url`]
/// (the scheme picks the kind), or [`Proxy::from_env`]. Userinfo in the
/// URL (`http://user:password@host:port`, percent-encoded) becomes the
/// proxy credentials. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    /// Without the brackets of an IPv6 literal.
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

/// The protocol a [`Proxy`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy, asked with `CONNECT host:port` (URL scheme `http://`).
    Http,
    /// A SOCKS5 proxy (URL scheme `socks5://` or `socks5h://`; either way
    /// the proxy resolves the server's name).
    Socks5,
}

/// Percent-decoded proxy credentials.
#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
}

impl Proxy {
    /// An HTTP proxy, asked to tunnel with `CONNECT`: `http://host:port`,
    /// with optional `user:password@` (sent as `Proxy-Authorization:
    /// Basic`). The scheme may be left out; the port defaults to 80.
    pub fn http(url: &str) -> Result<Proxy, Error> {
        Proxy::parse(url, ProxyKind::Http, &[ProxyKind::Http])
    }

    /// A SOCKS5 proxy: `socks5://host:port` or `socks5h://host:port`, with
    /// optional `user:password@` (RFC 1929). The scheme may be left out;
    /// the port defaults to 1080.
    ///
    /// Both schemes send the server's name to the proxy to resolve
    /// (address type DOMAINNAME; what curl calls `socks5h`): resolving it
    /// here would leak the lookup past the proxy and may not see the
    /// proxy's network. IP literals are sent as addresses.
    pub fn socks5(url: &str) -> Result<Proxy, Error> {
        Proxy::parse(url, ProxyKind::Socks5, &[ProxyKind::Socks5])
    }

    /// A proxy of the kind the URL's scheme names: `http://` for HTTP
    /// CONNECT, `socks5://` or `socks5h://` for SOCKS5. Without a scheme,
    /// HTTP (as curl does).
    pub fn from_url(url: &str) -> Result<Proxy, Error> {
        Proxy::parse(url, ProxyKind::Http, &[ProxyKind::Http, ProxyKind::Socks5])
    }

    /// The proxy the environment names for a connection to `target_url`
    /// (`ws://` or `wss://`), or `None` to connect directly.
    ///
    /// The conventions of curl and Python's `websockets`:
    /// - `no_proxy` (or `NO_PROXY`) lists destinations reached directly,
    ///   separated by commas or spaces: `*` for all, host names (which
    ///   also cover their subdomains; a leading `.` or `*.` changes
    ///   nothing), IP addresses (IPv6 with or without brackets), CIDR
    ///   blocks such as `10.0.0.0/8`, each optionally with `:port`.
    ///   Matched case-insensitively; loopback is not exempt unless listed.
    /// - `wss://` takes the first of `wss_proxy`, `https_proxy`,
    ///   `all_proxy`; `ws://` the first of `ws_proxy`, `http_proxy`,
    ///   `all_proxy`. Each name is looked up in lower case, then upper
    ///   case; empty values count as unset. `HTTP_PROXY` is ignored when
    ///   `REQUEST_METHOD` is set: in a CGI program a request's `Proxy`
    ///   header arrives as `HTTP_PROXY` ("httpoxy").
    /// - The value is a proxy URL as for [`Proxy::from_url`].
    ///
    /// A value that is not a usable proxy URL is an error naming the
    /// variable, rather than a silent direct connection.
    pub fn from_env(target_url: &str) -> Result<Option<Proxy>, Error> {
        Proxy::from_env_with(target_url, |name| std::env::var(name).ok())
    }

    /// [`Proxy::from_env`] with `lookup` in place of the process
    /// environment: for tests, and for applications that keep these
    /// settings elsewhere.
    ///
    /// ```
    /// use sockeye::proxy::{Proxy, ProxyKind};
    ///
    /// let vars = |name: &str| match name {
    ///     "https_proxy" => Some("socks5h://127.0.0.1:1080".to_owned()),
    ///     "no_proxy" => Some("localhost,.internal.example".to_owned()),
    ///     _ => None,
    /// };
    /// let proxy = Proxy::from_env_with("wss://example.com/", vars).unwrap().unwrap();
    /// assert_eq!(proxy.kind(), ProxyKind::Socks5);
    /// assert!(Proxy::from_env_with("wss://api.internal.example/", vars).unwrap().is_none());
    /// assert!(Proxy::from_env_with("ws://example.com/", vars).unwrap().is_none());
    /// ```
    pub fn from_env_with(
        target_url: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, Error> {
        env::from_env_with(target_url, lookup)
    }

    /// The protocol the proxy speaks.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the proxy URL carried credentials.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Connects to the proxy and asks it for a tunnel to `host:port` (a
    /// name, or an IP address; IPv6 with or without brackets). Returns the
    /// TCP connection, which from then on carries the destination's bytes.
    ///
    /// Has no timeout of its own: [`ClientBuilder`](crate::ClientBuilder)
    /// bounds it with its open timeout.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt and closes the connection
    /// to the proxy.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, Error> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| ProxyError::Connect {
                proxy: self.to_string(),
                source,
            })?;
        tcp.set_nodelay(true)?;
        self.tunnel(&mut tcp, host, port).await?;
        Ok(tcp)
    }

    /// Asks the proxy at the other end of `stream` for a tunnel to
    /// `host:port`; on success, `stream` carries the destination's bytes.
    /// Reads nothing past the proxy's answer, so a destination that speaks
    /// first loses nothing.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping the future leaves `stream` in the middle
    /// of the exchange, unusable.
    pub async fn tunnel<S>(&self, stream: &mut S, host: &str, port: u16) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let host = destination_host(host)?;
        match self.kind {
            ProxyKind::Http => {
                http_connect::tunnel(stream, host, port, self.credentials.as_ref()).await
            }
            ProxyKind::Socks5 => {
                socks5::tunnel(stream, host, port, self.credentials.as_ref()).await
            }
        }
    }

    fn parse(url: &str, bare: ProxyKind, allowed: &[ProxyKind]) -> Result<Proxy, Error> {
        let invalid = |why: String| Error::Proxy(ProxyError::InvalidUrl(why));
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, url),
        };
        let kind = match scheme.as_deref() {
            None => bare,
            Some("http") => ProxyKind::Http,
            Some("socks5" | "socks5h") => ProxyKind::Socks5,
            Some("https") => {
                return Err(invalid(
                    "https:// proxies (TLS to the proxy) are not supported".into(),
                ));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "unsupported scheme {other:?} (use http://, socks5:// or socks5h://)"
                )));
            }
        };
        if !allowed.contains(&kind) {
            return Err(invalid(format!(
                "expected a {} proxy URL",
                scheme_of(allowed[0])
            )));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() && tail != "/" {
            return Err(invalid("a proxy URL has no path, query or fragment".into()));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) =
            split_host_port(host_port).ok_or_else(|| invalid("invalid host or port".into()))?;
        let port = port.unwrap_or(match kind {
            ProxyKind::Http => 80,
            ProxyKind::Socks5 => 1080,
        });
        let credentials = userinfo
            .map(|userinfo| Credentials::parse(userinfo, kind))
            .transpose()
            .map_err(|why| invalid(why.into()))?;
        Ok(Proxy {
            kind,
            host: host.to_owned(),
            port,
            credentials,
        })
    }
}

impl Credentials {
    fn parse(userinfo: &str, kind: ProxyKind) -> Result<Credentials, &'static str> {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let user = percent_decode(user).ok_or("invalid percent-encoding in the user name")?;
        let password =
            percent_decode(password).ok_or("invalid percent-encoding in the password")?;
        if user.is_empty() {
            return Err("empty user name");
        }
        if user.iter().chain(&password).any(u8::is_ascii_control) {
            return Err("control characters in the credentials");
        }
        match kind {
            // RFC 7617 section 2: the user-id cannot hold a colon.
            ProxyKind::Http if user.contains(&b':') => Err("a colon in the user name"),
            // RFC 1929: each is a length byte and at most 255 bytes.
            ProxyKind::Socks5 if user.len() > 255 || password.len() > 255 => {
                Err("SOCKS5 user names and passwords are at most 255 bytes")
            }
            _ => Ok(Credentials { user, password }),
        }
    }
}

/// `scheme://host:port`, without credentials.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = scheme_of(self.kind);
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .credentials
            .as_ref()
            .map(|credentials| String::from_utf8_lossy(&credentials.user));
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &user)
            .finish_non_exhaustive()
    }
}

fn scheme_of(kind: ProxyKind) -> &'static str {
    match kind {
        ProxyKind::Http => "http",
        ProxyKind::Socks5 => "socks5",
    }
}

/// Splits `host[:port]` or `[v6]` / `[v6]:port`. The host keeps no
/// brackets; an empty port after a colon is refused.
pub(crate) fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (literal, port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let valid_host = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~%".contains(&byte);
    if host.is_empty() || !(host.contains(':') || host.bytes().all(valid_host)) {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// The destination host as the proxy is told it: brackets removed, and
/// nothing that could end a header line or a SOCKS field early.
fn destination_host(host: &str) -> Result<&str, Error> {
    let invalid = || Error::InvalidUrl(format!("invalid host {host:?}"));
    if let Some(literal) = host.strip_prefix('[') {
        let literal = literal.strip_suffix(']').ok_or_else(invalid)?;
        return match literal.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(literal),
            Err(_) => Err(invalid()),
        };
    }
    let name_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~%".contains(&byte));
    if name_ok || host.parse::<IpAddr>().is_ok() {
        Ok(host)
    } else {
        Err(invalid())
    }
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let digits = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                return None;
            }
            decoded.push(u8::from_str_radix(digits, 16).ok()?);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(result: Result<Proxy, Error>) -> String {
        match result {
            Err(Error::Proxy(ProxyError::InvalidUrl(why))) => why,
            other => panic!("expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn http_proxy_urls() {
        let proxy = Proxy::http("http://proxy.example:3128").unwrap();
        assert_eq!(proxy.kind(), ProxyKind::Http);
        assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
        assert!(!proxy.has_credentials());
        assert_eq!(Proxy::http("HTTP://p/").unwrap().port(), 80);
        assert_eq!(Proxy::http("p:8080").unwrap().port(), 8080);
        let proxy = Proxy::http("http://[::1]:3128").unwrap();
        assert_eq!(proxy.host(), "::1");
        assert_eq!(proxy.to_string(), "http://[::1]:3128");
    }

    #[test]
    fn socks5_proxy_urls() {
        for url in ["socks5://127.0.0.1", "socks5h://127.0.0.1", "127.0.0.1"] {
            let proxy = Proxy::socks5(url).unwrap();
            assert_eq!(proxy.kind(), ProxyKind::Socks5);
            assert_eq!(proxy.port(), 1080, "{url}");
        }
        assert_eq!(
            Proxy::from_url("socks5h://h:9050").unwrap().kind(),
            ProxyKind::Socks5
        );
        assert_eq!(Proxy::from_url("h:9050").unwrap().kind(), ProxyKind::Http);
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_shown() {
        let proxy = Proxy::http("http://al%40ice:p%3Ass@p:1").unwrap();
        let credentials = proxy.credentials.as_ref().unwrap();
        assert_eq!(credentials.user, b"al@ice");
        assert_eq!(credentials.password, b"p:ss");
        let shown = format!("{proxy} {proxy:?}");
        assert!(
            !shown.contains("p:ss") && !shown.contains("p%3Ass"),
            "{shown}"
        );
        assert!(shown.contains("al@ice"), "{shown}");
        // A password may contain '@': the last one ends the userinfo.
        let proxy = Proxy::socks5("socks5://u:a@b@p").unwrap();
        assert_eq!(proxy.credentials.unwrap().password, b"a@b");
        let proxy = Proxy::http("http://token@p").unwrap();
        assert_eq!(proxy.credentials.unwrap().password, b"");
    }

    #[test]
    fn unusable_urls_are_refused_without_echoing_them() {
        assert!(invalid(Proxy::from_url("https://p:443")).contains("https://"));
        assert!(invalid(Proxy::from_url("socks4://p")).contains("socks4"));
        assert!(invalid(Proxy::http("socks5://p")).contains("http"));
        assert!(invalid(Proxy::socks5("http://p")).contains("socks5"));
        assert!(invalid(Proxy::http("http://p:1/path")).contains("path"));
        for url in [
            "http://",
            "http://:80",
            "http://p:",
            "http://p:99999",
            "http://p q",
        ] {
            assert_eq!(invalid(Proxy::http(url)), "invalid host or port", "{url}");
        }
        let why = invalid(Proxy::http("http://u%3Aser:secret@p"));
        assert!(!why.contains("secret"));
        invalid(Proxy::http("http://u:%zz@p"));
        invalid(Proxy::http("http://u:%0D%0A@p"));
        invalid(Proxy::http("http://:pw@p"));
        let long = format!("socks5://{}:pw@p", "u".repeat(256));
        invalid(Proxy::socks5(&long));
    }

    #[test]
    fn destination_hosts() {
        assert_eq!(destination_host("example.com").unwrap(), "example.com");
        assert_eq!(destination_host("[::1]").unwrap(), "::1");
        assert_eq!(destination_host("::1").unwrap(), "::1");
        for bad in ["", "a b", "a\r\nX: y", "a:b", "[a]"] {
            assert!(destination_host(bad).is_err(), "{bad:?}");
        }
    }
}
