//! The control plane's state: the store, an in-memory mirror of it, and publication of the
//! compiled snapshot to the workers.
//!
//! A write is checked against the rest of the configuration *before* it is stored, then written
//! durably, then put in force; a refused change is rolled back from the mirror, so an answered
//! 2xx is both on disk and in force, and a refused change leaves nothing behind.
//!
//! What "checked and put in force" costs depends on what changed:
//! - routes, services, upstreams, global rules, ssls: the routing objects and the SNI table are
//!   rebuilt and the snapshot recompiled and published (workers pick it up on their next
//!   request, or TLS handshake);
//! - a consumer or a credential: only that consumer's entries in the shared consumer index are
//!   replaced (key uniqueness checked first), so the cost does not grow with the number of
//!   consumers;
//! - secret managers: stored.
//!
//! Secret fields are encrypted in the stored bytes only ([`AtRest`]); the mirror holds plaintext.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::consumers::{Consumer as ConsumerView, ConsumerIndex, Credential, Scheme};
use crate::model::{ConfigSet, Consumer, PluginCheck, Route, Service, Ssl, Upstream};
use crate::plugins::credentials;
use crate::proxy::Shared;
use crate::secrets::{Resolver, Vault};
use crate::snapshot::{compile, Snapshot};
use crate::store::{Op, Store, StoreError};

use super::at_rest::{envelope, AtRest, ENCRYPTED};
use super::kind::Kind;

/// One stored object with its etcd-style indices.
///
/// The object is kept as compact JSON text and parsed when asked for: a parsed
/// `serde_json::Value` costs a B-tree node (about 630 bytes) per object and per nested object,
/// three or four per credential, which at a million consumers was most of the control plane's
/// memory. Reads of whole objects are Admin API reads and rebuilds, never the request path.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The object as the Admin API returns it, as compact JSON text.
    text: Box<str>,
    /// Store revision that created it.
    pub created: u64,
    /// Store revision that last changed it.
    pub modified: u64,
}

impl Entry {
    /// An entry holding `value`.
    pub fn new(value: &Value, created: u64, modified: u64) -> Entry {
        Entry {
            text: value.to_string().into_boxed_str(),
            created,
            modified,
        }
    }

