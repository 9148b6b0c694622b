//! [`Upstream`]: where a route's requests go, from an APISIX upstream object (standalone, inline in
//! a route or service, or `PUT /apisix/admin/upstreams/{id}`).
//!
//! Supported: `roundrobin` over static `nodes`, `http` and `https` schemes (with the `tls` object,
//! see [`tls`]), `pass_host`, timeouts, retries and the keepalive pool. The rest of APISIX's
//! upstream is either refused as not supported yet (other balancers and schemes, service
//! discovery) or accepted and ignored, as listed in [`IGNORED`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::check::{type_name, Errors, Min, Obj};
use super::node::{parse_nodes, Node};
use super::pattern::HOST;
use super::{meta, ValidationErrors};

#[cfg(test)]
mod tests;
pub mod tls;

pub use tls::{ClientCert, TlsOptions};

/// Every field of APISIX's upstream schema, which refuses any other (`additionalProperties`).
const FIELDS: &[&str] = &[
    "id",
    "name",
    "desc",
    "labels",
    "create_time",
    "update_time",
    "nodes",
    "retries",
    "retry_timeout",
    "timeout",
    "tls",
    "keepalive_pool",
    "type",
    "checks",
    "hash_on",
    "key",
    "scheme",
    "discovery_type",
    "discovery_args",
    "pass_host",
    "upstream_host",
    "service_name",
];

/// Fields accepted and ignored: `hash_on` and `key` only serve the `chash` balancer and
/// `discovery_args` only discovery, both refused elsewhere; `checks` (health checks) is not run
/// yet, and a node that fails is retried on the next one instead.
pub(crate) const IGNORED: &[&str] = &["hash_on", "key", "checks", "discovery_args"];

/// Load-balancing algorithm (`type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LbType {
    /// Weighted round robin. The only one supported yet (`chash`, `ewma` and `least_conn` are
    /// refused).
    #[default]
    RoundRobin,
}

/// Protocol spoken to the nodes (`scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Plain HTTP/1.1.
    #[default]
    Http,
    /// HTTP/1.1 over TLS, with the upstream's `tls` options.
    Https,
}

impl Scheme {
    /// The port of a node given without one.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// What `Host` header the upstream request carries (`pass_host`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum PassHost {
    /// The client's `Host`, unchanged.
    #[default]
    Pass,
    /// The chosen node's host (and port, when not the scheme's default).
    Node,
    /// This value (`upstream_host`).
    Rewrite(String),
}

/// Timeouts towards a node, each in seconds above 0 (fractions allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamTimeout {
    /// To open the connection. Defaults to 60 s.
    pub connect: Duration,
    /// Between two successful writes of the request. Defaults to 60 s.
    pub send: Duration,
    /// Between two successful reads of the response. Defaults to 60 s.
    pub read: Duration,
}

impl Default for UpstreamTimeout {
    fn default() -> Self {
        let d = Duration::from_secs(60);
        UpstreamTimeout {
            connect: d,
            send: d,
            read: d,
        }
    }
}

/// Idle connections kept to the nodes (`keepalive_pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepalivePool {
    /// Most idle connections kept, at least 1. Defaults to `320`.
    pub size: u32,
    /// How long an idle connection is kept; 0 keeps it until the node closes it. Defaults to 60 s.
    pub idle_timeout: Duration,
    /// Most requests sent on one connection, at least 1. Defaults to `1000`.
    pub requests: u32,
}

impl Default for KeepalivePool {
    fn default() -> Self {
        KeepalivePool {
            size: 320,
            idle_timeout: Duration::from_secs(60),
            requests: 1000,
        }
    }
}

