//! Kong `jwt` against the reference's tables (Kong §2.1–2.2).

use serde_json::json;

use super::access::bearer;
use super::*;
use crate::plugins::phase::{Ctx, Edits};
use crate::plugins::testing::{hs256, hs256_with, index, run, Outcome, Raw};
use crate::plugins::token_cache::TokenCache;

const NOW: i64 = 1_800_000_000;

fn idx() -> std::sync::Arc<crate::consumers::ConsumerIndex> {
    index(&[
        (
            json!({"username": "alice", "labels": {"custom_id": "c-1", "kong_id": "8c2f-uuid"}}),
            vec![(
                "k1",
                json!({"jwt": {"key": "alice-iss", "secret": "alice-secret"}}),
            )],
        ),
        (
            json!({"username": "b64"}),
            vec![(
                "k2",
                json!({"jwt": {"key": "b64-iss", "secret": "c2VjcmV0LWJ5dGVz"}}),
            )],
        ),
        (json!({"username": "anon"}), vec![]),
    ])
}

fn check(conf: serde_json::Value, raw: &Raw) -> Outcome {
    check_in(&idx(), conf, raw)
}

/// Kong `jwt` with route configuration `conf` over the consumers of `idx`.
fn check_in(idx: &crate::consumers::ConsumerIndex, conf: serde_json::Value, raw: &Raw) -> Outcome {
    let conf = route_conf(&conf).expect("valid conf");
    run(raw, NOW, |req, ctx, edits| {
        access(&conf, req, idx, &TokenCache::new(16), ctx, edits)
    })
}

fn alice() -> String {
    hs256(b"alice-secret", &json!({"iss": "alice-iss"}))
}

