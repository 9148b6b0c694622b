//! `limit-count`: APISIX's request quota, policies `local` (exact across every worker of a
//! node) and `redis` (one quota shared by every node using the same Redis).
//!
//! - [`LimitConf`]: the checked configuration, with the counter scope baked in when the route
//!   (or service, global rule, consumer) is compiled: APISIX keys a quota by the object the
//!   configuration lives on, a hash of the configuration, and the key value (`group` replaces the
//!   first two), so a changed configuration starts a fresh counter and an identical re-PUT keeps
//!   it.
//! - [`counter`]: the shared fixed-window counters of policy `local` and their design.
//! - [`redis`]: policy `redis`, the per-core connection pools and the RESP exchange.
//! - [`access`] (`local`) and [`access_redis`] (`redis`): charge the request, answer
//!   `rejected_code` when over, and add the `X-RateLimit-*` headers to the response.
//!
//! ## Policy `redis`: design and trade-offs
//!
//! - **Same data as APISIX.** Key `plugin-limit-count:v1:<limit key>`, APISIX's Lua script run
//!   with `EVALSHA` (`EVAL` on `NOSCRIPT`): a window starts at its first hit, every hit
//!   increments (rejected ones too), `Remaining = count − consumed`, `Reset = pttl / 1000`. The
//!   limit key is built as for `local`; the conf hash is deterministic, so gateways with the
//!   same configuration share a counter (but not with APISIX nodes, whose conf version is a
//!   crc32 of their own JSON encoding).
//! - **Never blocks a worker.** The chain's access phase is async; only this step yields, on
//!   the worker's own monoio loop, over the worker's own connections ([`Pools`], keyed by host,
//!   port, database and credentials; AUTH and SELECT on fresh connections only). No locks, no
//!   cross-core hand-off.
//! - **One round trip, atomic.** The check and the increment run inside Redis, so concurrent
//!   requests on any number of nodes never over-admit.
//! - **Bounded.** `redis_timeout` bounds the whole Redis step of a request (connect, AUTH,
//!   SELECT, script), where APISIX applies it to each socket operation: a request never waits
//!   longer than that on Redis. A connection whose exchange failed or timed out is dropped; a
//!   pooled one that broke (Redis restarted) is replaced once by a fresh connection within the
//!   same deadline, so a restart costs no errors. (A reply lost after Redis ran the script would
//!   then count that request twice; Redis closing a connection between executing and answering
//!   is rare enough to accept.)
//! - **Failure.** Any Redis error is logged (`failed to limit count`) and answers 500
//!   `{"error_msg":"failed to limit count"}`, or with `allow_degradation` lets the request
//!   through without `X-RateLimit-*` headers, as APISIX does.
//! - **Host names** resolve when the configuration is compiled (the control plane, as upstream
//!   nodes do), never on a worker: a DNS change takes effect at the next configuration change.
//!
//! Not yet supported, and refused with a 400 naming the field rather than ignored: `redis_ssl:
//! true`, `sync_interval` other than -1 (every request goes to Redis), the `redis-cluster` and
//! `redis-sentinel` policies, `rules`, `window_type: sliding`, and counts or windows given as
//! variables.

pub mod counter;
pub mod redis;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::phase::{Ctx, Edits, Reply, Request, Text};
use super::schema::{type_name, Fields};
use super::vars::{self, Facts};

pub use counter::{Counters, Decision};
pub use redis::{Pools, RedisConf};

/// The plugin name.
pub const NAME: &str = "limit-count";
/// APISIX's priority.
pub const PRIORITY: i32 = 1002;
/// The fields encrypted in the store (APISIX's schema `encrypt_fields`).
pub const ENCRYPT_FIELDS: &[&str] = &["redis_password"];

/// How the counter key is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `key` names one variable (`remote_addr`, `http_x_api_key`, `consumer_name`, ...).
    Var,
    /// `key` is a template of variables (`$remote_addr $http_user_agent`).
    VarCombination,
    /// `key` is used literally.
    Constant,
}

