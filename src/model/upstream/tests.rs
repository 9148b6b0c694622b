use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn errors(v: Value) -> Vec<String> {
    Upstream::from_json(&v, None)
        .expect_err("the upstream is invalid")
        .0
}

#[test]
fn minimal_upstream_takes_the_defaults() {
    let up = Upstream::from_json(&json!({"nodes": {"127.0.0.1:1980": 1}}), None).expect("valid");
    assert_eq!(up.id, None);
    assert_eq!(up.lb, LbType::RoundRobin);
    assert_eq!(up.scheme, Scheme::Http);
    assert_eq!(up.pass_host, PassHost::Pass);
    assert_eq!(up.timeout, UpstreamTimeout::default());
    assert_eq!(up.timeout.read, Duration::from_secs(60));
    assert_eq!(up.keepalive_pool, KeepalivePool::default());
    assert_eq!(up.retries, None);
    assert_eq!(up.retries_or_default(), 0);
    assert_eq!(up.retry_timeout, None);
    assert_eq!(up.nodes.len(), 1);
}

#[test]
fn every_supported_field() {
    let v = json!({
        "id": 1,
        "name": "backend",
        "desc": "the backend",
        "labels": {"env": "prod"},
        "type": "roundrobin",
        "scheme": "http",
        "nodes": [{"host": "10.0.0.1", "port": 8080, "weight": 3}],
        "pass_host": "rewrite",
        "upstream_host": "internal.example.com",
        "timeout": {"connect": 0.5, "send": 2, "read": 3},
        "retries": 2,
        "retry_timeout": 5,
        "keepalive_pool": {"size": 10, "idle_timeout": 0, "requests": 5},
        "hash_on": "vars",
        "checks": {"active": {}},
        "create_time": 1700000000,
        "update_time": 1700000000
    });
    let up = Upstream::from_json(&v, Some("1")).expect("valid");
    assert_eq!(up.id.as_deref(), Some("1"));
    assert_eq!(up.name.as_deref(), Some("backend"));
    assert_eq!(up.labels["env"], "prod");
    assert_eq!(
        up.pass_host,
        PassHost::Rewrite("internal.example.com".into())
    );
    assert_eq!(
        up.timeout,
        UpstreamTimeout {
            connect: Duration::from_millis(500),
            send: Duration::from_secs(2),
            read: Duration::from_secs(3),
        }
    );
    assert_eq!(up.retries, Some(2));
    assert_eq!(up.retry_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        up.keepalive_pool,
        KeepalivePool {
            size: 10,
            idle_timeout: Duration::ZERO,
            requests: 5
        }
    );
    assert_eq!(up.nodes[0].port, 8080);
}

#[test]
fn zero_retry_timeout_means_no_limit() {
    let up = Upstream::from_json(&json!({"nodes": {}, "retry_timeout": 0}), None).expect("valid");
    assert_eq!(up.retry_timeout, None);
    assert!(up.nodes.is_empty());
}

#[test]
fn retries_default_to_one_per_other_node() {
    let up = Upstream::from_json(&json!({"nodes": {"a": 1, "b": 1, "c": 1}}), None).expect("valid");
    assert_eq!(up.retries_or_default(), 2);
}

#[test]
fn nodes_are_required() {
    assert_eq!(
        errors(json!({"type": "roundrobin"})),
        ["property \"nodes\" is required"]
    );
}

#[test]
fn unsupported_features_are_refused() {
    assert_eq!(
        errors(json!({"type": "chash", "scheme": "grpcs", "nodes": {}})),
        [
            "property \"type\" validation failed: type \"chash\" is not supported yet",
            "property \"scheme\" validation failed: scheme \"grpcs\" is not supported yet",
        ]
    );
    assert_eq!(
        errors(json!({"service_name": "a", "discovery_type": "dns"})),
        ["service discovery (\"service_name\", \"discovery_type\") is not supported yet"]
    );
}

#[test]
fn unknown_values_and_fields() {
    assert_eq!(
        errors(json!({"type": "random", "foo": 1, "nodes": {}})),
        [
            "additional properties forbidden, found foo",
            "property \"type\" validation failed: matches none of the enum values, got \"random\"",
        ]
    );
    assert_eq!(
        errors(json!({"hash_on": "ip", "checks": 1, "nodes": {}})),
        [
            "property \"hash_on\" validation failed: matches none of the enum values, got \"ip\"",
            "property \"checks\" validation failed: wrong type: expected object, got number",
        ]
    );
}

#[test]
fn rewrite_needs_a_host() {
    assert_eq!(
        errors(json!({"pass_host": "rewrite", "nodes": {}})),
        ["`upstream_host` can't be empty when `pass_host` is `rewrite`"]
    );
    let up = Upstream::from_json(&json!({"pass_host": "node", "nodes": {}}), None).expect("valid");
    assert_eq!(up.pass_host, PassHost::Node);
}

