//! Key material parsed once: HMAC keys, and public keys from PEM (SPKI, PKCS#1, or the public
//! half of a PKCS#1 / PKCS#8 / SEC1 private key, which APISIX accepts in `public_key`).
//!
//! ASN.1 is read with RustCrypto's `spki`, `pkcs1`, `pkcs8` and `sec1` crates rather than a
//! hand-written DER reader. Stricter than APISIX on purpose: a key that does not fit its
//! algorithm (an RSA key for ES256, a P-384 key for ES256) or an RSA key of a size the
//! algorithm does not allow (under 1024 bits for RS256 and RS512, under 2048 for RS384 and PS*,
//! over 8192) is refused when written, instead of failing every request later.
//!
//! Signatures are checked with ring, except RSA's and ES256's. ring has no way to keep a parsed
//! RSA public key and re-reads the modulus and rebuilds its Montgomery constants on every
//! verification, which is most of an RS256 check. aws-lc-rs parses an RSA key once into a
//! reusable key, with the same verification parameters (padding, digest, PSS salt length, key
//! sizes) as ring's. An ES256 key gets a table of multiples of its public point on its first
//! check ([`super::p256`]), and falls back to ring when the table budget is spent.

use std::fmt;
use std::sync::{Arc, OnceLock};

use pkcs1::der::Decode;
use ring::signature::{self, UnparsedPublicKey};

use super::{p256, Alg};

/// Why key material was refused. Messages never contain key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
/// Ed448: refused with its own message. The only Rust implementation is a pre-release that
/// verifies in milliseconds, which would hand anyone who can send tokens a CPU lever.
const OID_ED448: &str = "1.3.101.113";
const ED448: &str = "Ed448 keys are not supported; EdDSA credentials take an Ed25519 key";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// An ES256 key: checked with a precomputed table when it has one, else by ring.
struct P256Key {
    sec1: [u8; 65],
    comb: OnceLock<p256::Comb>,
}

impl P256Key {
    /// The key's table: built on the first check while the table budget has room. Two cores
    /// racing here may both build one; the loser's is dropped with its share of the budget.
    fn comb(&self) -> Option<&p256::Comb> {
        if let Some(c) = self.comb.get() {
            return Some(c);
        }
        let _ = self.comb.set(p256::Comb::for_key(&self.sec1)?);
        self.comb.get()
    }
}

#[derive(Clone)]
enum Inner {
    Hmac(ring::hmac::Key),
    /// Parsed once, bound to the parameters of the key's algorithm ([`rsa_params`]).
    Rsa(Arc<aws_lc_rs::signature::ParsedPublicKey>),
    /// Uncompressed SEC1 point.
    P384(Arc<[u8]>),
    /// Uncompressed SEC1 point, and its comb table once built ([`super::p256`]).
    P256(Arc<P256Key>),
    P521(Arc<p521::ecdsa::VerifyingKey>),
    Ed25519(Arc<[u8]>),
}

/// A key ready to verify tokens of exactly one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    alg: Alg,
    inner: Inner,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({}, <redacted>)", self.alg.as_str())
    }
}

/// PEM text to `(label, DER)`. Lenient about line breaks (APISIX users paste keys with the
/// base64 on one line), strict about the armour and the base64 itself.
pub fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let text = text.trim();
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| err("not a PEM key (no -----BEGIN line)"))?;
    let after = &text[begin + 11..];
    let label_end = after
        .find("-----")
        .ok_or_else(|| err("malformed PEM header"))?;
    let label = after[..label_end].to_string();
    let body_and_end = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_end
        .find(&end_marker)
        .ok_or_else(|| err(format!("PEM {label} without its -----END line")))?;
    let body: String = body_and_end[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.contains(':') {
        return Err(err("encrypted PEM keys are not supported"));
    }
    let der = base64_simd::STANDARD
        .decode_to_vec(body.as_bytes())
        .map_err(|_| err(format!("PEM {label}: invalid base64")))?;
    Ok((label, der))
}

/// Public key material as found in a PEM file.
enum Public {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { curve: &'static str, point: Vec<u8> },
    Ed25519(Vec<u8>),
}

fn curve_name(oid: &str) -> Result<&'static str, KeyError> {
    match oid {
        OID_P256 => Ok("P-256"),
        OID_P384 => Ok("P-384"),
        OID_P521 => Ok("P-521"),
        _ => Err(err("unsupported elliptic curve")),
    }
}

