//! Heap allocations per proxied request, counted exactly.
//!
//! `cargo bench --bench allocs` starts the gateway in this process (one worker, a standalone
//! configuration), a minimal upstream on a loopback thread and a keep-alive client, all three
//! written so that their own loops allocate nothing. A global allocator wrapping mimalloc
//! counts every allocation and reallocation; after a warm-up (pools filled, caches primed,
//! buffers grown), the count over N requests divided by N is the gateway's cost per request
//! on its steady-state hot path. Unlike timings, the figure is the same on a busy machine.
//!
//! Scenarios: a route without plugins, jwt-auth HS256, jwt-auth ES256 and EdDSA (served from
//! the verified-token cache), limit-count on a route, and jwt-auth HS256 with the consumer's
//! own limit-count quota.

use std::alloc::{GlobalAlloc, Layout};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use portcullis::config::NodeConfig;
use portcullis::jwt::{sign, Alg, SignKey};
use portcullis::model::load_standalone_file;
use portcullis::plugins::{credentials, Registry};
use portcullis::proxy::Shared;
use portcullis::snapshot::compile;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new as u64, Ordering::Relaxed);
        mimalloc::MiMalloc.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        mimalloc::MiMalloc.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BODY: &[u8] = b"{\"hello\":\"world\"}";
const WARMUP: usize = 2_000;
const MEASURED: usize = 20_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Index just past the first `\r\n\r\n` in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// An upstream that answers every request head with the same 200; bodiless requests only.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = listener.local_addr().expect("upstream address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve_upstream(conn));
        }
    });
    port
}

fn serve_upstream(mut conn: TcpStream) {
    let mut reply = [0u8; 128];
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n";
    reply[..head.len()].copy_from_slice(head);
    reply[head.len()..head.len() + BODY.len()].copy_from_slice(BODY);
    let reply = &reply[..head.len() + BODY.len()];
    let mut buf = [0u8; 16384];
    let mut have = 0;
    loop {
        match conn.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        while let Some(end) = head_end(&buf[..have]) {
            if conn.write_all(reply).is_err() {
                return;
            }
            buf.copy_within(end..have, 0);
            have -= end;
        }
        if have == buf.len() {
            return;
        }
    }
}

/// Sends `req` and reads one response; panics unless it is a 200 with the upstream's body.
fn round_trip(conn: &mut TcpStream, req: &[u8], buf: &mut [u8; 16384]) {
    conn.write_all(req).expect("send request");
    let mut have = 0;
    loop {
        let n = conn.read(&mut buf[have..]).expect("read response");
        assert!(n > 0, "gateway closed the connection");
        have += n;
        if let Some(end) = head_end(&buf[..have]) {
            if have >= end + BODY.len() && buf[..have].ends_with(BODY) {
                assert!(buf.starts_with(b"HTTP/1.1 200 "), "not a 200: {:?}", {
                    String::from_utf8_lossy(&buf[..have]).into_owned()
                });
                return;
            }
        }
    }
}

fn pem(dir: &Path, name: &str, args: &[&str]) -> String {
    let out = dir.join(name);
    let status = std::process::Command::new("openssl")
        .args(args)
        .arg("-out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is required (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?} failed");
    std::fs::read_to_string(out).expect("read generated key")
}

