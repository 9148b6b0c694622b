//! `RawNodeConfig` → [`NodeConfig`]: checks every setting and collects every problem, each as
//! `field.path: message`, before failing.
//!
//! Each check yields `None` after recording its problem, so that checks across settings (say,
//! duplicate listen addresses) only compare values that are themselves valid.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use serde_norway::Mapping;

use super::listen::{duplicate_listeners, listen, listens};
use super::raw::{
    Field, RawAdmin, RawAdminKey, RawDataEncryption, RawDeployment, RawKeyring, RawLimits,
    RawNodeConfig, RawTimeouts, Seconds, Secret,
};
use super::{
    compat, default_admin_allow, AdminConfig, AdminKey, AdminRole, Cidr, ConfigError,
    DataEncryption, IoDriver, KeyringKey, Limits, NodeConfig, Timeouts, TrustedCa,
    DEFAULT_ADMIN_LISTEN, DEFAULT_DATA_DIR, DEFAULT_NODE_LISTEN, DEFAULT_SERVER_HEADER,
    DEFAULT_SSL_LISTEN,
};

/// The most workers a node may be configured with.
const MAX_WORKERS: usize = 1024;
/// The longest any timeout may be, so that deadlines stay far from `Instant` overflow.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// The bounds of `limits.max_header_bytes`: below the lower one ordinary browser requests with
/// cookies do not fit; the upper one bounds the per-connection head buffer.
const HEADER_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=1024 * 1024;
/// The bounds of `limits.max_headers`, which sizes a per-request header table.
const HEADERS_RANGE: std::ops::RangeInclusive<usize> = 1..=1024;
const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
/// The keyring key APISIX ships in its default config: published, so it protects nothing.
const APISIX_DEFAULT_KEYRING_KEY: &str = "qeddd145sfvddff3";

impl TryFrom<RawNodeConfig> for NodeConfig {
    type Error = ConfigError;

    /// Validates every setting; relative paths are left relative (see [`NodeConfig::from_yaml`]).
    fn try_from(raw: RawNodeConfig) -> Result<NodeConfig, ConfigError> {
        let mut p = Problems::default();
        p.unknown("", &raw.unknown, RawNodeConfig::FIELDS);

        let node_listen = listens(&mut p, "node_listen", raw.node_listen, DEFAULT_NODE_LISTEN);
        if node_listen.as_ref().is_some_and(|l| l.is_empty()) {
            p.push("node_listen", "must list at least one address");
        }
        let ssl_listen = listens(&mut p, "ssl_listen", raw.ssl_listen, DEFAULT_SSL_LISTEN);
        let fallback_sni = p.check("fallback_sni", raw.fallback_sni, None, |s| {
            crate::tls::sni::normalise_host(&s).map(Some)
        });
        let workers = p.check("workers", raw.workers, 0, |n| {
            if n > MAX_WORKERS {
                return Err(format!("must be at most {MAX_WORKERS} (0 = one per core)"));
            }
            Ok(n)
        });
        let cpu_pinning = p.check("cpu_pinning", raw.cpu_pinning, false, Ok);
        let io_driver = p.check("io_driver", raw.io_driver, IoDriver::Auto, Ok);
        let data_dir = p.check("data_dir", raw.data_dir, DEFAULT_DATA_DIR.into(), path);
        let standalone = p.check("standalone", raw.standalone, None, |s| path(s).map(Some));
        let trusted_addresses = cidrs(&mut p, "trusted_addresses", raw.trusted_addresses, Vec::new);
        let server_header = p.check(
            "server_header",
            raw.server_header,
            DEFAULT_SERVER_HEADER.to_owned(),
            server_header,
        );
        let log_level = p.check("log_level", raw.log_level, "info".to_owned(), |level| {
            let lower = level.to_ascii_lowercase();
            if LOG_LEVELS.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "must be one of {}, not `{level}`",
                    LOG_LEVELS.join(", ")
                ))
            }
        });
        let jwt_cache_size = p.check("jwt_cache_size", raw.jwt_cache_size, 10_000, |n| {
            if n > 10_000_000 {
                return Err("must be at most 10000000 (0 disables the cache)".into());
            }
            Ok(n)
        });
        let jwt_es256_tables = p.check(
            "jwt_es256_tables",
            raw.jwt_es256_tables,
            crate::jwt::p256::DEFAULT_TABLES,
            |n| {
                if n > 100_000 {
                    return Err("must be at most 100000 (0 disables the tables)".into());
                }
                Ok(n)
            },
        );
        let ssl_trusted_certificate = p.check(
            "ssl_trusted_certificate",
            raw.ssl_trusted_certificate,
            TrustedCa::System,
            |s| match s.as_str() {
                "system" => Ok(TrustedCa::System),
                _ => path(s).map(TrustedCa::File),
            },
        );
        let timeouts = p
            .section("timeouts", raw.timeouts)
            .and_then(|t| timeouts(&mut p, t));
        let limits = p
            .section("limits", raw.limits)
            .and_then(|l| limits(&mut p, l));
        let admin = p
            .section("deployment", raw.deployment)
            .and_then(|d| deployment(&mut p, d));
        let data_encryption = p
            .section("data_encryption", raw.data_encryption)
            .and_then(|d| data_encryption(&mut p, d));

        if let (Some(node), Some(ssl), Some(admin)) = (&node_listen, &ssl_listen, &admin) {
            duplicate_listeners(&mut p, node, ssl, admin);
        }

        let (
            Some(node_listen),
            Some(ssl_listen),
            Some(fallback_sni),
            Some(workers),
            Some(cpu_pinning),
            Some(io_driver),
            Some(data_dir),
            Some(standalone),
            Some(trusted_addresses),
            Some(server_header),
            Some(log_level),
            Some(jwt_cache_size),
            Some(jwt_es256_tables),
            Some(timeouts),
            Some(limits),
            Some(admin),
            Some(data_encryption),
        ) = (
            node_listen,
            ssl_listen,
            fallback_sni,
            workers,
            cpu_pinning,
            io_driver,
            data_dir,
            standalone,
            trusted_addresses,
            server_header,
            log_level,
            jwt_cache_size,
            jwt_es256_tables,
            timeouts,
            limits,
            admin,
            data_encryption,
        )
        else {
            debug_assert!(!p.0.is_empty(), "a check yielded None without a problem");
            return Err(ConfigError::Invalid(p.0));
        };
        if !p.0.is_empty() {
            return Err(ConfigError::Invalid(p.0));
        }
        Ok(NodeConfig {
            path: None,
            node_listen,
            ssl_listen,
            fallback_sni,
            workers: resolve_workers(workers),
            cpu_pinning,
            io_driver,
            data_dir,
            standalone,
            trusted_addresses,
            server_header,
            log_level,
            jwt_cache_size,
            jwt_es256_tables,
            // `None` only after a problem was recorded, which returned above.
            ssl_trusted_certificate: ssl_trusted_certificate.unwrap_or_default(),
            timeouts,
            limits,
            admin,
            data_encryption,
        })
    }
}

