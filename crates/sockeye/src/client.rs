//! Opening client connections: [`connect`] and [`ClientBuilder`], through
//! a proxy when one is set or named by the environment ([`crate::proxy`]),
//! following redirects when asked to.

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION};
use http::{HeaderName, HeaderValue, Response};
use rustls::ClientConfig;
use sockeye_proto::extension::deflate::DeflateConfig;
use sockeye_proto::handshake::{self, ClientHandshake, Negotiated, ResponseParser};
use sockeye_proto::{Config, Connection, Role};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::handshake_io::{read_body, read_head, write_all};
use crate::proxy::Proxy;
use crate::tls::ClientStream;
use crate::tokio::WebSocket;

mod reconnect;
mod redirect;
mod target;
mod transport;

pub(crate) use reconnect::EndSlot;
pub use reconnect::{
    Ending, Failure, ReconnectError, ReconnectEvent, ReconnectPolicy, Reconnecting,
};

pub(crate) use redirect::is_redirect;
use redirect::{Url, redirect_target};
pub(crate) use target::Target;
pub use transport::HttpVersion;
pub(crate) use transport::{Answer, Stage};

/// The most of a refusal's body kept in the error.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// Connects to a `ws://` or `wss://` URL with the default options: through
/// the proxy the environment names, if any ([`Proxy::from_env`]), without
/// following redirects.
///
/// Returns the connection and the server's `101` response (its headers:
/// the chosen subprotocol, cookies). See [`ClientBuilder`] for options.
///
/// # Cancel safety
/// Not cancel-safe in a useful sense: dropping the future abandons the
/// connection attempt (nothing is lost but the attempt).
pub async fn connect(url: &str) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
    ClientBuilder::new(url).connect().await
}

/// Options for a client connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), sockeye::Error> {
/// use std::time::Duration;
/// use sockeye::proxy::Proxy;
///
/// let (ws, response) = sockeye::ClientBuilder::new("wss://example.com/chat")
///     .subprotocols(["chat.v2", "chat.v1"])
///     .origin("https://example.com")
///     .header("authorization", "Bearer token")
///     .open_timeout(Duration::from_secs(5))
///     .proxy(Proxy::socks5("socks5h://127.0.0.1:1080")?)
///     .max_redirects(3)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    /// Replayed onto a handshake for each URL tried (redirects change it).
    options: Vec<HandshakeOption>,
    config: Config,
    open_timeout: Duration,
    tls: TlsSetting,
    proxy: ProxySetting,
    max_redirects: usize,
    deflate: DeflateConfig,
    http_version: HttpVersion,
    /// Connect through this HTTP/2 connection while it serves the URL.
    #[cfg(feature = "http2")]
    session: Option<crate::h2::Http2Session>,
}

/// A handshake option, kept to build the request again for a redirect.
#[derive(Debug, Clone)]
enum HandshakeOption {
    Origin(String),
    Subprotocols(Vec<String>),
    Header(HeaderName, HeaderValue),
    /// A header name or value that did not convert: the handshake builder
    /// reports it.
    InvalidHeader,
    Extensions(String),
}

#[derive(Debug, Clone)]
enum TlsSetting {
    MozillaRoots,
    NativeRoots,
    Config(Arc<ClientConfig>),
}

