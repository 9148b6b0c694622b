//! TLS to `https` upstreams: trust roots, client configurations and the handshake.
//!
//! - [`UpstreamTls`]: the node-wide part, in [`super::Shared`]: the trusted CA certificates
//!   (`ssl_trusted_certificate`: the system store, or a PEM file instead of it) and the two
//!   configurations every upstream without a client certificate shares, one verifying and one
//!   not. Built once (at start, see [`UpstreamTls::load`]) and shared by every worker.
//! - [`TlsTarget`]: an upstream's part, in the snapshot: `tls.verify` and the client
//!   certificate. An upstream with a client certificate gets its own configuration, built on
//!   first use and shared by the workers for as long as that snapshot lives.
//! - [`Connector`]: one configuration and its id; pooled connections are keyed by that id, the
//!   node address and the server name, so a connection is never reused for another name, other
//!   trust settings or another client certificate.
//! - [`server_name`]: the name sent in SNI and checked against the certificate.
//!
//! **Server name.** As APISIX, which sets nginx's `proxy_ssl_name` to `$upstream_host` (the
//! `Host` it sends) with `proxy_ssl_server_name on`, the server name is the host of the `Host`
//! header the gateway sends upstream, without its port: the client's `Host` for
//! `pass_host: pass`, the node's host for `node`, `upstream_host` for `rewrite`. When that host
//! is an IP address, no SNI is sent (RFC 6066 forbids literal addresses there) and the
//! certificate must hold that address as an IP subject alternative name.
//!
//! **Verification** is on unless the upstream says `tls.verify: false` (APISIX never verifies
//! http upstreams). Without it the chain and name are not checked, but the handshake signature
//! still is, so the connection is still encrypted to whoever holds the key it presented.
//!
//! **Session resumption**: each configuration keeps rustls' in-memory session cache, shared by
//! the workers, so a new connection to a node another core already talked to resumes instead of
//! doing a full handshake. The cache takes a short lock, but only when a connection is opened,
//! never per request. The verifying and non-verifying configurations have separate caches: a
//! session resumed skips certificate checks, so it must come from a handshake that made them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TrustedCa;
use crate::model::ClientCert;

/// Sessions kept per configuration for resumption (rustls' default).
const SESSIONS: usize = 256;

/// Ids of [`Connector`]s, unique for the life of the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A client configuration, ready to handshake, with an id for pool keys.
pub struct Connector {
    /// Unique for the life of the process (never reused, unlike an address).
    pub id: u64,
    inner: TlsConnector,
}