/// `0` → one per core available to this process (CPU affinity and cgroup quota included).
fn resolve_workers(workers: usize) -> usize {
    if workers > 0 {
        return workers;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The problems found so far, each `path: message`.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn push(&mut self, path: &str, message: impl Display) {
        self.0.push(format!("{path}: {message}"));
    }

    /// The checked value of `field`, `default` if it is not set, or `None` (recorded) if it did
    /// not deserialize or `check` rejects it.
    pub(super) fn check<T, U>(
        &mut self,
        path: &str,
        field: Field<T>,
        default: U,
        check: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        match field {
            Field::Missing => Some(default),
            Field::Present(v) => check(v).map_err(|e| self.push(path, e)).ok(),
            Field::Invalid(e) => {
                self.push(path, e);
                None
            }
        }
    }

    /// Like [`Problems::check`] for a setting without a default: not set is the problem `missing`.
    pub(super) fn required<T, U>(
        &mut self,
        path: &str,
        field: Field<T>,
        missing: &str,
        check: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        if let Field::Missing = field {
            self.push(path, missing);
            return None;
        }
        self.check(path, field, None, |v| check(v).map(Some))
            .flatten()
    }

    /// A section or object: its raw settings (all unset if it is missing), or `None` (recorded).
    pub(super) fn section<T: Default>(&mut self, path: &str, field: Field<T>) -> Option<T> {
        self.check(path, field, T::default(), Ok)
    }

    /// Records each key of `unknown` (found under `prefix`) with the most helpful message.
    pub(super) fn unknown(&mut self, prefix: &str, unknown: &Mapping, expected: &[&str]) {
        for (key, value) in unknown {
            // Keys are strings: `RawNodeConfig::from_yaml` made them so.
            let key = key.as_str().unwrap_or("(a non-string key)");
            let path = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            match compat::hint(&path) {
                Some(hint) => {
                    self.push(&path, hint);
                    self.0.extend(compat::moved_settings(&path, value));
                }
                None => self.push(
                    &path,
                    format_args!("unknown field, expected one of `{}`", expected.join("`, `")),
                ),
            }
        }
    }
}

/// A relative or absolute path setting.
fn path(s: String) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(PathBuf::from(s))
}

