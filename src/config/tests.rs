//! Parsing and validation of the node config file, and the shipped `config/config.yaml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::listen::RawListenObject;
use super::raw::{
    RawAdmin, RawAdminKey, RawDataEncryption, RawDeployment, RawLimits, RawNodeConfig, RawTimeouts,
};
use super::*;

const SHIPPED: &str = include_str!("../../config/config.yaml");

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "portcullis-config-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The config `extra` (YAML) with relative paths resolved against `dir`.
pub(super) fn config_in(dir: &TempDir, extra: &str) -> NodeConfig {
    NodeConfig::from_yaml(extra, dir.path()).unwrap()
}

/// Permission bits of `path`.
pub(super) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn parse(yaml: &str) -> NodeConfig {
    match NodeConfig::from_yaml(yaml, Path::new("/etc/portcullis")) {
        Ok(config) => config,
        Err(e) => panic!("{yaml:?} should parse: {e}"),
    }
}

fn errors(yaml: &str) -> Vec<String> {
    match NodeConfig::from_yaml(yaml, Path::new("/etc/portcullis")) {
        Err(ConfigError::Invalid(errors)) => errors,
        Err(e) => panic!("{yaml:?}: unexpected error {e}"),
        Ok(config) => panic!("{yaml:?} should be rejected, got {config:?}"),
    }
}

