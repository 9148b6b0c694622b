//! The node config file, `config/config.yaml`: where to listen, how many workers, timeouts and
//! limits, and the Admin API's address, keys and allow list.
//!
//! - [`NodeConfig`]: the validated settings the runtime reads; built by [`NodeConfig::load`],
//!   [`NodeConfig::load_or_default`] or [`NodeConfig::from_yaml`].
//! - `raw`: the serde mirror of the file. Every field is read on its own, so one bad value does not
//!   hide the next; unknown keys are kept and reported with their full path.
//! - `validate`: `RawNodeConfig` → [`NodeConfig`], collecting every problem as `field.path: message`.
//! - `listen`: listen addresses in APISIX's forms (`"ip:port"`, a port, `{ip, port}`).
//! - `compat`: what to tell APISIX users who paste `apisix:`, `nginx_config:` or etcd settings.
//! - [`Cidr`]: the address ranges of `trusted_addresses` and `deployment.admin.allow_admin`.
//! - [`NodeConfig::ensure_admin_key`]: loads or generates `<data_dir>/admin_key` when the file
//!   names no Admin API key.
//! - [`NodeConfig::keyring`]: the keys of `data_encryption`, with `<data_dir>/keyring` loaded or
//!   generated when the file names none.
//! - `state_file`: how those generated files are written (atomically, mode 0600, never replaced).
//!
//! The file is APISIX-shaped where APISIX users will look for a setting (`node_listen`,
//! `deployment.admin.*`), and flat elsewhere.

mod admin_key;
mod cidr;
mod compat;
mod keyring;
mod listen;
mod raw;
mod state_file;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use admin_key::ADMIN_KEY_FILE;
pub use cidr::Cidr;
pub use keyring::KEYRING_FILE;

/// The proxy listen address used when `node_listen` is not set.
pub const DEFAULT_NODE_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9080);
/// The TLS proxy listen address used when `ssl_listen` is not set.
pub const DEFAULT_SSL_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9443);
/// The Admin API listen address used when `deployment.admin.admin_listen` is not set.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9180);
/// The `data_dir` used when none is set, relative to the config file's directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// The `Server` header value used when `server_header` is not set.
pub const DEFAULT_SERVER_HEADER: &str = concat!("Portcullis/", env!("CARGO_PKG_VERSION"));
/// The name given to an Admin API key loaded from or generated into `<data_dir>/admin_key`.
pub const GENERATED_KEY_NAME: &str = "generated";

/// The validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The file these settings were read from; `None` when no file was read.
    /// Defaults to `None`.
    pub path: Option<PathBuf>,
    /// `node_listen`: the plain-HTTP proxy addresses. Never empty.
    /// Defaults to `["0.0.0.0:9080"]`.
    pub node_listen: Vec<SocketAddr>,
    /// `ssl_listen`: the TLS proxy addresses, for the TLS listener.
    /// Defaults to `["0.0.0.0:9443"]`.
    pub ssl_listen: Vec<SocketAddr>,
    /// `fallback_sni`: the host name whose certificate a TLS client that sends no SNI gets
    /// (APISIX's `apisix.ssl.fallback_sni`), lower case, without a trailing dot. Without it,
    /// such a handshake fails. Defaults to none.
    pub fallback_sni: Option<String>,
    /// `workers`: the number of worker threads, resolved: `0` in the file means one per core
    /// available to the process ([`std::thread::available_parallelism`]). Always at least 1.
    /// Defaults to `0` (one per core).
    pub workers: usize,
    /// `cpu_pinning`: pin worker `i` to core `i % cores`.
    /// Defaults to `false`.
    pub cpu_pinning: bool,
    /// `io_driver`: the I/O driver the workers run on.
    /// Defaults to `auto`.
    pub io_driver: IoDriver,
    /// `data_dir`: where the node keeps its state (the store, the generated `admin_key` and
    /// `keyring`), resolved against the config file's directory. Defaults to `data`.
    pub data_dir: PathBuf,
    /// `standalone`: an APISIX-style declarative file (routes, services, upstreams, consumers),
    /// resolved against the config file's directory. Defaults to none.
    pub standalone: Option<PathBuf>,
    /// `trusted_addresses`: clients whose `X-Forwarded-*` and `Forwarded` headers are passed on;
    /// from any other client they are overwritten (`Forwarded` removed). Defaults to `[]`.
    pub trusted_addresses: Vec<Cidr>,
    /// `server_header`: the exact `Server` header value sent to clients; empty sends none.
    /// Defaults to `Portcullis/<version>`.
    pub server_header: String,
    /// `log_level`: one of `error`, `warn`, `info`, `debug`, `trace` (lower case); `RUST_LOG`
    /// overrides it. Defaults to `info`.
    pub log_level: String,
    /// `jwt_cache_size`: entries of each worker's verified-token cache (asymmetric algorithms);
    /// `0` disables it. Defaults to `10000`.
    pub jwt_cache_size: usize,
    /// `jwt_es256_tables`: how many ES256 public keys may hold a precomputed table (about
    /// 30 KB each) that halves the cost of a check; `0` checks every ES256 token with ring.
    /// Defaults to `1024`.
    pub jwt_es256_tables: usize,
    /// `ssl_trusted_certificate`: the CA certificates `https` upstreams are verified against, as
    /// APISIX's `apisix.ssl.ssl_trusted_certificate`. A file path is resolved against the config
    /// file's directory. Defaults to `system`.
    pub ssl_trusted_certificate: TrustedCa,
    /// `timeouts`: client-side timeouts. Defaults to [`Timeouts::default`].
    pub timeouts: Timeouts,
    /// `limits`: request size and connection limits. Defaults to [`Limits::default`].
    pub limits: Limits,
    /// `deployment.admin`: the Admin API. Defaults to [`AdminConfig::default`].
    pub admin: AdminConfig,
    /// `data_encryption`: encryption of secret fields in the store.
    /// Defaults to [`DataEncryption::default`].
    pub data_encryption: DataEncryption,
}

