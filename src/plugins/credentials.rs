//! Turning a consumer and its credentials into consumer-index entries, key material parsed.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::consumers::{Consumer, Credential, Scheme};
use crate::model;

use super::{jwt_auth, kong_jwt};

/// A secret reference resolver (`$env://NAME`, `$secret://...`).
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// The default resolver: `$env://NAME` reads the gateway's environment; `$secret://`
/// references are resolved by the secret manager when one is configured.
pub fn resolve_env(reference: &str) -> Result<String, String> {
    if let Some(name) = reference.strip_prefix("$env://") {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    Err(format!(
        "cannot resolve {}: no secret manager configured",
        redact(reference)
    ))
}

/// A reference with its last path segment hidden (it may name a field that says too much).
fn redact(reference: &str) -> String {
    match reference.rsplit_once('/') {
        Some((head, _)) => format!("{head}/..."),
        None => "...".into(),
    }
}

/// The index entries of consumer `c`: its data-plane view, and one credential per
/// authentication plugin configured inline on it or in one of `creds` (credential id, its
/// `plugins`).
pub fn entries(
    c: &model::Consumer,
    creds: &[(&str, &Map<String, Value>)],
    resolve: Resolve<'_>,
) -> (Arc<Consumer>, Vec<(Scheme, Arc<Credential>)>) {
    let consumer = Arc::new(Consumer::from_model(c));
    let mut out = Vec::new();
    let mut add = |id: Option<&str>, plugins: &Map<String, Value>| {
        for (name, conf) in plugins {
            let built = match name.as_str() {
                jwt_auth::NAME => jwt_auth::credential_spec(conf).map(|spec| {
                    (
                        Scheme::JwtAuth,
                        spec.key.clone(),
                        jwt_auth::material(&spec, resolve),
                        spec.grace,
                    )
                }),
                kong_jwt::NAME => kong_jwt::credential_spec(conf).map(|spec| {
                    (
                        Scheme::KongJwt,
                        spec.key.clone(),
                        kong_jwt::material(&spec, resolve),
                        0,
                    )
                }),
                _ => continue,
            };
            match built {
                Ok((scheme, key, material, grace)) => {
                    if let crate::consumers::Material::Unusable { why, .. } = &material {
                        tracing::warn!(
                            consumer = %c.username,
                            credential = id.unwrap_or("(inline)"),
                            plugin = %name,
                            "credential unusable, its tokens will be refused: {why}"
                        );
                    }
                    out.push((
                        scheme,
                        Arc::new(Credential {
                            consumer: consumer.clone(),
                            id: id.map(Arc::from),
                            key: key.into(),
                            material,
                            grace,
                        }),
                    ));
                }
                Err(e) => tracing::error!(
                    consumer = %c.username,
                    credential = id.unwrap_or("(inline)"),
                    "stored credential no longer validates, skipped: {e}"
                ),
            }
        }
    };
    add(None, &c.plugins);
    for (id, plugins) in creds {
        add(Some(id), plugins);
    }
    (consumer, out)
}

/// The `(scheme, key)` pairs of the authentication plugins in `plugins`, for uniqueness checks
/// before a write.
pub fn keys(plugins: &Map<String, Value>) -> Vec<(Scheme, String)> {
    let mut out = Vec::new();
    for (name, conf) in plugins {
        let scheme = match name.as_str() {
            jwt_auth::NAME => Scheme::JwtAuth,
            kong_jwt::NAME => Scheme::KongJwt,
            _ => continue,
        };
        if let Some(k) = conf.get("key").and_then(Value::as_str) {
            out.push((scheme, k.to_string()));
        }
    }
    out
}

/// A new index holding `consumers` (standalone files, where credentials are inline plugin
/// configurations). A key used twice is an error naming both consumers.
pub fn index_of(consumers: &[model::Consumer]) -> Result<crate::consumers::ConsumerIndex, String> {
    let index = crate::consumers::ConsumerIndex::new();
    let mut errs = Vec::new();
    for c in consumers {
        let (view, creds) = entries(c, &[], &resolve_env);
        for (scheme, cred) in &creds {
            if let Some(other) = index.credential(*scheme, &cred.key) {
                errs.push(format!(
                    "consumer {}: duplicate key of plugin {} found with consumer: {}",
                    c.username,
                    scheme.plugin(),
                    other.consumer.username
                ));
            }
        }
        index.replace(&c.username, Some(view), creds);
    }
    if errs.is_empty() {
        Ok(index)
    } else {
        Err(errs.join("; "))
    }
}