/// The single error for `yaml`, which must start with `expected`.
fn assert_error(yaml: &str, expected: &str) {
    let errors = errors(yaml);
    assert!(
        errors.len() == 1 && errors[0].starts_with(expected),
        "{yaml:?}: expected one error starting with {expected:?}, got {errors:#?}"
    );
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn assert_defaults(c: &NodeConfig, base: &Path) {
    assert_eq!(c.path, None);
    assert_eq!(c.node_listen, [addr("0.0.0.0:9080")]);
    assert_eq!(c.ssl_listen, [addr("0.0.0.0:9443")]);
    assert_eq!(c.fallback_sni, None);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.workers, cores);
    assert!(!c.cpu_pinning);
    assert_eq!(c.jwt_cache_size, 10_000);
    assert_eq!(c.jwt_es256_tables, 1024);
    assert_eq!(c.io_driver, IoDriver::Auto);
    assert_eq!(c.data_dir, base.join("data"));
    assert_eq!(c.standalone, None);
    assert!(c.trusted_addresses.is_empty());
    assert_eq!(
        c.server_header,
        format!("Portcullis/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(c.log_level, "info");
    assert_eq!(c.timeouts, Timeouts::default());
    assert_eq!(c.timeouts.client_header, Duration::from_secs(60));
    assert_eq!(c.timeouts.graceful_shutdown, Duration::from_secs(30));
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.max_header_bytes, 32768);
    assert_eq!(c.limits.max_headers, 100);
    assert_eq!(c.limits.max_body_bytes, 104_857_600);
    assert_eq!(c.limits.max_connections_per_worker, 0);
    assert!(c.admin.enabled);
    assert_eq!(c.admin.listen, addr("127.0.0.1:9180"));
    assert!(c.admin.keys.is_empty());
    let allow: Vec<String> = c.admin.allow.iter().map(Cidr::to_string).collect();
    assert_eq!(allow, ["127.0.0.0/8", "::1/128"]);
    assert!(c.data_encryption.enable_encrypt_fields);
    assert!(c.data_encryption.keyring.is_empty());
}

#[test]
fn empty_files_give_the_defaults() {
    for yaml in [
        "",
        "# only a comment\n",
        "{}",
        "~",
        "timeouts:\nlimits:\ndeployment:\n  admin:\n",
    ] {
        assert_defaults(&parse(yaml), Path::new("/etc/portcullis"));
    }
}

#[test]
fn the_shipped_file_gives_the_defaults() {
    assert_defaults(&parse(SHIPPED), Path::new("/etc/portcullis"));
}

/// Uncommenting every `#setting` line of the shipped file must give a valid file whose values are
/// the documented defaults, except for the lines the file calls examples.
#[test]
fn the_shipped_files_commented_settings_are_valid_and_match_the_defaults() {
    let uncommented: String = SHIPPED
        .lines()
        .map(|line| {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            match body.strip_prefix('#') {
                Some(setting) if !setting.is_empty() && !setting.starts_with([' ', '#']) => {
                    format!("{indent}{setting}\n")
                }
                _ => format!("{line}\n"),
            }
        })
        .collect();
    assert!(uncommented.contains("\nworkers: 0\n"), "{uncommented}");
    let mut c = parse(&uncommented);
    assert_eq!(
        c.standalone,
        Some(PathBuf::from("/etc/portcullis/apisix.yaml"))
    );
    assert_eq!(c.trusted_addresses.len(), 2);
    assert_eq!(c.server_header, "Portcullis");
    let [key] = &c.admin.keys[..] else {
        panic!("one example key expected: {:?}", c.admin.keys)
    };
    assert_eq!((key.name.as_str(), key.role), ("admin", AdminRole::Admin));
    assert_eq!(key.key, "edd1c9f034335f136f87ad84b625c8f1");
    assert_eq!(c.data_encryption.keyring.len(), 2, "the rotation example");
    assert_eq!(c.fallback_sni.as_deref(), Some("www.example.com"));
    c.fallback_sni = None;
    c.standalone = None;
    c.trusted_addresses.clear();
    c.server_header = DEFAULT_SERVER_HEADER.to_owned();
    c.admin.keys.clear();
    c.data_encryption.keyring.clear();
    assert_defaults(&c, Path::new("/etc/portcullis"));
}

#[test]
fn every_setting_is_read() {
    let c = parse(
        r#"
node_listen: ["127.0.0.1:8080", "[::1]:8080"]
ssl_listen: []
workers: 3
cpu_pinning: true
io_driver: epoll
data_dir: /var/lib/portcullis
standalone: routes/apisix.yaml
trusted_addresses: [10.0.0.0/8, "fd00::/8", 192.0.2.1]
server_header: "edge gateway"
jwt_cache_size: 500
jwt_es256_tables: 0
log_level: DEBUG
timeouts:
  client_header_secs: 2.5
  client_body_secs: 10
  keepalive_secs: 0
  send_secs: 0.25
  graceful_shutdown_secs: 5
limits:
  max_header_bytes: 8192
  max_headers: 50
  max_body_bytes: 0
  max_connections_per_worker: 10000
deployment:
  role: traditional
  admin:
    enable_admin: false
    admin_listen: "0.0.0.0:9181"
    admin_key:
      - name: ops
        key: abcdefgh12345678
        role: admin
      - name: dashboards
        key: "0123456789"
        role: viewer
      - name: default-role
        key: k-3
    allow_admin: []
data_encryption:
  enable_encrypt_fields: false
  keyring:
    - "0123456789abcdef0123456789abcdef"
    - edcba9876543210f
"#,
    );
    assert_eq!(c.node_listen, [addr("127.0.0.1:8080"), addr("[::1]:8080")]);
    assert!(c.ssl_listen.is_empty());
    assert_eq!(c.workers, 3);
    assert!(c.cpu_pinning);
    assert_eq!(c.io_driver, IoDriver::Epoll);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/portcullis"));
    assert_eq!(
        c.standalone,
        Some(PathBuf::from("/etc/portcullis/routes/apisix.yaml"))
    );
    let trusted: Vec<String> = c.trusted_addresses.iter().map(Cidr::to_string).collect();
    assert_eq!(trusted, ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]);
    assert_eq!(c.server_header, "edge gateway");
    assert_eq!(c.jwt_cache_size, 500);
    assert_eq!(c.jwt_es256_tables, 0);
    assert_eq!(c.log_level, "debug");
    assert_eq!(
        c.timeouts,
        Timeouts {
            client_header: Duration::from_millis(2500),
            client_body: Duration::from_secs(10),
            keepalive: Duration::ZERO,
            send: Duration::from_millis(250),
            graceful_shutdown: Duration::from_secs(5),
        }
    );
    assert_eq!(
        c.limits,
        Limits {
            max_header_bytes: 8192,
            max_headers: 50,
            max_body_bytes: 0,
            max_connections_per_worker: 10000,
        }
    );
    assert!(!c.admin.enabled);
    assert_eq!(c.admin.listen, addr("0.0.0.0:9181"));
    let keys: Vec<_> = c
        .admin
        .keys
        .iter()
        .map(|k| (k.name.as_str(), k.key.as_str(), k.role))
        .collect();
    assert_eq!(
        keys,
        [
            ("ops", "abcdefgh12345678", AdminRole::Admin),
            ("dashboards", "0123456789", AdminRole::Viewer),
            ("default-role", "k-3", AdminRole::Admin),
        ]
    );
    assert!(
        c.admin.allow.is_empty(),
        "an explicit [] allows every client"
    );
    assert!(!c.data_encryption.enable_encrypt_fields);
    assert_eq!(
        c.data_encryption.keyring,
        [
            KeyringKey(b"0123456789abcdef0123456789abcdef".to_vec()),
            KeyringKey(b"edcba9876543210f".to_vec()),
        ]
    );
}

