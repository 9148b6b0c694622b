//! [`Route`]: which requests (uri, host, method) go where (upstream, service) through which
//! plugins, from an APISIX route object.
//!
//! Matching on `remote_addr(s)`, `vars` and `filter_func`, a route-level `timeout`, `script` and
//! `plugin_config_id` are not supported yet and refused, so a route never matches more, or more
//! loosely, than it would in APISIX.

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Map, Value};

use super::check::{as_int, str_items, Errors, Obj, Str};
use super::pattern::{HOST, URI};
use super::{meta, HostPattern, PluginCheck, Upstream, UriPattern, ValidationErrors};

#[cfg(test)]
mod tests;

/// Every field of APISIX's route schema, which refuses any other (`additionalProperties`).
const FIELDS: &[&str] = &[
    "id",
    "name",
    "desc",
    "labels",
    "create_time",
    "update_time",
    "uri",
    "uris",
    "priority",
    "methods",
    "host",
    "hosts",
    "remote_addr",
    "remote_addrs",
    "timeout",
    "vars",
    "filter_func",
    "script",
    "script_id",
    "plugins",
    "plugin_config_id",
    "upstream",
    "service_id",
    "upstream_id",
    "enable_websocket",
    "status",
];

/// APISIX route fields this gateway refuses for now.
const UNSUPPORTED: &[&str] = &[
    "remote_addr",
    "remote_addrs",
    "vars",
    "filter_func",
    "timeout",
    "script",
    "script_id",
    "plugin_config_id",
];

/// The methods APISIX's schema allows in `methods`.
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE",
];

/// A validated route.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// From the Admin API path or the body (an integer id is kept as its decimal). No default:
    /// required.
    pub id: String,
    /// 1 to 256 characters. Defaults to none.
    pub name: Option<String>,
    /// Up to 256 characters. Defaults to none.
    pub desc: Option<String>,
    /// Free-form key/value pairs. Defaults to empty.
    pub labels: BTreeMap<String, String>,
    /// Whether the route takes requests (`status` 1) or not (`status` 0). Defaults to `true`.
    pub status: bool,
    /// Among routes matching with the same uri pattern, the higher priority wins. Defaults to `0`.
    pub priority: i64,
    /// From `uri` or `uris`; never empty. No default: required.
    pub uris: Vec<UriPattern>,
    /// From `host` or `hosts`; empty matches any host (or the service's hosts). Defaults to empty.
    pub hosts: Vec<HostPattern>,
    /// Empty matches any method. Defaults to empty.
    pub methods: Vec<Method>,
    /// Plugin name to configuration, each checked by the plugin registry. Defaults to empty.
    pub plugins: Map<String, Value>,
    /// An inline upstream; wins over `upstream_id` when both are set. Defaults to none.
    pub upstream: Option<Upstream>,
    /// The id of an upstream object. Defaults to none.
    pub upstream_id: Option<String>,
    /// The id of a service whose plugins, upstream and hosts the route inherits. Defaults to none.
    pub service_id: Option<String>,
    /// Whether a WebSocket upgrade is proxied. Defaults to `false`.
    pub enable_websocket: bool,
}

impl Route {
    /// Validates a route object.
    ///
    /// `id_from_path` is the id in `PUT /apisix/admin/routes/{id}` (a `POST` handler passes the id
    /// it generated); when the body also has an `id` they must agree. Each plugin is checked with
    /// `plugins`. Every problem is reported, each with its field path.
    pub fn from_json(
        v: &Value,
        id_from_path: Option<&str>,
        plugins: &dyn PluginCheck,
    ) -> Result<Route, ValidationErrors> {
        let mut errors = Vec::new();
        let parsed = Route::parse(v, id_from_path, plugins, Errors::root(&mut errors));
        ValidationErrors::finish(parsed, errors)
    }

