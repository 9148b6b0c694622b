//! [`Ssl`]: a server certificate and its private key, and the server names it answers for, from
//! an APISIX `ssl` object (`/apisix/admin/ssls/{id}`, or an item of a standalone file's `ssls`).
//!
//! The schema is APISIX's (`schema_def.lua` `_M.ssl`, `apisix/ssl.lua` `check_ssl_conf`): `cert`
//! and `key` (PEM), extra pairs in `certs` / `keys` (say an ECDSA pair next to an RSA one), `snis`
//! (or one `sni`), `type`, `status`, `ssl_protocols`, `desc`, `labels`. Checked further than
//! APISIX does: every certificate and key must parse, each key must be the private half of its
//! certificate, and every SNI must be a host name (`*.example.com` and `*` allowed), so a bad
//! pair is a 400 at write time rather than failed handshakes later.
//!
//! Refused for now, each with a message naming it: `type: client` (client certificates for
//! upstream mTLS), `client` (verifying client certificates), `TLSv1.1` (rustls implements TLS
//! 1.2 and 1.3 only) and secret references in `cert` / `key`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use super::check::{as_str, Errors, Obj, Str};
use super::{meta, ValidationErrors};

/// Every field of APISIX's ssl schema, which refuses any other (`additionalProperties`).
const FIELDS: &[&str] = &[
    "id",
    "desc",
    "labels",
    "create_time",
    "update_time",
    "type",
    "cert",
    "key",
    "sni",
    "snis",
    "certs",
    "keys",
    "client",
    "status",
    "ssl_protocols",
];

/// APISIX's `certificate_scheme`.
const CERT: Str = Str::len(128, 64 * 1024);
/// APISIX's `private_key_schema`.
const KEY: Str = Str::len(64, 64 * 1024);

/// The TLS versions a handshake may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsVersions {
    /// TLS 1.2.
    pub tls12: bool,
    /// TLS 1.3.
    pub tls13: bool,
}

impl TlsVersions {
    /// TLS 1.2 and 1.3: what a handshake may use unless its ssl object says otherwise.
    pub const ALL: TlsVersions = TlsVersions {
        tls12: true,
        tls13: true,
    };
}

/// A validated ssl object.
#[derive(Clone, Debug)]
pub struct Ssl {
    /// From the Admin API path or the body. No default: required.
    pub id: String,
    /// The server names, normalised (lower case, no trailing dot); `*.example.com` and `*`
    /// included as such. No default: `snis` or `sni` is required.
    pub snis: Vec<String>,
    /// `cert`/`key` first, then each `certs[i]`/`keys[i]`, parsed and checked to match.
    pub keys: Vec<Arc<CertifiedKey>>,
    /// `ssl_protocols`. Defaults to TLS 1.2 and 1.3.
    pub versions: TlsVersions,
    /// `status` 1. Defaults to `true`.
    pub enabled: bool,
    /// `desc`. Defaults to none.
    pub desc: Option<String>,
    /// `labels`. Defaults to empty.
    pub labels: BTreeMap<String, String>,
}

impl PartialEq for Ssl {
    /// Same id, names, settings and certificate chains (each key is checked against its
    /// certificate, so equal chains mean equal pairs).
    fn eq(&self, other: &Ssl) -> bool {
        self.id == other.id
            && self.snis == other.snis
            && self.versions == other.versions
            && self.enabled == other.enabled
            && self.desc == other.desc
            && self.labels == other.labels
            && self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|(a, b)| a.cert == b.cert)
    }
}

impl Ssl {
    /// Validates an ssl object; `id_from_path` as for the other objects. Every problem is
    /// reported, each naming its field.
    pub fn from_json(v: &Value, id_from_path: Option<&str>) -> Result<Ssl, ValidationErrors> {
        let mut errors = Vec::new();
        let parsed = Ssl::parse(v, id_from_path, Errors::root(&mut errors));
        ValidationErrors::finish(parsed, errors)
    }

    fn parse(v: &Value, id_from_path: Option<&str>, err: Errors<'_>) -> Option<Ssl> {
        let mut o = Obj::new(v, err)?;
        let before = o.err.count();
        o.reject_unknown(FIELDS);
        o.unsupported(&["client"]);
        let id = meta::required_id(&mut o, id_from_path, "ssl");
        let desc = meta::desc(&mut o);
        let labels = meta::labels(&mut o);
        meta::timestamps(&mut o);
        match o.opt_str("type", &Str::len(0, 16)) {
            None | Some("server") => {}
            Some("client") => o.err.field(
                "type",
                "\"client\" (a client certificate for upstream mTLS) is not supported yet",
            ),
            Some(other) => o.err.field(
                "type",
                format_args!("matches none of the enum values (\"server\", \"client\"): {other:?}"),
            ),
        }
        let enabled = match o.opt_int("status", None, None) {
            None | Some(1) => true,
            Some(0) => false,
            Some(n) => {
                o.err.field(
                    "status",
                    format_args!("matches none of the enum values (1, 0): {n}"),
                );
                true
            }
        };
        let versions = versions(&mut o);
        let snis = snis(&mut o);

        let mut keys = Vec::new();
        let cert = pem_field(&mut o, "cert", &CERT);
        let key = pem_field(&mut o, "key", &KEY);
        if let (Some(cert), Some(key)) = (cert, key) {
            match certified_key(cert, key) {
                Ok(k) => keys.push(k),
                Err(msg) => o.err.push(msg),
            }
        }
        extra_pairs(&mut o, &mut keys);

        if o.err.count() > before {
            return None;
        }
        Some(Ssl {
            id: id?,
            snis: snis?,
            keys,
            versions: versions?,
            enabled,
            desc,
            labels,
        })
    }
}

