//! Which transport a client connection takes: TCP (through the proxy
//! when there is one), TLS for `wss://` with the ALPN list the HTTP
//! version asks for, then the HTTP/1.1 Upgrade (RFC 6455) or a stream of
//! an HTTP/2 connection (RFC 8441).

use std::sync::Arc;

use http::Response;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use sockeye_proto::handshake::ClientHandshake;
use tokio::net::TcpStream;

use super::{ClientBuilder, ProxySetting, Target, TlsSetting, finish, is_redirect, send_request};
use crate::error::Error;
use crate::proxy::Proxy;
use crate::tls::{ClientStream, default_client_config, native_client_config};
use crate::tokio::WebSocket;

/// Which HTTP version [`ClientBuilder`] opens its WebSocket over (see
/// [`ClientBuilder::http_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/2 when the server offers WebSockets over it, HTTP/1.1
    /// otherwise. On `wss://`, TLS offers `h2` and `http/1.1` by ALPN; the
    /// WebSocket goes over HTTP/2 when the server chooses `h2` and
    /// advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 section 3),
    /// over HTTP/1.1 on the same connection when it chooses `http/1.1` (or
    /// nothing), and over HTTP/1.1 on a new connection (offering only
    /// `http/1.1`) when it chooses `h2` without the setting. On `ws://`,
    /// HTTP/1.1: cleartext HTTP/2 cannot be discovered without trying it.
    #[default]
    Auto,
    /// HTTP/1.1 only: the Upgrade handshake of RFC 6455, with the TLS
    /// configuration's ALPN list as given.
    Http1,
    /// HTTP/2 only (RFC 8441): on `wss://` by ALPN `h2`, on `ws://` by
    /// prior knowledge (h2c). A server that does not carry WebSockets over
    /// HTTP/2 is an [`Error::Http2Unsupported`] saying why.
    Http2,
}

impl HttpVersion {
    /// The ALPN list for `wss://`, `None` to keep the configuration's.
    fn alpn(self) -> Option<&'static [&'static [u8]]> {
        match self {
            HttpVersion::Auto | HttpVersion::Http2 if cfg!(feature = "http2") => {
                Some(&[b"h2", b"http/1.1"])
            }
            _ => None,
        }
    }

    /// Whether to try HTTP/2 on a connection to `target`.
    fn tries_http2(self, target: &Target) -> bool {
        match self {
            HttpVersion::Http1 => false,
            HttpVersion::Auto => target.secure && cfg!(feature = "http2"),
            HttpVersion::Http2 => true,
        }
    }
}

/// What one attempt at the handshake gave.
// Once per connection, moved straight into the caller's result: boxing
// the WebSocket would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    /// The WebSocket is open; the response, with the sent request in its
    /// extensions.
    Open(WebSocket<ClientStream>, Response<()>),
    /// A redirect to follow.
    Redirect(Response<()>),
}

/// Where a connection attempt is, for the error when the open timeout
/// strikes.
#[derive(Debug)]
pub(crate) enum Stage {
    /// DNS and TCP.
    Connecting,
    /// Connecting to the proxy (named) and asking it for the tunnel.
    Proxy(String),
    Tls,
    /// The request is sent (or being sent); the answer is awaited. Over
    /// HTTP/2, also the connection preface and the server's settings.
    Handshake,
}

impl Stage {
    pub(crate) fn timeout(self) -> Error {
        match self {
            Stage::Connecting | Stage::Tls => Error::OpenTimeout,
            Stage::Proxy(proxy) => Error::Proxy(crate::proxy::ProxyError::Timeout { proxy }),
            Stage::Handshake => Error::HandshakeTimeout,
        }
    }
}

