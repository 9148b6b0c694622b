//! The control plane's state: the store, an in-memory mirror of its routing objects, and
//! publication of the compiled snapshot to the workers.
//!
//! A write is checked against the rest of the configuration *before* it is stored, then written
//! durably, then put in force; a refused change is rolled back from the mirror, so an answered
//! 2xx is both on disk and in force, and a refused change leaves nothing behind.
//!
//! Consumers and credentials are not mirrored: the consumer index holds what the data plane
//! needs of them, parsed, and everything else reads them from the store (see [`mirrored`]).
//! Start-up loads them on every core at once ([`load`]).
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
//! Secret fields are encrypted in the stored bytes only ([`AtRest`]); the mirror holds
//! plaintext, and objects read from the store are opened as they are read.

use std::collections::{BTreeMap, HashSet};
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

mod load;
#[cfg(test)]
mod tests;

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

    /// The entry stored at `key`, its sealed fields opened, and whether it holds secret fields
    /// in plaintext that its next write will seal (stored before encryption was enabled).
    fn from_stored(key: &str, bytes: &[u8], at_rest: &AtRest) -> Result<(Entry, bool), String> {
        let s = Stored::decode(key, bytes, at_rest)?;
        Ok((
            Entry::new(&s.value, s.created, s.modified),
            s.plaintext_secrets,
        ))
    }
}

/// One stored object, decoded.
struct Stored {
    /// The object, its sealed fields opened.
    value: Value,
    created: u64,
    modified: u64,
    /// It holds secret fields in plaintext (stored before encryption was enabled).
    plaintext_secrets: bool,
}

impl Stored {
    /// Decodes the bytes stored at `key` and opens their sealed fields.
    fn decode(key: &str, bytes: &[u8], at_rest: &AtRest) -> Result<Stored, String> {
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
        Ok(Stored {
            value,
            created,
            modified,
            plaintext_secrets,
        })
    }

    /// The bytes to store at `key` for `value`, with the secret fields sealed, and the value
    /// as stored.
    fn encode(
        key: &str,
        value: &Value,
        created: u64,
        modified: u64,
        at_rest: &AtRest,
    ) -> Result<(Vec<u8>, Value), String> {
        let (sealed, encrypted) = at_rest.seal(key, value)?;
        let bytes = envelope(sealed.clone(), created, modified, encrypted)
            .to_string()
            .into_bytes();
        Ok((bytes, sealed))
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

/// Consumer and credential keys: `CONSUMERS..CONSUMERS_END`.
const CONSUMERS: &str = "/apisix/consumers/";
const CONSUMERS_END: &str = "/apisix/consumers0";

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
    } else if key.starts_with(CONSUMERS) {
        Area::Consumer
    } else {
        Area::Other
    }
}

/// Whether the object at `key` is kept in memory. Consumers and credentials are not: the
/// index holds what the data plane needs of them, parsed, and the Admin API reads them from
/// the store (as APISIX reads etcd), so a million consumers cost their index entries only.
fn mirrored(key: &str) -> bool {
    area(key) != Area::Consumer
}

/// The first key after every key starting with `prefix` (which ends with `/`).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.pop();
    end.push('0');
    end
}

/// The consumer a consumer or credential key belongs to.
fn username_of(key: &str) -> &str {
    key.trim_start_matches(CONSUMERS)
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The last segment of a key: an object's id.
fn id_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or_default()
}

/// What the data plane gets of one consumer: its view, its credentials, and whether any of
/// them holds a secret reference (re-resolved on refresh).
type Installable = (
    Option<Arc<ConsumerView>>,
    Vec<(Scheme, Arc<Credential>)>,
    bool,
);

/// Consumer `name`'s index entries from its object and its credentials' `(id, object)`.
fn index_entries(
    name: &str,
    consumer: &Value,
    creds: &[(String, Value)],
    plugins: &dyn PluginCheck,
    resolver: &Resolver,
) -> Result<Installable, String> {
    let consumer = Consumer::from_json(consumer, Some(name), plugins).map_err(|e| e.to_string())?;
    let empty = Map::new();
    let refs: Vec<(&str, &Map<String, Value>)> = creds
        .iter()
        .map(|(id, v)| {
            let plugins = v.get("plugins").and_then(Value::as_object);
            (id.as_str(), plugins.unwrap_or(&empty))
        })
        .collect();
    let has_refs = std::iter::once(&consumer.plugins)
        .chain(refs.iter().map(|(_, p)| *p))
        .any(|p| p.values().any(holds_reference));
    let resolve = |r: &str| resolver.resolve(r);
    let (view, entries) = credentials::entries(&consumer, &refs, &resolve);
    Ok((Some(view), entries, has_refs))
}

