//! `jwt`: Kong's JWT plugin, with Kong's options, messages and headers.
//!
//! - Route / service / global side ([`RouteConf`]): `uri_param_names`, `cookie_names`,
//!   `header_names`, `key_claim_name`, `secret_is_base64`, `claims_to_verify`,
//!   `maximum_expiration`, `anonymous`, `run_on_preflight`, `realm`.
//! - Credential side ([`CredentialSpec`], Kong's `jwt_secrets`): `key` and `secret` (both
//!   generated when absent, as Kong does), `algorithm`, `rsa_public_key`.
//! - [`access`]: the request check (in `access.rs`).
//!
//! Where Kong answers 500 on a malformed ES or PS signature (a Lua assertion), we answer 401
//! `Invalid signature`. Kong does not require `rsa_public_key` for ES algorithms and then
//! fails every request; we require a valid key for every asymmetric algorithm at write time.

mod access;

pub use access::access;

use serde_json::{Map, Value};

use crate::consumers::{KongHmac, Material};
use crate::jwt::{Alg, Claim, VerifyKey};

use super::schema::Fields;

/// The plugin name.
pub const NAME: &str = "jwt";
/// Kong's priority.
pub const PRIORITY: i32 = 1450;
/// The credential fields encrypted in the store.
pub const ENCRYPT_FIELDS: &[&str] = &["secret"];

/// The route / service configuration, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConf {
    /// Query arguments to read. Defaults to `["jwt"]`.
    pub uri_param_names: Vec<String>,
    /// Cookies to read. Defaults to `[]`.
    pub cookie_names: Vec<String>,
    /// Headers to read (lower case); values must be `Bearer <token>`. Defaults to
    /// `["authorization"]`.
    pub header_names: Vec<String>,
    /// Claim (then JOSE header field) naming the credential key. Defaults to `iss`.
    pub key_claim_name: String,
    /// HMAC secrets are base64url. Defaults to `false`.
    pub secret_is_base64: bool,
    /// Claims to check. Defaults to none.
    pub claims: Vec<Claim>,
    /// Longest allowed token lifetime, seconds; 0 = no limit. Defaults to `0`.
    pub maximum_expiration: f64,
    /// Consumer (id or username) to fall back to. Defaults to none.
    pub anonymous: Option<String>,
    /// Authenticate `OPTIONS` requests too. Defaults to `true`.
    pub run_on_preflight: bool,
    /// `WWW-Authenticate` when no token was sent.
    pub challenge: String,
    /// `WWW-Authenticate` for every other failure.
    pub challenge_error: String,
}

fn set_of(f: &mut Fields<'_>, name: &str, default: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = f
        .string_list(name, None, false)
        .map(|l| l.into_iter().map(str::to_string).collect())
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// Checks and compiles the route-side configuration (Kong's schema and its messages).
pub fn route_conf(conf: &Value) -> Result<RouteConf, String> {
    let mut f = Fields::new(conf)?;
    let uri_param_names = set_of(&mut f, "uri_param_names", &["jwt"]);
    let cookie_names = set_of(&mut f, "cookie_names", &[]);
    let header_names: Vec<String> = set_of(&mut f, "header_names", &["authorization"])
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let key_claim_name = f.string("key_claim_name", 0, usize::MAX).unwrap_or("iss");
    let secret_is_base64 = f.boolean("secret_is_base64").unwrap_or(false);
    let claims = f
        .string_list("claims_to_verify", Some(&["exp", "nbf"]), false)
        .unwrap_or_default();
    let maximum_expiration = f
        .number("maximum_expiration", 0.0, 31_536_000.0)
        .unwrap_or(0.0);
    let anonymous = f
        .string("anonymous", 0, usize::MAX)
        .filter(|s| !s.is_empty());
    let run_on_preflight = f.boolean("run_on_preflight").unwrap_or(true);
    let realm = f.string("realm", 0, usize::MAX);
    if f.error.is_none() && maximum_expiration > 0.0 && !claims.contains(&"exp") {
        f.error = Some("claims_to_verify: expected to contain: exp".into());
    }
    let mut claim_list = Vec::new();
    for c in claims {
        let c = if c == "nbf" { Claim::Nbf } else { Claim::Exp };
        if !claim_list.contains(&c) {
            claim_list.push(c);
        }
    }
    let (challenge, challenge_error) = match realm {
        Some(r) => (
            format!("Bearer realm=\"{r}\""),
            format!("Bearer realm=\"{r}\", error=\"invalid_token\""),
        ),
        None => (
            "Bearer".to_string(),
            "Bearer error=\"invalid_token\"".to_string(),
        ),
    };
    let out = RouteConf {
        uri_param_names,
        cookie_names,
        header_names,
        key_claim_name: key_claim_name.to_string(),
        secret_is_base64,
        claims: claim_list,
        maximum_expiration,
        anonymous: anonymous.map(str::to_string),
        run_on_preflight,
        challenge,
        challenge_error,
    };
    f.finish().map(|()| out)
}

/// A Kong JWT credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSpec {
    /// The lookup key (`iss` by default).
    pub key: String,
    /// HMAC secret.
    pub secret: Option<String>,
    /// PEM public key for asymmetric algorithms.
    pub rsa_public_key: Option<String>,
    /// Defaults to `HS256`.
    pub algorithm: Alg,
}

