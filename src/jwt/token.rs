//! Splitting and decoding tokens the way each peer does, and signature verification.
//!
//! | step      | APISIX (`resty.jwt` `load_jwt`)                        | Kong (`jwt_parser`)                          |
//! |-----------|--------------------------------------------------------|----------------------------------------------|
//! | split     | on `.`, empty segments dropped; exactly 3 (JWS)        | at the first two dots; the rest is the signature |
//! | header    | base64 (`-_` → `+/`, padding optional) then a JSON object | base64url then a JSON object              |
//! | payload   | same; must be a JSON object                            | same; must be a JSON object                  |
//! | `alg`     | checked against the credential later                   | must be a supported algorithm now            |
//! | signature | kept raw; strict base64url when verifying              | strict base64url now                         |

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Alg, VerifyKey};

/// Longest token accepted; longer ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Which peer's parsing rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// APISIX `jwt-auth`.
    Apisix,
    /// Kong `jwt`.
    Kong,
}

/// Why a token was refused. `Display` gives the log detail (never token bytes);
/// [`JwtError::kong_message`] gives Kong's client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token too long")]
    TooLong,
    /// Not three segments (APISIX), fewer than three parts (Kong).
    #[error("invalid jwt string")]
    Segments,
    /// The header is not base64 of a JSON object.
    #[error("invalid header")]
    Header,
    /// The payload is not base64 of a JSON object.
    #[error("invalid payload")]
    Payload,
    /// Kong: `alg` missing, not a string, or not supported (`none` included).
    #[error("invalid alg")]
    Alg,
    /// The signature segment is not strict base64url.
    #[error("invalid signature encoding")]
    SignatureEncoding,
    /// The token's `alg` is not the credential's.
    #[error("algorithm mismatch, expected {}", .expected.as_str())]
    AlgMismatch {
        /// The credential's algorithm.
        expected: Alg,
    },
    /// The signature does not verify.
    #[error("signature mismatch")]
    BadSignature,
}

impl JwtError {
    /// Kong's client message for a token that failed to parse.
    pub fn kong_message(&self) -> &'static str {
        match self {
            JwtError::Alg => "Bad token; invalid alg",
            JwtError::Payload => "Bad token; invalid claims",
            JwtError::SignatureEncoding => "Bad token; invalid signature",
            JwtError::AlgMismatch { .. } => "Invalid algorithm",
            JwtError::BadSignature => "Invalid signature",
            JwtError::TooLong | JwtError::Segments | JwtError::Header => "Bad token; invalid JSON",
        }
    }
}

/// A decoded token whose signature is not yet verified.
#[derive(Debug)]
pub struct Token<'a> {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims (always a JSON object).
    pub payload: Value,
    signing_input: Cow<'a, str>,
    signature: &'a str,
}

fn b64url_strict(s: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(s.as_bytes())
        .ok()
}

/// APISIX's header/payload decoding: url alphabet mapped to the standard one, padding added
/// when missing (present padding accepted).
fn b64_apisix(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    if s.len() - trimmed.len() > 2 {
        return None;
    }
    let std: String = trimmed
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(std.as_bytes())
        .ok()
}

fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Splits and decodes `raw` by `dialect`'s rules.
pub fn decode(raw: &str, dialect: Dialect) -> Result<Token<'_>, JwtError> {
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong);
    }
    let (h, p, s) = match dialect {
        Dialect::Apisix => {
            let mut parts = raw.split('.').filter(|p| !p.is_empty());
            let (Some(h), Some(p), Some(s), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(JwtError::Segments);
            };
            (h, p, s)
        }
        Dialect::Kong => {
            let mut parts = raw.splitn(3, '.');
            let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(JwtError::Segments);
            };
            (h, p, s)
        }
    };
    // What was signed is `header.payload`; borrow it when the token has it verbatim (always,
    // except for APISIX tokens with stray dots, which `resty.jwt` also re-joins).
    let h_start = h.as_ptr() as usize - raw.as_ptr() as usize;
    let p_start = p.as_ptr() as usize - raw.as_ptr() as usize;
    let signing_input = if p_start == h_start + h.len() + 1 {
        Cow::Borrowed(&raw[h_start..p_start + p.len()])
    } else {
        Cow::Owned(format!("{h}.{p}"))
    };
    let decode_part = |seg: &str| match dialect {
        Dialect::Apisix => b64_apisix(seg),
        Dialect::Kong => b64url_strict(seg.trim_end_matches('=')),
    };
    let header = decode_part(h)
        .and_then(|b| json_object(&b))
        .ok_or(JwtError::Header)?;
    if dialect == Dialect::Kong {
        let alg = header.get("alg").and_then(Value::as_str);
        if alg.and_then(Alg::parse).is_none() {
            return Err(JwtError::Alg);
        }
    }
    let payload = decode_part(p)
        .and_then(|b| json_object(&b))
        .ok_or(JwtError::Payload)?;
    if dialect == Dialect::Kong && b64url_strict(s).is_none() {
        return Err(JwtError::SignatureEncoding);
    }
    Ok(Token {
        header,
        payload: Value::Object(payload),
        signing_input,
        signature: s,
    })
}

impl Token<'_> {
    /// The header's `alg`, if it is a string.
    pub fn header_alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The raw signature segment.
    pub fn raw_signature(&self) -> &str {
        self.signature
    }

    /// Verifies the signature with `key`, whose algorithm the token's `alg` must name.
    pub fn verify(&self, key: &VerifyKey) -> Result<(), JwtError> {
        if self.header_alg() != Some(key.alg().as_str()) {
            return Err(JwtError::AlgMismatch {
                expected: key.alg(),
            });
        }
        let sig = b64url_strict(self.signature).ok_or(JwtError::SignatureEncoding)?;
        if key.verify(self.signing_input.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(JwtError::BadSignature)
        }
    }
}