#[test]
fn node_listen_accepts_apisix_forms() {
    let cases: &[(&str, &[&str])] = &[
        ("node_listen: 9080", &["0.0.0.0:9080"]),
        ("node_listen: '[::]:9080'", &["[::]:9080"]),
        ("node_listen: [9080, 9081]", &["0.0.0.0:9080", "0.0.0.0:9081"]),
        ("node_listen: [{port: 9080}]", &["0.0.0.0:9080"]),
        (
            "node_listen:\n  - ip: 127.0.0.2\n    port: 9082\n  - ip: '::1'\n    port: 9083\n  - ip: '[::]'\n    port: 9084\n    enable_http2: false",
            &["127.0.0.2:9082", "[::1]:9083", "[::]:9084"],
        ),
        ("node_listen: [9080, '10.0.0.1:80', {port: 81}]", &["0.0.0.0:9080", "10.0.0.1:80", "0.0.0.0:81"]),
        ("node_listen: 0", &["0.0.0.0:0"]),
        ("ssl_listen: [{ip: 0.0.0.0, port: 443}]\nnode_listen: 80", &["0.0.0.0:80"]),
    ];
    for (yaml, expected) in cases {
        let expected: Vec<SocketAddr> = expected.iter().map(|s| addr(s)).collect();
        assert_eq!(parse(yaml).node_listen, expected, "{yaml}");
    }
    assert_eq!(
        parse("ssl_listen: [{ip: 0.0.0.0, port: 443}]").ssl_listen,
        [addr("0.0.0.0:443")]
    );
}

#[test]
fn admin_listen_accepts_the_apisix_object() {
    let listen = |yaml: &str| parse(yaml).admin.listen;
    assert_eq!(
        listen("deployment:\n  admin:\n    admin_listen:\n      ip: 0.0.0.0\n      port: 9180"),
        addr("0.0.0.0:9180")
    );
    assert_eq!(
        listen("deployment: {admin: {admin_listen: {port: 9280}}}"),
        addr("0.0.0.0:9280")
    );
    assert_eq!(
        listen("deployment: {admin: {admin_listen: {ip: '::1', port: 9180}}}"),
        addr("[::1]:9180")
    );
    assert_eq!(
        listen("deployment: {admin: {admin_listen: '127.0.0.1:0'}}"),
        addr("127.0.0.1:0")
    );
}