#[derive(Debug, Clone)]
enum ProxySetting {
    Environment,
    Fixed(Proxy),
    Direct,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://` or `wss://`, with optional userinfo,
    /// port, path and query).
    pub fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            options: Vec::new(),
            config: Config::default(),
            open_timeout: Duration::from_secs(30),
            tls: TlsSetting::MozillaRoots,
            proxy: ProxySetting::Environment,
            max_redirects: 0,
            deflate: DeflateConfig::new(),
            http_version: HttpVersion::Auto,
            #[cfg(feature = "http2")]
            session: None,
        }
    }

    /// The permessage-deflate policy (RFC 7692): whether to offer it, the
    /// window sizes and context takeover to ask for, and the local
    /// threshold and level. Pass `DeflateConfig::new().enabled(false)` to
    /// not offer it. Default: [`DeflateConfig::new`], offered with no
    /// window limit and context takeover both ways (what browsers offer).
    ///
    /// An explicit [`ClientBuilder::extensions_header`] replaces the
    /// offer; a `permessage-deflate` the server accepts from it is still
    /// used, with this policy's threshold and level.
    pub fn deflate(mut self, config: DeflateConfig) -> ClientBuilder {
        self.deflate = config;
        self
    }

    /// Sends `Origin` (what a browser would). Default: none.
    pub fn origin(mut self, origin: impl Into<String>) -> ClientBuilder {
        self.options.push(HandshakeOption::Origin(origin.into()));
        self
    }

    /// Offers subprotocols, in order of preference. Default: none.
    pub fn subprotocols<I, S>(mut self, subprotocols: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let subprotocols = subprotocols.into_iter().map(Into::into).collect();
        self.options
            .push(HandshakeOption::Subprotocols(subprotocols));
        self
    }

    /// Adds a request header (cookies, authorization). Default: none.
    ///
    /// On a redirect to another host or port, or from `wss://` to `ws://`,
    /// `Authorization`, `Cookie` and `Host` headers are not sent again.
    pub fn header<K, V>(mut self, name: K, value: V) -> ClientBuilder
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        let option = match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(mut value)) => {
                // Kept out of `Debug` output (and so out of logs).
                if [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION].contains(&name) {
                    value.set_sensitive(true);
                }
                HandshakeOption::Header(name, value)
            }
            _ => HandshakeOption::InvalidHeader,
        };
        self.options.push(option);
        self
    }

    /// Offers extensions with a raw `Sec-WebSocket-Extensions` value,
    /// instead of the [`ClientBuilder::deflate`] offer. Default: none.
    pub fn extensions_header(mut self, value: &str) -> ClientBuilder {
        self.options
            .push(HandshakeOption::Extensions(value.to_owned()));
        self
    }

    /// The protocol engine's limits and timers. Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// How long the whole opening handshake may take: DNS, TCP, the proxy's
    /// tunnel, TLS and HTTP (over HTTP/2 also the connection preface and
    /// the wait for a stream the server allows), across every redirect
    /// followed. A server or
    /// proxy that accepts TCP and then stays silent cannot hang `connect`.
    /// Default: 30 s.
    pub fn open_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.open_timeout = timeout;
        self
    }

    /// The rustls configuration for `wss://`. Default: the Mozilla root
    /// certificates ([`crate::tls::default_client_config`]).
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> ClientBuilder {
        self.tls = TlsSetting::Config(config);
        self
    }

    /// Trusts the operating system's root certificates for `wss://`
    /// instead of the Mozilla ones: what corporate networks that inspect
    /// TLS, or private certificate authorities, need. Loaded once per
    /// process, at the first connection that uses them
    /// ([`crate::tls::native_client_config`]); when none can be loaded,
    /// `connect` fails with [`Error::Tls`]. Replaces (and is replaced by)
    /// [`tls_config`](ClientBuilder::tls_config). Default: the Mozilla
    /// root certificates.
    pub fn native_roots(mut self) -> ClientBuilder {
        self.tls = TlsSetting::NativeRoots;
        self
    }

    /// Connects through `proxy`: the proxy's tunnel first, then TLS inside
    /// it for `wss://`, then the WebSocket handshake. Replaces the
    /// environment's choice, `no_proxy` included.
    ///
    /// Default: the proxy the environment names for each URL tried
    /// ([`Proxy::from_env`]: `wss_proxy`/`https_proxy`, `ws_proxy`/`http_proxy`,
    /// `all_proxy`, unless `no_proxy` matches), as curl and Python's
    /// `websockets` do; a direct connection when none is named.
    pub fn proxy(mut self, proxy: Proxy) -> ClientBuilder {
        self.proxy = ProxySetting::Fixed(proxy);
        self
    }

    /// Connects directly, ignoring the proxy environment variables (and
    /// any proxy set before). Default: the environment's proxy, see
    /// [`proxy`](ClientBuilder::proxy).
    pub fn no_proxy(mut self) -> ClientBuilder {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Follows up to `max` redirects: a 301, 302, 303, 307 or 308 answer to
    /// the handshake makes the client connect again to its `Location`
    /// (absolute or relative; `http://` and `https://` become `ws://` and
    /// `wss://`). Past `max`, [`Error::TooManyRedirects`]; a redirect
    /// without a usable `Location`, [`Error::InvalidRedirect`].
    ///
    /// Credentials go only where they were meant for: when a redirect
    /// leads to another host or port than the URL given to
    /// [`new`](ClientBuilder::new), or from `wss://` to `ws://`, the
    /// `Authorization`, `Cookie` and `Host` headers set with
    /// [`header`](ClientBuilder::header) and the URL's userinfo are left
    /// out. On the same host and port, the URL's userinfo is kept when the
    /// `Location` has none.
    ///
    /// Default: 0, redirects are not followed and a 3xx answer is a
    /// [`Error::Handshake`] carrying its status and `Location`.
    pub fn max_redirects(mut self, max: usize) -> ClientBuilder {
        self.max_redirects = max;
        self
    }

    /// The HTTP version to open the WebSocket over: HTTP/1.1 (RFC 6455's
    /// Upgrade) or a stream of an HTTP/2 connection (RFC 8441). See
    /// [`HttpVersion`] for what each choice does on `ws://` and `wss://`.
    /// The [`response`](ClientBuilder::connect)'s
    /// [`version`](http::Response::version) says which was used.
    ///
    /// A WebSocket opened over HTTP/2 by `connect` has its HTTP/2
    /// connection to itself; to share one between several WebSockets, see
    /// [`http2_session`](ClientBuilder::http2_session).
    ///
    /// Default: [`HttpVersion::Auto`] (HTTP/2 on `wss://` when the server
    /// offers WebSockets over it, otherwise HTTP/1.1).
    pub fn http_version(mut self, version: HttpVersion) -> ClientBuilder {
        self.http_version = version;
        self
    }

    /// Opens the WebSocket as a new stream of `session`'s HTTP/2
    /// connection when the URL (after any redirect) is the session's
    /// origin and the session is still open; otherwise connects as without
    /// it. The session's connection was set up when it was opened: this
    /// builder's proxy, TLS and HTTP version settings do not apply to it.
    /// [`Http2Session::connect`](crate::http2::Http2Session::connect) is the
    /// strict form, failing instead of making a new connection.
    ///
    /// Default: none, each `connect` makes its own connection.
    #[cfg(feature = "http2")]
    pub fn http2_session(mut self, session: &crate::h2::Http2Session) -> ClientBuilder {
        self.session = Some(session.clone());
        self
    }

    /// Checks `url` as [`connect`](ClientBuilder::connect) will, without
    /// connecting: a `ws://` or `wss://` scheme, a host, and a port (if
    /// given) from 1 to 65535. An [`Error::InvalidUrl`] says what is wrong
    /// (never repeating the URL, which may hold a password). For
    /// validating input early, as a command line does.
    pub fn check_url(url: &str) -> Result<(), Error> {
        Target::parse(url).map(|_| ())
    }

    /// Connects, performs the opening handshake and returns the connection
    /// and the server's response.
    ///
    /// The response's extensions hold the request that was sent, an
    /// `http::Request<()>` (the last one, when redirects were followed),
    /// for logging what went over the wire:
    /// `response.extensions().get::<http::Request<()>>()`. Its
    /// `Authorization` and `Cookie` values are there as sent: mask them
    /// before printing.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt.
    pub async fn connect(self) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        let timeout = self.open_timeout;
        let mut stage = Stage::Connecting;
        let opened = tokio::time::timeout(timeout, self.connect_now(&mut stage)).await;
        opened.map_err(|_| stage.timeout())?
    }

    async fn connect_now(
        self,
        stage: &mut Stage,
    ) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        // The URL first: a bad one is `InvalidUrl`, whatever else is wrong.
        let original = Target::parse(&self.url)?;
        let mut handshake = self.handshake(&self.url, true)?;
        let mut url = self.url.clone();
        let mut target = original.clone();
        let mut redirects = 0;
        loop {
            let response = match self.attempt(&url, &target, &handshake, stage).await? {
                Answer::Open(ws, response) => return Ok((ws, response)),
                Answer::Redirect(response) => response,
            };
            if redirects == self.max_redirects {
                return Err(Error::TooManyRedirects {
                    max: self.max_redirects,
                });
            }
            redirects += 1;
            let mut next = redirect_target(&url, &response)?;
            target = Target::parse(&next.to_string())?;
            let trusted = original.trusts(&target);
            if trusted && next.userinfo.is_none() {
                next.userinfo = Url::parse(&self.url)?.userinfo;
            }
            url = next.to_string();
            handshake = self.handshake(&url, trusted)?;
        }
    }

    /// The handshake for `url`; without the credential headers unless
    /// `trusted`.
    fn handshake(&self, url: &str, trusted: bool) -> Result<ClientHandshake, Error> {
        let mut builder = ClientHandshake::builder(url);
        for option in &self.options {
            builder = match option {
                HandshakeOption::Origin(origin) => builder.origin(origin),
                HandshakeOption::Subprotocols(list) => builder.subprotocols(list),
                HandshakeOption::Header(name, _)
                    if !trusted && [AUTHORIZATION, COOKIE, HOST].contains(name) =>
                {
                    builder
                }
                HandshakeOption::Header(name, value) => builder.header(name, value),
                // An empty name never converts: the builder records its
                // "invalid header name or value" error.
                HandshakeOption::InvalidHeader => builder.header("", ""),
                HandshakeOption::Extensions(value) => builder.extensions_header(value),
            };
        }
        let explicit = self
            .options
            .iter()
            .any(|option| matches!(option, HandshakeOption::Extensions(_)));
        if !explicit && let Some(offer) = self.deflate.offer() {
            builder = builder.extension(offer);
        }
        Ok(builder.build()?)
    }
}

