//! Routing against the real binary in standalone mode: uri, uris, hosts, methods, priority,
//! disabled routes, services and upstream objects, the 404 answer, weighted round-robin, node
//! forms, and reloading the file on SIGHUP (good and bad).
//!
//! Most routes send to one upstream with `pass_host: rewrite` and the route's name as
//! `upstream_host`, so the `Host` the upstream echoes tells which route matched.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{get, request, Conn, Response};
use common::upstream::Upstream;
use common::{Driver, Gateway, GatewayOpts};
use serde_json::{json, Value};

fn start(standalone: &Value) -> Gateway {
    Gateway::start(GatewayOpts {
        driver: Driver::Uring,
        workers: 1,
        standalone: Some(standalone.to_string()),
        ..Default::default()
    })
}

/// An upstream to `addr` that names `tag` in the Host it sends.
fn tagged(addr: SocketAddr, tag: &str) -> Value {
    json!({
        "type": "roundrobin",
        "nodes": {addr.to_string(): 1},
        "pass_host": "rewrite",
        "upstream_host": tag,
    })
}

/// A route `id` with `fields`, whose upstream is tagged with its id.
fn route(id: &str, addr: SocketAddr, fields: Value) -> Value {
    let mut r = json!({"id": id, "upstream": tagged(addr, id)});
    r.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    r
}

/// Sends `method path` with `host` and returns which route answered (its tag), or `None` for
/// the gateway's 404, which is checked to be exactly APISIX's.
fn which(gw: &Gateway, method: &str, host: &str, path: &str) -> Option<String> {
    let r = request(
        gw.addr(),
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    routed(&r, &format!("{method} {host}{path}"))
}

fn routed(r: &Response, what: &str) -> Option<String> {
    match r.status {
        200 => Some(
            r.echoed_header("host")
                .unwrap_or_else(|| panic!("{what}: no Host upstream")),
        ),
        404 => {
            assert_not_found(r);
            None
        }
        s => panic!("{what}: status {s}: {}", r.text()),
    }
}

fn assert_not_found(r: &Response) {
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"error_msg": "404 Route Not Found"}));
    assert_eq!(r.text(), "{\"error_msg\":\"404 Route Not Found\"}\n");
}