    fn parse(
        v: &Value,
        id_from_path: Option<&str>,
        registry: &dyn PluginCheck,
        err: Errors<'_>,
    ) -> Option<Route> {
        let mut o = Obj::new(v, err)?;
        let before = o.err.count();
        o.reject_unknown(FIELDS);
        o.unsupported(UNSUPPORTED);
        let id = meta::required_id(&mut o, id_from_path, "route");
        let name = meta::name(&mut o);
        let desc = meta::desc(&mut o);
        let labels = meta::labels(&mut o);
        meta::timestamps(&mut o);

        let status = o
            .opt("status", |v| match as_int(v, None, None) {
                Ok(1) => Ok(true),
                Ok(0) => Ok(false),
                Ok(_) => Err(format!("matches none of the enum values, got {v}")),
                Err(msg) => Err(msg),
            })
            .unwrap_or(true);
        let priority = o.opt_int("priority", None, None).unwrap_or(0);
        let uris = uris(&mut o);
        let hosts = hosts(&mut o, true);
        let methods = methods(&mut o);
        let plugins = meta::plugins(&mut o, registry, false);
        let upstream = o
            .get("upstream")
            .and_then(|v| Upstream::parse(v, None, o.err.child("upstream")));
        let upstream_id = o.opt("upstream_id", meta::as_id);
        let service_id = o.opt("service_id", meta::as_id);
        let enable_websocket = o.opt_bool("enable_websocket").unwrap_or(false);
        if !["plugins", "upstream", "upstream_id", "service_id"]
            .iter()
            .any(|f| o.has(f))
        {
            o.err.push(
                "one of \"plugins\", \"upstream\", \"upstream_id\" or \"service_id\" is required",
            );
        }

        if o.err.count() > before {
            return None;
        }
        Some(Route {
            id: id?,
            name,
            desc,
            labels,
            status,
            priority,
            uris: uris?,
            hosts: hosts?,
            methods: methods?,
            plugins,
            upstream,
            upstream_id,
            service_id,
            enable_websocket,
        })
    }
}

/// `uri` or `uris`: exactly one of them.
fn uris(o: &mut Obj<'_, '_>) -> Option<Vec<UriPattern>> {
    let list = match (o.has("uri"), o.has("uris")) {
        (true, true) => {
            o.err.push("only one of uri or uris is allowed");
            return None;
        }
        (false, false) => {
            o.err.push("one of \"uri\" or \"uris\" is required");
            return None;
        }
        (true, false) => vec![o.opt_str("uri", &URI)?],
        (false, true) => {
            let items = o.opt_array("uris", 1)?;
            str_items(items, "uris", &URI, &mut o.err)?
        }
    };
    let before = o.err.count();
    let mut patterns = Vec::with_capacity(list.len());
    for uri in list {
        match UriPattern::parse(uri) {
            Ok(p) => patterns.push(p),
            Err(msg) => o.err.push(msg),
        }
    }
    (o.err.count() == before).then_some(patterns)
}

/// `host` or `hosts` (a service has only `hosts`: `with_host` false). Empty when neither is given.
pub(crate) fn hosts(o: &mut Obj<'_, '_>, with_host: bool) -> Option<Vec<HostPattern>> {
    let list = if with_host && o.has("host") {
        if o.has("hosts") {
            o.err.push("only one of host or hosts is allowed");
            return None;
        }
        vec![o.opt_str("host", &HOST)?]
    } else if o.has("hosts") {
        let items = o.opt_array("hosts", 1)?;
        str_items(items, "hosts", &HOST, &mut o.err)?
    } else {
        Vec::new()
    };
    let before = o.err.count();
    let mut patterns = Vec::with_capacity(list.len());
    for host in list {
        match HostPattern::parse(host) {
            Ok(p) => patterns.push(p),
            Err(msg) => o.err.push(msg),
        }
    }
    (o.err.count() == before).then_some(patterns)
}

/// `methods`: unique, each one of [`METHODS`]; empty matches any.
fn methods(o: &mut Obj<'_, '_>) -> Option<Vec<Method>> {
    if !o.has("methods") {
        return Some(Vec::new());
    }
    let items = o.opt_array("methods", 0)?;
    let names = str_items(items, "methods", &Str::len(0, usize::MAX), &mut o.err)?;
    let before = o.err.count();
    let mut methods = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        match Method::from_bytes(name.as_bytes()) {
            Ok(m) if METHODS.contains(&name) => methods.push(m),
            _ => o.err.item("methods", i).push(format_args!(
                "matches none of the enum values, got {name:?}"
            )),
        }
    }
    (o.err.count() == before).then_some(methods)
}
