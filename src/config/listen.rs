//! Listen addresses (`node_listen`, `ssl_listen`, `deployment.admin.admin_listen`) in every form
//! APISIX users write them: `"ip:port"`, a bare port (every IPv4 interface), or `{ip, port}`
//! objects, alone or in a list.
//!
//! - [`Listens`], [`Listen`], [`RawListenObject`]: the raw forms, part of the `Raw*` mirror.
//! - [`listens`], [`listen`]: their validation into `SocketAddr`s, errors at `path[i]`.
//! - [`duplicate_listeners`]: no two listeners may share an address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::raw::Field;
use super::validate::Problems;
use super::AdminConfig;

/// `node_listen` / `ssl_listen`: one address or a list of them.
pub(super) enum Listens {
    One(Field<Listen>),
    Many(Vec<Field<Listen>>),
}

impl<'de> Deserialize<'de> for Listens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let field = |v| Field::deserialize(v).expect("Field<Listen> keeps every error");
        Ok(match value {
            Value::Sequence(items) => Listens::Many(items.into_iter().map(field).collect()),
            one => Listens::One(field(one)),
        })
    }
}

/// One listen address in any of APISIX's forms.
pub(super) enum Listen {
    /// `9080`: every IPv4 interface.
    Port(u64),
    /// `"ip:port"`, IPv6 as `"[::]:9080"`.
    Addr(String),
    /// `{ip: ..., port: ...}`; `ip` defaults to `0.0.0.0`.
    Object(RawListenObject),
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Number(n) => n
                .as_u64()
                .map(Listen::Port)
                .ok_or_else(|| D::Error::custom(format_args!("port must be 0 to 65535, not {n}"))),
            Value::String(s) => Ok(Listen::Addr(s)),
            Value::Mapping(_) => RawListenObject::deserialize(value)
                .map(Listen::Object)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected `ip:port`, a port number or `{ip, port}`",
            )),
        }
    }
}

/// APISIX's `{ip, port}` listen object.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "an `{ip, port}` mapping")]
pub(super) struct RawListenObject {
    /// Defaults to `0.0.0.0`.
    pub ip: Field<String>,
    /// Required: no default.
    pub port: Field<u16>,
    /// APISIX's HTTP/2 switch; only `false` is accepted. Defaults to `false`.
    pub enable_http2: Field<bool>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawListenObject {
    pub const FIELDS: &'static [&'static str] = &["ip", "port", "enable_http2"];
}

/// `node_listen` / `ssl_listen` in any of their forms; a list's items are checked one by one.
pub(super) fn listens(
    p: &mut Problems,
    path: &str,
    field: Field<Listens>,
    default: SocketAddr,
) -> Option<Vec<SocketAddr>> {
    let items = match field {
        Field::Missing => return Some(vec![default]),
        Field::Invalid(e) => {
            p.push(path, e);
            return None;
        }
        Field::Present(Listens::One(one)) => return listen(p, path, one).map(|a| vec![a]),
        Field::Present(Listens::Many(items)) => items,
    };
    let count = items.len();
    let addrs: Vec<SocketAddr> = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| listen(p, &format!("{path}[{i}]"), item))
        .collect();
    (addrs.len() == count).then_some(addrs)
}

/// One listen address; the `{ip, port}` form's `ip` defaults to every IPv4 interface, as in
/// APISIX. A missing value (`null`) is an error here: a listen address has no default.
pub(super) fn listen(p: &mut Problems, path: &str, field: Field<Listen>) -> Option<SocketAddr> {
    let missing = "expected `ip:port`, a port number or `{ip, port}`, not null";
    match p.required(path, field, missing, Ok)? {
        Listen::Port(port) => match u16::try_from(port) {
            Ok(port) => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
            Err(_) => {
                p.push(path, format_args!("port must be 0 to 65535, not {port}"));
                None
            }
        },
        Listen::Addr(s) => match s.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let hint = "IPv6 as `[::]:9080`; no host names";
                p.push(path, format_args!("`{s}` is not `ip:port` ({hint})"));
                None
            }
        },
        Listen::Object(o) => listen_object(p, path, o),
    }
}

fn listen_object(p: &mut Problems, path: &str, o: RawListenObject) -> Option<SocketAddr> {
    p.unknown(path, &o.unknown, RawListenObject::FIELDS);
    let ip = p.check(
        &format!("{path}.ip"),
        o.ip,
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |s| {
            let bare = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
            bare.unwrap_or(&s)
                .parse()
                .map_err(|_| format!("`{s}` is not an IP address"))
        },
    );
    let port = p.required(&format!("{path}.port"), o.port, "required", Ok);
    p.check(&format!("{path}.enable_http2"), o.enable_http2, (), |on| {
        if on {
            Err("HTTP/2 is not supported; remove this setting or set it to false".to_owned())
        } else {
            Ok(())
        }
    })?;
    Some(SocketAddr::new(ip?, port?))
}

/// Every proxy and Admin API address must be distinct (port 0, "any free port", excepted).
pub(super) fn duplicate_listeners(
    p: &mut Problems,
    node: &[SocketAddr],
    ssl: &[SocketAddr],
    admin: &AdminConfig,
) {
    let indexed = |name: &str, list: &[SocketAddr]| {
        list.iter()
            .enumerate()
            .map(|(i, a)| (format!("{name}[{i}]"), *a))
            .collect::<Vec<_>>()
    };
    let mut all = indexed("node_listen", node);
    all.extend(indexed("ssl_listen", ssl));
    if admin.enabled {
        all.push(("deployment.admin.admin_listen".to_owned(), admin.listen));
    }
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    for (path, addr) in all {
        if addr.port() == 0 {
            continue;
        }
        if let Some(first) = seen.get(&addr) {
            p.push(&path, format_args!("`{addr}` is already used by {first}"));
        } else {
            seen.insert(addr, path);
        }
    }
}