/// `snis`, or APISIX's older single `sni`: exactly one of them.
fn snis(o: &mut Obj<'_, '_>) -> Option<Vec<String>> {
    let list: Vec<(String, &Value)> = match (o.get("snis"), o.get("sni")) {
        (Some(_), Some(_)) => {
            o.err.push(
                "only one of \"snis\" and \"sni\" may be set (\"sni\" is the older single form)",
            );
            return None;
        }
        (None, None) => {
            o.err.push("property \"snis\" is required");
            return None;
        }
        (Some(_), None) => o
            .opt_array("snis", 1)?
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("snis[{i}]"), v))
            .collect(),
        (None, Some(v)) => vec![("sni".to_owned(), v)],
    };
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (path, v) in list {
        let checked = as_str(v, &Str::len(1, 256)).and_then(crate::tls::sni::normalise_pattern);
        match checked {
            Ok(name) if !out.contains(&name) => out.push(name),
            Ok(_) => {}
            Err(msg) => {
                o.err.child(&path).push(msg);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `ssl_protocols`: some of `TLSv1.2`, `TLSv1.3`.
fn versions(o: &mut Obj<'_, '_>) -> Option<TlsVersions> {
    let Some(items) = o.opt_array("ssl_protocols", 1) else {
        return (!o.has("ssl_protocols")).then_some(TlsVersions::ALL);
    };
    let mut v = TlsVersions {
        tls12: false,
        tls13: false,
    };
    let before = o.err.count();
    for (i, item) in items.iter().enumerate() {
        let slot = match item.as_str() {
            Some("TLSv1.2") => &mut v.tls12,
            Some("TLSv1.3") => &mut v.tls13,
            Some("TLSv1.1") => {
                o.err
                    .item("ssl_protocols", i)
                    .push("TLSv1.1 is not supported: rustls implements TLSv1.2 and TLSv1.3 only");
                continue;
            }
            _ => {
                o.err.item("ssl_protocols", i).push(format_args!(
                    "matches none of the enum values (\"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\"): {item}"
                ));
                continue;
            }
        };
        if std::mem::replace(slot, true) {
            o.err.field(
                "ssl_protocols",
                format_args!("expected unique items but {item} appears twice"),
            );
        }
    }
    (o.err.count() == before).then_some(v)
}

/// A PEM field: a string within `rule`, and not a secret reference.
fn pem_field<'v>(o: &mut Obj<'v, '_>, name: &str, rule: &Str) -> Option<&'v str> {
    let s = o.req_str(name, rule)?;
    if is_reference(s) {
        o.err.field(name, REFERENCES);
        return None;
    }
    Some(s)
}

const REFERENCES: &str =
    "secret references ($env://, $secret://) are not supported in ssl objects yet";

fn is_reference(s: &str) -> bool {
    s.starts_with("$env://") || s.starts_with("$secret://")
}

/// `certs` and `keys`: as many of each, every pair checked like `cert` and `key`.
fn extra_pairs(o: &mut Obj<'_, '_>, keys: &mut Vec<Arc<CertifiedKey>>) {
    let certs = o.opt_array("certs", 0);
    let pkeys = o.opt_array("keys", 0);
    let (Some(certs), Some(pkeys)) = (certs, pkeys) else {
        // A wrong type is reported by `opt_array`; one without the other is a mismatch.
        if o.has("certs") != o.has("keys") {
            o.err.push("mismatched number of certs and keys");
        }
        return;
    };
    if certs.len() != pkeys.len() {
        o.err.push("mismatched number of certs and keys");
        return;
    }
    for (i, (c, k)) in certs.iter().zip(pkeys).enumerate() {
        let cert = as_str(c, &CERT).map_err(|m| format!("certs[{i}]: {m}"));
        let key = as_str(k, &KEY).map_err(|m| format!("keys[{i}]: {m}"));
        let pair = match (cert, key) {
            (Ok(c), Ok(k)) if is_reference(c) || is_reference(k) => Err(REFERENCES.to_owned()),
            (Ok(c), Ok(k)) => certified_key(c, k),
            (Err(m), _) | (_, Err(m)) => Err(m),
        };
        match pair {
            Ok(key) => keys.push(key),
            // Numbered from 1, as APISIX does.
            Err(msg) => o.err.push(format_args!(
                "failed to handle cert-key pair[{}]: {msg}",
                i + 1
            )),
        }
    }
}

/// Parses a PEM certificate chain (leaf first) and a PEM private key, and checks that the key
/// is the certificate's.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("failed to parse cert: {e}"))?;
    if chain.is_empty() {
        return Err("failed to parse cert: no PEM \"CERTIFICATE\" block found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "failed to parse key: no PEM private key \
            found (\"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\"; encrypted keys \
            are not supported)"
            .to_owned(),
        e => format!("failed to parse key: {e}"),
    })?;
    let signer = crate::tls::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| {
            format!(
                "failed to parse key: {e} (supported: RSA of 2048 to 8192 bits, ECDSA P-256 \
                 and P-384, Ed25519)"
            )
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(
            "key does not match cert: the private key is not the one of the \
                 certificate's public key"
                .into(),
        ),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err("key does not match cert: cannot compare them".into())
        }
        Err(e) => Err(format!("failed to parse cert: {e}")),
    }
}

#[cfg(test)]
mod tests;