    /// The object as the Admin API returns it.
    pub fn value(&self) -> Value {
        // The text is serde_json's own output, so it always parses.
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The bytes stored at `key`, with the secret fields sealed, and the value as stored.
    fn to_stored(&self, key: &str, at_rest: &AtRest) -> Result<(Vec<u8>, Value), String> {
        let (value, encrypted) = at_rest.seal(key, &self.value())?;
        let bytes = envelope(value.clone(), self.created, self.modified, encrypted)
            .to_string()
            .into_bytes();
        Ok((bytes, value))
    }

    /// The entry stored at `key`, its sealed fields opened, and whether it holds secret fields
    /// in plaintext that its next write will seal (stored before encryption was enabled).
    fn from_stored(key: &str, bytes: &[u8], at_rest: &AtRest) -> Result<(Entry, bool), String> {
        let mut v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("{key}: not JSON: {e}"))?;
        let idx = |f: &str| v.get(f).and_then(Value::as_u64);
        let (Some(created), Some(modified)) = (idx("createdIndex"), idx("modifiedIndex")) else {
            return Err(format!("{key}: not a stored object"));
        };
        let encrypted: Vec<String> = match v.get(ENCRYPTED) {
            None => Vec::new(),
            Some(list) => serde_json::from_value(list.clone())
                .map_err(|_| format!("{key}: `{ENCRYPTED}` is not a list of field pointers"))?,
        };
        let Some(mut value) = v.get_mut("value").map(Value::take) else {
            return Err(format!("{key}: not a stored object"));
        };
        at_rest.open(key, &mut value, &encrypted)?;
        let plaintext_secrets = encrypted.is_empty() && at_rest.would_seal(key, &value);
        Ok((Entry::new(&value, created, modified), plaintext_secrets))
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The change is invalid in the context of the whole configuration (400).
    #[error("{0}")]
    Invalid(String),
    /// The store failed (503).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What a key holds, for routing a change to the right rebuild.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    /// Routes, services, upstreams, global rules, plugin configs, ssls: the snapshot is
    /// recompiled.
    Routing,
    /// A consumer or one of its credentials: that consumer's index entries are replaced.
    Consumer,
    /// Secret managers and anything else: stored only.
    Other,
}

fn area(key: &str) -> Area {
    const ROUTING: [&str; 6] = [
        "/apisix/routes/",
        "/apisix/services/",
        "/apisix/upstreams/",
        "/apisix/global_rules/",
        "/apisix/plugin_configs/",
        "/apisix/ssls/",
    ];
    if ROUTING.iter().any(|p| key.starts_with(p)) {
        Area::Routing
    } else if key.starts_with("/apisix/consumers/") {
        Area::Consumer
    } else {
        Area::Other
    }
}

/// The consumer a consumer or credential key belongs to.
fn username_of(key: &str) -> &str {
    key.trim_start_matches("/apisix/consumers/")
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The control plane.
pub struct Control {
    store: Box<dyn Store>,
    shared: Arc<Shared>,
    plugins: Box<dyn PluginCheck + Send>,
    /// How secret fields are sealed in the store.
    at_rest: AtRest,
    objects: BTreeMap<String, Entry>,
    index: Arc<ConsumerIndex>,
    /// The index keys each consumer owns, so a change replaces exactly those.
    owned: HashMap<String, Vec<(Scheme, Arc<str>)>>,
    /// Resolves `$env://` and `$secret://` references in credentials.
    resolver: Resolver,
    /// Consumers whose credentials hold references (re-resolved on refresh).
    with_refs: HashSet<String>,
}

impl Control {
    /// Loads every object from `store` (opening its encrypted fields with `at_rest`), checks
    /// the whole set, compiles it and publishes it to `shared`. A stored object that no longer
    /// validates, or whose encrypted fields no keyring key opens, is an error naming its key:
    /// the gateway refuses to start rather than serve a configuration with a piece missing.
    pub fn open(
        store: Box<dyn Store>,
        shared: Arc<Shared>,
        plugins: Box<dyn PluginCheck + Send>,
        at_rest: AtRest,
    ) -> Result<Control, String> {
        let mut objects = BTreeMap::new();
        let mut plaintext = 0;
        for (key, bytes) in store.list("/apisix/").map_err(|e| e.to_string())? {
            let (entry, plaintext_secrets) = Entry::from_stored(&key, &bytes, &at_rest)?;
            plaintext += usize::from(plaintext_secrets);
            objects.insert(key, entry);
        }
        if plaintext > 0 {
            tracing::info!(
                objects = plaintext,
                "stored objects hold secret fields in plaintext (written before data encryption \
                 was enabled); each is encrypted at its next write"
            );
        }
        let index = Arc::new(ConsumerIndex::new());
        let mut ctl = Control {
            store,
            shared,
            plugins,
            at_rest,
            objects,
            index,
            owned: HashMap::new(),
            resolver: Resolver::new(),
            with_refs: HashSet::new(),
        };
        ctl.load_vaults();
        let snapshot = ctl
            .build()
            .map_err(|e| format!("the stored configuration is invalid: {e}"))?;
        let usernames: Vec<String> = ctl
            .list(Kind::Consumers, None)
            .into_iter()
            .map(|(k, _)| username_of(k).to_string())
            .collect();
        for name in usernames {
            let (consumer, creds) = ctl
                .consumer_entries(&name)
                .map_err(|e| format!("the stored configuration is invalid: {e}"))?;
            ctl.install(&name, consumer, creds);
        }
        ctl.shared.publish(snapshot);
        Ok(ctl)
    }

    /// The plugin registry objects are checked with.
    pub fn plugins(&self) -> &dyn PluginCheck {
        self.plugins.as_ref()
    }

    /// The shared consumer index.
    pub fn index(&self) -> &Arc<ConsumerIndex> {
        &self.index
    }

    /// The object at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.objects.get(key)
    }

    /// Objects of `kind` (of consumer `parent`, for credentials), in key order.
    pub fn list(&self, kind: Kind, parent: Option<&str>) -> Vec<(&String, &Entry)> {
        let prefix = kind.prefix(parent);
        self.objects
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| kind.owns(k, parent))
            .collect()
    }

