//! Choosing a proxy from environment variables, as curl and Python's
//! `websockets` do: `ws_proxy` / `wss_proxy`, `http_proxy` /
//! `https_proxy`, `all_proxy`, and the `no_proxy` exceptions.

use std::net::IpAddr;

use super::{Proxy, ProxyError};
use crate::client::Target;
use crate::error::Error;

pub(super) fn from_env_with(
    target_url: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, Error> {
    let target = Target::parse(target_url)?;
    let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let either = |lower: &str, upper: &str| {
        get(lower)
            .map(|value| (lower.to_owned(), value))
            .or_else(|| get(upper).map(|value| (upper.to_owned(), value)))
    };
    if let Some((_, list)) = either("no_proxy", "NO_PROXY")
        && bypasses(&list, &target.host, target.port)
    {
        return Ok(None);
    }
    let found = if target.secure {
        either("wss_proxy", "WSS_PROXY").or_else(|| either("https_proxy", "HTTPS_PROXY"))
    } else {
        either("ws_proxy", "WS_PROXY").or_else(|| {
            get("http_proxy")
                .map(|value| ("http_proxy".to_owned(), value))
                // httpoxy: in CGI, a request's `Proxy:` header becomes
                // HTTP_PROXY; REQUEST_METHOD says we run under CGI.
                .or_else(|| match get("REQUEST_METHOD") {
                    Some(_) => None,
                    None => get("HTTP_PROXY").map(|value| ("HTTP_PROXY".to_owned(), value)),
                })
        })
    };
    let Some((name, value)) = found.or_else(|| either("all_proxy", "ALL_PROXY")) else {
        return Ok(None);
    };
    match Proxy::from_url(value.trim()) {
        Ok(proxy) => Ok(Some(proxy)),
        Err(Error::Proxy(ProxyError::InvalidUrl(why))) => Err(Error::Proxy(
            ProxyError::InvalidUrl(format!("{why} (in {name})")),
        )),
        Err(other) => Err(other),
    }
}

/// Whether `no_proxy` (`list`) sends `host:port` directly. `host` is bare
/// (no IPv6 brackets).
pub(crate) fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = normalize(host);
    let host_ip = host.parse::<IpAddr>().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, entry_port) = split_entry(entry);
            if entry_port.is_some_and(|entry_port| entry_port != port) {
                return false;
            }
            match (host_ip, Pattern::parse(pattern)) {
                (Some(ip), Pattern::Ip(address)) => ip == address,
                (Some(ip), Pattern::Cidr(network, bits)) => in_network(ip, network, bits),
                (None, Pattern::Domain(domain)) => {
                    host == domain
                        || host
                            .strip_suffix(domain.as_str())
                            .is_some_and(|prefix| prefix.ends_with('.'))
                }
                _ => false,
            }
        })
}