/// Runs the client side of the opening handshake over `stream`: sends the
/// request, reads and checks the response. On a refusal, the error carries
/// the status and up to 64 KiB of the body.
///
/// # Cancel safety
/// Not cancel-safe: dropping the future abandons the handshake midway, and
/// the stream (owned by the future) with it.
pub async fn client_handshake<S>(
    mut stream: S,
    handshake: &ClientHandshake,
    config: Config,
) -> Result<(WebSocket<S>, Response<()>, Negotiated), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (response, leftover) = send_request(&mut stream, handshake).await?;
    finish(
        stream,
        handshake,
        config,
        &DeflateConfig::new(),
        response,
        leftover,
    )
    .await
}

/// Sends the request and reads the response head; returns it and the bytes
/// read past it.
async fn send_request<S>(
    stream: &mut S,
    handshake: &ClientHandshake,
) -> Result<(Response<()>, Vec<u8>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(512);
    handshake::write_request(handshake.request(), &mut request);
    write_all(stream, &request).await?;
    let mut parser = ResponseParser::new();
    // The first bytes of the answer, to recognise a TLS server's alert.
    let mut first = Vec::new();
    let read = read_head(stream, |bytes| {
        if first.len() < 3 {
            first.extend(bytes.iter().take(3 - first.len()));
        }
        parser.parse(bytes)
    })
    .await;
    match read {
        Err(Error::Handshake(_) | Error::UnexpectedEof | Error::Io(_)) if is_tls_record(&first) => {
            Err(Error::TlsExpected)
        }
        read => read,
    }
}

