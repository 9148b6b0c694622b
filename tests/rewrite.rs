//! `proxy-rewrite` end to end: the real binary in front of a real upstream that echoes the
//! request line and headers; rules of each kind, the Admin API's answers to bad rules, seed
//! 002's service + route + jwt-auth + proxy-rewrite, and Kong's `strip_path` imported.

mod common;

use common::client::{request, Conn, Response};
use common::upstream::Upstream;
use common::{both_drivers, Driver, Gateway, GatewayOpts, ADMIN_KEY};
use serde_json::{json, Value};

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

fn put(gw: &Gateway, path: &str, body: Value) -> Response {
    let r = admin(gw, "PUT", path, Some(body));
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    r
}

fn send(gw: &Gateway, method: &str, target: &str, headers: &[&str]) -> Response {
    let mut raw = format!("{method} {target} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        raw.push_str("Host: 127.0.0.1\r\n");
    }
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    request(gw.addr(), raw.as_bytes())
}

fn get(gw: &Gateway, target: &str, headers: &[&str]) -> Response {
    send(gw, "GET", target, headers)
}

/// Polls until `target` answers `status` (Admin API changes reach every worker fast).
fn wait_for(gw: &Gateway, target: &str, headers: &[&str], status: u16) -> Response {
    common::wait_for_status(target, status, || get(gw, target, headers))
}

fn standalone(driver: Driver, doc: &Value) -> Gateway {
    Gateway::start(GatewayOpts {
        driver,
        standalone: Some(doc.to_string()),
        ..Default::default()
    })
}

fn route(id: &str, uri: &str, up: &Upstream, rewrite: Value) -> Value {
    json!({
        "id": id,
        "uri": uri,
        "plugins": {"proxy-rewrite": rewrite},
        "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}
    })
}

/// What the upstream saw: `(method, request target)`.
fn line(r: &Response) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    (
        j["method"].as_str().unwrap_or_default().to_string(),
        j["uri"].as_str().unwrap_or_default().to_string(),
    )
}

fn uri(r: &Response) -> String {
    line(r).1
}

