//! TLS for `wss://` with rustls: the client's default configuration and a
//! stream type that is plain TCP or TLS.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::server::TlsStream as ServerTlsStream;

/// The client's default TLS configuration: the Mozilla root certificates
/// (webpki-roots), TLS 1.2 and 1.3, ALPN `http/1.1`. Built once.
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Arc::new(client_config_with_roots(roots))
        })
        .clone()
}

/// A client configuration trusting the operating system's root
/// certificates (what `rustls-native-certs` finds: `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` or the distribution's bundle on Unix, the keychain on
/// macOS, the certificate store on Windows), with ALPN `http/1.1`. Loaded
/// once per process, on first use; certificates that do not parse are
/// skipped. An error when none could be loaded.
pub fn native_client_config() -> Result<Arc<ClientConfig>, crate::Error> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = match loaded.errors.first() {
                    Some(error) => format!(": {error}"),
                    None => String::new(),
                };
                return Err(format!(
                    "no root certificates found in the operating system's store{why}"
                ));
            }
            Ok(Arc::new(client_config_with_roots(roots)))
        })
        .clone()
        .map_err(|why| crate::Error::Tls(io::Error::new(io::ErrorKind::NotFound, why)))
}

/// A client configuration trusting `roots`, with ALPN `http/1.1` (a
/// WebSocket handshake is HTTP/1.1).
pub fn client_config_with_roots(roots: rustls::RootCertStore) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The rustls crypto provider sockeye's TLS configurations use: the
/// process-wide default when the application installed one
/// ([`CryptoProvider::install_default`], for example aws-lc-rs for
/// post-quantum key exchange), otherwise the *ring* provider, which this
/// crate builds rustls with. It installs nothing, so an application may
/// still install its default after using sockeye. Never panics.
///
/// Build a `rustls::ServerConfig` for
/// [`ServerBuilder::tls`](crate::ServerBuilder::tls) with it
/// (`ServerConfig::builder_with_provider(sockeye::tls::crypto_provider())`)
/// to use the same provider on both sides.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    if let Some(provider) = CryptoProvider::get_default() {
        return provider.clone();
    }
    static RING: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    RING.get_or_init(|| {
        // rustls 0.23.48 deprecated `ring::default_provider` for having no
        // post-quantum key exchange, and has no other way to name *ring*;
        // rustls itself still calls it (under the same `allow`) for
        // `ClientConfig::builder()`. That builder would do here, but it
        // panics when a build has both the `ring` and `aws_lc_rs` features
        // and installs a process default the application may want to
        // choose later. The `allow` keeps the deprecation out of every
        // downstream build; an application that wants aws-lc-rs installs
        // it and gets it above.
        #[allow(deprecated)]
        let ring = rustls::crypto::ring::default_provider();
        Arc::new(ring)
    })
    .clone()
}

/// What [`connect`](crate::connect) connects over: plain TCP for `ws://`,
/// TLS for `wss://`, or one stream of an HTTP/2 connection (RFC 8441).
///
/// The TLS and HTTP/2 states are boxed: they are larger than a TCP
/// stream, and plain connections should not carry their size. More
/// transports may come (HTTP/3, RFC 9220): match with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// One stream of an HTTP/2 connection, shared with other WebSockets
    /// to the same origin.
    #[cfg(feature = "http2")]
    Http2(Box<crate::h2::H2Stream>),
}

impl ClientStream {
    /// The TCP stream underneath, when the WebSocket has one to itself
    /// (`None` for an HTTP/2 stream: the connection is shared).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ClientStream::Plain(stream) => Some(stream),
            ClientStream::Tls(stream) => Some(stream.get_ref().0),
            #[cfg(feature = "http2")]
            ClientStream::Http2(_) => None,
        }
    }

    /// Whether the WebSocket is a stream of an HTTP/2 connection (RFC
    /// 8441).
    pub fn is_http2(&self) -> bool {
        #[cfg(feature = "http2")]
        return matches!(self, ClientStream::Http2(_));
        #[cfg(not(feature = "http2"))]
        false
    }
}

/// What [`ServerBuilder::accept_tcp`](crate::ServerBuilder::accept_tcp)
/// serves over: plain TCP, or TLS when the builder has a rustls
/// `ServerConfig`.
///
/// The TLS and HTTP/2 states are boxed: they are larger than a TCP
/// stream, and every connection's task would otherwise carry their size,
/// plain ones too. More transports may come (HTTP/3, RFC 9220): match
/// with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<ServerTlsStream<TcpStream>>),
    /// One stream of an HTTP/2 connection (RFC 8441), beside the other
    /// WebSockets the client opened on it.
    #[cfg(feature = "http2")]
    Http2(Box<crate::h2::H2Stream>),
}

impl ServerStream {
    /// The TCP stream underneath, when the WebSocket has one to itself
    /// (`None` for an HTTP/2 stream: the connection is shared).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ServerStream::Plain(stream) => Some(stream),
            ServerStream::Tls(stream) => Some(stream.get_ref().0),
            #[cfg(feature = "http2")]
            ServerStream::Http2(_) => None,
        }
    }

    /// Whether the WebSocket is a stream of an HTTP/2 connection (RFC
    /// 8441).
    pub fn is_http2(&self) -> bool {
        #[cfg(feature = "http2")]
        return matches!(self, ServerStream::Http2(_));
        #[cfg(not(feature = "http2"))]
        false
    }
}

/// Runs `$body` with `$stream` bound to whichever transport the enum
/// holds.
macro_rules! each_variant {
    ($value:expr, $name:ident, $stream:ident => $body:expr) => {
        match $value {
            $name::Plain($stream) => $body,
            $name::Tls($stream) => $body,
            #[cfg(feature = "http2")]
            $name::Http2($stream) => $body,
        }
    };
}

/// Forwards the tokio I/O traits of a stream enum to its variants.
macro_rules! forward_io {
    ($name:ident) => {
        impl AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), $name, stream => Pin::new(stream).poll_read(cx, buf))
            }
        }

        impl AsyncWrite for $name {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each_variant!(self.get_mut(), $name, stream => Pin::new(stream).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each_variant!(self.get_mut(), $name, stream => {
                    Pin::new(stream).poll_write_vectored(cx, bufs)
                })
            }

            fn is_write_vectored(&self) -> bool {
                each_variant!(self, $name, stream => stream.is_write_vectored())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), $name, stream => Pin::new(stream).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each_variant!(self.get_mut(), $name, stream => Pin::new(stream).poll_shutdown(cx))
            }
        }
    };
}

forward_io!(ClientStream);
forward_io!(ServerStream);