/// A checked `limit-count` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitConf {
    /// Requests allowed per window.
    pub count: u64,
    /// Window length in milliseconds (`time_window` seconds).
    pub window_ms: u64,
    /// Defaults to `var`.
    pub key_type: KeyType,
    /// Defaults to `remote_addr`.
    pub key: String,
    /// Defaults to `503`.
    pub rejected_code: u16,
    /// Defaults to none (the body then carries the status's reason).
    pub rejected_msg: Option<String>,
    /// Defaults to `true`.
    pub show_limit_quota_header: bool,
    /// Counter key prefix: `<resource>:<conf hash>:` or `<group>:`.
    pub scope: String,
    /// Defaults to `false`: a failing Redis answers 500; `true` lets the request through
    /// without rate-limit headers.
    pub allow_degradation: bool,
    /// Policy `redis`: where the counters live; `None` for `local`.
    pub redis: Option<Arc<RedisConf>>,
}

fn positive(f: &mut Fields<'_>, field: &str) -> Option<u64> {
    match f.raw(field)? {
        Value::String(_) => {
            f.error.get_or_insert_with(|| {
                format!("property \"{field}\" validation failed: variables in {field} are not supported yet")
            });
            None
        }
        v => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                f.error.get_or_insert_with(|| {
                    if v.is_number() {
                        format!("property \"{field}\" validation failed: value should match only one schema, but matches none")
                    } else {
                        format!(
                            "property \"{field}\" validation failed: wrong type: expected integer, got {}",
                            type_name(v)
                        )
                    }
                });
                None
            }
        },
    }
}

/// Checks a configuration (APISIX's schema messages) and compiles it for the object at
/// `resource` (e.g. `/apisix/routes/1`).
pub fn compile(conf: &Value, resource: &str) -> Result<LimitConf, String> {
    let mut f = Fields::new(conf)?;
    if f.has("rules") {
        f.error = Some("property \"rules\" validation failed: rules are not supported yet".into());
    }
    if !f.has("rules") && (!f.has("count") || !f.has("time_window")) {
        f.error
            .get_or_insert_with(|| "value should match only one schema, but matches none".into());
    }
    let count = positive(&mut f, "count");
    let window = positive(&mut f, "time_window");
    if f.one_of("window_type", &["fixed", "sliding"]) == Some("sliding") {
        f.error.get_or_insert_with(|| {
            "property \"window_type\" validation failed: sliding windows are not supported yet"
                .into()
        });
    }
    let key_type = match f.one_of("key_type", &["var", "var_combination", "constant"]) {
        Some("var_combination") => KeyType::VarCombination,
        Some("constant") => KeyType::Constant,
        _ => KeyType::Var,
    };
    let key = f.string("key", 0, usize::MAX).unwrap_or("remote_addr");
    let rejected_code = f.integer("rejected_code", 200, 599).unwrap_or(503) as u16;
    let rejected_msg = f.string("rejected_msg", 1, usize::MAX);
    let policy = f
        .one_of(
            "policy",
            &["local", "redis", "redis-cluster", "redis-sentinel"],
        )
        .unwrap_or("local");
    if policy != "local" && policy != "redis" {
        f.error.get_or_insert_with(|| {
            format!("property \"policy\" validation failed: policy {policy} is not supported yet (only local and redis)")
        });
    }
    let redis = if policy == "redis" {
        redis_conf(&mut f)
    } else {
        None
    };
    let allow_degradation = f.boolean("allow_degradation").unwrap_or(false);
    let show = f.boolean("show_limit_quota_header").unwrap_or(true);
    let group = f.string("group", 0, usize::MAX);
    f.finish()?;
    let scope = match group {
        Some(g) => format!("{g}:"),
        None => {
            // serde_json's maps are ordered by key, so this is a stable encoding of the conf.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            conf.to_string().hash(&mut h);
            format!("{resource}:{:016x}:", h.finish())
        }
    };
    Ok(LimitConf {
        count: count.unwrap_or(1),
        window_ms: window.unwrap_or(1).saturating_mul(1000),
        key_type,
        key: key.to_string(),
        rejected_code,
        rejected_msg: rejected_msg.map(str::to_string),
        show_limit_quota_header: show,
        scope,
        allow_degradation,
        redis: redis.map(Arc::new),
    })
}

