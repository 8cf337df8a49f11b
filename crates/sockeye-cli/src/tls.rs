//! TLS configurations from PEM files: a client trusting a private CA
//! (`connect --ca`, `bench --ca`) and a server certificate and key
//! (`serve --cert --key`). Unreadable or empty files are bad input.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::failure::Failure;

/// A client configuration that trusts only the certificates in `ca_file`
/// (PEM, one or more).
pub fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, Failure> {
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
    Ok(Arc::new(sockeye::tls::client_config_with_roots(roots)))
}

/// A server configuration with the certificate chain in `cert_file` and
/// the private key in `key_file` (PEM; PKCS#8, PKCS#1 or SEC1), ALPN
/// `http/1.1`.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, Failure> {
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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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
