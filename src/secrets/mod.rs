//! Secret references in credentials: `$env://NAME` and `$secret://vault/{id}/{path}/{field}`,
//! as APISIX resolves them.
//!
//! - `$env://NAME`: the gateway process's environment variable `NAME`.
//! - `$secret://vault/{id}/{path}/{field}`: field `{field}` of the secret at `{path}` under the
//!   prefix of the secret manager `/apisix/admin/secrets/vault/{id}` `{uri, prefix, token}`,
//!   read through HashiCorp Vault's KV v1 HTTP API ([`vault`]).
//!
//! Resolution happens on the control thread, when a credential is written and when
//! [`Resolver::refresh`] runs (periodically), never on the request path: the data plane only
//! sees parsed key material. A reference that cannot be resolved leaves its credential unusable
//! (every token for it is refused) and is logged; it never stops the gateway.

pub mod vault;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub use vault::Vault;

/// How long a fetched Vault secret is reused before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// A parsed `$secret://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The manager kind (only `vault`).
    pub manager: String,
    /// The secret manager object's id.
    pub id: String,
    /// The path under the manager's prefix.
    pub path: String,
    /// The field of the secret.
    pub field: String,
}

/// Parses `$secret://manager/id/path.../field`.
pub fn parse_secret_ref(r: &str) -> Option<SecretRef> {
    let rest = r.strip_prefix("$secret://")?;
    let mut parts = rest.splitn(3, '/');
    let manager = parts.next()?.to_string();
    let id = parts.next()?.to_string();
    let tail = parts.next()?;
    let (path, field) = tail.rsplit_once('/')?;
    if [&manager, &id].iter().any(|s| s.is_empty()) || path.is_empty() || field.is_empty() {
        return None;
    }
    Some(SecretRef {
        manager,
        id,
        path: path.to_string(),
        field: field.to_string(),
    })
}

type Fetched = (Instant, Result<Map<String, Value>, String>);

/// Resolves references against the configured secret managers, with a cache.
#[derive(Default)]
pub struct Resolver {
    vaults: HashMap<String, Vault>,
    cache: Mutex<HashMap<(String, String), Fetched>>,
}

impl Resolver {
    /// A resolver with no secret manager.
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// Replaces the secret managers (`/apisix/secrets/vault/{id}` objects: id and value).
    /// Cached secrets of a changed manager are dropped.
    pub fn set_vaults(&mut self, vaults: HashMap<String, Vault>) {
        let cache = self.cache.get_mut().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(id, _), _| vaults.get(id) == self.vaults.get(id));
        self.vaults = vaults;
    }

    /// Forgets every cached secret, so the next resolution reads them again.
    pub fn expire(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Resolves one reference (`$env://` or `$secret://`).
    pub fn resolve(&self, reference: &str) -> Result<String, String> {
        if let Some(name) = reference.strip_prefix("$env://") {
            return std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"));
        }
        let Some(r) = parse_secret_ref(reference) else {
            return Err(
                "not a valid secret reference ($secret://vault/{id}/{path}/{field})".into(),
            );
        };
        if r.manager != "vault" {
            return Err(format!(
                "secret manager {:?} is not supported (only vault)",
                r.manager
            ));
        }
        let Some(vault) = self.vaults.get(&r.id) else {
            return Err(format!("secret manager vault/{} does not exist", r.id));
        };
        let data = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let key = (r.id.clone(), r.path.clone());
            match cache.get(&key) {
                Some((at, data)) if at.elapsed() < CACHE_TTL => data.clone(),
                _ => {
                    let data = vault.read(&r.path);
                    cache.insert(key, (Instant::now(), data.clone()));
                    data
                }
            }
        }?;
        match data.get(&r.field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(format!(
                "vault/{}: secret {} has no field {}",
                r.id, r.path, r.field
            )),
        }
    }
}

#[cfg(test)]
mod tests;