/// Whether `bytes` start a TLS record: a handshake (22) or alert (21)
/// record of TLS 1.0 to 1.3 (legacy version 3.x), which no HTTP answer
/// starts with.
fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [21 | 22, 3, 0..=4, ..])
}

/// Checks the response: the connection, or the refusal with its body.
async fn finish<S>(
    mut stream: S,
    handshake: &ClientHandshake,
    config: Config,
    deflate: &DeflateConfig,
    response: Response<()>,
    leftover: Vec<u8>,
) -> Result<(WebSocket<S>, Response<()>, Negotiated), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match handshake.finish(&response) {
        Ok(negotiated) => {
            let engine = client_engine(config, deflate, &negotiated);
            let ws = WebSocket::from_engine(stream, engine, &leftover);
            Ok((ws, response, negotiated))
        }
        // A 1xx response has no body (RFC 7230 section 3.3.3): a refused
        // 101 fails at once.
        Err(error) if response.status().is_informational() => Err(Error::Handshake(error)),
        Err(mut error) => {
            let length = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse().ok());
            let body = tokio::time::timeout(
                Duration::from_secs(2),
                read_body(&mut stream, leftover, length, MAX_ERROR_BODY),
            )
            .await
            .unwrap_or_default();
            if !body.is_empty() {
                error.set_body(body);
            }
            Err(Error::Handshake(error))
        }
    }
}

