//! The process around the proxy: the command line, refusing bad configuration at start, the
//! generated Admin API key, SIGHUP reloads, graceful shutdown, I/O driver selection and workers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::client::{get, request, Conn};
use common::upstream::Upstream;
use common::{connect, one_route, Driver, Gateway, GatewayOpts, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Runs the binary with `args` and waits for it to exit (killing it after 20 s).
fn run(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portcullis {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_exits_zero_and_documents_the_flags() {
    let dir = TempDir::new("help");
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = run(args, dir.path());
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        let help = text(&out.stdout);
        assert!(help.contains("-c, --config <FILE>"), "{help}");
        assert!(help.contains("--standalone <FILE>"), "{help}");
    }
}

#[test]
fn a_bad_config_file_is_refused_naming_every_field() {
    let dir = TempDir::new("badcfg");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "node_listen: [\"nope\"]\nworkers: many\ntimeouts:\n  client_header_sec: 1\n\
         limits:\n  max_headers: 0\ndeployment:\n  admin:\n    admin_listen: \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = run(&["-c", cfg.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("portcullis: invalid config:\n"), "{err}");
    for expected in [
        "  node_listen[0]: `nope` is not `ip:port`",
        "  workers: invalid type: string \"many\", expected usize",
        "  timeouts.client_header_sec: unknown field, expected one of `client_header_secs`",
        "  limits.max_headers: ",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("  ")).count(),
        4,
        "{err}"
    );

    // A file named with -c must exist; the run subcommand takes the same flags.
    let missing = dir.path().join("missing.yaml");
    let out = run(&["run", "-c", missing.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot read config file") && err.contains("missing.yaml"),
        "{err}"
    );
}

#[test]
fn a_bad_standalone_file_is_refused_naming_every_object() {
    let dir = TempDir::new("badsa");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "node_listen: [\"127.0.0.1:1\"]\nssl_listen: []\ndeployment:\n  admin:\n    admin_listen: \"127.0.0.1:2\"\n",
    )
    .unwrap();
    let sa = dir.path().join("apisix.yaml");
    std::fs::write(
        &sa,
        "routes:\n  - id: 1\n    uri: 5\n    upstream: {nodes: {\"127.0.0.1:1\": 1}}\n  \
         - id: 2\n    uri: /x\n    upstream_id: missing\nupstreams:\n  - id: u\n    \
         nodes: {\"x\": \"y\"}\n    type: weird\n",
    )
    .unwrap();
    let out = run(
        &[
            "-c",
            cfg.to_str().unwrap(),
            "--standalone",
            sa.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("apisix.yaml: invalid configuration:"), "{err}");
    for expected in [
        "routes[0] (id 1): property \"uri\" validation failed: wrong type: expected string, got number",
        "routes[1] (id 2): upstream_id \"missing\" not found",
        "upstreams[0] (id u): property \"type\" validation failed",
        "upstreams[0] (id u): nodes[\"x\"]: wrong type: expected integer, got string",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

fn admin_get(gw: &Gateway, key: &str) -> u16 {
    request(
        gw.admin_addr(),
        format!("GET /apisix/admin/routes HTTP/1.1\r\nHost: a\r\nX-API-KEY: {key}\r\n\r\n")
            .as_bytes(),
    )
    .status
}

#[test]
fn a_generated_admin_key_is_printed_once_stored_private_and_reused() {
    let mut gw = Gateway::start(GatewayOpts {
        standalone: None,
        admin_key: false,
        ..Default::default()
    });
    let key_file = gw.dir.path().join("data").join("admin_key");
    let stored = std::fs::read_to_string(&key_file).expect("admin_key written");
    let key = stored.trim().to_string();
    assert_eq!(stored, format!("{key}\n"));
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(gw.dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    let stdout = gw.stdout();
    assert_eq!(stdout.matches(&key).count(), 1, "{stdout}");
    assert!(stdout.contains("generated an admin API key"), "{stdout}");
    assert!(!gw.stderr().contains(&key), "the key must not be logged");
    assert_eq!(admin_get(&gw, &key), 200);
    assert_eq!(admin_get(&gw, common::ADMIN_KEY), 401);

    // Restarted on the same data_dir: the same key, not printed again.
    gw.restart(false).expect("restart");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), stored);
    assert!(
        !gw.stdout().contains(&key),
        "printed again: {}",
        gw.stdout()
    );
    assert!(!gw.stdout().contains("generated"), "{}", gw.stdout());
    assert_eq!(admin_get(&gw, &key), 200);
}

#[test]
fn sighup_reloads_without_dropping_keep_alive_connections() {
    let up = Upstream::start();
    let gw = Gateway::start(GatewayOpts {
        standalone: Some(one_route("/a", up.addr, "")),
        ..Default::default()
    });
    let mut c = Conn::open(gw.addr());
    assert_eq!(c.get("/a").status, 200);
    assert_eq!(c.get("/b").status, 404);

    gw.reload(&one_route("/b", up.addr, ""));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Same connection throughout: a 404 keeps it open too.
        let r = c.get("/b");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 404);
        assert!(Instant::now() < deadline, "reload not applied in 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = c.get("/a");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error_msg"], "404 Route Not Found");
    assert!(gw.stderr().contains("configuration reloaded"));

    // A broken file keeps the running configuration, and says why.
    gw.reload("routes:\n  - id: r1\n    uri: 5\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.stderr().contains("reload failed") {
        assert!(Instant::now() < deadline, "no reload failure logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = gw.stderr();
    assert!(
        err.contains("keeping the running configuration") && err.contains("routes[0] (id r1)"),
        "{err}"
    );
    assert_eq!(c.get("/b").status, 200);
    assert_eq!(c.get("/a").status, 404);
    assert_eq!(get(gw.addr(), "/b").status, 200);
    assert_eq!(err.matches("configuration reloaded").count(), 1);
}

/// Waits for the process to exit, up to `limit`; its status and when it exited.
fn wait_exit(gw: &mut Gateway, limit: Duration) -> (std::process::ExitStatus, Instant) {
    let deadline = Instant::now() + limit;
    let mut child = gw.child.take().expect("running");
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, Instant::now());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not exit within {limit:?}: {}", gw.stderr());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `GET path` on its own connection; the handle yields the response (or the I/O error)
/// and the time it was read.
fn in_flight(
    gw: &Gateway,
    up: &Upstream,
    path: &str,
) -> std::thread::JoinHandle<(std::io::Result<common::client::Response>, Instant)> {
    let mut c = Conn::open(gw.addr());
    c.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    let handle = std::thread::spawn(move || {
        let r = c.read(false);
        (r, Instant::now())
    });
    // Only signal once the request has reached the upstream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !up.requests().iter().any(|r| r.ends_with(path)) {
        assert!(
            Instant::now() < deadline,
            "{path} never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    for driver in [Driver::Uring, Driver::Epoll] {
        let up = Upstream::start();
        let mut gw = Gateway::start(GatewayOpts {
            driver,
            standalone: Some(one_route("/*", up.addr, "")),
            ..Default::default()
        });
        // An idle keep-alive connection is closed at once by the drain.
        let mut idle = Conn::open(gw.addr());
        assert_eq!(idle.get("/idle").status, 200);
        let slow = in_flight(&gw, &up, "/slow/1500");

        let signalled = Instant::now();
        gw.signal(15);
        let mut rest = Vec::new();
        let idle_end = std::io::Read::read_to_end(&mut idle.reader, &mut rest);
        assert!(matches!(idle_end, Ok(0)), "{driver:?}: {idle_end:?}");
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "{driver:?}: idle connection closed after {:?}",
            signalled.elapsed()
        );
        // New connections are refused once the listeners are closed.
        let deadline = Instant::now() + Duration::from_secs(1);
        while std::net::TcpStream::connect(gw.addr()).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{driver:?}: still accepting after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }

        let (resp, answered) = slow.join().unwrap();
        let resp = resp.unwrap_or_else(|e| panic!("{driver:?}: in-flight request lost: {e}"));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["uri"], "/slow/1500");
        assert_eq!(resp.header("connection"), Some("close"));
        let (status, exited) = wait_exit(&mut gw, Duration::from_secs(10));
        assert!(status.success(), "{driver:?}: {status:?}: {}", gw.stderr());
        assert!(exited >= answered);
        assert!(
            exited.duration_since(answered) < Duration::from_secs(2),
            "{driver:?}: exit {:?} after the last response",
            exited.duration_since(answered)
        );
        assert!(gw.stderr().contains("shutting down"), "{}", gw.stderr());
    }
}