/// Lower case, without the trailing dot of a fully qualified name.
fn normalize(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Splits an optional `:port` off an entry: `host:80`, `[::1]:80`,
/// `10.0.0.0/8:80`; a bare IPv6 address keeps its colons.
fn split_entry(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((literal, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').and_then(|port| port.parse().ok());
        return (literal, port);
    }
    if entry.matches(':').count() == 1
        && let Some((pattern, port)) = entry.split_once(':')
        && let Ok(port) = port.parse()
    {
        return (pattern, Some(port));
    }
    (entry, None)
}

enum Pattern {
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    Domain(String),
}

impl Pattern {
    fn parse(text: &str) -> Pattern {
        if let Ok(address) = text.parse() {
            return Pattern::Ip(address);
        }
        if let Some((address, bits)) = text.split_once('/') {
            let address = address.trim_start_matches('[').trim_end_matches(']');
            if let (Ok(address), Ok(bits)) = (address.parse::<IpAddr>(), bits.parse::<u8>()) {
                let max = if address.is_ipv4() { 32 } else { 128 };
                if bits <= max {
                    return Pattern::Cidr(address, bits);
                }
            }
        }
        let domain = text.strip_prefix('*').unwrap_or(text);
        Pattern::Domain(normalize(domain.trim_start_matches('.')))
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            (u128::from(ip.to_bits()), u128::from(network.to_bits()), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => (ip.to_bits(), network.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    // A /0 matches everything of the family; shifting by 128 would overflow.
    shift >= width || ip >> shift == network >> shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyKind;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn chosen(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        from_env_with(url, lookup(vars))
            .unwrap()
            .map(|proxy| proxy.to_string())
    }

    #[test]
    fn scheme_picks_the_variable() {
        let vars = [
            ("http_proxy", "http://plain:1"),
            ("https_proxy", "http://secure:2"),
        ];
        assert_eq!(chosen("ws://x/", &vars).unwrap(), "http://plain:1");
        assert_eq!(chosen("wss://x/", &vars).unwrap(), "http://secure:2");
        assert_eq!(chosen("ws://x/", &[("HTTPS_PROXY", "h:1")]), None);
        assert_eq!(chosen("ws://x/", &[]), None);
    }

    #[test]
    fn precedence() {
        let all = [
            ("ws_proxy", "http://ws:1"),
            ("WS_PROXY", "http://WS:1"),
            ("http_proxy", "http://http:1"),
            ("HTTP_PROXY", "http://HTTP:1"),
            ("all_proxy", "socks5://all:1"),
            ("ALL_PROXY", "socks5://ALL:1"),
        ];
        for skip in 0..all.len() {
            let expected = all[skip].1.to_ascii_lowercase();
            let got = chosen("ws://x/", &all[skip..]).unwrap();
            assert_eq!(got.to_ascii_lowercase(), expected);
        }
        let secure = [
            ("WSS_PROXY", "http://wss:1"),
            ("https_proxy", "http://https:1"),
            ("all_proxy", "http://all:1"),
        ];
        assert_eq!(chosen("wss://x/", &secure).unwrap(), "http://wss:1");
        assert_eq!(chosen("wss://x/", &secure[1..]).unwrap(), "http://https:1");
        assert_eq!(chosen("wss://x/", &secure[2..]).unwrap(), "http://all:1");
        // Empty values count as unset.
        let empty = [("http_proxy", ""), ("HTTP_PROXY", "http://upper:1")];
        assert_eq!(chosen("ws://x/", &empty).unwrap(), "http://upper:1");
    }

    #[test]
    fn httpoxy_upper_case_http_proxy_is_ignored_under_cgi() {
        let cgi = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")];
        assert_eq!(chosen("ws://x/", &cgi), None);
        let lower = [("REQUEST_METHOD", "GET"), ("http_proxy", "http://ok:1")];
        assert_eq!(chosen("ws://x/", &lower).unwrap(), "http://ok:1");
    }

    #[test]
    fn proxy_scheme_picks_the_kind() {
        for (value, kind) in [
            ("http://p:1", ProxyKind::Http),
            ("p:1", ProxyKind::Http),
            ("socks5://p:1", ProxyKind::Socks5),
            ("SOCKS5H://p:1", ProxyKind::Socks5),
        ] {
            let proxy = from_env_with("ws://x/", lookup(&[("all_proxy", value)]))
                .unwrap()
                .unwrap();
            assert_eq!(proxy.kind(), kind, "{value}");
        }
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        let error = from_env_with("wss://x/", lookup(&[("HTTPS_PROXY", "ftp://u:secret@p")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("HTTPS_PROXY"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(matches!(
            from_env_with("http://x/", lookup(&[])),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn no_proxy_disables() {
        let vars = [("all_proxy", "http://p:1"), ("NO_PROXY", "example.com")];
        assert_eq!(chosen("ws://www.example.com/", &vars), None);
        assert!(chosen("ws://example.org/", &vars).is_some());
        let vars = [
            ("all_proxy", "http://p:1"),
            ("no_proxy", "other.com"),
            ("NO_PROXY", "example.com"),
        ];
        assert!(
            chosen("ws://example.com/", &vars).is_some(),
            "lower case wins"
        );
        let vars = [("all_proxy", "http://p:1"), ("no_proxy", "[::1]:8080")];
        assert_eq!(chosen("ws://[::1]:8080/", &vars), None);
        assert!(chosen("ws://[::1]:8081/", &vars).is_some());
    }

    #[test]
    fn no_proxy_matching() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "anything", 80, true),
            ("a.com, *", "anything", 80, true),
            ("example.com", "example.com", 80, true),
            ("example.com", "EXAMPLE.com.", 80, true),
            ("Example.COM", "www.example.com", 80, true),
            ("example.com", "notexample.com", 80, false),
            ("example.com", "example.com.evil", 80, false),
            (".example.com", "example.com", 80, true),
            (".example.com", "a.b.example.com", 80, true),
            ("*.example.com", "a.example.com", 80, true),
            ("example.com.", "a.example.com", 80, true),
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            ("localhost", "localhost", 9001, true),
            ("localhost", "127.0.0.1", 9001, false),
            ("127.0.0.1", "127.0.0.1", 9001, true),
            ("127.0.0.1:9001", "127.0.0.1", 9001, true),
            ("127.0.0.1:9002", "127.0.0.1", 9001, false),
            ("0.0.1", "127.0.0.1", 80, false),
            ("10.0.0.0/8", "10.200.3.4", 80, true),
            ("10.0.0.0/8", "11.0.0.1", 80, false),
            ("10.0.0.0/8:80", "10.0.0.1", 80, true),
            ("0.0.0.0/0", "8.8.8.8", 80, true),
            ("0.0.0.0/0", "::1", 80, false),
            ("::1", "::1", 80, true),
            ("[::1]", "::1", 80, true),
            ("[::1]:443", "::1", 443, true),
            ("fd00::/8", "fd12::1", 80, true),
            ("fd00::/8", "fe80::1", 80, false),
            ("example.com", "10.0.0.1", 80, false),
            ("", "example.com", 80, false),
            (" , ,", "example.com", 80, false),
            ("a.com b.com", "b.com", 80, true),
        ];
        for &(list, host, port, expected) in cases {
            assert_eq!(
                bypasses(list, host, port),
                expected,
                "{list:?} {host}:{port}"
            );
        }
    }
}
