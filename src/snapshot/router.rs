//! The route matcher: compiled once per config change into hash tables, so finding a request's
//! route costs a few hash probes however many routes there are, and never allocates.
//!
//! Semantics are those of APISIX's default `radixtree_host_uri` router:
//!
//! 1. Host groups, in order: routes listing the request's host exactly, then routes with a
//!    wildcard host that matches (longest suffix first), then routes with no hosts. A route with
//!    no hosts of its own is given its service's hosts by the caller.
//! 2. Within a group: routes with the exact path first, then prefixes, longest first.
//! 3. Among routes on the same pattern: higher `priority` first, then the order of definition.
//! 4. The first of those whose method list admits the request's method wins; one that does not
//!    makes way for the next candidate, through all the groups.
//!
//! Layout: a [`HostMap`] from host (or wildcard suffix) to a [`UriTable`]; a `UriTable` holds a
//! map for exact paths and one for prefixes, plus the distinct prefix lengths, longest first, so a
//! lookup probes `path[..len]` for each length. Each entry is a short list of candidates, already
//! in order, with the route's methods as a bitmask.
//!
//! Paths and hosts are compared as given: the caller passes the path without its query, decoded
//! and normalised the way it wants routes to see it, and the host without its port.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use http::Method;

use crate::model::{HostPattern, UriPattern};

#[cfg(test)]
mod tests;

/// What the router needs of one route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSpec {
    /// The paths matched; a route with none never matches. Defaults to empty.
    pub uris: Vec<UriPattern>,
    /// The hosts matched; empty matches any host. A route with no hosts of its own inherits its
    /// service's: the caller passes the hosts in effect. Defaults to empty.
    pub hosts: Vec<HostPattern>,
    /// The methods matched; empty matches any. Defaults to empty.
    pub methods: Vec<Method>,
    /// Breaks ties between routes on the same uri pattern: higher first. Defaults to `0`.
    pub priority: i64,
}

/// The compiled routes. Immutable; rebuilt from scratch on a config change.
#[derive(Debug)]
pub struct Router {
    exact_hosts: HostMap<UriTable>,
    wildcard_hosts: HostMap<UriTable>,
    /// Distinct lengths of the wildcard suffixes, longest first.
    wildcard_lens: Box<[usize]>,
    any_host: UriTable,
    /// The method lists of routes that name a method outside [`METHOD_BITS`], for the rare request
    /// that uses one; empty for every other route.
    odd_methods: Box<[Box<[Method]>]>,
}

impl Router {
    /// Compiles `specs`; the route index [`Router::find`] returns is the position in `specs`.
    /// Leave out disabled routes (keeping your own map of indices), or they will match.
    pub fn build(specs: &[RouteSpec]) -> Router {
        assert!(
            u32::try_from(specs.len()).is_ok(),
            "a router holds at most u32::MAX routes"
        );
        let mut exact: HashMap<String, TableBuilder> = HashMap::new();
        let mut wildcard: HashMap<String, TableBuilder> = HashMap::new();
        let mut any = TableBuilder::default();
        let mut odd_methods = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let cand = Candidate {
                route: index as u32,
                methods: method_mask(&spec.methods),
            };
            let odd = spec.methods.iter().any(|m| method_bit(m) == OTHER);
            odd_methods.push(if odd {
                spec.methods.clone().into_boxed_slice()
            } else {
                Box::default()
            });
            if spec.hosts.is_empty() {
                any.add(spec, cand);
            }
            for host in &spec.hosts {
                let (map, key) = match host {
                    HostPattern::Exact(h) => (&mut exact, h),
                    HostPattern::Wildcard(suffix) => (&mut wildcard, suffix),
                };
                map.entry(key.to_ascii_lowercase())
                    .or_default()
                    .add(spec, cand);
            }
        }
        let mut wildcard_lens: Vec<usize> = wildcard.keys().map(String::len).collect();
        wildcard_lens.sort_unstable_by(|a, b| b.cmp(a));
        wildcard_lens.dedup();
        Router {
            exact_hosts: HostMap::build(exact),
            wildcard_hosts: HostMap::build(wildcard),
            wildcard_lens: wildcard_lens.into(),
            any_host: any.build(),
            odd_methods: odd_methods.into(),
        }
    }

    /// The index of the route for a request, if any.
    ///
    /// `host`: the request's host without its port, in any case (`None` when it has none, which
    /// only routes without hosts match). `path`: the path part of the target, without the query.
    pub fn find(&self, host: Option<&[u8]>, path: &[u8], method: &Method) -> Option<usize> {
        let m = MethodQuery {
            bit: method_bit(method),
            method,
            odd: &self.odd_methods,
        };
        if let Some(host) = host {
            if let Some(found) = self
                .exact_hosts
                .get(host)
                .and_then(|table| table.find(path, &m))
            {
                return Some(found);
            }
            for &len in self.wildcard_lens.iter() {
                let Some(tail) = host.len().checked_sub(len).map(|start| &host[start..]) else {
                    continue;
                };
                if let Some(found) = self
                    .wildcard_hosts
                    .get(tail)
                    .and_then(|table| table.find(path, &m))
                {
                    return Some(found);
                }
            }
        }
        self.any_host.find(path, &m)
    }
}

/// One route under one pattern.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    route: u32,
    methods: u16,
}

/// The request's method, as the candidates test it.
struct MethodQuery<'a> {
    bit: u16,
    method: &'a Method,
    odd: &'a [Box<[Method]>],
}

