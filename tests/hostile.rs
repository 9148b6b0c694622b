//! Hostile clients and broken upstreams against the real binary, on both I/O drivers: request
//! smuggling attempts, malformed heads, size limits, slow clients, upstreams that refuse, stall,
//! answer garbage or hang up, and a few hundred connections of random junk.
//!
//! Every refusal must be the exact status with the gateway's JSON error body, a framing error must
//! end the connection, and the worker must keep serving afterwards.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::client::{get, read_response, Conn, Response};
use common::upstream::Upstream;
use common::{both_drivers, connect, free_port, one_route, Driver, Gateway, GatewayOpts};

fn start(driver: Driver, workers: usize, extra_config: &str, standalone: String) -> Gateway {
    Gateway::start(GatewayOpts {
        driver,
        workers,
        extra_config: extra_config.into(),
        standalone: Some(standalone),
        ..Default::default()
    })
}

/// Sends `raw` on a fresh connection and reads one response. Write errors are ignored: the
/// gateway may refuse a request before reading all of it.
fn send_raw(addr: SocketAddr, raw: &[u8]) -> (Response, BufReader<TcpStream>) {
    let mut s = connect(addr);
    let _ = s.write_all(raw);
    let mut reader = BufReader::new(s);
    let resp = read_response(&mut reader, false).unwrap_or_else(|e| {
        panic!(
            "no response to {:?}: {e}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    });
    (resp, reader)
}

/// Whether the gateway closed the connection (EOF or reset) rather than keeping it open.
fn is_closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    match reader.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

/// Checks a gateway error: `status`, a JSON body `{"error_msg": msg}` with its content type.
fn assert_json_error(resp: &Response, status: u16, msg: &str, case: &str) {
    assert_eq!(resp.status, status, "{case}: {}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "{case}"
    );
    assert_eq!(
        resp.json(),
        serde_json::json!({ "error_msg": msg }),
        "{case}"
    );
}

/// Sends `raw`, expects the JSON error and a closed connection, then checks the worker still
/// serves a normal request on a new connection.
fn refused(gw: &Gateway, raw: &[u8], status: u16, msg: &str, case: &str) {
    let (resp, mut reader) = send_raw(gw.addr(), raw);
    assert_json_error(&resp, status, msg, case);
    assert_eq!(resp.header("connection"), Some("close"), "{case}");
    assert!(is_closed(&mut reader), "{case}: connection left open");
    assert_alive(gw, case);
}

/// A normal request on a new connection reaches the upstream echo.
fn assert_alive(gw: &Gateway, case: &str) {
    let r = get(gw.addr(), "/alive");
    assert_eq!(r.status, 200, "after {case}: {}", r.text());
    assert_eq!(r.json()["uri"], "/alive", "after {case}");
}

fn req(lines: &str) -> Vec<u8> {
    format!("{lines}\r\n\r\n").into_bytes()
}

#[test]
fn ambiguous_framing_is_refused() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = start(driver, 2, "", one_route("/*", up.addr, ""));
        let cases: &[(&str, &[u8])] = &[
            (
                "CL + TE",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE + CL",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            ),
            (
                "two different CL",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            ),
            // RFC 9110 §8.6 lets a recipient either refuse identical duplicates or merge them;
            // the gateway refuses, so no downstream parser can read them differently.
            (
                "two identical CL",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            ),
            (
                "CL list",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
            ),
            (
                "CL with +",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
            ),
            (
                "CL negative",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            ),
            (
                "CL garbage",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello",
            ),
            (
                "CL hex",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello",
            ),
            (
                "CL empty",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            ),
            (
                "CL overflow",
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            ),
            // RFC 9112 §6.3: chunked not last means the length cannot be determined: 400. The
            // gateway also answers 400 (not 501) to codings it does not implement.
            (
                "TE chunked not last",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE unknown coding",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE identity",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            ),
            (
                "TE chunked twice",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE with trailing comma",
                b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE on HTTP/1.0",
                b"POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
        ];
        for (case, raw) in cases {
            refused(&gw, raw, 400, "Bad Request", &format!("{driver:?} {case}"));
        }
        assert!(
            up.requests().iter().all(|r| r.ends_with("/alive")),
            "{driver:?}: a refused request reached the upstream: {:?}",
            up.requests()
        );
    });
}

#[test]
fn malformed_heads_are_refused() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = start(driver, 2, "", one_route("/*", up.addr, ""));
        let bad = "Bad Request";
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            (
                "obs-fold",
                req("GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c"),
                400,
                bad,
            ),
            (
                "obs-fold with tab",
                req("GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc"),
                400,
                bad,
            ),
            (
                "space before colon",
                req("GET /x HTTP/1.1\r\nHost : a"),
                400,
                bad,
            ),
            (
                "space before first field",
                req("GET /x HTTP/1.1\r\n Host: a"),
                400,
                bad,
            ),
            (
                "bare LF line ends",
                b"GET /x HTTP/1.1\nHost: a\n\n".to_vec(),
                400,
                bad,
            ),
            (
                "bare LF in one line",
                b"GET /x HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n".to_vec(),
                400,
                bad,
            ),
            ("garbage request line", req("HELLO"), 400, bad),
            ("two words", req("HELLO WORLD"), 400, bad),
            (
                "control bytes",
                b"\x01\x02\x03\x04\r\n\r\n".to_vec(),
                400,
                bad,
            ),
            (
                "TLS hello",
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
                400,
                bad,
            ),
            (
                "space in target",
                req("GET /a b HTTP/1.1\r\nHost: a"),
                400,
                bad,
            ),
            (
                "lowercase version",
                req("GET / http/1.1\r\nHost: a"),
                400,
                bad,
            ),
            (
                "NUL in value",
                req("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b"),
                400,
                bad,
            ),
            (
                "missing Host",
                req("GET / HTTP/1.1\r\nX: y"),
                400,
                "Bad Request: missing Host header",
            ),
            (
                "two Host",
                req("GET / HTTP/1.1\r\nHost: a\r\nHost: b"),
                400,
                "Bad Request: duplicate Host header",
            ),
            (
                "HTTP/2.0",
                req("GET / HTTP/2.0\r\nHost: a"),
                505,
                "HTTP Version Not Supported",
            ),
            (
                "HTTP/3",
                req("GET / HTTP/3\r\nHost: a"),
                505,
                "HTTP Version Not Supported",
            ),
            (
                "h2 preface",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
                505,
                "HTTP Version Not Supported",
            ),
        ];
        for (case, raw, status, msg) in &cases {
            refused(&gw, raw, *status, msg, &format!("{driver:?} {case}"));
        }
        assert!(
            up.requests().iter().all(|r| r.ends_with("/alive")),
            "{driver:?}: a refused request reached the upstream: {:?}",
            up.requests()
        );
    });
}