    /// A fresh id for a POST-created object, zero-padded like APISIX's.
    pub fn next_id(&self) -> Result<String, ControlError> {
        Ok(format!("{:020}", self.store.next_id()?))
    }

    /// Stores `value` at `key` (creating or replacing), keeping `create_time` of a replaced
    /// object. Returns the value as stored (secret fields encrypted, which is what APISIX's
    /// Admin API answers a write with) and whether it was created.
    pub fn put(&mut self, key: &str, mut value: Value) -> Result<(Value, bool), ControlError> {
        let now = unix_now();
        let prev = self.objects.get(key).cloned();
        let created = prev.is_none();
        if let Some(obj) = value.as_object_mut() {
            let create_time = prev
                .as_ref()
                .and_then(|p| p.value().get("create_time").cloned())
                .unwrap_or(json!(now));
            obj.insert("create_time".into(), create_time);
            obj.insert("update_time".into(), json!(now));
        }
        let rev = self.store.revision()? + 1;
        let entry = Entry::new(&value, prev.as_ref().map_or(rev, |p| p.created), rev);
        let (bytes, stored) = entry.to_stored(key, &self.at_rest).map_err(|e| {
            ControlError::Store(StoreError::Io(format!("cannot store the object: {e}")))
        })?;
        let op = Op::Put {
            key: key.to_string(),
            value: bytes,
        };
        self.objects.insert(key.to_string(), entry);
        self.commit(key, prev, op)?;
        Ok((stored, created))
    }

    /// Deletes the object at `key`; `false` when there was none.
    pub fn delete(&mut self, key: &str) -> Result<bool, ControlError> {
        let Some(prev) = self.objects.remove(key) else {
            return Ok(false);
        };
        self.commit(key, Some(prev), Op::Delete { key: key.into() })?;
        Ok(true)
    }

    /// `self.objects` already holds the change to `key` (`prev` is what it replaced). Checks
    /// it against the rest of the configuration, stores it durably, then puts it in force; on
    /// any failure the change is rolled back and nothing is left half-applied.
    fn commit(&mut self, key: &str, prev: Option<Entry>, op: Op) -> Result<(), ControlError> {
        let applied = match area(key) {
            Area::Routing => self
                .build()
                .map_err(ControlError::Invalid)
                .and_then(|snapshot| {
                    self.store.apply(std::slice::from_ref(&op))?;
                    self.shared.publish(snapshot);
                    Ok(())
                }),
            Area::Consumer => {
                let name = username_of(key).to_string();
                self.consumer_entries(&name)
                    .map_err(ControlError::Invalid)
                    .and_then(|(consumer, creds)| {
                        self.check_unique(&name, &creds)?;
                        self.store.apply(std::slice::from_ref(&op))?;
                        self.install(&name, consumer, creds);
                        Ok(())
                    })
            }
            Area::Other => self
                .store
                .apply(std::slice::from_ref(&op))
                .map(drop)
                .map_err(Into::into),
        };
        if applied.is_ok() && key.starts_with("/apisix/secrets/") {
            // Credentials that reference this secret manager are resolved again.
            self.load_vaults();
            self.refresh();
        }
        if applied.is_err() {
            match prev {
                Some(p) => {
                    self.objects.insert(key.to_string(), p);
                }
                None => {
                    self.objects.remove(key);
                }
            }
        }
        applied
    }

