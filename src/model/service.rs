//! [`Service`]: plugins, an upstream and hosts shared by the routes that name it (`service_id`),
//! from an APISIX service object. Its `script` is not supported yet and refused.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::check::{Errors, Obj};
use super::route::hosts;
use super::{meta, HostPattern, PluginCheck, Upstream, ValidationErrors};

/// Every field of APISIX's service schema, which refuses any other (`additionalProperties`).
const FIELDS: &[&str] = &[
    "id",
    "name",
    "desc",
    "labels",
    "create_time",
    "update_time",
    "plugins",
    "upstream",
    "upstream_id",
    "script",
    "enable_websocket",
    "hosts",
];

/// A validated service.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// From the Admin API path or the body (an integer id is kept as its decimal). No default:
    /// required.
    pub id: String,
    /// 1 to 256 characters. Defaults to none.
    pub name: Option<String>,
    /// Up to 256 characters. Defaults to none.
    pub desc: Option<String>,
    /// Free-form key/value pairs. Defaults to empty.
    pub labels: BTreeMap<String, String>,
    /// Hosts for the routes of this service that have none of their own. Defaults to empty.
    pub hosts: Vec<HostPattern>,
    /// Plugin name to configuration; a route's entry for the same plugin wins. Defaults to empty.
    pub plugins: Map<String, Value>,
    /// An inline upstream; wins over `upstream_id` when both are set. Defaults to none.
    pub upstream: Option<Upstream>,
    /// The id of an upstream object. Defaults to none.
    pub upstream_id: Option<String>,
    /// Whether a WebSocket upgrade is proxied. Defaults to `false`.
    pub enable_websocket: bool,
}

impl Service {
    /// Validates a service object.
    ///
    /// `id_from_path` is the id in `PUT /apisix/admin/services/{id}` (a `POST` handler passes the id
    /// it generated); when the body also has an `id` they must agree. Each plugin is checked with
    /// `plugins`. Every problem is reported, each with its field path.
    pub fn from_json(
        v: &Value,
        id_from_path: Option<&str>,
        plugins: &dyn PluginCheck,
    ) -> Result<Service, ValidationErrors> {
        let mut errors = Vec::new();
        let parsed = Service::parse(v, id_from_path, plugins, Errors::root(&mut errors));
        ValidationErrors::finish(parsed, errors)
    }

    fn parse(
        v: &Value,
        id_from_path: Option<&str>,
        registry: &dyn PluginCheck,
        err: Errors<'_>,
    ) -> Option<Service> {
        let mut o = Obj::new(v, err)?;
        let before = o.err.count();
        o.reject_unknown(FIELDS);
        o.unsupported(&["script"]);
        let id = meta::required_id(&mut o, id_from_path, "service");
        let name = meta::name(&mut o);
        let desc = meta::desc(&mut o);
        let labels = meta::labels(&mut o);
        meta::timestamps(&mut o);
        // APISIX's service has `hosts` only; `host` is refused above as unknown.
        let hosts = hosts(&mut o, false);
        let plugins = meta::plugins(&mut o, registry, false);
        let upstream = o
            .get("upstream")
            .and_then(|v| Upstream::parse(v, None, o.err.child("upstream")));
        let upstream_id = o.opt("upstream_id", meta::as_id);
        let enable_websocket = o.opt_bool("enable_websocket").unwrap_or(false);

        if o.err.count() > before {
            return None;
        }
        Some(Service {
            id: id?,
            name,
            desc,
            labels,
            hosts: hosts?,
            plugins,
            upstream,
            upstream_id,
            enable_websocket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoPlugins;
    use serde_json::json;

    #[test]
    fn a_full_service() {
        let v = json!({
            "id": "svc1",
            "name": "shop",
            "hosts": ["Shop.example.com", "*.shop.example.com"],
            "upstream": {"nodes": {"127.0.0.1:1980": 1}},
            "upstream_id": 3,
            "enable_websocket": true,
            "labels": {"team": "web"}
        });
        let s = Service::from_json(&v, None, &NoPlugins).expect("valid");
        assert_eq!(s.id, "svc1");
        assert_eq!(
            s.hosts,
            [
                HostPattern::Exact("shop.example.com".into()),
                HostPattern::Wildcard(".shop.example.com".into())
            ]
        );
        assert!(s.upstream.is_some());
        assert_eq!(s.upstream_id.as_deref(), Some("3"));
        assert!(s.enable_websocket);
    }

    #[test]
    fn a_bare_service_is_valid() {
        let s = Service::from_json(&json!({}), Some("1"), &NoPlugins).expect("valid");
        assert!(s.hosts.is_empty() && s.plugins.is_empty() && s.upstream.is_none());
    }

    #[test]
    fn errors_are_collected() {
        let v = json!({
            "host": "a.com",
            "hosts": [],
            "script": "x",
            "upstream": {"nodes": {}, "timeout": {"connect": 1, "send": 1, "read": 0}},
            "plugins": {"jwt-auth": {}},
            "enable_websocket": "yes"
        });
        let errs = Service::from_json(&v, None, &NoPlugins)
            .expect_err("invalid")
            .0;
        assert_eq!(
            errs,
            [
                "additional properties forbidden, found host",
                "property \"script\" is not supported yet",
                "missing service id",
                "property \"hosts\" validation failed: expect array to have at least 1 items",
                "unknown plugin [jwt-auth]",
                "upstream.timeout: property \"read\" validation failed: expected 0 to be greater than 0",
                "property \"enable_websocket\" validation failed: wrong type: expected boolean, got string",
            ]
        );
    }
}
