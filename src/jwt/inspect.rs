//! `portcullis token inspect`: decode a token and say, in words, whether and why each peer's
//! plugin would refuse it.

use serde_json::Value;

use super::{apisix_claims, decode, kong_claims, Alg, Dialect, VerifyKey};

/// What a token looks like and what a gateway would think of it.
#[derive(Debug, Default)]
pub struct Report {
    /// The decoded header and payload (when they decode).
    pub header: Option<Value>,
    /// The payload.
    pub payload: Option<Value>,
    /// Problems `jwt-auth` (APISIX semantics) would refuse the token for.
    pub apisix: Vec<String>,
    /// Problems Kong's `jwt` would refuse it for.
    pub kong: Vec<String>,
    /// Notes that are not refusals (times in words, signature verified).
    pub notes: Vec<String>,
}

fn when(secs: f64) -> String {
    crate::proxy::date::format_http_date(secs.max(0.0) as u64)
}

/// Inspects `raw` at time `now`. With `key`, the signature is checked too.
pub fn inspect(raw: &str, now: i64, key: Option<&VerifyKey>) -> Report {
    let mut r = Report::default();
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw);
    match decode(raw, Dialect::Apisix) {
        Ok(t) => {
            r.header = Some(Value::Object(t.header().clone()));
            r.payload = Some(t.payload().clone());
            match t.header_alg() {
                None => r.apisix.push("the header has no alg".into()),
                Some(a) if Alg::parse(a).is_none() => r
                    .apisix
                    .push(format!("alg {a:?} is not accepted (never `none`)")),
                Some(_) => {}
            }
            if t.payload().get("key").is_none() {
                r.apisix
                    .push("no \"key\" claim (jwt-auth's default key_claim_name)".into());
            }
            if let Err(e) = apisix_claims(t.times(), None, now, 0) {
                r.apisix.push(e);
            }
            if let Some(k) = key {
                match t.verify(k) {
                    Ok(()) => r.notes.push(format!(
                        "signature verifies with the given {} key",
                        k.alg().as_str()
                    )),
                    Err(e) => r.apisix.push(format!("signature: {e}")),
                }
            }
        }
        Err(e) => r.apisix.push(format!("JWT token invalid: {e}")),
    }
    match decode(raw, Dialect::Kong) {
        Ok(t) => {
            let iss = t.payload().get("iss").or_else(|| t.header().get("iss"));
            match iss {
                None => r
                    .kong
                    .push("No mandatory 'iss' in claims (Kong's default key_claim_name)".into()),
                Some(Value::String(s)) if s.is_empty() => {
                    r.kong.push("Invalid 'iss' in claims".into())
                }
                _ => {}
            }
            if let Err(m) = kong_claims(t.times(), &[], 0.0, now) {
                r.kong.push(Value::Object(m).to_string());
            }
            if let Some(k) = key {
                if let Err(e) = t.verify(k) {
                    r.kong.push(format!("signature: {e}"));
                }
            }
        }
        Err(e) => r.kong.push(e.kong_message().to_string()),
    }
    if let Some(p) = &r.payload {
        for (claim, what) in [("exp", "expires"), ("nbf", "valid from"), ("iat", "issued")] {
            if let Some(v) = p.get(claim).and_then(Value::as_f64) {
                r.notes.push(format!(
                    "{claim}: {what} {} ({:+} s from now)",
                    when(v),
                    // Claims are any JSON number: saturate instead of overflowing.
                    (v as i64).saturating_sub(now)
                ));
            }
        }
        if p.get("exp").is_none() {
            r.notes.push(
                "no exp: the token never expires unless a route lists exp in claims_to_verify"
                    .into(),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{sign, SignKey};
    use serde_json::{json, Map};

    #[test]
    fn reports_in_words() {
        let t = sign(
            Alg::HS256,
            &SignKey::Hmac(b"s".to_vec()),
            &Map::new(),
            &json!({"key": "k", "exp": 100}),
        )
        .unwrap();
        let r = inspect(&t, 200, Some(&VerifyKey::hmac(Alg::HS256, b"s")));
        assert!(
            r.apisix
                .iter()
                .any(|p| p.starts_with("'exp' claim expired")),
            "{r:?}"
        );
        assert!(r.kong.iter().any(|p| p.contains("iss")), "{r:?}");
        assert!(
            r.notes.iter().any(|n| n.contains("signature verifies")),
            "{r:?}"
        );
        let r = inspect("not.a.token", 0, None);
        assert!(r.apisix[0].starts_with("JWT token invalid"));
        assert_eq!(r.kong, ["Bad token; invalid JSON"]);
        // Found by fuzz_jwt: a huge negative nbf overflowed the "s from now" arithmetic.
        let huge = sign(
            Alg::HS256,
            &SignKey::Hmac(b"s".to_vec()),
            &Map::new(),
            &json!({"nbf": -7.2914e225, "exp": 1e300}),
        )
        .unwrap();
        assert!(inspect(&huge, 1_700_000_000, None)
            .notes
            .iter()
            .any(|n| n.starts_with("nbf:")));
        let wrong = inspect(&t, 50, Some(&VerifyKey::hmac(Alg::HS256, b"other")));
        assert!(
            wrong
                .apisix
                .iter()
                .any(|p| p.contains("signature mismatch")),
            "{wrong:?}"
        );
    }
}
