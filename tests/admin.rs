//! The Admin API against the real binary: APISIX's paths, envelopes and errors, key checks,
//! persistence across restarts (graceful and `kill -9`), and changes reaching the workers.

mod common;

use std::time::{Duration, Instant};

use common::client::{request, Response};
use common::upstream::Upstream;
use common::{Gateway, GatewayOpts, ADMIN_KEY};
use serde_json::{json, Value};

fn start() -> Gateway {
    Gateway::start(GatewayOpts {
        standalone: None,
        ..Default::default()
    })
}

fn admin_with(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let key = key
        .map(|k| format!("X-API-KEY: {k}\r\n"))
        .unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{key}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    admin_with(gw, method, path, body.as_ref(), Some(ADMIN_KEY))
}

fn route_to(up: &Upstream, uri: &str) -> Value {
    json!({"uri": uri, "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}})
}

/// Polls the proxy until `path` answers `status` (a change must reach every worker quickly).
fn wait_status(gw: &Gateway, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = common::client::get(gw.addr(), path);
        if r.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {} after 5 s",
            r.status
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn refuses_requests_without_a_valid_key() {
    let gw = start();
    let r = admin_with(&gw, "GET", "/apisix/admin/routes", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error_msg": "failed to check token", "description": "missing apikey"})
    );
    let r = admin_with(&gw, "GET", "/apisix/admin/routes", None, Some("wrong"));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["description"], "wrong apikey");
    let r = request(
        gw.admin_addr(),
        format!("GET /apisix/admin/routes?api_key={ADMIN_KEY} HTTP/1.1\r\nHost: x\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn viewer_keys_only_read() {
    let mut gw = start();
    let config = std::fs::read_to_string(gw.dir.path().join("config.yaml")).unwrap();
    let config = config.replace(
        "role: admin}]",
        "role: admin}, {name: view, key: viewer-key-0123456789, role: viewer}]",
    );
    std::fs::write(gw.dir.path().join("config.yaml"), config).unwrap();
    gw.restart(false).unwrap();
    let r = admin_with(
        &gw,
        "GET",
        "/apisix/admin/routes",
        None,
        Some("viewer-key-0123456789"),
    );
    assert_eq!(r.status, 200);
    let up = Upstream::start();
    let body = route_to(&up, "/v");
    let r = admin_with(
        &gw,
        "PUT",
        "/apisix/admin/routes/v",
        Some(&body),
        Some("viewer-key-0123456789"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["description"], "invalid method for role viewer");
}

#[test]
fn route_crud_in_apisix_envelopes_and_live_on_workers() {
    let gw = start();
    let up = Upstream::start();
    common::client::get(gw.addr(), "/hello"); // before: 404
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/1",
        Some(route_to(&up, "/hello")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["key"], "/apisix/routes/1");
    assert_eq!(v["value"]["id"], "1");
    assert_eq!(v["value"]["uri"], "/hello");
    let created = v["value"]["create_time"].as_u64().expect("create_time");
    assert!(v["value"]["update_time"].as_u64().is_some());
    wait_status(&gw, "/hello", 200);

    // Replace: 200, create_time kept.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/1",
        Some(route_to(&up, "/hello2")),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["value"]["create_time"].as_u64(), Some(created));
    wait_status(&gw, "/hello2", 200);
    wait_status(&gw, "/hello", 404);

    // Id in the body.
    let mut body = route_to(&up, "/b");
    body["id"] = json!("2");
    let r = admin(&gw, "PUT", "/apisix/admin/routes", Some(body));
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["key"], "/apisix/routes/2");

    // GET one and list.
    let r = admin(&gw, "GET", "/apisix/admin/routes/1", None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["key"], "/apisix/routes/1");
    assert!(v["createdIndex"].as_u64().is_some() && v["modifiedIndex"].as_u64().is_some());
    let r = admin(&gw, "GET", "/apisix/admin/routes", None);
    let v = r.json();
    assert_eq!(v["total"], 2);
    assert_eq!(v["list"].as_array().unwrap().len(), 2);

    // PATCH: merge and sub path.
    let r = admin(
        &gw,
        "PATCH",
        "/apisix/admin/routes/1",
        Some(json!({"name": "patched", "desc": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["value"]["name"], "patched");
    let r = admin(
        &gw,
        "PATCH",
        "/apisix/admin/routes/1/uri",
        Some(json!("/patched")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_status(&gw, "/patched", 200);

    // POST: generated id.
    let r = admin(
        &gw,
        "POST",
        "/apisix/admin/routes",
        Some(route_to(&up, "/posted")),
    );
    assert_eq!(r.status, 201);
    let id = r.json()["value"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert!(id.bytes().all(|b| b.is_ascii_digit()));

    // DELETE.
    let r = admin(&gw, "DELETE", "/apisix/admin/routes/1", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"deleted": "1", "key": "/apisix/routes/1"}));
    wait_status(&gw, "/patched", 404);
    let r = admin(&gw, "GET", "/apisix/admin/routes/1", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "Key not found"}));
    let r = admin(&gw, "DELETE", "/apisix/admin/routes/1", None);
    assert_eq!(r.status, 404);
}

#[test]
fn paging_lists() {
    let gw = start();
    let up = Upstream::start();
    for i in 0..12 {
        let r = admin(
            &gw,
            "PUT",
            &format!("/apisix/admin/routes/r{i:02}"),
            Some(route_to(&up, &format!("/p{i}"))),
        );
        assert_eq!(r.status, 201);
    }
    let r = admin(&gw, "GET", "/apisix/admin/routes?page=2&page_size=10", None);
    let v = r.json();
    assert_eq!(v["total"], 12);
    let keys: Vec<&str> = v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["/apisix/routes/r10", "/apisix/routes/r11"]);
    let r = admin(&gw, "GET", "/apisix/admin/routes?page_size=5", None);
    assert_eq!(r.status, 400);
}

#[test]
fn invalid_objects_are_refused_with_every_problem() {
    let gw = start();
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/1",
        Some(json!({"uri": 5, "methods": ["FETCH"], "upstream_id": "u"})),
    );
    assert_eq!(r.status, 400);
    let msg = r.json()["error_msg"].as_str().unwrap().to_string();
    assert!(msg.contains("\"uri\""), "{msg}");
    assert!(msg.contains("methods"), "{msg}");
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/1",
        Some(json!({"uri": "/x", "plugins": {"no-such": {}}, "upstream_id": "u"})),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error_msg"]
            .as_str()
            .unwrap()
            .contains("unknown plugin [no-such]"),
        "{}",
        r.text()
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/1",
        Some(json!({"uri": "/x", "upstream_id": "nope"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error_msg"],
        "failed to fetch upstream info by upstream id [nope], response code: 404"
    );
    let r = request(gw.admin_addr(), format!("PUT /apisix/admin/routes/1 HTTP/1.1\r\nHost: x\r\nX-API-KEY: {ADMIN_KEY}\r\nContent-Length: 5\r\n\r\n{{bad}}").as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.json()["error_msg"]
        .as_str()
        .unwrap()
        .starts_with("invalid request body"));
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/bad%20id",
        Some(json!({"uri": "/x", "upstream_id": "u"})),
    );
    assert_eq!(r.status, 400);
    let r = admin(&gw, "GET", "/apisix/admin/nothing", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error_msg"], "Unsupported resource type: nothing");
    // Nothing was stored by any of these.
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/routes", None).json()["total"],
        0
    );
}

#[test]
fn referenced_objects_cannot_be_deleted() {
    let gw = start();
    let up = Upstream::start();
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/upstreams/u1",
        Some(json!({"type": "roundrobin", "nodes": {up.addr.to_string(): 1}})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/services/s1",
        Some(json!({"upstream_id": "u1"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/r1",
        Some(json!({"uri": "/svc", "service_id": "s1"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    wait_status(&gw, "/svc", 200);
    let r = admin(&gw, "DELETE", "/apisix/admin/upstreams/u1", None);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error_msg"],
        "can not delete this upstream, service [s1] is still using it now"
    );
    let r = admin(&gw, "DELETE", "/apisix/admin/services/s1", None);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error_msg"],
        "can not delete this service directly, route [r1] is still using it now"
    );
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/routes/r1", None).status,
        200
    );
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/services/s1", None).status,
        200
    );
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/upstreams/u1", None).status,
        200
    );
}

#[test]
fn consumers_and_credentials() {
    let gw = start();
    // Seed 000's consumer command: username in the body, PUT on the collection.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers",
        Some(json!({"username": "jack", "labels": {"custom_id": "495aec6a"}})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["key"], "/apisix/consumers/jack");
    let r = admin(&gw, "GET", "/apisix/admin/consumers/jack", None);
    assert_eq!(r.json()["value"]["labels"]["custom_id"], "495aec6a");
    // Credentials of a missing consumer.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/nobody/credentials/c1",
        Some(json!({"plugins": {}})),
    );
    assert_eq!(r.status, 404);
    // Bad usernames.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers",
        Some(json!({"username": "bad name"})),
    );
    assert_eq!(r.status, 400);
    let r = admin(&gw, "GET", "/apisix/admin/consumers", None);
    assert_eq!(r.json()["total"], 1);
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/consumers/jack", None).status,
        200
    );
}

#[test]
fn changes_survive_restart_and_kill_9() {
    let mut gw = start();
    let up = Upstream::start();
    for i in 0..5 {
        let r = admin(
            &gw,
            "PUT",
            &format!("/apisix/admin/routes/k{i}"),
            Some(route_to(&up, &format!("/k{i}"))),
        );
        assert_eq!(r.status, 201);
    }
    // kill -9 right after the last answer.
    gw.restart(true).expect("restart after kill -9");
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/routes", None).json()["total"],
        5
    );
    wait_status(&gw, "/k4", 200);
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/routes/k0", None).status,
        200
    );
    gw.restart(false).expect("restart after SIGTERM");
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/routes", None).json()["total"],
        4
    );
    wait_status(&gw, "/k0", 404);
    wait_status(&gw, "/k1", 200);
}

