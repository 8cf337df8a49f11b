//! How a command fails: a one-line message for stderr and the exit status
//! that says what kind of failure it was (the table is in `--help`).

use std::io;
use std::time::Duration;

use sockeye::Error;
use sockeye::proxy::ProxyError;

use crate::tls::SelfSigned;
use sockeye::proto::handshake::HandshakeErrorKind;

/// The exit statuses (see `EXIT_STATUS` in `main.rs`).
pub mod exit_code {
    /// Success.
    pub const OK: i32 = 0;
    /// Failure after the start (abnormal close, bench errors).
    pub const FAILED: i32 = 1;
    /// Bad input: arguments, URL, files.
    pub const USAGE: i32 = 2;
    /// Cannot connect or listen.
    pub const UNREACHABLE: i32 = 3;
    /// The server rejected the WebSocket handshake.
    pub const REJECTED: i32 = 4;
    /// Interrupted (Ctrl-C or SIGTERM) before the end: connect while
    /// connecting, or a second time while connect closes or bench
    /// finishes. 128 + SIGINT, as shells report it.
    pub const INTERRUPTED: i32 = 130;
}

/// A command's failure: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// Printed after `sockeye: `, on one line.
    pub message: String,
    /// The process exit status.
    pub code: i32,
}

impl Failure {
    /// Bad input (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::with_code(exit_code::USAGE, message)
    }

    /// A failure after the start (exit 1).
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure::with_code(exit_code::FAILED, message)
    }

    /// Cannot connect or listen (exit 3).
    pub fn unreachable(message: impl Into<String>) -> Failure {
        Failure::with_code(exit_code::UNREACHABLE, message)
    }

    /// Interrupted before the end (exit 130).
    pub fn interrupted(message: impl Into<String>) -> Failure {
        Failure::with_code(exit_code::INTERRUPTED, message)
    }

    fn with_code(code: i32, message: impl Into<String>) -> Failure {
        // One line, whatever the error's own text holds.
        let message = message.into().replace(['\r', '\n'], " ");
        Failure { message, code }
    }

    /// A failed attempt to open a connection to `url`, classified by cause.
    pub fn opening(url: &str, error: &Error) -> Failure {
        Failure::opening_within(url, error, None)
    }

    /// As [`Failure::opening`], saying how long the attempt was allowed
    /// (`timeout`) when it timed out. The URL's password is never shown.
    pub fn opening_within(url: &str, error: &Error, timeout: Option<Duration>) -> Failure {
        let url = &crate::options::redact(url);
        let within = timeout
            .map(|timeout| format!(" in {}", seconds(timeout)))
            .unwrap_or_default();
        match error {
            Error::InvalidUrl(why) => Failure::usage(format!("invalid URL {url:?}: {why}")),
            Error::Io(io) => {
                Failure::unreachable(format!("cannot connect to {url}: {}", describe_io(io)))
            }
            Error::Tls(io) => Failure::unreachable(describe_tls(url, io, error.tls_error())),
            Error::TlsExpected => Failure::unreachable(format!(
                "{url}: the server speaks TLS; try {}",
                with_scheme(url, "wss")
            )),
            Error::OpenTimeout => {
                Failure::unreachable(format!("cannot connect to {url}: timed out{within}"))
            }
            Error::HandshakeTimeout => Failure::unreachable(format!(
                "connected to {url}, but no WebSocket handshake answer{within} \
                 (is it a WebSocket server?)"
            )),
            Error::Proxy(ProxyError::Timeout { proxy }) => Failure::unreachable(format!(
                "the proxy {proxy} did not answer{within} (connecting to {url})"
            )),
            Error::Proxy(proxy) => Failure::unreachable(format!(
                "cannot connect to {url} through the proxy: {proxy}"
            )),
            Error::UnexpectedEof => Failure::unreachable(format!(
                "cannot connect to {url}: the server closed the connection during the handshake"
            )),
            Error::Handshake(handshake) => match handshake.kind() {
                HandshakeErrorKind::InvalidUri(_) | HandshakeErrorKind::InvalidOption(_) => {
                    Failure::usage(format!("{url}: {handshake}"))
                }
                _ => match handshake.status() {
                    Some(status) => {
                        let body = handshake
                            .body()
                            .and_then(|body| first_line(body))
                            .map(|line| format!(": {line}"))
                            .unwrap_or_default();
                        Failure::with_code(
                            exit_code::REJECTED,
                            format!(
                                "{url} rejected the WebSocket handshake with HTTP {}{body}",
                                status_text(status)
                            ),
                        )
                    }
                    None => Failure::with_code(
                        exit_code::REJECTED,
                        format!("WebSocket handshake with {url} failed: {handshake}"),
                    ),
                },
            },
            Error::Http2Unsupported(why) => Failure::with_code(
                exit_code::REJECTED,
                format!(
                    "{url} does not offer WebSocket over HTTP/2: {why} \
                     (without --http2, HTTP/1.1 is used)"
                ),
            ),
            Error::TooManyRedirects { .. } | Error::InvalidRedirect { .. } => {
                Failure::with_code(exit_code::REJECTED, format!("{url}: {error}"))
            }
            other => Failure::failed(format!("{url}: {other}")),
        }
    }
}