fn rsa_public(der: &[u8]) -> Result<Public, KeyError> {
    let k = pkcs1::RsaPublicKey::from_der(der).map_err(|_| err("invalid PKCS#1 RSA public key"))?;
    Ok(Public::Rsa {
        n: k.modulus.as_bytes().to_vec(),
        e: k.public_exponent.as_bytes().to_vec(),
    })
}

fn rsa_private(der: &[u8]) -> Result<Public, KeyError> {
    let k =
        pkcs1::RsaPrivateKey::from_der(der).map_err(|_| err("invalid PKCS#1 RSA private key"))?;
    Ok(Public::Rsa {
        n: k.modulus.as_bytes().to_vec(),
        e: k.public_exponent.as_bytes().to_vec(),
    })
}

fn sec1_private(der: &[u8], curve_hint: Option<&'static str>) -> Result<Public, KeyError> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(|_| err("invalid SEC1 EC private key"))?;
    let curve = match k.parameters.and_then(|p| p.named_curve()) {
        Some(oid) => curve_name(&oid.to_string())?,
        None => curve_hint.ok_or_else(|| err("EC private key without its curve"))?,
    };
    let point = k
        .public_key
        .ok_or_else(|| err("EC private key without its public key"))?
        .to_vec();
    Ok(Public::Ec { curve, point })
}

fn spki(der: &[u8]) -> Result<Public, KeyError> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|_| err("invalid SubjectPublicKeyInfo"))?;
    let bits = info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| err("invalid public key bit string"))?;
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA => rsa_public(bits),
        OID_EC => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| err("EC public key without its curve"))?;
            Ok(Public::Ec {
                curve: curve_name(&curve.to_string())?,
                point: bits.to_vec(),
            })
        }
        OID_ED25519 => Ok(Public::Ed25519(bits.to_vec())),
        OID_ED448 => Err(err(ED448)),
        _ => Err(err("unsupported public key algorithm")),
    }
}

fn pkcs8_private(der: &[u8]) -> Result<Public, KeyError> {
    let info =
        pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| err("invalid PKCS#8 private key"))?;
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA => rsa_private(info.private_key),
        OID_EC => {
            let hint = info
                .algorithm
                .parameters_oid()
                .ok()
                .and_then(|o| curve_name(&o.to_string()).ok());
            sec1_private(info.private_key, hint)
        }
        OID_ED25519 => {
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| err("invalid Ed25519 private key"))?;
            Ok(Public::Ed25519(
                ring::signature::KeyPair::public_key(&pair)
                    .as_ref()
                    .to_vec(),
            ))
        }
        OID_ED448 => Err(err(ED448)),
        _ => Err(err("unsupported private key algorithm")),
    }
}

fn parse_pem_public(pem: &str) -> Result<Public, KeyError> {
    let (label, der) = pem_decode(pem)?;
    match label.as_str() {
        "PUBLIC KEY" => spki(&der),
        "RSA PUBLIC KEY" => rsa_public(&der),
        "RSA PRIVATE KEY" => rsa_private(&der),
        "PRIVATE KEY" => pkcs8_private(&der),
        "EC PRIVATE KEY" => sec1_private(&der, None),
        other => Err(err(format!("unsupported PEM type {other:?}"))),
    }
}

/// The modulus and exponent of an RSA key in PEM, read as [`VerifyKey::public_pem`] reads them,
/// so tests can check other verifiers on exactly the same key.
#[cfg(test)]
pub(crate) fn rsa_components(pem: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    match parse_pem_public(pem).ok()? {
        Public::Rsa { n, e } => Some((n, e)),
        _ => None,
    }
}

/// The RSA verification parameters for `alg` (an RS* or PS* algorithm), the same as ring's of
/// the same names: RS256 and RS512 take 1024-bit keys as APISIX does (the `FOR_LEGACY_USE_ONLY`
/// ranges), RS384 and PS* need 2048 bits; PSS salts are as long as the digest.
fn rsa_params(alg: Alg) -> &'static aws_lc_rs::signature::RsaParameters {
    use aws_lc_rs::signature as s;
    match alg {
        Alg::RS256 => &s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        Alg::RS384 => &s::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        Alg::PS256 => &s::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &s::RSA_PSS_2048_8192_SHA384,
        _ => &s::RSA_PSS_2048_8192_SHA512,
    }
}