#[test]
fn bad_chunks_are_refused_and_never_smuggle() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = start(driver, 2, "", one_route("/*", up.addr, ""));
        let head = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
        let cases: &[(&str, &str)] = &[
            ("non-hex size", "zz\r\nhello\r\n0\r\n\r\n"),
            ("size after data", "5\r\nhello\r\nzz\r\n\r\n"),
            ("17-digit size", "10000000000000005\r\nhello\r\n0\r\n\r\n"),
            ("negative size", "-5\r\nhello\r\n0\r\n\r\n"),
            ("missing CRLF after data", "5\r\nhelloXX0\r\n\r\n"),
            ("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
            ("bare LF after data", "5\r\nhello\n0\r\n\r\n"),
            ("space inside size", "5 5\r\nhello\r\n0\r\n\r\n"),
            ("bad trailer", "0\r\nno colon here\r\n\r\n"),
        ];
        for (case, body) in cases {
            let case = format!("{driver:?} {case}");
            let raw = format!("{head}{body}{smuggled}");
            refused(&gw, raw.as_bytes(), 400, "400 Bad Request", &case);
        }
        // The upstream has seen the refused requests' heads (the body is checked while it is
        // relayed) and the liveness probes, but never the request hidden behind a bad chunk.
        std::thread::sleep(Duration::from_millis(200));
        let seen = up.requests();
        assert!(
            !seen.iter().any(|r| r.contains("/smuggled")),
            "{driver:?}: smuggled request reached the upstream: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|r| r == "POST /upload" || r == "GET /alive"),
            "{driver:?}: {seen:?}"
        );
        // A valid chunked request with a pipelined follower: both are answered, in order.
        let mut c = Conn::open(gw.addr());
        c.send(
            format!("{head}5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
                .as_bytes(),
        );
        let first = c.read(false).unwrap();
        assert_eq!(first.status, 200);
        assert_eq!(first.json()["body"], "hello");
        let second = c.read(false).unwrap();
        assert_eq!(second.json()["uri"], "/next");
    });
}

