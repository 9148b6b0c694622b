//! `fuzz_jwt`: arbitrary bytes as a token, decoded in both peers' dialects, its claims read,
//! its signature checked with an HMAC, an RSA and an EC key, and inspected.
//!
//! Guards against panics anywhere a token from the network reaches (a Lua peer answers 500
//! there), against the one-pass claim scan disagreeing with a full JSON parse (the key claim
//! and `exp`/`nbf` the gateway decides on must be what the payload says), and against any
//! token verifying with a key it was not signed with.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::jwt::{apisix_claims, decode_keyed, inspect, kong_claims, Alg, ClaimValue, Claim, Dialect, Times, VerifyKey};

fn keys() -> &'static [VerifyKey] {
    static KEYS: OnceLock<Vec<VerifyKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/jwt/");
        let pem = |f: &str| std::fs::read_to_string(format!("{dir}{f}")).expect("fixture keys");
        vec![
            VerifyKey::hmac(Alg::HS256, b"fuzz-secret"),
            VerifyKey::public_pem(Alg::RS256, &pem("rsa2048.pub.pem")).expect("rsa"),
            VerifyKey::public_pem(Alg::ES256, &pem("ecp256.pub.pem")).expect("p256"),
            VerifyKey::public_pem(Alg::EdDSA, &pem("ed25519.pub.pem")).expect("ed25519"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for dialect in [Dialect::Apisix, Dialect::Kong] {
        let Ok(t) = decode_keyed(raw, dialect, "key") else {
            continue;
        };
        let full = t.payload().clone();
        assert_eq!(t.key(), &ClaimValue::of(full.get("key")));
        assert_eq!(t.times(), &Times::of(&full));
        let _ = t.header();
        let _ = apisix_claims(t.times(), Some(&[Claim::Exp, Claim::Nbf]), 1_700_000_000, 5);
        let _ = kong_claims(t.times(), &[Claim::Exp], 3600.0, 1_700_000_000);
        for k in keys() {
            // Nobody holds these private keys in the corpus, and the HMAC secret is not in it:
            // nothing the fuzzer makes may verify.
            assert!(t.verify(k).is_err(), "a token verified with a key it was not signed with");
        }
    }
    let _ = inspect::inspect(raw, 1_700_000_000, Some(&keys()[0]));
});
