use http::Method;
use serde_json::{json, Value};

use super::*;
use crate::model::NoPlugins;

fn route(v: Value) -> Route {
    Route::from_json(&v, None, &NoPlugins).expect("the route is valid")
}

fn errors(v: Value) -> Vec<String> {
    Route::from_json(&v, None, &NoPlugins)
        .expect_err("the route is invalid")
        .0
}

/// Accepts any plugin whose configuration is an object with no `bad` key.
struct AnyPlugin;

impl PluginCheck for AnyPlugin {
    fn check(&self, name: &str, conf: &Value) -> Result<(), String> {
        match conf.get("bad") {
            None => Ok(()),
            Some(_) => Err(format!(
                "failed to check the configuration of plugin {name} err: bad"
            )),
        }
    }

    fn check_consumer(&self, name: &str, _conf: &Value) -> Result<(), String> {
        Err(format!("consumer schema asked for {name}"))
    }
}

#[test]
fn minimal_route_takes_the_defaults() {
    let r = route(json!({"id": 1, "uri": "/hello", "upstream_id": 1}));
    assert_eq!(r.id, "1");
    assert!(r.status);
    assert_eq!(r.priority, 0);
    assert_eq!(r.uris, [UriPattern::Exact("/hello".into())]);
    assert!(r.hosts.is_empty() && r.methods.is_empty() && r.plugins.is_empty());
    assert_eq!(r.upstream_id.as_deref(), Some("1"));
    assert_eq!(r.upstream, None);
    assert!(!r.enable_websocket);
}

#[test]
fn every_supported_field() {
    let v = json!({
        "id": "r1",
        "name": "hello",
        "desc": "says hello",
        "labels": {"version": "v1"},
        "status": 0,
        "priority": -3,
        "uris": ["/a", "/b/*"],
        "hosts": ["Foo.com", "*.bar.com"],
        "methods": ["GET", "PURGE"],
        "plugins": {"limit-count": {"count": 1}},
        "upstream": {"nodes": {"127.0.0.1:1980": 1}},
        "upstream_id": "u1",
        "service_id": 2,
        "enable_websocket": true,
        "create_time": 1,
        "update_time": 2
    });
    let r = Route::from_json(&v, Some("r1"), &AnyPlugin).expect("valid");
    assert_eq!(r.name.as_deref(), Some("hello"));
    assert_eq!(r.desc.as_deref(), Some("says hello"));
    assert_eq!(r.labels["version"], "v1");
    assert!(!r.status);
    assert_eq!(r.priority, -3);
    assert_eq!(
        r.uris,
        [
            UriPattern::Exact("/a".into()),
            UriPattern::Prefix("/b/".into())
        ]
    );
    assert_eq!(
        r.hosts,
        [
            HostPattern::Exact("foo.com".into()),
            HostPattern::Wildcard(".bar.com".into())
        ]
    );
    assert_eq!(
        r.methods,
        [
            Method::GET,
            Method::from_bytes(b"PURGE").expect("a valid token")
        ]
    );
    assert_eq!(r.plugins["limit-count"]["count"], 1);
    assert!(r.upstream.is_some());
    assert_eq!(r.upstream_id.as_deref(), Some("u1"));
    assert_eq!(r.service_id.as_deref(), Some("2"));
    assert!(r.enable_websocket);
}

#[test]
fn single_host() {
    let r = route(json!({"id": 1, "uri": "/", "host": "A.com", "service_id": 1}));
    assert_eq!(r.hosts, [HostPattern::Exact("a.com".into())]);
}

#[test]
fn uri_rules() {
    assert_eq!(
        errors(json!({"id": 1, "uri": 5, "upstream_id": 1})),
        ["property \"uri\" validation failed: wrong type: expected string, got number"]
    );
    assert_eq!(
        errors(json!({"id": 1, "upstream_id": 1})),
        ["one of \"uri\" or \"uris\" is required"]
    );
    assert_eq!(
        errors(json!({"id": 1, "uri": "/a", "uris": ["/b"], "upstream_id": 1})),
        ["only one of uri or uris is allowed"]
    );
    assert_eq!(
        errors(json!({"id": 1, "uris": [], "upstream_id": 1})),
        ["property \"uris\" validation failed: expect array to have at least 1 items"]
    );
    assert_eq!(
        errors(json!({"id": 1, "uris": ["/a", "/a"], "upstream_id": 1})),
        ["property \"uris\" validation failed: expected unique items but items 1 and 2 are equal"]
    );
    assert_eq!(
        errors(json!({"id": 1, "uris": ["/a/:id", "b", ""], "upstream_id": 1})),
        ["uris[2]: string too short, expected at least 1, got 0",]
    );
    assert_eq!(
        errors(json!({"id": 1, "uris": ["/a/:id", "b"], "upstream_id": 1})),
        [
            "uri \"/a/:id\": only exact paths and a trailing \"*\" prefix are supported",
            "uri \"b\": must start with \"/\"",
        ]
    );
    let long = format!("/{}", "a".repeat(4096));
    assert_eq!(
        errors(json!({"id": 1, "uri": long, "upstream_id": 1})),
        ["property \"uri\" validation failed: string too long, expected at most 4096, got 4097"]
    );
}

