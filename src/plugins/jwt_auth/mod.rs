//! `jwt-auth`: APISIX's JWT plugin, with APISIX's attributes, messages and headers.
//!
//! - Route / service side ([`RouteConf`]): where the token is (`header`, `query`, `cookie`),
//!   `hide_credentials`, `key_claim_name`, `store_in_ctx`, `realm`, `anonymous_consumer`,
//!   `claims_to_verify`.
//! - Consumer / credential side ([`CredentialSpec`]): `key`, `secret`, `public_key`,
//!   `algorithm`, `base64_secret`, `lifetime_grace_period`, legacy `exp`.
//! - [`access`]: the request check (in `access.rs`).
//!
//! Stricter than APISIX, on purpose: key material is parsed when a credential is written, so a
//! public key that is not a valid key for its algorithm (APISIX stores anything and fails every
//! request later) is refused with 400 at write time.

mod access;

pub use access::access;

use serde_json::Value;

use crate::consumers::Material;
use crate::jwt::{Alg, Claim, VerifyKey};

use super::schema::Fields;

/// The plugin name.
pub const NAME: &str = "jwt-auth";
/// APISIX's priority: runs before every non-auth plugin.
pub const PRIORITY: i32 = 2510;
/// The consumer-side fields encrypted in the store (APISIX's schema `encrypt_fields`).
pub const ENCRYPT_FIELDS: &[&str] = &["secret", "private_key"];

/// The route / service configuration, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConf {
    /// Header to read the token from. Defaults to `authorization`.
    pub header: String,
    /// Query argument to read. Defaults to `jwt`.
    pub query: String,
    /// Cookie to read. Defaults to `jwt`.
    pub cookie: String,
    /// Strip the token from where it was read. Defaults to `false`.
    pub hide_credentials: bool,
    /// Payload claim holding the credential key. Defaults to `key`.
    pub key_claim_name: String,
    /// Keep the payload for later plugins. Defaults to `false`.
    pub store_in_ctx: bool,
    /// The `WWW-Authenticate` header value, built from `realm` (defaults to `jwt`).
    pub www_authenticate: String,
    /// Consumer to fall back to on any failure. Defaults to none.
    pub anonymous_consumer: Option<String>,
    /// `claims_to_verify`; `None` (or empty) checks `nbf` and `exp` only when present.
    pub claims: Option<Vec<Claim>>,
}

fn claim(s: &str) -> Claim {
    if s == "nbf" {
        Claim::Nbf
    } else {
        Claim::Exp
    }
}

/// Checks and compiles the route-side configuration; errors are APISIX's schema messages.
pub fn route_conf(conf: &Value) -> Result<RouteConf, String> {
    let mut f = Fields::new(conf)?;
    let header = f.string("header", 0, usize::MAX).unwrap_or("authorization");
    let query = f.string("query", 0, usize::MAX).unwrap_or("jwt");
    let cookie = f.string("cookie", 0, usize::MAX).unwrap_or("jwt");
    let hide_credentials = f.boolean("hide_credentials").unwrap_or(false);
    let key_claim_name = f.string("key_claim_name", 1, usize::MAX).unwrap_or("key");
    let store_in_ctx = f.boolean("store_in_ctx").unwrap_or(false);
    let realm = f.string("realm", 1, 128).unwrap_or("jwt");
    if !realm
        .bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        f.error.get_or_insert_with(|| {
            "property \"realm\" validation failed: failed to match pattern \"^[ -!#-\\[\\]-~]+$\" with \"".to_string()
                + realm
                + "\""
        });
    }
    let anonymous_consumer = f.string("anonymous_consumer", 1, usize::MAX);
    let claims = f.string_list("claims_to_verify", Some(&["exp", "nbf"]), true);
    let out = RouteConf {
        header: header.to_ascii_lowercase(),
        query: query.to_string(),
        cookie: cookie.to_string(),
        hide_credentials,
        key_claim_name: key_claim_name.to_string(),
        store_in_ctx,
        www_authenticate: format!("Bearer realm=\"{realm}\""),
        anonymous_consumer: anonymous_consumer.map(str::to_string),
        claims: claims
            .filter(|c| !c.is_empty())
            .map(|c| c.into_iter().map(claim).collect()),
    };
    f.finish().map(|()| out)
}