fn echoed_all(r: &Response, name: &str) -> Vec<String> {
    r.json()["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
                .filter_map(|h| h[1].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rewrite_rules_of_each_kind() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let mut node_up = route(
            "node-host",
            "/node-host",
            &up,
            json!({"host": "plugin.example"}),
        );
        node_up["upstream"]["pass_host"] = json!("node");
        let doc = json!({"routes": [
            route("uri", "/uri/*", &up, json!({"uri": "/new/${arg_x ?? none}?from=$uri"})),
            route("plain", "/plain/*", &up, json!({"uri": "/fixed"})),
            route("regex", "/re/*", &up, json!({"regex_uri": [
                "^/re/(\\w+)/(\\d+)$", "/users/$2?name=$1",
                "^/re/(.*)", "/other/${1}",
            ]})),
            route("method", "/method", &up, json!({"method": "POST"})),
            route("to-head", "/to-head", &up, json!({"method": "HEAD"})),
            route("host", "/host", &up, json!({"host": "rewritten.example:8443"})),
            node_up,
            route("headers", "/headers/*", &up, json!({
                "regex_uri": ["^/headers/(.*)", "/$1"],
                "headers": {
                    "add": {"X-Multi": ["a", "b"], "X-Seen": "$1"},
                    "set": {"X-Route": "$route_id via $request_method", "X-Forwarded-Host": "front.example",
                            "X-Arg": "$arg_v"},
                    "remove": ["X-Drop"]
                }
            })),
            route("legacy", "/legacy", &up, json!({"headers": {"X-Api-Version": "v2", "X-Num": 3}})),
        ]});
        let gw = standalone(driver, &doc);

        // uri: variables, a query of its own, the client's query after `&`.
        assert_eq!(uri(&get(&gw, "/uri/a?x=1", &[])), "/new/1?from=/uri/a&x=1");
        assert_eq!(
            uri(&get(&gw, "/uri/a%20b", &[])),
            "/new/none?from=/uri/a%20b"
        );
        assert_eq!(uri(&get(&gw, "/plain/x?a=1&b", &[])), "/fixed?a=1&b");
        assert_eq!(uri(&get(&gw, "/plain/x", &[])), "/fixed");

        // regex_uri: captures, pairs in order, the first that matches wins.
        assert_eq!(
            uri(&get(&gw, "/re/ann/42?q=1", &[])),
            "/users/42?name=ann&q=1"
        );
        assert_eq!(uri(&get(&gw, "/re/ann/x", &[])), "/other/ann/x");
        // A normalised, decoded path is what the patterns see.
        assert_eq!(uri(&get(&gw, "/re/./bob//7", &[])), "/users/7?name=bob");
        assert_eq!(uri(&get(&gw, "/re/%62ob/7", &[])), "/users/7?name=bob");

        // method.
        assert_eq!(
            line(&get(&gw, "/method", &[])),
            ("POST".into(), "/method".into())
        );
        // GET sent upstream as HEAD: the client hears there is no body, and the connection
        // stays in step.
        let mut c = Conn::open(gw.addr());
        c.send(b"GET /to-head HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Length"), Some("0"));
        assert!(r.body.is_empty());
        c.send(b"GET /method HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(line(&c.read(false).unwrap()).0, "POST");
        assert_eq!(
            up.requests()
                .iter()
                .filter(|l| *l == "HEAD /to-head")
                .count(),
            1
        );
        // HEAD sent upstream as POST: the client gets the head only.
        c.send(b"HEAD /method HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        c.send(b"GET /plain/y HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(uri(&c.read(false).unwrap()), "/fixed");

        // host: the upstream Host with pass_host "pass"; pass_host "node" still wins.
        let r = get(&gw, "/host", &[]);
        assert_eq!(
            r.echoed_header("Host").as_deref(),
            Some("rewritten.example:8443")
        );
        assert_eq!(
            r.echoed_header("X-Forwarded-Host").as_deref(),
            Some("127.0.0.1")
        );
        let r = get(&gw, "/node-host", &[]);
        assert_eq!(r.echoed_header("Host"), Some(up.addr.to_string()));

        // headers: add, set, remove, with captures and variables.
        let r = get(
            &gw,
            "/headers/cap?v=x%0D%0AInjected:%201",
            &["X-Multi: client", "X-Drop: gone", "X-Route: forged"],
        );
        assert_eq!(uri(&r), "/cap?v=x%0D%0AInjected:%201");
        assert_eq!(echoed_all(&r, "X-Multi"), ["client", "a", "b"]);
        assert_eq!(r.echoed_header("X-Seen").as_deref(), Some("cap"));
        assert_eq!(echoed_all(&r, "X-Route"), ["headers via GET"]);
        assert_eq!(echoed_all(&r, "X-Forwarded-Host"), ["front.example"]);
        assert_eq!(
            r.echoed_header("X-Arg").as_deref(),
            Some("x%0D%0AInjected: 1")
        );
        assert_eq!(r.echoed_header("Injected"), None);
        assert_eq!(r.echoed_header("X-Drop"), None);
        let r = get(&gw, "/legacy", &["X-Api-Version: v1"]);
        assert_eq!(echoed_all(&r, "X-Api-Version"), ["v2"]);
        assert_eq!(r.echoed_header("X-Num").as_deref(), Some("3"));
    });
}

#[test]
fn admin_api_refuses_bad_rules_with_their_field() {
    let up = Upstream::start();
    let gw = Gateway::start(GatewayOpts {
        standalone: None,
        ..Default::default()
    });
    let bad = |rewrite: Value, want: &str| {
        let r = admin(
            &gw,
            "PUT",
            "/apisix/admin/routes/bad",
            Some(route("bad", "/bad", &up, rewrite)),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        let msg = r.json()["error_msg"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            msg.starts_with("failed to check the configuration of plugin proxy-rewrite err: ")
                && msg.contains(want),
            "{msg}"
        );
    };
    bad(
        json!({"regex_uri": ["^/a(", "/b"]}),
        "invalid regex_uri(^/a(, /b)",
    );
    bad(
        json!({"regex_uri": ["^/a"]}),
        "property \"regex_uri\" validation failed",
    );
    bad(
        json!({"regex_uri": ["^/a", "/b", "^/c"]}),
        "should be an even number",
    );
    bad(json!({"regex_uri": ["^/(?!admin)", "/b"]}), "look-around");
    bad(
        json!({"uri": "relative"}),
        "property \"uri\" validation failed: failed to match pattern",
    );
    bad(json!({"uri": 3}), "wrong type: expected string, got number");
    bad(
        json!({"method": "BREW"}),
        "property \"method\" validation failed",
    );
    bad(
        json!({"headers": {"set": {"X A": "1"}}}),
        "property \"headers.set\" validation failed: invalid field character",
    );
    bad(
        json!({"headers": {"X-A": "1\r\nX-B: 2"}}),
        "property \"headers.X-A\" validation failed: invalid value character",
    );
    bad(
        json!({"headers": {"set": {"Host": "x"}}}),
        "use property \"host\"",
    );
    bad(json!({"uri": "/$no_such_var"}), "unknown variable");
    bad(json!({}), "at least 1 properties");
    // Nothing was half-applied.
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/routes/bad", None).status,
        404
    );

    let list = admin(&gw, "GET", "/apisix/admin/plugins/list", None).json();
    assert!(
        list.as_array().unwrap().contains(&json!("proxy-rewrite")),
        "{list}"
    );
    let schema = admin(&gw, "GET", "/apisix/admin/plugins/proxy-rewrite", None);
    assert_eq!(schema.status, 200);
    assert_eq!(
        schema.json()["properties"]["regex_uri"]["minItems"],
        json!(2)
    );
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Seed 002: a service with path prefix `/v1` and host `auth.httpbin.org`, a route `/json`
/// (GET) with jwt-auth; `/v1/json` reaches the upstream as `/json`. In APISIX terms: hosts on
/// the service, route uri `/v1/json`, `proxy-rewrite` `regex_uri ["^/v1/(.*)", "/$1"]`.
#[test]
fn seed_002_service_route_jwt_and_rewrite() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = Gateway::start(GatewayOpts {
            driver,
            standalone: None,
            ..Default::default()
        });
        put(
            &gw,
            "/apisix/admin/services/jwt-auth-app",
            json!({
                "name": "jwt-auth-app",
                "hosts": ["auth.httpbin.org"],
                "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}
            }),
        );
        put(
            &gw,
            "/apisix/admin/routes/json",
            json!({
                "name": "json",
                "uri": "/v1/json",
                "methods": ["GET"],
                "service_id": "jwt-auth-app",
                "plugins": {
                    "jwt-auth": {},
                    "proxy-rewrite": {"regex_uri": ["^/v1/(.*)", "/$1"]}
                }
            }),
        );
        // The console's generated secret, base64-encoded ("Check the base64 encoding").
        let secret: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        put(
            &gw,
            "/apisix/admin/consumers",
            json!({
                "username": "oiloil",
                "plugins": {"jwt-auth": {"key": "oiloil_key", "secret": b64(&secret), "base64_secret": true}}
            }),
        );
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let token = portcullis::jwt::sign(
            portcullis::jwt::Alg::HS256,
            &portcullis::jwt::SignKey::Hmac(secret.clone()),
            &serde_json::Map::new(),
            &json!({"key": "oiloil_key", "user": "oiloil", "age": 18, "exp": exp}),
        )
        .expect("HS256 signing works");
        let host = "Host: auth.httpbin.org";

        // curl http://127.0.0.1:9080/v1/json -H 'Host: auth.httpbin.org' -i
        let r = wait_for(&gw, "/v1/json", &[host], 401);
        assert_eq!(r.json(), json!({"message": "Missing JWT token in request"}));
        // ... -H 'Authorization: <Your JSON Web Token>'
        let auth = format!("Authorization: {token}");
        let r = wait_for(&gw, "/v1/json", &[host, &auth], 200);
        assert_eq!(line(&r), ("GET".into(), "/json".into()));
        assert_eq!(r.echoed_header("Host").as_deref(), Some("auth.httpbin.org"));
        assert_eq!(
            r.echoed_header("X-Consumer-Username").as_deref(),
            Some("oiloil")
        );
        let r = get(&gw, "/v1/json?page=2", &[host, &auth]);
        assert_eq!(uri(&r), "/json?page=2");
        // ... -H 'Authorization: wrong token'
        let r = get(&gw, "/v1/json", &[host, "Authorization: wrong token"]);
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"message": "JWT token invalid"}));
        // The service's host and the route's method still route.
        assert_eq!(
            get(&gw, "/v1/json", &["Host: other.example", &auth]).status,
            404
        );
        assert_eq!(send(&gw, "POST", "/v1/json", &[host, &auth]).status, 404);
        // Only the authenticated request went upstream.
        assert_eq!(up.requests(), ["GET /json", "GET /json?page=2"]);
    });
}

