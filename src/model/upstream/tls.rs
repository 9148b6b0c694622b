//! An upstream's `tls` object: how the gateway talks TLS to `https` nodes.
//!
//! - `verify` (boolean): check the node's certificate chain and name. Defaults to `true` here,
//!   where APISIX's schema defaults it to `false` (and nginx's `proxy_ssl_verify` is off): a
//!   gateway that sends consumers' requests to whoever answers on the address is not a safe
//!   default. `false` restores APISIX's behaviour for that upstream and is logged as a warning.
//! - `client_cert` and `client_key` (PEM, both or neither): a certificate the gateway presents
//!   to the nodes (mutual TLS). Parsed and checked against each other here, so a bad pair is a
//!   400 at write time instead of a failed handshake on every request.
//! - `client_cert_id` (a reference to an `ssls` object of type `client`): refused as not
//!   supported yet.
//!
//! Like APISIX, the object is not closed to other keys, and it is accepted but unused on an
//! `http` upstream.

use std::fmt;
use std::sync::Arc;

use crate::model::check::{Obj, Str};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// APISIX's bounds on the PEM texts (`certificate_scheme`, `private_key_schema`).
const CERT_PEM: Str = Str::len(128, 64 * 1024);
const KEY_PEM: Str = Str::len(64, 64 * 1024);

/// A validated `tls` object.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TlsOptions {
    /// Check the nodes' certificates against the trusted roots and the server name. Defaults to
    /// `true` (APISIX: `false`).
    pub verify: Option<bool>,
    /// The certificate presented to the nodes (`client_cert` and `client_key`). Defaults to none.
    pub client_cert: Option<Arc<ClientCert>>,
}

impl TlsOptions {
    /// Whether the nodes' certificates are checked: `verify`, `true` when unset.
    pub fn verify(&self) -> bool {
        self.verify.unwrap_or(true)
    }
}

/// A client certificate chain and its private key, parsed.
pub struct ClientCert {
    /// The PEM text as configured, compared to tell two configurations apart.
    cert_pem: String,
    key_pem: String,
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl PartialEq for ClientCert {
    fn eq(&self, other: &Self) -> bool {
        self.cert_pem == other.cert_pem && self.key_pem == other.key_pem
    }
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ClientCert")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ClientCert {
    /// Parses a PEM chain and key and checks that they belong together and that the key is of
    /// a kind the TLS stack can sign with.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClientCert, String> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("client_cert: invalid PEM: {e}"))?;
        if chain.is_empty() {
            return Err("client_cert: no certificate in the PEM text".to_owned());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("client_key: no private key in the PEM text ({e})"))?;
        // Building a client config with this identity is the check rustls itself makes: a key
        // type it cannot sign with, or one that does not match the leaf, is refused.
        crate::proxy::tls::check_client_identity(chain.clone(), key.clone_key())?;
        Ok(ClientCert {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            chain,
            key,
        })
    }
}

/// Checks the `tls` field of an upstream object; `None` when absent or invalid (reported).
pub(super) fn tls(o: &mut Obj<'_, '_>) -> Option<TlsOptions> {
    let mut c = o.child("tls")?;
    let before = c.err.count();
    let verify = c.opt_bool("verify");
    let cert = c.opt_str("client_cert", &CERT_PEM);
    let key = c.opt_str("client_key", &KEY_PEM);
    if c.has("client_cert_id") {
        c.err.push(
            "property \"client_cert_id\" is not supported yet: give client_cert and client_key",
        );
    }
    let client_cert = match (c.has("client_cert"), c.has("client_key")) {
        (true, false) => {
            c.err
                .push("property \"client_key\" is required when \"client_cert\" is set");
            None
        }
        (false, true) => {
            c.err
                .push("property \"client_cert\" is required when \"client_key\" is set");
            None
        }
        _ => match (cert, key) {
            (Some(cert), Some(key)) => match ClientCert::from_pem(cert, key) {
                Ok(cc) => Some(Arc::new(cc)),
                Err(e) => {
                    c.err.push(e);
                    None
                }
            },
            _ => None,
        },
    };
    if c.err.count() > before {
        return None;
    }
    Some(TlsOptions {
        verify,
        client_cert,
    })
}