fn auth(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

fn denied(o: &Outcome, body: serde_json::Value, challenge: &str) {
    assert_eq!(o.status(), 401, "{:?}", o.result);
    assert_eq!(o.body(), body);
    assert_eq!(o.header("WWW-Authenticate"), Some(challenge));
}

const ERR: &str = "Bearer error=\"invalid_token\"";

#[test]
fn success_sets_kong_headers() {
    let o = check(
        json!({}),
        &Raw::get("/", &[&auth(&alice()), "X-Anonymous-Consumer: true"]),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(o.set("X-Consumer-ID"), Some("8c2f-uuid"));
    assert_eq!(o.set("X-Consumer-Custom-ID"), Some("c-1"));
    assert_eq!(o.set("X-Consumer-Username"), Some("alice"));
    assert_eq!(
        o.set("X-Credential-Identifier"),
        Some("alice-iss"),
        "Kong sends the key"
    );
    assert!(o.dropped("X-Anonymous-Consumer"));
    assert!(
        !o.dropped("authorization"),
        "Kong always forwards Authorization"
    );
}

#[test]
fn no_token_uses_the_base_challenge() {
    denied(
        &check(json!({}), &Raw::get("/", &[])),
        json!({"message": "Unauthorized"}),
        "Bearer",
    );
    denied(
        &check(json!({"realm": "kong"}), &Raw::get("/", &[])),
        json!({"message": "Unauthorized"}),
        "Bearer realm=\"kong\"",
    );
    // A bare token in the header is not a token for Kong.
    denied(
        &check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {}", alice())]),
        ),
        json!({"message": "Unauthorized"}),
        "Bearer",
    );
    // Cookies are off by default.
    denied(
        &check(
            json!({}),
            &Raw::get("/", &[&format!("Cookie: jwt={}", alice())]),
        ),
        json!({"message": "Unauthorized"}),
        "Bearer",
    );
}

#[test]
fn sources_and_multiple_tokens() {
    let t = alice();
    assert!(check(json!({}), &Raw::get(&format!("/?jwt={t}"), &[]))
        .result
        .is_ok());
    assert!(check(
        json!({"cookie_names": ["c"]}),
        &Raw::get("/", &[&format!("Cookie: c={t}")])
    )
    .result
    .is_ok());
    assert!(check(
        json!({"header_names": ["x-token"]}),
        &Raw::get("/", &[&format!("X-Token:   bearer   {t}")])
    )
    .result
    .is_ok());
    // The same token twice is fine; two different tokens are not.
    assert!(
        check(json!({}), &Raw::get(&format!("/?jwt={t}"), &[&auth(&t)]))
            .result
            .is_ok()
    );
    let other = hs256(b"alice-secret", &json!({"iss": "alice-iss", "x": 1}));
    let o = check(
        json!({}),
        &Raw::get(&format!("/?jwt={other}"), &[&auth(&t)]),
    );
    denied(&o, json!({"message": "Multiple tokens provided"}), ERR);
    let o = check(json!({}), &Raw::get(&format!("/?jwt={t}&jwt={other}"), &[]));
    denied(&o, json!({"message": "Multiple tokens provided"}), ERR);
}

#[test]
fn key_claim_in_payload_then_header() {
    let o = check(
        json!({}),
        &Raw::get("/", &[&auth(&hs256(b"alice-secret", &json!({"sub": "x"})))]),
    );
    denied(&o, json!({"message": "No mandatory 'iss' in claims"}), ERR);
    let o = check(
        json!({}),
        &Raw::get("/", &[&auth(&hs256(b"alice-secret", &json!({"iss": ""})))]),
    );
    denied(&o, json!({"message": "Invalid 'iss' in claims"}), ERR);
    let o = check(
        json!({}),
        &Raw::get(
            "/",
            &[&auth(&hs256(b"alice-secret", &json!({"iss": "who"})))],
        ),
    );
    denied(
        &o,
        json!({"message": "No credentials found for given 'iss'"}),
        ERR,
    );
    let t = hs256_with(
        b"alice-secret",
        &json!({"alg": "HS256", "kid": "alice-iss"}),
        &json!({"sub": "x"}),
    );
    assert!(check(
        json!({"key_claim_name": "kid"}),
        &Raw::get("/", &[&auth(&t)])
    )
    .result
    .is_ok());
}

#[test]
fn algorithm_and_signature() {
    let t = hs256_with(
        b"alice-secret",
        &json!({"alg": "HS512"}),
        &json!({"iss": "alice-iss"}),
    );
    denied(
        &check(json!({}), &Raw::get("/", &[&auth(&t)])),
        json!({"message": "Invalid algorithm"}),
        ERR,
    );
    let t = hs256(b"wrong", &json!({"iss": "alice-iss"}));
    denied(
        &check(json!({}), &Raw::get("/", &[&auth(&t)])),
        json!({"message": "Invalid signature"}),
        ERR,
    );
}

#[test]
fn secret_is_base64_is_a_route_option() {
    let t = hs256(b"secret-bytes", &json!({"iss": "b64-iss"}));
    assert!(check(
        json!({"secret_is_base64": true}),
        &Raw::get("/", &[&auth(&t)])
    )
    .result
    .is_ok());
    let o = check(json!({}), &Raw::get("/", &[&auth(&t)]));
    assert_eq!(o.status(), 401);
}

#[test]
fn claims_give_per_claim_maps() {
    let expired = hs256(b"alice-secret", &json!({"iss": "alice-iss", "exp": NOW}));
    let o = check(
        json!({"claims_to_verify": ["exp"]}),
        &Raw::get("/", &[&auth(&expired)]),
    );
    denied(&o, json!({"exp": "token expired"}), ERR);
    // Not listed: not checked (Kong checks nothing by default).
    assert!(check(json!({}), &Raw::get("/", &[&auth(&expired)]))
        .result
        .is_ok());
    let none = alice();
    let o = check(
        json!({"claims_to_verify": ["exp", "nbf"]}),
        &Raw::get("/", &[&auth(&none)]),
    );
    denied(
        &o,
        json!({"exp": "must be a number", "nbf": "must be a number"}),
        ERR,
    );
    let long = hs256(
        b"alice-secret",
        &json!({"iss": "alice-iss", "exp": NOW + 1000}),
    );
    let o = check(
        json!({"claims_to_verify": ["exp"], "maximum_expiration": 100}),
        &Raw::get("/", &[&auth(&long)]),
    );
    denied(
        &o,
        json!({"exp": "exceeds maximum allowed expiration"}),
        ERR,
    );
}

#[test]
fn anonymous_is_a_logical_or() {
    let o = check(json!({"anonymous": "anon"}), &Raw::get("/", &[]));
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Anonymous-Consumer"), Some("true"));
    assert_eq!(o.set("X-Consumer-Username"), Some("anon"));
    assert!(o.dropped("X-Credential-Identifier"));
    // By Kong id too.
    let o = check(json!({"anonymous": "8c2f-uuid"}), &Raw::get("/", &[]));
    assert_eq!(o.set("X-Consumer-Username"), Some("alice"));
    let o = check(json!({"anonymous": "ghost"}), &Raw::get("/", &[]));
    assert_eq!(o.status(), 500);
    assert_eq!(
        o.body(),
        json!({"message": "anonymous consumer ghost is configured but doesn't exist"})
    );
}

#[test]
fn preflight_can_skip_authentication() {
    let raw = Raw::method("OPTIONS", "/", &[]);
    assert_eq!(check(json!({}), &raw).status(), 401);
    assert!(check(json!({"run_on_preflight": false}), &raw)
        .result
        .is_ok());
}

#[test]
fn schema_rules() {
    assert_eq!(
        route_conf(&json!({"maximum_expiration": 31536001})).unwrap_err(),
        "value should be between 0 and 31536000"
    );
    assert_eq!(
        route_conf(&json!({"maximum_expiration": 10})).unwrap_err(),
        "claims_to_verify: expected to contain: exp"
    );
    assert!(route_conf(&json!({"maximum_expiration": 10, "claims_to_verify": ["exp"]})).is_ok());
    assert!(route_conf(&json!({"claims_to_verify": ["iat"]})).is_err());
    assert!(credential_spec(&json!({"key": "k", "algorithm": "RS256"})).is_err());
    let mut c = json!({"algorithm": "HS256"});
    fill_defaults(&mut c);
    let secret = c["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(credential_spec(&c).is_ok());
}

#[test]
fn a_false_key_claim_falls_back_to_the_header() {
    // `claims[k] or header[k]`: Lua falls through on `false`.
    let t = hs256_with(
        b"alice-secret",
        &json!({"alg": "HS256", "iss": "alice-iss"}),
        &json!({"iss": false}),
    );
    assert!(check(json!({}), &Raw::get("/", &[&auth(&t)]))
        .result
        .is_ok());
    let t = hs256_with(
        b"alice-secret",
        &json!({"alg": "HS256", "iss": false}),
        &json!({"iss": false}),
    );
    denied(
        &check(json!({}), &Raw::get("/", &[&auth(&t)])),
        json!({"message": "No mandatory 'iss' in claims"}),
        ERR,
    );
}

#[test]
fn bearer_is_searched_for_as_kong_does() {
    let t = alice();
    for value in [
        format!("Token Bearer {t}"),
        format!("xbearer\t{t}"),
        format!("Bearer{t} Bearer {t}"),
    ] {
        assert!(
            check(
                json!({}),
                &Raw::get("/", &[&format!("Authorization: {value}")])
            )
            .result
            .is_ok(),
            "{value:?}"
        );
    }
    // No whitespace after it, or nothing after that: no token (a bare token is ignored).
    for value in [format!("Bearer{t}"), t.clone(), "Bearer".to_string()] {
        let o = check(
            json!({}),
            &Raw::get("/", &[&format!("Authorization: {value}")]),
        );
        denied(&o, json!({"message": "Unauthorized"}), "Bearer");
    }
    assert_eq!(bearer(b"a Bearer  "), Some(&b" "[..]));
    // PCRE's `\s` includes the vertical tab (a request parser refuses it in a header value).
    assert_eq!(bearer(b"Bearer\x0bt"), Some(&b"t"[..]));
    assert_eq!(bearer(b"Bearer "), None);
    assert_eq!(bearer(b"BEARER x"), None);
}

#[test]
fn broken_claims_are_invalid_json() {
    let h = "eyJhbGciOiJIUzI1NiJ9"; // {"alg":"HS256"}
    for raw in [format!("{h}.@@@@.AA"), format!("{h}.bm9wZQ.AA")] {
        denied(
            &check(json!({}), &Raw::get("/", &[&auth(&raw)])),
            json!({"message": "Bad token; invalid JSON"}),
            ERR,
        );
    }
}

#[test]
fn secret_is_base64_failures_and_scope() {
    let idx = index(&[(
        json!({"username": "u"}),
        vec![(
            "c",
            json!({"jwt": {"key": "u-iss", "secret": "not*base64"}}),
        )],
    )]);
    let t = hs256(b"not*base64", &json!({"iss": "u-iss"}));
    let o = check_in(
        &idx,
        json!({"secret_is_base64": true}),
        &Raw::get("/", &[&auth(&t)]),
    );
    denied(&o, json!({"message": "Invalid key/secret"}), ERR);
}

#[test]
fn the_error_challenge_carries_the_realm() {
    let o = check(
        json!({"realm": "kong"}),
        &Raw::get(
            "/",
            &[&auth(&hs256(b"wrong", &json!({"iss": "alice-iss"})))],
        ),
    );
    denied(
        &o,
        json!({"message": "Invalid signature"}),
        "Bearer realm=\"kong\", error=\"invalid_token\"",
    );
}

/// `jwt-auth` and Kong `jwt` on one request (a global rule and a route, say) share what
/// "authenticated" means: an anonymous fallback of either is not a login for the other.
#[test]
fn anonymous_state_is_shared_with_jwt_auth() {
    let idx = index(&[
        (
            json!({"username": "alice"}),
            vec![(
                "k1",
                json!({"jwt": {"key": "alice-iss", "secret": "alice-secret"}}),
            )],
        ),
        (
            json!({"username": "jack"}),
            vec![(
                "k2",
                json!({"jwt-auth": {"key": "jack-key", "secret": "jack-secret"}}),
            )],
        ),
        (json!({"username": "anon"}), vec![]),
    ]);
    let kong = route_conf(&json!({"anonymous": "anon"})).unwrap();
    let apisix =
        crate::plugins::jwt_auth::route_conf(&json!({"anonymous_consumer": "anon"})).unwrap();
    let cache = TokenCache::new(16);
    let chain = |raw: &Raw, kong_first: bool| {
        run(raw, NOW, |req, ctx, edits| {
            let k = |ctx: &mut Ctx, edits: &mut Edits| access(&kong, req, &idx, &cache, ctx, edits);
            let a = |ctx: &mut Ctx, edits: &mut Edits| {
                crate::plugins::jwt_auth::access(&apisix, req, &idx, &cache, ctx, edits)
            };
            if kong_first {
                k(ctx, edits)?;
                a(ctx, edits)
            } else {
                a(ctx, edits)?;
                k(ctx, edits)
            }
        })
    };
    let kong_token = alice();
    let apisix_token = hs256(b"jack-secret", &json!({"key": "jack-key"}));
    // jwt-auth falls back to anonymous (no jwt-auth token); Kong still checks its token.
    let o = chain(&Raw::get(&format!("/?jwt={kong_token}"), &[]), false);
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("alice"));
    assert_eq!(o.set("X-Credential-Identifier"), Some("alice-iss"));
    assert!(!o.ctx.anonymous);
    assert!(o.dropped("X-Anonymous-Consumer"));
    // jwt-auth authenticated: Kong's `anonymous` makes it an OR, so Kong is skipped.
    let o = chain(
        &Raw::get("/", &[&format!("Authorization: {apisix_token}")]),
        false,
    );
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("jack"));
    assert!(!o.ctx.anonymous);
    // Kong falls back to anonymous, then jwt-auth authenticates: no anonymous marker left.
    let o = chain(
        &Raw::get("/", &[&format!("Authorization: {apisix_token}")]),
        true,
    );
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("jack"));
    assert!(!o.ctx.anonymous);
    assert!(o.dropped("X-Anonymous-Consumer"));
    assert_eq!(o.set("X-Anonymous-Consumer"), None);
    // Neither authenticates: anonymous, marked as such by Kong.
    let o = chain(&Raw::get("/", &[]), false);
    assert!(o.result.is_ok());
    assert_eq!(o.set("X-Consumer-Username"), Some("anon"));
    assert!(o.ctx.anonymous);
    assert_eq!(o.set("X-Anonymous-Consumer"), Some("true"));
}

