//! `limit-count`: APISIX's request quota, `local` policy, exact across every worker of a node.
//!
//! - [`LimitConf`]: the checked configuration, with the counter scope baked in when the route
//!   (or service, global rule, consumer) is compiled: APISIX keys a quota by the object the
//!   configuration lives on, a hash of the configuration, and the key value (`group` replaces the
//!   first two), so a changed configuration starts a fresh counter and an identical re-PUT keeps
//!   it.
//! - [`counter`]: the shared fixed-window counters and their design.
//! - [`access`]: charge the request, answer `rejected_code` when over, and add the
//!   `X-RateLimit-*` headers to the response.
//!
//! Not yet supported, and refused with a 400 naming the field rather than ignored: the `redis`,
//! `redis-cluster` and `redis-sentinel` policies, `rules`, `window_type: sliding`, and counts or
//! windows given as variables.

pub mod counter;

use std::hash::{Hash, Hasher};

use serde_json::{json, Value};

use super::phase::{Ctx, Edits, Reply, Request};
use super::schema::{type_name, Fields};
use super::vars::{self, Facts};

pub use counter::{Counters, Decision};

/// The plugin name.
pub const NAME: &str = "limit-count";
/// APISIX's priority.
pub const PRIORITY: i32 = 1002;
/// The fields encrypted in the store (APISIX's schema `encrypt_fields`). The `redis` policies
/// are refused for now, but a password is never stored in plaintext once they are not.
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
    if policy != "local" {
        f.error.get_or_insert_with(|| {
            format!("property \"policy\" validation failed: policy {policy} is not supported yet (only local)")
        });
    }
    f.boolean("allow_degradation");
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
    })
}

/// Checks a configuration without compiling it.
pub fn check(conf: &Value) -> Result<(), String> {
    compile(conf, "").map(drop)
}

/// `60` for whole seconds, else up to 2 decimals (`19.99`), as APISIX prints them.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        let t = format!("{s:.2}");
        t.trim_end_matches('0').to_string()
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
    let value = match conf.key_type {
        KeyType::Var => vars::var(&conf.key, req, ctx, facts),
        KeyType::VarCombination => vars::interpolate(&conf.key, req, ctx, facts),
        KeyType::Constant => Some(conf.key.clone()),
    }
    .unwrap_or_else(|| req.peer.ip().to_string());
    let key = format!("{}{value}", conf.scope);
    let d = counters.incoming(&key, conf.count, conf.window_ms, 1, ctx.now_ms);
    let headers = if conf.show_limit_quota_header {
        vec![
            ("X-RateLimit-Limit", conf.count.to_string()),
            (
                "X-RateLimit-Remaining",
                if d.rejected { 0 } else { d.remaining }.to_string(),
            ),
            ("X-RateLimit-Reset", seconds(d.reset)),
        ]
    } else {
        Vec::new()
    };
    if d.rejected {
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
    edits.respond.extend(headers);
    Ok(())
}

#[cfg(test)]
mod tests;
