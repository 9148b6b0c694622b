//! The Kong `jwt` request check (reference §2.2): collect every token from the configured
//! query arguments, cookies and `Bearer` headers; more than one distinct token is refused;
//! then parse, find the credential by the key claim (payload, then JOSE header), pin the
//! algorithm, verify, check the listed claims and `maximum_expiration`, attach the consumer.

use std::sync::Arc;

use serde_json::Value;

use crate::consumers::{Consumer, ConsumerIndex, Credential, Material, Scheme};
use crate::jwt::{self, ClaimValue, Dialect};
use crate::plugins::phase::{Ctx, Edits, Reply, Request, Text};
use crate::plugins::source;
use crate::plugins::token_cache::TokenCache;

use super::RouteConf;

/// A failure: the reply Kong sends, and a log detail.
struct Denied {
    reply: Reply,
    detail: &'static str,
}

fn fail(conf: &RouteConf, msg: &str, detail: &'static str) -> Denied {
    Denied {
        reply: Reply::message(401, msg).with("WWW-Authenticate", conf.challenge_error.clone()),
        detail,
    }
}

/// Runs Kong's `jwt` for one request.
pub fn access(
    conf: &RouteConf,
    req: &Request<'_>,
    index: &ConsumerIndex,
    cache: &TokenCache,
    ctx: &mut Ctx,
    edits: &mut Edits,
) -> Result<(), Reply> {
    if !conf.run_on_preflight && req.method() == "OPTIONS" {
        return Ok(());
    }
    // With `anonymous`, auth plugins combine as a logical OR: an earlier one already did it.
    if conf.anonymous.is_some() && ctx.consumer.is_some() && !ctx.anonymous {
        return Ok(());
    }
    match authenticate(conf, req, index, cache, ctx) {
        Ok(cred) => {
            attach(edits, &cred.consumer, Some(&cred.key));
            edits.clear("X-Anonymous-Consumer");
            ctx.consumer = Some(cred.consumer.clone());
            ctx.anonymous = false;
            Ok(())
        }
        Err(d) => {
            tracing::info!(plugin = "jwt", reason = d.detail, "authentication failed");
            let Some(anon) = &conf.anonymous else {
                return Err(d.reply);
            };
            match index.consumer(anon) {
                Some(c) => {
                    attach(edits, &c, None);
                    edits.set_text("X-Anonymous-Consumer", Text::Static("true"));
                    ctx.consumer = Some(c);
                    ctx.anonymous = true;
                    Ok(())
                }
                None => Err(Reply::message(
                    500,
                    &format!("anonymous consumer {anon} is configured but doesn't exist"),
                )),
            }
        }
    }
}

/// Kong's `set_consumer`: every header set, or cleared when absent.
fn attach(edits: &mut Edits, c: &Consumer, credential_key: Option<&Arc<str>>) {
    edits.set_text("X-Consumer-ID", Text::from(&c.id));
    match &c.custom_id {
        Some(id) => edits.set_text("X-Consumer-Custom-ID", Text::from(id)),
        None => edits.clear_static("X-Consumer-Custom-ID"),
    }
    match &c.kong_username {
        Some(u) => edits.set_text("X-Consumer-Username", Text::from(u)),
        None => edits.clear_static("X-Consumer-Username"),
    }
    match credential_key {
        Some(k) => edits.set_text("X-Credential-Identifier", Text::from(k)),
        None => edits.clear_static("X-Credential-Identifier"),
    }
}

/// The first match of `\s*[Bb]earer\s+(.+)` in a header value, as Kong's `ngx.re.gmatch`
/// finds it: a search, not anchored (`Token Bearer abc` gives `abc`), with PCRE's `\s`.
pub(super) fn bearer(v: &[u8]) -> Option<&[u8]> {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut at = 0;
    while let Some(i) = v[at..]
        .windows(6)
        .position(|w| w == b"Bearer" || w == b"bearer")
    {
        let rest = &v[at + i + 6..];
        let ws = rest.iter().take_while(|b| space(b)).count();
        if ws > 0 {
            let token = &rest[ws..];
            if !token.is_empty() {
                return Some(token);
            }
            if ws > 1 {
                // `\s+` gives one back so that `.+` matches.
                return Some(&rest[ws - 1..]);
            }
        }
        at += i + 1;
    }
    None
}

/// Every distinct non-empty token in the request.
fn collect(conf: &RouteConf, req: &Request<'_>) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut add = |t: &[u8]| {
        if !t.is_empty() && !found.iter().any(|f| f == t) {
            found.push(t.to_vec());
        }
    };
    if let Some(q) = req.query() {
        for name in &conf.uri_param_names {
            for v in source::query_args(q, name) {
                add(&v);
            }
        }
    }
    for name in &conf.cookie_names {
        if let Some(v) = source::cookie(req.headers("cookie"), name) {
            add(v);
        }
    }
    for name in &conf.header_names {
        if let Some(t) = req.header(name).and_then(bearer) {
            add(t);
        }
    }
    found
}

