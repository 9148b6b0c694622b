use std::path::Path;

use serde_json::Value;

use super::*;
use crate::model::{NoPlugins, UriPattern};

fn parse(text: &str) -> ConfigSet {
    parse_standalone(text, false, &NoPlugins).expect("the file is valid")
}

fn errors(text: &str) -> Vec<String> {
    parse_standalone(text, false, &NoPlugins)
        .expect_err("the file is invalid")
        .0
}

const EXAMPLE: &str = r#"
routes:
  - id: 1
    uri: /hello
    upstream_id: 1
  - id: r2
    uris: [/api/*]
    hosts: [api.example.com]
    service_id: s1
services:
  - id: s1
    upstream:
      nodes:
        "127.0.0.1:1981": 1
upstreams:
  - id: 1
    nodes: { "127.0.0.1:1980": 1 }
    type: roundrobin
consumers:
  - username: jack
#END
"#;

#[test]
fn the_apisix_example() {
    let set = parse(EXAMPLE);
    assert_eq!(set.routes.len(), 2);
    assert_eq!(set.routes[0].id, "1");
    assert_eq!(set.routes[1].uris, [UriPattern::Prefix("/api/".into())]);
    assert_eq!(set.services[0].id, "s1");
    assert_eq!(set.upstreams[0].id.as_deref(), Some("1"));
    assert_eq!(set.upstreams[0].nodes[0].port, 1980);
    assert_eq!(set.consumers[0].username, "jack");
}

#[test]
fn json_is_read_too() {
    let text = r#"{"routes": [{"id": 1, "uri": "/", "upstream": {"nodes": {"a:1": 1}}}]}"#;
    assert_eq!(parse(text).routes.len(), 1);
    let padded = format!("\n  {text}");
    let set = parse_standalone(&padded, true, &NoPlugins).expect("valid");
    assert_eq!(set.routes.len(), 1);
    let err = parse_standalone("routes: []", true, &NoPlugins).expect_err("not JSON");
    assert!(err.0[0].starts_with("invalid JSON: "), "{err}");
    // A YAML flow mapping starts with `{` too.
    assert_eq!(
        parse("{routes: [{id: 1, uri: /, upstream_id: 1}], upstreams: [{id: 1, nodes: {}}]}")
            .routes
            .len(),
        1
    );
    let err = errors("{\"routes\": [}");
    assert_eq!(err.len(), 1);
    assert!(err[0].starts_with("invalid JSON: "), "{err:?}");
}

#[test]
fn empty_files_and_sections() {
    assert_eq!(parse(""), ConfigSet::default());
    assert_eq!(parse("#END\n"), ConfigSet::default());
    assert_eq!(
        parse("routes:\nservices: []\nssls: []\n#END"),
        ConfigSet::default()
    );
    assert_eq!(parse("{}"), ConfigSet::default());
}

#[test]
fn syntax_errors() {
    let err = errors("routes: [\n");
    assert_eq!(err.len(), 1);
    assert!(err[0].starts_with("invalid YAML: "), "{err:?}");
    assert_eq!(errors("- 1\n"), ["wrong type: expected object, got array"]);
    assert_eq!(
        errors("routes: {}\n"),
        ["property \"routes\" validation failed: wrong type: expected array, got object"]
    );
}

#[test]
fn top_level_keys() {
    assert_eq!(
        errors("route: []\nplugin_configs:\n  - id: 1\n    plugins: {}\nplugins: []\n"),
        [
            "property \"plugin_configs\" is not supported yet",
            "additional properties forbidden, found route",
        ]
    );
}

#[test]
fn every_error_of_every_object_at_once() {
    let errs = errors(
        r#"
routes:
  - id: 1
    uri: /a
    upstream_id: 1
  - id: 7
    uri: 5
    upstream:
      nodes: {}
      timeout: { connect: 0, send: 1, read: 1 }
upstreams:
  - id: 1
    nodes: { "a:0": 1 }
consumers:
  - username: "bad name"
"#,
    );
    assert_eq!(
        errs,
        [
            "routes[1] (id 7): property \"uri\" validation failed: wrong type: expected string, got number",
            "routes[1] (id 7): upstream.timeout: property \"connect\" validation failed: expected 0 to be greater than 0",
            "upstreams[0] (id 1): nodes[\"a:0\"]: invalid port 0",
            "consumers[0] (username bad name): property \"username\" validation failed: failed to match pattern \"^[a-zA-Z0-9_\\\\-]+$\" with \"bad name\"",
        ]
    );
}

#[test]
fn duplicate_ids() {
    let errs = errors(
        r#"
routes:
  - { id: 1, uri: /a, upstream_id: u }
  - { id: "1", uri: /b, upstream_id: u }
upstreams:
  - { id: u, nodes: {} }
  - { id: u, nodes: {} }
consumers:
  - username: jack
  - username: jack
"#,
    );
    assert_eq!(
        errs,
        [
            "routes[1] (id 1): duplicate id, also used by routes[0] (id 1)",
            "upstreams[1] (id u): duplicate id, also used by upstreams[0] (id u)",
            "consumers[1] (username jack): duplicate username, also used by consumers[0] (username jack)",
        ]
    );
}

#[test]
fn references_must_exist() {
    let errs = errors(
        r#"
routes:
  - { id: 1, uri: /a, upstream_id: 9 }
  - { id: 2, uri: /b, service_id: nope }
  - { id: 3, uri: /c, service_id: s1 }
  - { id: 4, uri: /d, plugins: {} }
services:
  - { id: s1 }
  - { id: s2, upstream_id: 9 }
consumers:
  - { username: jack, group_id: gold }
"#,
    );
    assert_eq!(
        errs,
        [
            "services[1] (id s2): upstream_id \"9\" not found",
            "routes[0] (id 1): upstream_id \"9\" not found",
            "routes[1] (id 2): service_id \"nope\" not found",
            "routes[2] (id 3): no upstream: set upstream, upstream_id or service_id (service \"s1\" has none)",
            "routes[3] (id 4): no upstream: set upstream, upstream_id or service_id",
            "consumers[0] (username jack): group_id \"gold\" not found: consumer groups are not supported yet",
        ]
    );
}

#[test]
fn an_invalid_target_is_not_blamed_twice() {
    // The upstream and the service are wrong; the routes that use them are not reported again.
    let errs = errors(
        r#"
routes:
  - { id: 1, uri: /a, upstream_id: 1 }
  - { id: 2, uri: /b, service_id: s }
services:
  - { id: s, upstream: { nodes: 1 } }
upstreams:
  - { id: 1, nodes: { "a:0": 1 } }
"#,
    );
    assert_eq!(
        errs,
        [
            "services[0] (id s): upstream.nodes: wrong type: expected object or array, got number",
            "upstreams[0] (id 1): nodes[\"a:0\"]: invalid port 0",
        ]
    );
}

#[test]
fn items_without_an_id_are_numbered_as_in_apisix() {
    let set = parse(
        r#"
routes:
  - { uri: /a, upstream_id: arr_1 }
upstreams:
  - { nodes: {} }
"#,
    );
    assert_eq!(set.routes[0].id, "arr_1");
    assert_eq!(set.upstreams[0].id.as_deref(), Some("arr_1"));
}

#[test]
fn plugins_go_through_the_registry() {
    let errs = errors(
        r#"
routes:
  - id: 1
    uri: /a
    upstream_id: 1
    plugins:
      jwt-auth: {}
upstreams:
  - { id: 1, nodes: {} }
"#,
    );
    assert_eq!(errs, ["routes[0] (id 1): unknown plugin [jwt-auth]"]);
}

#[test]
fn files_are_read_and_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("portcullis-standalone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("apisix.json");
    std::fs::write(&json, r#"{"upstreams": [{"id": 1, "nodes": {}}]}"#).expect("write");
    let set = load_standalone_file(&json, &NoPlugins).expect("valid");
    assert_eq!(set.upstreams.len(), 1);
    let yaml = dir.join("apisix.yaml");
    std::fs::write(&yaml, EXAMPLE).expect("write");
    assert_eq!(
        load_standalone_file(&yaml, &NoPlugins)
            .expect("valid")
            .routes
            .len(),
        2
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");

    let missing = Path::new("/nonexistent/apisix.yaml");
    let err = load_standalone_file(missing, &NoPlugins).expect_err("no such file");
    assert_eq!(err.0.len(), 1);
    assert!(
        err.0[0].starts_with("failed to read config file /nonexistent/apisix.yaml: "),
        "{err}"
    );
}

#[test]
fn yaml_scalars_become_json_values() {
    let doc: Value = serde_norway::from_str("a: 1\nb: 0.5\nc: yes\nd: true\n").expect("yaml");
    assert_eq!(doc["a"], 1);
    assert_eq!(doc["b"], 0.5);
    assert_eq!(doc["d"], true);
}
