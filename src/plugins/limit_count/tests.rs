//! `limit-count` against the reference (APISIX §1–§7), `local` policy.

use serde_json::json;

use super::*;
use crate::plugins::phase::{Ctx, Edits, Text};
use crate::plugins::testing::{hs256, index, ready, Raw};
use crate::plugins::token_cache::TokenCache;
use crate::plugins::{Chain, Env};

const FACTS: Facts<'static> = Facts {
    route_id: "1",
    service_id: None,
    server_port: 9080,
    scheme: "http",
};

fn hit(
    conf: &LimitConf,
    counters: &Counters,
    raw: &Raw,
    now_ms: u64,
) -> (Result<(), Reply>, Edits) {
    let ctx = Ctx {
        now: (now_ms / 1000) as i64,
        now_ms,
        ..Ctx::default()
    };
    let mut edits = Edits::default();
    let r = access(conf, &raw.req(), counters, &FACTS, &ctx, &mut edits);
    (r, edits)
}

fn header<'a, V: std::ops::Deref<Target = str>>(
    h: &'a [(&'static str, V)],
    name: &str,
) -> Option<&'a str> {
    h.iter().find(|(n, _)| *n == name).map(|(_, v)| &**v)
}

#[test]
fn schema_messages() {
    let e = |v: serde_json::Value| check(&v).unwrap_err();
    assert_eq!(
        e(json!({"time_window": 60})),
        "value should match only one schema, but matches none"
    );
    assert_eq!(
        e(json!({"count": 0, "time_window": 60})),
        "property \"count\" validation failed: value should match only one schema, but matches none"
    );
    assert_eq!(
        e(json!({"count": -100, "time_window": 60})),
        "property \"count\" validation failed: value should match only one schema, but matches none"
    );
    assert_eq!(
        e(json!({"count": 1, "time_window": 0})),
        "property \"time_window\" validation failed: value should match only one schema, but matches none"
    );
    assert_eq!(
        e(json!({"count": 1, "time_window": 1, "rejected_msg": true})),
        "property \"rejected_msg\" validation failed: wrong type: expected string, got boolean"
    );
    assert_eq!(
        e(json!({"count": 1, "time_window": 1, "rejected_msg": ""})),
        "property \"rejected_msg\" validation failed: string too short, expected at least 1, got 0"
    );
    assert!(check(&json!({"count": 1, "time_window": 1, "rejected_code": 600})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "key_type": "nope"})).is_err());
    // Not supported yet: refused, never silently ignored.
    for unsupported in [
        json!({"count": 1, "time_window": 1, "policy": "redis-cluster", "redis_cluster_nodes": ["127.0.0.1:7000"], "redis_cluster_name": "c"}),
        json!({"count": 1, "time_window": 1, "policy": "redis-sentinel"}),
        json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_ssl": true}),
        json!({"count": 1, "time_window": 10, "policy": "redis", "redis_host": "127.0.0.1", "sync_interval": 1}),
        json!({"count": 1, "time_window": 1, "window_type": "sliding"}),
        json!({"rules": [{"count": 1, "time_window": 1, "key": "$remote_addr"}]}),
        json!({"count": "$http_count", "time_window": 1}),
    ] {
        let err = check(&unsupported).unwrap_err();
        assert!(err.contains("not supported yet"), "{err}");
    }
    let c = compile(&json!({"count": 3, "time_window": 30}), "/apisix/routes/1").unwrap();
    assert_eq!(
        (c.rejected_code, c.key_type, c.key.as_str()),
        (503, KeyType::Var, "remote_addr")
    );
    assert!(c.show_limit_quota_header);
}

