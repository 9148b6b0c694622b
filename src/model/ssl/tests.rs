use serde_json::{json, Value};

use super::*;
use crate::tls::sni::SniTable;

/// A self-signed ECDSA P-256 certificate for `names` and its key, in PEM.
fn ecdsa(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).expect("rcgen makes P-256 certificates");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

/// A self-signed RSA 2048 certificate made with the fixture key.
fn rsa(names: &[&str]) -> (String, String) {
    let key_pem = include_str!("../../../testdata/jwt/rsa2048.pem");
    let key = rcgen::KeyPair::from_pem(key_pem).expect("the fixture is an RSA key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .expect("valid names")
        .self_signed(&key)
        .expect("rcgen signs with RSA keys");
    (cert.pem(), key_pem.to_owned())
}

fn errors(v: Value) -> Vec<String> {
    Ssl::from_json(&v, Some("s1")).unwrap_err().0
}

#[test]
fn a_valid_object_is_parsed_and_normalised() {
    let (cert, key) = ecdsa(&["a.test"]);
    let ssl = Ssl::from_json(
        &json!({"cert": cert, "key": key, "snis": ["A.Test.", "*.Test", "a.test"],
                "labels": {"env": "x"}, "desc": "d", "create_time": 1}),
        Some("s1"),
    )
    .unwrap();
    assert_eq!(ssl.id, "s1");
    assert_eq!(ssl.snis, ["a.test", "*.test"]);
    assert_eq!(ssl.keys.len(), 1);
    assert!(ssl.enabled);
    assert_eq!(ssl.versions, TlsVersions::ALL);

    let single = Ssl::from_json(
        &json!({"cert": cert, "key": key, "sni": "b.test", "status": 0,
                "ssl_protocols": ["TLSv1.3"]}),
        Some("s2"),
    )
    .unwrap();
    assert_eq!(single.snis, ["b.test"]);
    assert!(!single.enabled);
    assert_eq!(
        single.versions,
        TlsVersions {
            tls12: false,
            tls13: true
        }
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let (cert, _) = ecdsa(&["a.test"]);
    let (_, other_key) = ecdsa(&["a.test"]);
    let e = errors(json!({"cert": cert, "key": other_key, "snis": ["a.test"]}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("key does not match cert"), "{e:?}");
}

#[test]
fn unparsable_pem_names_the_field() {
    let (cert, key) = ecdsa(&["a.test"]);
    let junk = "x".repeat(200);
    let e = errors(json!({"cert": junk, "key": key, "snis": ["a.test"]}));
    assert!(e[0].starts_with("failed to parse cert: "), "{e:?}");
    let e = errors(json!({"cert": cert, "key": junk, "snis": ["a.test"]}));
    assert!(
        e[0].starts_with("failed to parse key: no PEM private key"),
        "{e:?}"
    );
    // A PEM block whose content is not a certificate.
    let bad_der = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        "QUJD".repeat(40)
    );
    let e = errors(json!({"cert": bad_der, "key": key, "snis": ["a.test"]}));
    assert!(e[0].starts_with("failed to parse cert: "), "{e:?}");
    // Too short for APISIX's schema.
    let e = errors(json!({"cert": "abc", "key": key, "snis": ["a.test"]}));
    assert_eq!(
        e,
        ["property \"cert\" validation failed: string too short, expected at least 128, got 3"]
    );
}

#[test]
fn unsupported_key_types_say_what_is_supported() {
    let (cert, _) = ecdsa(&["a.test"]);
    let p521 = include_str!("../../../testdata/jwt/ecp521.pem");
    let e = errors(json!({"cert": cert, "key": p521, "snis": ["a.test"]}));
    assert!(e[0].starts_with("failed to parse key: "), "{e:?}");
    assert!(e[0].contains("supported: RSA"), "{e:?}");
}

#[test]
fn every_problem_is_reported() {
    let (cert, key) = ecdsa(&["a.test"]);
    let e = errors(json!({
        "cert": cert, "key": key, "snis": ["ok.test", "bad name", "a.*.test"],
        "type": "client", "client": {"ca": "x"}, "status": 2,
        "ssl_protocols": ["TLSv1.1", "TLSv1.2", "SSLv3"], "nope": 1
    }));
    let expected = [
        "additional properties forbidden, found nope",
        "property \"client\" is not supported yet",
        "property \"type\" validation failed: \"client\"",
        "property \"status\" validation failed",
        "ssl_protocols[0]: TLSv1.1 is not supported",
        "ssl_protocols[2]: matches none of the enum values",
        "snis[1]: \"bad name\" is not a host name",
        "snis[2]: \"a.*.test\" is not a host name",
    ];
    assert_eq!(e.len(), expected.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expected) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn sni_and_snis_are_one_of() {
    let (cert, key) = ecdsa(&["a.test"]);
    let e = errors(json!({"cert": cert, "key": key}));
    assert_eq!(e, ["property \"snis\" is required"]);
    let e = errors(json!({"cert": cert, "key": key, "sni": "a.test", "snis": ["a.test"]}));
    assert!(
        e[0].starts_with("only one of \"snis\" and \"sni\""),
        "{e:?}"
    );
    let e = errors(json!({"cert": cert, "key": key, "snis": []}));
    assert!(e[0].contains("at least 1 items"), "{e:?}");
    let e = errors(json!({"snis": ["a.test"]}));
    assert_eq!(
        e,
        [
            "property \"cert\" is required",
            "property \"key\" is required"
        ]
    );
}

#[test]
fn references_are_refused() {
    let (cert, _) = ecdsa(&["a.test"]);
    let reference = format!("$env://SSL_KEY_{}", "X".repeat(64));
    let e = errors(json!({"cert": cert, "key": reference, "snis": ["a.test"]}));
    assert!(e[0].contains("secret references"), "{e:?}");
}

#[test]
fn extra_pairs_are_checked_and_picked_by_signature_scheme() {
    let (rsa_cert, rsa_key) = rsa(&["a.test"]);
    let (ec_cert, ec_key) = ecdsa(&["a.test"]);
    let ssl = Ssl::from_json(
        &json!({"cert": rsa_cert, "key": rsa_key, "certs": [ec_cert], "keys": [ec_key],
                "snis": ["a.test"]}),
        Some("dual"),
    )
    .unwrap();
    assert_eq!(ssl.keys.len(), 2);
    let table = SniTable::build(&[ssl]);
    let entry = table.find("a.test").unwrap();
    use rustls::SignatureScheme as S;
    let ec = entry.pick(&[S::ECDSA_NISTP256_SHA256]).unwrap();
    assert_eq!(ec.cert[0].as_ref(), entry.keys[1].cert[0].as_ref());
    let rsa = entry.pick(&[S::RSA_PSS_SHA256]).unwrap();
    assert_eq!(rsa.cert[0].as_ref(), entry.keys[0].cert[0].as_ref());

    let e = errors(json!({"cert": ec_cert, "key": ec_key, "certs": [ec_cert], "snis": ["a"]}));
    assert_eq!(e, ["mismatched number of certs and keys"]);
    let e = errors(json!({"cert": ec_cert, "key": ec_key, "certs": [ec_cert],
                          "keys": [rsa_key], "snis": ["a"]}));
    assert!(
        e[0].starts_with("failed to handle cert-key pair[1]: key does not match cert"),
        "{e:?}"
    );
}