#[test]
fn headers_of_a_consumer_without_custom_id_and_kong_id() {
    let t = hs256(b"c2VjcmV0LWJ5dGVz", &json!({"iss": "b64-iss"}));
    let o = check(
        json!({}),
        &Raw::get("/", &[&auth(&t), "X-Consumer-Custom-ID: forged"]),
    );
    assert!(o.result.is_ok());
    assert_eq!(
        o.set("X-Consumer-ID"),
        Some("b64"),
        "the username stands in"
    );
    assert!(o.dropped("X-Consumer-Custom-ID"));
    assert_eq!(o.set("X-Consumer-Custom-ID"), None);
}

#[test]
fn empty_query_and_cookie_values_are_not_tokens() {
    let t = alice();
    let o = check(
        json!({"cookie_names": ["c"]}),
        &Raw::get("/?jwt=", &[&auth(&t), "Cookie: c="]),
    );
    assert!(o.result.is_ok(), "not 'Multiple tokens provided'");
}

#[test]
fn nbf_in_the_future_on_the_request_path() {
    let t = hs256(
        b"alice-secret",
        &json!({"iss": "alice-iss", "nbf": NOW + 10}),
    );
    denied(
        &check(
            json!({"claims_to_verify": ["nbf"]}),
            &Raw::get("/", &[&auth(&t)]),
        ),
        json!({"nbf": "token not valid yet"}),
        ERR,
    );
}