/// The `redis_*` fields of policy `redis` (APISIX's `if`/`then` schema: without `redis_host`
/// the error is `then clause did not match`).
fn redis_conf(f: &mut Fields<'_>) -> Option<RedisConf> {
    if !f.has("redis_host") {
        f.error
            .get_or_insert_with(|| "then clause did not match".into());
        return None;
    }
    let host = f.string("redis_host", 2, usize::MAX);
    let port = f.integer("redis_port", 1, 65535).unwrap_or(6379) as u16;
    let username = f.string("redis_username", 1, usize::MAX);
    let password = f.string("redis_password", 0, usize::MAX);
    let database = f.integer("redis_database", 0, u32::MAX as i64).unwrap_or(0) as u32;
    let timeout = f.integer("redis_timeout", 1, i64::MAX).unwrap_or(1000) as u64;
    if f.boolean("redis_ssl") == Some(true) {
        f.error.get_or_insert_with(|| {
            "property \"redis_ssl\" validation failed: redis_ssl is not supported yet".into()
        });
    }
    f.boolean("redis_ssl_verify");
    if f.raw("sync_interval")
        .is_some_and(|v| v.as_f64() != Some(-1.0))
    {
        f.error.get_or_insert_with(|| {
            "property \"sync_interval\" validation failed: sync_interval is not supported yet (only -1)"
                .into()
        });
    }
    let keepalive = f
        .integer("redis_keepalive_timeout", 1000, i64::MAX)
        .unwrap_or(10_000) as u64;
    let pool = f
        .integer("redis_keepalive_pool", 1, i64::MAX)
        .unwrap_or(100) as usize;
    Some(RedisConf {
        host: host?.to_string(),
        port,
        username: username.map(str::to_string),
        password: password.map(str::to_string),
        database,
        timeout: Duration::from_millis(timeout),
        keepalive_timeout: Duration::from_millis(keepalive),
        keepalive_pool: pool,
        addr: None,
    })
}

/// Resolves a compiled configuration's Redis host (on the control plane, when a snapshot is
/// compiled; never on a worker).
pub fn resolve(mut conf: LimitConf) -> LimitConf {
    if let Some(r) = conf.redis.as_mut() {
        Arc::make_mut(r).resolve();
    }
    conf
}

/// Checks a configuration without compiling it.
pub fn check(conf: &Value) -> Result<(), String> {
    compile(conf, "").map(drop)
}

/// `60` for whole seconds, else up to 2 decimals (`19.99`), as APISIX prints them.
fn seconds(s: f64) -> Text {
    if s.fract() == 0.0 {
        Text::short(format_args!("{s:.0}"))
    } else {
        // Two decimals without trailing zeros: 1.5, 0.25.
        let hundredths = (s * 100.0).round() as u64;
        match hundredths % 100 {
            0 => Text::short(format_args!("{}", hundredths / 100)),
            f if f % 10 == 0 => Text::short(format_args!("{}.{}", hundredths / 100, f / 10)),
            f => Text::short(format_args!("{}.{f:02}", hundredths / 100)),
        }
    }
}

/// Charges the request against its quota.
pub fn access(
    conf: &LimitConf,
    req: &Request<'_>,
    counters: &Counters,
    facts: &Facts<'_>,
    ctx: &Ctx,
    edits: &mut Edits,
) -> Result<(), Reply> {
    // The key is built in a per-thread buffer: no allocation per request once it has grown.
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let d = KEY.with(|k| {
        let mut key = k.borrow_mut();
        key.clear();
        key.push_str(&conf.scope);
        write_key_value(&mut key, conf, req, ctx, facts);
        counters.incoming(&key, conf.count, conf.window_ms, 1, ctx.now_ms)
    });
    decide(conf, &d, edits)
}

