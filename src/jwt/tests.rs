//! The JWT core: every algorithm round-trips, tampering fails, the algorithm is pinned, each
//! peer's parsing and claim rules (reference §1.3–1.5, §2.2), and known vectors.

use serde_json::{json, Map, Value};

use super::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (alg, private key file, public key file)
const ASYMMETRIC: &[(Alg, &str, &str)] = &[
    (Alg::RS256, "rsa2048.pem", "rsa2048.pub.pem"),
    (Alg::RS384, "rsa2048.pkcs1.pem", "rsa2048.pkcs1.pub.pem"),
    (Alg::RS512, "rsa2048.pem", "rsa2048.pub.pem"),
    (Alg::PS256, "rsa2048.pem", "rsa2048.pub.pem"),
    (Alg::PS384, "rsa2048.pem", "rsa2048.pub.pem"),
    (Alg::PS512, "rsa2048.pkcs1.pem", "rsa2048.pub.pem"),
    (Alg::ES256, "ecp256.pem", "ecp256.pub.pem"),
    (Alg::ES384, "ecp384.sec1.pem", "ecp384.pub.pem"),
    (Alg::ES512, "ecp521.pem", "ecp521.pub.pem"),
    (Alg::EdDSA, "ed25519.pem", "ed25519.pub.pem"),
];

fn signed(alg: Alg, payload: &Value) -> (String, VerifyKey) {
    if alg.is_hmac() {
        let t = sign(
            alg,
            &SignKey::Hmac(b"secret".to_vec()),
            &Map::new(),
            payload,
        )
        .unwrap();
        return (t, VerifyKey::hmac(alg, b"secret"));
    }
    let (_, private, public) = ASYMMETRIC.iter().find(|(a, _, _)| *a == alg).unwrap();
    let t = sign(alg, &SignKey::Pem(fixture(private)), &Map::new(), payload).unwrap();
    (t, VerifyKey::public_pem(alg, &fixture(public)).unwrap())
}

#[test]
fn every_algorithm_round_trips_in_both_dialects() {
    let payload = json!({"key": "k", "iss": "k"});
    for alg in Alg::ALL {
        let (t, key) = signed(alg, &payload);
        for dialect in [Dialect::Apisix, Dialect::Kong] {
            let tok = decode(&t, dialect).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(tok.payload(), &payload);
            assert_eq!(tok.header_alg(), Some(alg.as_str()));
            tok.verify(&key)
                .unwrap_or_else(|e| panic!("{alg:?} {dialect:?}: {e}"));
        }
    }
}

