//! Plugins: the registry the Admin API validates with, and the compiled per-route chains the
//! data plane runs.
//!
//! | plugin      | semantics | priority | where                                    |
//! |-------------|-----------|----------|------------------------------------------|
//! | `jwt-auth`  | APISIX    | 2510     | route, service, global rule; consumer / credential |
//! | `jwt`       | Kong      | 1450     | route, service, global rule; credential  |
//! | `proxy-rewrite` | APISIX | 1008    | route, service, global rule, consumer    |
//! | `limit-count` | APISIX  | 1002     | route, service, global rule, consumer    |
//!
//! - [`Registry`]: implements [`PluginCheck`]: checks a plugin configuration with the
//!   plugin's route or consumer schema and wraps errors the way APISIX's Admin API does.
//! - [`Chain`]: one route's plugins, compiled once per config change, sorted by priority
//!   (highest first, as APISIX runs them); [`Chain::access`] runs them for a request.
//! - [`phase`]: what a plugin sees of a request and how it answers.

pub mod credentials;
pub mod jwt_auth;
pub mod kong_jwt;
pub mod limit_count;
pub mod phase;
pub mod proxy_rewrite;
pub mod schema;
pub mod source;
#[cfg(test)]
pub(crate) mod testing;
pub mod token_cache;
pub mod vars;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::consumers::ConsumerIndex;
use crate::model::PluginCheck;

use phase::{Ctx, Edits, Reply, Request};

/// Every plugin name, for `GET /apisix/admin/plugins/list`.
pub const NAMES: &[&str] = &[
    jwt_auth::NAME,
    kong_jwt::NAME,
    limit_count::NAME,
    proxy_rewrite::NAME,
];

/// The plugin registry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Registry;

impl PluginCheck for Registry {
    fn check(&self, name: &str, conf: &Value) -> Result<(), String> {
        let r = match name {
            jwt_auth::NAME => jwt_auth::route_conf(conf).map(drop),
            kong_jwt::NAME => kong_jwt::route_conf(conf).map(drop),
            limit_count::NAME => limit_count::check(conf),
            proxy_rewrite::NAME => proxy_rewrite::compile(conf).map(drop),
            _ => return Err(format!("unknown plugin [{name}]")),
        };
        r.map_err(|e| format!("failed to check the configuration of plugin {name} err: {e}"))
    }

    fn check_consumer(&self, name: &str, conf: &Value) -> Result<(), String> {
        let r = match name {
            jwt_auth::NAME => jwt_auth::credential_spec(conf).map(drop),
            kong_jwt::NAME => kong_jwt::credential_spec(conf).map(drop),
            limit_count::NAME => limit_count::check(conf),
            proxy_rewrite::NAME => proxy_rewrite::compile(conf).map(drop),
            _ => return Err(format!("unknown plugin [{name}]")),
        };
        r.map_err(|e| {
            format!(
                "invalid plugins configuration: failed to check the configuration of plugin {name} err: {e}"
            )
        })
    }
}

impl Registry {
    /// Whether `name` is an authentication plugin (a credential holds exactly one).
    pub fn is_auth(name: &str) -> bool {
        matches!(name, jwt_auth::NAME | kong_jwt::NAME)
    }

