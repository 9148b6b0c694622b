//! `jwt-auth` against the reference's tables (APISIX §1.1–1.6).

use serde_json::json;

use super::*;
use crate::plugins::testing::{hs256, hs256_with, index, run, Outcome, Raw};
use crate::plugins::token_cache::TokenCache;

const SECRET: &str = "jack-hs256-secret-that-is-very-long";
const NOW: i64 = 1_800_000_000;

fn jack() -> std::sync::Arc<crate::consumers::ConsumerIndex> {
    index(&[
        (
            json!({"username": "jack", "labels": {"custom_id": "495aec6a"}}),
            vec![(
                "cred-jack-jwt-auth",
                json!({"jwt-auth": {"key": "jack-key", "secret": SECRET}}),
            )],
        ),
        (json!({"username": "anonymous"}), vec![]),
        (
            json!({"username": "inline", "plugins": {"jwt-auth": {"key": "inline-key", "secret": "s3"}}}),
            vec![],
        ),
    ])
}

fn check(conf: serde_json::Value, raw: &Raw) -> Outcome {
    check_in(&jack(), conf, raw)
}

/// `jwt-auth` with route configuration `conf` over the consumers of `idx`.
fn check_in(idx: &crate::consumers::ConsumerIndex, conf: serde_json::Value, raw: &Raw) -> Outcome {
    let conf = route_conf(&conf).expect("valid route conf");
    run(raw, NOW, |req, ctx, edits| {
        access(&conf, req, idx, &TokenCache::new(16), ctx, edits)
    })
}

fn token() -> String {
    hs256(
        SECRET.as_bytes(),
        &json!({"key": "jack-key", "nbf": 1729132271}),
    )
}

fn denied(o: &Outcome, msg: &str) {
    assert_eq!(o.status(), 401);
    assert_eq!(o.body(), json!({ "message": msg }));
    assert_eq!(o.header("WWW-Authenticate"), Some("Bearer realm=\"jwt\""));
}

#[test]
fn seed_token_in_header_without_prefix_passes_and_sets_headers() {
    let o = check(
        json!({}),
        &Raw::get("/headers", &[&format!("Authorization: {}", token())]),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(o.set("X-Consumer-Username"), Some("jack"));
    assert_eq!(o.set("X-Credential-Identifier"), Some("cred-jack-jwt-auth"));
    assert_eq!(o.set("X-Consumer-Custom-ID"), Some("495aec6a"));
    assert!(
        !o.dropped("authorization"),
        "hide_credentials is off by default"
    );
}

#[test]
fn bearer_prefix_is_stripped_only_in_two_spellings() {
    for prefix in ["Bearer ", "bearer "] {
        let o = check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {prefix}{}", token())]),
        );
        assert!(o.result.is_ok(), "{prefix}");
    }
    for prefix in ["BEARER ", "Basic "] {
        let o = check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {prefix}{}", token())]),
        );
        denied(&o, "JWT token invalid");
    }
}

#[test]
fn missing_token_everywhere() {
    denied(
        &check(json!({}), &Raw::get("/", &[])),
        "Missing JWT token in request",
    );
}

#[test]
fn custom_header_query_and_cookie_sources() {
    let conf = json!({"header": "jwt-auth-header", "query": "jwt-query", "cookie": "jwt-cookie"});
    let t = token();
    for raw in [
        Raw::get("/get", &[&format!("JWT-Auth-Header: {t}")]),
        Raw::get(&format!("/get?jwt-query={t}"), &[]),
        Raw::get("/get", &[&format!("Cookie: a=b; jwt-cookie={t}")]),
    ] {
        let o = check(conf.clone(), &raw);
        assert!(o.result.is_ok(), "{:?}", o.result);
    }
    // The default names are not read once others are configured.
    let o = check(conf, &Raw::get("/get", &[&format!("Authorization: {t}")]));
    denied(&o, "Missing JWT token in request");
}

#[test]
fn first_present_source_wins_even_when_bad() {
    let t = token();
    let o = check(
        json!({}),
        &Raw::get(&format!("/?jwt={t}"), &["Authorization: garbage"]),
    );
    denied(&o, "JWT token invalid");
    let o = check(
        json!({}),
        &Raw::get("/?jwt=garbage", &[&format!("Cookie: jwt={t}")]),
    );
    denied(&o, "JWT token invalid");
}

