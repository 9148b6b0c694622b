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
use std::sync::OnceLock;

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
    /// The payload is not base64 of a JSON object (APISIX), or is JSON Kong refuses as claims.
    #[error("invalid payload")]
    Payload,
    /// Kong: the payload is not base64url of JSON text.
    #[error("invalid payload")]
    PayloadJson,
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
            JwtError::TooLong | JwtError::Segments | JwtError::Header | JwtError::PayloadJson => {
                "Bad token; invalid JSON"
            }
        }
    }
}

/// A top-level claim's value, as far as the checks care.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    /// Not in the payload.
    Absent,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Str(String),
    /// An array or an object.
    Other,
}

impl ClaimValue {
    /// From a parsed JSON value (`None` = absent).
    pub fn of(v: Option<&Value>) -> ClaimValue {
        match v {
            None => ClaimValue::Absent,
            Some(Value::Null) => ClaimValue::Null,
            Some(Value::Bool(b)) => ClaimValue::Bool(*b),
            Some(Value::Number(n)) => n.as_f64().map_or(ClaimValue::Other, ClaimValue::Number),
            Some(Value::String(s)) => ClaimValue::Str(s.clone()),
            Some(_) => ClaimValue::Other,
        }
    }
}

/// The registered time claims of a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Times {
    /// `exp`.
    pub exp: ClaimValue,
    /// `nbf`.
    pub nbf: ClaimValue,
}

impl Times {
    /// From a parsed payload.
    pub fn of(payload: &Value) -> Times {
        Times {
            exp: ClaimValue::of(payload.get("exp")),
            nbf: ClaimValue::of(payload.get("nbf")),
        }
    }
}

/// A decoded token whose signature is not yet verified. The header's `alg`, the time claims
/// and (with [`decode_keyed`]) the key claim are read in one pass that allocates only for the
/// strings it keeps; the whole header and payload are parsed only when asked for.
#[derive(Debug)]
pub struct Token<'a> {
    alg: AlgField,
    header_seg: &'a str,
    header: OnceLock<Map<String, Value>>,
    payload_seg: &'a str,
    dialect: Dialect,
    payload: OnceLock<Value>,
    times: Times,
    key: ClaimValue,
    signing_input: Cow<'a, str>,
    signature: &'a str,
}

/// The header's `alg`, read without allocating for the 13 known names.
#[derive(Debug)]
enum AlgField {
    Missing,
    Known(Alg),
    Unknown(String),
}

struct HeaderScan;

impl<'de> serde::de::Visitor<'de> for HeaderScan {
    type Value = AlgField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<AlgField, A::Error> {
        let mut alg = AlgField::Missing;
        while let Some(Name(k)) = m.next_key::<Name<'de>>()? {
            if k == "alg" {
                alg = match m.next_value::<AlgValue<'de>>()?.0 {
                    Some(name) => match Alg::parse(&name) {
                        Some(a) => AlgField::Known(a),
                        None => AlgField::Unknown(name.into_owned()),
                    },
                    None => AlgField::Missing,
                };
            } else {
                m.next_value::<Skip>()?;
            }
        }
        Ok(alg)
    }
}

/// An object's member name, borrowed from the input unless it has escapes. serde's own
/// `Cow<str>` always deserializes to an owned `String`: an allocation per member per token.
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string borrowed from the input when it has no escapes; `None` for any other JSON value.
struct AlgValue<'de>(Option<Cow<'de, str>>);