/// jwt-auth's `hide_credentials` takes the token out of the query before proxy-rewrite adds
/// the query to the rewritten uri; proxy-rewrite's `set` of a consumer header wins.
#[test]
fn rewrite_after_jwt_auth() {
    let up = Upstream::start();
    let gw = Gateway::start(GatewayOpts {
        standalone: None,
        ..Default::default()
    });
    put(
        &gw,
        "/apisix/admin/consumers",
        json!({"username": "jack", "plugins": {"jwt-auth": {"key": "jack-key", "secret": "jack-hs256-secret-that-is-very-long"}}}),
    );
    let mut r = route(
        "r",
        "/api/*",
        &up,
        json!({"regex_uri": ["^/api/(.*)", "/$1"],
               "headers": {"set": {"X-Consumer-Username": "user-$consumer_name"},
                           "remove": ["X-Credential-Identifier"]}}),
    );
    r["plugins"]["jwt-auth"] = json!({"hide_credentials": true});
    put(&gw, "/apisix/admin/routes/r", r);
    let token = portcullis::jwt::sign(
        portcullis::jwt::Alg::HS256,
        &portcullis::jwt::SignKey::Hmac(b"jack-hs256-secret-that-is-very-long".to_vec()),
        &serde_json::Map::new(),
        &json!({"key": "jack-key"}),
    )
    .unwrap();
    let r = wait_for(&gw, &format!("/api/x?a=1&jwt={token}&b=2"), &[], 200);
    assert_eq!(uri(&r), "/x?a=1&b=2");
    assert_eq!(echoed_all(&r, "X-Consumer-Username"), ["user-jack"]);
    assert_eq!(r.echoed_header("X-Credential-Identifier"), None);
}

/// A Kong file whose route strips its path (`strip_path`, Kong's default) below a service
/// path: translated into `proxy-rewrite` and enforced.
#[test]
fn kong_strip_path_end_to_end() {
    let up = Upstream::start();
    let kong = format!(
        r#"_format_version: "3.0"
services:
  - name: api
    url: http://{}/api
    routes:
      - name: stripped
        paths: [/v1]
      - name: kept
        paths: [/v2]
        strip_path: false
  - name: root
    url: http://{}
    routes:
      - name: root-strip
        paths: [/svc/]
"#,
        up.addr, up.addr
    );
    let gw = Gateway::start(GatewayOpts {
        standalone: Some(kong),
        ..Default::default()
    });
    assert_eq!(uri(&get(&gw, "/v1/users?x=1", &[])), "/api/users?x=1");
    assert_eq!(uri(&get(&gw, "/v1", &[])), "/api");
    assert_eq!(uri(&get(&gw, "/v2/users", &[])), "/api/v2/users");
    assert_eq!(uri(&get(&gw, "/svc/a/b", &[])), "/a/b");
}