#[test]
fn a_missing_key_is_generated_too() {
    let mut c = json!({});
    fill_defaults(&mut c);
    for field in ["key", "secret"] {
        let v = c[field].as_str().unwrap();
        assert_eq!(v.len(), 32);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    assert_ne!(c["key"], c["secret"]);
}

#[test]
fn secret_is_base64_takes_base64url_and_leaves_rsa_alone() {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/jwt/rsa2048.pub.pem"
    ))
    .unwrap();
    let idx = index(&[(
        json!({"username": "u"}),
        vec![
            // base64url of the bytes fb ff fe: `-` and `_` are its alphabet.
            ("h", json!({"jwt": {"key": "h-iss", "secret": "-__-"}})),
            (
                "r",
                json!({"jwt": {"key": "r-iss", "algorithm": "RS256", "rsa_public_key": pem}}),
            ),
        ],
    )]);
    let go = |t: &str| {
        check_in(
            &idx,
            json!({"secret_is_base64": true}),
            &Raw::get("/", &[&auth(t)]),
        )
    };
    let t = hs256(&[0xfb, 0xff, 0xfe], &json!({"iss": "h-iss"}));
    assert!(go(&t).result.is_ok());
    let rs = crate::jwt::sign(
        crate::jwt::Alg::RS256,
        &crate::jwt::SignKey::Pem(
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/jwt/rsa2048.pem"
            ))
            .unwrap(),
        ),
        &serde_json::Map::new(),
        &json!({"iss": "r-iss"}),
    )
    .unwrap();
    assert!(
        go(&rs).result.is_ok(),
        "secret_is_base64 does not apply to RS256"
    );
}

