//! `fuzz_keys`: arbitrary text as a credential's `public_key` (or a private key to sign with),
//! for every algorithm.
//!
//! Guards against panics in PEM and ASN.1 parsing of key material an Admin API client sends
//! (SPKI, PKCS#1, PKCS#8, SEC1), and against a key being accepted for an algorithm it does not
//! fit: whatever parses must verify nothing but signatures made with it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::jwt::{sign, Alg, SignKey, VerifyKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for alg in Alg::ALL {
        if alg.is_hmac() {
            continue;
        }
        if let Ok(k) = VerifyKey::public_pem(alg, text) {
            assert_eq!(k.alg(), alg);
            assert!(!k.verify(b"message", &[0u8; 64]));
        }
        let _ = sign(alg, &SignKey::Pem(text.to_string()), &Default::default(), &serde_json::json!({}));
    }
});
