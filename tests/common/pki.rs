//! A test certificate authority made at run time (rcgen), the leaf certificates it signs, and
//! TLS upstreams serving them, for the tests of both TLS legs.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::upstream::Upstream;
use super::TempDir;

/// A CA, and a directory holding its PEM file.
pub struct Pki {
    pub ca: rcgen::Certificate,
    ca_key: KeyPair,
    dir: TempDir,
}

/// A leaf certificate and its key, in DER and in PEM.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Portcullis test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        let dir = TempDir::new("pki");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        Pki { ca, ca_key, dir }
    }

    /// The path of the CA's PEM file.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// The CA as the only root a rustls client trusts.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("CA as a root");
        roots
    }

    /// A leaf certificate for `names` (DNS names, or IP addresses) signed by the CA.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for n in names {
            params.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("a DNS name")),
            });
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("signed leaf");
        Leaf {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A TLS echo upstream (see [`Upstream::start_tls`]) for `names`; with `client_auth`, it
    /// demands a client certificate signed by the CA.
    pub fn upstream(&self, names: &[&str], client_auth: bool) -> Upstream {
        let leaf = self.leaf(names);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if client_auth {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                self.roots().into(),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(vec![leaf.cert], leaf.key)
            .expect("server certificate");
        Upstream::start_tls(Arc::new(config))
    }
}