/// Charges the request against its quota kept in Redis (policy `redis`). On a Redis failure
/// the request is let through without headers when `allow_degradation` is set, else answered
/// 500 `{"error_msg":"failed to limit count"}`; the error is logged either way.
#[allow(clippy::too_many_arguments)]
pub async fn access_redis(
    conf: &LimitConf,
    rc: &RedisConf,
    req: &Request<'_>,
    pools: &Pools,
    facts: &Facts<'_>,
    ctx: &Ctx,
    edits: &mut Edits,
) -> Result<(), Reply> {
    let key = format!(
        "{}{}{}",
        redis::KEY_PREFIX,
        conf.scope,
        key_value(conf, req, ctx, facts)
    );
    let window_s = conf.window_ms / 1000;
    match redis::incoming(pools, rc, &key, conf.count, window_s, 1).await {
        Ok((consumed, ttl_ms)) => {
            // Saturating: `consumed` comes from the network, `count` may exceed i64.
            let count = i64::try_from(conf.count).unwrap_or(i64::MAX);
            let remaining = count.saturating_sub(consumed);
            let d = Decision {
                rejected: remaining < 0,
                remaining: remaining.max(0) as u64,
                reset: (ttl_ms.max(0) as f64 / 10.0).floor() / 100.0,
            };
            decide(conf, &d, edits)
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to limit count");
            if conf.allow_degradation {
                Ok(())
            } else {
                Err(Reply {
                    status: 500,
                    headers: Vec::new(),
                    body: json!({ "error_msg": "failed to limit count" }).to_string(),
                })
            }
        }
    }
}

/// Appends the counter key's value part to `out`, as [`key_value`] makes it.
fn write_key_value(
    out: &mut String,
    conf: &LimitConf,
    req: &Request<'_>,
    ctx: &Ctx,
    facts: &Facts<'_>,
) {
    use std::fmt::Write;
    let mark = out.len();
    let found = match conf.key_type {
        KeyType::Var => vars::write_var(out, &conf.key, req, ctx, facts),
        _ => match key_value_opt(conf, req, ctx, facts) {
            Some(v) => {
                out.push_str(&v);
                true
            }
            None => false,
        },
    };
    if !found {
        out.truncate(mark);
        let _ = write!(out, "{}", req.peer.ip());
    }
}

/// The counter key's value part, `None` when it resolves to nothing.
fn key_value_opt(
    conf: &LimitConf,
    req: &Request<'_>,
    ctx: &Ctx,
    facts: &Facts<'_>,
) -> Option<String> {
    match conf.key_type {
        KeyType::Var => vars::var(&conf.key, req, ctx, facts),
        KeyType::VarCombination => vars::interpolate(&conf.key, req, ctx, facts),
        KeyType::Constant => Some(conf.key.clone()),
    }
}

/// The counter key's value part (`key`/`key_type`; the client IP when it resolves to nothing).
fn key_value(conf: &LimitConf, req: &Request<'_>, ctx: &Ctx, facts: &Facts<'_>) -> String {
    key_value_opt(conf, req, ctx, facts).unwrap_or_else(|| req.peer.ip().to_string())
}

/// Turns a decision into the headers and, when over the quota, the rejection.
fn decide(conf: &LimitConf, d: &Decision, edits: &mut Edits) -> Result<(), Reply> {
    let headers = conf.show_limit_quota_header.then(|| {
        let remaining = if d.rejected { 0 } else { d.remaining };
        [
            (
                "X-RateLimit-Limit",
                Text::short(format_args!("{}", conf.count)),
            ),
            (
                "X-RateLimit-Remaining",
                Text::short(format_args!("{remaining}")),
            ),
            ("X-RateLimit-Reset", seconds(d.reset)),
        ]
    });
    if d.rejected {
        let headers = headers
            .into_iter()
            .flatten()
            .map(|(n, v)| (n, v.to_string()))
            .collect();
        let msg = conf
            .rejected_msg
            .clone()
            .unwrap_or_else(|| crate::proxy::reply::reason(conf.rejected_code).to_string());
        return Err(Reply {
            status: conf.rejected_code,
            headers,
            body: json!({ "error_msg": msg }).to_string(),
        });
    }
    edits.respond.extend(headers.into_iter().flatten());
    Ok(())
}

#[cfg(test)]
mod tests;
