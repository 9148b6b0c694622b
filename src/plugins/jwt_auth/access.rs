//! The `jwt-auth` request check, in APISIX's order (reference §1.3): fetch the token (header,
//! then query argument, then cookie; the first present source is used, good or bad), parse,
//! find the credential by the key claim, pin the algorithm, verify the signature, check the
//! claims, attach the consumer. Every failure is a 401 with a generic message and
//! `WWW-Authenticate: Bearer realm="..."`; the detailed reason goes to the log only.

use std::borrow::Cow;
use std::sync::Arc;

use crate::consumers::{ConsumerIndex, Credential, Material, Scheme};
use crate::jwt::{self, ClaimValue, Dialect};
use crate::plugins::phase::{Ctx, Edits, Reply, Request, Text};
use crate::plugins::source;
use crate::plugins::token_cache::TokenCache;

use super::RouteConf;

/// Why a request failed: the client message and the log detail.
struct Denied {
    message: &'static str,
    detail: String,
}

fn denied(message: &'static str, detail: impl Into<String>) -> Denied {
    Denied {
        message,
        detail: detail.into(),
    }
}

const VERIFY_FAILED: &str = "failed to verify jwt";

/// Runs `jwt-auth` for one request.
pub fn access(
    conf: &RouteConf,
    req: &Request<'_>,
    index: &ConsumerIndex,
    cache: &TokenCache,
    ctx: &mut Ctx,
    edits: &mut Edits,
) -> Result<(), Reply> {
    match authenticate(conf, req, index, cache, ctx, edits) {
        Ok(cred) => {
            attach(ctx, edits, cred.consumer.clone(), cred.id.as_ref());
            if ctx.anonymous {
                // An earlier Kong `jwt` fell back to its anonymous consumer; this request is
                // authenticated now, so that plugin's marker goes too.
                edits.clear("X-Anonymous-Consumer");
                ctx.anonymous = false;
            }
            Ok(())
        }
        Err(d) => {
            tracing::info!(plugin = "jwt-auth", reason = %d.detail, "authentication failed");
            if let Some(anon) = &conf.anonymous_consumer {
                return match index.consumer(anon) {
                    Some(c) => {
                        // Attached with no credential, as APISIX does: a Kong `jwt` with
                        // `anonymous` later in the chain does not take it as authenticated.
                        attach(ctx, edits, c, None);
                        ctx.anonymous = true;
                        Ok(())
                    }
                    None => {
                        tracing::warn!(
                            plugin = "jwt-auth",
                            "jwt-auth failed to authenticate the request, code: 401. error: failed to get anonymous consumer {anon}"
                        );
                        Err(unauthorized(conf, "Invalid user authorization"))
                    }
                };
            }
            Err(unauthorized(conf, d.message))
        }
    }
}

fn unauthorized(conf: &RouteConf, message: &str) -> Reply {
    Reply::message(401, message).with("WWW-Authenticate", conf.www_authenticate.clone())
}

/// APISIX's `attach_consumer`: the three headers are set, or cleared when the value is absent,
/// so a client can never pass its own.
fn attach(
    ctx: &mut Ctx,
    edits: &mut Edits,
    consumer: Arc<crate::consumers::Consumer>,
    credential_id: Option<&Arc<str>>,
) {
    edits.set_text("X-Consumer-Username", Text::from(&consumer.username));
    match credential_id {
        Some(id) => edits.set_text("X-Credential-Identifier", Text::from(id)),
        None => edits.clear_static("X-Credential-Identifier"),
    }
    match &consumer.custom_id {
        Some(id) => edits.set_text("X-Consumer-Custom-ID", Text::from(id)),
        None => edits.clear_static("X-Consumer-Custom-ID"),
    }
    ctx.consumer = Some(consumer);
}

/// Where the token came from.
enum Source {
    Header,
    Query,
    Cookie,
}

/// The token, borrowed from the request unless it had to be URL-decoded (query).
fn fetch<'r>(conf: &RouteConf, req: &'r Request<'_>) -> Option<(Cow<'r, [u8]>, Source)> {
    if let Some(v) = req.header(&conf.header) {
        let token = match v.get(..7) {
            Some(b"Bearer ") | Some(b"bearer ") => &v[7..],
            _ => v,
        };
        return Some((Cow::Borrowed(token), Source::Header));
    }
    if let Some(q) = req.query() {
        if let Some(v) = source::query_args(q, &conf.query).next() {
            return Some((Cow::Owned(v), Source::Query));
        }
    }
    source::cookie(req.headers("cookie"), &conf.cookie).map(|v| (Cow::Borrowed(v), Source::Cookie))
}