#[test]
fn each_setting_reports_its_own_path() {
    let cases = [
        (
            "node_listen: []",
            "node_listen: must list at least one address",
        ),
        (
            "node_listen: localhost:9080",
            "node_listen: `localhost:9080` is not `ip:port`",
        ),
        (
            "node_listen: ['0.0.0.0:80', '::1:80']",
            "node_listen[1]: `::1:80` is not `ip:port`",
        ),
        (
            "node_listen: 70000",
            "node_listen: port must be 0 to 65535, not 70000",
        ),
        (
            "node_listen: [-1]",
            "node_listen[0]: port must be 0 to 65535, not -1",
        ),
        (
            "node_listen: [true]",
            "node_listen[0]: expected `ip:port`, a port number or `{ip, port}`",
        ),
        ("node_listen: [~]", "node_listen[0]: expected `ip:port`"),
        (
            "node_listen: [{ip: 0.0.0.0}]",
            "node_listen[0].port: required",
        ),
        (
            "node_listen: [{ip: nowhere, port: 1}]",
            "node_listen[0].ip: `nowhere` is not an IP address",
        ),
        (
            "node_listen: [{port: 99999}]",
            "node_listen[0].port: invalid value",
        ),
        (
            "node_listen: [{port: 1, enable_http2: true}]",
            "node_listen[0].enable_http2: HTTP/2 is not supported",
        ),
        (
            "node_listen: [{port: 1, enable_http3: true}]",
            "node_listen[0].enable_http3: unknown field",
        ),
        ("ssl_listen: [bad]", "ssl_listen[0]: `bad` is not `ip:port`"),
        ("workers: 1025", "workers: must be at most 1024"),
        (
            "jwt_es256_tables: 100001",
            "jwt_es256_tables: must be at most 100000 (0 disables the tables)",
        ),
        (
            "jwt_es256_tables: -1",
            "jwt_es256_tables: invalid value: integer `-1`",
        ),
        ("workers: -1", "workers: invalid value: integer `-1`"),
        ("workers: auto", "workers: invalid type: string \"auto\""),
        (
            "cpu_pinning: yes",
            "cpu_pinning: invalid type: string \"yes\", expected a boolean",
        ),
        ("io_driver: uring", "io_driver: unknown variant `uring`"),
        ("data_dir: ''", "data_dir: must not be empty"),
        ("data_dir: [a]", "data_dir: invalid type: sequence"),
        ("standalone: ''", "standalone: must not be empty"),
        (
            "trusted_addresses: [10.0.0.0/8, 10.0.0.0/33]",
            "trusted_addresses[1]: `10.0.0.0/33`: prefix length must be at most 32",
        ),
        (
            "trusted_addresses: [1]",
            "trusted_addresses[0]: invalid type: integer `1`, expected a string",
        ),
        (
            "trusted_addresses: 10.0.0.0/8",
            "trusted_addresses: invalid type: string",
        ),
        (
            "server_header: \"a\\r\\nX-Evil: 1\"",
            "server_header: must be printable ASCII",
        ),
        (
            "server_header: ' padded'",
            "server_header: must not start or end with whitespace",
        ),
        (
            "server_header: 'café'",
            "server_header: must be printable ASCII",
        ),
        (
            "log_level: notice",
            "log_level: must be one of error, warn, info, debug, trace, not `notice`",
        ),
        (
            "timeouts: 5",
            "timeouts: invalid type: integer `5`, expected a mapping of timeouts in seconds",
        ),
        (
            "timeouts: {client_header_secs: 0}",
            "timeouts.client_header_secs: must be more than 0",
        ),
        (
            "timeouts: {client_body_secs: -1}",
            "timeouts.client_body_secs: must be more than 0",
        ),
        (
            "timeouts: {keepalive_secs: -0.5}",
            "timeouts.keepalive_secs: must be 0 or more",
        ),
        (
            "timeouts: {send_secs: 60s}",
            "timeouts.send_secs: invalid type: string \"60s\", expected a number of seconds",
        ),
        (
            "timeouts: {send_secs: .inf}",
            "timeouts.send_secs: must be more than 0 and at most 86400",
        ),
        (
            "timeouts: {send_secs: .nan}",
            "timeouts.send_secs: must be more than 0",
        ),
        (
            "timeouts: {graceful_shutdown_secs: 1e-12}",
            "timeouts.graceful_shutdown_secs: must be more than 0 seconds",
        ),
        (
            "timeouts: {client_header_sec: 5}",
            "timeouts.client_header_sec: unknown field, expected one of `client_header_secs`",
        ),
        (
            "limits: {max_header_bytes: 100}",
            "limits.max_header_bytes: must be 1024 to 1048576, not 100",
        ),
        (
            "limits: {max_headers: 0}",
            "limits.max_headers: must be 1 to 1024, not 0",
        ),
        (
            "limits: {max_body_bytes: -1}",
            "limits.max_body_bytes: invalid value",
        ),
        (
            "limits: {max_connections_per_worker: 1.5}",
            "limits.max_connections_per_worker: invalid type: floating point",
        ),
        ("limits: {max_body: 1}", "limits.max_body: unknown field"),
        (
            "deployment: {role: data_plane}",
            "deployment.role: `data_plane` is not supported",
        ),
        (
            "deployment: {role: edge}",
            "deployment.role: must be `traditional`, not `edge`",
        ),
        (
            "deployment: {admin: []}",
            "deployment.admin: invalid type: sequence, expected a mapping of Admin API settings",
        ),
        (
            "deployment: {admin: {enable_admin: 1}}",
            "deployment.admin.enable_admin: invalid type: integer",
        ),
        (
            "deployment: {admin: {admin_listen: nowhere}}",
            "deployment.admin.admin_listen: `nowhere` is not `ip:port`",
        ),
        (
            "deployment: {admin: {admin_listen: {ip: 127.0.0.1}}}",
            "deployment.admin.admin_listen.port: required",
        ),
        (
            "deployment: {admin: {allow_admin: [127.0.0.1/8, bad]}}",
            "deployment.admin.allow_admin[1]: `bad` is not an IP address or CIDR",
        ),
        (
            "deployment: {admin: {admin_key: [{key: abc}]}}",
            "deployment.admin.admin_key[0].name: required",
        ),
        (
            "deployment: {admin: {admin_key: [{name: ' ', key: abc}]}}",
            "deployment.admin.admin_key[0].name: must not be empty",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a}]}}",
            "deployment.admin.admin_key[0].key: required",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: ''}]}}",
            "deployment.admin.admin_key[0].key: must not be empty",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: 'a b'}]}}",
            "deployment.admin.admin_key[0].key: must be printable ASCII without whitespace",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: k, role: root}]}}",
            "deployment.admin.admin_key[0].role: unknown variant `root`",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: k, roles: admin}]}}",
            "deployment.admin.admin_key[0].roles: unknown field",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: k1}, {name: a, key: k2}]}}",
            "deployment.admin.admin_key[1].name: `a` is already the name of admin_key[0]",
        ),
        (
            "deployment: {admin: {admin_key: [{name: a, key: k1}, {name: b, key: k1}]}}",
            "deployment.admin.admin_key[1].key: the same key as admin_key[0]",
        ),
        (
            "data_encryption: {enable_encrypt_fields: yes please}",
            "data_encryption.enable_encrypt_fields: ",
        ),
        (
            "data_encryption: {keyring: [abcdefgh12345678, 0123456789abcdef0]}",
            "data_encryption.keyring[1]: must be 16 or 32 bytes of text (an AES-128 or AES-256 \
             key), not 17",
        ),
        (
            "data_encryption: {keyring: [abcdefgh12345678, ~]}",
            "data_encryption.keyring[1]: expected a key, not null",
        ),
        (
            "data_encryption: {keyring: [abcdefgh12345678, abcdefgh12345678]}",
            "data_encryption.keyring[1]: the same key as keyring[0]",
        ),
        (
            "data_encryption: {keyring: [qeddd145sfvddff3]}",
            "data_encryption.keyring[0]: is the key APISIX publishes in its default config",
        ),
        (
            "data_encryption: {key_ring: []}",
            "data_encryption.key_ring: unknown field, expected one of `enable_encrypt_fields`, \
             `keyring`",
        ),
        ("data_encryption: true", "data_encryption: "),
    ];
    for (yaml, expected) in cases {
        assert_error(yaml, expected);
    }
}

