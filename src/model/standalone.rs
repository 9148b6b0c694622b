//! The declarative config file of APISIX's standalone mode (`conf/apisix.yaml`, or its JSON twin),
//! checked as a whole.
//!
//! ```yaml
//! routes:
//!   - id: 1
//!     uri: /hello
//!     upstream_id: 1
//! upstreams:
//!   - id: 1
//!     nodes: { "127.0.0.1:1980": 1 }
//! consumers:
//!   - username: jack
//! ssls:
//!   - id: example
//!     snis: [example.com, "*.example.com"]
//!     cert: "-----BEGIN CERTIFICATE-----\n..."
//!     key: "-----BEGIN PRIVATE KEY-----\n..."
//! #END
//! ```
//!
//! Every object is validated as the Admin API would, then the file is checked across objects:
//! unique ids within a kind, references (`upstream_id`, `service_id`) that exist, and a way to an
//! upstream for every route. All problems are reported at once, each prefixed with where it is:
//! `routes[1] (id 7): upstream.timeout: property "connect" validation failed: ...`.
//!
//! Differences from APISIX, which logs a bad item and serves the rest: here a file with any problem
//! is refused whole, so a typo never silently drops a route or its authentication. An item without
//! an `id` gets `arr_N` (N from 1), as in APISIX. The `#END` line APISIX requires at the end of a
//! YAML file is accepted but not required, and `${{VAR}}` environment references are not expanded.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value};

use super::check::type_name;
use super::meta::as_id;
use super::{Consumer, PluginCheck, Route, Service, Ssl, Upstream, ValidationErrors};

#[cfg(test)]
mod tests;

/// Top-level sections this gateway reads.
const SECTIONS: &[&str] = &[
    "routes",
    "services",
    "upstreams",
    "consumers",
    "global_rules",
    "ssls",
];

/// Top-level sections of APISIX's file that this gateway does not support yet: refused unless
/// empty.
const UNSUPPORTED: &[&str] = &[
    "plugins",
    "plugin_configs",
    "consumer_groups",
    "plugin_metadata",
    "stream_routes",
];

/// Every object of a standalone file, validated and cross-checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigSet {
    /// In file order, which breaks ties between routes of equal priority. Defaults to empty.
    pub routes: Vec<Route>,
    /// Defaults to empty.
    pub services: Vec<Service>,
    /// Each with an id (`arr_N` when the file gave none). Defaults to empty.
    pub upstreams: Vec<Upstream>,
    /// Defaults to empty.
    pub consumers: Vec<Consumer>,
    /// Each global rule's id and `plugins`. Defaults to empty.
    pub global_rules: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    /// Server certificates, in file (or id) order: the first naming an SNI keeps it. Defaults
    /// to empty.
    pub ssls: Vec<Ssl>,
}

/// Reads and checks a standalone file: JSON when its name ends in `.json`, else YAML (or JSON when
/// the text starts with `{`).
pub fn load_standalone_file(
    path: &Path,
    plugins: &dyn PluginCheck,
) -> Result<ConfigSet, ValidationErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ValidationErrors(vec![format!(
            "failed to read config file {}: {e}",
            path.display()
        )])
    })?;
    let json = path.extension().is_some_and(|ext| ext == "json");
    parse_standalone(&text, json, plugins)
}

/// Checks the text of a standalone file: JSON when `json` or when the text starts with `{`, else
/// YAML. Empty text is an empty config.
pub fn parse_standalone(
    text: &str,
    json: bool,
    plugins: &dyn PluginCheck,
) -> Result<ConfigSet, ValidationErrors> {
    let doc = parse_text(text, json).map_err(|e| ValidationErrors(vec![e]))?;
    let mut errors = Vec::new();
    let set = check_file(&doc, plugins, &mut errors);
    ValidationErrors::finish(Some(set), errors)
}