/// `10 s`, `1.5 s`, `250 ms`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

/// `url` with another scheme (`ws` or `wss`).
fn with_scheme(url: &str, scheme: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => format!("{scheme}://{rest}"),
        None => url.to_owned(),
    }
}

/// A failed TLS handshake in plain words, with what to do next.
fn describe_tls(url: &str, io: &io::Error, tls: Option<&rustls::Error>) -> String {
    use rustls::{CertificateError, Error as Tls};
    match tls {
        // Plain HTTP bytes where a TLS record was expected.
        Some(Tls::InvalidMessage(_)) => format!(
            "{url}: the server does not speak TLS; try {}",
            with_scheme(url, "ws")
        ),
        Some(Tls::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
            "{url}: the server's certificate is not signed by a trusted CA; \
             pass --ca FILE with the CA's certificate (PEM)"
        ),
        Some(Tls::InvalidCertificate(CertificateError::Other(other)))
            if other.0.downcast_ref::<SelfSigned>().is_some() =>
        {
            format!(
                "{url}: the server's certificate is self-signed; \
                 pass it with --ca FILE (PEM) to trust it"
            )
        }
        // webpki's CaUsedAsEndEntity, which rustls passes on as `Other`:
        // what `openssl req -x509` makes unless told otherwise.
        Some(Tls::InvalidCertificate(CertificateError::Other(other)))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            format!(
                "{url}: the server's certificate is a CA certificate (CA:TRUE, as \
                 openssl req -x509 makes by default), refused as a server's own even \
                 with --ca; make it with -addext basicConstraints=critical,CA:FALSE"
            )
        }
        Some(Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => format!("{url}: the server's certificate is not valid for this host name"),
        Some(Tls::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => format!("{url}: the server's certificate has expired"),
        _ if io.kind() == io::ErrorKind::UnexpectedEof => format!(
            "TLS handshake with {url} failed: the server closed the connection \
             (if it does not speak TLS, try {})",
            with_scheme(url, "ws")
        ),
        _ => format!("TLS handshake with {url} failed: {}", describe_io(io)),
    }
}

/// `403 Forbidden`.
pub fn status_text(status: http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The first non-empty line of a response body, if it is short text.
fn first_line(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    Some(line.chars().take(200).collect())
}

/// An I/O error as text, with the inner error of a TLS failure (rustls'
/// own words: "invalid peer certificate: UnknownIssuer").
pub fn describe_io(error: &io::Error) -> String {
    match error.get_ref() {
        Some(inner) => inner.to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        let failure = Failure::failed("a\nb\r\nc");
        assert_eq!(failure.message, "a b  c");
        assert_eq!(failure.code, exit_code::FAILED);
    }

    #[test]
    fn refused_connections_are_unreachable() {
        let error = Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let failure = Failure::opening("ws://127.0.0.1:1/", &error);
        assert_eq!(failure.code, exit_code::UNREACHABLE);
        assert!(
            failure
                .message
                .contains("cannot connect to ws://127.0.0.1:1/")
        );
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        let failure = Failure::opening("http://x", &Error::InvalidUrl("no".into()));
        assert_eq!(failure.code, exit_code::USAGE);
    }

    #[test]
    fn passwords_are_not_shown() {
        let error = Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let failure = Failure::opening("ws://user:secret@127.0.0.1:1/", &error);
        assert!(!failure.message.contains("secret"), "{}", failure.message);
        assert!(failure.message.contains("ws://user:***@127.0.0.1:1/"));
    }

    #[test]
    fn timeouts_say_what_did_not_answer() {
        let within = Some(Duration::from_secs(10));
        let failure = Failure::opening_within("ws://h/", &Error::HandshakeTimeout, within);
        assert_eq!(failure.code, exit_code::UNREACHABLE);
        assert!(
            failure
                .message
                .starts_with("connected to ws://h/, but no WebSocket handshake answer in 10 s")
        );
        let proxy = Error::Proxy(ProxyError::Timeout {
            proxy: "socks5://127.0.0.1:1080".into(),
        });
        let failure = Failure::opening_within("ws://h/", &proxy, within);
        assert!(
            failure
                .message
                .starts_with("the proxy socks5://127.0.0.1:1080 did not answer in 10 s")
        );
    }

    #[test]
    fn body_lines() {
        assert_eq!(
            first_line(b"origin not allowed\n").as_deref(),
            Some("origin not allowed")
        );
        assert_eq!(first_line(b"\n\n").as_deref(), None);
        assert_eq!(first_line(&[0xff, 0xfe]).as_deref(), None);
    }
}