/// A credential as configured on a consumer or a credential object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSpec {
    /// The lookup key.
    pub key: String,
    /// HMAC secret (or a `$env://` / `$secret://` reference).
    pub secret: Option<String>,
    /// PEM public key (or a reference).
    pub public_key: Option<String>,
    /// The credential's algorithm. Defaults to `HS256`.
    pub algorithm: Alg,
    /// The secret is standard base64. Defaults to `false`.
    pub base64_secret: bool,
    /// Leeway for `exp` and `nbf`, seconds. Defaults to `0`.
    pub grace: i64,
}

/// Whether a configured value is a secret reference resolved at run time.
pub fn is_reference(v: &str) -> bool {
    v.starts_with("$env://") || v.starts_with("$secret://")
}

/// Checks the consumer-side configuration (APISIX's order of checks and messages), then parses
/// literal key material.
pub fn credential_spec(conf: &Value) -> Result<CredentialSpec, String> {
    let mut f = Fields::new(conf)?;
    f.require("key");
    let key = f.string("key", 1, usize::MAX);
    let secret = f.string("secret", 1, usize::MAX);
    let public_key = f.string("public_key", 1, usize::MAX);
    let names: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let algorithm = f.one_of("algorithm", &names).and_then(Alg::parse);
    let base64_secret = f.boolean("base64_secret").unwrap_or(false);
    f.integer("exp", 1, i64::MAX);
    let grace = f.integer("lifetime_grace_period", 0, i64::MAX).unwrap_or(0);
    let alg = algorithm.unwrap_or(Alg::HS256);
    if f.error.is_none() && !alg.is_hmac() && public_key.is_none() {
        f.error = Some(
            "failed to validate dependent schema for \"algorithm\": value should match only one schema, but matches none"
                .into(),
        );
    }
    f.finish()?;
    if alg.is_hmac() && secret.is_none() {
        return Err("property \"secret\" is required when using HS based algorithms".into());
    }
    let spec = CredentialSpec {
        key: key.unwrap_or_default().to_string(),
        secret: secret.map(str::to_string),
        public_key: public_key.map(str::to_string),
        algorithm: alg,
        base64_secret,
        grace,
    };
    if alg.is_hmac() {
        let s = spec.secret.as_deref().unwrap_or_default();
        if spec.base64_secret && !is_reference(s) && decode_std_base64(s).is_none() {
            return Err("base64_secret required but the secret is not in base64 format".into());
        }
    } else {
        let pem = spec.public_key.as_deref().unwrap_or_default();
        if !is_reference(pem) {
            VerifyKey::public_pem(alg, pem)
                .map_err(|e| format!("invalid public_key for algorithm {}: {e}", alg.as_str()))?;
        }
    }
    Ok(spec)
}

/// Standard-alphabet base64, padding optional (what `ngx.decode_base64` accepts).
pub fn decode_std_base64(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(trimmed.as_bytes())
        .ok()
}

/// The verification material of `spec`, with references resolved by `resolve`. An
/// unresolvable reference or bad material makes the credential unusable (logged by the
/// caller), never an error that stops the gateway.
pub fn material(
    spec: &CredentialSpec,
    resolve: &dyn Fn(&str) -> Result<String, String>,
) -> Material {
    let get = |v: &str| -> Result<String, String> {
        if is_reference(v) {
            resolve(v)
        } else {
            Ok(v.to_string())
        }
    };
    let alg = spec.algorithm;
    let r = if alg.is_hmac() {
        get(spec.secret.as_deref().unwrap_or_default()).and_then(|s| {
            let bytes = if spec.base64_secret {
                decode_std_base64(&s).ok_or("the secret is not in base64 format")?
            } else {
                s.into_bytes()
            };
            Ok(VerifyKey::hmac(alg, &bytes))
        })
    } else {
        get(spec.public_key.as_deref().unwrap_or_default())
            .and_then(|pem| VerifyKey::public_pem(alg, &pem).map_err(|e| e.to_string()))
    };
    match r {
        Ok(k) => Material::Key(k),
        Err(why) => Material::Unusable { alg, why },
    }
}

#[cfg(test)]
mod tests;