impl MethodQuery<'_> {
    fn admits(&self, c: &Candidate) -> bool {
        if c.methods & self.bit == 0 {
            return false;
        }
        // The bit of any method outside the list is shared: check the route's own list, unless
        // the route takes every method.
        self.bit != OTHER || c.methods == ANY || self.odd[c.route as usize].contains(self.method)
    }
}

/// The methods APISIX allows in a route, one bit each; every other method shares [`OTHER`].
const METHOD_BITS: [(Method, u16); 9] = [
    (Method::GET, 1),
    (Method::POST, 1 << 1),
    (Method::PUT, 1 << 2),
    (Method::DELETE, 1 << 3),
    (Method::PATCH, 1 << 4),
    (Method::HEAD, 1 << 5),
    (Method::OPTIONS, 1 << 6),
    (Method::CONNECT, 1 << 7),
    (Method::TRACE, 1 << 8),
];
const PURGE: u16 = 1 << 9;
const OTHER: u16 = 1 << 15;
const ANY: u16 = u16::MAX;

fn method_bit(m: &Method) -> u16 {
    for (known, bit) in &METHOD_BITS {
        if m == known {
            return *bit;
        }
    }
    if m.as_str() == "PURGE" {
        PURGE
    } else {
        OTHER
    }
}

fn method_mask(methods: &[Method]) -> u16 {
    if methods.is_empty() {
        ANY
    } else {
        methods.iter().fold(0, |mask, m| mask | method_bit(m))
    }
}

/// The paths of one host group.
#[derive(Debug, Default)]
struct UriTable {
    exact: HashMap<Box<[u8]>, Box<[Candidate]>>,
    prefix: HashMap<Box<[u8]>, Box<[Candidate]>>,
    /// Distinct lengths of the prefixes, longest first.
    prefix_lens: Box<[usize]>,
}

impl UriTable {
    fn find(&self, path: &[u8], m: &MethodQuery<'_>) -> Option<usize> {
        let first =
            |cands: &[Candidate]| cands.iter().find(|c| m.admits(c)).map(|c| c.route as usize);
        if let Some(found) = self.exact.get(path).and_then(|c| first(c)) {
            return Some(found);
        }
        for &len in self.prefix_lens.iter() {
            let Some(head) = path.get(..len) else {
                continue;
            };
            if let Some(found) = self.prefix.get(head).and_then(|c| first(c)) {
                return Some(found);
            }
        }
        None
    }
}

/// A [`UriTable`] being filled: candidates with their priority, not yet in order.
#[derive(Default)]
struct TableBuilder {
    exact: HashMap<String, Vec<(i64, Candidate)>>,
    prefix: HashMap<String, Vec<(i64, Candidate)>>,
}

impl TableBuilder {
    fn add(&mut self, spec: &RouteSpec, cand: Candidate) {
        for uri in &spec.uris {
            let (map, path) = match uri {
                UriPattern::Exact(p) => (&mut self.exact, p),
                UriPattern::Prefix(p) => (&mut self.prefix, p),
            };
            map.entry(path.clone())
                .or_default()
                .push((spec.priority, cand));
        }
    }

    fn build(self) -> UriTable {
        fn finish(
            map: HashMap<String, Vec<(i64, Candidate)>>,
        ) -> HashMap<Box<[u8]>, Box<[Candidate]>> {
            map.into_iter()
                .map(|(path, mut cands)| {
                    // Higher priority first, then definition order; a route listed twice (the
                    // same uri under two hosts of one group) is kept once.
                    cands.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then(a.route.cmp(&b.route)));
                    cands.dedup_by_key(|(_, c)| c.route);
                    let cands: Box<[Candidate]> = cands.into_iter().map(|(_, c)| c).collect();
                    (path.into_bytes().into_boxed_slice(), cands)
                })
                .collect()
        }
        let mut prefix_lens: Vec<usize> = self.prefix.keys().map(String::len).collect();
        prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
        prefix_lens.dedup();
        UriTable {
            exact: finish(self.exact),
            prefix: finish(self.prefix),
            prefix_lens: prefix_lens.into(),
        }
    }
}

/// A map keyed by host, looked up in any case without allocating: keys are stored in lower case
/// under a hash of their lower-case bytes, and a lookup hashes the request's host the same way,
/// a chunk at a time on the stack.
#[derive(Debug)]
struct HostMap<T> {
    state: RandomState,
    buckets: HashMap<u64, Bucket<T>, BuildHasherDefault<HashIsKey>>,
}

/// The hosts that share a hash (nearly always one), each with its value.
type Bucket<T> = Vec<(Box<[u8]>, T)>;

impl HostMap<UriTable> {
    fn build(tables: HashMap<String, TableBuilder>) -> Self {
        let mut map = HostMap {
            state: RandomState::new(),
            buckets: HashMap::default(),
        };
        for (host, table) in tables {
            let hash = map.hash(host.as_bytes());
            map.buckets
                .entry(hash)
                .or_default()
                .push((host.into_bytes().into_boxed_slice(), table.build()));
        }
        map
    }
}

impl<T> HostMap<T> {
    fn hash(&self, host: &[u8]) -> u64 {
        let mut hasher = self.state.build_hasher();
        let mut buf = [0u8; 64];
        for chunk in host.chunks(buf.len()) {
            let lower = &mut buf[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            hasher.write(lower);
        }
        hasher.write_usize(host.len());
        hasher.finish()
    }

    fn get(&self, host: &[u8]) -> Option<&T> {
        if self.buckets.is_empty() {
            return None;
        }
        self.buckets
            .get(&self.hash(host))?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(host))
            .map(|(_, t)| t)
    }
}

/// Hashes a `u64` key to itself: the keys of [`HostMap::buckets`] are already random hashes.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
