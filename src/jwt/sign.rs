//! Signing tokens: for `portcullis token sign`, the Admin API's signing endpoint, tests and
//! benches. Private keys are read from PEM: RSA as PKCS#1 or PKCS#8; EC as PKCS#8 or SEC1;
//! Ed25519 as PKCS#8.

use pkcs8::der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature;
use serde_json::{Map, Value};

use super::key::{pem_decode, KeyError};
use super::Alg;

/// Signing key material.
pub enum SignKey {
    /// An HMAC secret (HS algorithms).
    Hmac(Vec<u8>),
    /// A PEM private key (every other algorithm).
    Pem(String),
}

impl std::fmt::Debug for SignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignKey(<redacted>)")
    }
}

fn err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

fn b64(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// SEC1 `EC PRIVATE KEY` DER wrapped as PKCS#8 (what ring reads).
fn sec1_to_pkcs8(der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(|_| err("invalid SEC1 EC private key"))?;
    let curve = k
        .parameters
        .and_then(|p| p.named_curve())
        .ok_or_else(|| err("EC private key without its curve"))?;
    let ec = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    let info = pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: ec,
            parameters: Some((&curve).into()),
        },
        private_key: der,
        public_key: None,
    };
    info.to_der()
        .map_err(|_| err("cannot re-encode the EC key"))
}

fn sign_bytes(alg: Alg, key: &SignKey, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    if alg.is_hmac() {
        let SignKey::Hmac(secret) = key else {
            return Err(err(format!("{} signs with a secret", alg.as_str())));
        };
        let digest = match alg {
            Alg::HS384 => ring::hmac::HMAC_SHA384,
            Alg::HS512 => ring::hmac::HMAC_SHA512,
            _ => ring::hmac::HMAC_SHA256,
        };
        let k = ring::hmac::Key::new(digest, secret);
        return Ok(ring::hmac::sign(&k, msg).as_ref().to_vec());
    }
    let SignKey::Pem(pem) = key else {
        return Err(err(format!(
            "{} signs with a PEM private key",
            alg.as_str()
        )));
    };
    let (label, der) = pem_decode(pem)?;
    let pkcs8 = match label.as_str() {
        "PRIVATE KEY" => der.clone(),
        "EC PRIVATE KEY" => sec1_to_pkcs8(&der)?,
        "RSA PRIVATE KEY" => Vec::new(),
        other => return Err(err(format!("unsupported private key PEM type {other:?}"))),
    };
    match alg {
        a if a.is_rsa() => {
            let pair = if label == "RSA PRIVATE KEY" {
                signature::RsaKeyPair::from_der(&der)
            } else {
                signature::RsaKeyPair::from_pkcs8(&pkcs8)
            }
            .map_err(|e| err(format!("not a usable RSA private key ({e})")))?;
            let enc: &dyn signature::RsaEncoding = match a {
                Alg::RS256 => &signature::RSA_PKCS1_SHA256,
                Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                Alg::PS256 => &signature::RSA_PSS_SHA256,
                Alg::PS384 => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(enc, &rng, msg, &mut sig)
                .map_err(|_| err("RSA signing failed"))?;
            Ok(sig)
        }
        Alg::ES256 | Alg::ES384 => {
            let params = if alg == Alg::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = signature::EcdsaKeyPair::from_pkcs8(params, &pkcs8, &rng)
                .map_err(|_| err(format!("not a usable {} private key", alg.as_str())))?;
            let sig = pair
                .sign(&rng, msg)
                .map_err(|_| err("ECDSA signing failed"))?;
            Ok(sig.as_ref().to_vec())
        }
        Alg::ES512 => {
            use p521::ecdsa::signature::Signer;
            use p521::pkcs8::DecodePrivateKey;
            let sk = p521::SecretKey::from_pkcs8_der(&pkcs8)
                .map_err(|_| err("not a usable ES512 (P-521) private key"))?;
            let signing = p521::ecdsa::SigningKey::from_bytes(&sk.to_bytes())
                .map_err(|_| err("not a usable ES512 (P-521) private key"))?;
            let sig: p521::ecdsa::Signature = signing.sign(msg);
            Ok(sig.to_bytes().to_vec())
        }
        _ => {
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                .map_err(|_| err("not a usable Ed25519 private key"))?;
            Ok(pair.sign(msg).as_ref().to_vec())
        }
    }
}

/// Signs `payload` with `alg`; the header is `{"alg", "typ": "JWT"}` plus `header_extra`
/// (e.g. `kid`).
pub fn sign(
    alg: Alg,
    key: &SignKey,
    header_extra: &Map<String, Value>,
    payload: &Value,
) -> Result<String, KeyError> {
    let mut header = Map::new();
    header.insert("alg".into(), alg.as_str().into());
    header.insert("typ".into(), "JWT".into());
    for (k, v) in header_extra {
        if k != "alg" {
            header.insert(k.clone(), v.clone());
        }
    }
    let input = format!(
        "{}.{}",
        b64(Value::Object(header).to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = sign_bytes(alg, key, input.as_bytes())?;
    Ok(format!("{input}.{}", b64(&sig)))
}
