//! An upstream's `nodes`, in either of APISIX's two forms:
//!
//! - a map of address to weight: `{"127.0.0.1:1980": 1, "[::1]:8080": 2, "backend": 1}`;
//! - an array of objects: `[{"host": "127.0.0.1", "port": 1980, "weight": 1, "priority": 0}]`.
//!
//! A host is a DNS name, an IPv4 address or a bracketed IPv6 address (`[::1]`); a bare IPv6
//! address is refused as APISIX does, because `::1:80` could be read either way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::check::{as_int, Errors, Obj};

/// One upstream server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// A DNS name, an IPv4 address, or an IPv6 address in brackets (`[::1]`), as it goes into a
    /// `Host` header. No default: required.
    pub host: String,
    /// Defaults to the scheme's port (80 for `http`).
    pub port: u16,
    /// The share of requests, relative to the other nodes; 0 takes none. No default: required.
    pub weight: u32,
    /// Nodes of a lower priority are only tried when every higher one failed. Defaults to `0`.
    pub priority: i32,
}

impl Node {
    /// The host as an IP address, when it is one (brackets removed); `None` for a DNS name.
    pub fn ip(&self) -> Option<IpAddr> {
        let h = self.host.as_str();
        match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => h.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        }
    }
}

const BARE_IPV6: &str = "IPv6 address must be enclosed with '[' and ']'";

/// Checks a node host: a DNS name, an IPv4 address or a bracketed IPv6 address.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match v6.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("invalid IPv6 address {host:?}")),
        };
    }
    if host.parse::<Ipv6Addr>().is_ok() {
        return Err(BARE_IPV6.to_owned());
    }
    if host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host) {
        return Ok(());
    }
    Err(format!(
        "invalid host {host:?}: expected a DNS name or an IP address"
    ))
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63 bytes, 253 bytes in all, with an
/// optional final dot. (`_` is not in the DNS grammar but names such as `my_backend` resolve through
/// `/etc/hosts` and APISIX takes them.)
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn bad_addr(addr: &str) -> String {
    format!("invalid node address {addr:?}: expected host, host:port, [IPv6] or [IPv6]:port")
}

/// Splits a map key (`host`, `host:port`, `[v6]`, `[v6]:port`) into host and optional port.
fn parse_addr(addr: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if addr.starts_with('[') {
        match addr.find(']') {
            Some(end) => match &addr[end + 1..] {
                "" => (addr, None),
                rest => match rest.strip_prefix(':') {
                    Some(port) => (&addr[..=end], Some(port)),
                    None => return Err(bad_addr(addr)),
                },
            },
            None => return Err(bad_addr(addr)),
        }
    } else {
        // More than one colon: an IPv6 address without brackets.
        match addr.split_once(':') {
            None => (addr, None),
            Some((_, rest)) if rest.contains(':') => return Err(BARE_IPV6.to_owned()),
            Some((host, port)) => (host, Some(port)),
        }
    };
    check_host(host)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u32>() {
            Ok(n @ 1..=65535) => Some(n as u16),
            Ok(n) => return Err(format!("invalid port {n}")),
            Err(_) => return Err(bad_addr(addr)),
        },
    };
    Ok((host, port))
}

fn weight(v: &Value) -> Result<u32, String> {
    as_int(v, Some(0), Some(i64::from(u32::MAX))).map(|w| w as u32)
}

