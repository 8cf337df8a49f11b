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
/// TLS for `wss://`.
///
/// The TLS state is boxed: it is several KiB, and plain connections should
/// not carry its size.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(stream) => stream,
            ClientStream::Tls(stream) => stream.get_ref().0,
        }
    }
}

/// What [`ServerBuilder::accept_tcp`](crate::ServerBuilder::accept_tcp)
/// serves over: plain TCP, or TLS when the builder has a rustls
/// `ServerConfig`.
///
/// The TLS state is boxed: it is several KiB, and every connection's task
/// would otherwise carry its size, plain ones too.
#[derive(Debug)]
pub enum ServerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<ServerTlsStream<TcpStream>>),
}

impl ServerStream {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ServerStream::Plain(stream) => stream,
            ServerStream::Tls(stream) => stream.get_ref().0,
        }
    }
}

/// Forwards the tokio I/O traits of a two-variant stream enum.
macro_rules! forward_io {
    ($name:ident) => {
        impl AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $name::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
                    $name::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
                }
            }
        }

        impl AsyncWrite for $name {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $name::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
                    $name::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $name::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
                    $name::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $name::Plain(stream) => stream.is_write_vectored(),
                    $name::Tls(stream) => stream.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $name::Plain(stream) => Pin::new(stream).poll_flush(cx),
                    $name::Tls(stream) => Pin::new(stream).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $name::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
                    $name::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
                }
            }
        }
    };
}

forward_io!(ClientStream);
forward_io!(ServerStream);
