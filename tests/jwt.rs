//! JWT authentication end to end: the real binary, the Admin API, a real upstream, and the
//! seeds' own commands and tokens (APISIX `jwt-auth`, seed 000; Kong `jwt`, seed 004).

mod common;

use std::time::Duration;

use common::client::{request, Response};
use common::upstream::Upstream;
use common::{Gateway, GatewayOpts, ADMIN_KEY};
use serde_json::{json, Value};

fn admin_mode() -> Gateway {
    Gateway::start(GatewayOpts {
        standalone: None,
        ..Default::default()
    })
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

/// A PUT that must succeed.
fn put(gw: &Gateway, path: &str, body: Value) -> Response {
    ok(admin(gw, "PUT", path, Some(body)))
}

fn ok(r: Response) -> Response {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    r
}

fn get(gw: &Gateway, path: &str, headers: &[&str]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    request(gw.addr(), raw.as_bytes())
}

/// Polls until `path` with `headers` answers `status`; changes must reach every worker fast.
fn wait_for(gw: &Gateway, path: &str, headers: &[&str], status: u16) -> Response {
    common::wait_for_status(path, status, || get(gw, path, headers))
}

// Seed 000's token for consumer key `jack-key`, secret `jack-hs256-secret-that-is-very-long`.
const SEED_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJqYWNrLWtleSIsIm5iZiI6MTcyOTEzMjI3MX0.UEPXy5jpid624T1XpfjM0PLY73LZPjV3Qt8yZ92kVuU";
const SEED_BAD_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MjY2NDk2NDAsImtleSI6ImphY2sta2V5In0.kdhumNWrZFxjU_random_random";

fn seed_000_setup(gw: &Gateway, up: &Upstream, route: Value) {
    put(
        gw,
        "/apisix/admin/consumers",
        json!({"username": "jack", "labels": {"custom_id": "495aec6a"}}),
    );
    put(
        gw,
        "/apisix/admin/consumers/jack/credentials",
        json!({"id": "cred-jack-jwt-auth", "plugins": {"jwt-auth": {"key": "jack-key", "secret": "jack-hs256-secret-that-is-very-long"}}}),
    );
    let mut route = route;
    route["upstream"] = json!({"type": "roundrobin", "nodes": {up.addr.to_string(): 1}});
    put(gw, "/apisix/admin/routes", route);
}

#[test]
fn seed_000_consumer_authentication() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "jwt-route", "uri": "/headers", "plugins": {"jwt-auth": {}}}),
    );
    let auth = format!("Authorization: {SEED_TOKEN}");
    let r = wait_for(
        &gw,
        "/headers",
        &[
            &auth,
            "X-Consumer-Username: forged",
            "X-Consumer-Custom-ID: forged",
        ],
        200,
    );
    assert_eq!(
        r.echoed_header("X-Consumer-Username").as_deref(),
        Some("jack")
    );
    assert_eq!(
        r.echoed_header("X-Credential-Identifier").as_deref(),
        Some("cred-jack-jwt-auth")
    );
    assert_eq!(
        r.echoed_header("X-Consumer-Custom-ID").as_deref(),
        Some("495aec6a")
    );
    assert_eq!(
        r.echoed_header("Authorization").as_deref(),
        Some(SEED_TOKEN)
    );

    let r = get(
        &gw,
        "/headers",
        &[&format!("Authorization: {SEED_BAD_TOKEN}")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "failed to verify jwt"}));
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer realm=\"jwt\""));
    assert_eq!(r.header("Content-Type"), Some("application/json"));

    let r = get(&gw, "/headers", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "Missing JWT token in request"}));
}

#[test]
fn seed_000_header_query_and_cookie() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "jwt-route", "uri": "/get", "plugins": {"jwt-auth": {"header": "jwt-auth-header", "query": "jwt-query", "cookie": "jwt-cookie"}}}),
    );
    wait_for(
        &gw,
        "/get",
        &[&format!("jwt-auth-header: {SEED_TOKEN}")],
        200,
    );
    let r = get(&gw, &format!("/get?jwt-query={SEED_TOKEN}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["uri"],
        json!(format!("/get?jwt-query={SEED_TOKEN}"))
    );
    let r = get(&gw, "/get", &[&format!("Cookie: jwt-cookie={SEED_TOKEN}")]);
    assert_eq!(r.status, 200);
}

