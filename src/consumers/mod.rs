//! The consumer index: who a credential key belongs to, with its key material parsed once.
//!
//! Shared by every worker and updated in place by the control thread, one consumer at a time:
//! a credential change touches only that consumer's entries, never rebuilds the index (a PUT
//! costs the same with 10 or 1,000,000 consumers). The maps are sharded (`dashmap`), so a
//! writer locks one shard briefly and readers on other shards never wait.
//!
//! Entries are immutable `Arc`s: a change inserts a new `Arc`, so a request that already holds
//! the old one finishes with it, and per-core caches notice staleness by pointer identity
//! ([`ConsumerIndex::is_current`]).
//!
//! - [`Consumer`]: what the upstream headers and consumer plugins need of a consumer.
//! - [`Credential`]: one authentication credential, its consumer and its ready key.
//! - [`Scheme`]: which plugin's key space a credential lives in (`jwt-auth` and Kong's `jwt`
//!   keys are separate, as they are separate plugins in the peers).

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::{Map, Value};

use crate::jwt::VerifyKey;
use crate::plugins::{compile_map, Instance};

/// A consumer as the data plane sees it.
#[derive(Debug)]
pub struct Consumer {
    /// APISIX `username` (Kong `username`).
    pub username: Arc<str>,
    /// Kong's consumer id (`X-Consumer-ID`): the imported Kong id when there was one, else the
    /// username.
    pub id: Arc<str>,
    /// `labels.custom_id` (`X-Consumer-Custom-ID`).
    pub custom_id: Option<Arc<str>>,
    /// The username Kong's `jwt` sends upstream (`X-Consumer-Username`): an imported Kong
    /// username our usernames cannot spell (`labels.kong_username`), none for a Kong consumer
    /// that had only a `custom_id` (`labels.kong_no_username`), else the username.
    pub kong_username: Option<Arc<str>>,
    /// Consumer-level plugins (not the authentication ones), compiled; they replace the
    /// route's plugins of the same name once this consumer is authenticated.
    pub plugins: Vec<Instance>,
}

impl Consumer {
    /// A consumer from its validated Admin API object.
    pub fn from_model(c: &crate::model::Consumer) -> Consumer {
        let username: Arc<str> = c.username.as_str().into();
        Consumer {
            id: c
                .labels
                .get("kong_id")
                .map(|s| Arc::from(s.as_str()))
                .unwrap_or_else(|| username.clone()),
            kong_username: match c.labels.get("kong_username") {
                Some(u) => Some(Arc::from(u.as_str())),
                None if c.labels.contains_key("kong_no_username") => None,
                None => Some(username.clone()),
            },
            username,
            custom_id: c.labels.get("custom_id").map(|s| Arc::from(s.as_str())),
            plugins: compile_own(c),
        }
    }
}

/// A consumer's non-authentication plugins, compiled with the consumer as their scope.
fn compile_own(c: &crate::model::Consumer) -> Vec<Instance> {
    let own: Map<String, Value> = c
        .plugins
        .iter()
        .filter(|(name, _)| !crate::plugins::Registry::is_auth(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match compile_map(&own, &format!("/apisix/consumers/{}", c.username)) {
        Ok(p) => p,
        Err(e) => {
            // The consumer was validated with the same code; this cannot happen short of a bug.
            tracing::error!(consumer = %c.username, "consumer plugins do not compile: {e}");
            Vec::new()
        }
    }
}

/// The key spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// APISIX `jwt-auth`.
    JwtAuth,
    /// Kong `jwt`.
    KongJwt,
}

impl Scheme {
    /// The plugin name.
    pub fn plugin(self) -> &'static str {
        match self {
            Scheme::JwtAuth => "jwt-auth",
            Scheme::KongJwt => "jwt",
        }
    }
}

/// Verification material of a credential.
#[derive(Debug)]
pub enum Material {
    /// Ready to verify.
    Key(VerifyKey),
    /// Kong HMAC: the secret both ways. Boxed: two HMAC keys are twice the size of every
    /// other variant, and a million credentials would pay for it whatever their kind.
    KongHmac(Box<KongHmac>),
    /// Cannot be used (an unresolvable secret reference); every token for it is refused.
    /// `alg` is the credential's algorithm, which Kong still checks first.
    Unusable { alg: crate::jwt::Alg, why: String },
}

/// A Kong HMAC secret as is, and base64url-decoded for routes with `secret_is_base64`.
#[derive(Debug)]
pub struct KongHmac {
    /// Secret bytes as written.
    pub plain: VerifyKey,
    /// Secret decoded as base64url (`None` when it does not decode).
    pub decoded: Option<VerifyKey>,
}

/// One credential.
#[derive(Debug)]
pub struct Credential {
    /// Its consumer.
    pub consumer: Arc<Consumer>,
    /// The APISIX credential id; `None` for a key configured inline on the consumer.
    pub id: Option<Arc<str>>,
    /// The lookup key (`key` of the credential).
    pub key: Arc<str>,
    /// Key material, parsed when the credential was written.
    pub material: Material,
    /// `lifetime_grace_period` (APISIX), seconds.
    pub grace: i64,
}

