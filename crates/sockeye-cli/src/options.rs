//! Parsers for option values shared by the commands: URLs, sizes,
//! durations and headers. Each returns a short reason on bad input, which
//! clap prints on one line with the option's name (exit status 2).

use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// A `ws://` or `wss://` URL with a host and, if it has one, a port from
/// 1 to 65535: the library's own check
/// ([`sockeye::ClientBuilder::check_url`]), with its reason.
pub fn parse_url(text: &str) -> Result<String, String> {
    match sockeye::ClientBuilder::check_url(text) {
        Ok(()) => Ok(text.to_owned()),
        Err(sockeye::Error::InvalidUrl(why)) => Err(why),
        Err(other) => Err(other.to_string()),
    }
}

/// `text` with the password of every `scheme://user:password@` in it
/// replaced by `***`: URLs are printed in status lines, errors and logs,
/// their passwords never.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A byte count: `1000`, `64KiB`, `16MiB`, `1GiB`, `10kB`, `1MB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 125, 64KiB, 16MiB)"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "k" | "K" | "kB" | "KB" => 1_000,
        "KiB" | "Ki" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" | "Mi" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" | "Gi" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The longest duration accepted: past it, adding it to the current time
/// could overflow the clock (a panic), and no timer needs more.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A duration: `30` (seconds), `1.5s`, `250ms`, `2m`; positive, at most a
/// year.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_seconds(text)? {
        Some(duration) => Ok(duration),
        None => Err(format!(
            "{:?} is not a positive duration (examples: 10, 1.5s, 250ms)",
            text.trim()
        )),
    }
}

/// A duration that can be turned off, for optional timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// A positive count, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalCount(pub Option<usize>);

/// A positive count, or `off` for none.
pub fn parse_optional_count(text: &str) -> Result<OptionalCount, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(OptionalCount(None));
    }
    match text.parse::<usize>() {
        Ok(count) if count > 0 => Ok(OptionalCount(Some(count))),
        _ => Err(format!("expected a positive count or `off`, not {text:?}")),
    }
}

/// A duration as [`parse_duration`] reads it, or `off` (or `0`) for none.
pub fn parse_optional_duration(text: &str) -> Result<OptionalDuration, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(OptionalDuration(None));
    }
    parse_seconds(text).map(OptionalDuration)
}

/// `None` for zero; an error for what is not a duration, is negative,
/// too long, or so short it rounds to zero.
fn parse_seconds(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|value: &f64| value.is_finite() && *value >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a duration (examples: 10, 1.5s, 250ms)"))?;
    if value == 0.0 {
        return Ok(None);
    }
    match Duration::try_from_secs_f64(value * scale) {
        Ok(duration) if duration > MAX_DURATION => {
            Err(format!("{text:?} is too long (at most a year)"))
        }
        Ok(duration) if duration.is_zero() => Err(format!("{text:?} is too short")),
        Ok(duration) => Ok(Some(duration)),
        Err(_) => Err(format!("{text:?} is too long (at most a year)")),
    }
}

/// A request header, `Name: value`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header (expected \"Name: value\")"))?;
    let name = HeaderName::try_from(name.trim())
        .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
    let value = HeaderValue::try_from(value.trim())
        .map_err(|_| format!("the value of header {name} is not valid"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("ws://127.0.0.1:9001/chat").is_ok());
        assert!(parse_url("WSS://example.com").is_ok());
        assert!(
            parse_url("http://example.com")
                .unwrap_err()
                .contains("unknown scheme")
        );
        assert!(parse_url("example.com").is_err());
        assert!(
            parse_url("ws://exa mple")
                .unwrap_err()
                .contains("malformed")
        );
        assert!(parse_url("ws:///path").is_err());
        for bad in [
            "ws://host:99999/",
            "ws://host:abc/",
            "ws://host:0",
            "ws://u:p@host:65536",
            "ws://[::1]:x/",
        ] {
            assert!(
                parse_url(bad).unwrap_err().contains("invalid port"),
                "{bad}"
            );
        }
        assert!(parse_url("ws://[::1]:9001/a:b").is_ok());
        assert!(parse_url("ws://u:p@host/").is_ok());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("ws://u:pw@h:1/x"), "ws://u:***@h:1/x");
        assert_eq!(redact("wss://u@h/"), "wss://u@h/");
        assert_eq!(
            redact("invalid value 'ws://a:b:c@h:x/' for '<URL>' and ws://h/"),
            "invalid value 'ws://a:***@h:x/' for '<URL>' and ws://h/"
        );
        assert_eq!(redact("no url"), "no url");
        assert_eq!(redact("ws://"), "ws://");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("125"), Ok(125));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert!(parse_size("").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("1e300").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1e-12").is_err());
        assert!(parse_duration("2e10").unwrap_err().contains("too long"));
        assert!(parse_duration("0").unwrap_err().contains("positive"));
    }

    #[test]
    fn optional_durations() {
        assert_eq!(parse_optional_duration("off"), Ok(OptionalDuration(None)));
        assert_eq!(parse_optional_duration("OFF"), Ok(OptionalDuration(None)));
        assert_eq!(parse_optional_duration("0"), Ok(OptionalDuration(None)));
        assert_eq!(parse_optional_duration("0ms"), Ok(OptionalDuration(None)));
        assert_eq!(
            parse_optional_duration("20s"),
            Ok(OptionalDuration(Some(Duration::from_secs(20))))
        );
        assert!(parse_optional_duration("-1").is_err());
        assert!(parse_optional_duration("never").is_err());
        assert!(parse_optional_duration("1.7e19").is_err());
    }

    #[test]
    fn optional_counts() {
        assert_eq!(parse_optional_count("off"), Ok(OptionalCount(None)));
        assert_eq!(parse_optional_count("256"), Ok(OptionalCount(Some(256))));
        assert!(parse_optional_count("0").is_err());
        assert!(parse_optional_count("-1").is_err());
        assert!(parse_optional_count("many").is_err());
    }

    #[test]
    fn headers() {
        let (name, value) = parse_header("Authorization: Bearer x").unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value, "Bearer x");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