/// Strips the source the token was read from (APISIX does this before verifying).
fn hide(conf: &RouteConf, req: &Request<'_>, src: &Source, edits: &mut Edits) {
    match src {
        Source::Header => edits.clear(&conf.header),
        Source::Query => {
            // A plugin that ran before (proxy-rewrite in a global rule) may have rewritten
            // the target already: take the token out of that one.
            let (path, query) = match &edits.target {
                Some(t) => match t.iter().position(|&b| b == b'?') {
                    Some(p) => (t[..p].to_vec(), t[p + 1..].to_vec()),
                    None => (t.clone(), Vec::new()),
                },
                None => (
                    crate::http::path::encode(req.path()).into_owned(),
                    req.query().unwrap_or_default().to_vec(),
                ),
            };
            let q = source::query_without(&query, &conf.query);
            let mut target = path;
            if !q.is_empty() {
                target.push(b'?');
                target.extend_from_slice(&q);
            }
            edits.target = Some(target);
        }
        Source::Cookie => match source::cookies_without(req.headers("cookie"), &conf.cookie) {
            Some(rest) => edits.set("Cookie", &rest),
            None => edits.clear("Cookie"),
        },
    }
}

fn authenticate(
    conf: &RouteConf,
    req: &Request<'_>,
    index: &ConsumerIndex,
    cache: &TokenCache,
    ctx: &mut Ctx,
    edits: &mut Edits,
) -> Result<Arc<Credential>, Denied> {
    let Some((raw, src)) = fetch(conf, req) else {
        return Err(denied(
            "Missing JWT token in request",
            "failed to fetch JWT token: JWT not found in cookie",
        ));
    };
    if conf.hide_credentials {
        hide(conf, req, &src, edits);
    }
    let raw = std::str::from_utf8(&raw)
        .map_err(|_| denied("JWT token invalid", "JWT token invalid: invalid jwt string"))?;
    if let Some((cred, times)) = cache.get(raw, Scheme::JwtAuth, &conf.key_claim_name) {
        if index.is_current(Scheme::JwtAuth, &cred) {
            return match jwt::apisix_claims(&times, conf.claims.as_deref(), ctx.now, cred.grace) {
                Ok(()) => Ok(cred),
                Err(e) => {
                    cache.remove(raw);
                    Err(denied(VERIFY_FAILED, format!("failed to verify jwt: {e}")))
                }
            };
        }
        cache.remove(raw);
    }
    let token = jwt::decode_keyed(raw, Dialect::Apisix, &conf.key_claim_name)
        .map_err(|e| denied("JWT token invalid", format!("JWT token invalid: {e}")))?;
    let key = match token.key() {
        // Lua's `not user_key`: absent or `false`. cjson's `null` is a value, looked up and
        // not found.
        ClaimValue::Absent | ClaimValue::Bool(false) => {
            return Err(denied("missing user key in JWT token", "missing user key"))
        }
        ClaimValue::Str(s) => s.as_str(),
        _ => {
            return Err(denied(
                "Invalid user key in JWT token",
                "failed to find consumer: invalid user key",
            ))
        }
    };
    let cred = index.credential(Scheme::JwtAuth, key).ok_or_else(|| {
        denied(
            "Invalid user key in JWT token",
            "failed to find consumer: invalid user key",
        )
    })?;
    let vk = match &cred.material {
        Material::Key(k) => k,
        Material::Unusable { why, .. } => {
            return Err(denied(
                VERIFY_FAILED,
                format!("failed to verify jwt: credential unusable: {why}"),
            ))
        }
        Material::KongHmac(_) => {
            return Err(denied(
                VERIFY_FAILED,
                "failed to verify jwt: not a jwt-auth key",
            ))
        }
    };
    if token.header_alg() != Some(vk.alg().as_str()) {
        return Err(denied(
            VERIFY_FAILED,
            format!(
                "failed to verify jwt: algorithm mismatch, expected {}",
                vk.alg().as_str()
            ),
        ));
    }
    token
        .verify(vk)
        .map_err(|_| denied(VERIFY_FAILED, "failed to verify jwt: signature mismatch"))?;
    jwt::apisix_claims(token.times(), conf.claims.as_deref(), ctx.now, cred.grace)
        .map_err(|e| denied(VERIFY_FAILED, format!("failed to verify jwt: {e}")))?;
    if !vk.alg().is_hmac() {
        cache.insert(
            raw,
            Scheme::JwtAuth,
            &conf.key_claim_name,
            cred.clone(),
            token.times().clone(),
            ctx.now,
        );
    }
    Ok(cred)
}