#[test]
fn key_errors_never_quote_the_key() {
    for yaml in [
        "deployment: {admin: {admin_key: 1234567890123}}",
        "deployment: {admin: {admin_key: s3cr3t}}",
        "deployment: {admin: {admin_key: [s3cr3t]}}",
        "deployment: {admin: {admin_key: [{name: a, key: 1234567890123}]}}",
        "deployment: {admin: {admin_key: [{name: a, key: [s3cr3t]}]}}",
        "deployment: {admin: {admin_key: [{name: a, key: 's3 cr3t'}]}}",
        "deployment: {admin: {admin_key: [{name: a, key: s3cr3t}, {name: b, key: s3cr3t}]}}",
        "data_encryption: {keyring: s3cr3t}",
        "data_encryption: {keyring: [s3cr3t]}",
        "data_encryption: {keyring: [1234567890123]}",
        "data_encryption: {keyring: [[s3cr3t]]}",
        "data_encryption: {keyring: [{s3cr3t: 1}]}",
    ] {
        let errors = errors(yaml).join("\n");
        assert!(
            errors.contains("deployment.admin.admin_key") || errors.contains("data_encryption"),
            "{errors}"
        );
        for secret in ["s3cr3t", "s3 cr3t", "1234567890123"] {
            assert!(!errors.contains(secret), "{yaml}: {errors}");
        }
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = errors(
        r"
workers: 2000
bogus: 1
node_listen: [bad, 9080, 70000]
timeouts:
  client_header_secs: 0
  send_secs: abc
  typo: 1
limits:
  max_headers: 0
deployment:
  admin:
    admin_key: [{name: a}]
    allow_admin: [nope]
    extra: true
",
    );
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "bogus",
            "node_listen[0]",
            "node_listen[2]",
            "workers",
            "timeouts.typo",
            "timeouts.client_header_secs",
            "timeouts.send_secs",
            "limits.max_headers",
            "deployment.admin.extra",
            "deployment.admin.admin_key[0].key",
            "deployment.admin.allow_admin[0]",
        ],
        "{errors:#?}"
    );
    let shown = ConfigError::Invalid(errors).to_string();
    assert!(
        shown.starts_with("invalid config:\n  bogus: unknown field"),
        "{shown}"
    );
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let errors = errors("deployment:\n  admin:\n    admin_listen: {ip: 0.0.0.0, port: 1, tls: on}\n  etcd_x: 1\n1: x");
    assert_eq!(
        errors,
        [
            "1: unknown field, expected one of `node_listen`, `ssl_listen`, `fallback_sni`, `workers`, `cpu_pinning`, \
             `io_driver`, `data_dir`, `standalone`, `trusted_addresses`, `server_header`, `log_level`, \
             `jwt_cache_size`, `jwt_es256_tables`, `ssl_trusted_certificate`, `timeouts`, `limits`, `deployment`, \
             `data_encryption`",
            "deployment.etcd_x: unknown field, expected one of `role`, `admin`",
            "deployment.admin.admin_listen.tls: unknown field, expected one of `ip`, `port`, `enable_http2`",
        ]
    );
}

