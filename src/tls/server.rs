//! A worker's rustls server configs and the resolver that picks a certificate by SNI from the
//! current snapshot.

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ServerConfig, SupportedProtocolVersion};

use crate::model::TlsVersions;
use crate::proxy::Shared;

use super::sni::lookup_key;

/// The server configs of one worker: one per set of TLS versions an ssl object may allow, all
/// sharing one resolver. Built once per worker, so each has its own session cache.
pub struct Acceptors {
    all: Arc<ServerConfig>,
    tls12: Arc<ServerConfig>,
    tls13: Arc<ServerConfig>,
}

impl Acceptors {
    /// The configs for a worker reading certificates from `shared`'s current snapshot.
    pub fn new(shared: Arc<Shared>) -> Acceptors {
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(SniResolver { shared });
        let config = |versions: &[&'static SupportedProtocolVersion]| {
            let mut c = ServerConfig::builder_with_provider(super::provider())
                .with_protocol_versions(versions)
                .expect("the ring provider supports TLS 1.2 and TLS 1.3")
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(c)
        };
        Acceptors {
            all: config(&[&TLS13, &TLS12]),
            tls12: config(&[&TLS12]),
            tls13: config(&[&TLS13]),
        }
    }

    /// The config allowing `versions` (an ssl object allows at least one).
    pub fn config(&self, versions: TlsVersions) -> &Arc<ServerConfig> {
        match (versions.tls12, versions.tls13) {
            (true, false) => &self.tls12,
            (false, true) => &self.tls13,
            _ => &self.all,
        }
    }
}

/// Picks the certificate for a ClientHello: by its SNI, or `fallback_sni` when it has none.
struct SniResolver {
    shared: Arc<Shared>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let fallback = self.shared.config.fallback_sni.as_deref();
        let Some(name) = hello
            .server_name()
            .map(lookup_key)
            .or(fallback.map(Into::into))
        else {
            tracing::debug!("TLS handshake refused: no SNI and no fallback_sni");
            return None;
        };
        let snapshot = self.shared.load();
        let Some(entry) = snapshot.tls.find(&name) else {
            tracing::debug!(sni = %name, "TLS handshake refused: no certificate for this SNI");
            return None;
        };
        entry.pick(hello.signature_schemes()).cloned()
    }
}