#[test]
fn key_claim_rules() {
    let o = check(
        json!({}),
        &Raw::get(
            "/",
            &[&format!(
                "Authorization: {}",
                hs256(SECRET.as_bytes(), &json!({"sub": 1}))
            )],
        ),
    );
    denied(&o, "missing user key in JWT token");
    let o = check(
        json!({}),
        &Raw::get(
            "/",
            &[&format!(
                "Authorization: {}",
                hs256(SECRET.as_bytes(), &json!({"key": false}))
            )],
        ),
    );
    denied(&o, "missing user key in JWT token");
    let o = check(
        json!({}),
        &Raw::get(
            "/",
            &[&format!(
                "Authorization: {}",
                hs256(SECRET.as_bytes(), &json!({"key": "nobody"}))
            )],
        ),
    );
    denied(&o, "Invalid user key in JWT token");
    // key_claim_name reads another payload claim.
    let t = hs256(SECRET.as_bytes(), &json!({"iss": "jack-key"}));
    let o = check(
        json!({"key_claim_name": "iss"}),
        &Raw::get("/", &[&format!("Authorization: {t}")]),
    );
    assert!(o.result.is_ok());
}

#[test]
fn algorithm_is_pinned_by_the_credential() {
    // alg none, and an HS512 header on an HS256 credential, fail before any signature check.
    for alg in ["none", "HS512", "RS256"] {
        let t = hs256_with(
            SECRET.as_bytes(),
            &json!({"alg": alg, "typ": "JWT"}),
            &json!({"key": "jack-key"}),
        );
        denied(
            &check(json!({}), &Raw::get("/", &[&format!("Authorization: {t}")])),
            "failed to verify jwt",
        );
    }
    // A token with no alg at all.
    let t = hs256_with(
        SECRET.as_bytes(),
        &json!({"typ": "JWT"}),
        &json!({"key": "jack-key"}),
    );
    denied(
        &check(json!({}), &Raw::get("/", &[&format!("Authorization: {t}")])),
        "failed to verify jwt",
    );
}

#[test]
fn bad_signatures_are_401_never_500() {
    let t = token();
    let (input, _) = t.rsplit_once('.').unwrap();
    for sig in ["kdhumNWrZFxjU_random_random", "@@@@", "", "AAAA"] {
        let o = check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {input}.{sig}")]),
        );
        assert_eq!(o.status(), 401, "{sig}");
    }
    let wrong = hs256(b"another secret", &json!({"key": "jack-key"}));
    denied(
        &check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {wrong}")]),
        ),
        "failed to verify jwt",
    );
}

#[test]
fn expired_token_fails_verification() {
    let t = hs256(
        SECRET.as_bytes(),
        &json!({"key": "jack-key", "exp": NOW - 10}),
    );
    denied(
        &check(json!({}), &Raw::get("/", &[&format!("Authorization: {t}")])),
        "failed to verify jwt",
    );
}

#[test]
fn inline_consumer_key_has_no_credential_id() {
    let t = hs256(b"s3", &json!({"key": "inline-key"}));
    let o = check(
        json!({}),
        &Raw::get(
            "/",
            &[
                &format!("Authorization: {t}"),
                "X-Credential-Identifier: forged",
            ],
        ),
    );
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("inline"));
    assert_eq!(o.set("X-Credential-Identifier"), None);
    assert!(
        o.dropped("X-Credential-Identifier"),
        "a client's own value is cleared"
    );
    assert!(o.dropped("X-Consumer-Custom-ID"));
}

#[test]
fn anonymous_consumer_fallback() {
    let o = check(
        json!({"anonymous_consumer": "anonymous"}),
        &Raw::get("/", &[]),
    );
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("anonymous"));
    assert!(o.dropped("X-Credential-Identifier"));
    assert_eq!(
        o.ctx.consumer.as_ref().map(|c| &*c.username),
        Some("anonymous")
    );
    let o = check(json!({"anonymous_consumer": "ghost"}), &Raw::get("/", &[]));
    denied(&o, "Invalid user authorization");
}

#[test]
fn realm_in_www_authenticate() {
    let o = check(json!({"realm": "my-api"}), &Raw::get("/", &[]));
    assert_eq!(
        o.header("WWW-Authenticate"),
        Some("Bearer realm=\"my-api\"")
    );
}

