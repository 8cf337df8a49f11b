//! Hosts, ports and origins: the `Host` header (RFC 7230 section 5.4), the
//! authority of a `ws://` URI (RFC 6455 section 3) and the `Origin` header
//! (RFC 6454 section 7), and the server's origin policy (RFC 6455 sections
//! 4.2.2 and 10.2).
//!
//! Browsers let any page open a WebSocket to any server and send along the
//! user's cookies; the `Origin` header is the server's only way to tell a
//! page of its own site from someone else's (cross-site WebSocket
//! hijacking). Hence the default policy refuses browsers from other hosts.

use std::net::Ipv6Addr;

/// A `host [ ":" port ]` as found in `Host` or a URI authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort<'a> {
    /// The host as written, IPv6 literals with their brackets.
    pub host: &'a str,
    /// The explicit port, if any.
    pub port: Option<u16>,
}

/// Parses `uri-host [ ":" port ]` (RFC 3986 section 3.2.2), strictly: a
/// non-empty host, an IPv6 literal that parses, a port of 1 to 5 digits
/// that fits in 16 bits (an empty port after the colon is refused). No
/// userinfo.
pub fn parse_host_port(text: &str) -> Option<HostPort<'_>> {
    let (host, rest) = if text.starts_with('[') {
        let close = text.find(']')?;
        let literal = text.get(1..close)?;
        literal.parse::<Ipv6Addr>().ok()?;
        (text.get(..=close)?, text.get(close + 1..)?)
    } else {
        let end = text.find(':').unwrap_or(text.len());
        let host = text.get(..end)?;
        if host.is_empty() || !host.bytes().all(is_reg_name_byte) {
            return None;
        }
        (host, text.get(end..)?)
    };
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => None,
        None => return None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some(HostPort { host, port })
}

/// `unreserved / pct-encoded / sub-delims` (RFC 3986 section 3.2.2), which
/// covers DNS names and IPv4 addresses.
fn is_reg_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&byte)
}

/// The default port of a scheme that has one here.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// A host in the form hosts are compared in: ASCII lowercase, without the
/// trailing dot of a fully qualified name (`example.com.` and `example.com`
/// name the same host, so neither form may slip past a comparison).
pub fn comparable_host(host: &str) -> String {
    let host = if host.starts_with('[') {
        host
    } else {
        host.strip_suffix('.').unwrap_or(host)
    };
    host.to_ascii_lowercase()
}

/// A parsed, non-opaque origin: scheme, host and effective port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    /// The explicit port, or the scheme's default; `None` for a scheme
    /// without a default and no port.
    port: Option<u16>,
    /// Whether the port was written out.
    explicit_port: bool,
}

/// Parses the ASCII serialization of an origin (RFC 6454 section 6.2):
/// `scheme "://" host [ ":" port ]`, nothing more (no path, no trailing
/// slash, no userinfo). `null` and anything malformed give `None`.
fn parse_origin(text: &str) -> Option<Origin> {
    let (scheme, authority) = text.split_once("://")?;
    let mut scheme_bytes = scheme.bytes();
    if !scheme_bytes.next()?.is_ascii_alphabetic()
        || !scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let host_port = parse_host_port(authority)?;
    let scheme = scheme.to_ascii_lowercase();
    Some(Origin {
        host: comparable_host(host_port.host),
        port: host_port.port.or_else(|| default_port(&scheme)),
        explicit_port: host_port.port.is_some(),
        scheme,
    })
}

/// An entry of an origin allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowedOrigin {
    /// A `scheme://host[:port]` origin, matched on scheme, host and
    /// effective port (so `https://a.example:443` also allows
    /// `https://a.example`).
    Parsed(Origin),
    /// Anything else, such as `null`, matched as an ASCII case-insensitive
    /// string.
    Literal(String),
}

/// Which `Origin` headers a server accepts. See
/// [`ServerHandshake`](super::ServerHandshake) for the builder methods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum OriginPolicy {
    /// The origin's host and port must be the request's `Host`.
    #[default]
    SameHost,
    /// The origin must be one of these.
    AllowList(Vec<AllowedOrigin>),
    /// Any origin.
    Any,
}

impl OriginPolicy {
    pub(crate) fn allow_list<I, S>(origins: I) -> OriginPolicy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|origin| {
                let origin = origin.as_ref();
                match parse_origin(origin) {
                    Some(parsed) => AllowedOrigin::Parsed(parsed),
                    None => AllowedOrigin::Literal(origin.to_ascii_lowercase()),
                }
            })
            .collect();
        OriginPolicy::AllowList(origins)
    }

    /// Whether a request with this `Origin` value and this (validated)
    /// `Host` may connect.
    ///
    /// `secure` says whether the request came over TLS, when the server
    /// knows: then the same-host rule also wants the origin's scheme to be
    /// the connection's (`https` or `wss` over TLS, `http` or `ws`
    /// without), since an origin is a scheme, a host and a port (RFC 6454).
    pub(crate) fn allows(&self, origin: &[u8], host: HostPort<'_>, secure: Option<bool>) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return matches!(self, OriginPolicy::Any);
        };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::SameHost => {
                parse_origin(origin).is_some_and(|origin| same_host(&origin, host, secure))
            }
            OriginPolicy::AllowList(allowed) => {
                let parsed = parse_origin(origin);
                allowed.iter().any(|entry| match (entry, &parsed) {
                    (AllowedOrigin::Parsed(entry), Some(parsed)) => {
                        entry.scheme == parsed.scheme
                            && entry.host == parsed.host
                            && entry.port == parsed.port
                    }
                    (AllowedOrigin::Literal(entry), _) => entry.eq_ignore_ascii_case(origin),
                    (AllowedOrigin::Parsed(_), None) => false,
                })
            }
        }
    }
}

