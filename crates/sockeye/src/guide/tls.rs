//! # TLS: `wss://`
//!
//! A client needs nothing for public servers: `wss://` URLs are checked
//! against the Mozilla root certificates
//! ([`tls::default_client_config`](crate::tls::default_client_config)), or
//! the operating system's with
//! [`ClientBuilder::native_roots`](crate::ClientBuilder::native_roots)
//! (what networks that inspect TLS, or private CAs installed system-wide,
//! need). To trust only a private CA:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rustls::RootCertStore;
//! use rustls_pki_types::CertificateDer;
//! use rustls_pki_types::pem::PemObject;
//!
//! let mut roots = RootCertStore::empty();
//! for certificate in CertificateDer::pem_file_iter("private-ca.pem")? {
//!     roots.add(certificate?)?;
//! }
//! let config = Arc::new(sockeye::tls::client_config_with_roots(roots));
//! let (ws, _) = sockeye::ClientBuilder::new("wss://internal.example:8443/")
//!     .tls_config(config)
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A server takes a rustls `ServerConfig` with its certificate chain and
//! key, and serves TLS on every connection it accepts with
//! [`ServerBuilder::accept_tcp`](crate::ServerBuilder::accept_tcp):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rustls_pki_types::pem::PemObject;
//! use rustls_pki_types::{CertificateDer, PrivateKeyDer};
//!
//! let chain = CertificateDer::pem_file_iter("cert.pem")?.collect::<Result<Vec<_>, _>>()?;
//! let key = PrivateKeyDer::from_pem_file("key.pem")?;
//! // sockeye's provider (ring, or the process default you installed).
//! let mut tls = rustls::ServerConfig::builder_with_provider(sockeye::tls::crypto_provider())
//!     .with_safe_default_protocol_versions()?
//!     .with_no_client_auth()
//!     .with_single_cert(chain, key)?;
//! tls.alpn_protocols = vec![b"http/1.1".to_vec()];
//! let server = sockeye::ServerBuilder::new().tls(Arc::new(tls));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
//! loop {
//!     let Ok((tcp, _)) = listener.accept().await else { continue };
//!     let server = server.clone();
//!     tokio::spawn(async move {
//!         // The TLS handshake and the WebSocket handshake share one
//!         // deadline (`handshake_timeout`).
//!         let Ok(mut ws) = server.accept_tcp(tcp).await else { return };
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! `sockeye serve --cert cert.pem --key key.pem` does the same from the
//! command line, and `sockeye connect --ca private-ca.pem wss://...`
//! trusts a private CA.
//!
//! Failures keep their cause: [`Error::Tls`](crate::Error::Tls) carries
//! rustls' error (an unknown issuer, a name mismatch, an expired
//! certificate), and a [`Reconnecting`](crate::Reconnecting) client treats
//! it as final, since retrying will not make a certificate trusted.