/// Parses `nodes` in either form; `default_port` fills in a missing port. Problems are reported
/// under `err` (the path of `nodes`); `None` if there was any.
pub(crate) fn parse_nodes(v: &Value, default_port: u16, mut err: Errors<'_>) -> Option<Vec<Node>> {
    let before = err.count();
    let mut nodes = Vec::new();
    match v {
        Value::Object(map) => {
            for (addr, w) in map {
                let mut err = err.key(addr);
                let parsed = parse_addr(addr).and_then(|hp| weight(w).map(|w| (hp, w)));
                match parsed {
                    Ok(((host, port), weight)) => nodes.push(Node {
                        host: host.to_owned(),
                        port: port.unwrap_or(default_port),
                        weight,
                        priority: 0,
                    }),
                    Err(msg) => err.push(msg),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(node) = parse_node_object(item, default_port, err.index(i)) {
                    nodes.push(node);
                }
            }
        }
        other => err.push(format!(
            "wrong type: expected object or array, got {}",
            super::check::type_name(other)
        )),
    }
    (err.count() == before).then_some(nodes)
}

/// One node of the array form. APISIX's schema does not close this object (nodes may carry a
/// `metadata` object, for instance), so other keys are ignored.
fn parse_node_object(item: &Value, default_port: u16, err: Errors<'_>) -> Option<Node> {
    let mut o = Obj::new(item, err)?;
    let before = o.err.count();
    let host = o.req("host").and_then(|_| {
        o.opt("host", |v| {
            let h = v.as_str().ok_or_else(|| {
                format!(
                    "wrong type: expected string, got {}",
                    super::check::type_name(v)
                )
            })?;
            check_host(h).map(|()| h)
        })
    });
    let port = o.opt_int("port", Some(1), Some(65535));
    let weight = o.req("weight").and_then(|_| o.opt("weight", weight));
    let priority = o.opt_int(
        "priority",
        Some(i64::from(i32::MIN)),
        Some(i64::from(i32::MAX)),
    );
    o.opt_object("metadata");
    if o.err.count() > before {
        return None;
    }
    Some(Node {
        host: host?.to_owned(),
        port: port.map_or(default_port, |p| p as u16),
        weight: weight?,
        priority: priority.map_or(0, |p| p as i32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nodes(v: Value) -> Result<Vec<Node>, Vec<String>> {
        let mut out = Vec::new();
        let mut root = Errors::root(&mut out);
        let parsed = parse_nodes(&v, 80, root.child("nodes"));
        parsed.ok_or(out)
    }

    fn node(host: &str, port: u16, weight: u32) -> Node {
        Node {
            host: host.into(),
            port,
            weight,
            priority: 0,
        }
    }

    #[test]
    fn map_form() {
        let got = nodes(json!({"127.0.0.1:1980": 1, "[::1]:8080": 2, "backend": 0, "[::2]": 3}))
            .expect("valid");
        assert_eq!(
            got,
            [
                node("127.0.0.1", 1980, 1),
                node("[::1]", 8080, 2),
                node("[::2]", 80, 3),
                node("backend", 80, 0),
            ]
        );
        assert_eq!(got[1].ip(), Some("::1".parse().expect("an address")));
        assert_eq!(got[3].ip(), None);
        assert_eq!(nodes(json!({})), Ok(vec![]));
    }

    #[test]
    fn map_form_errors() {
        let errs = nodes(json!({
            "a:0": 1, "a:70000": 1, "a:x": 1, "::1": 1, "http://a": 1, "a b": 1, "b": -1, "c": "1"
        }))
        .expect_err("invalid");
        assert_eq!(
            errs,
            [
                "nodes[\"::1\"]: IPv6 address must be enclosed with '[' and ']'",
                "nodes[\"a b\"]: invalid host \"a b\": expected a DNS name or an IP address",
                "nodes[\"a:0\"]: invalid port 0",
                "nodes[\"a:70000\"]: invalid port 70000",
                "nodes[\"a:x\"]: invalid node address \"a:x\": expected host, host:port, [IPv6] or [IPv6]:port",
                "nodes[\"b\"]: expected -1 to be at least 0",
                "nodes[\"c\"]: wrong type: expected integer, got string",
                "nodes[\"http://a\"]: invalid node address \"http://a\": expected host, host:port, [IPv6] or [IPv6]:port",
            ]
        );
    }

    #[test]
    fn array_form() {
        let got = nodes(json!([
            {"host": "a.example.com", "port": 8080, "weight": 1, "priority": -1, "metadata": {}},
            {"host": "[::1]", "weight": 5}
        ]))
        .expect("valid");
        assert_eq!(
            got,
            [
                Node {
                    priority: -1,
                    ..node("a.example.com", 8080, 1)
                },
                node("[::1]", 80, 5)
            ]
        );
    }

    #[test]
    fn array_form_errors() {
        let errs = nodes(json!([
            {"port": 0},
            {"host": "::1", "weight": 1},
            {"host": "a/b", "weight": 1.5},
            "x"
        ]))
        .expect_err("invalid");
        assert_eq!(
            errs,
            [
                "nodes[0]: property \"host\" is required",
                "nodes[0]: property \"port\" validation failed: expected 0 to be at least 1",
                "nodes[0]: property \"weight\" is required",
                "nodes[1]: property \"host\" validation failed: IPv6 address must be enclosed with '[' and ']'",
                "nodes[2]: property \"host\" validation failed: invalid host \"a/b\": expected a DNS name or an IP address",
                "nodes[2]: property \"weight\" validation failed: wrong type: expected integer, got number",
                "nodes[3]: wrong type: expected object, got string",
            ]
        );
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_name("a.b-c.d_e."));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name(&"a".repeat(64)));
        assert!(!is_dns_name(""));
    }
}