/// Significant bits of a big-endian unsigned integer.
fn bit_len(n: &[u8]) -> usize {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

impl VerifyKey {
    /// An HMAC key for an HS algorithm (any other algorithm is a programming error and gets
    /// HS256's digest; callers pass the credential's HS algorithm).
    pub fn hmac(alg: Alg, secret: &[u8]) -> VerifyKey {
        let digest = match alg {
            Alg::HS384 => ring::hmac::HMAC_SHA384,
            Alg::HS512 => ring::hmac::HMAC_SHA512,
            _ => ring::hmac::HMAC_SHA256,
        };
        VerifyKey {
            alg,
            inner: Inner::Hmac(ring::hmac::Key::new(digest, secret)),
        }
    }

    /// A public key for `alg` from PEM text.
    pub fn public_pem(alg: Alg, pem: &str) -> Result<VerifyKey, KeyError> {
        if alg.is_hmac() {
            return Err(err(format!(
                "{} uses a secret, not a public key",
                alg.as_str()
            )));
        }
        let inner = match (alg, parse_pem_public(pem)?) {
            (a, Public::Rsa { n, e }) if a.is_rsa() => {
                let bits = bit_len(&n);
                let min = match a {
                    Alg::RS256 | Alg::RS512 => 1024,
                    _ => 2048,
                };
                if bits < min {
                    return Err(err(format!(
                        "RSA key of {bits} bits is too small for {} (at least {min})",
                        a.as_str()
                    )));
                }
                if bits > 8192 {
                    return Err(err(format!(
                        "RSA key of {bits} bits is too large (at most 8192)"
                    )));
                }
                // Refused here: only a zero exponent (the modulus was sized above), a key ring
                // took and then failed every check with. Any other unusable key (an even
                // exponent, say) is kept and fails each check, as it did with ring.
                let key = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(rsa_params(a))
                    .map_err(|_| err("invalid RSA public key"))?;
                Inner::Rsa(Arc::new(key))
            }
            (
                Alg::ES256,
                Public::Ec {
                    curve: "P-256",
                    point,
                },
            )
            | (
                Alg::ES384,
                Public::Ec {
                    curve: "P-384",
                    point,
                },
            ) => {
                let len = if alg == Alg::ES256 { 65 } else { 97 };
                if point.first() != Some(&0x04) || point.len() != len {
                    return Err(err("EC public key must be an uncompressed point"));
                }
                if alg == Alg::ES256 {
                    Inner::P256(Arc::new(P256Key {
                        sec1: point[..].try_into().expect("65 bytes, checked above"),
                        comb: OnceLock::new(),
                    }))
                } else {
                    Inner::P384(point.into())
                }
            }
            (
                Alg::ES512,
                Public::Ec {
                    curve: "P-521",
                    point,
                },
            ) => Inner::P521(Arc::new(
                p521::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                    .map_err(|_| err("invalid P-521 public key"))?,
            )),
            (Alg::EdDSA, Public::Ed25519(pk)) if pk.len() == 32 => Inner::Ed25519(pk.into()),
            (a, found) => {
                let what = match found {
                    Public::Rsa { .. } => "an RSA key",
                    Public::Ec { curve, .. } => match curve {
                        "P-256" => "a P-256 key",
                        "P-384" => "a P-384 key",
                        _ => "a P-521 key",
                    },
                    Public::Ed25519(_) => "an Ed25519 key",
                };
                let want = match a {
                    x if x.is_rsa() => "an RSA key",
                    Alg::ES256 => "a P-256 key",
                    Alg::ES384 => "a P-384 key",
                    Alg::ES512 => "a P-521 key",
                    _ => "an Ed25519 key",
                };
                return Err(err(format!("{} needs {want}, got {what}", a.as_str())));
            }
        };
        Ok(VerifyKey { alg, inner })
    }

    /// The algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Checks `sig` over `msg`. Any malformed signature is simply `false`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.inner {
            Inner::Hmac(k) => ring::hmac::verify(k, msg, sig).is_ok(),
            Inner::Rsa(k) => k.verify_sig(msg, sig).is_ok(),
            Inner::P256(key) => key
                .comb()
                .and_then(|comb| p256::verify(comb, msg, sig))
                .unwrap_or_else(|| {
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &key.sec1)
                        .verify(msg, sig)
                        .is_ok()
                }),
            Inner::P384(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, &**point)
                    .verify(msg, sig)
                    .is_ok()
            }
            Inner::P521(vk) => {
                use p521::ecdsa::signature::Verifier;
                sig.len() == 132
                    && p521::ecdsa::Signature::from_slice(sig)
                        .is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }
            Inner::Ed25519(pk) => UnparsedPublicKey::new(&signature::ED25519, &**pk)
                .verify(msg, sig)
                .is_ok(),
        }
    }
}
