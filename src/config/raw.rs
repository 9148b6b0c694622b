//! `Raw*`: the serde mirror of `config.yaml`.
//!
//! Every field is a [`Field`], which keeps a value that failed to deserialize as an error message
//! instead of failing the whole file, and every section keeps the keys it does not know in
//! `unknown`; validation then reports all of them together, each with its path. (That is why these
//! structs catch unknown fields instead of using `deny_unknown_fields`, which stops at the first.)
//! A `null` value, as in a section whose settings are all commented out, counts as not set.
//!
//! Nothing here echoes a secret: Admin API keys go through [`Secret`] and [`RawAdminKeys`], whose
//! errors never quote the value, and no type here implements `Debug`, so a raw file (keys, or a key
//! under a misspelled name in `unknown`) cannot end up in a log.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::listen::{Listen, Listens};
use super::{AdminRole, IoDriver};

/// One setting: not set (absent or `null`), set, or set to something that did not deserialize.
#[derive(Default)]
pub(super) enum Field<T> {
    #[default]
    Missing,
    Present(T),
    Invalid(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.is_null() {
            return Ok(Field::Missing);
        }
        Ok(match T::deserialize(value) {
            Ok(v) => Field::Present(v),
            Err(e) => Field::Invalid(e.to_string()),
        })
    }
}

/// The whole file.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a mapping of settings")]
pub(super) struct RawNodeConfig {
    /// Proxy listen addresses. Defaults to `["0.0.0.0:9080"]`.
    pub node_listen: Field<Listens>,
    /// TLS proxy listen addresses. Defaults to `["0.0.0.0:9443"]`.
    pub ssl_listen: Field<Listens>,
    /// Certificate host name for TLS clients that send no SNI. Defaults to none.
    pub fallback_sni: Field<String>,
    /// Worker threads; `0` = one per core. Defaults to `0`.
    pub workers: Field<usize>,
    /// Pin worker `i` to core `i % cores`. Defaults to `false`.
    pub cpu_pinning: Field<bool>,
    /// `auto`, `io_uring` or `epoll`. Defaults to `auto`.
    pub io_driver: Field<IoDriver>,
    /// State directory, relative to the config file's directory. Defaults to `data`.
    pub data_dir: Field<String>,
    /// Declarative file, relative to the config file's directory. Defaults to none.
    pub standalone: Field<String>,
    /// CIDRs whose `X-Forwarded-*` headers are trusted. Defaults to `[]`.
    pub trusted_addresses: Field<Vec<Field<String>>>,
    /// The exact `Server` header value. Defaults to `Portcullis/<version>`.
    pub server_header: Field<String>,
    /// `error` … `trace`. Defaults to `info`.
    pub log_level: Field<String>,
    /// Verified-token cache entries per worker; `0` disables it. Defaults to `10000`.
    pub jwt_cache_size: Field<usize>,
    /// ES256 keys that may hold a precomputed table; `0` disables them. Defaults to `1024`.
    pub jwt_es256_tables: Field<usize>,
    /// CA certificates trusted for `https` upstreams: `system` or a PEM file. Defaults to
    /// `system`.
    pub ssl_trusted_certificate: Field<String>,
    /// Client-side timeouts. Defaults to every timeout's own default.
    pub timeouts: Field<RawTimeouts>,
    /// Size and connection limits. Defaults to every limit's own default.
    pub limits: Field<RawLimits>,
    /// APISIX's deployment section: role and Admin API. Defaults to a traditional deployment.
    pub deployment: Field<RawDeployment>,
    /// Encryption of secret fields in the store. Defaults to on, with a generated key.
    pub data_encryption: Field<RawDataEncryption>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawNodeConfig {
    pub const FIELDS: &'static [&'static str] = &[
        "node_listen",
        "ssl_listen",
        "fallback_sni",
        "workers",
        "cpu_pinning",
        "io_driver",
        "data_dir",
        "standalone",
        "trusted_addresses",
        "server_header",
        "log_level",
        "jwt_cache_size",
        "jwt_es256_tables",
        "ssl_trusted_certificate",
        "timeouts",
        "limits",
        "deployment",
        "data_encryption",
    ];

    /// Parses the file's text. Only a YAML syntax error or a top level that is not a mapping fails
    /// here; everything else is left for validation to report.
    pub fn from_yaml(text: &str) -> Result<RawNodeConfig, String> {
        let mut value: Value =
            serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
        value
            .apply_merge()
            .map_err(|e| format!("invalid YAML merge key (`<<`): {e}"))?;
        if value.is_null() {
            return Ok(RawNodeConfig::default());
        }
        stringify_keys(&mut value);
        RawNodeConfig::deserialize(value).map_err(|e| format!("config file: {e}"))
    }
}

/// Turns every mapping key into a string (`1` → `"1"`), so that a key that is not a string is
/// reported as an unknown field with its path rather than failing the whole file.
fn stringify_keys(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            if map.keys().any(|k| !k.is_string()) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (Value::String(key_name(&k)), v))
                    .collect();
            }
            map.values_mut().for_each(stringify_keys);
        }
        Value::Sequence(items) => items.iter_mut().for_each(stringify_keys),
        Value::Tagged(tagged) => stringify_keys(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// A mapping key as it appears in a field path.
fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "~".to_owned(),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => {
            "(a non-scalar key)".to_owned()
        }
    }
}