/// The engine of a client whose handshake gave `negotiated`, over either
/// HTTP version.
pub(crate) fn client_engine(
    config: Config,
    deflate: &DeflateConfig,
    negotiated: &Negotiated,
) -> Connection {
    let mut engine = Connection::new(Role::Client, config);
    if let Some(params) = negotiated.deflate {
        engine.enable_deflate(params, deflate);
    }
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_recognised() {
        // A TLS 1.2 decode_error alert, as rustls answers plain HTTP.
        assert!(is_tls_record(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
        assert!(is_tls_record(&[0x16, 0x03, 0x01]));
        assert!(!is_tls_record(b"HTTP/1.1 400 Bad Request"));
        assert!(!is_tls_record(&[0x15]));
        assert!(!is_tls_record(b""));
    }

    #[test]
    fn credential_headers_are_dropped_when_untrusted() {
        let builder = ClientBuilder::new("ws://a/")
            .header("authorization", "Bearer t")
            .header("cookie", "s=1")
            .header("host", "virtual")
            .header("x-trace", "1")
            .origin("http://a")
            .subprotocols(["chat"]);
        let trusted = builder.handshake("ws://a/", true).unwrap();
        let headers = trusted.request().headers();
        assert_eq!(headers["authorization"], "Bearer t");
        assert_eq!(headers["cookie"], "s=1");
        assert_eq!(headers["host"], "virtual");
        let untrusted = builder.handshake("ws://u:p@b/", false).unwrap();
        let headers = untrusted.request().headers();
        assert!(headers.get("cookie").is_none());
        assert!(!format!("{builder:?}").contains("Bearer t"));
        assert_eq!(headers["host"], "b");
        // Userinfo of the Location itself still becomes Authorization.
        assert_eq!(headers["authorization"], "Basic dTpw");
        assert_eq!(headers["x-trace"], "1");
        assert_eq!(headers["origin"], "http://a");
        assert_eq!(headers["sec-websocket-protocol"], "chat");
    }

    #[test]
    fn invalid_headers_are_reported_at_connect() {
        let builder = ClientBuilder::new("ws://a/").header("bad name", "x");
        assert!(matches!(
            builder.handshake("ws://a/", true),
            Err(Error::Handshake(_))
        ));
    }
}
