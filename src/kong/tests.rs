use serde_json::{json, Value};

use super::translate::is_kong;
use super::*;

/// Seed 004's configuration, with Kong's tutorial prerequisites (service and route).
pub const SEED_004: &str = r#"
_format_version: "3.0"
services:
  - name: example-service
    url: http://httpbin.konghq.com/anything
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
"#;

fn doc(y: &str) -> Value {
    serde_norway::from_str(y).unwrap()
}

fn get<'a>(t: &'a Translation, key: &str) -> &'a Value {
    &t.objects
        .iter()
        .find(|o| o.key == key)
        .unwrap_or_else(|| panic!("{key} missing from {:#?}", t.objects))
        .value
}

#[test]
fn seed_004_translates_completely() {
    let d = doc(SEED_004);
    assert!(is_kong(&d));
    let t = translate(&d);
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    let svc = get(&t, "/apisix/services/example-service");
    assert_eq!(
        svc["upstream"]["nodes"],
        json!({"httpbin.konghq.com:80": 1})
    );
    assert_eq!(svc["upstream"]["pass_host"], json!("node"));
    assert!(svc.get("_kong_path").is_none());
    let route = get(&t, "/apisix/routes/example-route");
    assert_eq!(route["uris"], json!(["/anything*"]));
    assert_eq!(route["service_id"], json!("example-service"));
    assert!(
        route.get("plugins").is_none(),
        "service path equals route path: no rewrite"
    );
    assert_eq!(
        get(&t, "/apisix/consumers/jsmith")["username"],
        json!("jsmith")
    );
    let cred = get(&t, "/apisix/consumers/jsmith/credentials/jwt-1");
    assert_eq!(
        cred["plugins"]["jwt"],
        json!({"algorithm": "HS256", "key": "YJdmaDvVTJxtcWRCvkMikc8oELgAVNcz", "secret": "C50k0bcahDhLNhLKSUBSR1OMiFGzNZ7X"})
    );
    let global = get(&t, "/apisix/global_rules/kong-global");
    assert_eq!(global["plugins"]["jwt"]["key_claim_name"], json!("iss"));
    // Order: services, routes, consumers, credentials, global rules.
    let keys: Vec<&str> = t.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/apisix/services/example-service",
            "/apisix/routes/example-route",
            "/apisix/consumers/jsmith",
            "/apisix/consumers/jsmith/credentials/jwt-1",
            "/apisix/global_rules/kong-global"
        ]
    );
}