#[test]
fn hide_credentials_strips_only_the_source_read() {
    let t = token();
    let o = check(
        json!({"hide_credentials": true}),
        &Raw::get(
            "/",
            &[
                &format!("Authorization: {t}"),
                &format!("Cookie: jwt={t}; a=1"),
            ],
        ),
    );
    assert!(o.result.is_ok());
    assert!(o.dropped("authorization"));
    assert!(!o.dropped("cookie"), "the cookie was not the source");

    let o = check(
        json!({"hide_credentials": true}),
        &Raw::get(&format!("/p?foo=bar&jwt={t}&hello=world"), &[]),
    );
    assert!(o.result.is_ok());
    assert_eq!(
        o.edits.target.as_deref(),
        Some(&b"/p?foo=bar&hello=world"[..])
    );

    // The rewritten target carries the normalised path the route matched, encoded again.
    let o = check(
        json!({"hide_credentials": true}),
        &Raw::get(&format!("/p/..//q%20r/./s?jwt={t}&a=%2e"), &[]),
    );
    assert!(o.result.is_ok());
    assert_eq!(o.edits.target.as_deref(), Some(&b"/q%20r/s?a=%2e"[..]));

    let o = check(
        json!({"hide_credentials": true}),
        &Raw::get("/", &[&format!("Cookie: a=1; jwt={t}; b=%2F")]),
    );
    assert!(o.result.is_ok());
    assert_eq!(o.set("Cookie"), Some("a=1; b=%2F"));

    let o = check(
        json!({"hide_credentials": false}),
        &Raw::get(&format!("/p?jwt={t}"), &[]),
    );
    assert_eq!(o.edits.target, None);
}

#[test]
fn route_schema_messages() {
    assert_eq!(
        route_conf(&json!({"header": 1})).unwrap_err(),
        "property \"header\" validation failed: wrong type: expected string, got number"
    );
    assert!(route_conf(&json!({"realm": "a\"b"})).is_err());
    assert!(route_conf(&json!({"realm": "x".repeat(129)})).is_err());
    assert!(route_conf(&json!({"claims_to_verify": ["iat"]})).is_err());
    assert!(route_conf(&json!({"claims_to_verify": ["exp", "exp"]})).is_err());
    assert!(route_conf(&json!({"key_claim_name": ""})).is_err());
    // Unknown fields (even key/secret on a route) are tolerated, as APISIX does.
    assert!(route_conf(&json!({"key": "k", "secret": "s"})).is_ok());
    let c = route_conf(&json!({"claims_to_verify": []})).unwrap();
    assert_eq!(c.claims, None, "an empty list behaves like no list");
}

#[test]
fn consumer_schema_messages_in_apisix_order() {
    assert_eq!(
        credential_spec(&json!({})).unwrap_err(),
        "property \"key\" is required"
    );
    assert_eq!(
        credential_spec(&json!({"key": 1})).unwrap_err(),
        "property \"key\" validation failed: wrong type: expected string, got number"
    );
    assert_eq!(
        credential_spec(&json!({"key": "k", "secret": ""})).unwrap_err(),
        "property \"secret\" validation failed: string too short, expected at least 1, got 0"
    );
    assert_eq!(
        credential_spec(&json!({"key": "k"})).unwrap_err(),
        "property \"secret\" is required when using HS based algorithms"
    );
    assert_eq!(
        credential_spec(&json!({"key": "k", "algorithm": "RS256"})).unwrap_err(),
        "failed to validate dependent schema for \"algorithm\": value should match only one schema, but matches none"
    );
    assert_eq!(
        credential_spec(&json!({"key": "k", "secret": "not base64!", "base64_secret": true}))
            .unwrap_err(),
        "base64_secret required but the secret is not in base64 format"
    );
    // The standard alphabet only, as `ngx.decode_base64`: `-` and `_` are not base64 here.
    for secret in ["YW-j", "YW_j"] {
        assert_eq!(
            credential_spec(&json!({"key": "k", "secret": secret, "base64_secret": true}))
                .unwrap_err(),
            "base64_secret required but the secret is not in base64 format"
        );
    }
    assert!(credential_spec(&json!({"key": "k", "secret": "YW+j", "base64_secret": true})).is_ok());
    assert!(credential_spec(&json!({"key": "k", "algorithm": "none", "secret": "s"})).is_err());
    assert!(
        credential_spec(&json!({"key": "k", "secret": "s", "lifetime_grace_period": -1})).is_err()
    );
    assert!(credential_spec(&json!({"key": "k", "secret": "s", "exp": 0})).is_err());
    // Stricter than APISIX: a public key that does not parse is refused at write time.
    let e = credential_spec(&json!({"key": "k", "algorithm": "RS256", "public_key": "not a key"}))
        .unwrap_err();
    assert!(
        e.starts_with("invalid public_key for algorithm RS256"),
        "{e}"
    );
    // References are resolved later.
    assert!(credential_spec(&json!({"key": "k", "secret": "$env://X"})).is_ok());
    assert!(credential_spec(
        &json!({"key": "k", "secret": "$secret://vault/1/a/b", "base64_secret": true})
    )
    .is_ok());
    // private_key and other extra fields are tolerated.
    assert!(credential_spec(&json!({"key": "k", "secret": "s", "private_key": "x"})).is_ok());
}