    /// The fields of plugin `name`'s configuration that are encrypted in the store (APISIX's
    /// schema `encrypt_fields`); none for an unknown plugin.
    pub fn encrypt_fields(name: &str) -> &'static [&'static str] {
        match name {
            jwt_auth::NAME => jwt_auth::ENCRYPT_FIELDS,
            kong_jwt::NAME => kong_jwt::ENCRYPT_FIELDS,
            limit_count::NAME => limit_count::ENCRYPT_FIELDS,
            _ => &[],
        }
    }

    /// Fills in generated defaults of a consumer-side configuration before it is stored.
    pub fn fill_consumer_defaults(name: &str, conf: &mut Value) {
        if name == kong_jwt::NAME {
            kong_jwt::fill_defaults(conf);
        }
    }

    /// The JSON schema document of `name` (`schema_type` `consumer` for the consumer side),
    /// for `GET /apisix/admin/plugins/{name}`.
    pub fn schema(name: &str, consumer: bool) -> Option<Value> {
        let algs: Vec<&str> = crate::jwt::Alg::ALL.iter().map(|a| a.as_str()).collect();
        Some(match (name, consumer) {
            (jwt_auth::NAME, false) => json!({
                "type": "object",
                "properties": {
                    "header": {"type": "string", "default": "authorization"},
                    "query": {"type": "string", "default": "jwt"},
                    "cookie": {"type": "string", "default": "jwt"},
                    "hide_credentials": {"type": "boolean", "default": false},
                    "key_claim_name": {"type": "string", "default": "key", "minLength": 1},
                    "store_in_ctx": {"type": "boolean", "default": false},
                    "realm": {"type": "string", "default": "jwt", "minLength": 1, "maxLength": 128},
                    "anonymous_consumer": {"type": "string", "minLength": 1},
                    "claims_to_verify": {"type": "array", "uniqueItems": true,
                        "items": {"type": "string", "enum": ["exp", "nbf"]}}
                }
            }),
            (jwt_auth::NAME, true) => json!({
                "type": "object",
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "secret": {"type": "string", "minLength": 1},
                    "public_key": {"type": "string", "minLength": 1},
                    "algorithm": {"type": "string", "default": "HS256", "enum": algs},
                    "exp": {"type": "integer", "minimum": 1, "default": 86400},
                    "base64_secret": {"type": "boolean", "default": false},
                    "lifetime_grace_period": {"type": "integer", "minimum": 0, "default": 0}
                },
                "required": ["key"],
                "encrypt_fields": jwt_auth::ENCRYPT_FIELDS
            }),
            (kong_jwt::NAME, false) => json!({
                "type": "object",
                "properties": {
                    "uri_param_names": {"type": "array", "items": {"type": "string"}, "default": ["jwt"]},
                    "cookie_names": {"type": "array", "items": {"type": "string"}, "default": []},
                    "header_names": {"type": "array", "items": {"type": "string"}, "default": ["authorization"]},
                    "key_claim_name": {"type": "string", "default": "iss"},
                    "secret_is_base64": {"type": "boolean", "default": false},
                    "claims_to_verify": {"type": "array", "items": {"type": "string", "enum": ["exp", "nbf"]}},
                    "maximum_expiration": {"type": "number", "minimum": 0, "maximum": 31536000, "default": 0},
                    "anonymous": {"type": "string"},
                    "run_on_preflight": {"type": "boolean", "default": true},
                    "realm": {"type": "string"}
                }
            }),
            (kong_jwt::NAME, true) => json!({
                "type": "object",
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "secret": {"type": "string", "minLength": 1},
                    "rsa_public_key": {"type": "string", "minLength": 1},
                    "algorithm": {"type": "string", "default": "HS256", "enum": algs}
                },
                "encrypt_fields": kong_jwt::ENCRYPT_FIELDS
            }),
            (limit_count::NAME, _) => json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer", "exclusiveMinimum": 0},
                    "time_window": {"type": "integer", "exclusiveMinimum": 0},
                    "window_type": {"type": "string", "enum": ["fixed"], "default": "fixed"},
                    "key_type": {"type": "string", "enum": ["var", "var_combination", "constant"], "default": "var"},
                    "key": {"type": "string", "default": "remote_addr"},
                    "rejected_code": {"type": "integer", "minimum": 200, "maximum": 599, "default": 503},
                    "rejected_msg": {"type": "string", "minLength": 1},
                    "policy": {"type": "string", "enum": ["local", "redis"], "default": "local"},
                    "redis_host": {"type": "string", "minLength": 2},
                    "redis_port": {"type": "integer", "minimum": 1, "default": 6379},
                    "redis_username": {"type": "string", "minLength": 1},
                    "redis_password": {"type": "string", "minLength": 0},
                    "redis_database": {"type": "integer", "minimum": 0, "default": 0},
                    "redis_timeout": {"type": "integer", "minimum": 1, "default": 1000},
                    "redis_ssl": {"type": "boolean", "enum": [false], "default": false},
                    "redis_keepalive_timeout": {"type": "integer", "minimum": 1000, "default": 10000},
                    "redis_keepalive_pool": {"type": "integer", "minimum": 1, "default": 100},
                    "allow_degradation": {"type": "boolean", "default": false},
                    "show_limit_quota_header": {"type": "boolean", "default": true},
                    "group": {"type": "string"}
                },
                "required": ["count", "time_window"],
                "if": {"properties": {"policy": {"enum": ["redis"]}}},
                "then": {"required": ["redis_host"]},
                "encrypt_fields": limit_count::ENCRYPT_FIELDS
            }),
            (proxy_rewrite::NAME, _) => proxy_rewrite::schema(),
            _ => return None,
        })
    }
}

