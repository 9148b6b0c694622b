//! Compiling a validated [`ConfigSet`] into the immutable [`Snapshot`] the workers read.
//!
//! Done once per config change on the control thread, never per request: service and upstream
//! references are resolved, node host names are looked up in DNS, the router is built, and each
//! upstream object becomes one shared [`UpstreamTarget`] (routes naming the same upstream share
//! it, so they share its balancer position and its pooled connections).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::consumers::ConsumerIndex;
use crate::model::{ConfigSet, KeepalivePool, PassHost, Scheme, Upstream};
use crate::plugins::Chain;
use crate::proxy::tls::TlsTarget;
use crate::tls::SniTable;

use super::router::{RouteSpec, Router};

/// The compiled view of the whole configuration.
pub struct Snapshot {
    /// Finds the route for a request; its result indexes `routes`.
    pub router: Router,
    /// Enabled routes, in the order the router was built with.
    pub routes: Vec<RouteEntry>,
    /// Consumers and their credentials. Shared (not copied) between the snapshots the Admin
    /// API publishes, and updated in place; a standalone reload builds a new one.
    pub consumers: Arc<ConsumerIndex>,
    /// Server name → certificate for TLS handshakes, from the enabled ssl objects.
    pub tls: SniTable,
}

impl Snapshot {
    /// A snapshot with no routes: every request gets `404 Route Not Found`.
    pub fn empty() -> Snapshot {
        Snapshot {
            router: Router::build(&[]),
            routes: Vec::new(),
            consumers: Arc::new(ConsumerIndex::new()),
            tls: SniTable::default(),
        }
    }
}

/// One enabled route, ready for the request path.
pub struct RouteEntry {
    /// The route's id, for logs and the `route_id` variable.
    pub id: Arc<str>,
    /// The route's service id (the `service_id` variable).
    pub service_id: Option<Arc<str>>,
    /// Where matching requests go.
    pub upstream: Arc<UpstreamTarget>,
    /// Plugins to run, global rules and service plugins merged in.
    pub chain: Arc<Chain>,
}

/// An upstream with its nodes resolved to socket addresses.
pub struct UpstreamTarget {
    /// `upstreams/{id}`, `services/{id}` or `routes/{id}` (inline upstream), for logs.
    pub name: String,
    /// Nodes with a weight above zero, in configuration order.
    pub nodes: Vec<Target>,
    /// How the `Host` header is sent upstream.
    pub pass_host: PassHost,
    /// TLS to the nodes (`scheme: https`); `None` for plain HTTP.
    pub tls: Option<TlsTarget>,
    /// Timeout to establish a connection to one node.
    pub connect_timeout: Duration,
    /// Timeout for one write to the upstream to make progress.
    pub send_timeout: Duration,
    /// Timeout for one read from the upstream to make progress.
    pub read_timeout: Duration,
    /// How many other nodes to try after a connection failure.
    pub retries: u32,
    /// Overall time budget for those retries (`None`: no limit).
    pub retry_timeout: Option<Duration>,
    /// Idle connection pool settings for this upstream.
    pub keepalive: KeepalivePool,
}

/// One upstream node.
pub struct Target {
    /// The resolved address; `None` when the host name did not resolve (requests get 502).
    pub addr: Option<SocketAddr>,
    /// The `Host` value for `pass_host: node`: the node's host, with `:port` unless it is the
    /// scheme's default (80, or 443 for `https`).
    pub host_header: String,
    /// Smooth weighted round-robin weight (always > 0 here).
    pub weight: u32,
}

/// Why a configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A reference names an object that does not exist (the validator normally catches these).
    #[error("{0}")]
    Dangling(String),
    /// A plugin configuration does not compile (the validator normally catches these).
    #[error("{0}")]
    Plugin(String),
}