#[test]
fn base64_secret_uses_the_decoded_bytes() {
    let raw = b"\x01\x02binary secret\xff";
    let b64 = base64_simd::STANDARD.encode_to_string(raw);
    let idx = index(&[(
        json!({"username": "b"}),
        vec![(
            "c1",
            json!({"jwt-auth": {"key": "bk", "secret": b64, "base64_secret": true}}),
        )],
    )]);
    let t = hs256(raw, &json!({"key": "bk"}));
    let raw_req = Raw::get("/", &[&format!("Authorization: {t}")]);
    let o = check_in(&idx, json!({}), &raw_req);
    assert!(o.result.is_ok(), "{:?}", o.result);
}

#[test]
fn env_references_resolve_and_unresolvable_ones_make_the_credential_unusable() {
    std::env::set_var("PORTCULLIS_TEST_JWT_SECRET", "from-env-secret");
    let idx = index(&[
        (
            json!({"username": "e"}),
            vec![(
                "c1",
                json!({"jwt-auth": {"key": "ek", "secret": "$env://PORTCULLIS_TEST_JWT_SECRET"}}),
            )],
        ),
        (
            json!({"username": "u"}),
            vec![(
                "c2",
                json!({"jwt-auth": {"key": "uk", "secret": "$env://PORTCULLIS_TEST_UNSET_VAR"}}),
            )],
        ),
    ]);
    let ok = Raw::get(
        "/",
        &[&format!(
            "Authorization: {}",
            hs256(b"from-env-secret", &json!({"key": "ek"}))
        )],
    );
    let o = check_in(&idx, json!({}), &ok);
    assert!(o.result.is_ok());
    // The literal reference text is not a usable secret.
    let t = hs256(b"$env://PORTCULLIS_TEST_UNSET_VAR", &json!({"key": "uk"}));
    let bad = Raw::get("/", &[&format!("Authorization: {t}")]);
    let o = check_in(&idx, json!({}), &bad);
    assert_eq!(o.status(), 401);
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn asymmetric_tokens_are_cached_per_core_and_invalidated_by_credential_changes() {
    use crate::jwt::{sign, Alg, SignKey};
    let rs = |public: &str| {
        index(&[(
            json!({"username": "r"}),
            vec![(
                "c",
                json!({"jwt-auth": {"key": "rk", "algorithm": "RS256", "public_key": fixture(public)}}),
            )],
        )])
    };
    let idx = rs("rsa2048.pub.pem");
    let conf = route_conf(&json!({})).unwrap();
    let cache = TokenCache::new(100);
    let t = sign(
        Alg::RS256,
        &SignKey::Pem(fixture("rsa2048.pem")),
        &serde_json::Map::new(),
        &json!({"key": "rk", "exp": NOW + 10}),
    )
    .unwrap();
    let raw = Raw::get("/", &[&format!("Authorization: {t}")]);
    let at = |idx: &crate::consumers::ConsumerIndex, now| {
        run(&raw, now, |req, ctx, edits| {
            access(&conf, req, idx, &cache, ctx, edits)
        })
        .status()
    };
    assert_eq!(at(&idx, NOW), 200);
    assert_eq!(cache.len(), 1, "an RS256 token is cached");
    assert_eq!(at(&idx, NOW + 5), 200, "served from the cache");
    assert_eq!(at(&idx, NOW + 10), 401, "the cached entry stops at exp");
    assert_eq!(cache.len(), 0, "and is dropped");
    assert_eq!(at(&idx, NOW), 200);
    // The credential is replaced (another key): the cached token is refused at once.
    let other = rs("rsa1024.pub.pem");
    assert_eq!(at(&other, NOW), 401);
    // A refused token is never cached.
    let forged = format!("{}x", &t[..t.len() - 1]);
    let bad = Raw::get("/", &[&format!("Authorization: {forged}")]);
    let fresh = TokenCache::new(100);
    let o = run(&bad, NOW, |req, ctx, edits| {
        access(&conf, req, &idx, &fresh, ctx, edits)
    });
    assert_eq!(o.status(), 401);
    assert_eq!(fresh.len(), 0);
    // HMAC tokens are not cached.
    let hs = Raw::get("/", &[&format!("Authorization: {}", token())]);
    let hs_cache = TokenCache::new(100);
    let jack = jack();
    run(&hs, NOW, |req, ctx, edits| {
        access(&conf, req, &jack, &hs_cache, ctx, edits)
    });
    assert_eq!(hs_cache.len(), 0);
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

#[test]
fn null_key_claim_is_looked_up_and_not_found() {
    // cjson's null is a value (not `nil`): APISIX looks it up, so "Invalid user key".
    let t = hs256(SECRET.as_bytes(), &json!({"key": null}));
    denied(
        &check(json!({}), &Raw::get("/", &[&bearer(&t)])),
        "Invalid user key in JWT token",
    );
}

#[test]
fn null_exp_or_nbf_is_not_a_number_on_the_request_path() {
    for claims in [
        json!({"key": "jack-key", "exp": null}),
        json!({"key": "jack-key", "nbf": null}),
    ] {
        let t = hs256(SECRET.as_bytes(), &claims);
        denied(
            &check(json!({}), &Raw::get("/", &[&bearer(&t)])),
            "failed to verify jwt",
        );
    }
}

#[test]
fn the_key_claim_is_read_from_the_payload_only() {
    let t = hs256_with(
        SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT", "key": "jack-key"}),
        &json!({"sub": "x"}),
    );
    denied(
        &check(json!({}), &Raw::get("/", &[&bearer(&t)])),
        "missing user key in JWT token",
    );
}

#[test]
fn a_repeated_header_uses_its_first_value() {
    let good = bearer(&token());
    assert!(check(
        json!({}),
        &Raw::get("/", &[&good, "Authorization: garbage"])
    )
    .result
    .is_ok());
    denied(
        &check(
            json!({}),
            &Raw::get("/", &["Authorization: garbage", &good]),
        ),
        "JWT token invalid",
    );
}

#[test]
fn the_credential_grace_period_reaches_the_request_path() {
    let idx = index(&[(
        json!({"username": "late"}),
        vec![(
            "c",
            json!({"jwt-auth": {"key": "late-key", "secret": SECRET, "lifetime_grace_period": 5}}),
        )],
    )]);
    let at = |exp: i64| {
        let t = hs256(SECRET.as_bytes(), &json!({"key": "late-key", "exp": exp}));
        check_in(&idx, json!({}), &Raw::get("/", &[&bearer(&t)]))
    };
    assert!(at(NOW - 4).result.is_ok(), "within the grace period");
    denied(&at(NOW - 5), "failed to verify jwt");
    // Without the grace period, NOW - 4 is expired.
    denied(
        &check(
            json!({}),
            &Raw::get(
                "/",
                &[&bearer(&hs256(
                    SECRET.as_bytes(),
                    &json!({"key": "jack-key", "exp": NOW - 4}),
                ))],
            ),
        ),
        "failed to verify jwt",
    );
}

#[test]
fn an_empty_source_is_present_and_invalid() {
    // An empty header, `?jwt=` or `jwt=` cookie is a token, not a missing one.
    for raw in [
        Raw::get("/", &["Authorization: "]),
        Raw::get("/?jwt=", &[]),
        Raw::get("/", &["Cookie: jwt="]),
    ] {
        denied(&check(json!({}), &raw), "JWT token invalid");
    }
}

#[test]
fn any_failure_falls_back_to_the_anonymous_consumer_and_hides_first() {
    let conf = json!({"anonymous_consumer": "anonymous", "hide_credentials": true});
    let wrong = hs256(b"another secret", &json!({"key": "jack-key"}));
    let expired = hs256(
        SECRET.as_bytes(),
        &json!({"key": "jack-key", "exp": NOW - 1}),
    );
    let unknown = hs256(SECRET.as_bytes(), &json!({"key": "nobody"}));
    for t in [wrong, expired, unknown, "garbage".to_string()] {
        let o = check(conf.clone(), &Raw::get("/", &[&bearer(&t)]));
        assert!(o.result.is_ok(), "{t}");
        assert_eq!(o.set("X-Consumer-Username"), Some("anonymous"));
        assert!(o.dropped("Authorization"), "hidden before verification");
        assert!(o.ctx.anonymous);
    }
}

#[test]
fn anonymous_consumer_may_not_be_empty() {
    assert!(route_conf(&json!({"anonymous_consumer": ""})).is_err());
}

#[test]
fn the_legacy_credential_exp_is_ignored() {
    let idx = index(&[(
        json!({"username": "old"}),
        vec![(
            "c",
            json!({"jwt-auth": {"key": "old-key", "secret": SECRET, "exp": 1}}),
        )],
    )]);
    let t = hs256(SECRET.as_bytes(), &json!({"key": "old-key"}));
    let o = check_in(&idx, json!({}), &Raw::get("/", &[&bearer(&t)]));
    assert!(o.result.is_ok());
}