#[test]
fn timeouts_must_be_positive_and_complete() {
    assert_eq!(
        errors(json!({"nodes": {}, "timeout": {"connect": 0, "send": -1}})),
        [
            "timeout: property \"connect\" validation failed: expected 0 to be greater than 0",
            "timeout: property \"send\" validation failed: expected -1 to be greater than 0",
            "timeout: property \"read\" is required",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errs = errors(json!({
        "id": "a b",
        "name": "",
        "nodes": {"127.0.0.1:0": 1},
        "retries": -1,
        "keepalive_pool": {"size": 0}
    }));
    assert_eq!(
        errs,
        [
            "property \"id\" validation failed: failed to match pattern \"^[a-zA-Z0-9-_.]+$\" with \"a b\"",
            "property \"name\" validation failed: string too short, expected at least 1, got 0",
            "nodes[\"127.0.0.1:0\"]: invalid port 0",
            "property \"retries\" validation failed: expected -1 to be at least 0",
            "keepalive_pool: property \"size\" validation failed: expected 0 to be at least 1",
        ]
    );
}

#[test]
fn id_in_path_and_body_must_agree() {
    let err =
        Upstream::from_json(&json!({"id": "a", "nodes": {}}), Some("b")).expect_err("mismatch");
    assert_eq!(err.to_string(), "wrong upstream id");
}

#[test]
fn not_an_object() {
    assert_eq!(
        errors(json!([])),
        ["wrong type: expected object, got array"]
    );
}

fn https(tls: Value) -> Result<Upstream, Vec<String>> {
    let v = json!({"scheme": "https", "nodes": {"127.0.0.1": 1, "backend:8443": 1}, "tls": tls});
    Upstream::from_json(&v, None).map_err(|e| e.0)
}

fn client_pair() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["client.test".to_owned()]).expect("rcgen");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

#[test]
fn https_defaults_to_port_443_and_verification() {
    let up = Upstream::from_json(
        &json!({"scheme": "https", "nodes": {"127.0.0.1": 1, "[::1]:8443": 1}}),
        None,
    )
    .expect("valid");
    assert_eq!(up.scheme, Scheme::Https);
    assert_eq!(up.nodes[0].port, 443);
    assert_eq!(up.nodes[1].port, 8443);
    assert!(up.tls.verify(), "verification is on unless turned off");
    assert_eq!(up.tls.client_cert, None);
}

#[test]
fn tls_verify_and_client_certificate() {
    let off = https(json!({"verify": false, "other": 1})).expect("valid");
    assert!(!off.tls.verify());
    let (cert, key) = client_pair();
    let up = https(json!({"client_cert": cert, "client_key": key})).expect("valid");
    let cc = up.tls.client_cert.as_ref().expect("a client certificate");
    assert_eq!(cc.chain.len(), 1);
    assert!(up.tls.verify());
    assert!(
        !format!("{up:?}").contains("PRIVATE KEY"),
        "Debug never shows the key"
    );
}

#[test]
fn bad_tls_objects_are_refused_with_their_path() {
    let (cert, key) = client_pair();
    let (_, other_key) = client_pair();
    assert_eq!(
        https(json!("on")).unwrap_err(),
        ["property \"tls\" validation failed: wrong type: expected object, got string"]
    );
    assert_eq!(
        https(json!({"verify": "yes"})).unwrap_err(),
        ["tls: property \"verify\" validation failed: wrong type: expected boolean, got string"]
    );
    assert_eq!(
        https(json!({"client_cert": cert})).unwrap_err(),
        ["tls: property \"client_key\" is required when \"client_cert\" is set"]
    );
    assert_eq!(
        https(json!({"client_key": key})).unwrap_err(),
        ["tls: property \"client_cert\" is required when \"client_key\" is set"]
    );
    assert_eq!(
        https(json!({"client_cert": "short", "client_key": key})).unwrap_err(),
        ["tls: property \"client_cert\" validation failed: string too short, expected at least 128, got 5"]
    );
    let e = https(json!({"client_cert": "x".repeat(200), "client_key": key})).unwrap_err();
    assert_eq!(e, ["tls: client_cert: no certificate in the PEM text"]);
    let e = https(json!({"client_cert": cert, "client_key": "y".repeat(100)})).unwrap_err();
    assert!(e[0].starts_with("tls: client_key: no private key"), "{e:?}");
    let e = https(json!({"client_cert": cert, "client_key": other_key})).unwrap_err();
    assert!(
        e[0].starts_with("tls: client_cert and client_key: "),
        "{e:?}"
    );
    assert!(!e[0].contains("PRIVATE"), "{e:?}");
    assert_eq!(
        https(json!({"client_cert_id": "1"})).unwrap_err(),
        ["tls: property \"client_cert_id\" is not supported yet: give client_cert and client_key"]
    );
}

#[test]
fn tls_is_checked_but_unused_on_http_upstreams() {
    let up = Upstream::from_json(
        &json!({"nodes": {"127.0.0.1": 1}, "tls": {"verify": false}}),
        None,
    )
    .expect("valid");
    assert_eq!(up.scheme, Scheme::Http);
    assert_eq!(up.nodes[0].port, 80);
    assert!(Upstream::from_json(&json!({"nodes": {}, "tls": {"verify": 1}}), None).is_err());
}
