//! Each worker's cache of tokens it verified with an asymmetric algorithm (RS*, PS*, ES*,
//! EdDSA), so a client that reuses its token costs one hash lookup instead of a public-key
//! verification (tens of microseconds for RSA-2048).
//!
//! - Keyed by the whole token; only tokens that passed every check are inserted, so a token
//!   refused once is never accepted from the cache.
//! - A hit is used only while its credential is still the one in the shared index (pointer
//!   identity: a credential change or deletion invalidates every cached token at once, on
//!   every core) and only for the same key claim; the claims (`exp`, `nbf`) are checked again
//!   on every hit, so an entry stops working at the token's `exp` and is then dropped.
//! - Bounded: at capacity, expired entries are purged, then an eighth of the entries is
//!   evicted. Per core, so no lock and no cross-core traffic.
//! - HMAC tokens are not cached: verifying them costs about as much as the lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::consumers::{Credential, Scheme};
use crate::jwt::{ClaimValue, Times};

/// One verified token.
pub struct Hit {
    /// Which plugin verified it.
    pub scheme: Scheme,
    /// The key claim name it was looked up by.
    pub claim: Box<str>,
    /// Its credential at the time.
    pub cred: Arc<Credential>,
    /// Its `exp` and `nbf`, for the per-request checks.
    pub times: Times,
}

/// A worker's verified-token cache.
pub struct TokenCache {
    cap: usize,
    map: RefCell<HashMap<Box<str>, Hit>>,
}

impl TokenCache {
    /// A cache of at most `cap` entries (`0` disables it).
    pub fn new(cap: usize) -> TokenCache {
        TokenCache {
            cap,
            map: RefCell::new(HashMap::new()),
        }
    }

    /// The cached verification of `token`, if any: `(credential, payload)`.
    pub fn get(
        &self,
        token: &str,
        scheme: Scheme,
        claim: &str,
    ) -> Option<(Arc<Credential>, Times)> {
        if self.cap == 0 {
            return None;
        }
        let map = self.map.borrow();
        let hit = map.get(token)?;
        (hit.scheme == scheme && &*hit.claim == claim)
            .then(|| (hit.cred.clone(), hit.times.clone()))
    }

    /// Drops `token`'s entry (its credential changed, or its claims no longer pass).
    pub fn remove(&self, token: &str) {
        self.map.borrow_mut().remove(token);
    }

    /// Caches a token that passed every check.
    pub fn insert(
        &self,
        token: &str,
        scheme: Scheme,
        claim: &str,
        cred: Arc<Credential>,
        times: Times,
        now: i64,
    ) {
        if self.cap == 0 {
            return;
        }
        let mut map = self.map.borrow_mut();
        if map.len() >= self.cap {
            map.retain(|_, h| !matches!(h.times.exp, ClaimValue::Number(e) if e <= now as f64));
            if map.len() >= self.cap {
                let drop: Vec<Box<str>> = map.keys().take(self.cap.div_ceil(8)).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            token.into(),
            Hit {
                scheme,
                claim: claim.into(),
                cred,
                times,
            },
        );
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumers::{Consumer, Material};

    fn cred() -> Arc<Credential> {
        Arc::new(Credential {
            consumer: Arc::new(Consumer {
                username: "u".into(),
                id: "u".into(),
                custom_id: None,
                kong_username: Some("u".into()),
                plugins: Vec::new(),
            }),
            id: None,
            key: "k".into(),
            material: Material::Unusable {
                alg: crate::jwt::Alg::HS256,
                why: "test".into(),
            },
            grace: 0,
        })
    }

    #[test]
    fn bounded_and_scoped() {
        let c = TokenCache::new(16);
        for i in 0..100 {
            c.insert(
                &format!("t{i}"),
                Scheme::JwtAuth,
                "key",
                cred(),
                Times::of(&serde_json::json!({"exp": 1000})),
                0,
            );
            assert!(c.len() <= 16);
        }
        assert!(c.get("t99", Scheme::JwtAuth, "key").is_some());
        assert!(
            c.get("t99", Scheme::KongJwt, "key").is_none(),
            "another plugin's entry"
        );
        assert!(
            c.get("t99", Scheme::JwtAuth, "iss").is_none(),
            "another key claim"
        );
        // Expired entries are purged first when full.
        let c = TokenCache::new(4);
        for i in 0..4 {
            c.insert(
                &format!("old{i}"),
                Scheme::JwtAuth,
                "key",
                cred(),
                Times::of(&serde_json::json!({"exp": 10})),
                0,
            );
        }
        c.insert(
            "new",
            Scheme::JwtAuth,
            "key",
            cred(),
            Times::of(&serde_json::json!({"exp": 1000})),
            100,
        );
        assert_eq!(c.len(), 1);
        let off = TokenCache::new(0);
        off.insert(
            "t",
            Scheme::JwtAuth,
            "key",
            cred(),
            Times::of(&serde_json::json!({})),
            0,
        );
        assert!(off.get("t", Scheme::JwtAuth, "key").is_none());
    }
}
