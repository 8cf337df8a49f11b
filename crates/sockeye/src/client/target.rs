//! Where a client connects, from its URL: host, port and TLS; and whether
//! credentials given for one URL may go to another.

use http::Uri;

use crate::error::Error;

/// Where to connect, from the URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Without the brackets of an IPv6 literal.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) secure: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        // The port as written, checked first: `Uri` refuses `:abc` as a
        // whole-URL syntax error, and reads `:99999` as no port at all.
        let port = match port_text(url) {
            None => None,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    return Err(Error::InvalidUrl(format!(
                        "invalid port {text:?} in the URL (expected 1 to 65535)"
                    )));
                }
            },
        };
        let uri: Uri = url
            .parse()
            // Not the URL itself: it may hold a password.
            .map_err(|error| {
                Error::InvalidUrl(format!(
                    "malformed URL (expected ws://HOST[:PORT]/PATH): {error}"
                ))
            })?;
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ws") => false,
            Some("wss") => true,
            Some(other) => {
                return Err(Error::InvalidUrl(format!(
                    "unknown scheme {other:?} (use ws:// or wss://)"
                )));
            }
            None => return Err(Error::InvalidUrl("no scheme (use ws:// or wss://)".into())),
        };
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| Error::InvalidUrl("no host in URL".into()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        Ok(Target { host, port, secure })
    }

    /// Whether credentials given for `self` may be sent to `other`: the
    /// same host and port, and no step down from TLS.
    pub(crate) fn trusts(&self, other: &Target) -> bool {
        let comparable = |host: &str| host.trim_end_matches('.').to_ascii_lowercase();
        comparable(&self.host) == comparable(&other.host)
            && self.port == other.port
            && (other.secure || !self.secure)
    }
}

/// The port of `scheme://[userinfo@]host:port/...` as written, if any.
fn port_text(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    // After an IPv6 literal's bracket, or the last colon of a name.
    let after_host = match host_port.rfind(']') {
        Some(end) => &host_port[end + 1..],
        None => host_port,
    };
    after_host.rsplit_once(':').map(|(_, port)| port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ports_are_url_errors() {
        for url in [
            "ws://host:99999/",
            "ws://host:0/",
            "ws://host:65536/",
            "ws://host:abc/",
            "ws://[::1]:x/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(Error::InvalidUrl(ref why)) if why.contains("port")),
                "{url}"
            );
        }
        assert_eq!(Target::parse("ws://host:65535/").unwrap().port, 65535);
    }

    #[test]
    fn targets() {
        let t = Target::parse("ws://example.com/chat").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.secure),
            ("example.com", 80, false)
        );
        let t = Target::parse("WSS://example.com:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.secure),
            ("example.com", 8443, true)
        );
        let t = Target::parse("ws://[::1]:9001/x?y=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9001));
        let t = Target::parse("ws://user:pw@host/").unwrap();
        assert_eq!(t.host, "host");
        assert!(matches!(
            Target::parse("http://example.com"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("example.com"),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn credentials_stay_with_their_host_port_and_tls() {
        let trusts = |from: &str, to: &str| {
            Target::parse(from)
                .unwrap()
                .trusts(&Target::parse(to).unwrap())
        };
        assert!(trusts("ws://a.example/x", "ws://A.EXAMPLE./y"));
        assert!(trusts("wss://a.example/", "wss://a.example:443/"));
        assert!(trusts("ws://a.example:8080/", "wss://a.example:8080/"));
        assert!(!trusts("wss://a.example:8443/", "ws://a.example:8443/"));
        assert!(!trusts("ws://a.example/", "ws://b.example/"));
        assert!(!trusts("ws://a.example/", "ws://sub.a.example/"));
        assert!(!trusts("ws://a.example:1/", "ws://a.example:2/"));
        assert!(!trusts("ws://a.example/", "wss://a.example/"));
    }
}