#[test]
fn size_limits() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let limits =
            "limits:\n  max_header_bytes: 1024\n  max_headers: 10\n  max_body_bytes: 1000\n";
        let gw = start(driver, 2, limits, one_route("/*", up.addr, ""));

        // A head that never ends within the limit.
        let mut raw = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        raw.resize(1024, b'x');
        refused(
            &gw,
            &raw,
            431,
            "Request Header Fields Too Large",
            &format!("{driver:?} head at the limit without its end"),
        );
        // A complete head over the limit.
        let raw = req(&format!(
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}",
            "y".repeat(1500)
        ));
        refused(
            &gw,
            &raw,
            431,
            "Request Header Fields Too Large",
            &format!("{driver:?} complete head over the limit"),
        );
        // Just under the limit passes.
        let filler = 1024 - "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: \r\n\r\n".len();
        let raw = req(&format!(
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}",
            "z".repeat(filler)
        ));
        assert_eq!(raw.len(), 1024);
        let (resp, _) = send_raw(gw.addr(), &raw);
        assert_eq!(resp.status, 200, "{driver:?} head of exactly the limit");

        // Eleven fields where ten are allowed.
        let many: String = (0..10).map(|i| format!("\r\nX-{i}: v")).collect();
        refused(
            &gw,
            &req(&format!("GET /x HTTP/1.1\r\nHost: a{many}")),
            431,
            "Too Many Header Fields",
            &format!("{driver:?} too many fields"),
        );
        let nine: String = (0..9).map(|i| format!("\r\nX-{i}: v")).collect();
        let (resp, _) = send_raw(
            gw.addr(),
            &req(&format!("GET /x HTTP/1.1\r\nHost: a{nine}")),
        );
        assert_eq!(resp.status, 200, "{driver:?} ten fields");

        // A declared body over the limit is refused before any of it is read or sent upstream.
        refused(
            &gw,
            b"POST /big-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
            413,
            "413 Request Entity Too Large",
            &format!("{driver:?} Content-Length over the limit"),
        );
        // A chunked body that grows over the limit.
        let mut raw =
            b"POST /big-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            raw.extend_from_slice(b"190\r\n");
            raw.extend_from_slice(&[b'b'; 400]);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        refused(
            &gw,
            &raw,
            413,
            "413 Request Entity Too Large",
            &format!("{driver:?} chunked body over the limit"),
        );
        // Exactly the limit passes, either way.
        let body = "c".repeat(1000);
        let ok = format!("POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{body}");
        let (resp, _) = send_raw(gw.addr(), ok.as_bytes());
        assert_eq!(resp.status, 200, "{driver:?}");
        assert_eq!(resp.json()["body"], body.as_str());
        let ok = format!(
            "POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{body}\r\n0\r\n\r\n"
        );
        let (resp, _) = send_raw(gw.addr(), ok.as_bytes());
        assert_eq!(resp.status, 200, "{driver:?}");
        assert_eq!(resp.json()["body"], body.as_str());
        assert!(
            !up.requests().iter().any(|r| r.contains("/big-cl")),
            "{driver:?}: an over-long Content-Length body was forwarded"
        );
    });
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let timeouts = "timeouts:\n  client_header_secs: 1\n  keepalive_secs: 1\n";
        let gw = start(driver, 1, timeouts, one_route("/*", up.addr, ""));

        // Slowloris: a byte every 200 ms never completes the head within 1 s.
        let started = Instant::now();
        let mut s = connect(gw.addr());
        let mut answer = Vec::new();
        for b in b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Drip: drip-drip-drip\r\n".iter() {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() > Duration::from_secs(4) {
                break;
            }
            // Stop dripping once the gateway has answered.
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 4096];
            let got = s.read(&mut buf);
            s.set_nonblocking(false).unwrap();
            match got {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        let _ = s.read_to_end(&mut answer);
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
            "{driver:?}: header timeout after {elapsed:?}"
        );
        let resp = read_response(&mut &answer[..], false)
            .unwrap_or_else(|e| panic!("{driver:?}: slow head got no response ({e}): {answer:?}"));
        assert_json_error(&resp, 408, "408 Request Timeout", "slowloris");
        assert_eq!(resp.header("connection"), Some("close"));
        assert_alive(&gw, "slowloris");

        // Idle keep-alive: closed about keepalive_secs after the last response.
        let mut c = Conn::open(gw.addr());
        assert_eq!(c.get("/first").status, 200);
        let idle_from = Instant::now();
        let mut rest = Vec::new();
        let n = c.reader.read_to_end(&mut rest);
        let idle = idle_from.elapsed();
        assert!(
            matches!(n, Ok(0)),
            "{driver:?}: idle connection got {n:?} {rest:?}"
        );
        assert!(
            idle >= Duration::from_millis(800) && idle < Duration::from_secs(4),
            "{driver:?}: idle connection closed after {idle:?}"
        );
        // A connection that never sends anything is an idle one too.
        let quiet_from = Instant::now();
        let mut quiet = connect(gw.addr());
        let mut rest = Vec::new();
        assert!(matches!(quiet.read_to_end(&mut rest), Ok(0)));
        assert!(rest.is_empty());
        assert!(quiet_from.elapsed() < Duration::from_secs(4));
        assert_alive(&gw, "idle connections");
    });
}