    /// Re-reads every secret referenced by a credential (dropping cached Vault answers) and
    /// reinstalls the credentials of the consumers concerned. Run periodically and after a
    /// secret manager changes.
    pub fn refresh(&mut self) {
        self.resolver.expire();
        let names: Vec<String> = self.with_refs.iter().cloned().collect();
        for name in names {
            match self.consumer_entries(&name) {
                Ok((consumer, creds)) => self.install(&name, consumer, creds),
                Err(e) => tracing::error!(consumer = %name, "cannot refresh secrets: {e}"),
            }
        }
    }

    fn load_vaults(&mut self) {
        let vaults = self
            .list(Kind::Secrets, None)
            .into_iter()
            .filter_map(|(k, e)| {
                let id = k.rsplit('/').next().unwrap_or_default().to_string();
                Vault::from_json(&e.value()).map(|v| (id, v))
            })
            .collect();
        self.resolver.set_vaults(vaults);
    }

    /// Replaces, in `value` (an object to be stored at `key`), each secret field that holds a
    /// value this node sealed for that very field of that very object (what a write answered
    /// with) by its plaintext, so a client may send back an ssl object as it got it, encrypted
    /// `key` included, as APISIX allows. Any other value is left for validation to judge.
    pub fn unseal_echoed(&self, key: &str, value: &mut Value) {
        for pointer in super::at_rest::secret_fields(key, value) {
            let Some(field) = value.pointer_mut(&pointer) else {
                continue;
            };
            let Some(text) = field.as_str().filter(|s| !s.starts_with("-----")) else {
                continue;
            };
            if let Ok(plain) = self.at_rest.open_one(key, &pointer, text) {
                *field = Value::String(plain);
            }
        }
    }

    /// Resolves a secret reference the way credentials are resolved.
    pub fn resolve(&self, reference: &str) -> Result<String, String> {
        self.resolver.resolve(reference)
    }

    /// The compiled snapshot of the configuration as it is now (what was last published).
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        self.build()
    }

    /// Rebuilds the routing part of the configuration and compiles the snapshot.
    fn build(&self) -> Result<Snapshot, String> {
        build(&self.objects, self.plugins.as_ref(), self.index.clone())
    }

    /// Consumer `name`'s index entries from the objects as they are now (`None` consumer when
    /// it was deleted).
    #[allow(clippy::type_complexity)]
    fn consumer_entries(
        &mut self,
        name: &str,
    ) -> Result<(Option<Arc<ConsumerView>>, Vec<(Scheme, Arc<Credential>)>), String> {
        let key = Kind::Consumers.key(None, name);
        let Some(entry) = self.objects.get(&key) else {
            return Ok((None, Vec::new()));
        };
        let consumer = Consumer::from_json(&entry.value(), Some(name), self.plugins.as_ref())
            .map_err(|e| format!("{key}: {e}"))?;
        let creds = self.list(Kind::Credentials, Some(name));
        let plugin_maps: Vec<(String, Map<String, Value>)> = creds
            .iter()
            .map(|(k, e)| {
                let id = k.rsplit('/').next().unwrap_or_default().to_string();
                let plugins = e
                    .value()
                    .get("plugins")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                (id, plugins)
            })
            .collect();
        let refs: Vec<(&str, &Map<String, Value>)> =
            plugin_maps.iter().map(|(i, p)| (i.as_str(), p)).collect();
        let has_refs = std::iter::once(&consumer.plugins)
            .chain(refs.iter().map(|(_, p)| *p))
            .any(|p| p.values().any(holds_reference));
        let resolve = |r: &str| self.resolver.resolve(r);
        let (view, entries) = credentials::entries(&consumer, &refs, &resolve);
        if has_refs {
            self.with_refs.insert(name.to_string());
        } else {
            self.with_refs.remove(name);
        }
        Ok((Some(view), entries))
    }

    /// Refuses a key another consumer (or another credential of this one) already uses;
    /// APISIX lets the last one loaded win, which silently re-routes tokens.
    fn check_unique(
        &self,
        name: &str,
        creds: &[(Scheme, Arc<Credential>)],
    ) -> Result<(), ControlError> {
        for (i, (scheme, cred)) in creds.iter().enumerate() {
            let dup_here = creds[..i]
                .iter()
                .any(|(s, c)| s == scheme && c.key == cred.key);
            let other = self
                .index
                .credential(*scheme, &cred.key)
                .filter(|c| &*c.consumer.username != name);
            let holder = if dup_here {
                Some((cred.id.clone(), name.to_string()))
            } else {
                other.map(|c| (c.id.clone(), c.consumer.username.to_string()))
            };
            if let Some((id, consumer)) = holder {
                let plugin = scheme.plugin();
                return Err(ControlError::Invalid(match id {
                    Some(id) => format!(
                        "duplicate key of plugin {plugin} found with credential: {id} of consumer: {consumer}"
                    ),
                    None => format!("duplicate key of plugin {plugin} found with consumer: {consumer}"),
                }));
            }
        }
        Ok(())
    }

    fn install(
        &mut self,
        name: &str,
        consumer: Option<Arc<ConsumerView>>,
        creds: Vec<(Scheme, Arc<Credential>)>,
    ) {
        let keys: Vec<(Scheme, Arc<str>)> =
            creds.iter().map(|(s, c)| (*s, c.key.clone())).collect();
        let old = self.owned.remove(name).unwrap_or_default();
        self.index.replace(name, consumer.clone(), &old, creds);
        if consumer.is_some() {
            self.owned.insert(name.to_string(), keys);
        }
    }
}