/// One compiled plugin instance.
#[derive(Debug)]
pub enum Instance {
    /// APISIX `jwt-auth`.
    JwtAuth(jwt_auth::RouteConf),
    /// Kong `jwt`.
    KongJwt(kong_jwt::RouteConf),
    /// APISIX `limit-count`.
    LimitCount(limit_count::LimitConf),
    /// APISIX `proxy-rewrite`.
    ProxyRewrite(proxy_rewrite::Conf),
}

impl Instance {
    /// Compiles plugin `name` configured on the object at `resource`.
    pub fn compile(name: &str, conf: &Value, resource: &str) -> Result<Instance, String> {
        Ok(match name {
            jwt_auth::NAME => Instance::JwtAuth(jwt_auth::route_conf(conf)?),
            kong_jwt::NAME => Instance::KongJwt(kong_jwt::route_conf(conf)?),
            limit_count::NAME => {
                Instance::LimitCount(limit_count::resolve(limit_count::compile(conf, resource)?))
            }
            proxy_rewrite::NAME => Instance::ProxyRewrite(proxy_rewrite::compile(conf)?),
            other => return Err(format!("unknown plugin [{other}]")),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Instance::JwtAuth(_) => jwt_auth::NAME,
            Instance::KongJwt(_) => kong_jwt::NAME,
            Instance::LimitCount(_) => limit_count::NAME,
            Instance::ProxyRewrite(_) => proxy_rewrite::NAME,
        }
    }

    fn priority(&self) -> i32 {
        match self {
            Instance::JwtAuth(_) => jwt_auth::PRIORITY,
            Instance::KongJwt(_) => kong_jwt::PRIORITY,
            Instance::LimitCount(_) => limit_count::PRIORITY,
            Instance::ProxyRewrite(_) => proxy_rewrite::PRIORITY,
        }
    }

    fn is_auth(&self) -> bool {
        matches!(self, Instance::JwtAuth(_) | Instance::KongJwt(_))
    }

    async fn run(
        &self,
        req: &Request<'_>,
        env: &Env<'_>,
        ctx: &mut Ctx,
        edits: &mut Edits,
    ) -> Result<(), Reply> {
        match self {
            Instance::JwtAuth(c) => jwt_auth::access(c, req, env.index, env.cache, ctx, edits),
            Instance::KongJwt(c) => kong_jwt::access(c, req, env.index, env.cache, ctx, edits),
            Instance::LimitCount(c) => match &c.redis {
                None => limit_count::access(c, req, env.counters, &env.facts, ctx, edits),
                // The only step that waits: on this worker's event loop, never blocking it.
                Some(rc) => {
                    limit_count::access_redis(c, rc, req, env.redis, &env.facts, ctx, edits).await
                }
            },
            Instance::ProxyRewrite(c) => proxy_rewrite::access(c, req, &env.facts, ctx, edits),
        }
    }
}

/// What plugins read besides the request: shared state and facts about the route.
pub struct Env<'a> {
    /// Consumers and credentials.
    pub index: &'a ConsumerIndex,
    /// `limit-count` counters (policy `local`).
    pub counters: &'a limit_count::Counters,
    /// This worker's Redis connections (`limit-count` policy `redis`).
    pub redis: &'a limit_count::Pools,
    /// This worker's verified-token cache.
    pub cache: &'a token_cache::TokenCache,
    /// Route, service, port and scheme.
    pub facts: vars::Facts<'a>,
}