/// The control plane.
pub struct Control {
    store: Box<dyn Store>,
    shared: Arc<Shared>,
    plugins: Box<dyn PluginCheck + Send + Sync>,
    /// How secret fields are sealed in the store.
    at_rest: AtRest,
    /// Every stored object but consumers and credentials (see [`mirrored`]).
    objects: BTreeMap<String, Entry>,
    index: Arc<ConsumerIndex>,
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
        plugins: Box<dyn PluginCheck + Send + Sync>,
        at_rest: AtRest,
    ) -> Result<Control, String> {
        let mut objects = BTreeMap::new();
        let mut plaintext = 0;
        let mut failed = None;
        for (from, to) in [("/apisix/", CONSUMERS), (CONSUMERS_END, "/apisix0")] {
            store
                .scan(
                    from,
                    to,
                    &mut |key, bytes| match Entry::from_stored(key, bytes, &at_rest) {
                        Ok((entry, plaintext_secrets)) => {
                            plaintext += usize::from(plaintext_secrets);
                            objects.insert(key.to_string(), entry);
                            true
                        }
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    },
                )
                .map_err(|e| e.to_string())?;
            if let Some(e) = failed.take() {
                return Err(e);
            }
        }
        let index = Arc::new(ConsumerIndex::new());
        let mut ctl = Control {
            store,
            shared,
            plugins,
            at_rest,
            objects,
            index,
            resolver: Resolver::new(),
            with_refs: HashSet::new(),
        };
        ctl.load_vaults();
        let snapshot = ctl
            .build()
            .map_err(|e| format!("the stored configuration is invalid: {e}"))?;
        let loaded = load::consumers(&load::Parts {
            store: ctl.store.as_ref(),
            plugins: ctl.plugins.as_ref(),
            at_rest: &ctl.at_rest,
            resolver: &ctl.resolver,
            index: &ctl.index,
        })?;
        plaintext += loaded.plaintext;
        ctl.with_refs = loaded.with_refs;
        if plaintext > 0 {
            tracing::info!(
                objects = plaintext,
                "stored objects hold secret fields in plaintext (written before data encryption \
                 was enabled); each is encrypted at its next write"
            );
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
    pub fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        if mirrored(key) {
            return Ok(self.objects.get(key).cloned());
        }
        match self.store.get(key)? {
            None => Ok(None),
            Some(bytes) => Entry::from_stored(key, &bytes, &self.at_rest)
                .map(|(e, _)| Some(e))
                .map_err(unreadable),
        }
    }

    /// Objects of `kind` (of consumer `parent`, for credentials), in key order: how many
    /// there are, and those in `window` (`(skip, take)`; all when `None`).
    pub fn list(
        &self,
        kind: Kind,
        parent: Option<&str>,
        window: Option<(usize, usize)>,
    ) -> Result<(usize, Vec<(String, Entry)>), ControlError> {
        let prefix = kind.prefix(parent);
        let (skip, take) = window.unwrap_or((0, usize::MAX));
        let wanted = |i: usize| i >= skip && i - skip < take;
        let mut total = 0;
        let mut out = Vec::new();
        if mirrored(&prefix) {
            let objects = self
                .objects
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(k, _)| kind.owns(k, parent));
            for (k, e) in objects {
                if wanted(total) {
                    out.push((k.clone(), e.clone()));
                }
                total += 1;
            }
            return Ok((total, out));
        }
        let mut failed = None;
        self.store
            .scan(&prefix, &prefix_end(&prefix), &mut |k, bytes| {
                if !kind.owns(k, parent) {
                    return true;
                }
                if wanted(total) {
                    match Entry::from_stored(k, bytes, &self.at_rest) {
                        Ok((e, _)) => out.push((k.to_string(), e)),
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    }
                }
                total += 1;
                true
            })?;
        match failed {
            Some(e) => Err(unreadable(e)),
            None => Ok((total, out)),
        }
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
        let prev = self.get(key)?;
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
        let first = prev.as_ref().map_or(rev, |p| p.created);
        let (bytes, stored) =
            Stored::encode(key, &value, first, rev, &self.at_rest).map_err(|e| {
                ControlError::Store(StoreError::Io(format!("cannot store the object: {e}")))
            })?;
        let op = Op::Put {
            key: key.to_string(),
            value: bytes,
        };
        if mirrored(key) {
            self.objects
                .insert(key.to_string(), Entry::new(&value, first, rev));
        }
        self.commit(key, prev, Some(&value), std::slice::from_ref(&op))?;
        Ok((stored, created))
    }

    /// Deletes the object at `key`; `false` when there was none.
    pub fn delete(&mut self, key: &str) -> Result<bool, ControlError> {
        let prev = if mirrored(key) {
            self.objects.remove(key)
        } else {
            self.get(key)?
        };
        let Some(prev) = prev else {
            return Ok(false);
        };
        // A consumer goes with its credentials, in the same store batch, as APISIX removes
        // the consumer's `credentials/` directory with it.
        let mut ops = Vec::new();
        if Kind::Consumers.owns(key, None) {
            let prefix = Kind::Credentials.prefix(Some(username_of(key)));
            self.store
                .scan(&prefix, &prefix_end(&prefix), &mut |k, _| {
                    ops.push(Op::Delete { key: k.into() });
                    true
                })?;
        }
        ops.push(Op::Delete { key: key.into() });
        self.commit(key, Some(prev), None, &ops)?;
        Ok(true)
    }

    /// Checks the change to `key` (`new`, `None` for a deletion; `prev` is what it replaces)
    /// against the rest of the configuration, stores it durably, then puts it in force; on any
    /// failure the change is rolled back and nothing is left half-applied. A mirrored object
    /// is already changed in `self.objects`.
    fn commit(
        &mut self,
        key: &str,
        prev: Option<Entry>,
        new: Option<&Value>,
        ops: &[Op],
    ) -> Result<(), ControlError> {
        let applied = match area(key) {
            Area::Routing => self
                .build()
                .map_err(ControlError::Invalid)
                .and_then(|snapshot| {
                    self.store.apply(ops)?;
                    self.shared.publish(snapshot);
                    Ok(())
                }),
            Area::Consumer => {
                let name = username_of(key).to_string();
                self.consumer_entries(&name, Some((key, new)))
                    .and_then(|installable| {
                        self.check_unique(&name, &installable.1)?;
                        self.store.apply(ops)?;
                        self.install(&name, installable);
                        Ok(())
                    })
            }
            Area::Other => self.store.apply(ops).map(drop).map_err(Into::into),
        };
        if applied.is_ok() && key.starts_with("/apisix/secrets/") {
            // Credentials that reference this secret manager are resolved again.
            self.load_vaults();
            self.refresh();
        }
        if applied.is_err() && mirrored(key) {
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
            match self.consumer_entries(&name, None) {
                Ok(installable) => self.install(&name, installable),
                Err(e) => tracing::error!(consumer = %name, "cannot refresh secrets: {e}"),
            }
        }
    }

    fn load_vaults(&mut self) {
        let vaults = self
            .objects
            .range(Kind::Secrets.prefix(None)..)
            .take_while(|(k, _)| k.starts_with(&Kind::Secrets.prefix(None)))
            .filter(|(k, _)| Kind::Secrets.owns(k, None))
            .filter_map(|(k, e)| Vault::from_json(&e.value()).map(|v| (id_of(k).to_string(), v)))
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

    /// Consumer `name`'s index entries from the store, with `pending` (a key and its new
    /// object, `None` when deleted) in place of what the store holds at that key.
    fn consumer_entries(
        &self,
        name: &str,
        pending: Option<(&str, Option<&Value>)>,
    ) -> Result<Installable, ControlError> {
        let key = Kind::Consumers.key(None, name);
        let read = |k: &str| -> Result<Option<Value>, ControlError> {
            match self.store.get(k)? {
                None => Ok(None),
                Some(bytes) => Stored::decode(k, &bytes, &self.at_rest)
                    .map(|s| Some(s.value))
                    .map_err(unreadable),
            }
        };
        let consumer = match pending {
            Some((k, v)) if k == key => v.cloned(),
            _ => read(&key)?,
        };
        let Some(consumer) = consumer else {
            return Ok((None, Vec::new(), false));
        };
        let prefix = Kind::Credentials.prefix(Some(name));
        let mut creds: Vec<(String, Value)> = Vec::new();
        let mut failed = None;
        let pending_cred = pending.filter(|(k, _)| Kind::Credentials.owns(k, Some(name)));
        self.store
            .scan(&prefix, &prefix_end(&prefix), &mut |k, bytes| {
                if !Kind::Credentials.owns(k, Some(name))
                    || pending_cred.is_some_and(|(p, _)| p == k)
                {
                    return true;
                }
                match Stored::decode(k, bytes, &self.at_rest) {
                    Ok(s) => {
                        creds.push((id_of(k).to_string(), s.value));
                        true
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
        if let Some(e) = failed {
            return Err(unreadable(e));
        }
        if let Some((k, Some(v))) = pending_cred {
            creds.push((id_of(k).to_string(), v.clone()));
            creds.sort_by(|a, b| a.0.cmp(&b.0));
        }
        index_entries(
            name,
            &consumer,
            &creds,
            self.plugins.as_ref(),
            &self.resolver,
        )
        .map_err(|e| ControlError::Invalid(format!("{key}: {e}")))
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

    fn install(&mut self, name: &str, (consumer, creds, has_refs): Installable) {
        self.index.replace(name, consumer, creds);
        if has_refs {
            self.with_refs.insert(name.to_string());
        } else {
            self.with_refs.remove(name);
        }
    }
}

/// A stored object that cannot be decoded (or whose sealed fields no keyring key opens) is a
/// store failure (503), not the client's fault.
fn unreadable(e: String) -> ControlError {
    ControlError::Store(StoreError::Io(e))
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