#[test]
fn sigterm_stops_waiting_at_the_graceful_deadline() {
    let up = Upstream::start();
    let mut gw = Gateway::start(GatewayOpts {
        extra_config: "timeouts:\n  graceful_shutdown_secs: 1\n".into(),
        standalone: Some(one_route("/*", up.addr, "")),
        ..Default::default()
    });
    let slow = in_flight(&gw, &up, "/slow/5000");
    let signalled = Instant::now();
    gw.signal(15);
    let (status, exited) = wait_exit(&mut gw, Duration::from_secs(10));
    let took = exited.duration_since(signalled);
    assert!(status.success(), "{status:?}: {}", gw.stderr());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        gw.stderr().contains("drain deadline passed"),
        "{}",
        gw.stderr()
    );
    // The cut request got no response, only the end of its connection.
    let (resp, _) = slow.join().unwrap();
    assert!(resp.is_err(), "{resp:?}");
}

fn ready_line(gw: &Gateway) -> String {
    gw.stderr()
        .lines()
        .find(|l| l.contains(" ready "))
        .expect("a ready line")
        .to_string()
}

#[test]
fn io_driver_selection_is_logged() {
    let gw = Gateway::start(GatewayOpts {
        driver: Driver::Epoll,
        ..Default::default()
    });
    let line = ready_line(&gw);
    assert!(line.contains("driver=\"epoll\""), "{line}");
    assert!(!gw.stderr().contains("io_uring"), "{}", gw.stderr());
    drop(gw);

    // auto: io_uring where the kernel allows it, else the epoll driver with one warning saying so.
    let gw = Gateway::start(GatewayOpts {
        driver: Driver::Uring,
        ..Default::default()
    });
    let line = ready_line(&gw);
    let err = gw.stderr();
    if line.contains("driver=\"io_uring\"") {
        assert!(!err.contains("using the epoll driver"), "{err}");
    } else {
        assert!(line.contains("driver=\"epoll\""), "{line}");
        assert_eq!(err.matches("using the epoll driver").count(), 1, "{err}");
    }
    assert_eq!(get(gw.addr(), "/").status, 404);
}

/// Sockets listening on `port` (any address), from the kernel's table.
fn listeners_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "0A"
        })
        .count()
}

/// Threads of `pid` named like workers.
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("portcullis-w"))
        .count()
}

#[test]
fn each_worker_has_its_own_listener() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (configured, expected) in [(3, 3), (0, cores)] {
        let gw = Gateway::start(GatewayOpts {
            workers: configured,
            ..Default::default()
        });
        let line = ready_line(&gw);
        assert!(line.contains(&format!("workers={expected}")), "{line}");
        assert_eq!(listeners_on(gw.port), expected, "workers: {configured}");
        assert_eq!(worker_threads(gw.pid().unwrap()), expected);
        // Each connection lands on one of them; all of them answer.
        for _ in 0..4 * expected {
            let mut c = Conn::open(gw.addr());
            assert_eq!(c.get("/").status, 404);
        }
        drop(connect(gw.addr()));
    }
}