#[test]
fn untranslatable_pieces_are_listed() {
    let t = translate(&doc(r#"
_format_version: "3.0"
certificates: []
services:
  - name: s
    host: up.local
    port: 8080
    protocol: grpc
  - name: t
    host: up.local
    tls_verify_depth: 2
    routes:
      - name: r
        paths: ["~/regex$"]
consumers:
  - username: u
    keyauth_credentials: [{key: k}]
plugins:
  - name: rate-limiting
    config: {minute: 5}
"#));
    let all = t.skipped.join("\n");
    for needle in [
        "certificates",
        "services[0]: protocol grpc",
        "services[1].tls_verify_depth",
        "services[1].routes[0]: regex path",
        "consumers[0].keyauth_credentials",
        "plugins[0] (rate-limiting)",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
}

#[test]
fn paths_timeouts_and_hosts() {
    let t = translate(&doc(r#"
_format_version: "3.0"
services:
  - name: s
    host: up.local
    port: 8080
    path: /api
    connect_timeout: 5000
    read_timeout: 60000
    retries: 2
    routes:
      - name: strip
        paths: [/v1]
      - name: keep
        paths: [/v2]
        strip_path: false
        preserve_host: true
        hosts: [a.example.com]
        methods: [GET]
  - name: root
    url: http://up.local:9000
    routes:
      - name: r
        paths: [/svc/]
"#));
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let s = get(&t, "/apisix/services/s");
    assert_eq!(
        s["upstream"]["timeout"],
        json!({"connect": 5.0, "read": 60.0})
    );
    assert_eq!(s["upstream"]["retries"], json!(2));
    let strip = get(&t, "/apisix/routes/strip");
    assert_eq!(
        strip["plugins"]["proxy-rewrite"]["regex_uri"],
        json!(["^/v1(.*)", "/api$1"])
    );
    let keep = get(&t, "/apisix/routes/keep");
    assert_eq!(
        keep["plugins"]["proxy-rewrite"]["regex_uri"],
        json!(["^(.*)", "/api$1"])
    );
    assert_eq!(keep["upstream"]["pass_host"], json!("pass"));
    assert_eq!(keep["hosts"], json!(["a.example.com"]));
    assert_eq!(keep["methods"], json!(["GET"]));
    let r = get(&t, "/apisix/routes/r");
    assert_eq!(
        r["plugins"]["proxy-rewrite"]["regex_uri"],
        json!(["^/svc/?(.*)", "/$1"])
    );
}

/// The `proxy-rewrite` rules a translation emits compile and give Kong's upstream paths.
#[test]
fn strip_path_rules_give_kongs_upstream_paths() {
    use crate::plugins::phase::{Ctx, Edits};
    use crate::plugins::proxy_rewrite;
    use crate::plugins::testing::Raw;
    use crate::plugins::vars::Facts;
    let t = translate(&doc(r#"
_format_version: "3.0"
services:
  - name: s
    url: http://up.local:8080/api
    routes:
      - {name: strip, paths: [/v1, /v1.5/]}
      - {name: keep, paths: [/v2], strip_path: false}
  - name: root
    url: http://up.local
    routes:
      - {name: r, paths: [/svc/]}
      - {name: all, strip_path: true}
"#));
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let facts = Facts {
        route_id: "r",
        service_id: None,
        server_port: 80,
        scheme: "http",
    };
    let upstream_path = |route: &str, path: &str| -> String {
        let r = get(&t, &format!("/apisix/routes/{route}"));
        let Some(conf) = r.get("plugins").and_then(|p| p.get(proxy_rewrite::NAME)) else {
            return path.to_string();
        };
        let c = proxy_rewrite::compile(conf).expect("translated rules compile");
        let raw = Raw::get(path, &[]);
        let mut e = Edits::default();
        proxy_rewrite::access(&c, &raw.req(), &facts, &Ctx::default(), &mut e).unwrap();
        e.target
            .map_or(path.to_string(), |t| String::from_utf8(t).unwrap())
    };
    assert_eq!(upstream_path("strip", "/v1"), "/api");
    assert_eq!(upstream_path("strip", "/v1/users?x=1"), "/api/users?x=1");
    assert_eq!(upstream_path("strip", "/v1x"), "/apix");
    assert_eq!(upstream_path("strip", "/v1.5/a"), "/api/a");
    assert_eq!(upstream_path("keep", "/v2/users"), "/api/v2/users");
    assert_eq!(upstream_path("r", "/svc/a/b"), "/a/b");
    assert_eq!(upstream_path("all", "/a/b"), "/a/b");
}

#[test]
fn format_errors() {
    assert!(!translate(&doc("services: []\n")).errors.is_empty());
    assert!(!translate(&doc("_format_version: \"9.0\"\n"))
        .errors
        .is_empty());
    let t = translate(&doc("_format_version: \"3.0\"\nservices: {}\n"));
    assert!(
        t.errors.iter().any(|e| e.contains("services")),
        "{:?}",
        t.errors
    );
    let t = translate(&doc(
        "_format_version: \"3.0\"\njwt_secrets: [{key: k, consumer: nobody}]\n",
    ));
    assert!(
        t.errors.iter().any(|e| e.contains("nobody")),
        "{:?}",
        t.errors
    );
}

/// Replays the committed `fuzz_config` corpus through the fuzz target's calls.
#[test]
fn fuzz_config_corpus_replays() {
    use crate::admin::kind::{validate, Kind};
    use crate::plugins::Registry;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_config");
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus is committed") {
        // A fuzzer running on the same corpus may remove an entry while we list it.
        let Ok(data) = std::fs::read(entry.unwrap().path()) else {
            continue;
        };
        if let Ok(v) = serde_json::from_slice::<Value>(&data) {
            for kind in [
                Kind::Routes,
                Kind::Consumers,
                Kind::Credentials,
                Kind::Secrets,
                Kind::Ssls,
            ] {
                let _ = validate(kind, &v, "fuzz", &Registry);
            }
            let _ = translate(&v);
        }
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = crate::model::parse_standalone(text, false, &Registry);
            if let Ok(doc) = crate::model::parse_text(text, false) {
                let _ = translate(&doc);
            }
        }
        replayed += 1;
    }
    assert!(replayed >= 5);
}

#[test]
fn https_services_keep_their_tls_verify() {
    let t = translate(&doc(r#"
_format_version: "3.0"
services:
  - name: checked
    url: https://up.local/api
  - name: unchecked
    url: https://up.local:8443
    tls_verify: false
"#));
    assert!(t.errors.is_empty() && t.skipped.is_empty(), "{t:?}");
    let checked = &get(&t, "/apisix/services/checked")["upstream"];
    assert_eq!(checked["scheme"], json!("https"));
    assert_eq!(checked["nodes"], json!({"up.local:443": 1}));
    assert_eq!(checked.get("tls"), None, "verified: our default");
    let unchecked = &get(&t, "/apisix/services/unchecked")["upstream"];
    assert_eq!(unchecked["tls"], json!({"verify": false}));
    crate::model::Upstream::from_json(unchecked, None).expect("a valid upstream");
}

/// Kong usernames our usernames cannot spell (a dot, an `@`) and consumers with only a
/// `custom_id` import, keep what Kong's `jwt` sends as `X-Consumer-Username`, and stay
/// reachable by `anonymous` under their Kong names.
#[test]
fn kong_usernames_survive_the_import() {
    let d = doc(r#"
_format_version: "3.0"
services:
  - name: s
    url: http://up.local:8080
    routes:
      - name: r
        paths: [/r]
        plugins:
          - name: jwt
            config: {anonymous: john.doe}
consumers:
  - username: john.doe
    jwt_secrets: [{key: john-iss, secret: john-secret}]
  - username: alice@example.com
    id: 5f4e2a0c-1111-4222-8333-944455556666
    jwt_secrets: [{key: alice-iss, secret: alice-secret}]
  - custom_id: c-9
    jwt_secrets: [{key: c9-iss, secret: c9-secret}]
  - username: plain
plugins:
  - name: jwt
    config: {anonymous: alice@example.com}
"#);
    let t = translate(&d);
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let global = get(&t, "/apisix/global_rules/kong-global");
    assert_eq!(
        global["plugins"]["jwt"]["anonymous"],
        json!("5f4e2a0c-1111-4222-8333-944455556666")
    );
    let route = get(&t, "/apisix/routes/r");
    let anon = route["plugins"]["jwt"]["anonymous"].as_str().unwrap();
    // Every translated object is valid: the snapshot validates them all.
    let snap = import::snapshot(&d).expect("the file imports");
    let idx = &snap.consumers;
    let john = idx
        .consumer(anon)
        .expect("anonymous resolves to john.doe's consumer");
    assert_eq!(john.kong_username.as_deref(), Some("john.doe"));
    assert_ne!(&*john.username, "john.doe", "a dot is not in our usernames");
    let by_id = idx
        .consumer("5f4e2a0c-1111-4222-8333-944455556666")
        .unwrap();
    assert_eq!(by_id.kong_username.as_deref(), Some("alice@example.com"));
    let c9 = idx
        .credential(crate::consumers::Scheme::KongJwt, "c9-iss")
        .unwrap();
    assert_eq!(c9.consumer.kong_username, None);
    assert_eq!(c9.consumer.custom_id.as_deref(), Some("c-9"));
    let plain = idx.consumer("plain").unwrap();
    assert_eq!(plain.kong_username.as_deref(), Some("plain"));

    // What Kong's plugin sends upstream for each.
    use crate::plugins::testing::{hs256, run, Raw};
    let conf = crate::plugins::kong_jwt::route_conf(&json!({})).unwrap();
    let cache = crate::plugins::token_cache::TokenCache::new(16);
    let send = |secret: &[u8], iss: &str| {
        let t = hs256(secret, &json!({"iss": iss}));
        run(
            &Raw::get(
                "/",
                &[
                    &format!("Authorization: Bearer {t}"),
                    "X-Consumer-Username: forged",
                ],
            ),
            1_800_000_000,
            |req, ctx, edits| crate::plugins::kong_jwt::access(&conf, req, idx, &cache, ctx, edits),
        )
    };
    let o = send(b"alice-secret", "alice-iss");
    assert_eq!(o.set("X-Consumer-Username"), Some("alice@example.com"));
    assert_eq!(
        o.set("X-Consumer-ID"),
        Some("5f4e2a0c-1111-4222-8333-944455556666")
    );
    let o = send(b"c9-secret", "c9-iss");
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), None);
    assert!(o.dropped("X-Consumer-Username"));
    assert_eq!(o.set("X-Consumer-Custom-ID"), Some("c-9"));
    let o = send(b"john-secret", "john-iss");
    assert_eq!(o.set("X-Consumer-Username"), Some("john.doe"));
}