/// A validated upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    /// From the Admin API path or the body; inline upstreams usually have none. Defaults to none.
    pub id: Option<String>,
    /// 1 to 256 characters. Defaults to none.
    pub name: Option<String>,
    /// Up to 256 characters. Defaults to none.
    pub desc: Option<String>,
    /// Free-form key/value pairs. Defaults to empty.
    pub labels: BTreeMap<String, String>,
    /// How a node is chosen (`type`). Defaults to `roundrobin`.
    pub lb: LbType,
    /// The servers. May be empty, as in APISIX: every request then fails with 502/503. No default:
    /// required.
    pub nodes: Vec<Node>,
    /// Protocol to the nodes. Defaults to `http`.
    pub scheme: Scheme,
    /// TLS to the nodes of an `https` upstream (unused for `http`). Defaults to verifying the
    /// nodes' certificates, without a client certificate.
    pub tls: TlsOptions,
    /// The `Host` header sent (`pass_host` and `upstream_host`). Defaults to `pass`.
    pub pass_host: PassHost,
    /// Connect, send and read timeouts. Defaults to 60 s each.
    pub timeout: UpstreamTimeout,
    /// How many more nodes to try after a failure. Defaults to none: the number of nodes - 1, as in
    /// APISIX (see [`Upstream::retries_or_default`]).
    pub retries: Option<u32>,
    /// How long retrying may go on in all. Defaults to none: no limit (APISIX's `0` also means none).
    pub retry_timeout: Option<Duration>,
    /// Idle connection pool. Defaults to 320 connections, 60 s idle, 1000 requests each.
    pub keepalive_pool: KeepalivePool,
}

impl Upstream {
    /// Validates an upstream object.
    ///
    /// `id_from_path` is the id in `PUT /apisix/admin/upstreams/{id}`; when the body also has an
    /// `id` they must agree. Every problem is reported, each with its field path.
    pub fn from_json(v: &Value, id_from_path: Option<&str>) -> Result<Upstream, ValidationErrors> {
        let mut errors = Vec::new();
        let parsed = Upstream::parse(v, id_from_path, Errors::root(&mut errors));
        ValidationErrors::finish(parsed, errors)
    }

    /// The number of retries to make: `retries`, or APISIX's default of one per other node.
    pub fn retries_or_default(&self) -> u32 {
        self.retries.unwrap_or_else(|| {
            u32::try_from(self.nodes.len().saturating_sub(1)).unwrap_or(u32::MAX)
        })
    }

    /// Validates an upstream found at `err`'s path (top level, or `upstream` inside a route).
    pub(crate) fn parse(
        v: &Value,
        id_from_path: Option<&str>,
        err: Errors<'_>,
    ) -> Option<Upstream> {
        let mut o = Obj::new(v, err)?;
        let before = o.err.count();
        o.reject_unknown(FIELDS);
        let id = meta::resolve_id(&mut o, id_from_path, "upstream")
            .ok()
            .flatten();
        let name = meta::name(&mut o);
        let desc = meta::desc(&mut o);
        let labels = meta::labels(&mut o);
        meta::timestamps(&mut o);
        check_ignored(&mut o);

        let lb = lb_type(&mut o);
        let scheme = scheme(&mut o);
        let discovery = o.has("service_name") || o.has("discovery_type");
        if discovery {
            o.err.push(
                "service discovery (\"service_name\", \"discovery_type\") is not supported yet",
            );
        }
        let nodes = match o.get("nodes") {
            Some(v) => parse_nodes(v, scheme.default_port(), o.err.child("nodes")),
            None if discovery => None,
            None => {
                o.req("nodes");
                None
            }
        };
        let tls = tls::tls(&mut o);
        let pass_host = pass_host(&mut o);
        let timeout = timeout(&mut o);
        let retries = o
            .opt_int("retries", Some(0), Some(i64::from(u32::MAX)))
            .map(|r| r as u32);
        let retry_timeout = o
            .opt_secs("retry_timeout", Min::AtLeast(0.0))
            .filter(|d| !d.is_zero());
        let keepalive_pool = keepalive_pool(&mut o);

        if o.err.count() > before {
            return None;
        }
        Some(Upstream {
            id,
            name,
            desc,
            labels,
            lb,
            nodes: nodes?,
            scheme,
            tls: tls.unwrap_or_default(),
            pass_host,
            timeout,
            retries,
            retry_timeout,
            keepalive_pool,
        })
    }
}

