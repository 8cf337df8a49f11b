//! Opening client connections: [`connect`] and [`ClientBuilder`].

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Response, Uri};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use sockeye_proto::handshake::{self, ClientHandshake, Negotiated, ResponseParser};
use sockeye_proto::{Config, Role};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::handshake_io::{read_body, read_head, write_all};
use crate::tls::{ClientStream, default_client_config};
use crate::tokio::WebSocket;

/// The most of a refusal's body kept in the error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Connects to a `ws://` or `wss://` URL with the default options.
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
/// let (ws, response) = sockeye::ClientBuilder::new("wss://example.com/chat")
///     .subprotocols(["chat.v2", "chat.v1"])
///     .origin("https://example.com")
///     .header("authorization", "Bearer token")
///     .open_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    handshake: handshake::ClientBuilder,
    config: Config,
    open_timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://` or `wss://`, with optional userinfo,
    /// port, path and query).
    pub fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            handshake: ClientHandshake::builder(url),
            config: Config::default(),
            open_timeout: Duration::from_secs(30),
            tls: None,
        }
    }

    /// Sends `Origin` (what a browser would). Default: none.
    pub fn origin(mut self, origin: impl Into<String>) -> ClientBuilder {
        self.handshake = self.handshake.origin(origin);
        self
    }

    /// Offers subprotocols, in order of preference. Default: none.
    pub fn subprotocols<I, S>(mut self, subprotocols: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.handshake = self.handshake.subprotocols(subprotocols);
        self
    }

    /// Adds a request header (cookies, authorization). Default: none.
    pub fn header<K, V>(mut self, name: K, value: V) -> ClientBuilder
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        self.handshake = self.handshake.header(name, value);
        self
    }

    /// Offers extensions with a raw `Sec-WebSocket-Extensions` value.
    /// Default: none.
    pub fn extensions_header(mut self, value: &str) -> ClientBuilder {
        self.handshake = self.handshake.extensions_header(value);
        self
    }

    /// The protocol engine's limits and timers. Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// How long the whole opening handshake (DNS, TCP, TLS, HTTP) may take:
    /// a server that accepts TCP and then stays silent cannot hang
    /// `connect`. Default: 30 s.
    pub fn open_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.open_timeout = timeout;
        self
    }

    /// The rustls configuration for `wss://`. Default: the Mozilla root
    /// certificates ([`crate::tls::default_client_config`]).
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> ClientBuilder {
        self.tls = Some(config);
        self
    }

    /// Connects, performs the opening handshake and returns the connection
    /// and the server's response.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt.
    pub async fn connect(self) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        let timeout = self.open_timeout;
        tokio::time::timeout(timeout, self.connect_now())
            .await
            .map_err(|_| Error::OpenTimeout)?
    }

    async fn connect_now(self) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        let handshake = self.handshake.build()?;
        let target = Target::parse(&self.url)?;
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        tcp.set_nodelay(true)?;
        let stream = if target.secure {
            let config = self.tls.unwrap_or_else(default_client_config);
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| Error::InvalidUrl(format!("invalid host {}", target.host)))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(Error::Tls)?;
            ClientStream::Tls(tls)
        } else {
            ClientStream::Plain(tcp)
        };
        let (ws, response, _) = client_handshake(stream, &handshake, self.config).await?;
        Ok((ws, response))
    }
}

/// Runs the client side of the opening handshake over `stream`: sends the
/// request, reads and checks the response. On a refusal, the error carries
/// the status and up to 64 KiB of the body.
pub async fn client_handshake<S>(
    mut stream: S,
    handshake: &ClientHandshake,
    config: Config,
) -> Result<(WebSocket<S>, Response<()>, Negotiated), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(512);
    handshake::write_request(handshake.request(), &mut request);
    write_all(&mut stream, &request).await?;
    let mut parser = ResponseParser::new();
    let (response, leftover) = read_head(&mut stream, |bytes| parser.parse(bytes)).await?;
    match handshake.finish(&response) {
        Ok(negotiated) => {
            let ws = WebSocket::from_raw(stream, Role::Client, config, &leftover);
            Ok((ws, response, negotiated))
        }
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

/// Where to connect, from the URL.
struct Target {
    host: String,
    port: u16,
    secure: bool,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|_| Error::InvalidUrl(format!("cannot parse {url:?}")))?;
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ws") => false,
            Some("wss") => true,
            Some(other) => {
                return Err(Error::InvalidUrl(format!(
                    "unsupported scheme {other:?} (use ws:// or wss://)"
                )));
            }
            None => return Err(Error::InvalidUrl("no scheme (use ws:// or wss://)".into())),
        };
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| Error::InvalidUrl("no host".into()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(Target { host, port, secure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