/// The CA certificates trusted for `https` upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustedCa {
    /// The operating system's store (on Linux the bundle under `/etc/ssl/certs`, or the files
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` name).
    #[default]
    System,
    /// Only the certificates of this PEM file, instead of the system's (as in APISIX, where a
    /// path replaces `system`). Read and checked at start.
    File(PathBuf),
}

/// Which I/O driver the workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    /// io_uring, falling back to epoll when io_uring cannot be set up (old kernel, seccomp).
    #[default]
    Auto,
    /// io_uring only; failing to set it up is an error.
    IoUring,
    /// epoll only.
    Epoll,
}

/// Client-side timeouts, from the `timeouts` section (seconds in the file, fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `client_header_secs`: the longest a client may take to send a request head (slowloris).
    /// Defaults to `60` seconds.
    pub client_header: Duration,
    /// `client_body_secs`: the longest a client may stay silent between two reads of a request
    /// body. Defaults to `60` seconds.
    pub client_body: Duration,
    /// `keepalive_secs`: how long an idle keep-alive connection is kept; zero disables keep-alive.
    /// Defaults to `60` seconds.
    pub keepalive: Duration,
    /// `send_secs`: the longest a write to a client may stall. Defaults to `60` seconds.
    pub send: Duration,
    /// `graceful_shutdown_secs`: on SIGTERM or SIGINT, how long in-flight requests may take to
    /// finish. Defaults to `30` seconds.
    pub graceful_shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_header: Duration::from_secs(60),
            client_body: Duration::from_secs(60),
            keepalive: Duration::from_secs(60),
            send: Duration::from_secs(60),
            graceful_shutdown: Duration::from_secs(30),
        }
    }
}

/// Request size and connection limits, from the `limits` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_header_bytes`: the largest request head (request line and headers); larger is
    /// answered with 431. Defaults to `32768`.
    pub max_header_bytes: usize,
    /// `max_headers`: the most request headers; more is answered with 431. Defaults to `100`.
    pub max_headers: usize,
    /// `max_body_bytes`: the largest request body; larger is answered with 413. `0` means
    /// unlimited. Defaults to `104857600` (100 MiB).
    pub max_body_bytes: u64,
    /// `max_connections_per_worker`: open client connections per worker; `0` means unlimited.
    /// Defaults to `0`.
    pub max_connections_per_worker: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 100 * 1024 * 1024,
            max_connections_per_worker: 0,
        }
    }
}