/// A `Server` header value: visible ASCII and inner spaces (RFC 9110 field-value), or empty for
/// none.
fn server_header(value: String) -> Result<String, String> {
    let visible = |b: u8| b.is_ascii_graphic();
    if !value.bytes().all(|b| visible(b) || b == b' ' || b == b'\t') {
        return Err("must be printable ASCII (a header value)".to_owned());
    }
    if value.trim() != value {
        return Err("must not start or end with whitespace".to_owned());
    }
    Ok(value)
}

/// A list of CIDRs, checked one by one.
fn cidrs(
    p: &mut Problems,
    path: &str,
    field: Field<Vec<Field<String>>>,
    default: fn() -> Vec<Cidr>,
) -> Option<Vec<Cidr>> {
    let items = p.check(path, field, None, |items| Ok(Some(items)))?;
    let Some(items) = items else {
        return Some(default());
    };
    let count = items.len();
    let cidrs: Vec<Cidr> = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let path = format!("{path}[{i}]");
            let missing = "expected a CIDR like `10.0.0.0/8`, not null";
            p.required(&path, item, missing, |s| Cidr::parse(&s))
        })
        .collect();
    (cidrs.len() == count).then_some(cidrs)
}

fn timeouts(p: &mut Problems, raw: RawTimeouts) -> Option<Timeouts> {
    p.unknown("timeouts", &raw.unknown, RawTimeouts::FIELDS);
    let d = Timeouts::default();
    let mut secs = |name: &str, field: Field<Seconds>, default: Duration, zero_ok: bool| {
        p.check(&format!("timeouts.{name}"), field, default, |Seconds(s)| {
            let range_ok = if zero_ok { s >= 0.0 } else { s > 0.0 };
            if !(range_ok && s <= MAX_TIMEOUT_SECS) {
                let low = if zero_ok { "0 or more" } else { "more than 0" };
                return Err(format!(
                    "must be {low} and at most {MAX_TIMEOUT_SECS} seconds, not {s}"
                ));
            }
            let d = Duration::from_secs_f64(s);
            if d.is_zero() && !zero_ok {
                return Err(format!("must be more than 0 seconds, not {s}"));
            }
            Ok(d)
        })
    };
    let client_header = secs(
        "client_header_secs",
        raw.client_header_secs,
        d.client_header,
        false,
    );
    let client_body = secs(
        "client_body_secs",
        raw.client_body_secs,
        d.client_body,
        false,
    );
    let keepalive = secs("keepalive_secs", raw.keepalive_secs, d.keepalive, true);
    let send = secs("send_secs", raw.send_secs, d.send, false);
    let graceful_shutdown = secs(
        "graceful_shutdown_secs",
        raw.graceful_shutdown_secs,
        d.graceful_shutdown,
        false,
    );
    Some(Timeouts {
        client_header: client_header?,
        client_body: client_body?,
        keepalive: keepalive?,
        send: send?,
        graceful_shutdown: graceful_shutdown?,
    })
}

fn limits(p: &mut Problems, raw: RawLimits) -> Option<Limits> {
    p.unknown("limits", &raw.unknown, RawLimits::FIELDS);
    let d = Limits::default();
    let in_range = |range: std::ops::RangeInclusive<usize>| {
        move |n: usize| {
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(format!(
                    "must be {} to {}, not {n}",
                    range.start(),
                    range.end()
                ))
            }
        }
    };
    let max_header_bytes = p.check(
        "limits.max_header_bytes",
        raw.max_header_bytes,
        d.max_header_bytes,
        in_range(HEADER_BYTES_RANGE),
    );
    let max_headers = p.check(
        "limits.max_headers",
        raw.max_headers,
        d.max_headers,
        in_range(HEADERS_RANGE),
    );
    let max_body_bytes = p.check(
        "limits.max_body_bytes",
        raw.max_body_bytes,
        d.max_body_bytes,
        Ok,
    );
    let max_connections_per_worker = p.check(
        "limits.max_connections_per_worker",
        raw.max_connections_per_worker,
        d.max_connections_per_worker,
        Ok,
    );
    Some(Limits {
        max_header_bytes: max_header_bytes?,
        max_headers: max_headers?,
        max_body_bytes: max_body_bytes?,
        max_connections_per_worker: max_connections_per_worker?,
    })
}

fn deployment(p: &mut Problems, raw: RawDeployment) -> Option<AdminConfig> {
    p.unknown("deployment", &raw.unknown, RawDeployment::FIELDS);
    let role = p.check("deployment.role", raw.role, (), |role| {
        match role.as_str() {
            "traditional" => Ok(()),
            "data_plane" | "control_plane" => Err(format!(
            "`{role}` is not supported: only `traditional` (proxy and Admin API in one process)",
        )),
            _ => Err(format!("must be `traditional`, not `{role}`")),
        }
    });
    let admin = p
        .section("deployment.admin", raw.admin)
        .and_then(|a| admin(p, a));
    role.and(admin)
}