/// Parses the text of a declarative file into a document: JSON when `json` or when the text
/// starts with `{`, else YAML; empty text is `null`.
pub fn parse_text(text: &str, json: bool) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let yaml = |text| serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"));
    if json {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
    } else if text.trim_start().starts_with('{') {
        // JSON, or else a YAML flow mapping; a text that is neither gets the JSON message.
        serde_json::from_str(text).or_else(|e| yaml(text).map_err(|_| format!("invalid JSON: {e}")))
    } else {
        yaml(text)
    }
}

/// How an item is named in messages: `routes[1] (id 7)`.
fn label(section: &str, index: usize, id: Option<&str>, key: &str) -> String {
    match id {
        Some(id) => format!("{section}[{index}] ({key} {id})"),
        None => format!("{section}[{index}]"),
    }
}

/// The items of a section, with the id each is known by (the body's `id`, or `arr_N` when it has
/// none; `None` when the id itself is invalid) and its label.
struct Item<'v> {
    value: &'v Value,
    id: Option<String>,
    from_path: Option<String>,
    label: String,
}

fn items<'v>(
    doc: &'v Map<String, Value>,
    section: &str,
    errors: &mut Vec<String>,
) -> Vec<Item<'v>> {
    let list = match doc.get(section) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            errors.push(format!(
                "property \"{section}\" validation failed: wrong type: expected array, got {}",
                type_name(other)
            ));
            return Vec::new();
        }
    };
    let key = if section == "consumers" {
        "username"
    } else {
        "id"
    };
    list.iter()
        .enumerate()
        .map(|(i, value)| {
            let (id, from_path) = match value.get(key) {
                Some(v) if key == "username" => (v.as_str().map(str::to_owned), None),
                Some(v) => (as_id(v).ok(), None),
                // APISIX's name for an item without an id.
                None if key == "id" && value.is_object() => {
                    let id = format!("arr_{}", i + 1);
                    (Some(id.clone()), Some(id))
                }
                None => (None, None),
            };
            let label = label(section, i, id.as_deref(), key);
            Item {
                value,
                id,
                from_path,
                label,
            }
        })
        .collect()
}

/// Validates each item with `parse`, prefixing its messages with the item's label.
fn parse_each<T>(
    items: &[Item<'_>],
    errors: &mut Vec<String>,
    parse: impl Fn(&Value, Option<&str>) -> Result<T, ValidationErrors>,
) -> Vec<Option<T>> {
    items
        .iter()
        .map(|item| match parse(item.value, item.from_path.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.extend(e.0.into_iter().map(|m| format!("{}: {m}", item.label)));
                None
            }
        })
        .collect()
}

