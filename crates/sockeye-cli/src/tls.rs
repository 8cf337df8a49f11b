//! TLS configurations from PEM files: a client trusting a private CA
//! (`connect --ca`, `bench --ca`) and a server certificate and key
//! (`serve --cert --key`). Unreadable or empty files are bad input.
//!
//! `connect`'s client configuration also tells a self-signed server
//! certificate from one signed by an unknown CA ([`SelfSigned`]): rustls
//! reports both as `UnknownIssuer`, and the advice differs.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::failure::Failure;

/// A client configuration that trusts only the certificates in `ca_file`
/// (PEM, one or more).
pub fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, Failure> {
    Ok(Arc::new(sockeye::tls::client_config_with_roots(ca_roots(
        ca_file,
    )?)))
}

/// The CA certificates in `ca_file`, as trust anchors.
fn ca_roots(ca_file: &Path) -> Result<RootCertStore, Failure> {
    let certificates = read_certificates(ca_file)?;
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|error| {
            Failure::usage(format!(
                "{}: not a usable CA certificate: {error}",
                ca_file.display()
            ))
        })?;
    }
    Ok(roots)
}

/// `connect`'s client configuration: trusts the CA certificates in
/// `ca_file`, or the Mozilla roots without one; a server certificate
/// that fails as `UnknownIssuer` because it is self-signed fails as
/// [`SelfSigned`] instead.
pub fn connect_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Failure> {
    let roots = match ca_file {
        Some(file) => ca_roots(file)?,
        None => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            roots
        }
    };
    // The library's configuration (protocol versions, ALPN, provider),
    // with our verifier.
    let mut config = sockeye::tls::client_config_with_roots(RootCertStore::empty());
    let provider = config.crypto_provider().clone();
    let inner = verifier(roots, &provider).map_err(|error| {
        Failure::usage(format!(
            "cannot verify certificates with these CAs: {error}"
        ))
    })?;
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(NamingVerifier { inner, provider }));
    Ok(Arc::new(config))
}

fn verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, rustls::client::VerifierBuilderError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
}

/// The server's certificate is self-signed: inside
/// `InvalidCertificate(Other(..))`, where rustls alone says
/// `UnknownIssuer`.
#[derive(Debug)]
pub struct SelfSigned;

impl std::fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("self-signed certificate")
    }
}

impl std::error::Error for SelfSigned {}

/// Whether `certificate` is signed by its own key: it verifies with itself
/// as the only trust anchor (webpki checks the issuer name and the
/// signature). Any other failure (expired, wrong name) still means it is
/// self-signed; only `UnknownIssuer` or a bad signature mean it is not.
fn is_self_signed(
    provider: &Arc<CryptoProvider>,
    certificate: &CertificateDer<'_>,
    name: &ServerName<'_>,
    ocsp: &[u8],
    now: UnixTime,
) -> bool {
    let mut roots = RootCertStore::empty();
    if roots.add(certificate.clone().into_owned()).is_err() {
        return false;
    }
    let Ok(verifier) = verifier(roots, provider) else {
        return false;
    };
    !matches!(
        verifier.verify_server_cert(certificate, &[], name, ocsp, now),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature
        ))
    )
}

/// webpki's verifier, with `UnknownIssuer` refined into [`SelfSigned`]
/// when it is.
#[derive(Debug)]
struct NamingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NamingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty()
                    && is_self_signed(
                        &self.provider,
                        end_entity,
                        server_name,
                        ocsp_response,
                        now,
                    ) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSigned)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A server configuration with the certificate chain in `cert_file` and
/// the private key in `key_file` (PEM; PKCS#8, PKCS#1 or SEC1), ALPN
/// `h2` (when `http2`) and `http/1.1`.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    http2: bool,
) -> Result<Arc<ServerConfig>, Failure> {
    let chain = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| {
        Failure::usage(format!(
            "cannot read a private key from {}: {}",
            key_file.display(),
            pem_error(&error)
        ))
    })?;
    let provider = sockeye::tls::crypto_provider();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Failure::failed(format!("TLS setup failed: {error}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| {
            Failure::usage(format!(
                "{} and {} do not make a usable certificate and key: {error}",
                cert_file.display(),
                key_file.display()
            ))
        })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let unreadable = |error: rustls_pki_types::pem::Error| {
        Failure::usage(format!(
            "cannot read certificates from {}: {}",
            file.display(),
            pem_error(&error)
        ))
    };
    let certificates = CertificateDer::pem_file_iter(file)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certificates.is_empty() {
        return Err(Failure::usage(format!(
            "no PEM certificate (BEGIN CERTIFICATE) in {}",
            file.display()
        )));
    }
    Ok(certificates)
}

/// The PEM error in words ("No such file or directory (os error 2)" for a
/// missing file).
fn pem_error(error: &rustls_pki_types::pem::Error) -> String {
    match error {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM section of the right kind".to_owned(),
        other => format!("{other:?}"),
    }
}