#[test]
fn a_corrupt_store_stops_the_start_with_a_clear_error() {
    let mut gw = start();
    let up = Upstream::start();
    assert_eq!(
        admin(
            &gw,
            "PUT",
            "/apisix/admin/routes/1",
            Some(route_to(&up, "/c"))
        )
        .status,
        201
    );
    let child = gw.child.take().unwrap();
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let store = std::fs::read_dir(gw.dir.path().join("data"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("store"))
        .expect("a store file in the data dir")
        .path();
    let len = std::fs::metadata(&store).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let err = gw
        .restart(false)
        .expect_err("a truncated store must not start");
    assert!(err.contains("store"), "{err}");
}

#[test]
fn global_rules_plugin_configs_secrets_and_plugin_endpoints() {
    let gw = start();
    let up = Upstream::start();
    assert_eq!(
        admin(
            &gw,
            "PUT",
            "/apisix/admin/routes/open",
            Some(route_to(&up, "/open"))
        )
        .status,
        201
    );
    wait_status(&gw, "/open", 200);

    // A global rule applies to every route at once, and its removal too.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/global_rules/1",
        Some(json!({"plugins": {"jwt-auth": {}}})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["key"], "/apisix/global_rules/1");
    wait_status(&gw, "/open", 401);
    let r = admin(&gw, "GET", "/apisix/admin/global_rules", None);
    assert_eq!(r.json()["total"], 1);
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/global_rules/2",
        Some(json!({"plugins": {"no-such-plugin": {}}})),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("unknown plugin [no-such-plugin]"),
        "{}",
        r.text()
    );
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/global_rules/1", None).status,
        200
    );
    wait_status(&gw, "/open", 200);

    // Plugin configs are stored and validated like any plugin map.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/plugin_configs/pc1",
        Some(json!({"desc": "auth", "plugins": {"jwt-auth": {"header": "x-token"}}})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin(
        &gw,
        "PATCH",
        "/apisix/admin/plugin_configs/pc1",
        Some(json!({"plugins": {"jwt-auth": {"header": 5}}})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/plugin_configs/pc1", None).json()["value"]["plugins"]
            ["jwt-auth"]["header"],
        "x-token",
        "a refused PATCH leaves the object as it was"
    );

    // Secret managers: PUT (no POST), GET, DELETE, and bad ones refused.
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/secrets/vault/v1",
        Some(json!({"uri": "http://127.0.0.1:8200", "prefix": "kv/apisix", "token": "root"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["key"], "/apisix/secrets/vault/v1");
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/secrets/vault/v1", None).status,
        200
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/secrets/vault/v2",
        Some(json!({"uri": "ftp://x"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        admin(&gw, "POST", "/apisix/admin/secrets/vault", Some(json!({}))).status,
        405
    );
    assert_eq!(
        admin(&gw, "DELETE", "/apisix/admin/secrets/vault/v1", None).status,
        200
    );
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/secrets/vault/v1", None).status,
        404
    );

    // Plugin listing and schemas.
    let r = admin(&gw, "GET", "/apisix/admin/plugins/list", None);
    assert!(r.json().as_array().unwrap().contains(&json!("jwt-auth")));
    let r = admin(&gw, "GET", "/apisix/admin/plugins/limit-count", None);
    assert_eq!(r.json()["properties"]["rejected_code"]["default"], 503);
    let r = admin(&gw, "GET", "/apisix/admin/schema/plugins/jwt", None);
    assert_eq!(r.json()["properties"]["key_claim_name"]["default"], "iss");
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/plugins/nope", None).status,
        404
    );
}