/// Keys come from tokens, so from clients: the hash is keyed per process (aHash's random
/// state resists collision flooding) and, unlike std's SipHash, costs a few nanoseconds.
type Hasher = ahash::RandomState;

/// A consumer in the index, with the credential keys it owns, so a change replaces exactly
/// those (kept here rather than in a map of their own: one entry per consumer either way).
struct Owner {
    consumer: Arc<Consumer>,
    keys: Box<[(Scheme, Arc<str>)]>,
}

/// The shared index.
#[derive(Default)]
pub struct ConsumerIndex {
    consumers: DashMap<Arc<str>, Owner, Hasher>,
    /// Consumers by Kong id (only those whose id differs from their username).
    by_id: DashMap<Arc<str>, Arc<Consumer>, Hasher>,
    jwt_auth: DashMap<Arc<str>, Arc<Credential>, Hasher>,
    kong_jwt: DashMap<Arc<str>, Arc<Credential>, Hasher>,
}

impl ConsumerIndex {
    /// An empty index.
    pub fn new() -> ConsumerIndex {
        ConsumerIndex::default()
    }

    fn map(&self, scheme: Scheme) -> &DashMap<Arc<str>, Arc<Credential>, Hasher> {
        match scheme {
            Scheme::JwtAuth => &self.jwt_auth,
            Scheme::KongJwt => &self.kong_jwt,
        }
    }

    /// The credential with `key` in `scheme`'s key space.
    #[inline]
    pub fn credential(&self, scheme: Scheme, key: &str) -> Option<Arc<Credential>> {
        self.map(scheme).get(key).map(|e| e.value().clone())
    }

    /// Whether `cred` is still the credential stored under its key (caches use this).
    #[inline]
    pub fn is_current(&self, scheme: Scheme, cred: &Arc<Credential>) -> bool {
        self.map(scheme)
            .get(&*cred.key)
            .is_some_and(|e| Arc::ptr_eq(e.value(), cred))
    }

    /// The consumer named `username` (anonymous consumers are found this way). Kong's
    /// `anonymous` may also name a consumer by id.
    pub fn consumer(&self, username: &str) -> Option<Arc<Consumer>> {
        if let Some(c) = self.consumers.get(username) {
            return Some(c.consumer.clone());
        }
        self.by_id.get(username).map(|e| e.value().clone())
    }

    /// Replaces everything known about consumer `username`: `consumer` (`None` removes it) and
    /// its credentials. The keys it had are removed first unless reused. Safe to call from
    /// several threads at once for different consumers (the store is loaded that way).
    pub fn replace(
        &self,
        username: &str,
        consumer: Option<Arc<Consumer>>,
        new: Vec<(Scheme, Arc<Credential>)>,
    ) {
        let prev = self.consumers.remove(username).map(|(_, o)| o);
        if let Some(prev) = &prev {
            for (scheme, key) in prev.keys.iter() {
                if !new.iter().any(|(s, c)| s == scheme && c.key == *key) {
                    // Only remove an entry this consumer owns (never another consumer's).
                    self.map(*scheme)
                        .remove_if(&**key, |_, c| &*c.consumer.username == username);
                }
            }
            self.by_id
                .remove_if(&*prev.consumer.id, |_, c| &*c.username == username);
        }
        let keys: Box<[(Scheme, Arc<str>)]> =
            new.iter().map(|(s, c)| (*s, c.key.clone())).collect();
        for (scheme, cred) in new {
            self.map(scheme).insert(cred.key.clone(), cred);
        }
        if let Some(c) = consumer {
            if c.id != c.username {
                self.by_id.insert(c.id.clone(), c.clone());
            }
            self.consumers
                .insert(c.username.clone(), Owner { consumer: c, keys });
        }
    }

    /// Number of credentials in `scheme`.
    pub fn len(&self, scheme: Scheme) -> usize {
        self.map(scheme).len()
    }

    /// Whether there are no consumers at all.
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(username: &str, id: &str) -> Arc<Consumer> {
        Arc::new(Consumer {
            username: username.into(),
            id: id.into(),
            custom_id: None,
            kong_username: Some(username.into()),
            plugins: Vec::new(),
        })
    }

    #[test]
    fn consumers_are_found_by_username_or_kong_id_in_constant_time() {
        let idx = ConsumerIndex::new();
        idx.replace("anon", Some(consumer("anon", "8c2f-uuid")), Vec::new());
        idx.replace("plain", Some(consumer("plain", "plain")), Vec::new());
        assert_eq!(&*idx.consumer("anon").unwrap().username, "anon");
        assert_eq!(&*idx.consumer("8c2f-uuid").unwrap().username, "anon");
        assert_eq!(&*idx.consumer("plain").unwrap().username, "plain");
        // A new id replaces the old one; deletion removes both names.
        idx.replace("anon", Some(consumer("anon", "new-uuid")), Vec::new());
        assert!(idx.consumer("8c2f-uuid").is_none());
        assert!(idx.consumer("new-uuid").is_some());
        idx.replace("anon", None, Vec::new());
        assert!(idx.consumer("anon").is_none());
        assert!(idx.consumer("new-uuid").is_none());
    }
}
