//! The Admin API's resource kinds, their keys in the store, and validation of one object.

use serde_json::{Map, Value};

use crate::model::{type_name, Consumer, PluginCheck, Route, Service, Ssl, Upstream};

/// An object kind the Admin API manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/apisix/routes/{id}`
    Routes,
    /// `/apisix/services/{id}`
    Services,
    /// `/apisix/upstreams/{id}`
    Upstreams,
    /// `/apisix/consumers/{username}`
    Consumers,
    /// `/apisix/consumers/{username}/credentials/{id}`
    Credentials,
    /// `/apisix/global_rules/{id}`
    GlobalRules,
    /// `/apisix/plugin_configs/{id}`
    PluginConfigs,
    /// `/apisix/secrets/vault/{id}`
    Secrets,
    /// `/apisix/ssls/{id}`
    Ssls,
}

impl Kind {
    /// The kind named by the first path segment after `/apisix/admin/`.
    pub fn from_segment(s: &str) -> Option<Kind> {
        Some(match s {
            "routes" => Kind::Routes,
            "services" => Kind::Services,
            "upstreams" => Kind::Upstreams,
            "consumers" => Kind::Consumers,
            "global_rules" => Kind::GlobalRules,
            "plugin_configs" => Kind::PluginConfigs,
            "secrets" => Kind::Secrets,
            "ssls" => Kind::Ssls,
            _ => return None,
        })
    }

    /// The singular name used in messages (`missing route id`).
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Routes => "route",
            Kind::Services => "service",
            Kind::Upstreams => "upstream",
            Kind::Consumers => "consumer",
            Kind::Credentials => "credential",
            Kind::GlobalRules => "global rule",
            Kind::PluginConfigs => "plugin config",
            Kind::Secrets => "secret",
            Kind::Ssls => "ssl",
        }
    }

    /// The store key of object `id` (`parent` is the consumer of a credential).
    pub fn key(self, parent: Option<&str>, id: &str) -> String {
        format!("{}{id}", self.prefix(parent))
    }

    /// The key prefix of every object of this kind (of one consumer, for credentials).
    pub fn prefix(self, parent: Option<&str>) -> String {
        match self {
            Kind::Routes => "/apisix/routes/".into(),
            Kind::Services => "/apisix/services/".into(),
            Kind::Upstreams => "/apisix/upstreams/".into(),
            Kind::Consumers => "/apisix/consumers/".into(),
            Kind::Credentials => format!(
                "/apisix/consumers/{}/credentials/",
                parent.unwrap_or_default()
            ),
            Kind::GlobalRules => "/apisix/global_rules/".into(),
            Kind::PluginConfigs => "/apisix/plugin_configs/".into(),
            Kind::Secrets => "/apisix/secrets/vault/".into(),
            Kind::Ssls => "/apisix/ssls/".into(),
        }
    }

    /// Whether a key under this kind's prefix is an object of this kind (consumer keys share
    /// their prefix with credential keys, which have more segments).
    pub fn owns(self, key: &str, parent: Option<&str>) -> bool {
        key.strip_prefix(&self.prefix(parent))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    }

    /// The field of the body that carries the object's id.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Consumers => "username",
            _ => "id",
        }
    }
}

/// Validates one object of `kind`, returning every problem found.
pub fn validate(
    kind: Kind,
    value: &Value,
    id: &str,
    plugins: &dyn PluginCheck,
) -> Result<(), Vec<String>> {
    let r = match kind {
        Kind::Routes => Route::from_json(value, Some(id), plugins).map(drop),
        Kind::Services => Service::from_json(value, Some(id), plugins).map(drop),
        Kind::Upstreams => Upstream::from_json(value, Some(id)).map(drop),
        Kind::Consumers => Consumer::from_json(value, Some(id), plugins).map(drop),
        Kind::Credentials => return credential(value, plugins),
        Kind::GlobalRules => return with_plugins(value, &["id"], true, plugins),
        Kind::PluginConfigs => {
            return with_plugins(value, &["id", "desc", "labels"], true, plugins)
        }
        Kind::Secrets => return secret(value),
        Kind::Ssls => Ssl::from_json(value, Some(id)).map(drop),
    };
    r.map_err(|e| e.0)
}

fn object(value: &Value) -> Result<&Map<String, Value>, Vec<String>> {
    value.as_object().ok_or_else(|| {
        vec![format!(
            "invalid configuration: wrong type: expected object, got {}",
            type_name(value)
        )]
    })
}

const META: &[&str] = &["create_time", "update_time"];

fn unknown(map: &Map<String, Value>, allowed: &[&str], errs: &mut Vec<String>) {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) && !META.contains(&k.as_str()) {
            errs.push(format!("additional properties forbidden, found {k}"));
        }
    }
}

fn strings(map: &Map<String, Value>, fields: &[&str], errs: &mut Vec<String>) {
    for f in fields {
        match map.get(*f) {
            None | Some(Value::String(_)) => {}
            Some(v) => errs.push(format!(
                "property \"{f}\" validation failed: wrong type: expected string, got {}",
                type_name(v)
            )),
        }
    }
}