/// Whether a plugin configuration holds a `$env://` or `$secret://` reference.
fn holds_reference(conf: &Value) -> bool {
    conf.as_object().is_some_and(|m| {
        m.values()
            .filter_map(Value::as_str)
            .any(crate::plugins::jwt_auth::is_reference)
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Rebuilds the routing objects (routes, services, upstreams, global rules) and compiles the
/// snapshot; consumers are not looked at (they live in the index).
pub fn build(
    objects: &BTreeMap<String, Entry>,
    plugins: &dyn PluginCheck,
    consumers: Arc<ConsumerIndex>,
) -> Result<Snapshot, String> {
    let mut set = ConfigSet::default();
    let mut errs = Vec::new();
    let id_of = |key: &str| key.rsplit('/').next().unwrap_or_default().to_string();
    let section = |prefix: &'static str| {
        objects
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    };
    for (key, e) in section("/apisix/routes/") {
        match Route::from_json(&e.value(), Some(&id_of(key)), plugins) {
            Ok(r) => set.routes.push(r),
            Err(err) => errs.push(format!("{key}: {err}")),
        }
    }
    for (key, e) in section("/apisix/services/") {
        match Service::from_json(&e.value(), Some(&id_of(key)), plugins) {
            Ok(s) => set.services.push(s),
            Err(err) => errs.push(format!("{key}: {err}")),
        }
    }
    for (key, e) in section("/apisix/upstreams/") {
        match Upstream::from_json(&e.value(), Some(&id_of(key))) {
            Ok(u) => set.upstreams.push(u),
            Err(err) => errs.push(format!("{key}: {err}")),
        }
    }
    for (key, e) in section("/apisix/ssls/") {
        match Ssl::from_json(&e.value(), Some(&id_of(key))) {
            Ok(s) => set.ssls.push(s),
            Err(err) => errs.push(format!("{key}: {err}")),
        }
    }
    for (key, e) in section("/apisix/global_rules/") {
        if let Some(p) = e.value().get("plugins").and_then(Value::as_object) {
            set.global_rules.push((id_of(key), p.clone()));
        }
    }
    if !errs.is_empty() {
        return Err(errs.join("; "));
    }
    compile(&set, consumers).map_err(|e| e.to_string())
}