/// Whether an origin names the host the request was sent to.
///
/// The server cannot tell from the request whether it came over TLS, so a
/// `Host` without a port (the client used its scheme's default, 80 or 443)
/// matches an origin on its own scheme's default port, whichever scheme;
/// a `Host` with a port matches an origin whose effective port is that
/// port. Only http, https, ws and wss origins can match. When the server
/// knows whether the connection is secure, the origin's scheme must be the
/// connection's, and a `Host` without a port means that scheme's default.
fn same_host(origin: &Origin, host: HostPort<'_>, secure: Option<bool>) -> bool {
    if default_port(&origin.scheme).is_none() || origin.host != comparable_host(host.host) {
        return false;
    }
    if let Some(secure) = secure {
        let origin_secure = matches!(origin.scheme.as_str(), "https" | "wss");
        if origin_secure != secure {
            return false;
        }
    }
    match host.port {
        Some(port) => origin.port == Some(port),
        None => !origin.explicit_port || origin.port == default_port(&origin.scheme),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> HostPort<'_> {
        parse_host_port(text).unwrap()
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            host("example.com"),
            HostPort {
                host: "example.com",
                port: None
            }
        );
        assert_eq!(
            host("example.com:8080"),
            HostPort {
                host: "example.com",
                port: Some(8080)
            }
        );
        assert_eq!(
            host("[::1]:9001"),
            HostPort {
                host: "[::1]",
                port: Some(9001)
            }
        );
        assert_eq!(
            host("[::1]"),
            HostPort {
                host: "[::1]",
                port: None
            }
        );
        assert_eq!(
            host("10.0.0.1:0080"),
            HostPort {
                host: "10.0.0.1",
                port: Some(80)
            }
        );
        for bad in [
            "",
            ":80",
            "example.com:",
            "example.com:65536",
            "example.com:1a",
            "a b",
            "a@b",
            "[::1",
            "[zz]",
            "[::1]x",
            "[::1]:",
            "a:1:2",
            "a/b",
            "example.com:000080",
        ] {
            assert_eq!(parse_host_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn origins_parse_strictly() {
        let origin = parse_origin("HTTPS://Example.COM.").unwrap();
        assert_eq!(origin.scheme, "https");
        assert_eq!(origin.host, "example.com");
        assert_eq!(origin.port, Some(443));
        for bad in [
            "null",
            "",
            "example.com",
            "https://",
            "https://a/",
            "https://u@a",
            "1x://a",
            "://a",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn same_host_compares_default_ports() {
        let policy = OriginPolicy::SameHost;
        let allows = |origin: &str, host_header: &str| {
            policy.allows(origin.as_bytes(), host(host_header), None)
        };
        assert!(allows("https://example.com", "example.com"));
        assert!(allows("http://example.com", "example.com"));
        assert!(allows("https://example.com:443", "example.com"));
        assert!(allows("https://example.com", "example.com:443"));
        assert!(allows("http://example.com:8080", "example.com:8080"));
        assert!(allows("http://EXAMPLE.com", "example.COM."));
        assert!(allows("http://[::1]:8080", "[::1]:8080"));
        assert!(!allows("https://example.com", "example.com:80"));
        assert!(!allows("http://example.com", "example.com:443"));
        assert!(!allows("http://example.com:8080", "example.com"));
        assert!(!allows("https://example.com:8443", "example.com"));
        assert!(!allows("https://evil.example", "example.com"));
        assert!(!allows("https://example.com.evil.example", "example.com"));
        assert!(!allows("null", "example.com"));
        assert!(!allows("chrome-extension://example.com", "example.com"));
    }

    #[test]
    fn allow_list_matches_scheme_host_and_effective_port() {
        let policy = OriginPolicy::allow_list(["https://app.example:443", "null"]);
        let allows = |origin: &str| policy.allows(origin.as_bytes(), host("ws.example"), None);
        assert!(allows("https://app.example"));
        assert!(allows("HTTPS://APP.EXAMPLE:443"));
        assert!(allows("null"));
        assert!(allows("NULL"));
        assert!(!allows("http://app.example"));
        assert!(!allows("https://app.example:8443"));
        assert!(!allows("https://ws.example"));
    }

    #[test]
    fn non_utf8_origins_only_pass_the_any_policy() {
        assert!(!OriginPolicy::SameHost.allows(b"http://\xff", host("example.com"), None));
        assert!(OriginPolicy::Any.allows(b"https://a", host("b"), Some(false)));
        assert!(OriginPolicy::Any.allows(b"http://\xff", host("example.com"), None));
    }

    #[test]
    fn same_host_compares_the_scheme_when_the_transport_is_known() {
        let policy = OriginPolicy::SameHost;
        let allows = |origin: &str, host_header: &str, secure: bool| {
            policy.allows(origin.as_bytes(), host(host_header), Some(secure))
        };
        // Plain connection: only http and ws origins.
        assert!(allows("http://localhost:9001", "localhost:9001", false));
        assert!(allows("ws://localhost:9001", "localhost:9001", false));
        assert!(!allows("https://localhost:9001", "localhost:9001", false));
        assert!(allows("http://example.com", "example.com", false));
        assert!(!allows("https://example.com", "example.com", false));
        // TLS: only https and wss origins; no port means 443.
        assert!(allows("https://example.com", "example.com", true));
        assert!(allows("https://example.com:443", "example.com", true));
        assert!(!allows("http://example.com", "example.com", true));
        assert!(!allows("http://example.com:443", "example.com:443", true));
        // Unknown transport: either scheme, as before.
        assert!(policy.allows(b"https://example.com", host("example.com"), None));
        assert!(policy.allows(b"http://example.com", host("example.com"), None));
    }
}
