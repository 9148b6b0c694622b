//! Server names: checking the `snis` of ssl objects and `fallback_sni`, and the compiled
//! [`SniTable`] a handshake looks its certificate up in.
//!
//! Matching follows APISIX's `radixtree_sni` router: names are compared in lower case without a
//! trailing dot; an exact name wins, then `*.example.com`, which stands for exactly one label
//! (`a.example.com`, never `example.com` or `a.b.example.com`), then `*`, which stands for any
//! name. Two enabled ssl objects naming the same SNI: the first in id order wins (APISIX leaves it
//! to its radix tree), and the compile logs a warning.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::model::{Ssl, TlsVersions};

/// The longest host name (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
/// The longest label.
const MAX_LABEL: usize = 63;

/// `name` as an exact host name: lower case, a trailing dot removed, each label 1 to 63 letters,
/// digits, `-` or `_`, not starting or ending with `-`, 253 characters at most.
pub fn normalise_host(name: &str) -> Result<String, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(format!("{name:?} is not a host name: it is empty"));
    }
    if trimmed.len() > MAX_NAME {
        return Err(format!(
            "{name:?} is not a host name: longer than {MAX_NAME} characters"
        ));
    }
    for label in trimmed.split('.') {
        let why = if label.is_empty() {
            Some("it has an empty label")
        } else if label.len() > MAX_LABEL {
            Some("a label is longer than 63 characters")
        } else if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Some("only letters, digits, `-`, `_` and `.` are allowed")
        } else if label.starts_with('-') || label.ends_with('-') {
            Some("a label starts or ends with `-`")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!("{name:?} is not a host name: {why}"));
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// An SNI an ssl object answers for: an exact host name, `*.` before one, or `*` alone; the
/// result is normalised as [`normalise_host`] does.
pub fn normalise_pattern(pattern: &str) -> Result<String, String> {
    if pattern == "*" {
        return Ok(pattern.to_owned());
    }
    match pattern.strip_prefix("*.") {
        Some(rest) => normalise_host(rest).map(|h| format!("*.{h}")),
        None if pattern.contains('*') => Err(format!(
            "{pattern:?} is not a host name: a wildcard is only allowed as the whole first \
             label (`*.example.com`) or alone (`*`)"
        )),
        None => normalise_host(pattern),
    }
}

/// One enabled ssl object, ready for handshakes.
#[derive(Debug)]
pub struct CertEntry {
    /// The object's id, for logs.
    pub id: String,
    /// `cert`/`key` first, then each `certs[i]`/`keys[i]`.
    pub keys: Vec<Arc<CertifiedKey>>,
    /// The TLS versions a handshake for this object may use.
    pub versions: TlsVersions,
}

impl CertEntry {
    /// The first certificate whose key can sign with one of `schemes` (ECDSA for a client that
    /// only offers ECDSA, RSA otherwise...), or the first one when none can (the handshake then
    /// fails with rustls's own alert).
    pub fn pick(&self, schemes: &[SignatureScheme]) -> Option<&Arc<CertifiedKey>> {
        if self.keys.len() > 1 {
            if let Some(k) = self
                .keys
                .iter()
                .find(|k| k.key.choose_scheme(schemes).is_some())
            {
                return Some(k);
            }
        }
        self.keys.first()
    }
}

/// Server name → certificate, compiled once per configuration change.
#[derive(Debug, Default)]
pub struct SniTable {
    entries: Vec<CertEntry>,
    exact: HashMap<Box<str>, usize>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<Box<str>, usize>,
    any: Option<usize>,
    /// Whether some entry allows fewer versions than TLS 1.2 and 1.3.
    restricted: bool,
}

impl SniTable {
    /// The table of the enabled server certificates of `ssls`, in order (the first object
    /// naming an SNI keeps it).
    pub fn build(ssls: &[Ssl]) -> SniTable {
        let mut t = SniTable::default();
        for ssl in ssls.iter().filter(|s| s.enabled) {
            let index = t.entries.len();
            t.entries.push(CertEntry {
                id: ssl.id.clone(),
                keys: ssl.keys.clone(),
                versions: ssl.versions,
            });
            t.restricted |= ssl.versions != TlsVersions::ALL;
            for sni in &ssl.snis {
                let taken = if sni == "*" {
                    match t.any {
                        Some(first) => Some(first),
                        None => {
                            t.any = Some(index);
                            None
                        }
                    }
                } else if let Some(rest) = sni.strip_prefix("*.") {
                    keep_first(&mut t.wildcard, rest, index)
                } else {
                    keep_first(&mut t.exact, sni, index)
                };
                if let Some(first) = taken {
                    tracing::warn!(
                        sni = %sni,
                        ssl = %ssl.id,
                        kept = %t.entries[first].id,
                        "two ssl objects name the same SNI; the first keeps it"
                    );
                }
            }
        }
        t
    }