/// Compiles an object's plugins (all but authentication plugins, for a consumer).
pub fn compile_map(plugins: &Map<String, Value>, resource: &str) -> Result<Vec<Instance>, String> {
    let mut out = Vec::with_capacity(plugins.len());
    for (name, conf) in plugins {
        out.push(Instance::compile(name, conf, resource)?);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.priority()));
    Ok(out)
}

/// A route's plugins, in the order they run.
#[derive(Debug, Default)]
pub struct Chain {
    /// Global rules' plugins: they run first and in addition to the route's.
    global: Vec<Instance>,
    /// The route's plugins, its service's merged in (the route's configuration of a plugin
    /// replaces its service's, as in APISIX).
    route: Vec<Instance>,
}

impl Chain {
    /// Compiles a route's chain. `global` is each global rule's `(resource key, plugins)`;
    /// `layers` the service's then the route's.
    pub fn compile(
        global: &[(String, &Map<String, Value>)],
        layers: &[(String, &Map<String, Value>)],
    ) -> Result<Arc<Chain>, String> {
        let mut g = Vec::new();
        for (resource, plugins) in global {
            g.extend(compile_map(plugins, resource)?);
        }
        g.sort_by_key(|p| std::cmp::Reverse(p.priority()));
        let mut merged: Vec<(&str, &Value, &str)> = Vec::new();
        for (resource, layer) in layers {
            for (name, conf) in layer.iter() {
                match merged.iter_mut().find(|(n, _, _)| n == name) {
                    Some(slot) => *slot = (name, conf, resource),
                    None => merged.push((name, conf, resource)),
                }
            }
        }
        let mut route = Vec::with_capacity(merged.len());
        for (name, conf, resource) in merged {
            route.push(Instance::compile(name, conf, resource)?);
        }
        route.sort_by_key(|p| std::cmp::Reverse(p.priority()));
        Ok(Arc::new(Chain { global: g, route }))
    }

    /// Whether the chain is empty (the request path skips it).
    pub fn is_empty(&self) -> bool {
        self.global.is_empty() && self.route.is_empty()
    }

    /// Runs the access phase: global rules' plugins, then the route's authentication plugins,
    /// then the route's other plugins with the authenticated consumer's own plugins merged in
    /// (the consumer's configuration of a plugin replaces the route's, as APISIX merges them).
    /// The first reply ends the request. Async because `limit-count` with policy `redis` waits
    /// for Redis; every other plugin completes without yielding.
    pub async fn access(
        &self,
        req: &Request<'_>,
        env: &Env<'_>,
        ctx: &mut Ctx,
        edits: &mut Edits,
    ) -> Result<(), Reply> {
        for p in &self.global {
            p.run(req, env, ctx, edits).await?;
        }
        for p in self.route.iter().filter(|p| p.is_auth()) {
            p.run(req, env, ctx, edits).await?;
        }
        let consumer = ctx.consumer.clone();
        let own = consumer.as_ref().map_or(&[][..], |c| &c.plugins[..]);
        if own.is_empty() {
            for p in self.route.iter().filter(|p| !p.is_auth()) {
                p.run(req, env, ctx, edits).await?;
            }
            return Ok(());
        }
        let mut merged: Vec<&Instance> = self
            .route
            .iter()
            .filter(|p| !p.is_auth() && !own.iter().any(|o| o.name() == p.name()))
            .chain(own.iter().filter(|p| !p.is_auth()))
            .collect();
        merged.sort_by_key(|p| std::cmp::Reverse(p.priority()));
        for p in merged {
            p.run(req, env, ctx, edits).await?;
        }
        Ok(())
    }
}