/// Fills in what Kong generates for an omitted field: a random `key` and a 32-character
/// alphanumeric `secret`. Called before the credential is validated and stored, so the
/// generated values are stored (and returned to the client) like Kong's.
pub fn fill_defaults(conf: &mut Value) {
    let Some(obj) = conf.as_object_mut() else {
        return;
    };
    for field in ["key", "secret"] {
        if !obj.contains_key(field) {
            obj.insert(field.into(), Value::String(random_alnum(32)));
        }
    }
}

fn random_alnum(n: usize) -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let mut byte = [0u8; 1];
    while out.len() < n {
        // Rejection sampling keeps the characters uniform.
        if rng.fill(&mut byte).is_err() {
            continue;
        }
        if (byte[0] as usize) < SET.len() * 4 {
            out.push(SET[byte[0] as usize % SET.len()] as char);
        }
    }
    out
}

/// Checks a credential: Kong's fields, and literal key material parsed now.
pub fn credential_spec(conf: &Value) -> Result<CredentialSpec, String> {
    let mut f = Fields::new(conf)?;
    f.require("key");
    let key = f.string("key", 1, usize::MAX);
    let secret = f.string("secret", 1, usize::MAX);
    let rsa_public_key = f.string("rsa_public_key", 1, usize::MAX);
    let names: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let algorithm = f.one_of("algorithm", &names).and_then(Alg::parse);
    f.finish()?;
    let alg = algorithm.unwrap_or(Alg::HS256);
    if alg.is_hmac() && secret.is_none() {
        return Err("property \"secret\" is required when using HS based algorithms".into());
    }
    if !alg.is_hmac() {
        let Some(pem) = rsa_public_key else {
            return Err(format!(
                "property \"rsa_public_key\" is required for algorithm {}",
                alg.as_str()
            ));
        };
        if !super::jwt_auth::is_reference(pem) {
            VerifyKey::public_pem(alg, pem)
                .map_err(|e| format!("rsa_public_key: invalid key ({e})"))?;
        }
    }
    Ok(CredentialSpec {
        key: key.unwrap_or_default().to_string(),
        secret: secret.map(str::to_string),
        rsa_public_key: rsa_public_key.map(str::to_string),
        algorithm: alg,
    })
}

/// Verification material; see [`crate::plugins::jwt_auth::material`].
pub fn material(
    spec: &CredentialSpec,
    resolve: &dyn Fn(&str) -> Result<String, String>,
) -> Material {
    let get = |v: &str| -> Result<String, String> {
        if super::jwt_auth::is_reference(v) {
            resolve(v)
        } else {
            Ok(v.to_string())
        }
    };
    let alg = spec.algorithm;
    if alg.is_hmac() {
        match get(spec.secret.as_deref().unwrap_or_default()) {
            Ok(s) => {
                let decoded = decode_base64url(&s).map(|b| VerifyKey::hmac(alg, &b));
                Material::KongHmac(Box::new(KongHmac {
                    plain: VerifyKey::hmac(alg, s.as_bytes()),
                    decoded,
                }))
            }
            Err(why) => Material::Unusable { alg, why },
        }
    } else {
        match get(spec.rsa_public_key.as_deref().unwrap_or_default())
            .and_then(|pem| VerifyKey::public_pem(alg, &pem).map_err(|e| e.to_string()))
        {
            Ok(k) => Material::Key(k),
            Err(why) => Material::Unusable { alg, why },
        }
    }
}

/// Kong's `secret_is_base64` decoding: base64url, padding optional.
pub fn decode_base64url(s: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(s.trim_end_matches('=').as_bytes())
        .ok()
}

/// A Kong declarative `jwt_secrets` entry as our credential plugin configuration.
pub fn from_kong_secret(entry: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for f in ["key", "secret", "algorithm", "rsa_public_key"] {
        if let Some(v) = entry.get(f).filter(|v| !v.is_null()) {
            out.insert(f.into(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;