#[test]
fn quota_headers_and_rejection() {
    let conf = compile(
        &json!({"count": 2, "time_window": 60, "rejected_code": 429}),
        "/apisix/routes/1",
    )
    .unwrap();
    let c = Counters::new();
    let raw = Raw::get("/", &[]);
    let (r, e) = hit(&conf, &c, &raw, 1_000);
    assert!(r.is_ok());
    assert_eq!(header(&e.respond, "X-RateLimit-Limit"), Some("2"));
    assert_eq!(header(&e.respond, "X-RateLimit-Remaining"), Some("1"));
    assert_eq!(header(&e.respond, "X-RateLimit-Reset"), Some("60"));
    let (r, e) = hit(&conf, &c, &raw, 2_500);
    assert!(r.is_ok());
    assert_eq!(header(&e.respond, "X-RateLimit-Remaining"), Some("0"));
    assert_eq!(header(&e.respond, "X-RateLimit-Reset"), Some("58.5"));
    let (r, _) = hit(&conf, &c, &raw, 3_000);
    let reply = r.unwrap_err();
    assert_eq!(reply.status, 429);
    assert_eq!(header(&reply.headers, "X-RateLimit-Remaining"), Some("0"));
    assert_eq!(header(&reply.headers, "X-RateLimit-Limit"), Some("2"));
    assert_eq!(
        reply.body,
        json!({"error_msg": "Too Many Requests"}).to_string()
    );
    // The window ends 60 s after the first hit.
    assert!(hit(&conf, &c, &raw, 61_000).0.is_ok());
}

#[test]
fn rejected_msg_and_hidden_headers() {
    let conf = compile(
        &json!({"count": 1, "time_window": 60, "rejected_msg": "slow down", "show_limit_quota_header": false}),
        "/apisix/routes/1",
    )
    .unwrap();
    let c = Counters::new();
    let raw = Raw::get("/", &[]);
    let (r, e) = hit(&conf, &c, &raw, 0);
    assert!(r.is_ok() && e.respond.is_empty());
    let reply = hit(&conf, &c, &raw, 0).0.unwrap_err();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, json!({"error_msg": "slow down"}).to_string());
    assert!(reply.headers.is_empty());
}

#[test]
fn keys_scope_the_counter() {
    let c = Counters::new();
    let by_header = compile(
        &json!({"count": 1, "time_window": 60, "key": "http_x_api_key"}),
        "/apisix/routes/1",
    )
    .unwrap();
    let a = Raw::get("/", &["X-Api-Key: a"]);
    let b = Raw::get("/", &["X-Api-Key: b"]);
    assert!(hit(&by_header, &c, &a, 0).0.is_ok());
    assert!(hit(&by_header, &c, &b, 0).0.is_ok());
    assert!(hit(&by_header, &c, &a, 0).0.is_err());
    // A missing variable falls back to the client address.
    let none = Raw::get("/", &[]);
    assert!(hit(&by_header, &c, &none, 0).0.is_ok());
    assert!(hit(&by_header, &c, &none, 0).0.is_err());

    // The same conf on another route has its own counter; a changed conf a fresh one.
    let r2 = compile(
        &json!({"count": 1, "time_window": 60, "key": "http_x_api_key"}),
        "/apisix/routes/2",
    )
    .unwrap();
    assert!(hit(&r2, &c, &a, 0).0.is_ok());
    let changed = compile(
        &json!({"count": 1, "time_window": 61, "key": "http_x_api_key"}),
        "/apisix/routes/1",
    )
    .unwrap();
    assert!(hit(&changed, &c, &a, 0).0.is_ok());
    let same = compile(
        &json!({"key": "http_x_api_key", "time_window": 60, "count": 1}),
        "/apisix/routes/1",
    )
    .unwrap();
    assert!(
        hit(&same, &c, &a, 0).0.is_err(),
        "an identical conf keeps its counter"
    );

    // `group` shares one counter between routes; `constant` keys literally.
    let g1 = compile(
        &json!({"count": 1, "time_window": 60, "group": "g", "key_type": "constant", "key": "all"}),
        "/apisix/routes/1",
    )
    .unwrap();
    let g2 = compile(
        &json!({"count": 1, "time_window": 60, "group": "g", "key_type": "constant", "key": "all"}),
        "/apisix/routes/2",
    )
    .unwrap();
    assert!(hit(&g1, &c, &a, 0).0.is_ok());
    assert!(hit(&g2, &c, &b, 0).0.is_err());
}