fn admin(p: &mut Problems, raw: RawAdmin) -> Option<AdminConfig> {
    p.unknown("deployment.admin", &raw.unknown, RawAdmin::FIELDS);
    let enabled = p.check("deployment.admin.enable_admin", raw.enable_admin, true, Ok);
    let listen = match raw.admin_listen {
        Field::Missing => Some(DEFAULT_ADMIN_LISTEN),
        field => listen(p, "deployment.admin.admin_listen", field),
    };
    let keys = p
        .check("deployment.admin.admin_key", raw.admin_key, None, |k| {
            Ok(Some(k))
        })
        .and_then(|keys| admin_keys(p, keys.map_or_else(Vec::new, |k| k.0)));
    let allow = cidrs(
        p,
        "deployment.admin.allow_admin",
        raw.allow_admin,
        default_admin_allow,
    );
    Some(AdminConfig {
        enabled: enabled?,
        listen: listen?,
        keys: keys?,
        allow: allow?,
    })
}

/// The `admin_key` entries. No message quotes a key.
fn admin_keys(p: &mut Problems, items: Vec<Field<RawAdminKey>>) -> Option<Vec<AdminKey>> {
    let count = items.len();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut secrets: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::with_capacity(count);
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("deployment.admin.admin_key[{i}]");
        let Some(raw) = p.section(&path, item) else {
            continue;
        };
        p.unknown(&path, &raw.unknown, RawAdminKey::FIELDS);
        let name = p.required(&format!("{path}.name"), raw.name, "required", |name| {
            if name.trim().is_empty() {
                return Err("must not be empty".to_owned());
            }
            Ok(name)
        });
        if let Some(name) = &name {
            if let Some(first) = names.insert(name.clone(), i) {
                p.push(
                    &format!("{path}.name"),
                    format_args!("`{name}` is already the name of admin_key[{first}]"),
                );
            }
        }
        let key = p.required(
            &format!("{path}.key"),
            raw.key,
            "required",
            |Secret(key)| {
                if key.is_empty() {
                    return Err("must not be empty".to_owned());
                }
                // It travels in the X-API-KEY header.
                if !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err("must be printable ASCII without whitespace".to_owned());
                }
                Ok(key)
            },
        );
        if let Some(key) = &key {
            if let Some(first) = secrets.insert(key.clone(), i) {
                p.push(
                    &format!("{path}.key"),
                    format_args!("the same key as admin_key[{first}]"),
                );
            }
        }
        let role = p.check(&format!("{path}.role"), raw.role, AdminRole::Admin, Ok);
        if let (Some(name), Some(key), Some(role)) = (name, key, role) {
            keys.push(AdminKey { name, key, role });
        }
    }
    (keys.len() == count).then_some(keys)
}

fn data_encryption(p: &mut Problems, raw: RawDataEncryption) -> Option<DataEncryption> {
    p.unknown("data_encryption", &raw.unknown, RawDataEncryption::FIELDS);
    let enable_encrypt_fields = p.check(
        "data_encryption.enable_encrypt_fields",
        raw.enable_encrypt_fields,
        true,
        Ok,
    );
    let keyring = p
        .check("data_encryption.keyring", raw.keyring, None, |k| {
            Ok(Some(k))
        })
        .and_then(|k| keyring(p, k.map_or_else(Vec::new, |RawKeyring(k)| k)));
    Some(DataEncryption {
        enable_encrypt_fields: enable_encrypt_fields?,
        keyring: keyring?,
    })
}

/// The `keyring` entries: 16 or 32 bytes of text each (the AES-128 or AES-256 key itself, as in
/// APISIX). No message quotes a key.
fn keyring(p: &mut Problems, items: Vec<Field<Secret>>) -> Option<Vec<KeyringKey>> {
    let count = items.len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::with_capacity(count);
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("data_encryption.keyring[{i}]");
        let key = p.required(&path, item, "expected a key, not null", |Secret(key)| {
            if key == APISIX_DEFAULT_KEYRING_KEY {
                return Err(
                    "is the key APISIX publishes in its default config, which protects \
                     nothing; use a random one (e.g. `openssl rand -hex 8` gives 16 characters)"
                        .to_owned(),
                );
            }
            match key.len() {
                16 | 32 => Ok(key),
                n => Err(format!(
                    "must be 16 or 32 bytes of text (an AES-128 or AES-256 key), not {n}"
                )),
            }
        });
        let Some(key) = key else { continue };
        if let Some(first) = seen.insert(key.clone(), i) {
            p.push(&path, format_args!("the same key as keyring[{first}]"));
            continue;
        }
        keys.push(KeyringKey(key.into_bytes()));
    }
    (keys.len() == count).then_some(keys)
}