impl ClientBuilder {
    /// One handshake with `target`: through the builder's HTTP/2 session
    /// when it serves this origin, otherwise over a new connection in the
    /// HTTP version chosen.
    pub(super) async fn attempt(
        &self,
        url: &str,
        target: &Target,
        handshake: &ClientHandshake,
        stage: &mut Stage,
    ) -> Result<Answer, Error> {
        let follow = self.max_redirects > 0;
        #[cfg(feature = "http2")]
        if let Some(session) = &self.session
            && !session.is_closed()
            && session.serves(target)
        {
            *stage = Stage::Handshake;
            return session
                .open_stream(handshake, self.config.clone(), &self.deflate, follow)
                .await;
        }
        let version = self.http_version;
        if version == HttpVersion::Http2 && !cfg!(feature = "http2") {
            return Err(Error::Http2Unsupported(
                "sockeye was built without its http2 feature",
            ));
        }
        #[cfg_attr(not(feature = "http2"), allow(unused_mut))]
        let mut stream = self.open(url, target, stage, version.alpn()).await?;
        if version.tries_http2(target) {
            #[cfg(feature = "http2")]
            match self.over_http2(stream, target, handshake, stage).await? {
                Http2Outcome::Answer(answer) => return Ok(answer),
                Http2Outcome::Http1(same) => stream = same,
                Http2Outcome::Reconnect => {
                    let http1: &[&[u8]] = &[b"http/1.1"];
                    stream = self.open(url, target, stage, Some(http1)).await?;
                }
            }
        }
        *stage = Stage::Handshake;
        let (response, leftover) = send_request(&mut stream, handshake).await?;
        if follow && is_redirect(response.status()) {
            return Ok(Answer::Redirect(response));
        }
        let (ws, mut response, _) = finish(
            stream,
            handshake,
            self.config.clone(),
            &self.deflate,
            response,
            leftover,
        )
        .await?;
        response
            .extensions_mut()
            .insert(handshake.request().clone());
        Ok(Answer::Open(ws, response))
    }

    /// HTTP/2 on a new connection, when the server takes it.
    #[cfg(feature = "http2")]
    async fn over_http2(
        &self,
        stream: ClientStream,
        target: &Target,
        handshake: &ClientHandshake,
        stage: &mut Stage,
    ) -> Result<Http2Outcome, Error> {
        let required = self.http_version == HttpVersion::Http2;
        if let ClientStream::Tls(tls) = &stream
            && tls.get_ref().1.alpn_protocol() != Some(b"h2")
        {
            if required {
                return Err(Error::Http2Unsupported(
                    "the server did not choose h2 by ALPN",
                ));
            }
            return Ok(Http2Outcome::Http1(stream));
        }
        *stage = Stage::Handshake;
        let session = crate::h2::Http2Session::handshake(stream, target).await?;
        if session.supports_websocket() {
            let follow = self.max_redirects > 0;
            let answer = session
                .open_stream(handshake, self.config.clone(), &self.deflate, follow)
                .await;
            return answer.map(Http2Outcome::Answer);
        }
        if required {
            return Err(Error::Http2Unsupported(
                "the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL",
            ));
        }
        Ok(Http2Outcome::Reconnect)
    }

    /// A new HTTP/2 session to the builder's origin, for
    /// [`Http2Session::open`](crate::http2::Http2Session::open): HTTP/2 is
    /// required whatever [`ClientBuilder::http_version`] says.
    #[cfg(feature = "http2")]
    pub(crate) async fn open_session(&self) -> Result<crate::h2::Http2Session, Error> {
        let mut stage = Stage::Connecting;
        let opening = async {
            let target = Target::parse(&self.url)?;
            let alpn = HttpVersion::Http2.alpn();
            let stream = self.open(&self.url, &target, &mut stage, alpn).await?;
            if let ClientStream::Tls(tls) = &stream
                && tls.get_ref().1.alpn_protocol() != Some(b"h2")
            {
                return Err(Error::Http2Unsupported(
                    "the server did not choose h2 by ALPN",
                ));
            }
            stage = Stage::Handshake;
            let session = crate::h2::Http2Session::handshake(stream, &target).await?;
            if !session.supports_websocket() {
                return Err(Error::Http2Unsupported(
                    "the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL",
                ));
            }
            Ok(session)
        };
        let opened = tokio::time::timeout(self.open_timeout, opening).await;
        opened.map_err(|_| stage.timeout())?
    }