#[test]
fn hide_credentials_end_to_end() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "r", "uri": "/h", "plugins": {"jwt-auth": {"hide_credentials": true}}}),
    );
    let r = wait_for(
        &gw,
        &format!("/h?foo=bar&jwt={SEED_TOKEN}&hello=world"),
        &[],
        200,
    );
    assert_eq!(r.json()["uri"], json!("/h?foo=bar&hello=world"));
    let r = get(&gw, "/h", &[&format!("Authorization: Bearer {SEED_TOKEN}")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.echoed_header("Authorization"), None);
}

#[test]
fn credential_changes_take_effect_at_once_and_keys_stay_unique() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "jwt-route", "uri": "/headers", "plugins": {"jwt-auth": {}}}),
    );
    let auth = format!("Authorization: {SEED_TOKEN}");
    wait_for(&gw, "/headers", &[&auth], 200);

    // Another consumer may not take jack's key.
    put(
        &gw,
        "/apisix/admin/consumers",
        json!({"username": "mallory"}),
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/mallory/credentials/c1",
        Some(json!({"plugins": {"jwt-auth": {"key": "jack-key", "secret": "mallory-secret"}}})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error_msg"],
        json!("duplicate key of plugin jwt-auth found with credential: cred-jack-jwt-auth of consumer: jack")
    );
    // Nothing half-applied: jack still authenticates, mallory has no credential.
    assert_eq!(get(&gw, "/headers", &[&auth]).status, 200);
    assert_eq!(
        admin(
            &gw,
            "GET",
            "/apisix/admin/consumers/mallory/credentials/c1",
            None
        )
        .status,
        404
    );

    // Changing the secret invalidates old tokens on every worker.
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials/cred-jack-jwt-auth",
        json!({"plugins": {"jwt-auth": {"key": "jack-key", "secret": "rotated-secret"}}}),
    );
    for _ in 0..20 {
        // Fresh connections land on both workers.
        assert_eq!(get(&gw, "/headers", &[&auth]).status, 401);
    }
    ok(admin(
        &gw,
        "DELETE",
        "/apisix/admin/consumers/jack/credentials/cred-jack-jwt-auth",
        None,
    ));
    let r = get(&gw, "/headers", &[&auth]);
    assert_eq!(
        r.json(),
        json!({"message": "Invalid user key in JWT token"})
    );
}

#[test]
fn bad_credentials_are_refused_with_apisix_messages() {
    let gw = admin_mode();
    put(
        &gw,
        "/apisix/admin/consumers/jack",
        json!({"username": "jack"}),
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/jack/credentials/c",
        Some(json!({"plugins": {"jwt-auth": {"key": "k"}}})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error_msg"],
        json!("invalid plugins configuration: failed to check the configuration of plugin jwt-auth err: property \"secret\" is required when using HS based algorithms")
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/jack/credentials/c",
        Some(
            json!({"plugins": {"jwt-auth": {"key": "k", "algorithm": "RS256", "public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"}}}),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/r",
        Some(
            json!({"uri": "/x", "plugins": {"jwt-auth": {"realm": 5}}, "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:1": 1}}}),
        ),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error_msg"],
        json!("failed to check the configuration of plugin jwt-auth err: property \"realm\" validation failed: wrong type: expected string, got number")
    );
    let r = admin(&gw, "GET", "/apisix/admin/plugins/list", None);
    assert_eq!(
        r.json(),
        json!(["jwt-auth", "jwt", "limit-count", "proxy-rewrite"])
    );
    let r = admin(
        &gw,
        "GET",
        "/apisix/admin/plugins/jwt-auth?schema_type=consumer",
        None,
    );
    assert_eq!(r.json()["required"], json!(["key"]));
}

/// Seed 004's Kong configuration with the service pointed at the local upstream.
fn seed_004(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
  - name: example-service
    url: http://{}/anything
    routes:
      - name: example-route
        paths:
          - /anything
consumers:
  - username: jsmith
    jwt_secrets:
       - algorithm: HS256
         key: YJdmaDvVTJxtcWRCvkMikc8oELgAVNcz
         secret: C50k0bcahDhLNhLKSUBSR1OMiFGzNZ7X
plugins:
  - name: jwt
    config:
      header_names:
      - authorization
      key_claim_name: iss
"#,
        up.addr
    )
}