#[test]
fn apisix_sections_say_where_their_settings_went() {
    let errors = errors(
        r"
apisix:
  node_listen: [9080]
  enable_ipv6: false
  ssl:
    listen: [{port: 9443}]
  data_encryption:
    keyring: [qeddd145sfvddff3]
nginx_config:
  worker_processes: auto
  http:
    keepalive_timeout: 60s
deployment:
  role_traditional:
    config_provider: etcd
  etcd:
    host: ['http://127.0.0.1:2379']
  admin:
    admin_key_required: true
    enable_admin_cors: true
plugins: [jwt-auth]
",
    );
    let expected_starts = [
        "apisix: not supported: Portcullis reads node_listen, ssl_listen, fallback_sni, workers,",
        "apisix.node_listen: move it to `node_listen`",
        "apisix.ssl.listen: move it to `ssl_listen`",
        "apisix.data_encryption: move it to `data_encryption` (same keys; AES-GCM",
        "nginx_config: not supported: Portcullis does not run nginx; it reads node_listen,",
        "nginx_config.worker_processes: move it to `workers` (`auto` is `0`)",
        "nginx_config.http.keepalive_timeout: move it to `timeouts.keepalive_secs`",
        "plugins: not supported: this APISIX setting has no Portcullis equivalent",
        "deployment.role_traditional: not supported: Portcullis does not read its routes and consumers from etcd",
        "deployment.etcd: not supported: Portcullis does not read",
        "deployment.admin.admin_key_required: not supported: the Admin API always requires a key",
        "deployment.admin.enable_admin_cors: not supported",
    ];
    assert_eq!(errors.len(), expected_starts.len(), "{errors:#?}");
    for (error, start) in errors.iter().zip(expected_starts) {
        assert!(
            error.starts_with(start),
            "{error:?} should start with {start:?}"
        );
    }
    assert!(
        errors[0].contains("at the top level, not under `apisix:`"),
        "{}",
        errors[0]
    );
}

#[test]
fn listen_addresses_must_be_distinct() {
    assert_error(
        "node_listen: ['0.0.0.0:9080', 9080]",
        "node_listen[1]: `0.0.0.0:9080` is already used by node_listen[0]",
    );
    assert_error(
        "ssl_listen: 9080",
        "ssl_listen[0]: `0.0.0.0:9080` is already used by node_listen[0]",
    );
    assert_error(
        "node_listen: '127.0.0.1:9180'",
        "deployment.admin.admin_listen: `127.0.0.1:9180` is already used by node_listen[0]",
    );
    // A disabled Admin API listens nowhere; port 0 means a fresh free port each time.
    parse("node_listen: '127.0.0.1:9180'\ndeployment: {admin: {enable_admin: false}}");
    parse("node_listen: ['127.0.0.1:0', '127.0.0.1:0']\nssl_listen: '127.0.0.1:0'");
}

