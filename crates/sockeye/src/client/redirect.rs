//! Following redirects in the opening handshake: which statuses redirect
//! (RFC 9110 section 15.4) and where `Location` leads, resolved against
//! the current URL (RFC 3986 section 5.2), with `http(s)` mapped to
//! `ws(s)` as RFC 6455 section 3 relates them.

use http::header::LOCATION;
use http::{Response, StatusCode, Uri};

use super::Target;
use crate::error::Error;

/// The statuses that redirect (RFC 9110 section 15.4), less 300 Multiple
/// Choices and 305/306, which name no single target.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect response leads, resolved against `base` (RFC 3986
/// section 5.2) with `http(s)` mapped to `ws(s)`.
pub(super) fn redirect_target(base: &str, response: &Response<()>) -> Result<Url, Error> {
    let status = response.status();
    let invalid = |reason: &str| Error::InvalidRedirect {
        status,
        reason: reason.to_owned(),
    };
    let mut locations = response.headers().get_all(LOCATION).iter();
    let location = match (locations.next(), locations.next()) {
        (Some(location), None) => location
            .to_str()
            .map_err(|_| invalid("Location is not ASCII"))?,
        (None, _) => return Err(invalid("no Location header")),
        (Some(_), Some(_)) => return Err(invalid("more than one Location header")),
    };
    let base = Url::parse(base)?;
    let next = base.join(location.trim()).map_err(invalid)?;
    Target::parse(&next.to_string()).map_err(|_| invalid("Location has no usable host"))?;
    Ok(next)
}

/// An absolute `ws://` or `wss://` URL in parts, for resolving redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    secure: bool,
    pub(super) userinfo: Option<String>,
    /// `host[:port]` as written.
    host_port: String,
    /// Starts with `/`.
    path: String,
    /// With its `?`, or empty.
    query: String,
}

impl Url {
    /// Parses an absolute URL whose scheme is `ws`, `wss`, `http` or
    /// `https` (mapped to the first two).
    fn parse_mapped(text: &str) -> Result<Url, &'static str> {
        let text = text.split('#').next().unwrap_or(text);
        let uri: Uri = text.parse().map_err(|_| "Location is not a valid URL")?;
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            _ => return Err("Location is not a ws, wss, http or https URL"),
        };
        let authority = uri.authority().ok_or("Location has no host")?.as_str();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo.to_owned()), host_port),
            None => (None, authority),
        };
        let path = match uri.path() {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        Ok(Url {
            secure,
            userinfo,
            host_port: host_port.to_owned(),
            path,
            query: uri
                .query()
                .map(|query| format!("?{query}"))
                .unwrap_or_default(),
        })
    }

    pub(super) fn parse(text: &str) -> Result<Url, Error> {
        Url::parse_mapped(text).map_err(|why| Error::InvalidUrl(why.to_owned()))
    }

    /// Resolves `reference` against this URL (RFC 3986 section 5.2.2).
    fn join(&self, reference: &str) -> Result<Url, &'static str> {
        let reference = reference.split('#').next().unwrap_or(reference);
        let has_scheme = reference
            .split_once(':')
            .is_some_and(|(scheme, _)| is_scheme(scheme));
        if has_scheme {
            return Url::parse_mapped(reference);
        }
        if reference.starts_with("//") {
            let scheme = if self.secure { "wss:" } else { "ws:" };
            return Url::parse_mapped(&format!("{scheme}{reference}"));
        }
        let (path, query) = match reference.find('?') {
            Some(at) => reference.split_at(at),
            None => (reference, ""),
        };
        let mut next = Url {
            userinfo: self.userinfo.clone(),
            host_port: self.host_port.clone(),
            ..self.clone()
        };
        next.query = query.to_owned();
        next.path = if path.is_empty() {
            if query.is_empty() {
                next.query = self.query.clone();
            }
            self.path.clone()
        } else if path.starts_with('/') {
            remove_dot_segments(path)
        } else {
            let directory = &self.path[..=self.path.rfind('/').unwrap_or(0)];
            remove_dot_segments(&format!("{directory}{path}"))
        };
        if next
            .path
            .bytes()
            .chain(next.query.bytes())
            .any(|byte| byte <= b' ' || byte == 0x7f)
        {
            return Err("Location is not a valid URL");
        }
        Ok(next)
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.secure { "wss://" } else { "ws://" })?;
        if let Some(userinfo) = &self.userinfo {
            write!(f, "{userinfo}@")?;
        }
        write!(f, "{}{}{}", self.host_port, self.path, self.query)
    }
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 section 3.1).
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte))
}