const SEED_004_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJZSmRtYUR2VlRKeHRjV1JDdmtNaWtjOG9FTGdBVk5jeiJ9.xG-DrlD4vcYBqhuhK_jrwFIALvVvU-qTOiNyIfUhn_Y";

fn check_seed_004(gw: &Gateway) {
    let r = get(gw, "/anything", &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Unauthorized"}));
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
    let r = get(
        gw,
        "/anything",
        &[
            &format!("Authorization: Bearer {SEED_004_TOKEN}"),
            "Content-Type: application/json",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["uri"], json!("/anything"));
    assert_eq!(
        r.echoed_header("X-Consumer-Username").as_deref(),
        Some("jsmith")
    );
    assert_eq!(
        r.echoed_header("X-Credential-Identifier").as_deref(),
        Some("YJdmaDvVTJxtcWRCvkMikc8oELgAVNcz")
    );
}

#[test]
fn seed_004_kong_file_as_standalone_config() {
    let up = Upstream::start();
    let gw = Gateway::start(GatewayOpts {
        standalone: Some(seed_004(&up)),
        ..Default::default()
    });
    check_seed_004(&gw);
}

#[test]
fn seed_004_kong_file_imported_into_the_store() {
    let up = Upstream::start();
    let mut gw = admin_mode();
    // The store is locked while the gateway runs: stop it, import, start again.
    let file = gw.dir.path().join("kong.yaml");
    std::fs::write(&file, seed_004(&up)).unwrap();
    gw.terminate(Duration::from_secs(10))
        .expect("gateway stops");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["import"])
        .arg(&file)
        .arg("-c")
        .arg(gw.dir.path().join("config.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 5 objects"));
    gw.restart(false).unwrap();
    check_seed_004(&gw);

    // A file with a refused object writes nothing.
    gw.terminate(Duration::from_secs(10))
        .expect("gateway stops");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nconsumers:\n  - username: other\n    jwt_secrets:\n      - key: fresh-key\n        secret: s\n      - key: YJdmaDvVTJxtcWRCvkMikc8oELgAVNcz\n        secret: s\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["import"])
        .arg(&file)
        .arg("-c")
        .arg(gw.dir.path().join("config.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing imported") && err.contains("duplicate key"),
        "{err}"
    );
    gw.restart(false).unwrap();
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/consumers/other", None).status,
        404
    );
    check_seed_004(&gw);
}

fn hs256(secret: &str, payload: Value) -> String {
    portcullis::jwt::sign(
        portcullis::jwt::Alg::HS256,
        &portcullis::jwt::SignKey::Hmac(secret.as_bytes().to_vec()),
        &serde_json::Map::new(),
        &payload,
    )
    .expect("HS256 signing works")
}

fn statuses(gw: &Gateway, path: &str, headers: &[&str], n: usize) -> Vec<u16> {
    (0..n).map(|_| get(gw, path, headers).status).collect()
}

