//! The test PKI for `wss://`: a CA made at test time with rcgen and a
//! server certificate it signs for the loopback names. The CA's PEM is
//! what Python's and Node's TLS stacks are handed.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Writes `ca.pem`, `server.pem` and `server-key.pem` into `dir`, and
/// `server-spki.der`: the server key's SubjectPublicKeyInfo, whose
/// SHA-256 Chromium's `--ignore-certificate-errors-spki-list` takes.
pub fn write(dir: &Path) -> Result<(), String> {
    let fail = |what: &str, error: &dyn std::fmt::Display| format!("pki: {what}: {error}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", &e))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sockeye interop test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| fail("CA", &e))?;

    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| fail("server", &e))?;
    for ip in ["127.0.0.1", "::1"] {
        let ip = ip.parse().map_err(|e| fail("address", &e))?;
        server_params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    server_params
        .distinguished_name
        .push(DnType::CommonName, "sockeye interop test server");
    let server_key = KeyPair::generate().map_err(|e| fail("server key", &e))?;
    let server = server_params
        .signed_by(&server_key, &ca)
        .map_err(|e| fail("server certificate", &e))?;

    std::fs::create_dir_all(dir).map_err(|e| fail("create dir", &e))?;
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("server.pem", server.pem()),
        ("server-key.pem", server_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).map_err(|e| fail(name, &e))?;
    }
    use rcgen::PublicKeyData;
    std::fs::write(
        dir.join("server-spki.der"),
        server_key.subject_public_key_info(),
    )
    .map_err(|e| fail("server-spki.der", &e))?;
    Ok(())
}

/// A rustls server configuration from `dir/server.pem` and
/// `dir/server-key.pem`.
pub fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = read_certificates(&dir.join("server.pem"))?;
    let key_path = dir.join("server-key.pem");
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = sockeye::tls::crypto_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration trusting only the CA in `ca_file`.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in read_certificates(ca_file)? {
        roots
            .add(certificate)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    Ok(Arc::new(sockeye::tls::client_config_with_roots(roots)))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certificates)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
