//! Test harness: the real `portcullis` binary on free loopback ports, a real upstream server on
//! loopback (see [`upstream`]), and a small raw HTTP/1.1 client (see [`client`]).
#![allow(dead_code)]

pub mod client;
pub mod pki;
pub mod redis;
pub mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free right now on 127.0.0.1 (the gateway's workers bind it with SO_REUSEPORT, so it
/// has to be chosen before they start).
///
/// Ports come from 10000-31999, below Linux's ephemeral range (32768-60999): a port the
/// kernel hands out for `bind(0)` can be taken again, between the probe and the gateway's own
/// bind, by any outgoing connection of a test running in parallel (seen in CI as "Address
/// already in use"). Within the range, each test process walks its own sequence (from its
/// pid) and skips ports something already listens on.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:10000-31999");
}

/// Calls `attempt` until it answers `status` (Admin API changes reach every worker within
/// milliseconds) and returns that answer; fails after 5 s, naming `what` and the last answer.
pub fn wait_for_status(
    what: &str,
    status: u16,
    attempt: impl Fn() -> client::Response,
) -> client::Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = attempt();
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {} after 5 s: {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which I/O driver the gateway runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring (falls back to epoll where the kernel lacks it).
    Uring,
    /// The epoll fallback, forced.
    Epoll,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("portcullis-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options for starting a gateway.
pub struct GatewayOpts {
    pub driver: Driver,
    pub workers: usize,
    /// Extra top-level YAML appended to the generated config.yaml.
    pub extra_config: String,
    /// The standalone (apisix.yaml) content; `None` runs on the Admin API and its store.
    pub standalone: Option<String>,
    /// Write [`ADMIN_KEY`] into the config; `false` leaves `admin_key` out, so the gateway
    /// generates one in `data_dir`.
    pub admin_key: bool,
}

impl Default for GatewayOpts {
    fn default() -> Self {
        GatewayOpts {
            driver: Driver::Uring,
            workers: 2,
            extra_config: String::new(),
            standalone: Some("routes: []\n".into()),
            admin_key: true,
        }
    }
}

/// A running gateway process, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Gateway {
    pub child: Option<Child>,
    pub port: u16,
    pub admin_port: u16,
    /// The TLS listener (`ssl_listen`), unless `extra_config` sets its own.
    pub ssl_port: u16,
    pub dir: TempDir,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
}

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

impl Gateway {
    pub fn start(opts: GatewayOpts) -> Gateway {
        Self::try_start(opts).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    pub fn try_start(opts: GatewayOpts) -> Result<Gateway, String> {
        let dir = TempDir::new("gw");
        let port = free_port();
        // Two probes may return the same just-released port.
        let mut admin_port = free_port();
        while admin_port == port {
            admin_port = free_port();
        }
        let mut ssl_port = free_port();
        while ssl_port == port || ssl_port == admin_port {
            ssl_port = free_port();
        }
        // Never the default 0.0.0.0:9443, which tests running in parallel would share.
        let ssl_listen = if opts.extra_config.contains("ssl_listen") {
            String::new()
        } else {
            format!("ssl_listen: [\"127.0.0.1:{ssl_port}\"]\n")
        };
        let driver = match opts.driver {
            Driver::Uring => "auto",
            Driver::Epoll => "epoll",
        };
        let config = format!(
            "node_listen: [\"127.0.0.1:{port}\"]\n{ssl_listen}workers: {}\nio_driver: {driver}\n\
             data_dir: data\nlog_level: debug\n{}\
             deployment:\n  admin:\n    admin_listen: \"127.0.0.1:{admin_port}\"\n{}{}",
            opts.workers,
            if opts.standalone.is_some() {
                "standalone: apisix.yaml\n"
            } else {
                ""
            },
            if opts.admin_key {
                format!("    admin_key: [{{name: admin, key: {ADMIN_KEY}, role: admin}}]\n")
            } else {
                String::new()
            },
            opts.extra_config
        );
        std::fs::write(dir.path().join("config.yaml"), config).map_err(|e| e.to_string())?;
        if let Some(standalone) = &opts.standalone {
            std::fs::write(dir.path().join("apisix.yaml"), standalone)
                .map_err(|e| e.to_string())?;
        }
        let stderr_path = dir.path().join("stderr.log");
        let stdout_path = dir.path().join("stdout.log");
        let mut gw = Gateway {
            child: None,
            port,
            admin_port,
            ssl_port,
            dir,
            stderr_path,
            stdout_path,
        };
        gw.spawn()?;
        Ok(gw)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let stderr = std::fs::File::create(&self.stderr_path).map_err(|e| e.to_string())?;
        let stdout = std::fs::File::create(&self.stdout_path).map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("-c")
            .arg(self.dir.path().join("config.yaml"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Stops the process (SIGKILL when `kill9`, else SIGTERM and wait) and starts it again on
    /// the same config, data directory and ports.
    pub fn restart(&mut self, kill9: bool) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            if kill9 {
                let _ = child.kill();
            } else {
                self.signal_child(&child, 15);
            }
            let _ = child.wait();
        }
        self.spawn()
    }

    pub fn ssl_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ssl_port))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin_port))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited with {status}: {}", self.stderr()));
                }
            }
            if self.stderr().contains("ready") && TcpStream::connect(self.addr()).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready in 20 s: {}", self.stderr()))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the current process printed on stdout (the file is recreated on each start).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// The process id of the running gateway.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Rewrites the standalone file and sends SIGHUP.
    pub fn reload(&self, standalone: &str) {
        std::fs::write(self.dir.path().join("apisix.yaml"), standalone).expect("write standalone");
        self.signal(libc_sighup());
    }

    pub fn signal(&self, sig: i32) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Sends SIGTERM and waits for the exit (up to `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal(15);
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

fn libc_sighup() -> i32 {
    1
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, 15);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Gateway {
    fn signal_child(&self, child: &Child, sig: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status();
    }
}

/// A standalone file with one route `uri` → `upstream` (host:port), plus `extra` route fields.
pub fn one_route(uri: &str, upstream: SocketAddr, extra: &str) -> String {
    format!(
        "routes:\n  - id: r1\n    uri: \"{uri}\"\n{extra}    upstream:\n      type: roundrobin\n      nodes:\n        \"{upstream}\": 1\n"
    )
}

/// Connects to the gateway with read/write timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("gateway accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends raw bytes and reads until the server closes (or the read times out).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Runs `f` once per driver (io_uring and the forced epoll fallback).
pub fn both_drivers(f: impl Fn(Driver)) {
    f(Driver::Uring);
    f(Driver::Epoll);
}