/// Seed 000/001: the consumer's own limit-count replaces the route's after authentication, a
/// quota per consumer, and the anonymous consumer gets its own.
#[test]
fn consumer_quotas_merge_after_authentication() {
    let idx = index(&[
        (
            json!({"username": "johndoe", "plugins": {"limit-count": {"count": 1, "time_window": 30, "rejected_code": 429}}}),
            vec![(
                "john",
                json!({"jwt-auth": {"key": "john-key", "secret": "john-secret"}}),
            )],
        ),
        (
            json!({"username": "janedoe", "plugins": {"limit-count": {"count": 2, "time_window": 30, "rejected_code": 429}}}),
            vec![(
                "jane",
                json!({"jwt-auth": {"key": "jane-key", "secret": "jane-secret"}}),
            )],
        ),
        (
            json!({"username": "anonymous", "plugins": {"limit-count": {"count": 1, "time_window": 30, "rejected_code": 429}}}),
            vec![],
        ),
    ]);
    let route_plugins = json!({"jwt-auth": {"anonymous_consumer": "anonymous"}, "limit-count": {"count": 100, "time_window": 30}});
    let chain = Chain::compile(
        &[],
        &[(
            "/apisix/routes/r".into(),
            route_plugins.as_object().unwrap(),
        )],
    )
    .unwrap();
    let counters = Counters::new();
    let pools = Pools::new();
    let cache = TokenCache::new(100);
    let env = Env {
        index: &idx,
        counters: &counters,
        redis: &pools,
        cache: &cache,
        facts: FACTS,
    };
    let run = |raw: &Raw| {
        let mut ctx = Ctx {
            now: 1_800_000_000,
            now_ms: 1_800_000_000_000,
            ..Ctx::default()
        };
        let mut edits = Edits::default();
        ready(chain.access(&raw.req(), &env, &mut ctx, &mut edits))
            .map(|_| ())
            .map_err(|r| r.status)
    };
    let john = Raw::get(
        "/",
        &[&format!(
            "Authorization: {}",
            hs256(b"john-secret", &json!({"key": "john-key"}))
        )],
    );
    let jane = Raw::get(
        "/",
        &[&format!(
            "Authorization: {}",
            hs256(b"jane-secret", &json!({"key": "jane-key"}))
        )],
    );
    let anon = Raw::get("/", &[]);
    let statuses = |raw: &Raw, n: usize| {
        (0..n)
            .map(|_| run(raw).err().unwrap_or(200))
            .collect::<Vec<u16>>()
    };
    assert_eq!(statuses(&john, 3), [200, 429, 429]);
    assert_eq!(statuses(&jane, 3), [200, 200, 429]);
    assert_eq!(statuses(&anon, 5), [200, 429, 429, 429, 429]);
}

#[test]
fn global_rule_limit_runs_in_addition() {
    let idx = index(&[]);
    let global =
        json!({"limit-count": {"count": 2, "time_window": 60, "key_type": "constant", "key": "k"}});
    let route =
        json!({"limit-count": {"count": 1, "time_window": 60, "key_type": "constant", "key": "k"}});
    let chain = Chain::compile(
        &[("/apisix/global_rules/1".into(), global.as_object().unwrap())],
        &[("/apisix/routes/r".into(), route.as_object().unwrap())],
    )
    .unwrap();
    let counters = Counters::new();
    let pools = Pools::new();
    let cache = TokenCache::new(100);
    let env = Env {
        index: &idx,
        counters: &counters,
        redis: &pools,
        cache: &cache,
        facts: FACTS,
    };
    let raw = Raw::get("/", &[]);
    let go = || {
        let mut ctx = Ctx::default();
        let mut edits = Edits::default();
        ready(chain.access(&raw.req(), &env, &mut ctx, &mut edits)).is_ok()
    };
    assert!(go());
    assert!(!go(), "the route's quota of 1 applies too");
}