#[test]
fn a_repeated_header_gives_only_its_first_value() {
    // Kong reads the first occurrence of each header: a second, different token in a repeated
    // Authorization header is not seen, so this is not "Multiple tokens provided".
    let other = hs256(b"alice-secret", &json!({"iss": "alice-iss", "x": 1}));
    let o = check(json!({}), &Raw::get("/", &[&auth(&alice()), &auth(&other)]));
    assert!(o.result.is_ok(), "{:?}", o.result);
    let o = check(
        json!({}),
        &Raw::get("/", &[&auth("garbage"), &auth(&alice())]),
    );
    denied(&o, json!({"message": "Bad token; invalid JSON"}), ERR);
}

/// A credential whose secret cannot be resolved: Kong still compares the token's `alg` with
/// the credential's algorithm first, so a wrong `alg` is "Invalid algorithm", and only a
/// matching one reaches "Invalid key/secret".
#[test]
fn unusable_credential_checks_the_algorithm_first() {
    let idx = index(&[(
        json!({"username": "u"}),
        vec![(
            "c",
            json!({"jwt": {"key": "u-iss", "secret": "$env://PORTCULLIS_TEST_UNSET_SECRET", "algorithm": "HS384"}}),
        )],
    )]);
    let payload = json!({"iss": "u-iss"});
    let wrong = hs256(b"x", &payload);
    let o = check_in(&idx, json!({}), &Raw::get("/", &[&auth(&wrong)]));
    denied(&o, json!({"message": "Invalid algorithm"}), ERR);
    let right = hs256_with(b"x", &json!({"alg": "HS384"}), &payload);
    let o = check_in(&idx, json!({}), &Raw::get("/", &[&auth(&right)]));
    denied(&o, json!({"message": "Invalid key/secret"}), ERR);
}