fn claims_denied(conf: &RouteConf, map: serde_json::Map<String, Value>) -> Denied {
    Denied {
        reply: Reply {
            status: 401,
            headers: vec![("WWW-Authenticate", conf.challenge_error.clone())],
            body: Value::Object(map).to_string(),
        },
        detail: "claims rejected",
    }
}

fn authenticate(
    conf: &RouteConf,
    req: &Request<'_>,
    index: &ConsumerIndex,
    cache: &TokenCache,
    ctx: &Ctx,
) -> Result<Arc<Credential>, Denied> {
    let tokens = collect(conf, req);
    let raw = match tokens.as_slice() {
        [] => {
            return Err(Denied {
                reply: Reply::message(401, "Unauthorized")
                    .with("WWW-Authenticate", conf.challenge.clone()),
                detail: "no token",
            })
        }
        [one] => one,
        _ => {
            return Err(fail(
                conf,
                "Multiple tokens provided",
                "several different tokens",
            ))
        }
    };
    let raw = std::str::from_utf8(raw)
        .map_err(|_| fail(conf, "Bad token; invalid JSON", "token is not UTF-8"))?;
    if let Some((cred, times)) = cache.get(raw, Scheme::KongJwt, &conf.key_claim_name) {
        if index.is_current(Scheme::KongJwt, &cred) {
            return match jwt::kong_claims(&times, &conf.claims, conf.maximum_expiration, ctx.now) {
                Ok(()) => Ok(cred),
                Err(map) => {
                    cache.remove(raw);
                    Err(claims_denied(conf, map))
                }
            };
        }
        cache.remove(raw);
    }
    let token = jwt::decode_keyed(raw, Dialect::Kong, &conf.key_claim_name)
        .map_err(|e| fail(conf, kong_reason(&e), "token does not parse"))?;
    let k = conf.key_claim_name.as_str();
    // `claims[k] or header[k]`: Lua falls through on a missing or `false` claim (and on
    // `null` here, where Kong would fail on cjson's null with a 500).
    let claim = match token.key() {
        ClaimValue::Absent | ClaimValue::Null | ClaimValue::Bool(false) => {
            ClaimValue::of(token.header().get(k))
        }
        other => other.clone(),
    };
    let key = match claim {
        ClaimValue::Absent | ClaimValue::Null | ClaimValue::Bool(false) => {
            return Err(fail(
                conf,
                &format!("No mandatory '{k}' in claims"),
                "key claim missing",
            ))
        }
        ClaimValue::Str(s) if s.is_empty() => {
            return Err(fail(
                conf,
                &format!("Invalid '{k}' in claims"),
                "key claim empty",
            ))
        }
        ClaimValue::Str(s) => s,
        ClaimValue::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
        ClaimValue::Number(n) => n.to_string(),
        ClaimValue::Bool(b) => b.to_string(),
        ClaimValue::Other => String::new(),
    };
    let cred = index.credential(Scheme::KongJwt, &key).ok_or_else(|| {
        fail(
            conf,
            &format!("No credentials found for given '{k}'"),
            "unknown key",
        )
    })?;
    let vk = match &cred.material {
        Material::Key(vk) => Some(vk),
        Material::KongHmac(k) => {
            if conf.secret_is_base64 {
                k.decoded.as_ref()
            } else {
                Some(&k.plain)
            }
        }
        Material::Unusable { .. } => None,
    };
    let alg_ok = match &cred.material {
        Material::Key(vk) => token.header_alg() == Some(vk.alg().as_str()),
        Material::KongHmac(k) => token.header_alg() == Some(k.plain.alg().as_str()),
        // Kong compares `alg` with the credential's algorithm before it looks at the key.
        Material::Unusable { alg, .. } => token.header_alg() == Some(alg.as_str()),
    };
    if !alg_ok {
        return Err(fail(conf, "Invalid algorithm", "algorithm mismatch"));
    }
    let vk = vk.ok_or_else(|| fail(conf, "Invalid key/secret", "key material unusable"))?;
    token
        .verify(vk)
        .map_err(|_| fail(conf, "Invalid signature", "signature mismatch"))?;
    if let Err(map) = jwt::kong_claims(
        token.times(),
        &conf.claims,
        conf.maximum_expiration,
        ctx.now,
    ) {
        return Err(claims_denied(conf, map));
    }
    if !vk.alg().is_hmac() {
        cache.insert(
            raw,
            Scheme::KongJwt,
            k,
            cred.clone(),
            token.times().clone(),
            ctx.now,
        );
    }
    Ok(cred)
}

/// Kong's message for a token that does not parse.
fn kong_reason(e: &jwt::JwtError) -> &'static str {
    e.kong_message()
}