#[test]
fn syntax_errors_and_a_non_mapping_top_level_fail_cleanly() {
    let syntax = errors("node_listen: [9080\nworkers: 1");
    assert!(
        syntax.len() == 1 && syntax[0].starts_with("invalid YAML: "),
        "{syntax:?}"
    );
    let duplicate = errors("workers: 1\nworkers: 2");
    assert!(
        duplicate.len() == 1 && duplicate[0].contains("duplicate"),
        "{duplicate:?}"
    );
    assert_error(
        "- 9080",
        "config file: invalid type: sequence, expected a mapping of settings",
    );
}

#[test]
fn merge_keys_are_applied() {
    let c = parse("timeouts:\n  <<: {client_header_secs: 5, send_secs: 1}\n  send_secs: 7\n");
    assert_eq!(c.timeouts.client_header, Duration::from_secs(5));
    assert_eq!(
        c.timeouts.send,
        Duration::from_secs(7),
        "explicit keys win over merged ones"
    );
}

#[test]
fn field_lists_match_the_raw_structs() {
    fn all_known<T: serde::de::DeserializeOwned>(fields: &[&str], unknown: impl Fn(&T) -> usize) {
        let yaml: String = fields.iter().map(|f| format!("{f}: ~\n")).collect();
        let raw: T = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(unknown(&raw), 0, "{fields:?}");
    }
    all_known::<RawNodeConfig>(RawNodeConfig::FIELDS, |r| r.unknown.len());
    all_known::<RawTimeouts>(RawTimeouts::FIELDS, |r| r.unknown.len());
    all_known::<RawLimits>(RawLimits::FIELDS, |r| r.unknown.len());
    all_known::<RawDeployment>(RawDeployment::FIELDS, |r| r.unknown.len());
    all_known::<RawAdmin>(RawAdmin::FIELDS, |r| r.unknown.len());
    all_known::<RawAdminKey>(RawAdminKey::FIELDS, |r| r.unknown.len());
    all_known::<RawDataEncryption>(RawDataEncryption::FIELDS, |r| r.unknown.len());
    all_known::<RawListenObject>(RawListenObject::FIELDS, |r| r.unknown.len());
}

#[test]
fn load_resolves_paths_against_the_files_directory() {
    let dir = TempDir::new("load");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "standalone: apisix.yaml\nworkers: 2\n").unwrap();
    let c = NodeConfig::load(&file).unwrap();
    assert_eq!(c.path.as_deref(), Some(file.as_path()));
    assert_eq!(c.workers, 2);
    assert_eq!(c.data_dir, dir.path().join("data"));
    assert_eq!(c.standalone, Some(dir.path().join("apisix.yaml")));
    assert!(c.data_dir.is_absolute());

    std::fs::write(&file, "workers: -1").unwrap();
    assert!(matches!(NodeConfig::load(&file), Err(ConfigError::Invalid(e)) if e.len() == 1));
}

#[test]
fn a_missing_file_is_only_an_error_when_named_explicitly() {
    let dir = TempDir::new("missing");
    let file = dir.path().join("conf/config.yaml");
    let c = NodeConfig::load_or_default(&file, false).unwrap();
    assert_eq!(c.path, None);
    assert_eq!(c.data_dir, dir.path().join("conf/data"));
    match NodeConfig::load_or_default(&file, true) {
        Err(ConfigError::Io { path, source }) => {
            assert_eq!(path, file);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a NotFound error, got {other:?}"),
    }
    // A bare file name lives in the current directory.
    let c = NodeConfig::load_or_default(Path::new("portcullis-no-such-file.yaml"), false).unwrap();
    assert_eq!(c.data_dir, std::env::current_dir().unwrap().join("data"));
    // Any other read error is reported even for the default path.
    assert!(matches!(
        NodeConfig::load_or_default(dir.path(), false),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn fallback_sni_is_a_normalised_host_name() {
    assert_eq!(
        parse("fallback_sni: WWW.Example.com.")
            .fallback_sni
            .as_deref(),
        Some("www.example.com")
    );
    let e = errors("fallback_sni: '*.example.com'");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("fallback_sni: \"*.example.com\" is not a host name"),
        "{e:?}"
    );
    assert_eq!(
        errors("fallback_sni: [a]"),
        ["fallback_sni: invalid type: sequence, expected a string"]
    );
}
