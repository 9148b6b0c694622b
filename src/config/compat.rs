//! What to tell an APISIX user who pasted a setting Portcullis reads elsewhere or not at all.
//!
//! APISIX keeps its node settings under `apisix:` and `nginx_config:`; Portcullis reads the ones it
//! has at the top level. Rather than a bare "unknown field", such keys get an error that says where
//! the setting lives now, or that it has no equivalent. Nothing is silently ignored.

use serde_norway::Value;

/// The top-level keys, for messages that point APISIX users at them.
const TOP_LEVEL: &str = "node_listen, ssl_listen, fallback_sni, workers, cpu_pinning, io_driver, data_dir, \
                         standalone, trusted_addresses, server_header, log_level, jwt_cache_size, jwt_es256_tables, ssl_trusted_certificate, timeouts, limits and \
                         data_encryption";

/// The message for an unknown key at `path` (dotted, without list indices) if APISIX has a key
/// there, or `None` for a plain unknown field.
pub(super) fn hint(path: &str) -> Option<String> {
    let message = match path {
        "apisix" => format!(
            "not supported: Portcullis reads {TOP_LEVEL} at the top level, not under `apisix:`; \
             move the settings you need there and remove this section"
        ),
        "nginx_config" => format!(
            "not supported: Portcullis does not run nginx; it reads {TOP_LEVEL} at the top level \
             (worker_processes is `workers`, the *_timeout settings are under `timeouts`, \
             client_max_body_size is `limits.max_body_bytes`); remove this section"
        ),
        "etcd"
        | "deployment.etcd"
        | "deployment.role_traditional"
        | "deployment.role_data_plane"
        | "deployment.role_control_plane"
        | "deployment.config_provider" => {
            "not supported: Portcullis does not read its routes and consumers from etcd (use the \
             Admin API, or `standalone` for a declarative file); remove this section"
                .to_owned()
        }
        "deployment.admin.admin_key_required" => {
            "not supported: the Admin API always requires a key; remove this setting".to_owned()
        }
        "plugins"
        | "stream_plugins"
        | "plugin_attr"
        | "discovery"
        | "graphql"
        | "ext-plugin"
        | "wasm"
        | "xrpc"
        | "deployment.admin.enable_admin_cors"
        | "deployment.admin.enable_admin_ui"
        | "deployment.admin.https_admin"
        | "deployment.admin.admin_api_mtls"
        | "deployment.admin.admin_api_version" => {
            "not supported: this APISIX setting has no Portcullis equivalent; remove it".to_owned()
        }
        _ => return None,
    };
    Some(message)
}

/// Where each APISIX setting under `apisix:` or `nginx_config:` that Portcullis has went, so that
/// pasting such a section also names the keys to move: (APISIX path, Portcullis path).
const MOVED: &[(&str, &str)] = &[
    ("apisix.node_listen", "`node_listen`"),
    ("apisix.ssl.listen", "`ssl_listen`"),
    (
        "apisix.ssl.ssl_trusted_certificate",
        "`ssl_trusted_certificate`",
    ),
    ("apisix.ssl.fallback_sni", "`fallback_sni`"),
    ("apisix.enable_admin", "`deployment.admin.enable_admin`"),
    ("apisix.allow_admin", "`deployment.admin.allow_admin`"),
    ("apisix.admin_key", "`deployment.admin.admin_key`"),
    ("apisix.port_admin", "`deployment.admin.admin_listen`"),
    (
        "apisix.data_encryption",
        "`data_encryption` (same keys; AES-GCM, so values APISIX encrypted do not carry over)",
    ),
    ("nginx_config.worker_processes", "`workers` (`auto` is `0`)"),
    ("nginx_config.error_log_level", "`log_level`"),
    (
        "nginx_config.worker_shutdown_timeout",
        "`timeouts.graceful_shutdown_secs`",
    ),
    (
        "nginx_config.http.client_header_timeout",
        "`timeouts.client_header_secs`",
    ),
    (
        "nginx_config.http.client_body_timeout",
        "`timeouts.client_body_secs`",
    ),
    (
        "nginx_config.http.keepalive_timeout",
        "`timeouts.keepalive_secs`",
    ),
    ("nginx_config.http.send_timeout", "`timeouts.send_secs`"),
    (
        "nginx_config.http.client_max_body_size",
        "`limits.max_body_bytes` (in bytes)",
    ),
];

/// For a pasted `apisix:` or `nginx_config:` section (`section` is its key, `value` its content),
/// one message per setting in it that Portcullis reads elsewhere.
pub(super) fn moved_settings(section: &str, value: &Value) -> Vec<String> {
    MOVED
        .iter()
        .filter(|(from, _)| {
            let mut parts = from.split('.');
            parts.next() == Some(section)
                && parts
                    .try_fold(value, |v, key| v.get(key))
                    .is_some_and(|v| !v.is_null())
        })
        .map(|(from, to)| format!("{from}: move it to {to}"))
        .collect()
}