    /// The entry for a (normalised) server name.
    pub fn find(&self, sni: &str) -> Option<&CertEntry> {
        let index = self.exact.get(sni).or_else(|| {
            sni.split_once('.')
                .and_then(|(_, rest)| self.wildcard.get(rest))
        });
        index
            .copied()
            .or(self.any)
            .and_then(|i| self.entries.get(i))
    }

    /// Whether some entry restricts the TLS versions (handshakes then read the ClientHello
    /// first to pick the versions their certificate allows).
    pub fn restricts_versions(&self) -> bool {
        self.restricted
    }

    /// Number of enabled ssl objects.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no ssl object is enabled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Inserts `name → index` unless `name` is taken; returns the index that keeps it then.
fn keep_first(map: &mut HashMap<Box<str>, usize>, name: &str, index: usize) -> Option<usize> {
    match map.get(name) {
        Some(&first) => Some(first),
        None => {
            map.insert(name.into(), index);
            None
        }
    }
}

/// A server name from a ClientHello (or `fallback_sni`) in the form the table is keyed by: lower
/// case, without a trailing dot. Borrows when it already is.
pub fn lookup_key(sni: &str) -> std::borrow::Cow<'_, str> {
    let sni = sni.strip_suffix('.').unwrap_or(sni);
    if sni.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(sni.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(sni)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_ids(t: &SniTable, sni: &str) -> Option<String> {
        t.find(sni).map(|e| e.id.clone())
    }

    fn ssl(id: &str, snis: &[&str], enabled: bool) -> Ssl {
        Ssl {
            id: id.into(),
            snis: snis.iter().map(|s| s.to_string()).collect(),
            keys: Vec::new(),
            versions: TlsVersions::ALL,
            enabled,
            desc: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(
            normalise_host("WWW.Example.COM."),
            Ok("www.example.com".into())
        );
        assert_eq!(normalise_host("a_b.example"), Ok("a_b.example".into()));
        for bad in [
            "", ".", "a..b", "-a.b", "a-.b", "a b", "a/b", "*.a", "ä.com",
        ] {
            assert!(normalise_host(bad).is_err(), "{bad}");
        }
        assert!(normalise_host(&"a".repeat(64)).is_err());
        assert!(normalise_host(&["a"; 128].join(".")).is_err());
        assert!(normalise_host(&["a"; 127].join(".")).is_ok());
    }

    #[test]
    fn patterns() {
        assert_eq!(
            normalise_pattern("*.Example.com"),
            Ok("*.example.com".into())
        );
        assert_eq!(normalise_pattern("*"), Ok("*".into()));
        for bad in ["*example.com", "a.*.com", "*.*.com", "**", "*.", "www.*"] {
            let e = normalise_pattern(bad).unwrap_err();
            assert!(e.contains("not a host name"), "{bad}: {e}");
        }
    }

    #[test]
    fn exact_then_one_label_wildcard_then_any() {
        let t = SniTable::build(&[
            ssl("wild", &["*.example.com"], true),
            ssl("exact", &["www.example.com", "example.com"], true),
            ssl("deep", &["*.b.example.com"], true),
        ]);
        assert_eq!(entry_ids(&t, "www.example.com").as_deref(), Some("exact"));
        assert_eq!(entry_ids(&t, "example.com").as_deref(), Some("exact"));
        assert_eq!(entry_ids(&t, "api.example.com").as_deref(), Some("wild"));
        assert_eq!(entry_ids(&t, "x.b.example.com").as_deref(), Some("deep"));
        // One label only: a.b.c.example.com is neither *.example.com nor *.b.example.com.
        assert_eq!(entry_ids(&t, "a.c.example.com"), None);
        assert_eq!(entry_ids(&t, "example.org"), None);
        assert_eq!(entry_ids(&t, "com"), None);

        let with_any = SniTable::build(&[ssl("any", &["*"], true), ssl("e", &["a.test"], true)]);
        assert_eq!(entry_ids(&with_any, "a.test").as_deref(), Some("e"));
        assert_eq!(entry_ids(&with_any, "whatever").as_deref(), Some("any"));
    }

    #[test]
    fn disabled_objects_and_duplicates() {
        let t = SniTable::build(&[
            ssl("off", &["a.test"], false),
            ssl("first", &["b.test", "*"], true),
            ssl("second", &["b.test", "*"], true),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(entry_ids(&t, "a.test").as_deref(), Some("first"), "via *");
        assert_eq!(entry_ids(&t, "b.test").as_deref(), Some("first"));
        assert_eq!(entry_ids(&t, "zzz").as_deref(), Some("first"));
        assert!(!t.restricts_versions());
    }

    #[test]
    fn lookup_keys_are_normalised() {
        assert_eq!(lookup_key("A.Test."), "a.test");
        assert!(matches!(
            lookup_key("a.test"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