#[test]
fn upstream_failures_map_to_json_errors() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let routes = format!(
            "routes:\n  \
             - id: down\n    uri: /down\n    upstream:\n      nodes:\n        \"{closed}\": 1\n  \
             - id: slow\n    uri: /slow/*\n    upstream:\n      nodes:\n        \"{up}\": 1\n      \
             timeout: {{connect: 1, send: 1, read: 1}}\n  \
             - id: rest\n    uri: /*\n    upstream:\n      nodes:\n        \"{up}\": 1\n",
            up = up.addr
        );
        let gw = start(driver, 1, "", routes);
        let cases: &[(&str, u16, &str)] = &[
            ("/down", 502, "502 Bad Gateway"),
            ("/garbage", 502, "502 Bad Gateway"),
            ("/reset", 502, "502 Bad Gateway"),
            ("/slow/3000", 504, "504 Gateway Timeout"),
        ];
        for (path, status, msg) in cases {
            let case = format!("{driver:?} {path}");
            let started = Instant::now();
            let (resp, _) = send_raw(
                gw.addr(),
                format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
            );
            assert_json_error(&resp, *status, msg, &case);
            if *status == 504 {
                let took = started.elapsed();
                assert!(
                    took >= Duration::from_millis(900) && took < Duration::from_secs(3),
                    "{case}: read timeout after {took:?}"
                );
            }
            assert_alive(&gw, &case);
        }
        // The same on a keep-alive connection that served a request before.
        let mut c = Conn::open(gw.addr());
        assert_eq!(c.get("/before").status, 200);
        let r = c.get("/garbage");
        assert_json_error(&r, 502, "502 Bad Gateway", "garbage after keep-alive");
        assert_alive(&gw, "keep-alive garbage");
        assert!(!gw.stderr().contains("panicked"), "{}", gw.stderr());
    });
}

/// xorshift64*: a small seeded generator, so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One hostile input: random bytes, a mutated valid request, or random lines.
fn junk(rng: &mut Rng) -> Vec<u8> {
    const VALID: &[&[u8]] = &[
        b"GET /fuzz HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /fuzz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /fuzz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /fuzz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /fuzz HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    const PIECES: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b":",
        b"\t",
        b"\0",
        b"chunked",
        b"Content-Length: ",
        b"Transfer-Encoding: ",
        b"HTTP/1.1",
        b"HTTP/2.0",
        b"ffffffffffffffffff",
        b"0\r\n\r\n",
        b"\xff\xfe",
        b"Host: a\r\n",
        b"GET / ",
        b";ext=\"",
    ];
    let mut out = Vec::new();
    match rng.below(3) {
        0 => {
            let n = rng.below(2048);
            out.extend((0..n).map(|_| rng.next() as u8));
        }
        1 => {
            out.extend_from_slice(VALID[rng.below(VALID.len())]);
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(out.len() + 1);
                match rng.below(3) {
                    0 if at < out.len() => out[at] = rng.next() as u8,
                    1 if at < out.len() => {
                        out.remove(at);
                    }
                    _ => {
                        let piece = PIECES[rng.below(PIECES.len())];
                        out.splice(at..at, piece.iter().copied());
                    }
                }
            }
        }
        _ => {
            for _ in 0..rng.below(40) {
                out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
    }
    out
}

#[test]
fn random_junk_never_kills_a_worker() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let timeouts = "timeouts:\n  client_header_secs: 2\n  client_body_secs: 2\n";
        let gw = start(driver, 2, timeouts, one_route("/*", up.addr, ""));
        let addr = gw.addr();
        let threads: Vec<_> = (0..16u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t + 1) * 0x1234_5678_9abc));
                    for _ in 0..20 {
                        let bytes = junk(&mut rng);
                        let Ok(mut s) = TcpStream::connect(addr) else {
                            panic!("gateway stopped accepting")
                        };
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let _ = s.write_all(&bytes);
                        let _ = s.shutdown(Shutdown::Write);
                        let mut out = Vec::new();
                        let _ = s.read_to_end(&mut out);
                        // Whatever came back starts like an HTTP response.
                        assert!(
                            out.is_empty() || out.starts_with(b"HTTP/1.1 "),
                            "{:?}",
                            String::from_utf8_lossy(&out)
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("fuzz thread");
        }
        assert_alive(&gw, &format!("{driver:?} random junk"));
        let stderr = gw.stderr();
        assert!(!stderr.contains("panicked"), "{driver:?}: {stderr}");
    });
}