#[test]
fn seed_001_per_consumer_quotas() {
    let up = Upstream::start();
    let gw = admin_mode();
    for (user, custom, count) in [
        ("johndoe", "john-doe-junior", 1),
        ("janedoe", "jane-doe-senior", 2),
    ] {
        put(
            &gw,
            "/apisix/admin/consumers",
            json!({"username": user, "labels": {"custom_id": custom},
                "plugins": {"limit-count": {"count": count, "time_window": 30, "rejected_code": 429}}}),
        );
    }
    for (user, id, key, secret) in [
        (
            "johndoe",
            "cred-john-jwt-auth",
            "john-key",
            "john-hs256-secret",
        ),
        (
            "janedoe",
            "cred-jane-jwt-auth",
            "jane-key",
            "jane-hs256-secret",
        ),
    ] {
        put(
            &gw,
            &format!("/apisix/admin/consumers/{user}/credentials"),
            json!({"id": id, "plugins": {"jwt-auth": {"key": key, "secret": secret}}}),
        );
    }
    put(
        &gw,
        "/apisix/admin/routes",
        json!({"id": "jwt-auth-route", "uri": "/anything", "plugins": {"jwt-auth": {}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
    let john = format!(
        "Authorization: {}",
        hs256(
            "john-hs256-secret",
            json!({"key": "john-key", "nbf": 1729132271})
        )
    );
    let jane = format!(
        "Authorization: {}",
        hs256(
            "jane-hs256-secret",
            json!({"key": "jane-key", "nbf": 1729132271})
        )
    );
    let r = get(&gw, "/anything", &[&john]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.echoed_header("X-Consumer-Custom-ID").as_deref(),
        Some("john-doe-junior")
    );
    assert_eq!(r.header("X-RateLimit-Limit"), Some("1"));
    assert_eq!(r.header("X-RateLimit-Remaining"), Some("0"));
    // John's quota (1 per 30 s) is used up; across fresh connections, so across workers.
    assert_eq!(statuses(&gw, "/anything", &[&john], 3), [429, 429, 429]);
    assert_eq!(statuses(&gw, "/anything", &[&jane], 3), [200, 200, 429]);
    let r = get(&gw, "/anything", &["Authorization: somewrongkey"]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "JWT token invalid"}));
}

#[test]
fn seed_000_anonymous_consumer_quota() {
    let up = Upstream::start();
    let gw = admin_mode();
    put(
        &gw,
        "/apisix/admin/consumers",
        json!({"username": "jack",
        "plugins": {"limit-count": {"count": 3, "time_window": 30, "rejected_code": 429}}}),
    );
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials",
        json!({"id": "cred-jack-jwt-auth", "plugins": {"jwt-auth": {"key": "jack-key", "secret": "jack-hs256-secret-that-is-very-long"}}}),
    );
    put(
        &gw,
        "/apisix/admin/consumers",
        json!({"username": "anonymous",
        "plugins": {"limit-count": {"count": 1, "time_window": 30, "rejected_code": 429}}}),
    );
    put(
        &gw,
        "/apisix/admin/routes",
        json!({"id": "jwt-auth-route", "uri": "/anything", "plugins": {"jwt-auth": {"anonymous_consumer": "anonymous"}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
    let auth = format!("Authorization: {SEED_TOKEN}");
    let jack = statuses(&gw, "/anything", &[&auth], 5);
    assert_eq!(jack, [200, 200, 200, 429, 429]);
    let anon = statuses(&gw, "/anything", &[], 5);
    assert_eq!(anon, [200, 429, 429, 429, 429]);
}

/// A Vault KV v1 stand-in on loopback: `GET /v1/kv/apisix/jack` with token `root`.
fn fake_vault(secret: &'static str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                authorized |= h.to_ascii_lowercase().trim() == "x-vault-token: root";
            }
            let body = if authorized && line.starts_with("GET /v1/kv/apisix/jack ") {
                json!({"data": {"jwt-secret": secret}}).to_string()
            } else {
                "{\"errors\":[]}".to_string()
            };
            let status = if body.contains("data") {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn seed_000_secrets_from_env_and_vault() {
    let up = Upstream::start();
    std::env::set_var(
        "PORTCULLIS_E2E_JACK_JWT_SECRET",
        "jack-hs256-secret-that-is-very-long",
    );
    let gw = admin_mode();
    put(&gw, "/apisix/admin/consumers", json!({"username": "jack"}));
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials",
        json!({"id": "cred-jack-jwt-auth", "plugins": {"jwt-auth": {"key": "jack-key", "secret": "$env://PORTCULLIS_E2E_JACK_JWT_SECRET"}}}),
    );
    put(
        &gw,
        "/apisix/admin/routes",
        json!({"id": "jwt-route", "uri": "/get", "plugins": {"jwt-auth": {}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
    wait_for(&gw, "/get", &[&format!("Authorization: {SEED_TOKEN}")], 200);

    // Vault: the credential is unusable until its secret manager exists, then works.
    const VAULT_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJqd3QtdmF1bHQta2V5IiwibmJmIjoxNzI5MTMyMjcxfQ.i2pLj7QcQvnlSjB7iV5V522tIV43boQRtee7L0rwlkQ";
    let vault_auth = format!("Authorization: {VAULT_TOKEN}");
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials/cred-vault",
        json!({"plugins": {"jwt-auth": {"key": "jwt-vault-key", "secret": "$secret://vault/jwt/jack/jwt-secret"}}}),
    );
    let r = get(&gw, "/get", &[&vault_auth]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "failed to verify jwt"}));
    let uri = fake_vault("vault-hs256-secret-that-is-very-long");
    put(
        &gw,
        "/apisix/admin/secrets/vault/jwt",
        json!({"uri": uri, "prefix": "kv/apisix", "token": "root"}),
    );
    let r = get(&gw, "/get", &[&vault_auth]);
    assert_eq!(r.status, 200, "{} {}", r.text(), gw.stderr());
    assert_eq!(
        r.echoed_header("X-Credential-Identifier").as_deref(),
        Some("cred-vault")
    );
    assert!(
        !gw.stderr().contains("root\""),
        "the Vault token is never logged"
    );
}

#[test]
fn admin_signs_tokens_for_a_credential_and_cli_tools_work() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "jwt-route", "uri": "/headers", "plugins": {"jwt-auth": {}}}),
    );
    let r = admin(
        &gw,
        "POST",
        "/apisix/admin/consumers/jack/credentials/cred-jack-jwt-auth/sign",
        Some(json!({"payload": {"user": "oiloil"}, "expires_in": 60})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = wait_for(&gw, "/headers", &[&format!("Authorization: {token}")], 200);
    assert_eq!(
        r.echoed_header("X-Consumer-Username").as_deref(),
        Some("jack")
    );
    assert_eq!(
        admin(
            &gw,
            "POST",
            "/apisix/admin/consumers/jack/credentials/nope/sign",
            None
        )
        .status,
        404
    );

    // The offline signer reproduces seed 000's token exactly, and inspect explains refusals.
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let out = std::process::Command::new(bin)
        .args([
            "token",
            "sign",
            "--claim",
            "key=jack-key",
            "--claim",
            "nbf=1729132271",
        ])
        .env(
            "PORTCULLIS_JWT_SECRET",
            "jack-hs256-secret-that-is-very-long",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SEED_TOKEN);
    let out = std::process::Command::new(bin)
        .args([
            "token",
            "inspect",
            SEED_BAD_TOKEN,
            "--secret",
            "jack-hs256-secret-that-is-very-long",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("jwt-auth (APISIX): would refuse: signature"),
        "{text}"
    );
    assert!(text.contains("expires"), "{text}");
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Consumer `jack` and a jwt-auth route on `/headers` to `up`.
fn jack_and_jwt_route(gw: &Gateway, up: &Upstream) {
    put(gw, "/apisix/admin/consumers", json!({"username": "jack"}));
    put(
        gw,
        "/apisix/admin/routes",
        json!({"id": "jwt-route", "uri": "/headers", "plugins": {"jwt-auth": {}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
}

/// Writes (or rewrites) jack's jwt-auth credential: `key`, `alg`, the public key in fixture
/// `public`.
fn put_public_key(gw: &Gateway, key: &str, alg: &str, public: &str) {
    put(
        gw,
        "/apisix/admin/consumers/jack/credentials",
        json!({"id": "cred-jack-jwt-auth", "plugins": {"jwt-auth": {"key": key, "algorithm": alg, "public_key": fixture(public)}}}),
    );
}

#[test]
fn rs256_seed_flow_and_key_rotation_reach_every_worker() {
    let up = Upstream::start();
    let gw = admin_mode();
    jack_and_jwt_route(&gw, &up);
    put_public_key(&gw, "jack-key", "RS256", "rsa2048.pub.pem");
    let token = portcullis::jwt::sign(
        portcullis::jwt::Alg::RS256,
        &portcullis::jwt::SignKey::Pem(fixture("rsa2048.pem")),
        &serde_json::Map::new(),
        &json!({"key": "jack-key", "nbf": 1729132271}),
    )
    .unwrap();
    let auth = format!("Authorization: {token}");
    // Warm both workers' caches.
    for _ in 0..20 {
        assert_eq!(get(&gw, "/headers", &[&auth]).status, 200);
    }
    // Rotate the key: every worker refuses the old token at once, cached or not.
    put_public_key(&gw, "jack-key", "RS256", "rsa1024.pub.pem");
    for _ in 0..20 {
        let r = get(&gw, "/headers", &[&auth]);
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"message": "failed to verify jwt"}));
    }
    // An ES256 credential with an RSA key is refused at write time (APISIX stores it).
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/jack/credentials/es",
        Some(
            json!({"plugins": {"jwt-auth": {"key": "es-key", "algorithm": "ES256", "public_key": fixture("rsa2048.pub.pem")}}}),
        ),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("ES256 needs a P-256 key, got an RSA key"),
        "{}",
        r.text()
    );
}

/// ES256 with the verified-token cache off, so every request is a full check: with the
/// per-key tables (the default) and without them (`jwt_es256_tables: 0`, ring), both workers
/// accept every token the key signed, refuse tampered and foreign ones, and follow a key
/// rotation at once.
#[test]
fn es256_full_checks_with_and_without_key_tables() {
    use portcullis::jwt::{sign, Alg, SignKey};
    let up = Upstream::start();
    let es = |pem: &str, n: usize| {
        sign(
            Alg::ES256,
            &SignKey::Pem(fixture(pem)),
            &serde_json::Map::new(),
            &json!({"key": "es-key", "n": n}),
        )
        .unwrap()
    };
    for tables in ["", "jwt_es256_tables: 0\n"] {
        let gw = Gateway::start(GatewayOpts {
            standalone: None,
            extra_config: format!("jwt_cache_size: 0\n{tables}"),
            ..Default::default()
        });
        jack_and_jwt_route(&gw, &up);
        put_public_key(&gw, "es-key", "ES256", "ecp256.pub.pem");
        let refused = |token: &str| {
            let r = get(&gw, "/headers", &[&format!("Authorization: {token}")]);
            assert_eq!(r.status, 401, "{tables:?}");
            assert_eq!(r.json(), json!({"message": "failed to verify jwt"}));
        };
        // A connection per request: the kernel spreads them over both workers.
        for n in 0..40 {
            let token = es("ecp256.pem", n);
            let r = get(
                &gw,
                "/headers",
                &[
                    &format!("Authorization: {token}"),
                    "X-Consumer-Custom-ID: forged",
                ],
            );
            assert_eq!(r.status, 200, "token {n} {tables:?}: {}", r.text());
            // jack has no custom_id: a client's own header is removed, not passed on.
            assert_eq!(r.echoed_header("X-Consumer-Custom-ID"), None);
            assert_eq!(
                r.echoed_header("X-Consumer-Username").as_deref(),
                Some("jack")
            );
            // One signature bit flipped (a middle character of the third part).
            let mut bad = token.into_bytes();
            let i = bad.len() - 20;
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            refused(std::str::from_utf8(&bad).unwrap());
        }
        let other = es("openssl/p256_pkcs8.pem", 0);
        refused(&other);
        // Rotation: the old key's tokens are refused everywhere, the new key's accepted.
        put_public_key(&gw, "es-key", "ES256", "openssl/p256_spki.pub.pem");
        wait_for(&gw, "/headers", &[&format!("Authorization: {other}")], 200);
        for n in 0..10 {
            refused(&es("ecp256.pem", n));
            let token = es("openssl/p256_pkcs8.pem", n);
            let r = get(&gw, "/headers", &[&format!("Authorization: {token}")]);
            assert_eq!(r.status, 200, "{tables:?}");
        }
    }
}

#[test]
fn gateway_answers_to_head_have_no_body_and_keep_the_connection() {
    let up = Upstream::start();
    let gw = admin_mode();
    seed_000_setup(
        &gw,
        &up,
        json!({"id": "jwt-route", "uri": "/headers", "plugins": {"jwt-auth": {}}}),
    );
    wait_for(&gw, "/headers", &[], 401);
    let mut c = common::client::Conn::open(gw.addr());
    for path in ["/headers", "/no-such-route"] {
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let r = c.read(true).expect("a response to HEAD");
        assert!(r.status == 401 || r.status == 404, "{}", r.status);
        assert!(r.body.is_empty());
        assert!(
            r.header("Content-Length").is_some_and(|l| l != "0"),
            "the GET answer's length"
        );
    }
    // The connection is still in step: a GET on it gets its own answer.
    c.send(
        format!("GET /headers HTTP/1.1\r\nHost: t\r\nAuthorization: {SEED_TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    let r = c.read(false).expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn limit_count_is_exact_under_concurrent_load_across_workers() {
    let up = Upstream::start();
    let gw = admin_mode();
    put(
        &gw,
        "/apisix/admin/routes/limited",
        json!({"uri": "/limited", "plugins": {"limit-count": {"count": 50, "time_window": 600, "rejected_code": 429, "key_type": "constant", "key": "all"}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}}),
    );
    wait_for(&gw, "/limited", &[], 200); // spends one of the 50
    let addr = gw.addr();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut counts = (0usize, 0usize);
                // Fresh connections (spread over both workers by SO_REUSEPORT) and keep-alive ones.
                let mut keep = common::client::Conn::open(addr);
                for i in 0..25 {
                    let status = if i % 2 == 0 {
                        common::client::get(addr, "/limited").status
                    } else {
                        keep.get("/limited").status
                    };
                    match status {
                        200 => counts.0 += 1,
                        429 => counts.1 += 1,
                        other => panic!("unexpected {other}"),
                    }
                }
                counts
            })
        })
        .collect();
    let (mut ok200, mut limited) = (0, 0);
    for t in threads {
        let (a, b) = t.join().unwrap();
        ok200 += a;
        limited += b;
    }
    assert_eq!(
        ok200, 49,
        "exactly the quota passes, whatever the interleaving"
    );
    assert_eq!(limited, 200 - 49);
}

/// Deleting a consumer, or changing a Kong credential's key, refuses its old tokens on every
/// worker at once, for both plugins and for tokens served from the verified-token cache.
#[test]
fn consumer_deletion_and_key_changes_refuse_old_tokens() {
    let up = Upstream::start();
    let gw = admin_mode();
    let node = json!({"type": "roundrobin", "nodes": {up.addr.to_string(): 1}});
    put(&gw, "/apisix/admin/consumers", json!({"username": "jack"}));
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials/rs",
        json!({"plugins": {"jwt-auth": {"key": "jack-key", "algorithm": "RS256", "public_key": fixture("rsa2048.pub.pem")}}}),
    );
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials/kong",
        json!({"plugins": {"jwt": {"key": "jack-iss", "secret": "jack-kong-secret"}}}),
    );
    put(
        &gw,
        "/apisix/admin/routes/a",
        json!({"uri": "/apisix", "plugins": {"jwt-auth": {}}, "upstream": node}),
    );
    put(
        &gw,
        "/apisix/admin/routes/k",
        json!({"uri": "/kong", "plugins": {"jwt": {}}, "upstream": node}),
    );
    let rs = portcullis::jwt::sign(
        portcullis::jwt::Alg::RS256,
        &portcullis::jwt::SignKey::Pem(fixture("rsa2048.pem")),
        &serde_json::Map::new(),
        &json!({"key": "jack-key"}),
    )
    .unwrap();
    let apisix = format!("Authorization: {rs}");
    let kong = format!(
        "Authorization: Bearer {}",
        hs256("jack-kong-secret", json!({"iss": "jack-iss"}))
    );
    wait_for(&gw, "/kong", &[&kong], 200);
    // Warm both workers' token caches with the RS256 token.
    for _ in 0..20 {
        assert_eq!(get(&gw, "/apisix", &[&apisix]).status, 200);
        assert_eq!(get(&gw, "/kong", &[&kong]).status, 200);
    }
    // A new key for the Kong credential: the old key is gone at once.
    put(
        &gw,
        "/apisix/admin/consumers/jack/credentials/kong",
        json!({"plugins": {"jwt": {"key": "jack-iss-2", "secret": "jack-kong-secret"}}}),
    );
    for _ in 0..20 {
        let r = get(&gw, "/kong", &[&kong]);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"message": "No credentials found for given 'iss'"})
        );
    }
    // Deleting the consumer takes its credentials with it.
    ok(admin(&gw, "DELETE", "/apisix/admin/consumers/jack", None));
    let kong2 = format!(
        "Authorization: Bearer {}",
        hs256("jack-kong-secret", json!({"iss": "jack-iss-2"}))
    );
    for _ in 0..20 {
        let r = get(&gw, "/apisix", &[&apisix]);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"message": "Invalid user key in JWT token"})
        );
        let r = get(&gw, "/kong", &[&kong2]);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"message": "No credentials found for given 'iss'"})
        );
    }
}