/// Compiles `set` into a snapshot. Host names that do not resolve are logged and leave their
/// node unusable rather than failing the whole configuration: DNS can come back, a rejected
/// config would not.
pub fn compile(set: &ConfigSet, consumers: Arc<ConsumerIndex>) -> Result<Snapshot, CompileError> {
    let mut by_id: HashMap<&str, Arc<UpstreamTarget>> = HashMap::new();
    for up in &set.upstreams {
        if let Some(id) = up.id.as_deref() {
            by_id.insert(id, Arc::new(target(up, format!("upstreams/{id}"))));
        }
    }
    let services: HashMap<&str, _> = set.services.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut service_upstreams: HashMap<&str, Arc<UpstreamTarget>> = HashMap::new();
    for svc in &set.services {
        let up = match (&svc.upstream, svc.upstream_id.as_deref()) {
            (Some(inline), _) => Some(Arc::new(target(inline, format!("services/{}", svc.id)))),
            (None, Some(uid)) => by_id.get(uid).cloned(),
            (None, None) => None,
        };
        if let Some(up) = up {
            service_upstreams.insert(svc.id.as_str(), up);
        }
    }

    let global: Vec<(String, &serde_json::Map<String, serde_json::Value>)> = set
        .global_rules
        .iter()
        .map(|(id, plugins)| (format!("/apisix/global_rules/{id}"), plugins))
        .collect();
    let mut specs = Vec::new();
    let mut routes = Vec::new();
    for route in set.routes.iter().filter(|r| r.status) {
        let service = match route.service_id.as_deref() {
            Some(sid) => Some(*services.get(sid).ok_or_else(|| {
                CompileError::Dangling(format!("route {}: service_id {sid:?} not found", route.id))
            })?),
            None => None,
        };
        let upstream = match (&route.upstream, route.upstream_id.as_deref()) {
            (Some(inline), _) => Arc::new(target(inline, format!("routes/{}", route.id))),
            (None, Some(uid)) => by_id.get(uid).cloned().ok_or_else(|| {
                CompileError::Dangling(format!("route {}: upstream_id {uid:?} not found", route.id))
            })?,
            (None, None) => service
                .and_then(|s| service_upstreams.get(s.id.as_str()).cloned())
                .ok_or_else(|| {
                    CompileError::Dangling(format!("route {}: no upstream", route.id))
                })?,
        };
        let hosts = if route.hosts.is_empty() {
            service.map(|s| s.hosts.clone()).unwrap_or_default()
        } else {
            route.hosts.clone()
        };
        specs.push(RouteSpec {
            uris: route.uris.clone(),
            hosts,
            methods: route.methods.clone(),
            priority: route.priority,
        });
        let mut layers = Vec::with_capacity(2);
        if let Some(s) = service {
            layers.push((format!("/apisix/services/{}", s.id), &s.plugins));
        }
        layers.push((format!("/apisix/routes/{}", route.id), &route.plugins));
        let chain = Chain::compile(&global, &layers)
            .map_err(|e| CompileError::Plugin(format!("route {}: {e}", route.id)))?;
        routes.push(RouteEntry {
            id: Arc::from(route.id.as_str()),
            service_id: route.service_id.as_deref().map(Arc::from),
            upstream,
            chain,
        });
    }
    Ok(Snapshot {
        router: Router::build(&specs),
        routes,
        consumers,
        tls: SniTable::build(&set.ssls),
    })
}

fn target(up: &Upstream, name: String) -> UpstreamTarget {
    let nodes: Vec<Target> = up
        .nodes
        .iter()
        .filter(|n| n.weight > 0)
        .map(|n| Target {
            addr: resolve(&n.host, n.port, &name),
            host_header: if n.port == up.scheme.default_port() {
                n.host.clone()
            } else if n.host.contains(':') {
                format!("[{}]:{}", n.host.trim_matches(['[', ']']), n.port)
            } else {
                format!("{}:{}", n.host, n.port)
            },
            weight: n.weight,
        })
        .collect();
    let tls = match up.scheme {
        Scheme::Http => None,
        Scheme::Https => {
            if !up.tls.verify() {
                warn_unverified(&name);
            }
            Some(TlsTarget::new(up.tls.verify(), up.tls.client_cert.clone()))
        }
    };
    let retries = up
        .retries
        .unwrap_or_else(|| nodes.len().saturating_sub(1) as u32);
    UpstreamTarget {
        name,
        retries,
        retry_timeout: up.retry_timeout.filter(|d| !d.is_zero()),
        nodes,
        pass_host: up.pass_host.clone(),
        tls,
        connect_timeout: up.timeout.connect,
        send_timeout: up.timeout.send,
        read_timeout: up.timeout.read,
        keepalive: up.keepalive_pool,
    }
}

/// Logs, once per upstream for the life of the process (not at every recompilation), that its
/// nodes' certificates are not checked.
fn warn_unverified(upstream: &str) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // Control thread only; a poisoned lock just means warning again.
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(upstream.to_owned())
    {
        tracing::warn!(
            upstream,
            "tls.verify is false: the certificates of this upstream's nodes are not checked, so \
             anyone who can intercept the connection can read and change its traffic"
        );
    }
}

/// Resolves a node, preferring IPv4 (`localhost` resolves to both on most systems and most
/// local servers listen on 127.0.0.1 only).
fn resolve(host: &str, port: u16, upstream: &str) -> Option<SocketAddr> {
    let bare = host.trim_matches(['[', ']']);
    match (bare, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let found = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied();
            if found.is_none() {
                tracing::warn!(upstream, host, "node host has no address");
            }
            found
        }
        Err(e) => {
            tracing::warn!(upstream, host, error = %e, "cannot resolve node host");
            None
        }
    }
}