fn public_of(dir: &Path, name: &str, private: &Path) -> String {
    let p = private.to_str().expect("utf-8 path");
    pem(dir, name, &["pkey", "-in", p, "-pubout"])
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("          {l}\n")).collect()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("portcullis-allocs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let es = pem(
        &dir,
        "es.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let ed = pem(&dir, "ed.pem", &["genpkey", "-algorithm", "ed25519"]);
    let es_pub = public_of(&dir, "es.pub", &dir.join("es.pem"));
    let ed_pub = public_of(&dir, "ed.pub", &dir.join("ed.pem"));
    let secret = "allocs-bench-hs256-secret-long-enough";

    let up = upstream();
    let port = free_port();
    let node = |u: u16| format!("{{ type: roundrobin, nodes: {{ \"127.0.0.1:{u}\": 1 }} }}");
    let standalone = format!(
        "routes:
  - {{ id: none, uri: /hello, upstream: {n} }}
  - id: lc
    uri: /lc
    plugins: {{ limit-count: {{ count: 1000000000, time_window: 3600, key_type: var, key: remote_addr }} }}
    upstream: {n}
  - {{ id: jwt, uri: /jwt, plugins: {{ jwt-auth: {{}} }}, upstream: {n} }}
consumers:
  - username: hs
    plugins: {{ jwt-auth: {{ key: hs-key, secret: {secret} }} }}
  - username: lc
    plugins:
      jwt-auth: {{ key: lc-key, secret: {secret} }}
      limit-count: {{ count: 1000000000, time_window: 3600, key: consumer_name }}
  - username: es
    plugins:
      jwt-auth:
        key: es-key
        algorithm: ES256
        public_key: |
{es_pub}  - username: ed
    plugins:
      jwt-auth:
        key: ed-key
        algorithm: EdDSA
        public_key: |
{ed_pub}",
        n = node(up),
        es_pub = indent(&es_pub),
        ed_pub = indent(&ed_pub),
    );
    let file = dir.join("apisix.yaml");
    std::fs::write(&file, standalone).expect("write standalone file");
    let config = NodeConfig::from_yaml(
        &format!(
            "node_listen: [\"127.0.0.1:{port}\"]\nworkers: 1\nlog_level: error\n\
             deployment:\n  admin:\n    admin_listen: \"127.0.0.1:{}\"\n    \
             admin_key: [{{name: a, key: allocs-bench-admin-key-0123, role: admin}}]\n",
            free_port()
        ),
        &dir,
    )
    .expect("node config");
    let set = load_standalone_file(&file, &Registry).expect("standalone file");
    let index = credentials::index_of(&set.consumers).expect("consumer index");
    let snapshot = compile(&set, Arc::new(index)).expect("compile");
    let gateway =
        portcullis::runtime::start(Arc::new(Shared::new(config, snapshot))).expect("start");

    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 86_400;
    let token = |alg: Alg, key: SignKey, k: &str| {
        sign(
            alg,
            &key,
            &serde_json::Map::new(),
            &serde_json::json!({ "key": k, "exp": exp }),
        )
        .expect("sign")
    };
    let hs = token(Alg::HS256, SignKey::Hmac(secret.into()), "hs-key");
    let lc = token(Alg::HS256, SignKey::Hmac(secret.into()), "lc-key");
    let es_tok = token(Alg::ES256, SignKey::Pem(es), "es-key");
    let ed_tok = token(Alg::EdDSA, SignKey::Pem(ed), "ed-key");
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: allocs\r\n{auth}\r\n")
            .into_bytes()
    };
    let scenarios = [
        ("no plugin", get("/hello", None)),
        ("limit-count", get("/lc", None)),
        ("jwt-auth HS256", get("/jwt", Some(&hs))),
        ("jwt-auth ES256 (cached)", get("/jwt", Some(&es_tok))),
        ("jwt-auth EdDSA (cached)", get("/jwt", Some(&ed_tok))),
        ("jwt-auth HS256 + limit-count", get("/jwt", Some(&lc))),
    ];

    println!(
        "{:<30} {:>14} {:>14}",
        "scenario", "allocs/request", "bytes/request"
    );
    let mut buf = Box::new([0u8; 16384]);
    for (name, req) in &scenarios {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        conn.set_nodelay(true).expect("nodelay");
        for _ in 0..WARMUP {
            round_trip(&mut conn, req, &mut buf);
        }
        let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
        for _ in 0..MEASURED {
            round_trip(&mut conn, req, &mut buf);
        }
        let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
        println!(
            "{name:<30} {:>14.2} {:>14.1}",
            (a1 - a0) as f64 / MEASURED as f64,
            (b1 - b0) as f64 / MEASURED as f64
        );
    }
    gateway.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