fn labels(map: &Map<String, Value>, errs: &mut Vec<String>) {
    match map.get("labels") {
        None => {}
        Some(Value::Object(l)) => {
            for (k, v) in l {
                if !v.is_string() {
                    errs.push(format!(
                        "property \"labels\" validation failed: label {k:?}: wrong type: expected string, got {}",
                        type_name(v)
                    ));
                }
            }
        }
        Some(v) => errs.push(format!(
            "property \"labels\" validation failed: wrong type: expected object, got {}",
            type_name(v)
        )),
    }
}

fn check_plugins(
    map: &Map<String, Value>,
    required: bool,
    consumer_side: bool,
    plugins: &dyn PluginCheck,
    errs: &mut Vec<String>,
) -> usize {
    match map.get("plugins") {
        None if required => {
            errs.push("property \"plugins\" is required".into());
            0
        }
        None => 0,
        Some(Value::Object(p)) => {
            for (name, conf) in p {
                let r = if consumer_side {
                    plugins.check_consumer(name, conf)
                } else {
                    plugins.check(name, conf)
                };
                if let Err(e) = r {
                    errs.push(e);
                }
            }
            p.len()
        }
        Some(v) => {
            errs.push(format!(
                "property \"plugins\" validation failed: wrong type: expected object, got {}",
                type_name(v)
            ));
            0
        }
    }
}

fn with_plugins(
    value: &Value,
    allowed: &[&str],
    required: bool,
    plugins: &dyn PluginCheck,
) -> Result<(), Vec<String>> {
    let map = object(value)?;
    let mut errs = Vec::new();
    let mut allowed = allowed.to_vec();
    allowed.push("plugins");
    unknown(map, &allowed, &mut errs);
    strings(map, &["desc"], &mut errs);
    labels(map, &mut errs);
    check_plugins(map, required, false, plugins, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// A credential: `{id, desc, labels, plugins}` with exactly one authentication plugin.
fn credential(value: &Value, plugins: &dyn PluginCheck) -> Result<(), Vec<String>> {
    let map = object(value)?;
    let mut errs = Vec::new();
    unknown(map, &["id", "desc", "labels", "plugins"], &mut errs);
    strings(map, &["desc"], &mut errs);
    labels(map, &mut errs);
    let n = check_plugins(map, true, true, plugins, &mut errs);
    if let Some(Value::Object(p)) = map.get("plugins") {
        for name in p.keys() {
            if !crate::plugins::Registry::is_auth(name)
                && !errs.iter().any(|e| e.contains(name.as_str()))
            {
                errs.push(format!(
                    "only supports auth type plugins in consumer credential, got {name}"
                ));
            }
        }
    }
    if errs.is_empty() && n != 1 {
        errs.push(format!(
            "a credential needs exactly one authentication plugin, found {n}"
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// A Vault secret manager: `{uri, prefix, token, namespace}`.
fn secret(value: &Value) -> Result<(), Vec<String>> {
    let map = object(value)?;
    let mut errs = Vec::new();
    unknown(
        map,
        &["id", "uri", "prefix", "token", "namespace"],
        &mut errs,
    );
    strings(map, &["uri", "prefix", "token", "namespace"], &mut errs);
    for f in ["uri", "prefix", "token"] {
        if !map.contains_key(f) {
            errs.push(format!("property \"{f}\" is required"));
        }
    }
    if let Some(Value::String(uri)) = map.get("uri") {
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            errs.push(format!(
                "property \"uri\" validation failed: {uri:?} is not an http(s) URL"
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoPlugins;
    use serde_json::json;

    #[test]
    fn keys_and_ownership() {
        assert_eq!(Kind::Routes.key(None, "1"), "/apisix/routes/1");
        let cred = Kind::Credentials.key(Some("jack"), "c1");
        assert_eq!(cred, "/apisix/consumers/jack/credentials/c1");
        assert!(Kind::Consumers.owns("/apisix/consumers/jack", None));
        assert!(!Kind::Consumers.owns(&cred, None));
        assert!(Kind::Credentials.owns(&cred, Some("jack")));
        assert!(!Kind::Credentials.owns(&cred, Some("jac")));
    }

    #[test]
    fn credentials_need_one_known_plugin() {
        let e = validate(Kind::Credentials, &json!({"plugins": {}}), "c", &NoPlugins).unwrap_err();
        assert!(e[0].contains("exactly one"), "{e:?}");
        let e = validate(
            Kind::Credentials,
            &json!({"plugins": {"jwt-auth": {}}, "x": 1}),
            "c",
            &NoPlugins,
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        // A quota plugin alone is not a credential; two auth plugins are not one.
        let reg = crate::plugins::Registry;
        let e = validate(
            Kind::Credentials,
            &json!({"plugins": {"limit-count": {"count": 1, "time_window": 1}}}),
            "c",
            &reg,
        )
        .unwrap_err();
        assert!(e[0].starts_with("only supports auth type plugins"), "{e:?}");
        let e = validate(
            Kind::Credentials,
            &json!({"plugins": {"jwt-auth": {"key": "a", "secret": "s"}, "jwt": {"key": "b", "secret": "s"}}}),
            "c",
            &reg,
        )
        .unwrap_err();
        assert!(e[0].contains("exactly one"), "{e:?}");
    }

    #[test]
    fn secrets_report_every_problem() {
        let e = validate(
            Kind::Secrets,
            &json!({"uri": "ftp://x", "token": 3}),
            "v",
            &NoPlugins,
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}"); // token type, prefix missing, uri scheme
    }
}