#[test]
fn redis_conf_rules() {
    let e = |v: serde_json::Value| check(&v).unwrap_err();
    // APISIX's `if policy == redis then required redis_host`.
    assert_eq!(
        e(json!({"count": 1, "time_window": 1, "policy": "redis"})),
        "then clause did not match"
    );
    assert_eq!(
        e(json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "a"})),
        "property \"redis_host\" validation failed: string too short, expected at least 2, got 1"
    );
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 0})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_database": -1})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_timeout": 0})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_keepalive_timeout": 999})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_username": ""})).is_err());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_ssl": false})).is_ok());
    assert!(check(&json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "sync_interval": -1})).is_ok());
    // Redis fields under another policy are not validated (no additionalProperties: false).
    assert!(check(&json!({"count": 1, "time_window": 1, "redis_port": "x"})).is_ok());
    let err = e(
        json!({"count": 1, "time_window": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_ssl": true}),
    );
    assert!(err.contains("redis_ssl is not supported yet"), "{err}");

    let c = compile(
        &json!({"count": 5, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1"}),
        "/apisix/routes/1",
    )
    .unwrap();
    assert!(!c.allow_degradation);
    let r = c.redis.as_deref().unwrap();
    assert_eq!(
        (
            r.port,
            r.database,
            r.timeout.as_millis(),
            r.keepalive_timeout.as_millis(),
            r.keepalive_pool
        ),
        (6379, 0, 1000, 10_000, 100)
    );
    assert_eq!((r.username.as_deref(), r.password.as_deref()), (None, None));
    let c = resolve(
        compile(
            &json!({"count": 5, "time_window": 60, "policy": "redis", "redis_host": "127.0.0.1",
                "redis_port": 6380, "redis_database": 2, "redis_username": "u", "redis_password": "p",
                "redis_timeout": 50, "redis_keepalive_pool": 3, "allow_degradation": true}),
            "/apisix/routes/1",
        )
        .unwrap(),
    );
    assert!(c.allow_degradation);
    let r = c.redis.as_deref().unwrap();
    assert_eq!(r.addr, Some("127.0.0.1:6380".parse().unwrap()));
    assert_eq!(
        (r.database, r.timeout.as_millis(), r.keepalive_pool),
        (2, 50, 3)
    );
    assert_eq!(
        (r.username.as_deref(), r.password.as_deref()),
        (Some("u"), Some("p"))
    );
    assert!(compile(&json!({"count": 1, "time_window": 1}), "r")
        .unwrap()
        .redis
        .is_none());
}

#[test]
fn redis_script_and_resp() {
    use redis_protocol::resp2::types::OwnedFrame;
    // SHA-1 of APISIX's script text, as `redis-cli SCRIPT LOAD` prints it.
    let sha = redis::script_sha();
    assert_eq!(sha.len(), 40);
    assert!(sha
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(sha, redis::script_sha(), "computed once");
    let mut out = Vec::new();
    redis::encode_command(&mut out, &[b"EVALSHA", sha.as_bytes(), b"1", b"k", b"5"]);
    assert_eq!(
        out,
        format!("*5\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n5\r\n")
            .into_bytes()
    );
    // First hit: the script returns ARGV[3] (a string) and window*1000 (a number).
    let first = OwnedFrame::Array(vec![
        OwnedFrame::BulkString(b"1".to_vec()),
        OwnedFrame::Integer(60_000),
    ]);
    assert_eq!(redis::script_result(&first), Ok((1, 60_000)));
    let later = OwnedFrame::Array(vec![OwnedFrame::Integer(6), OwnedFrame::Integer(41_234)]);
    assert_eq!(redis::script_result(&later), Ok((6, 41_234)));
    assert_eq!(
        redis::script_result(&OwnedFrame::Error("NOSCRIPT No matching script".into())),
        Err("NOSCRIPT No matching script".into())
    );
    assert!(redis::script_result(&OwnedFrame::Integer(1)).is_err());
    assert!(redis::script_result(&OwnedFrame::Array(vec![
        OwnedFrame::Null,
        OwnedFrame::Integer(1)
    ]))
    .is_err());
}

#[test]
fn reset_seconds_print_like_apisix_without_allocating() {
    for (s, want) in [
        (60.0, "60"),
        (1.5, "1.5"),
        (0.25, "0.25"),
        (0.05, "0.05"),
        (1.999, "2"),
        (29.9, "29.9"),
    ] {
        let t = seconds(s);
        assert_eq!(t.as_str(), want, "{s}");
        assert!(matches!(t, Text::Inline(..)), "{s} should be inline");
    }
    let max = Text::short(format_args!("{}", u64::MAX));
    assert_eq!(max.as_str(), "18446744073709551615");
    assert!(matches!(max, Text::Inline(..)));
    let long = Text::short(format_args!("{}", "x".repeat(40)));
    assert_eq!(long.as_str().len(), 40);
    assert!(matches!(long, Text::Owned(_)));
}