impl Connector {
    fn new(config: ClientConfig) -> Arc<Connector> {
        Arc::new(Connector {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            inner: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the client handshake over `tcp`. The error says why (certificate, alert, EOF), and
    /// holds no secret.
    pub async fn handshake(
        &self,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> Result<ClientTlsStream<TcpStream>, String> {
        self.inner.connect(name, tcp).await.map_err(|e| match e {
            // A certificate or protocol error surfaces as the I/O error wrapping it.
            monoio_rustls::TlsError::Io(e) => e.to_string(),
            monoio_rustls::TlsError::Rustls(e) => e.to_string(),
        })
    }
}

/// TLS towards an upstream's nodes, as compiled into the snapshot.
pub struct TlsTarget {
    verify: bool,
    client_cert: Option<Arc<ClientCert>>,
    /// The configuration of an upstream with a client certificate, built on first use.
    own: OnceLock<Result<Arc<Connector>, String>>,
}

impl TlsTarget {
    /// The TLS settings of an `https` upstream.
    pub fn new(verify: bool, client_cert: Option<Arc<ClientCert>>) -> TlsTarget {
        TlsTarget {
            verify,
            client_cert,
            own: OnceLock::new(),
        }
    }

    /// Whether the nodes' certificates are verified.
    pub fn verify(&self) -> bool {
        self.verify
    }
}

/// The node-wide TLS client state: trusted roots and the shared configurations.
pub struct UpstreamTls {
    source: TrustedCa,
    built: OnceLock<Result<Base, String>>,
}

struct Base {
    roots: Arc<RootCertStore>,
    verified: Arc<Connector>,
    unverified: Arc<Connector>,
}

impl UpstreamTls {
    /// Trusts `source`; nothing is read until [`UpstreamTls::load`] or the first connection.
    pub fn new(source: TrustedCa) -> UpstreamTls {
        UpstreamTls {
            source,
            built: OnceLock::new(),
        }
    }

    /// Reads the trusted certificates and builds the shared configurations, once. The error
    /// names `ssl_trusted_certificate` and what is wrong with it; the gateway must not start.
    pub fn load(&self) -> Result<(), String> {
        self.base().map(|_| ())
    }

    fn base(&self) -> Result<&Base, String> {
        self.built
            .get_or_init(|| {
                let roots = Arc::new(load_roots(&self.source)?);
                Ok(Base {
                    verified: Connector::new(config(Some(roots.clone()), None)?),
                    unverified: Connector::new(config(None, None)?),
                    roots,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The configuration for `target`'s connections.
    pub fn connector(&self, target: &TlsTarget) -> Result<Arc<Connector>, String> {
        let base = self.base()?;
        let Some(cert) = &target.client_cert else {
            return Ok(if target.verify {
                base.verified.clone()
            } else {
                base.unverified.clone()
            });
        };
        target
            .own
            .get_or_init(|| {
                let roots = target.verify.then(|| base.roots.clone());
                let identity = (cert.chain.clone(), cert.key.clone_key());
                config(roots, Some(identity)).map(Connector::new)
            })
            .clone()
    }
}

/// The crypto provider: ring, the crate the JWT code already uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration verifying against `roots` (or not at all when `None`), presenting
/// `identity` when given, with session resumption.
fn config(
    roots: Option<Arc<RootCertStore>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let builder = match roots {
        Some(roots) => builder.with_root_certificates(roots),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
    };
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client_cert and client_key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::in_memory_sessions(SESSIONS);
    Ok(config)
}

/// Checks that a client certificate chain and key can be used: the key is of a supported type
/// and matches the leaf certificate.
pub fn check_client_identity(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(), String> {
    config(Some(Arc::new(RootCertStore::empty())), Some((chain, key))).map(|_| ())
}

/// The trusted CA certificates.
fn load_roots(source: &TrustedCa) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match source {
        TrustedCa::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "ssl_trusted_certificate: system: a CA certificate source could not be read");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                tracing::warn!(
                    ignored,
                    "ssl_trusted_certificate: system: some CA certificates could not be parsed"
                );
            }
            if added == 0 {
                tracing::warn!(
                    "ssl_trusted_certificate: system: no CA certificate found (install the \
                     ca-certificates package, or name a PEM file); https upstreams that verify \
                     their certificate will fail"
                );
            }
        }
        TrustedCa::File(path) => {
            let field = format!("ssl_trusted_certificate: {}", path.display());
            let pem = std::fs::read(path).map_err(|e| format!("{field}: {e}"))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{field}: invalid PEM: {e}"))?;
            if certs.is_empty() {
                return Err(format!("{field}: no CERTIFICATE in the file"));
            }
            for (i, cert) in certs.into_iter().enumerate() {
                roots
                    .add(cert)
                    .map_err(|e| format!("{field}: certificate #{}: {e}", i + 1))?;
            }
        }
    }
    Ok(roots)
}

/// The server name for a `Host` value: its host without the port (and without the brackets of
/// an IPv6 address). `None` when that is neither a DNS name nor an IP address.
pub fn server_name(host: &[u8]) -> Option<ServerName<'static>> {
    let host = std::str::from_utf8(host).ok()?;
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        v6
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return None,
            None => host,
        }
    };
    if bare.is_empty() {
        return None;
    }
    ServerName::try_from(bare).ok().map(|n| n.to_owned())
}

/// `tls.verify: false`: any certificate is taken, but the handshake signatures are still
/// checked with it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Option<String> {
        server_name(s.as_bytes()).map(|n| match n {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => format!("ip {:?}", std::net::IpAddr::from(ip)),
            _ => "other".to_owned(),
        })
    }

    #[test]
    fn server_name_is_the_host_without_its_port() {
        assert_eq!(name("example.com").as_deref(), Some("example.com"));
        assert_eq!(name("example.com:8443").as_deref(), Some("example.com"));
        assert_eq!(name("127.0.0.1:443").as_deref(), Some("ip 127.0.0.1"));
        assert_eq!(name("[::1]:8443").as_deref(), Some("ip ::1"));
        assert_eq!(name("[::1]").as_deref(), Some("ip ::1"));
        assert_eq!(name("my_backend").as_deref(), Some("my_backend"));
    }

    #[test]
    fn server_name_refuses_what_is_no_host() {
        for bad in [
            "",
            ":443",
            "a b",
            "example.com:x",
            "[::1",
            "[::1]x",
            "[]:1",
            "a..b",
        ] {
            assert_eq!(name(bad), None, "{bad:?}");
        }
        assert_eq!(server_name(b"\xff"), None);
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_naming_the_field() {
        let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = UpstreamTls::new(TrustedCa::File(dir.join("none.pem")));
        let e = missing.load().unwrap_err();
        assert!(e.starts_with("ssl_trusted_certificate: "), "{e}");

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = UpstreamTls::new(TrustedCa::File(empty)).load().unwrap_err();
        assert!(e.contains("no CERTIFICATE"), "{e}");

        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = UpstreamTls::new(TrustedCa::File(garbage))
            .load()
            .unwrap_err();
        assert!(e.contains("certificate #1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upstreams_without_a_client_certificate_share_two_configurations() {
        let dir = std::env::temp_dir().join(format!("portcullis-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, ca.cert.pem()).unwrap();
        let tls = UpstreamTls::new(TrustedCa::File(file));
        tls.load().unwrap();
        let a = tls.connector(&TlsTarget::new(true, None)).unwrap();
        let b = tls.connector(&TlsTarget::new(true, None)).unwrap();
        let c = tls.connector(&TlsTarget::new(false, None)).unwrap();
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);

        let leaf = rcgen::generate_simple_self_signed(vec!["client.test".to_owned()]).unwrap();
        let cert = ClientCert::from_pem(&leaf.cert.pem(), &leaf.key_pair.serialize_pem()).unwrap();
        let target = TlsTarget::new(true, Some(Arc::new(cert)));
        let own = tls.connector(&target).unwrap();
        assert_ne!(own.id, a.id);
        assert_eq!(tls.connector(&target).unwrap().id, own.id, "built once");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