/// The `timeouts` section, in seconds.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a mapping of timeouts in seconds")]
pub(super) struct RawTimeouts {
    /// Defaults to `60`.
    pub client_header_secs: Field<Seconds>,
    /// Defaults to `60`.
    pub client_body_secs: Field<Seconds>,
    /// Defaults to `60`.
    pub keepalive_secs: Field<Seconds>,
    /// Defaults to `60`.
    pub send_secs: Field<Seconds>,
    /// Defaults to `30`.
    pub graceful_shutdown_secs: Field<Seconds>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawTimeouts {
    pub const FIELDS: &'static [&'static str] = &[
        "client_header_secs",
        "client_body_secs",
        "keepalive_secs",
        "send_secs",
        "graceful_shutdown_secs",
    ];
}

/// The `limits` section.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a mapping of limits")]
pub(super) struct RawLimits {
    /// Defaults to `32768`.
    pub max_header_bytes: Field<usize>,
    /// Defaults to `100`.
    pub max_headers: Field<usize>,
    /// Defaults to `104857600`; `0` = unlimited.
    pub max_body_bytes: Field<u64>,
    /// Defaults to `0` (unlimited).
    pub max_connections_per_worker: Field<usize>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawLimits {
    pub const FIELDS: &'static [&'static str] = &[
        "max_header_bytes",
        "max_headers",
        "max_body_bytes",
        "max_connections_per_worker",
    ];
}

/// The `deployment` section, as in APISIX.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a mapping with `role` and `admin`")]
pub(super) struct RawDeployment {
    /// Only `traditional`. Defaults to `traditional`.
    pub role: Field<String>,
    /// The Admin API. Defaults to every admin setting's own default.
    pub admin: Field<RawAdmin>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawDeployment {
    pub const FIELDS: &'static [&'static str] = &["role", "admin"];
}

/// The `deployment.admin` section, as in APISIX.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a mapping of Admin API settings")]
pub(super) struct RawAdmin {
    /// Defaults to `true`.
    pub enable_admin: Field<bool>,
    /// `ip:port` or `{ip, port}`. Defaults to `127.0.0.1:9180`.
    pub admin_listen: Field<Listen>,
    /// Defaults to none (a key is generated into `data_dir`).
    pub admin_key: Field<RawAdminKeys>,
    /// Defaults to `["127.0.0.0/8", "::1/128"]`; `[]` allows every client.
    pub allow_admin: Field<Vec<Field<String>>>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawAdmin {
    pub const FIELDS: &'static [&'static str] =
        &["enable_admin", "admin_listen", "admin_key", "allow_admin"];
}

/// The `admin_key` list. Deserialized by hand so that a key written in the wrong place (say
/// `admin_key: <key>`) is reported without quoting it.
pub(super) struct RawAdminKeys(pub Vec<Field<RawAdminKey>>);

impl<'de> Deserialize<'de> for RawAdminKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Sequence(items) = Value::deserialize(deserializer)? else {
            return Err(D::Error::custom(
                "expected a list of `{name, key, role}` entries",
            ));
        };
        Ok(RawAdminKeys(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Mapping(_) => match RawAdminKey::deserialize(item) {
                        Ok(key) => Field::Present(key),
                        Err(e) => Field::Invalid(e.to_string()),
                    },
                    _ => Field::Invalid("expected a `{name, key, role}` entry".to_owned()),
                })
                .collect(),
        ))
    }
}

/// One `admin_key` entry.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a `{name, key, role}` entry")]
pub(super) struct RawAdminKey {
    /// Required: no default.
    pub name: Field<String>,
    /// Required: no default.
    pub key: Field<Secret>,
    /// `admin` or `viewer`. Defaults to `admin`.
    pub role: Field<AdminRole>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawAdminKey {
    pub const FIELDS: &'static [&'static str] = &["name", "key", "role"];
}

/// The `data_encryption` section, as in APISIX's `apisix.data_encryption`.
#[derive(Default, Deserialize)]
#[serde(
    default,
    expecting = "a mapping with `enable_encrypt_fields` and `keyring`"
)]
pub(super) struct RawDataEncryption {
    /// Defaults to `true`.
    pub enable_encrypt_fields: Field<bool>,
    /// Defaults to none (a key is generated into `data_dir`).
    pub keyring: Field<RawKeyring>,
    #[serde(flatten)]
    pub unknown: Mapping,
}

impl RawDataEncryption {
    pub const FIELDS: &'static [&'static str] = &["enable_encrypt_fields", "keyring"];
}

/// The `keyring` list. Deserialized by hand so that a key written in the wrong place (say
/// `keyring: <key>`) is reported without quoting it.
pub(super) struct RawKeyring(pub Vec<Field<Secret>>);

impl<'de> Deserialize<'de> for RawKeyring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Sequence(items) = Value::deserialize(deserializer)? else {
            return Err(D::Error::custom("expected a list of keys"));
        };
        Ok(RawKeyring(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Null => Field::Missing,
                    item => match Secret::deserialize(item) {
                        Ok(key) => Field::Present(key),
                        Err(e) => Field::Invalid(e.to_string()),
                    },
                })
                .collect(),
        ))
    }
}

/// A secret string whose deserialization errors never show it.
pub(super) struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Secret(s)),
            _ => Err(D::Error::custom(
                "expected a string (put the key in quotes)",
            )),
        }
    }
}

/// A number of seconds: an integer or a fraction.
#[derive(Clone, Copy)]
pub(super) struct Seconds(pub f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds, like `60` or `0.5`")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