/// The Admin API, from the `deployment.admin` section.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `enable_admin`: whether the Admin API is served. Defaults to `true`.
    pub enabled: bool,
    /// `admin_listen`: the Admin API address. Defaults to `127.0.0.1:9180`.
    pub listen: SocketAddr,
    /// `admin_key`: the keys accepted in the `X-API-KEY` header. When empty and the Admin API is
    /// enabled, [`NodeConfig::ensure_admin_key`] fills it from `<data_dir>/admin_key`.
    /// Defaults to none.
    pub keys: Vec<AdminKey>,
    /// `allow_admin`: the client ranges allowed to reach the Admin API; an empty list allows
    /// every client. Defaults to loopback only: `["127.0.0.0/8", "::1/128"]`.
    pub allow: Vec<Cidr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: DEFAULT_ADMIN_LISTEN,
            keys: Vec::new(),
            allow: default_admin_allow(),
        }
    }
}

/// The loopback ranges the Admin API admits when `allow_admin` is not set.
pub(crate) fn default_admin_allow() -> Vec<Cidr> {
    vec![
        Cidr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("8 is a valid IPv4 prefix"),
        Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("128 is a valid IPv6 prefix"),
    ]
}

/// One Admin API key. Its `Debug` output hides the key, so a logged config never leaks it.
#[derive(Clone)]
pub struct AdminKey {
    /// `name`: a label for logs; unique among the keys. Required: no default.
    pub name: String,
    /// `key`: the secret sent in `X-API-KEY`; printable ASCII, no whitespace.
    /// Required: no default.
    pub key: String,
    /// `role`: what the key may do. Defaults to `admin`.
    pub role: AdminRole,
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// Encryption of secret plugin fields before they are stored, from the `data_encryption` section
/// (APISIX's `apisix.data_encryption`). See [`crate::store::Keyring`].
#[derive(Debug, Clone)]
pub struct DataEncryption {
    /// `enable_encrypt_fields`: encrypt the secret fields of objects written from now on. Stored
    /// encrypted values are decrypted either way. Defaults to `true`.
    pub enable_encrypt_fields: bool,
    /// `keyring`: AES keys, each 16 bytes (AES-128-GCM) or 32 bytes (AES-256-GCM) of text; the
    /// first encrypts, any decrypts. Defaults to none: [`NodeConfig::keyring`] then uses a random
    /// key generated into `<data_dir>/keyring`.
    pub keyring: Vec<KeyringKey>,
}

impl Default for DataEncryption {
    fn default() -> Self {
        DataEncryption {
            enable_encrypt_fields: true,
            keyring: Vec::new(),
        }
    }
}

/// One keyring key's bytes. Its `Debug` output hides them, so a logged config never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyringKey(pub Vec<u8>);

impl fmt::Debug for KeyringKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyringKey(<{} bytes redacted>)", self.0.len())
    }
}

/// What an Admin API key may do (APISIX's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Read and write.
    #[default]
    Admin,
    /// Read only (`GET`).
    Viewer,
}

/// Why the node config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file was read but is not valid; every problem found, each as `field.path: message`.
    #[error("invalid config:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl NodeConfig {
    /// Reads, parses and validates the config file at `path`. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = NodeConfig::from_yaml(&text, &base_dir_of(path)?)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Like [`NodeConfig::load`], but a missing file that was not `explicitly_given` (the default
    /// path) yields the defaults, with `path` `None` and relative paths resolved against the
    /// directory the file would be in. A missing file that was given explicitly is an error.
    pub fn load_or_default(path: &Path, explicitly_given: bool) -> Result<NodeConfig, ConfigError> {
        match NodeConfig::load(path) {
            Err(ConfigError::Io { source, .. })
                if !explicitly_given && source.kind() == io::ErrorKind::NotFound =>
            {
                NodeConfig::from_yaml("", &base_dir_of(path)?)
            }
            result => result,
        }
    }

    /// Parses and validates config file text. Relative paths (`data_dir`, `standalone`) are
    /// resolved against `base_dir`; an empty text yields the defaults. `path` is `None`.
    pub fn from_yaml(text: &str, base_dir: &Path) -> Result<NodeConfig, ConfigError> {
        let raw = raw::RawNodeConfig::from_yaml(text).map_err(|e| ConfigError::Invalid(vec![e]))?;
        let mut config = NodeConfig::try_from(raw)?;
        config.data_dir = base_dir.join(&config.data_dir);
        config.standalone = config.standalone.map(|p| base_dir.join(p));
        if let TrustedCa::File(p) = &mut config.ssl_trusted_certificate {
            *p = base_dir.join(&*p);
        }
        Ok(config)
    }
}

/// The absolute directory of the config file at `path`, against which its relative paths resolve.
fn base_dir_of(path: &Path) -> Result<PathBuf, ConfigError> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    dir.map_or_else(std::env::current_dir, std::path::absolute)
        .map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })
}