    /// [`Http2Session::connect`](crate::http2::Http2Session::connect): this
    /// builder's URL must be the session's origin.
    #[cfg(feature = "http2")]
    pub(crate) async fn connect_through(
        &self,
        session: &crate::h2::Http2Session,
    ) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
        if !session.serves(&Target::parse(&self.url)?) {
            return Err(Error::InvalidInput(
                "the URL is not the HTTP/2 session's origin",
            ));
        }
        if session.is_closed() {
            let closed = std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the HTTP/2 connection has ended",
            );
            return Err(Error::Io(closed));
        }
        self.clone().http2_session(session).connect().await
    }

    /// The transport to `target`: TCP, through the proxy if there is one,
    /// then TLS for `wss://`, offering `alpn` (`None`: the configuration's
    /// own list).
    async fn open(
        &self,
        url: &str,
        target: &Target,
        stage: &mut Stage,
        alpn: Option<&[&[u8]]>,
    ) -> Result<ClientStream, Error> {
        let from_env;
        let proxy = match &self.proxy {
            ProxySetting::Environment => {
                from_env = Proxy::from_env(url)?;
                from_env.as_ref()
            }
            ProxySetting::Fixed(proxy) => Some(proxy),
            ProxySetting::Direct => None,
        };
        let tcp = match proxy {
            Some(proxy) => {
                *stage = Stage::Proxy(proxy.to_string());
                proxy.connect(&target.host, target.port).await?
            }
            None => {
                *stage = Stage::Connecting;
                let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
                tcp.set_nodelay(true)?;
                tcp
            }
        };
        if !target.secure {
            return Ok(ClientStream::Plain(tcp));
        }
        let config = match &self.tls {
            TlsSetting::MozillaRoots => default_client_config(),
            TlsSetting::NativeRoots => native_client_config()?,
            TlsSetting::Config(config) => config.clone(),
        };
        let config = match alpn {
            Some(alpn) => with_alpn(config, alpn),
            None => config,
        };
        let name = ServerName::try_from(target.host.clone())
            .map_err(|_| Error::InvalidUrl(format!("invalid host {}", target.host)))?;
        *stage = Stage::Tls;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(Error::Tls)?;
        Ok(ClientStream::Tls(Box::new(tls)))
    }
}

/// What became of a new connection on which HTTP/2 was tried.
#[cfg(feature = "http2")]
#[allow(clippy::large_enum_variant)] // as `Answer`
enum Http2Outcome {
    /// The WebSocket opened over HTTP/2 (or was refused or redirected).
    Answer(Answer),
    /// ALPN chose HTTP/1.1: the handshake goes on over the same TLS.
    Http1(ClientStream),
    /// The server chose `h2` but does not carry WebSockets over it: a new
    /// connection for HTTP/1.1.
    Reconnect,
}

/// `config` offering `alpn`: itself when it already does, otherwise a
/// copy (which shares the session resumption store).
fn with_alpn(config: Arc<ClientConfig>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    if config.alpn_protocols.iter().eq(alpn.iter()) {
        return config;
    }
    let mut copy = (*config).clone();
    copy.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_replaced_only_when_it_differs() {
        let config = default_client_config();
        let same = with_alpn(config.clone(), &[b"http/1.1"]);
        assert!(Arc::ptr_eq(&config, &same));
        let h2 = with_alpn(config.clone(), &[b"h2", b"http/1.1"]);
        assert_eq!(h2.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn http2_is_tried_on_wss_unless_required_or_forbidden() {
        let wss = Target::parse("wss://example.com/").unwrap();
        let ws = Target::parse("ws://example.com/").unwrap();
        assert!(HttpVersion::Auto.tries_http2(&wss));
        assert!(!HttpVersion::Auto.tries_http2(&ws));
        assert!(HttpVersion::Http2.tries_http2(&ws));
        assert!(!HttpVersion::Http1.tries_http2(&wss));
        assert_eq!(HttpVersion::Http1.alpn(), None);
        assert_eq!(HttpVersion::default(), HttpVersion::Auto);
    }
}