/// RFC 3986 section 5.2.4 for a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut output: Vec<&str> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.into_iter().enumerate() {
        match segment {
            "." | ".." => {
                if segment == ".." {
                    output.pop();
                }
                if index == last {
                    output.push("");
                }
            }
            segment => output.push(segment),
        }
    }
    format!("/{}", output.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn join(base: &str, reference: &str) -> String {
        Url::parse(base)
            .unwrap()
            .join(reference)
            .unwrap()
            .to_string()
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base = "ws://u:p@a.example:8080/b/c/d?q";
        for (reference, expected) in [
            ("https://x.example/y", "wss://x.example/y"),
            ("HTTP://x.example", "ws://x.example/"),
            ("wss://v@x.example:1/y?z#frag", "wss://v@x.example:1/y?z"),
            ("//x.example/y", "ws://x.example/y"),
            ("/g?h", "ws://u:p@a.example:8080/g?h"),
            ("g", "ws://u:p@a.example:8080/b/c/g"),
            ("./g/", "ws://u:p@a.example:8080/b/c/g/"),
            ("../g", "ws://u:p@a.example:8080/b/g"),
            ("../../../../g", "ws://u:p@a.example:8080/g"),
            ("..", "ws://u:p@a.example:8080/b/"),
            ("?y", "ws://u:p@a.example:8080/b/c/d?y"),
            ("", "ws://u:p@a.example:8080/b/c/d?q"),
            ("#f", "ws://u:p@a.example:8080/b/c/d?q"),
            ("/a/./b/../c", "ws://u:p@a.example:8080/a/c"),
        ] {
            assert_eq!(join(base, reference), expected, "{reference:?}");
        }
        let base = Url::parse("wss://a.example").unwrap();
        assert_eq!(base.join("//b/").unwrap().to_string(), "wss://b/");
        assert!(base.join("ftp://b/").is_err());
        assert!(base.join("mailto:x@y").is_err());
        assert!(base.join("/a b").is_err());
    }

    fn redirect(status: u16, locations: &[&str]) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for location in locations {
            response
                .headers_mut()
                .append(LOCATION, HeaderValue::from_str(location).unwrap());
        }
        response
    }

    #[test]
    fn unusable_redirects() {
        for (locations, reason) in [
            (&[][..], "no Location header"),
            (&["/a", "/b"], "more than one Location header"),
            (
                &["ftp://x/"],
                "Location is not a ws, wss, http or https URL",
            ),
            (&["http:///x"], "Location is not a valid URL"),
        ] {
            match redirect_target("ws://a/", &redirect(302, locations)) {
                Err(Error::InvalidRedirect {
                    status,
                    reason: why,
                }) => {
                    assert_eq!(status, StatusCode::FOUND);
                    assert_eq!(why, reason, "{locations:?}");
                }
                other => panic!("{locations:?}: {other:?}"),
            }
        }
        let next = redirect_target("ws://a/x", &redirect(308, &["http://b:1/y"])).unwrap();
        assert_eq!(next.to_string(), "ws://b:1/y");
        assert!(is_redirect(StatusCode::SEE_OTHER));
        assert!(!is_redirect(StatusCode::MULTIPLE_CHOICES));
        assert!(!is_redirect(StatusCode::NOT_MODIFIED));
    }
}