impl<'de> serde::Deserialize<'de> for AlgValue<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AlgValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(AlgValue(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(AlgValue(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(AlgValue(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AlgValue(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AlgValue(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AlgValue(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AlgValue(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(AlgValue(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(AlgValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// JSON text is UTF-8 (RFC 8259). serde_json skips the strings it ignores without checking
/// them, so the one-pass scans check the whole text first; otherwise a payload the full parse
/// refuses could pass the scan.
fn scan_header(bytes: &[u8]) -> Option<AlgField> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let alg = serde::Deserializer::deserialize_map(&mut de, HeaderScan).ok()?;
    de.end().ok()?;
    Some(alg)
}

/// Any JSON value, skipped, but checked as serde_json's full parse checks it: numbers must be
/// in range (`IgnoredAny` does not check them, so the scan would accept a payload the full
/// parse refuses — found by fuzz_jwt).
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                while a.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields one pass over an object collects: `alg` of a header, or the key claim and
/// `exp`/`nbf` of a payload. Other fields are skipped without allocating.
struct Scan<'n> {
    key: &'n str,
}

#[derive(Default)]
struct Scanned {
    key: Option<ClaimValue>,
    exp: Option<ClaimValue>,
    nbf: Option<ClaimValue>,
}

impl<'de> serde::de::Visitor<'de> for Scan<'_> {
    type Value = Scanned;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Scanned, A::Error> {
        let mut out = Scanned::default();
        while let Some(Name(k)) = m.next_key::<Name<'de>>()? {
            if !self.key.is_empty() && k == self.key {
                out.key = Some(m.next_value::<Any>()?.0);
            } else if k == "exp" {
                out.exp = Some(m.next_value::<Any>()?.0);
            } else if k == "nbf" {
                out.nbf = Some(m.next_value::<Any>()?.0);
            } else {
                m.next_value::<Skip>()?;
            }
        }
        Ok(out)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Scan<'_> {
    type Value = Scanned;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Scanned, D::Error> {
        d.deserialize_map(self)
    }
}

/// Any JSON value, kept only as far as [`ClaimValue`] needs.
struct Any(ClaimValue);

impl<'de> serde::Deserialize<'de> for Any {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Any;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Any, E> {
                Ok(Any(ClaimValue::Null))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Any, E> {
                Ok(Any(ClaimValue::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Any, E> {
                Ok(Any(ClaimValue::Number(n as f64)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Any, E> {
                Ok(Any(ClaimValue::Number(n as f64)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Any, E> {
                Ok(Any(ClaimValue::Number(n)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Any, E> {
                Ok(Any(ClaimValue::Str(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Any, E> {
                Ok(Any(ClaimValue::Str(s)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(Any(ClaimValue::Other))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                while a.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Any(ClaimValue::Other))
            }
        }
        d.deserialize_any(V)
    }
}

fn scan(bytes: &[u8], key: &str) -> Option<Scanned> {
    use serde::de::DeserializeSeed;
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let out = Scan { key }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(out)
}

/// Whether `bytes` is one JSON text.
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| serde_json::from_str::<Skip>(t).is_ok())
}

/// A Kong payload: `Err` when it is not JSON ("invalid JSON"); `Ok(None)` when it is JSON that
/// Kong's parser refuses or fails on (`false`, which it answers with "invalid claims", and
/// `true`, numbers and `null`, which it fails on with a 500); an array or a string has no
/// members, as Lua indexes them, so every claim is absent.
fn kong_payload(bytes: &[u8], key: &str) -> Result<Option<Scanned>, JwtError> {
    if let Some(s) = scan(bytes, key) {
        return Ok(Some(s));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| JwtError::PayloadJson)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(_) | Value::String(_)) => Ok(Some(Scanned::default())),
        Ok(_) => Ok(None),
        Err(_) => Err(JwtError::PayloadJson),
    }
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
    if s.len() - trimmed.len() <= 2 {
        // The usual case, a base64url segment: no re-mapping copy.
        if let Ok(v) = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(trimmed.as_bytes()) {
            return Some(v);
        }
    }
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

/// A header or payload segment decoded by `dialect`'s rules.
fn decode_seg(seg: &str, dialect: Dialect) -> Option<Vec<u8>> {
    match dialect {
        Dialect::Apisix => b64_apisix(seg),
        Dialect::Kong => b64url_strict(seg.trim_end_matches('=')),
    }
}

/// Runs `f` on the decoded segment: in `buf` when it is plain base64url that fits, else in a
/// heap copy. `None` when the segment does not decode.
fn with_decoded<T>(
    seg: &str,
    dialect: Dialect,
    buf: &mut [u8],
    f: impl FnOnce(&[u8]) -> T,
) -> Option<T> {
    let trimmed = seg.trim_end_matches('=');
    let padding_ok = dialect == Dialect::Kong || seg.len() - trimmed.len() <= 2;
    if padding_ok && trimmed.len() / 4 * 3 + 3 <= buf.len() {
        if let Ok(b) = base64_simd::URL_SAFE_NO_PAD
            .decode(trimmed.as_bytes(), base64_simd::Out::from_slice(buf))
        {
            return Some(f(b));
        }
        if dialect == Dialect::Kong {
            return None;
        }
    }
    decode_seg(seg, dialect).map(|v| f(&v))
}

/// Splits and decodes `raw` by `dialect`'s rules.
pub fn decode(raw: &str, dialect: Dialect) -> Result<Token<'_>, JwtError> {
    decode_keyed(raw, dialect, "")
}

/// [`decode`], also reading the payload claim `key_claim` ([`Token::key`]) in the same pass.
pub fn decode_keyed<'a>(
    raw: &'a str,
    dialect: Dialect,
    key_claim: &str,
) -> Result<Token<'a>, JwtError> {
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

    // Header and payload are decoded into a stack buffer for the one-pass scans (no
    // allocation); the whole objects are decoded again only if someone asks for them.
    let mut buf = [0u8; 768];
    let (alg, body) = match dialect {
        Dialect::Apisix => {
            let alg = with_decoded(h, dialect, &mut buf, scan_header)
                .flatten()
                .ok_or(JwtError::Header)?;
            let body = with_decoded(p, dialect, &mut buf, |b| scan(b, key_claim))
                .flatten()
                .ok_or(JwtError::Payload)?;
            (alg, body)
        }
        Dialect::Kong => {
            // Kong's parser decodes both parts (any failure: "invalid JSON") before it looks at
            // `alg`; a header that is JSON but no object has no `alg`.
            let alg = with_decoded(h, dialect, &mut buf, |b| {
                scan_header(b).or_else(|| is_json(b).then_some(AlgField::Missing))
            })
            .flatten()
            .ok_or(JwtError::Header)?;
            let body = with_decoded(p, dialect, &mut buf, |b| kong_payload(b, key_claim))
                .unwrap_or(Err(JwtError::PayloadJson))?;
            if !matches!(alg, AlgField::Known(_)) {
                return Err(JwtError::Alg);
            }
            if b64url_strict(s).is_none() {
                return Err(JwtError::SignatureEncoding);
            }
            (alg, body.ok_or(JwtError::Payload)?)
        }
    };
    Ok(Token {
        alg,
        header_seg: h,
        header: OnceLock::new(),
        payload_seg: p,
        dialect,
        payload: OnceLock::new(),
        times: Times {
            exp: body.exp.unwrap_or(ClaimValue::Absent),
            nbf: body.nbf.unwrap_or(ClaimValue::Absent),
        },
        key: body.key.unwrap_or(ClaimValue::Absent),
        signing_input,
        signature: s,
    })
}

impl Token<'_> {
    /// The header's `alg`, if it is a string.
    pub fn header_alg(&self) -> Option<&str> {
        match &self.alg {
            AlgField::Known(a) => Some(a.as_str()),
            AlgField::Unknown(s) => Some(s),
            AlgField::Missing => None,
        }
    }

    /// The whole JOSE header (parsed on first use).
    pub fn header(&self) -> &Map<String, Value> {
        self.header.get_or_init(|| {
            match decode_seg(self.header_seg, self.dialect)
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(Value::Object(m)) => m,
                // `decode` checked that the header is an object.
                _ => Map::new(),
            }
        })
    }

    /// The whole payload (parsed on first use; always an object).
    pub fn payload(&self) -> &Value {
        self.payload.get_or_init(|| {
            decode_seg(self.payload_seg, self.dialect)
                .and_then(|b| serde_json::from_slice(&b).ok())
                .filter(Value::is_object)
                .unwrap_or(Value::Object(Map::new()))
        })
    }

    /// `exp` and `nbf`.
    pub fn times(&self) -> &Times {
        &self.times
    }

    /// The key claim named in [`decode_keyed`] (`Absent` after [`decode`]).
    pub fn key(&self) -> &ClaimValue {
        &self.key
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
        // Signatures are at most 1024 bytes (RSA-8192); decode on the stack.
        let mut buf = [0u8; 1024];
        let sig = if self.signature.len() <= 1364 {
            base64_simd::URL_SAFE_NO_PAD
                .decode(
                    self.signature.as_bytes(),
                    base64_simd::Out::from_slice(&mut buf),
                )
                .map_err(|_| JwtError::SignatureEncoding)?
        } else {
            return Err(JwtError::SignatureEncoding);
        };
        if key.verify(self.signing_input.as_bytes(), sig) {
            Ok(())
        } else {
            Err(JwtError::BadSignature)
        }
    }
}
