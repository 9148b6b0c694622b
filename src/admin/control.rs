//! The control plane's state: the store, an in-memory mirror of it, and publication of the
//! compiled snapshot to the workers.
//!
//! A write is checked against the whole configuration *before* it is stored: the mirror is
//! cloned, the change applied, every object rebuilt and the snapshot compiled; only when all of
//! that succeeds is the change written (durably) and the new snapshot published. So an answered
//! 2xx is both on disk and in force, and a refused change leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::model::{ConfigSet, Consumer, PluginCheck, Route, Service, Upstream};
use crate::proxy::Shared;
use crate::snapshot::{compile, Snapshot};
use crate::store::{Op, Store, StoreError};

use super::kind::Kind;

/// One stored object with its etcd-style indices.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The object as the Admin API returns it.
    pub value: Value,
    /// Store revision that created it.
    pub created: u64,
    /// Store revision that last changed it.
    pub modified: u64,
}

impl Entry {
    fn to_stored(&self) -> Vec<u8> {
        json!({"value": self.value, "createdIndex": self.created, "modifiedIndex": self.modified})
            .to_string()
            .into_bytes()
    }

    fn from_stored(key: &str, bytes: &[u8]) -> Result<Entry, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("{key}: not JSON: {e}"))?;
        let idx = |f: &str| v.get(f).and_then(Value::as_u64);
        match (v.get("value"), idx("createdIndex"), idx("modifiedIndex")) {
            (Some(value), Some(created), Some(modified)) => Ok(Entry {
                value: value.clone(),
                created,
                modified,
            }),
            _ => Err(format!("{key}: not a stored object")),
        }
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

/// The control plane.
pub struct Control {
    store: Box<dyn Store>,
    shared: Arc<Shared>,
    plugins: Box<dyn PluginCheck + Send>,
    objects: BTreeMap<String, Entry>,
}

impl Control {
    /// Loads every object from `store`, checks the whole set, compiles it and publishes it to
    /// `shared`. A stored object that no longer validates is an error naming its key: the
    /// gateway refuses to start rather than serve a configuration with a piece missing.
    pub fn open(
        store: Box<dyn Store>,
        shared: Arc<Shared>,
        plugins: Box<dyn PluginCheck + Send>,
    ) -> Result<Control, String> {
        let mut objects = BTreeMap::new();
        for (key, bytes) in store.list("/apisix/").map_err(|e| e.to_string())? {
            let entry = Entry::from_stored(&key, &bytes)?;
            objects.insert(key, entry);
        }
        let snapshot = build(&objects, plugins.as_ref())
            .map_err(|e| format!("the stored configuration is invalid: {e}"))?;
        shared.publish(snapshot);
        Ok(Control {
            store,
            shared,
            plugins,
            objects,
        })
    }

    /// The plugin registry objects are checked with.
    pub fn plugins(&self) -> &dyn PluginCheck {
        self.plugins.as_ref()
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
    /// object. Returns the stored value and whether it was created.
    pub fn put(&mut self, key: &str, mut value: Value) -> Result<(Value, bool), ControlError> {
        let now = unix_now();
        let prev = self.objects.get(key);
        let created = prev.is_none();
        if let Some(obj) = value.as_object_mut() {
            let create_time = prev
                .and_then(|p| p.value.get("create_time").cloned())
                .unwrap_or(json!(now));
            obj.insert("create_time".into(), create_time);
            obj.insert("update_time".into(), json!(now));
        }
        let rev = self.store.revision()? + 1;
        let entry = Entry {
            value: value.clone(),
            created: prev.map_or(rev, |p| p.created),
            modified: rev,
        };
        let mut next = self.objects.clone();
        next.insert(key.to_string(), entry.clone());
        self.commit(
            next,
            vec![Op::Put {
                key: key.to_string(),
                value: entry.to_stored(),
            }],
        )?;
        Ok((value, created))
    }

    /// Deletes the object at `key`; `false` when there was none.
    pub fn delete(&mut self, key: &str) -> Result<bool, ControlError> {
        if !self.objects.contains_key(key) {
            return Ok(false);
        }
        let mut next = self.objects.clone();
        next.remove(key);
        self.commit(next, vec![Op::Delete { key: key.into() }])?;
        Ok(true)
    }

    fn commit(&mut self, next: BTreeMap<String, Entry>, ops: Vec<Op>) -> Result<(), ControlError> {
        let snapshot = build(&next, self.plugins.as_ref()).map_err(ControlError::Invalid)?;
        self.store.apply(&ops)?;
        self.objects = next;
        self.shared.publish(snapshot);
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Rebuilds every object and compiles the snapshot.
pub fn build(
    objects: &BTreeMap<String, Entry>,
    plugins: &dyn PluginCheck,
) -> Result<Snapshot, String> {
    let mut set = ConfigSet::default();
    let mut errs = Vec::new();
    let id_of = |key: &str| key.rsplit('/').next().unwrap_or_default().to_string();
    for (key, e) in objects {
        let id = id_of(key);
        let r = if Kind::Routes.owns(key, None) {
            Route::from_json(&e.value, Some(&id), plugins).map(|r| set.routes.push(r))
        } else if Kind::Services.owns(key, None) {
            Service::from_json(&e.value, Some(&id), plugins).map(|s| set.services.push(s))
        } else if Kind::Upstreams.owns(key, None) {
            Upstream::from_json(&e.value, Some(&id)).map(|u| set.upstreams.push(u))
        } else if Kind::Consumers.owns(key, None) {
            Consumer::from_json(&e.value, Some(&id), plugins).map(|c| set.consumers.push(c))
        } else {
            Ok(())
        };
        if let Err(e) = r {
            errs.push(format!("{key}: {e}"));
        }
    }
    if !errs.is_empty() {
        return Err(errs.join("; "));
    }
    compile(&set).map_err(|e| e.to_string())
}
