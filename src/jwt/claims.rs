//! `exp` and `nbf` as each peer checks them (reference §1.5 for APISIX, §2.2 for Kong).
//! `now` is passed in (unix seconds), so tests move time instead of sleeping.

use serde_json::Map;

use super::token::{ClaimValue, Times};

/// A registered claim that can be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Expiry.
    Exp,
    /// Not before.
    Nbf,
}

impl Claim {
    fn name(self) -> &'static str {
        match self {
            Claim::Exp => "exp",
            Claim::Nbf => "nbf",
        }
    }
}

/// `Some(None)` absent, `Some(Some(n))` a number, `None` anything else. A `null` claim is
/// present (cjson's `null` is a value, not `nil`), so it is not a number: `"exp": null` must
/// not make a token that never expires.
fn number(times: &Times, c: Claim) -> Option<Option<f64>> {
    let v = match c {
        Claim::Exp => &times.exp,
        Claim::Nbf => &times.nbf,
    };
    match v {
        ClaimValue::Absent => Some(None),
        ClaimValue::Number(n) => Some(Some(*n)),
        _ => None,
    }
}

/// APISIX's `verify_claims`. Without a list (or with an empty one), `nbf` then `exp` are checked
/// when present; with a list, exactly the listed claims, in order, each required. `nbf` passes
/// iff `nbf < now + grace`; `exp` iff `exp > now - grace`. The error is APISIX's log detail.
pub fn apisix_claims(
    payload: &Times,
    claims: Option<&[Claim]>,
    now: i64,
    grace: i64,
) -> Result<(), String> {
    let (list, required): (&[Claim], bool) = match claims {
        Some(l) if !l.is_empty() => (l, true),
        _ => (&[Claim::Nbf, Claim::Exp], false),
    };
    let now = now as f64;
    let grace = grace as f64;
    // JSON numbers are finite, so `>=` is the exact negation of APISIX's `<`.
    for &c in list {
        let v = match number(payload, c) {
            None => return Err(format!("claim {} is not a number", c.name())),
            Some(None) if required => return Err(format!("claim {} is missing", c.name())),
            Some(None) => continue,
            Some(Some(v)) => v,
        };
        match c {
            Claim::Nbf if v >= now + grace => {
                return Err(format!(
                    "'nbf' claim not valid until {}",
                    crate::proxy::date::format_http_date(v.max(0.0) as u64)
                ))
            }
            Claim::Exp if v <= now - grace => {
                return Err(format!(
                    "'exp' claim expired at {}",
                    crate::proxy::date::format_http_date(v.max(0.0) as u64)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Kong's claim checks: only the listed claims, each required to be a number; every failing
/// claim is reported in one map (`{"exp":"token expired","nbf":"must be a number"}`). Then,
/// with `maximum_expiration > 0`, `exp` must exist and be at most that far in the future.
pub fn kong_claims(
    payload: &Times,
    claims: &[Claim],
    maximum_expiration: f64,
    now: i64,
) -> Result<(), Map<String, serde_json::Value>> {
    let now_f = now as f64;
    let mut errors = Map::new();
    for &c in claims {
        match number(payload, c) {
            None | Some(None) => {
                errors.insert(c.name().into(), "must be a number".into());
            }
            Some(Some(v)) => match c {
                Claim::Exp if v <= now_f => {
                    errors.insert("exp".into(), "token expired".into());
                }
                Claim::Nbf if v > now_f => {
                    errors.insert("nbf".into(), "token not valid yet".into());
                }
                _ => {}
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if maximum_expiration > 0.0 {
        let too_long = match number(payload, Claim::Exp) {
            Some(Some(exp)) => exp - now_f > maximum_expiration,
            _ => true,
        };
        if too_long {
            errors.insert("exp".into(), "exceeds maximum allowed expiration".into());
            return Err(errors);
        }
    }
    Ok(())
}
