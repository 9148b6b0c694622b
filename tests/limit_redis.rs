//! `limit-count` policy `redis` end to end: real gateway processes sharing one real
//! `redis-server` (started here on a free loopback port; the test is skipped with a message only
//! when the binary is missing).

mod common;

use std::time::{Duration, Instant};

use common::client::{request, Response};
use common::redis::Redis;
use common::upstream::Upstream;
use common::{Gateway, GatewayOpts, ADMIN_KEY};
use serde_json::{json, Value};

fn admin_mode() -> Gateway {
    Gateway::start(GatewayOpts {
        standalone: None,
        ..Default::default()
    })
}

fn put(gw: &Gateway, path: &str, body: Value) {
    let body = body.to_string();
    let raw = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = request(gw.admin_addr(), raw.as_bytes());
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
}

fn get(gw: &Gateway, path: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    request(gw.addr(), raw.as_bytes())
}

/// A route `/{id}` limited by `limit` (merged into a redis-policy limit-count).
fn route(gw: &Gateway, up: &Upstream, id: &str, redis: &Redis, limit: Value) {
    let mut lc = json!({"count": 5, "time_window": 60, "rejected_code": 429,
        "key_type": "constant", "key": "k", "policy": "redis",
        "redis_host": "127.0.0.1", "redis_port": redis.port, "redis_timeout": 300});
    for (k, v) in limit.as_object().unwrap() {
        lc[k] = v.clone();
    }
    put(
        gw,
        &format!("/apisix/admin/routes/{id}"),
        json!({"uri": format!("/{id}"), "plugins": {"limit-count": lc},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
}

/// Polls until `check` accepts a response of `path`.
fn wait_until(gw: &Gateway, path: &str, what: &str, check: impl Fn(&Response) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(gw, path);
        if check(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: never {what}: {} {:?}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_quota_is_shared_by_two_gateways() {
    let Some(redis) = Redis::start() else { return };
    let up = Upstream::start();
    let gws = [admin_mode(), admin_mode()];
    for gw in &gws {
        route(gw, &up, "shared", &redis, json!({}));
        wait_until(gw, "/shared", "limited by redis", |r| {
            r.header("X-RateLimit-Limit") == Some("5")
        });
    }
    // Warm-up requests counted; start the window afresh.
    assert_eq!(redis.command(&["FLUSHALL"]).as_deref(), Some("+OK"));
    let mut passed = 0;
    let mut remaining = Vec::new();
    for i in 0..12 {
        let r = get(&gws[i % 2], "/shared");
        match r.status {
            200 => passed += 1,
            429 => {}
            s => panic!("unexpected {s}: {}", r.text()),
        }
        remaining.push(r.header("X-RateLimit-Remaining").unwrap_or("-").to_string());
        let reset: f64 = r.header("X-RateLimit-Reset").unwrap().parse().unwrap();
        assert!(reset > 0.0 && reset <= 60.0, "{reset}");
    }
    assert_eq!(passed, 5, "exactly the count passes across both gateways");
    assert_eq!(
        remaining,
        ["4", "3", "2", "1", "0", "0", "0", "0", "0", "0", "0", "0"]
    );
    // APISIX's key layout: plugin-limit-count:v1:<resource>:<conf version>:<key value>.
    let key = redis.command(&["KEYS", "plugin-limit-count:v1:/apisix/routes/shared:*:k"]);
    assert_eq!(key.as_deref(), Some("*1"));
}

#[test]
fn redis_down_then_back() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let up = Upstream::start();
    let gw = admin_mode();
    route(&gw, &up, "strict", &redis, json!({}));
    route(
        &gw,
        &up,
        "lenient",
        &redis,
        json!({"allow_degradation": true}),
    );
    for path in ["/strict", "/lenient"] {
        wait_until(&gw, path, "limited by redis", |r| {
            r.status == 200 && r.header("X-RateLimit-Limit").is_some()
        });
    }

    redis.stop();
    for _ in 0..4 {
        let t = Instant::now();
        let r = get(&gw, "/strict");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "bounded by redis_timeout"
        );
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json(), json!({"error_msg": "failed to limit count"}));
        assert!(r.header("X-RateLimit-Limit").is_none());
        assert!(r.header("X-RateLimit-Remaining").is_none());

        let r = get(&gw, "/lenient");
        assert_eq!(r.status, 200, "degraded: proxied");
        assert!(r.header("X-RateLimit-Limit").is_none());
        assert!(r.header("X-RateLimit-Reset").is_none());
    }
    assert!(
        gw.stderr().contains("failed to limit count")
            || gw.stdout().contains("failed to limit count")
    );

    // Back on the same port, empty: counting starts again from the first hit, with no error
    // on the way (a pooled connection to the old process is replaced, not reported).
    redis.restart();
    for want in ["4", "3"] {
        let r = get(&gw, "/strict");
        assert_eq!(
            (r.status, r.header("X-RateLimit-Remaining")),
            (200, Some(want)),
            "{}",
            r.text()
        );
    }
    for _ in 0..3 {
        assert_eq!(get(&gw, "/strict").status, 200);
    }
    assert_eq!(get(&gw, "/strict").status, 429);
    let r = get(&gw, "/lenient");
    assert_eq!(r.header("X-RateLimit-Limit"), Some("5"));

    // Restarted while idle: every pooled connection is stale, and still no request fails.
    redis.restart();
    for want in ["4", "3", "2"] {
        let r = get(&gw, "/lenient");
        assert_eq!(
            r.header("X-RateLimit-Remaining"),
            Some(want),
            "{}",
            r.text()
        );
    }
}

#[test]
fn redis_that_hangs_is_bounded_by_redis_timeout() {
    let Some(redis) = Redis::start() else { return };
    let up = Upstream::start();
    let gw = admin_mode();
    route(&gw, &up, "strict", &redis, json!({}));
    route(
        &gw,
        &up,
        "lenient",
        &redis,
        json!({"allow_degradation": true}),
    );
    wait_until(&gw, "/strict", "limited by redis", |r| r.status == 200);

    // Frozen: connects succeed (the kernel accepts) but no reply ever comes.
    redis.freeze(true);
    for path in ["/strict", "/lenient", "/strict"] {
        let t = Instant::now();
        let r = get(&gw, path);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
            "{path}: {took:?}"
        );
        let want = if path == "/strict" { 500 } else { 200 };
        assert_eq!(r.status, want, "{}", r.text());
        assert!(r.header("X-RateLimit-Limit").is_none());
    }
    redis.freeze(false);
    wait_until(&gw, "/strict", "counting again", |r| {
        r.status == 200 && r.header("X-RateLimit-Limit").is_some()
    });
}