#[test]
fn host_rules() {
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "host": "a.com", "hosts": ["b.com"], "upstream_id": 1})),
        ["only one of host or hosts is allowed"]
    );
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "hosts": ["a b", "*."], "upstream_id": 1})),
        ["hosts[0]: failed to match pattern \"^\\\\*$|^\\\\*?[0-9a-zA-Z-._\\\\[\\\\]:]+$\" with \"a b\""]
    );
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "hosts": ["*."], "upstream_id": 1})),
        ["host \"*.\": a wildcard needs a domain after \"*.\""]
    );
}

#[test]
fn method_rules() {
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "methods": ["GET", "get", "FOO"], "upstream_id": 1})),
        [
            "methods[1]: matches none of the enum values, got \"get\"",
            "methods[2]: matches none of the enum values, got \"FOO\"",
        ]
    );
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "methods": ["GET", "GET"], "upstream_id": 1})),
        ["property \"methods\" validation failed: expected unique items but items 1 and 2 are equal"]
    );
}

#[test]
fn status_and_priority() {
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "status": 2, "priority": 1.5, "upstream_id": 1})),
        [
            "property \"status\" validation failed: matches none of the enum values, got 2",
            "property \"priority\" validation failed: wrong type: expected integer, got number",
        ]
    );
}

#[test]
fn unsupported_matching_is_refused() {
    assert_eq!(
        errors(json!({
            "id": 1, "uri": "/", "upstream_id": 1,
            "vars": [["arg_a", "==", "1"]], "remote_addrs": ["10.0.0.0/8"], "timeout": {}
        })),
        [
            "property \"remote_addrs\" is not supported yet",
            "property \"vars\" is not supported yet",
            "property \"timeout\" is not supported yet",
        ]
    );
}

#[test]
fn plugins_are_checked() {
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "plugins": {"jwt-auth": {}}})),
        ["unknown plugin [jwt-auth]"]
    );
    let v = json!({"id": 1, "uri": "/", "plugins": {"a": {"bad": 1}, "b": []}});
    assert_eq!(
        Route::from_json(&v, None, &AnyPlugin)
            .expect_err("invalid")
            .0,
        [
            "failed to check the configuration of plugin a err: bad",
            "invalid plugin conf [] for plugin [b]",
        ]
    );
    // A plugins-only route is valid, as in APISIX.
    let v = json!({"id": 1, "uri": "/", "plugins": {"a": {}}});
    assert!(Route::from_json(&v, None, &AnyPlugin).is_ok());
}

#[test]
fn a_route_must_lead_somewhere() {
    assert_eq!(
        errors(json!({"id": 1, "uri": "/"})),
        ["one of \"plugins\", \"upstream\", \"upstream_id\" or \"service_id\" is required"]
    );
}

#[test]
fn ids() {
    assert_eq!(
        errors(json!({"uri": "/", "upstream_id": 1})),
        ["missing route id"]
    );
    let r = Route::from_json(
        &json!({"uri": "/", "upstream_id": 1}),
        Some("7"),
        &NoPlugins,
    )
    .expect("the path gives the id");
    assert_eq!(r.id, "7");
    let err = Route::from_json(
        &json!({"id": 8, "uri": "/", "upstream_id": 1}),
        Some("7"),
        &NoPlugins,
    )
    .expect_err("mismatch");
    assert_eq!(err.0, ["wrong route id"]);
    assert_eq!(
        errors(json!({"id": 1, "uri": "/", "upstream_id": "a b", "service_id": 0})),
        [
            "property \"upstream_id\" validation failed: failed to match pattern \"^[a-zA-Z0-9-_.]+$\" with \"a b\"",
            "property \"service_id\" validation failed: expected 0 to be at least 1",
        ]
    );
}

#[test]
fn nested_upstream_errors_carry_their_path() {
    let errs = errors(json!({
        "id": 1, "uri": "/",
        "upstream": {"nodes": {"a:99999": 1}, "timeout": {"connect": 0, "send": 1, "read": 1}}
    }));
    assert_eq!(
        errs,
        [
            "upstream.nodes[\"a:99999\"]: invalid port 99999",
            "upstream.timeout: property \"connect\" validation failed: expected 0 to be greater than 0",
        ]
    );
}

#[test]
fn everything_wrong_at_once() {
    let errs = errors(json!({
        "id": "bad id",
        "uri": 1,
        "name": "",
        "methods": "GET",
        "labels": {"a": ""},
        "enable_websocket": 1,
        "extra": true
    }));
    assert_eq!(errs.len(), 8, "{errs:#?}");
    assert_eq!(errs[0], "additional properties forbidden, found extra");
    let joined = ValidationErrors(errs).to_string();
    assert!(joined.starts_with("additional properties forbidden, found extra; property \"id\""));
}