/// Reports ids used twice within a section; returns the set of ids in use.
fn unique_ids(items: &[Item<'_>], what: &str, errors: &mut Vec<String>) -> HashSet<String> {
    let mut first: HashMap<&str, &str> = HashMap::new();
    for item in items {
        let Some(id) = item.id.as_deref() else {
            continue;
        };
        match first.entry(id) {
            Entry::Occupied(prev) => errors.push(format!(
                "{}: duplicate {what}, also used by {}",
                item.label,
                prev.get()
            )),
            Entry::Vacant(slot) => {
                slot.insert(&item.label);
            }
        }
    }
    first.into_keys().map(str::to_owned).collect()
}

fn check_file(doc: &Value, registry: &dyn PluginCheck, errors: &mut Vec<String>) -> ConfigSet {
    let empty = Map::new();
    let doc = match doc {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => {
            errors.push(format!(
                "wrong type: expected object, got {}",
                type_name(other)
            ));
            return ConfigSet::default();
        }
    };
    for (key, value) in doc {
        if UNSUPPORTED.contains(&key.as_str()) {
            let has_content = match value {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            };
            if has_content {
                errors.push(format!("property \"{key}\" is not supported yet"));
            }
        } else if !SECTIONS.contains(&key.as_str()) {
            errors.push(format!("additional properties forbidden, found {key}"));
        }
    }

    let route_items = items(doc, "routes", errors);
    let service_items = items(doc, "services", errors);
    let upstream_items = items(doc, "upstreams", errors);
    let consumer_items = items(doc, "consumers", errors);
    let global_items = items(doc, "global_rules", errors);
    let ssl_items = items(doc, "ssls", errors);

    let routes = parse_each(&route_items, errors, |v, id| {
        Route::from_json(v, id, registry)
    });
    let services = parse_each(&service_items, errors, |v, id| {
        Service::from_json(v, id, registry)
    });
    let upstreams = parse_each(&upstream_items, errors, Upstream::from_json);
    let consumers = parse_each(&consumer_items, errors, |v, _| {
        Consumer::from_json(v, None, registry)
    });
    let ssls = parse_each(&ssl_items, errors, Ssl::from_json);

    let mut global_rules = Vec::new();
    for item in &global_items {
        match item.value.get("plugins") {
            Some(Value::Object(plugins)) => {
                let before = errors.len();
                for (name, conf) in plugins {
                    if let Err(e) = registry.check(name, conf) {
                        errors.push(format!("{}: plugins.{name}: {e}", item.label));
                    }
                }
                if errors.len() == before {
                    let id = item.id.clone().unwrap_or_else(|| item.label.clone());
                    global_rules.push((id, plugins.clone()));
                }
            }
            _ => errors.push(format!("{}: property \"plugins\" is required", item.label)),
        }
    }
    unique_ids(&global_items, "id", errors);
    unique_ids(&route_items, "id", errors);
    let service_ids = unique_ids(&service_items, "id", errors);
    let upstream_ids = unique_ids(&upstream_items, "id", errors);
    unique_ids(&consumer_items, "username", errors);
    unique_ids(&ssl_items, "id", errors);

    // Whether each valid service leads to an upstream; invalid ones were reported already and are
    // left out, so their routes are not blamed for them.
    let service_upstream: HashMap<&str, bool> = services
        .iter()
        .flatten()
        .map(|s| {
            (
                s.id.as_str(),
                s.upstream.is_some() || s.upstream_id.is_some(),
            )
        })
        .collect();

    for (item, service) in service_items.iter().zip(&services) {
        let Some(service) = service else { continue };
        if let Some(up) = &service.upstream_id {
            if !upstream_ids.contains(up) {
                errors.push(format!("{}: upstream_id {up:?} not found", item.label));
            }
        }
    }
    for (item, route) in route_items.iter().zip(&routes) {
        let Some(route) = route else { continue };
        if let Some(up) = &route.upstream_id {
            if !upstream_ids.contains(up) {
                errors.push(format!("{}: upstream_id {up:?} not found", item.label));
            }
        }
        let via_service = match &route.service_id {
            Some(svc) if !service_ids.contains(svc) => {
                errors.push(format!("{}: service_id {svc:?} not found", item.label));
                continue;
            }
            // An invalid service counts as having an upstream: its own errors say what is wrong.
            Some(svc) => service_upstream.get(svc.as_str()).copied().unwrap_or(true),
            None => false,
        };
        if route.upstream.is_none() && route.upstream_id.is_none() && !via_service {
            let why = match &route.service_id {
                Some(svc) => format!(" (service {svc:?} has none)"),
                None => String::new(),
            };
            errors.push(format!(
                "{}: no upstream: set upstream, upstream_id or service_id{why}",
                item.label
            ));
        }
    }
    for (item, consumer) in consumer_items.iter().zip(&consumers) {
        if let Some(group) = consumer.as_ref().and_then(|c| c.group_id.as_ref()) {
            errors.push(format!(
                "{}: group_id {group:?} not found: consumer groups are not supported yet",
                item.label
            ));
        }
    }

    ConfigSet {
        routes: routes.into_iter().flatten().collect(),
        services: services.into_iter().flatten().collect(),
        upstreams: upstreams.into_iter().flatten().collect(),
        consumers: consumers.into_iter().flatten().collect(),
        global_rules,
        ssls: ssls.into_iter().flatten().collect(),
    }
}
