//! Shared by the integration tests: a test PKI made with rcgen; the
//! server front-end the server-side tests run against (`front`).
#![allow(dead_code)]

pub mod advisories;
pub mod front;
pub mod hostile;

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{RootCertStore, ServerConfig};

/// A test PKI: a CA certificate, and a server certificate and key it
/// signed for `names`.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivatePkcs8KeyDer<'static>,
}

pub fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sockeye test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut server_params = CertificateParams::new(names).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "sockeye test server");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    Pki {
        ca: ca.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
    }
}

impl Pki {
    /// A rustls server configuration with the ring provider (the only one
    /// built).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = sockeye::tls::crypto_provider();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .unwrap();
        Arc::new(config)
    }

    /// A client configuration trusting only this PKI's CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(sockeye::tls::client_config_with_roots(roots))
    }
}
