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
        errors(json!({"type": "chash", "scheme": "https", "nodes": {}})),
        [
            "property \"type\" validation failed: type \"chash\" is not supported yet",
            "property \"scheme\" validation failed: scheme \"https\" is not supported yet",
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