fn tag(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn exact_and_prefix_uris() {
    let up = Upstream::start();
    let a = up.addr;
    let gw = start(&json!({"routes": [
        route("exact", a, json!({"uri": "/exact"})),
        route("prefix", a, json!({"uri": "/pre/*"})),
        route("deeper", a, json!({"uri": "/pre/deeper/*"})),
        route("uris", a, json!({"uris": ["/a", "/b/*"]})),
        route("files", a, json!({"uri": "/files*"})),
    ]}));
    let at = |path: &str| which(&gw, "GET", "test.local", path);
    assert_eq!(at("/exact"), tag("exact"));
    assert_eq!(
        at("/exact?x=1"),
        tag("exact"),
        "the query is not part of the path"
    );
    assert_eq!(at("/exact/"), None);
    assert_eq!(at("/exactly"), None);
    assert_eq!(at("/pre/"), tag("prefix"));
    assert_eq!(at("/pre/x/y"), tag("prefix"));
    assert_eq!(at("/pre"), None, "/pre/* needs the slash");
    assert_eq!(at("/pre/deeper"), tag("prefix"));
    assert_eq!(at("/pre/deeper/x"), tag("deeper"), "the longer prefix wins");
    assert_eq!(at("/a"), tag("uris"));
    assert_eq!(at("/b/c"), tag("uris"));
    assert_eq!(at("/a/x"), None);
    assert_eq!(at("/filesystem"), tag("files"));
    assert_eq!(at("/nothing"), None);
    assert_eq!(at("/"), None);

    // A path already in canonical form reaches the upstream as the client sent it.
    let r = get(gw.addr(), "/pre/x%20y?q=a&b");
    assert_eq!(r.json()["uri"], "/pre/x%20y?q=a&b");

    // A 404 keeps a keep-alive connection for the next request.
    let mut c = Conn::open(gw.addr());
    assert_not_found(&c.get("/nothing"));
    assert_eq!(routed(&c.get("/exact"), "keep-alive"), tag("exact"));
}

/// The gateway routes on nginx's `$uri` (decoded, dot segments resolved, slashes merged), and
/// sends the upstream that same path, so a backend that resolves `..` itself cannot be walked
/// out of the route that matched.
#[test]
fn paths_are_normalised_before_routing() {
    let up = Upstream::start();
    let a = up.addr;
    let gw = start(&json!({"routes": [
        route("pub", a, json!({"uri": "/pub/*"})),
        route("private", a, json!({"uri": "/private"})),
    ]}));
    let at = |path: &str| which(&gw, "GET", "test.local", path);

    // Traversals out of /pub/ are routed where they lead: nowhere, or the other route.
    for path in [
        "/pub/../admin",
        "/pub/%2e%2e/admin",
        "/pub/%2E%2E/admin",
        "/pub/.%2e/admin",
        "/pub/x/../../admin",
        "//admin",
        "/pub/..",
    ] {
        assert_eq!(at(path), None, "{path}");
    }
    assert_eq!(
        up.seen().len(),
        0,
        "no traversal reached the upstream: {:?}",
        up.seen()
    );
    for path in ["/pub/../private", "/pub/%2e%2e/private", "//private"] {
        let r = get(gw.addr(), path);
        assert_eq!(routed(&r, path), tag("private"), "{path}");
        assert_eq!(r.json()["uri"], "/private", "{path}");
    }
    let absolute = request(
        gw.addr(),
        b"GET http://test.local/pub/../private HTTP/1.1\r\nHost: test.local\r\n\r\n",
    );
    assert_eq!(absolute.json()["uri"], "/private");

    // Extra slashes, `.` segments and needless escapes: the upstream sees the routed path.
    for path in [
        "/pub//x",
        "/pub/./x",
        "//pub///./x",
        "/pub/%78",
        "/pub/y/../x",
        "/pub/%2e/x",
    ] {
        let r = get(gw.addr(), path);
        assert_eq!(routed(&r, path), tag("pub"), "{path}");
        assert_eq!(r.json()["uri"], "/pub/x", "{path}");
    }

    // What must stay encoded is encoded again; the query is passed on byte for byte.
    for (path, sent) in [
        (
            "/pub/./a%20b/?q=%2e%2e/../x&y=%2F",
            "/pub/a%20b/?q=%2e%2e/../x&y=%2F",
        ),
        ("/pub//x?", "/pub/x?"),
        ("/pub/%7e%3b%25?a=b", "/pub/~;%25?a=b"),
        ("/pub/caf%c3%a9", "/pub/caf%C3%A9"),
    ] {
        let r = get(gw.addr(), path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["uri"], sent, "{path}");
    }

    // Above the root, an encoded separator, an encoded NUL, a broken escape: 400, in JSON.
    for path in [
        "/..",
        "/../pub/x",
        "/pub/../../pub/x",
        "/%2e%2e/pub/x",
        "/pub/..%2fadmin",
        "/pub/x%2Fy",
        "/pub/..%5cadmin",
        "/pub/x%00",
        "/pub/x%zz",
    ] {
        let r = get(gw.addr(), path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json(),
            json!({"error_msg": "Bad Request: invalid path"}),
            "{path}"
        );
    }
    assert_eq!(
        up.seen()
            .iter()
            .filter(|s| !s.uri.starts_with("/pub/") && s.uri != "/private")
            .count(),
        0,
        "{:?}",
        up.seen()
    );
}

#[test]
fn hosts_exact_and_wildcard() {
    let up = Upstream::start();
    let a = up.addr;
    let gw = start(&json!({"routes": [
        route("any", a, json!({"uri": "/h"})),
        route("wild", a, json!({"uri": "/h", "hosts": ["*.example.com"]})),
        route("deep", a, json!({"uri": "/h", "host": "*.deep.example.com"})),
        route("exact", a, json!({"uri": "/h", "host": "api.example.com"})),
        route("only", a, json!({"uri": "/only", "hosts": ["only.example.com", "Alt.Example.org"]})),
    ]}));
    let on = |host: &str, path: &str| which(&gw, "GET", host, path);
    assert_eq!(on("api.example.com", "/h"), tag("exact"));
    assert_eq!(
        on("API.Example.COM:8080", "/h"),
        tag("exact"),
        "case and port"
    );
    assert_eq!(on("x.example.com", "/h"), tag("wild"));
    assert_eq!(on("a.b.example.com", "/h"), tag("wild"));
    assert_eq!(
        on("x.deep.example.com", "/h"),
        tag("deep"),
        "longest wildcard"
    );
    assert_eq!(
        on("example.com", "/h"),
        tag("any"),
        "*.example.com needs a label"
    );
    assert_eq!(on("other.org", "/h"), tag("any"));
    assert_eq!(on("only.example.com", "/only"), tag("only"));
    assert_eq!(on("alt.example.org", "/only"), tag("only"));
    assert_eq!(on("other.org", "/only"), None);

    // An absolute-form target names the host, whatever Host says (RFC 9112 §3.2.2).
    let r = request(
        gw.addr(),
        b"GET http://api.example.com/h HTTP/1.1\r\nHost: other.org\r\n\r\n",
    );
    assert_eq!(routed(&r, "absolute-form"), tag("exact"));
    assert_eq!(r.json()["uri"], "/h", "sent upstream in origin form");
}

#[test]
fn methods_and_priority() {
    let up = Upstream::start();
    let a = up.addr;
    let gw = start(&json!({"routes": [
        route("m-get", a, json!({"uri": "/m", "methods": ["GET"]})),
        route("m-post", a, json!({"uri": "/m", "methods": ["POST", "PUT"]})),
        route("low", a, json!({"uri": "/prio/*", "priority": 1})),
        route("high", a, json!({"uri": "/prio/*", "priority": 10})),
        route("long", a, json!({"uri": "/prio/long/*", "priority": -5})),
        route("prio-exact", a, json!({"uri": "/prio/exact", "priority": -10})),
        route("first", a, json!({"uri": "/same"})),
        route("second", a, json!({"uri": "/same"})),
        route("get-high", a, json!({"uri": "/fall", "priority": 5, "methods": ["GET"]})),
        route("fallback", a, json!({"uri": "/fall"})),
    ]}));
    let m = |method: &str, path: &str| which(&gw, method, "test.local", path);
    assert_eq!(m("GET", "/m"), tag("m-get"));
    assert_eq!(m("POST", "/m"), tag("m-post"));
    assert_eq!(m("PUT", "/m"), tag("m-post"));
    assert_eq!(m("DELETE", "/m"), None);
    assert_eq!(m("PATCH", "/m"), None);
    assert_eq!(
        m("GET", "/prio/x"),
        tag("high"),
        "higher priority, defined later"
    );
    assert_eq!(
        m("GET", "/prio/long/x"),
        tag("long"),
        "longer prefix beats priority"
    );
    assert_eq!(
        m("GET", "/prio/exact"),
        tag("prio-exact"),
        "exact beats prefix"
    );
    assert_eq!(
        m("GET", "/same"),
        tag("first"),
        "equal priority: definition order"
    );
    assert_eq!(m("GET", "/fall"), tag("get-high"));
    assert_eq!(
        m("DELETE", "/fall"),
        tag("fallback"),
        "a method miss falls through"
    );
}

#[test]
fn disabled_routes_services_and_upstream_objects() {
    let up = Upstream::start();
    let a = up.addr;
    let mut u1 = tagged(a, "upstream-u1");
    u1["id"] = json!("u1");
    let gw = start(&json!({
        "upstreams": [u1],
        "services": [
            {"id": "s1", "hosts": ["svc.example.com"], "upstream": tagged(a, "service-s1")},
            {"id": "s2", "upstream_id": "u1"},
        ],
        "routes": [
            route("off", a, json!({"uri": "/off", "status": 0})),
            route("on", a, json!({"uri": "/on", "status": 1})),
            {"id": "svc", "uri": "/svc", "service_id": "s1"},
            {"id": "svc-own-host", "uri": "/svc2", "service_id": "s1", "host": "own.example.com"},
            {"id": "svc-upstream-id", "uri": "/svc3", "service_id": "s2"},
            {"id": "by-upstream-id", "uri": "/upid", "upstream_id": "u1"},
            {"id": "svc-overridden", "uri": "/svc4", "service_id": "s1", "upstream_id": "u1"},
        ],
    }));
    let on = |host: &str, path: &str| which(&gw, "GET", host, path);
    assert_eq!(
        on("test.local", "/off"),
        None,
        "status 0 disables the route"
    );
    assert_eq!(on("test.local", "/on"), tag("on"));
    assert_eq!(on("svc.example.com", "/svc"), tag("service-s1"));
    assert_eq!(
        on("other.example.com", "/svc"),
        None,
        "the service's hosts apply"
    );
    assert_eq!(on("own.example.com", "/svc2"), tag("service-s1"));
    assert_eq!(
        on("svc.example.com", "/svc2"),
        None,
        "the route's own hosts replace the service's"
    );
    assert_eq!(on("test.local", "/svc3"), tag("upstream-u1"));
    assert_eq!(on("test.local", "/upid"), tag("upstream-u1"));
    assert_eq!(
        on("svc.example.com", "/svc4"),
        tag("upstream-u1"),
        "the route's upstream_id wins over the service's upstream"
    );
}

#[test]
fn roundrobin_follows_weights_exactly() {
    let heavy = Upstream::start();
    let light = Upstream::start();
    let gw = start(&json!({"routes": [{
        "id": "rr",
        "uri": "/rr/*",
        // A list keeps the node order (the JSON object form would be sorted by address).
        "upstream": {"type": "roundrobin", "nodes": [
            {"host": "127.0.0.1", "port": heavy.addr.port(), "weight": 3},
            {"host": "127.0.0.1", "port": light.addr.port(), "weight": 1},
        ]},
    }]}));
    let mut c = Conn::open(gw.addr());
    for i in 0..400 {
        let r = c.get(&format!("/rr/{i}"));
        assert_eq!(r.status, 200, "request {i}");
    }
    let (h, l) = (heavy.seen(), light.seen());
    assert_eq!((h.len(), l.len()), (300, 100));
    // Smooth weighted round-robin: heavy, heavy, light, heavy, and again.
    let light_uris: Vec<String> = l.iter().map(|s| s.uri.clone()).collect();
    let expected: Vec<String> = (0..400)
        .filter(|i| i % 4 == 2)
        .map(|i| format!("/rr/{i}"))
        .collect();
    assert_eq!(light_uris, expected);
    // Each node's connection is pooled and reused.
    assert_eq!((heavy.connections(), light.connections()), (1, 1));
}

#[test]
fn node_forms_and_localhost() {
    let up = Upstream::start();
    let port = up.addr.port();
    let node = |nodes: Value| json!({"type": "roundrobin", "nodes": nodes, "pass_host": "node"});
    let gw = start(&json!({"routes": [
        {"id": "map", "uri": "/map", "upstream": node(json!({format!("127.0.0.1:{port}"): 1}))},
        {"id": "list", "uri": "/list", "upstream":
            node(json!([{"host": "127.0.0.1", "port": port, "weight": 1}]))},
        {"id": "local-map", "uri": "/local-map", "upstream":
            node(json!({format!("localhost:{port}"): 1}))},
        {"id": "local-list", "uri": "/local-list", "upstream":
            node(json!([{"host": "localhost", "port": port, "weight": 2}]))},
    ]}));
    let host = |path: &str| {
        let r = get(gw.addr(), path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["uri"], path);
        r.echoed_header("host").unwrap()
    };
    assert_eq!(host("/map"), format!("127.0.0.1:{port}"));
    assert_eq!(host("/list"), format!("127.0.0.1:{port}"));
    assert_eq!(host("/local-map"), format!("localhost:{port}"));
    assert_eq!(host("/local-list"), format!("localhost:{port}"));
    assert_eq!(up.seen().len(), 4);
}

/// Polls fresh connections until `path` answers `status`.
fn wait_status(gw: &Gateway, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(gw.addr(), path);
        if r.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {} after 10 s; stderr:\n{}",
            r.status,
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn one(uri: &str, addr: SocketAddr) -> Value {
    json!({"routes": [route("r", addr, json!({"uri": uri}))]})
}

#[test]
fn sighup_reload_swaps_routes_and_keeps_connections() {
    let up = Upstream::start();
    let gw = start(&one("/old", up.addr));
    let mut c = Conn::open(gw.addr());
    assert_eq!(c.get("/old").status, 200);
    assert_not_found(&c.get("/new"));

    gw.reload(&one("/new", up.addr).to_string());
    wait_status(&gw, "/new", 200);
    assert_not_found(&get(gw.addr(), "/old"));

    // The connection opened before the reload still works, under the new routes.
    assert_eq!(c.get("/new").status, 200);
    assert_not_found(&c.get("/old"));
    assert_eq!(c.get("/new").status, 200);
}

#[test]
fn a_bad_file_at_reload_keeps_the_running_config() {
    let up = Upstream::start();
    let gw = start(&one("/old", up.addr));
    let mut c = Conn::open(gw.addr());
    assert_eq!(c.get("/old").status, 200);

    let bad = json!({"routes": [{"id": "r", "uri": "/new", "upstream_id": "missing-up"}]});
    gw.reload(&bad.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.stderr().contains("reload failed") {
        assert!(
            Instant::now() < deadline,
            "no reload failure logged:\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = gw.stderr();
    let why = &log[log.find("reload failed").unwrap()..];
    assert!(
        why.starts_with("reload failed, keeping the running configuration")
            && why.contains("routes[0] (id r): upstream_id \"missing-up\" not found"),
        "the log says why: {why}"
    );
    assert_eq!(c.get("/old").status, 200, "old routes still serve");
    assert_not_found(&c.get("/new"));
    assert_eq!(get(gw.addr(), "/old").status, 200);

    // Unparsable text is refused the same way; a good file afterwards is taken.
    gw.reload("routes: [ {");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.stderr().matches("reload failed").count() < 2 {
        assert!(Instant::now() < deadline, "second failure not logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.get("/old").status, 200);
    gw.reload(&one("/new", up.addr).to_string());
    wait_status(&gw, "/new", 200);
    assert_not_found(&c.get("/old"));
}