#[test]
fn tampering_fails_for_every_algorithm() {
    for alg in Alg::ALL {
        let (t, key) = signed(alg, &json!({"key": "k"}));
        let (h, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_payload = base64_simd::URL_SAFE_NO_PAD.encode_to_string(br#"{"key":"admin"}"#);
        let forged = format!("{h}.{forged_payload}.{sig}");
        let tok = decode(&forged, Dialect::Apisix).unwrap();
        assert_eq!(tok.verify(&key), Err(JwtError::BadSignature), "{alg:?}");
        // A flipped signature byte.
        let mut raw = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sig).unwrap();
        raw[0] ^= 1;
        let flipped = format!(
            "{h}.{}.{}",
            rest.split_once('.').unwrap().0,
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(&raw)
        );
        assert_eq!(
            decode(&flipped, Dialect::Apisix).unwrap().verify(&key),
            Err(JwtError::BadSignature),
            "{alg:?}"
        );
        // Truncated signature: an error, never a panic (Kong would 500 on ES/PS).
        let short = format!("{h}.{}.AAAA", rest.split_once('.').unwrap().0);
        assert!(
            decode(&short, Dialect::Kong).unwrap().verify(&key).is_err(),
            "{alg:?}"
        );
    }
}

#[test]
fn the_algorithm_comes_from_the_key() {
    let (t, _) = signed(Alg::HS256, &json!({"key": "k"}));
    // An RS256 credential never accepts an HS256 token, even one "signed" with the public key.
    let rsa = VerifyKey::public_pem(Alg::RS256, &fixture("rsa2048.pub.pem")).unwrap();
    assert_eq!(
        decode(&t, Dialect::Apisix).unwrap().verify(&rsa),
        Err(JwtError::AlgMismatch {
            expected: Alg::RS256
        })
    );
    let public_pem = fixture("rsa2048.pub.pem");
    let confused = sign(
        Alg::HS256,
        &SignKey::Hmac(public_pem.into_bytes()),
        &Map::new(),
        &json!({"key": "k"}),
    )
    .unwrap();
    assert!(decode(&confused, Dialect::Apisix)
        .unwrap()
        .verify(&rsa)
        .is_err());
    // alg: none, with or without a signature.
    let none_header = base64_simd::URL_SAFE_NO_PAD.encode_to_string(br#"{"alg":"none"}"#);
    let body = base64_simd::URL_SAFE_NO_PAD.encode_to_string(br#"{"key":"k"}"#);
    let hs = VerifyKey::hmac(Alg::HS256, b"secret");
    for t in [
        format!("{none_header}.{body}.x"),
        format!("{none_header}.{body}."),
    ] {
        if let Ok(tok) = decode(&t, Dialect::Apisix) {
            assert!(tok.verify(&hs).is_err());
        }
        assert!(decode(&t, Dialect::Kong).is_err());
    }
    // HS384 token, HS256 key.
    let (t384, _) = signed(Alg::HS384, &json!({}));
    assert_eq!(
        decode(&t384, Dialect::Apisix).unwrap().verify(&hs),
        Err(JwtError::AlgMismatch {
            expected: Alg::HS256
        })
    );
}

#[test]
fn known_vectors() {
    // jwt.io's HS256 example, secret "your-256-bit-secret".
    let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let k = VerifyKey::hmac(Alg::HS256, b"your-256-bit-secret");
    decode(t, Dialect::Apisix).unwrap().verify(&k).unwrap();
    decode(t, Dialect::Kong).unwrap().verify(&k).unwrap();
    // Seed 000's token and seed 004's token.
    let seed = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJqYWNrLWtleSIsIm5iZiI6MTcyOTEzMjI3MX0.UEPXy5jpid624T1XpfjM0PLY73LZPjV3Qt8yZ92kVuU";
    decode(seed, Dialect::Apisix)
        .unwrap()
        .verify(&VerifyKey::hmac(
            Alg::HS256,
            b"jack-hs256-secret-that-is-very-long",
        ))
        .unwrap();
    let kong = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJZSmRtYUR2VlRKeHRjV1JDdmtNaWtjOG9FTGdBVk5jeiJ9.xG-DrlD4vcYBqhuhK_jrwFIALvVvU-qTOiNyIfUhn_Y";
    decode(kong, Dialect::Kong)
        .unwrap()
        .verify(&VerifyKey::hmac(
            Alg::HS256,
            b"C50k0bcahDhLNhLKSUBSR1OMiFGzNZ7X",
        ))
        .unwrap();
}

#[test]
fn openssl_made_signatures_verify() {
    // RS256 over "a.b" made with `openssl dgst -sha256 -sign rsa2048.pem` is checked by
    // verifying our own signature with openssl-format keys in both PKCS#1 and SPKI forms.
    let (t, _) = signed(Alg::RS256, &json!({"x": 1}));
    for public in [
        "rsa2048.pub.pem",
        "rsa2048.pkcs1.pub.pem",
        "rsa2048.pem",
        "rsa2048.pkcs1.pem",
    ] {
        let k = VerifyKey::public_pem(Alg::RS256, &fixture(public)).unwrap();
        decode(&t, Dialect::Apisix).unwrap().verify(&k).unwrap();
    }
    // Private EC and Ed25519 keys work as public keys too (APISIX accepts them).
    for (alg, private) in [
        (Alg::ES256, "ecp256.sec1.pem"),
        (Alg::ES384, "ecp384.pem"),
        (Alg::ES512, "ecp521.sec1.pem"),
        (Alg::EdDSA, "ed25519.pem"),
    ] {
        let (t, _) = signed(alg, &json!({}));
        let k = VerifyKey::public_pem(alg, &fixture(private))
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        decode(&t, Dialect::Apisix).unwrap().verify(&k).unwrap();
    }
}

#[test]
fn key_material_is_checked_when_written() {
    let e = |alg, file: &str| VerifyKey::public_pem(alg, &fixture(file)).unwrap_err().0;
    assert_eq!(
        e(Alg::ES256, "rsa2048.pub.pem"),
        "ES256 needs a P-256 key, got an RSA key"
    );
    assert_eq!(
        e(Alg::ES256, "ecp384.pub.pem"),
        "ES256 needs a P-256 key, got a P-384 key"
    );
    assert_eq!(
        e(Alg::RS256, "ed25519.pub.pem"),
        "RS256 needs an RSA key, got an Ed25519 key"
    );
    assert!(e(Alg::PS256, "rsa1024.pub.pem").contains("too small"));
    assert!(
        VerifyKey::public_pem(Alg::RS256, &fixture("rsa1024.pub.pem")).is_ok(),
        "1024-bit RS256 works as in APISIX"
    );
    assert!(VerifyKey::public_pem(Alg::RS256, "garbage").is_err());
    assert!(VerifyKey::public_pem(
        Alg::RS256,
        "-----BEGIN PUBLIC KEY-----\n@@@@\n-----END PUBLIC KEY-----"
    )
    .is_err());
    assert!(VerifyKey::public_pem(
        Alg::RS256,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    )
    .is_err());
    assert!(VerifyKey::public_pem(Alg::HS256, &fixture("rsa2048.pub.pem")).is_err());
    // One-line base64 (how users paste keys into JSON) is fine.
    let one_line: String = fixture("rsa2048.pub.pem")
        .lines()
        .map(|l| {
            if l.starts_with("-----") {
                format!("{l}\n")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(VerifyKey::public_pem(Alg::RS256, &one_line).is_ok());
    // Errors never carry key bytes.
    let pem = fixture("ecp256.pub.pem");
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!e(Alg::RS256, "ecp256.pub.pem").contains(body_line));
    assert!(!format!("{:?}", VerifyKey::hmac(Alg::HS256, b"topsecret")).contains("topsecret"));
}

fn b64(v: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(v.as_bytes())
}

#[test]
fn apisix_parsing_rules() {
    let h = b64(r#"{"alg":"HS256"}"#);
    let p = b64(r#"{"key":"k"}"#);
    assert_eq!(decode("", Dialect::Apisix).unwrap_err(), JwtError::Segments);
    assert_eq!(
        decode("a.b", Dialect::Apisix).unwrap_err(),
        JwtError::Segments
    );
    assert_eq!(
        decode(&format!("{h}.{p}."), Dialect::Apisix).unwrap_err(),
        JwtError::Segments,
        "h.p. is two segments"
    );
    assert_eq!(
        decode("a.b.c.d", Dialect::Apisix).unwrap_err(),
        JwtError::Segments
    );
    assert_eq!(
        decode(&format!("@@.{p}.x"), Dialect::Apisix).unwrap_err(),
        JwtError::Header
    );
    assert_eq!(
        decode(&format!("{}.{p}.x", b64("[1]")), Dialect::Apisix).unwrap_err(),
        JwtError::Header
    );
    assert_eq!(
        decode(&format!("{h}.{}.x", b64("7")), Dialect::Apisix).unwrap_err(),
        JwtError::Payload
    );
    assert_eq!(
        decode(&"a".repeat(MAX_TOKEN_BYTES + 1), Dialect::Apisix).unwrap_err(),
        JwtError::TooLong
    );
    // The signature is decoded only when verifying: a bad one fails verification (APISIX's
    // "failed to verify jwt"), not parsing.
    let bad_sig = format!("{h}.{p}.@@@@");
    let tok = decode(&bad_sig, Dialect::Apisix).unwrap();
    assert_eq!(
        tok.verify(&VerifyKey::hmac(Alg::HS256, b"s")),
        Err(JwtError::SignatureEncoding)
    );
    // Padded header/payload segments are accepted, as `ngx.decode_base64` does.
    let t = sign(
        Alg::HS256,
        &SignKey::Hmac(b"s".to_vec()),
        &Map::new(),
        &json!({"key": "padded"}),
    )
    .unwrap();
    let (hh, rest) = t.split_once('.').unwrap();
    let (pp, ss) = rest.split_once('.').unwrap();
    let pad = |s: &str| format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
    let padded = format!("{}.{}.{ss}", pad(hh), pad(pp));
    let tok = decode(&padded, Dialect::Apisix).unwrap();
    assert_eq!(tok.payload()["key"], json!("padded"));
    // Stray dots are dropped and the segments re-joined, as resty.jwt does.
    let stray = format!(".{hh}..{pp}.{ss}");
    decode(&stray, Dialect::Apisix)
        .unwrap()
        .verify(&VerifyKey::hmac(Alg::HS256, b"s"))
        .unwrap();
}

#[test]
fn kong_parsing_rules() {
    let h = b64(r#"{"alg":"HS256"}"#);
    let p = b64(r#"{"iss":"k"}"#);
    let msg = |t: &str| decode(t, Dialect::Kong).unwrap_err().kong_message();
    assert_eq!(msg("a.b"), "Bad token; invalid JSON");
    assert_eq!(msg(&format!("x.{p}.sig")), "Bad token; invalid JSON");
    assert_eq!(
        msg(&format!("{}.{p}.sig", b64(r#"{"alg":"none"}"#))),
        "Bad token; invalid alg"
    );
    assert_eq!(
        msg(&format!("{}.{p}.sig", b64(r#"{"typ":"JWT"}"#))),
        "Bad token; invalid alg"
    );
    assert_eq!(
        msg(&format!("{}.{p}.sig", b64(r#"{"alg":256}"#))),
        "Bad token; invalid alg"
    );
    assert_eq!(
        msg(&format!("{h}.{}.sig", b64("false"))),
        "Bad token; invalid claims"
    );
    assert_eq!(msg(&format!("{h}.{p}.@@@")), "Bad token; invalid signature");
    // A claims part that is not base64url or not JSON is "invalid JSON" too, and Kong decodes
    // both parts before it looks at `alg`.
    for bad in [
        "@@@@".to_string(),
        b64("not json"),
        b64("[1"),
        b64(r#"{"a":1} x"#),
    ] {
        assert_eq!(
            msg(&format!("{h}.{bad}.AA")),
            "Bad token; invalid JSON",
            "{bad}"
        );
        assert_eq!(
            msg(&format!("{}.{bad}.AA", b64(r#"{"alg":"none"}"#))),
            "Bad token; invalid JSON",
            "{bad}"
        );
    }
    // `false` claims, and the JSON Kong's parser fails on, after the alg check.
    for claims in ["false", "true", "null", "12"] {
        assert_eq!(
            msg(&format!("{h}.{}.AA", b64(claims))),
            "Bad token; invalid claims"
        );
        assert_eq!(
            msg(&format!("{}.{}.AA", b64(r#"{"alg":"none"}"#), b64(claims))),
            "Bad token; invalid alg"
        );
    }
    // An array or a string has no members: every claim is absent, as when Lua indexes them.
    for claims in ["[1]", r#""iss""#] {
        let raw = format!("{h}.{}.AA", b64(claims));
        let t = decode_keyed(&raw, Dialect::Kong, "iss").unwrap();
        assert_eq!(t.key(), &ClaimValue::Absent);
        assert_eq!(t.times().exp, ClaimValue::Absent);
        assert!(t.payload().as_object().is_some_and(|m| m.is_empty()));
    }
    // A header that is JSON but no object has no `alg`.
    for header in ["[1]", r#""HS256""#, "null"] {
        assert_eq!(
            msg(&format!("{}.{p}.AA", b64(header))),
            "Bad token; invalid alg"
        );
    }
    // Everything after the second dot is the signature.
    assert_eq!(msg(&format!("{h}.{p}.a.b")), "Bad token; invalid signature");
    // typ is ignored, lower case or missing.
    assert!(decode(
        &format!("{}.{p}.AA", b64(r#"{"alg":"HS256","typ":"jwt"}"#)),
        Dialect::Kong
    )
    .is_ok());
}

const NOW: i64 = 1_700_000_000;

#[test]
fn apisix_claim_rules() {
    let check = |p: Value, claims: Option<&[Claim]>, grace| {
        apisix_claims(&Times::of(&p), claims, NOW, grace)
    };
    // Without a list: checked only when present; a token with neither passes.
    assert!(check(json!({}), None, 0).is_ok());
    assert!(check(json!({}), Some(&[]), 0).is_ok());
    assert_eq!(
        check(json!({"exp": NOW}), None, 0).unwrap_err(),
        "'exp' claim expired at Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert!(check(json!({"exp": NOW + 1}), None, 0).is_ok());
    assert!(
        check(json!({"exp": NOW - 1}), None, 2).is_ok(),
        "grace applies to exp"
    );
    assert!(check(json!({"exp": NOW - 2}), None, 2).is_err());
    assert!(
        check(json!({"nbf": NOW}), None, 0)
            .unwrap_err()
            .starts_with("'nbf' claim not valid until"),
        "nbf == now is rejected (strict)"
    );
    assert!(check(json!({"nbf": NOW - 1}), None, 0).is_ok());
    assert!(
        check(json!({"nbf": NOW + 1}), None, 2).is_ok(),
        "grace applies to nbf"
    );
    assert_eq!(
        check(json!({"exp": "soon"}), None, 0).unwrap_err(),
        "claim exp is not a number"
    );
    // `null` is present and not a number: a token with `"exp": null` does not live forever.
    assert_eq!(
        check(json!({"exp": null}), None, 0).unwrap_err(),
        "claim exp is not a number"
    );
    assert_eq!(
        check(json!({"nbf": null}), None, 0).unwrap_err(),
        "claim nbf is not a number"
    );
    assert_eq!(
        check(json!({"exp": null}), Some(&[Claim::Exp]), 0).unwrap_err(),
        "claim exp is not a number"
    );
    // With a list: only the listed ones, each required.
    assert_eq!(
        check(json!({}), Some(&[Claim::Nbf]), 0).unwrap_err(),
        "claim nbf is missing"
    );
    assert!(
        check(
            json!({"nbf": NOW - 5, "exp": NOW - 5}),
            Some(&[Claim::Nbf]),
            0
        )
        .is_ok(),
        "an expired exp passes when only nbf is listed"
    );
    assert_eq!(
        check(
            json!({"nbf": "x", "exp": NOW - 1}),
            Some(&[Claim::Exp, Claim::Nbf]),
            0
        )
        .unwrap_err()
        .split(' ')
        .next(),
        Some("'exp'"),
        "checked in list order"
    );
}

#[test]
fn kong_claim_rules() {
    let check = |p: Value, claims: &[Claim], max| {
        kong_claims(&Times::of(&p), claims, max, NOW).map_err(Value::Object)
    };
    assert!(
        check(json!({"exp": NOW - 1}), &[], 0.0).is_ok(),
        "nothing checked by default"
    );
    assert_eq!(
        check(json!({"exp": NOW}), &[Claim::Exp], 0.0).unwrap_err(),
        json!({"exp": "token expired"})
    );
    assert!(
        check(json!({"nbf": NOW}), &[Claim::Nbf], 0.0).is_ok(),
        "nbf == now passes in Kong"
    );
    assert_eq!(
        check(json!({"nbf": NOW + 1}), &[Claim::Nbf], 0.0).unwrap_err(),
        json!({"nbf": "token not valid yet"})
    );
    assert_eq!(
        check(json!({}), &[Claim::Exp, Claim::Nbf], 0.0).unwrap_err(),
        json!({"exp": "must be a number", "nbf": "must be a number"})
    );
    assert_eq!(
        check(json!({"exp": NOW + 100}), &[Claim::Exp], 50.0).unwrap_err(),
        json!({"exp": "exceeds maximum allowed expiration"})
    );
    assert!(check(json!({"exp": NOW + 50}), &[Claim::Exp], 50.0).is_ok());
}

#[test]
fn the_one_pass_scan_agrees_with_a_full_parse() {
    let h = b64(r#"{"alg":"HS256","kid":{"nested":[1,2]}}"#);
    for payload in [
        r#"{"key":"a","exp":1.5e9,"nbf":null,"x":{"key":"inner"}}"#,
        r#"{"key":"a","key":"b"}"#,
        r#"{"exp":"soon","key":7,"arr":[{"exp":1}]}"#,
        r#"{"k\u0065y":"escaped","nbf":-3}"#,
        r#"{}"#,
    ] {
        let raw = format!("{h}.{}.AA", b64(payload));
        let t = decode_keyed(&raw, Dialect::Apisix, "key").unwrap();
        let full: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(t.key(), &ClaimValue::of(full.get("key")), "{payload}");
        assert_eq!(t.times(), &Times::of(&full), "{payload}");
        assert_eq!(t.payload(), &full);
        assert_eq!(t.header()["kid"], json!({"nested": [1, 2]}));
    }
    // Trailing garbage after the object is not JSON.
    let raw = format!("{h}.{}.AA", b64(r#"{"key":"a"} x"#));
    assert_eq!(
        decode(&raw, Dialect::Apisix).unwrap_err(),
        JwtError::Payload
    );
}

/// Replays the committed fuzz corpus (`fuzz/corpus/fuzz_jwt`, seeds and every crash found)
/// through the fuzz target's checks.
#[test]
fn fuzz_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_jwt");
    let key = VerifyKey::hmac(Alg::HS256, b"fuzz-secret");
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus is committed") {
        // A fuzzer running on the same corpus may remove an entry while we list it.
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
            continue;
        };
        let Ok(raw) = std::str::from_utf8(&bytes) else {
            continue;
        };
        for dialect in [Dialect::Apisix, Dialect::Kong] {
            if let Ok(t) = decode_keyed(raw, dialect, "key") {
                let full = t.payload().clone();
                assert_eq!(t.key(), &ClaimValue::of(full.get("key")), "{raw}");
                assert_eq!(t.times(), &Times::of(&full), "{raw}");
                assert!(t.verify(&key).is_err());
            }
        }
        let _ = inspect::inspect(raw, NOW, Some(&key));
        replayed += 1;
    }
    assert!(replayed >= 6);
}

/// Tokens signed by the openssl command line rather than by our code
/// (`testdata/jwt/openssl/make_vectors.sh`): an independent check of every verifier.
#[test]
fn openssl_signed_vectors_verify() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwt/openssl/");
    let text = std::fs::read_to_string(format!("{dir}vectors.txt")).unwrap();
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (alg, key, token) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let alg = Alg::parse(alg).unwrap();
        let key = match key.strip_prefix("secret:") {
            Some(s) => VerifyKey::hmac(alg, s.as_bytes()),
            None => VerifyKey::public_pem(
                alg,
                &std::fs::read_to_string(format!("{dir}{key}")).unwrap(),
            )
            .unwrap_or_else(|e| panic!("{alg:?} {key}: {e}")),
        };
        for dialect in [Dialect::Apisix, Dialect::Kong] {
            let t = decode_keyed(token, dialect, "key").unwrap();
            t.verify(&key)
                .unwrap_or_else(|e| panic!("{alg:?} {dialect:?}: {e}"));
            assert_eq!(t.key(), &ClaimValue::Str("user-key".into()));
        }
        // One flipped bit in the signed part fails.
        let tampered = token.replacen("eyJr", "eyJs", 1);
        if let Ok(t) = decode(&tampered, Dialect::Apisix) {
            assert!(t.verify(&key).is_err(), "{alg:?}");
        }
        seen.push(alg);
    }
    assert!(seen.len() >= 8, "{seen:?}");
}

/// Found by fuzz_jwt: invalid UTF-8 inside a string the scan skips made the scan accept a
/// payload the full parse refuses. JSON text must be UTF-8; both now refuse it.
#[test]
fn invalid_utf8_in_a_skipped_string_is_not_json() {
    let h = b64(r#"{"alg":"HS256"}"#);
    let p = base64_simd::URL_SAFE_NO_PAD.encode_to_string(b"{\"x\":\"\xff\",\"nbf\":1}");
    let raw = format!("{h}.{p}.AA");
    assert_eq!(
        decode(&raw, Dialect::Apisix).unwrap_err(),
        JwtError::Payload
    );
    let hp = base64_simd::URL_SAFE_NO_PAD.encode_to_string(b"{\"alg\":\"HS256\",\"x\":\"\xfe\"}");
    assert_eq!(
        decode(&format!("{hp}.{}.AA", b64("{}")), Dialect::Kong).unwrap_err(),
        JwtError::Header
    );
}

/// Replays the committed `fuzz_keys` corpus: key text never panics and never fits an
/// algorithm it was not made for.
#[test]
fn fuzz_keys_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_keys");
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus is committed") {
        let text = match std::fs::read(entry.unwrap().path()) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => continue, // removed by a fuzzer running on the same corpus
        };
        for alg in Alg::ALL.into_iter().filter(|a| !a.is_hmac()) {
            if let Ok(k) = VerifyKey::public_pem(alg, &text) {
                assert_eq!(k.alg(), alg);
                assert!(!k.verify(b"message", &[0u8; 64]));
            }
            let _ = sign(alg, &SignKey::Pem(text.clone()), &Map::new(), &json!({}));
        }
        replayed += 1;
    }
    assert!(replayed >= 7);
}

/// What RSA verification was before aws-lc-rs: ring's parameters for each RSA algorithm, kept
/// as the oracle of `rsa_verification_agrees_with_ring`.
fn ring_rsa_params(alg: Alg) -> &'static ring::signature::RsaParameters {
    use ring::signature as r;
    match alg {
        Alg::RS256 => &r::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        Alg::RS384 => &r::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &r::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        Alg::PS256 => &r::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &r::RSA_PSS_2048_8192_SHA384,
        _ => &r::RSA_PSS_2048_8192_SHA512,
    }
}

const RSA_ALGS: [Alg; 6] = [
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
];

/// Signs with ring, where ring can (2048 bits and up, exponent at least 65537).
fn ring_rsa_sign(alg: Alg, private_pem: &str, msg: &[u8]) -> Option<Vec<u8>> {
    use ring::signature as r;
    let (label, der) = key::pem_decode(private_pem).unwrap();
    let pair = match label.as_str() {
        "RSA PRIVATE KEY" => r::RsaKeyPair::from_der(&der),
        _ => r::RsaKeyPair::from_pkcs8(&der),
    }
    .ok()?;
    let enc: &'static dyn r::RsaEncoding = match alg {
        Alg::RS256 => &r::RSA_PKCS1_SHA256,
        Alg::RS384 => &r::RSA_PKCS1_SHA384,
        Alg::RS512 => &r::RSA_PKCS1_SHA512,
        Alg::PS256 => &r::RSA_PSS_SHA256,
        Alg::PS384 => &r::RSA_PSS_SHA384,
        _ => &r::RSA_PSS_SHA512,
    };
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(enc, &ring::rand::SystemRandom::new(), msg, &mut sig)
        .unwrap();
    Some(sig)
}

/// Signs with aws-lc-rs (2048 bits and up, any exponent), with PSS salts of the digest's
/// length or, for `odd_salt`, of the maximum length and of none: signatures ring refuses.
fn aws_rsa_sign(alg: Alg, private_pem: &str, msg: &[u8], odd_salt: bool) -> Vec<Vec<u8>> {
    use aws_lc_rs::signature::{self as a, RsaPssSaltLength as Salt, RsaSignatureEncoding};
    let (label, der) = key::pem_decode(private_pem).unwrap();
    let Ok(pair) = (match label.as_str() {
        "RSA PRIVATE KEY" => a::RsaKeyPair::from_der(&der),
        _ => a::RsaKeyPair::from_pkcs8(&der),
    }) else {
        return Vec::new();
    };
    const ODD: [(Alg, [&RsaSignatureEncoding; 2]); 3] = [
        (
            Alg::PS256,
            [
                &a::RSA_PSS_SHA256.with_pss_salt_length(Salt::Max),
                &a::RSA_PSS_SHA256.with_pss_salt_length(Salt::Custom(0)),
            ],
        ),
        (
            Alg::PS384,
            [
                &a::RSA_PSS_SHA384.with_pss_salt_length(Salt::Max),
                &a::RSA_PSS_SHA384.with_pss_salt_length(Salt::Custom(0)),
            ],
        ),
        (
            Alg::PS512,
            [
                &a::RSA_PSS_SHA512.with_pss_salt_length(Salt::Max),
                &a::RSA_PSS_SHA512.with_pss_salt_length(Salt::Custom(0)),
            ],
        ),
    ];
    let encs: Vec<&'static dyn a::RsaEncoding> = if odd_salt {
        ODD.iter()
            .filter(|(x, _)| *x == alg)
            .flat_map(|(_, e)| e.iter().map(|e| *e as &'static dyn a::RsaEncoding))
            .collect()
    } else {
        vec![match alg {
            Alg::RS256 => &a::RSA_PKCS1_SHA256,
            Alg::RS384 => &a::RSA_PKCS1_SHA384,
            Alg::RS512 => &a::RSA_PKCS1_SHA512,
            Alg::PS256 => &a::RSA_PSS_SHA256,
            Alg::PS384 => &a::RSA_PSS_SHA384,
            _ => &a::RSA_PSS_SHA512,
        }]
    };
    encs.into_iter()
        .map(|enc| {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(enc, &aws_lc_rs::rand::SystemRandom::new(), msg, &mut sig)
                .unwrap();
            sig
        })
        .collect()
}

/// An `RSA PUBLIC KEY` PEM for any modulus and exponent, even ones no key generator makes.
fn rsa_public_pem(n: &[u8], e: &[u8]) -> String {
    fn int(v: &[u8]) -> Vec<u8> {
        let mut body = v.to_vec();
        if body.first().is_none_or(|b| b & 0x80 != 0) {
            body.insert(0, 0);
        }
        let mut out = vec![0x02];
        out.extend(der_len(body.len()));
        out.extend(body);
        out
    }
    fn der_len(len: usize) -> Vec<u8> {
        match len {
            0..=0x7f => vec![len as u8],
            0x80..=0xff => vec![0x81, len as u8],
            _ => vec![0x82, (len >> 8) as u8, len as u8],
        }
    }
    let body = [int(n), int(e)].concat();
    let mut der = vec![0x30];
    der.extend(der_len(body.len()));
    der.extend(body);
    format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        base64_simd::STANDARD.encode_to_string(&der)
    )
}

/// RSA signatures are checked with aws-lc-rs's parsed keys; ring, which checked them before,
/// must agree on every verdict: valid signatures of every RSA algorithm and key size we accept
/// (1024-bit keys for RS256/RS512, odd sizes, e = 3), signatures of the wrong algorithm, salt
/// length or key, tampered, truncated, oversized and out-of-range signatures, tampered
/// messages, and keys with exponents or moduli no real key has.
#[test]
fn rsa_verification_agrees_with_ring() {
    let msg: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJrZXkiOiJ1c2VyLWtleSJ9";
    let other_msg: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJrZXkiOiJhZG1pbiJ9";
    let files = [
        "rsa2048.pem",
        "rsa1024.pem",
        "openssl/rsa1024_pkcs1.pem",
        "rsa2047.pem",
        "rsa2049e3.pem",
        "rsa3072.pem",
        "openssl/rsa2048_pkcs8.pem",
    ];
    let keys: Vec<String> = files.iter().map(|f| fixture(f)).collect();

    // Every signature any key makes for any RSA algorithm over `msg`, with whether it is valid
    // for (key, algorithm): each one is tried against every key and algorithm.
    let mut sigs: Vec<(usize, Alg, Vec<u8>)> = Vec::new();
    let mut odd_salts: Vec<(usize, Alg, Vec<u8>)> = Vec::new();
    for (i, private) in keys.iter().enumerate() {
        for alg in RSA_ALGS {
            sigs.extend(ring_rsa_sign(alg, private, msg).map(|s| (i, alg, s)));
            sigs.extend(
                aws_rsa_sign(alg, private, msg, false)
                    .into_iter()
                    .map(|s| (i, alg, s)),
            );
            odd_salts.extend(
                aws_rsa_sign(alg, private, msg, true)
                    .into_iter()
                    .map(|s| (i, alg, s)),
            );
        }
    }
    // 1024-bit keys sign with neither library: these tokens come from the openssl vectors.
    let vectors = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/jwt/openssl/vectors.txt"
    ))
    .unwrap();
    let mut openssl_1024 = Vec::new();
    for line in vectors.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [alg, "rsa1024_spki.pub.pem", token] = parts[..] {
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sig).unwrap();
            openssl_1024.push((Alg::parse(alg).unwrap(), input.to_string(), sig));
        }
    }
    assert_eq!(
        openssl_1024.len(),
        2,
        "RS256 and RS512 with the 1024-bit key"
    );

    let mut checked = 0;
    let mut accepted = 0;
    let mut check = |alg: Alg, key: &VerifyKey, n: &[u8], e: &[u8], m: &[u8], s: &[u8]| {
        let ring = ring::signature::RsaPublicKeyComponents { n, e }
            .verify(ring_rsa_params(alg), m, s)
            .is_ok();
        let ours = key.verify(m, s);
        assert_eq!(
            ours,
            ring,
            "{alg:?}, {}-byte key, {}-byte signature: ours {ours}, ring {ring}",
            n.len(),
            s.len()
        );
        checked += 1;
        accepted += usize::from(ours);
        ours
    };

    for (i, private) in keys.iter().enumerate() {
        let (n, e) = key::rsa_components(private).unwrap();
        for alg in RSA_ALGS {
            let Ok(vk) = VerifyKey::public_pem(alg, private) else {
                // Refused when written (under the algorithm's minimum size), as before.
                assert!(matches!(
                    alg,
                    Alg::RS384 | Alg::PS256 | Alg::PS384 | Alg::PS512
                ));
                assert!(n.len() * 8 < 2048 || n[0] < 0x80, "{alg:?} key {i} refused");
                continue;
            };
            for (j, signed_as, sig) in &sigs {
                let valid = *j == i && *signed_as == alg;
                assert_eq!(check(alg, &vk, &n, &e, msg, sig), valid, "{alg:?} key {i}");
                assert!(!check(alg, &vk, &n, &e, other_msg, sig));
                if !valid {
                    continue;
                }
                // Every way of spoiling a valid signature.
                let k = sig.len();
                let mut spoiled: Vec<Vec<u8>> = Vec::new();
                for at in [0, 1, k / 2, k - 1] {
                    for bit in [0x01, 0x80] {
                        let mut s = sig.clone();
                        s[at] ^= bit;
                        spoiled.push(s);
                    }
                }
                spoiled.push(sig[..k - 1].to_vec());
                spoiled.push(sig[1..].to_vec());
                spoiled.push(sig[..k / 2].to_vec());
                spoiled.push(Vec::new());
                spoiled.push([sig.as_slice(), &[0]].concat());
                spoiled.push([&[0], sig.as_slice()].concat());
                spoiled.push([sig.as_slice(), sig.as_slice()].concat());
                spoiled.push(vec![0; k]);
                spoiled.push(vec![0xff; k]);
                let mut one = vec![0; k];
                one[k - 1] = 1;
                spoiled.push(one);
                // The modulus itself and the modulus minus one: out of range, and -1.
                let mut modulus = vec![0; k - n.len()];
                modulus.extend_from_slice(&n);
                spoiled.push(modulus.clone());
                *modulus.last_mut().unwrap() -= 1;
                spoiled.push(modulus);
                for s in spoiled {
                    assert!(!check(alg, &vk, &n, &e, msg, &s), "{alg:?} key {i}");
                }
            }
            for (j, signed_as, sig) in &odd_salts {
                check(alg, &vk, &n, &e, msg, sig);
                assert!(!(*j == i && *signed_as == alg && vk.verify(msg, sig)));
            }
            for (signed_as, input, sig) in &openssl_1024 {
                let valid = files[i] == "openssl/rsa1024_pkcs1.pem" && *signed_as == alg;
                assert_eq!(check(alg, &vk, &n, &e, input.as_bytes(), sig), valid);
            }
        }
    }

    // Keys no generator makes, on the 2048-bit key's modulus (and its signatures).
    let (n, _) = key::rsa_components(&keys[0]).unwrap();
    let mut even_n = n.clone();
    *even_n.last_mut().unwrap() ^= 1;
    let mut other_n = n.clone();
    other_n[1] ^= 0x10;
    let exponents: [&[u8]; 11] = [
        &[1],
        &[2],
        &[3],
        &[5],
        &[1, 0, 0],
        &[1, 0, 1],
        &[1, 0, 3],
        &[1, 0xff, 0xff, 0xff, 0xff],
        &[2, 0, 0, 0, 1],
        &[1, 0, 0, 0, 0, 0, 0, 0, 1],
        &n[..],
    ];
    for (n, valid_e) in [(&n, true), (&even_n, false), (&other_n, false)] {
        for e in exponents {
            let pem = rsa_public_pem(n, e);
            for alg in RSA_ALGS {
                let vk = VerifyKey::public_pem(alg, &pem).unwrap();
                for (j, signed_as, sig) in &sigs {
                    let valid = valid_e && e == [1, 0, 1] && *j == 0 && *signed_as == alg;
                    assert_eq!(check(alg, &vk, n, e, msg, sig), valid, "{alg:?} e {e:?}");
                }
            }
        }
    }
    // A zero exponent is the one key aws-lc-rs will not even hold; refused when written.
    for alg in RSA_ALGS {
        let e = VerifyKey::public_pem(alg, &rsa_public_pem(&n, &[])).unwrap_err();
        assert_eq!(e.0, "invalid RSA public key");
    }
    assert!(
        checked > 10_000 && accepted > 50,
        "{checked} checked, {accepted} accepted"
    );
}

#[test]
fn verify_keys_stay_small_and_shareable() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<VerifyKey>();
    assert!(std::mem::size_of::<VerifyKey>() <= 184);
}

#[test]
fn ed448_keys_are_refused_with_a_message_that_says_so() {
    // `openssl genpkey -algorithm ed448`, public and private halves.
    let public = "-----BEGIN PUBLIC KEY-----\nMEMwBQYDK2VxAzoAIW1v57Kginng7zPsNo++BsYziFCcbb/iREDVL51jkSjCYJqr\nB8hj6mgnm06lP/4bF0j/GGsnIYGA\n-----END PUBLIC KEY-----\n";
    let e = VerifyKey::public_pem(Alg::EdDSA, public).unwrap_err();
    assert!(
        e.to_string().contains("Ed448 keys are not supported"),
        "{e}"
    );
    let private = "-----BEGIN PRIVATE KEY-----\nMEcCAQAwBQYDK2VxBDsEOTGlrBbPPzS+oiyQ1HRFOtNxDvpOUKI9ewjgapCsrcN0\nbOoe/G8W9ys1hZXtOPXoBHGO8Kk3gTiURg==\n-----END PRIVATE KEY-----\n";
    let e = VerifyKey::public_pem(Alg::EdDSA, private).unwrap_err();
    assert!(
        e.to_string().contains("Ed448 keys are not supported"),
        "{e}"
    );
}

/// ECDSA signatures are raw `R‖S` (RFC 7518 §3.4); the same signature DER-encoded, as
/// OpenSSL and some libraries produce it, is refused (reference §1.5).
#[test]
fn der_encoded_ecdsa_signatures_are_refused() {
    for alg in [Alg::ES256, Alg::ES384] {
        let (t, key) = signed(alg, &json!({"key": "k"}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let raw = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sig).unwrap();
        let (r, s) = raw.split_at(raw.len() / 2);
        let int = |x: &[u8]| {
            let x = &x[x.iter().take_while(|&&b| b == 0).count()..];
            let mut v = vec![0x02];
            let pad = x[0] & 0x80 != 0;
            v.push((x.len() + pad as usize) as u8);
            if pad {
                v.push(0);
            }
            v.extend_from_slice(x);
            v
        };
        let body = [int(r), int(s)].concat();
        let mut der = vec![0x30];
        if body.len() > 127 {
            der.push(0x81);
        }
        der.push(body.len() as u8);
        der.extend_from_slice(&body);
        let der_token = format!(
            "{input}.{}",
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(&der)
        );
        assert!(decode(&t, Dialect::Apisix).unwrap().verify(&key).is_ok());
        assert_eq!(
            decode(&der_token, Dialect::Apisix)
                .unwrap()
                .verify(&key)
                .unwrap_err(),
            JwtError::BadSignature,
            "{alg:?}"
        );
    }
}

/// `typ` and `x5c` in the header change nothing: the key comes from the credential.
#[test]
fn typ_and_x5c_header_fields_are_ignored() {
    let (_, key) = signed(Alg::ES256, &json!({}));
    let mut extra = Map::new();
    extra.insert("typ".into(), json!("at+jwt"));
    extra.insert("x5c".into(), json!(["MIIBszCCAVmgAwIBAgIUQ"]));
    let t = sign(
        Alg::ES256,
        &SignKey::Pem(fixture("ecp256.pem")),
        &extra,
        &json!({"key": "k"}),
    )
    .unwrap();
    for dialect in [Dialect::Apisix, Dialect::Kong] {
        assert!(decode(&t, dialect).unwrap().verify(&key).is_ok());
    }
}