/// Type checks for the [`IGNORED`] fields, so a malformed value is still refused as APISIX would.
fn check_ignored(o: &mut Obj<'_, '_>) {
    for &name in IGNORED {
        o.opt(name, |v| match name {
            "hash_on" => match v.as_str() {
                Some("vars" | "header" | "cookie" | "consumer" | "vars_combinations") => Ok(()),
                _ => Err(format!("matches none of the enum values, got {v}")),
            },
            "key" if v.is_string() => Ok(()),
            "key" => Err(format!("wrong type: expected string, got {}", type_name(v))),
            _ if v.is_object() => Ok(()),
            _ => Err(format!("wrong type: expected object, got {}", type_name(v))),
        });
    }
}

fn lb_type(o: &mut Obj<'_, '_>) -> LbType {
    o.opt("type", |v| match v.as_str() {
        Some("roundrobin") => Ok(LbType::RoundRobin),
        Some(t @ ("chash" | "ewma" | "least_conn")) => {
            Err(format!("type {t:?} is not supported yet"))
        }
        _ => Err(format!("matches none of the enum values, got {v}")),
    })
    .unwrap_or_default()
}

fn scheme(o: &mut Obj<'_, '_>) -> Scheme {
    o.opt("scheme", |v| match v.as_str() {
        Some("http") => Ok(Scheme::Http),
        Some("https") => Ok(Scheme::Https),
        Some(s @ ("grpc" | "grpcs" | "tcp" | "tls" | "udp" | "kafka")) => {
            Err(format!("scheme {s:?} is not supported yet"))
        }
        _ => Err(format!("matches none of the enum values, got {v}")),
    })
    .unwrap_or_default()
}

fn pass_host(o: &mut Obj<'_, '_>) -> PassHost {
    let upstream_host = o.opt_str("upstream_host", &HOST);
    let mode = o.opt("pass_host", |v| match v.as_str() {
        Some(m @ ("pass" | "node" | "rewrite")) => Ok(m),
        _ => Err(format!("matches none of the enum values, got {v}")),
    });
    match mode {
        Some("node") => PassHost::Node,
        Some("rewrite") => match upstream_host {
            Some(h) if !h.is_empty() => PassHost::Rewrite(h.to_owned()),
            // A bad `upstream_host` was reported already.
            _ if o.has("upstream_host") => PassHost::Pass,
            _ => {
                o.err
                    .push("`upstream_host` can't be empty when `pass_host` is `rewrite`");
                PassHost::Pass
            }
        },
        _ => PassHost::Pass,
    }
}

/// `timeout`: APISIX requires all three of `connect`, `send` and `read` once the object is given,
/// and does not close it to other keys.
fn timeout(o: &mut Obj<'_, '_>) -> UpstreamTimeout {
    let mut t = UpstreamTimeout::default();
    if let Some(mut c) = o.child("timeout") {
        for (name, slot) in [
            ("connect", &mut t.connect),
            ("send", &mut t.send),
            ("read", &mut t.read),
        ] {
            if c.req(name).is_some() {
                if let Some(d) = c.opt_secs(name, Min::GreaterThan(0.0)) {
                    *slot = d;
                }
            }
        }
    }
    t
}

/// `keepalive_pool`: each field optional. APISIX does not close this object to other keys.
fn keepalive_pool(o: &mut Obj<'_, '_>) -> KeepalivePool {
    let mut pool = KeepalivePool::default();
    if let Some(mut c) = o.child("keepalive_pool") {
        let max = Some(i64::from(u32::MAX));
        if let Some(size) = c.opt_int("size", Some(1), max) {
            pool.size = size as u32;
        }
        if let Some(idle) = c.opt_secs("idle_timeout", Min::AtLeast(0.0)) {
            pool.idle_timeout = idle;
        }
        if let Some(requests) = c.opt_int("requests", Some(1), max) {
            pool.requests = requests as u32;
        }
    }
    pool
}
