//! The HTTP/1.1 proxy against the real binary over loopback: keep-alive and pipelining, request
//! and response body framings, `Expect: 100-continue`, bodiless responses, connection closing,
//! stale pooled upstream connections, forwarding headers and `pass_host`.
//!
//! Tests about I/O run on both drivers (io_uring and forced epoll). Gateways run one worker, so
//! one client connection and the upstream pool it uses live on the same core.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;

use common::client::{read_response, request, Conn, Response};
use common::upstream::Upstream;
use common::{both_drivers, one_route, Driver, Gateway, GatewayOpts};
use serde_json::json;

fn start(driver: Driver, standalone: String, extra_config: &str) -> Gateway {
    Gateway::start(GatewayOpts {
        driver,
        workers: 1,
        extra_config: extra_config.into(),
        standalone: Some(standalone),
        ..Default::default()
    })
}

/// A gateway with one catch-all route to `up`.
fn gateway_to(driver: Driver, up: &Upstream) -> Gateway {
    start(driver, one_route("/*", up.addr, ""), "")
}

/// A request with a `Content-Length` body.
fn with_body(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: test.local\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A request with a chunked body, cut into chunks of `chunk` bytes.
fn chunked(method: &str, path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(chunk) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

/// `n` bytes of printable text that changes from byte to byte, so a lost, repeated or
/// reordered slice shows.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 4096) % 36])
        .collect()
}

fn echo_uri(r: &Response) -> String {
    r.json()["uri"].as_str().unwrap_or_default().to_string()
}

fn echo_body(r: &Response) -> String {
    r.json()["body"].as_str().unwrap_or_default().to_string()
}

fn echo_connection(r: &Response) -> u64 {
    r.json()["connection"]
        .as_u64()
        .expect("echo has a connection number")
}

/// Asserts the server closes `c` after the response just read: no further byte, then EOF.
fn assert_closed(c: &mut Conn) {
    let mut rest = Vec::new();
    c.reader
        .read_to_end(&mut rest)
        .expect("the gateway closes the connection (no read timeout)");
    assert!(
        rest.is_empty(),
        "bytes after the last response: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn keep_alive_reuses_client_and_upstream_connections() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());
        for i in 1..=5 {
            let r = c.get(&format!("/ka/{i}"));
            assert_eq!(r.status, 200, "{driver:?} request {i}");
            assert_eq!(echo_uri(&r), format!("/ka/{i}"));
            assert_eq!(
                echo_connection(&r),
                1,
                "{driver:?}: upstream connection reused"
            );
            assert_eq!(r.json()["served_on_connection"], i);
            assert_eq!(r.header("connection"), None);
        }
        assert_eq!(up.connections(), 1, "{driver:?}");
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());
        let mut raw = b"GET /p/1 HTTP/1.1\r\nHost: test.local\r\n\r\n".to_vec();
        raw.extend(with_body("POST", "/p/2", b"second"));
        raw.extend(b"HEAD /p/3 HTTP/1.1\r\nHost: test.local\r\n\r\n");
        raw.extend(chunked("PUT", "/p/4", b"fourth body", 3));
        raw.extend(b"GET /p/5?q=1 HTTP/1.1\r\nHost: test.local\r\n\r\n");
        c.send(&raw);

        let r1 = c.read(false).unwrap();
        assert_eq!(
            (r1.status, echo_uri(&r1)),
            (200, "/p/1".into()),
            "{driver:?}"
        );
        let r2 = c.read(false).unwrap();
        assert_eq!(echo_uri(&r2), "/p/2");
        assert_eq!(r2.json()["method"], "POST");
        assert_eq!(echo_body(&r2), "second");
        let r3 = c.read(true).unwrap();
        assert_eq!(r3.status, 200);
        assert!(r3.body.is_empty());
        let r4 = c.read(false).unwrap();
        assert_eq!(echo_uri(&r4), "/p/4");
        assert_eq!(echo_body(&r4), "fourth body");
        let r5 = c.read(false).unwrap();
        assert_eq!(echo_uri(&r5), "/p/5?q=1");
        let order: Vec<String> = up.seen().into_iter().map(|s| s.uri).collect();
        assert_eq!(order, ["/p/1", "/p/2", "/p/3", "/p/4", "/p/5?q=1"]);

        // Bodies bigger than the read buffer, each followed in the same write by a request.
        let big = pattern(300 * 1024);
        let mut raw = with_body("POST", "/p/6", &big);
        raw.extend(chunked("POST", "/p/7", &big, 10_000));
        raw.extend(b"GET /p/8 HTTP/1.1\r\nHost: test.local\r\n\r\n");
        // Written from another thread: the answers come back while the requests still go out.
        let mut w = c.writer.try_clone().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&raw));
        for (path, body) in [("/p/6", &big[..]), ("/p/7", &big[..]), ("/p/8", b"")] {
            let r = c.read(false).unwrap();
            assert_eq!(echo_uri(&r), path, "{driver:?}");
            assert!(echo_body(&r).as_bytes() == body, "{driver:?}: {path} body");
        }
        writer.join().unwrap().unwrap();
    });
}

#[test]
fn request_bodies_reach_the_upstream_intact() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());

        c.send(&with_body("POST", "/cl", b"hello=world"));
        let r = c.read(false).unwrap();
        assert_eq!(echo_body(&r), "hello=world", "{driver:?}");
        assert_eq!(r.echoed_header("content-length").as_deref(), Some("11"));

        // Chunk extensions and odd chunk sizes; the upstream gets the decoded bytes.
        c.send(
            b"POST /te HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
        );
        let r = c.read(false).unwrap();
        assert_eq!(echo_body(&r), "hello world");
        assert_eq!(r.echoed_header("content-length"), None);

        // Bigger than any buffer of the gateway: it has to stream.
        let big = pattern(1 << 20);
        c.send(&with_body("PUT", "/big-cl", &big));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.echoed_header("content-length").as_deref(),
            Some("1048576")
        );
        assert!(
            echo_body(&r).as_bytes() == big,
            "{driver:?}: 1 MiB length body changed"
        );

        c.send(&chunked("POST", "/big-te", &big, 40_000));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert!(
            echo_body(&r).as_bytes() == big,
            "{driver:?}: 1 MiB chunked body changed"
        );

        // The connection is still in step.
        assert_eq!(echo_uri(&c.get("/after")), "/after");
        assert_eq!(up.connections(), 1);
    });
}

#[test]
fn response_bodies_in_every_framing_are_relayed() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());

        let n = 3_000_000;
        let r = c.get(&format!("/big/{n}"));
        assert_eq!(r.status, 200, "{driver:?}");
        assert_eq!(r.header("content-length"), Some("3000000"));
        assert_eq!(r.body.len(), n);
        assert!(r.body.iter().all(|&b| b == b'x'));

        let r = c.get("/chunked");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.text(), "hello world");

        // Close-delimited upstream body: re-framed as chunked, so the client keeps its connection.
        let r = c.get("/close");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.header("connection"), None);
        assert_eq!(r.text(), "until-close");

        let r = c.get("/after");
        assert_eq!(echo_uri(&r), "/after", "{driver:?}");
    });
}

/// Reads one response head as raw text (for interim responses, which the client skips).
fn read_interim(c: &mut Conn) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut line = Vec::new();
        let n = c
            .reader
            .read_until(b'\n', &mut line)
            .expect("a response head");
        assert!(n > 0, "closed before a response head");
        head.extend(line);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());
        c.send(
            b"POST /upload HTTP/1.1\r\nHost: test.local\r\nExpect: 100-continue\r\n\
              Content-Length: 13\r\n\r\n",
        );
        assert_eq!(
            read_interim(&mut c),
            "HTTP/1.1 100 Continue\r\n\r\n",
            "{driver:?}"
        );
        c.send(b"body after100");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(echo_body(&r), "body after100");
        // The gateway answered the expectation itself.
        assert_eq!(r.echoed_header("expect"), None);

        // Chunked body behind an expectation.
        c.send(
            b"POST /upload2 HTTP/1.1\r\nHost: test.local\r\nExpect: 100-continue\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(read_interim(&mut c), "HTTP/1.1 100 Continue\r\n\r\n");
        c.send(b"4\r\nabcd\r\n0\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(echo_body(&r), "abcd");
    });
}

#[test]
fn head_204_and_304_have_no_body_and_keep_the_connection() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());

        c.send(b"HEAD /h HTTP/1.1\r\nHost: test.local\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.status, 200, "{driver:?}");
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        assert!(len > 0, "HEAD keeps the upstream's Content-Length");

        c.send(b"HEAD /big/100000 HTTP/1.1\r\nHost: test.local\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.header("content-length"), Some("100000"));

        c.send(b"HEAD /chunked HTTP/1.1\r\nHost: test.local\r\n\r\n");
        assert_eq!(c.read(true).unwrap().status, 200);

        for code in [204, 304] {
            let r = c.get(&format!("/status/{code}"));
            assert_eq!(r.status, code, "{driver:?}");
            assert_eq!(r.header("content-length"), None);
            assert_eq!(r.header("transfer-encoding"), None);
            assert!(r.body.is_empty());
        }
        // Any stray body byte above would break this response's parse.
        let r = c.get("/after");
        assert_eq!(echo_uri(&r), "/after", "{driver:?}");
        assert_eq!(up.connections(), 1);
    });
}

#[test]
fn connection_close_and_http10_close_after_the_response() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);

        let mut c = Conn::open(gw.addr());
        c.send(b"GET /c1 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!((r.status, echo_uri(&r)), (200, "/c1".into()), "{driver:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert_closed(&mut c);

        let mut c = Conn::open(gw.addr());
        c.send(b"GET /c2 HTTP/1.0\r\nHost: test.local\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(echo_uri(&r), "/c2");
        assert_eq!(r.header("connection"), Some("close"));
        assert_closed(&mut c);

        // HTTP/1.0 cannot take chunked: a streamed body ends with the connection.
        let mut c = Conn::open(gw.addr());
        c.send(b"GET /chunked HTTP/1.0\r\nHost: test.local\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.text(), "hello world");

        // HTTP/1.0 asking for keep-alive gets it, and says so.
        let mut c = Conn::open(gw.addr());
        for path in ["/k1", "/k2"] {
            c.send(
                format!(
                    "GET {path} HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n"
                )
                .as_bytes(),
            );
            let r = c.read(false).unwrap();
            assert_eq!(echo_uri(&r), path, "{driver:?}");
            assert_eq!(r.header("connection"), Some("keep-alive"));
        }
    });
}

#[test]
fn stale_pooled_connections_are_retried_only_when_safe() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway_to(driver, &up);
        let mut c = Conn::open(gw.addr());

        // The upstream drops the next request on its pooled connection: a GET is sent again on
        // a fresh connection.
        assert_eq!(echo_connection(&c.get("/drop-next")), 1, "{driver:?}");
        let r = c.get("/again");
        assert_eq!(r.status, 200, "{driver:?}");
        assert_eq!(echo_connection(&r), 2);
        assert_eq!(up.seen_count("GET", "/again"), 2);

        // An idempotent PUT whose body went out with its head is resent whole.
        assert_eq!(c.get("/drop-next").status, 200);
        c.send(&with_body("PUT", "/put", b"put body"));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200, "{driver:?}");
        assert_eq!((echo_connection(&r), echo_body(&r)), (3, "put body".into()));
        assert_eq!(up.seen_count("PUT", "/put"), 2);

        // A POST is never sent twice (RFC 9112 §9.3.1): 502, and the client connection closes.
        assert_eq!(c.get("/drop-next").status, 200);
        c.send(&with_body("POST", "/post", b"pay once"));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 502, "{driver:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert_closed(&mut c);
        assert_eq!(up.seen_count("POST", "/post"), 1);

        // Nor a POST without a body.
        let mut c = Conn::open(gw.addr());
        assert_eq!(c.get("/drop-next").status, 200);
        c.send(b"POST /post-empty HTTP/1.1\r\nHost: test.local\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 502, "{driver:?}: POST without a body replayed");
        assert_eq!(up.seen_count("POST", "/post-empty"), 1);

        // Nor a PUT whose body was streamed (it cannot be sent again).
        let mut c = Conn::open(gw.addr());
        assert_eq!(c.get("/drop-next").status, 200);
        let big = pattern(256 * 1024);
        c.send(&with_body("PUT", "/put-big", &big));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 502, "{driver:?}");
        assert_eq!(up.seen_count("PUT", "/put-big"), 1);

        // The upstream closes a connection right after answering on it: the next request
        // still succeeds (the pool notices, or the retry covers the race).
        let mut c = Conn::open(gw.addr());
        assert_eq!(c.get("/then-close").status, 200);
        let r = c.get("/after-close");
        assert_eq!((r.status, echo_uri(&r)), (200, "/after-close".into()));

        // `Connection: close` from the upstream: that connection is not pooled, and the header
        // is not passed to the client, whose connection stays open.
        let before = up.connections();
        let r = c.get("/conn-close");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
        let r = c.get("/next");
        assert_eq!(echo_uri(&r), "/next");
        assert_eq!(echo_connection(&r) as usize, before + 1, "{driver:?}");
    });
}

/// The headers a client sends that are only for the next hop, or forwarding claims.
const CLIENT_HEADERS: &str = "Host: fwd.example\r\n\
    Connection: keep-alive, X-Hop-Named\r\n\
    X-Hop-Named: secret\r\n\
    Keep-Alive: timeout=5\r\n\
    TE: trailers\r\n\
    Trailer: X-Checksum\r\n\
    Upgrade: h2c\r\n\
    Proxy-Connection: keep-alive\r\n\
    X-Kept: yes\r\n\
    X-Forwarded-For: 1.2.3.4\r\n\
    X-Real-IP: 9.9.9.9\r\n\
    X-Forwarded-Proto: https\r\n\
    X-Forwarded-Host: claimed.example\r\n\
    X-Forwarded-Port: 8443\r\n\
    Forwarded: for=1.2.3.4;proto=https;host=claimed.example\r\n";

fn forwarded_request(gw: &Gateway) -> Response {
    request(
        gw.addr(),
        format!("GET /fwd HTTP/1.1\r\n{CLIENT_HEADERS}\r\n").as_bytes(),
    )
}

fn assert_hop_by_hop_removed(r: &Response) {
    for name in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "x-hop-named",
    ] {
        assert_eq!(r.echoed_header(name), None, "{name} reached the upstream");
    }
    assert_eq!(r.echoed_header("x-kept").as_deref(), Some("yes"));
    let headers = r.json()["headers"].as_array().unwrap().clone();
    for name in [
        "host",
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
    ] {
        let n = headers
            .iter()
            .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .count();
        assert_eq!(n, 1, "{name} sent {n} times");
    }
}

#[test]
fn forwarding_headers_from_an_untrusted_client_are_overwritten() {
    let up = Upstream::start();
    let gw = gateway_to(Driver::Uring, &up);
    let r = forwarded_request(&gw);
    assert_eq!(r.status, 200);
    assert_hop_by_hop_removed(&r);
    assert_eq!(r.echoed_header("host").as_deref(), Some("fwd.example"));
    assert_eq!(
        r.echoed_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(r.echoed_header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        r.echoed_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-host").as_deref(),
        Some("fwd.example")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-port"),
        Some(gw.port.to_string())
    );
    assert_eq!(
        r.echoed_header("forwarded"),
        None,
        "an untrusted client's Forwarded is dropped"
    );

    // Responses carry the gateway's Server header (not the upstream's) and a Date.
    assert_eq!(r.header_count("server"), 1);
    assert_eq!(
        r.header("server"),
        Some(format!("Portcullis/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(r.header_count("date"), 1);
}

#[test]
fn forwarding_headers_from_a_trusted_client_are_kept() {
    let up = Upstream::start();
    let gw = start(
        Driver::Uring,
        one_route("/*", up.addr, ""),
        "trusted_addresses: [\"127.0.0.1\"]\nserver_header: \"Edge/7\"\n",
    );
    let r = forwarded_request(&gw);
    assert_eq!(r.status, 200);
    assert_hop_by_hop_removed(&r);
    assert_eq!(
        r.echoed_header("x-forwarded-for").as_deref(),
        Some("1.2.3.4, 127.0.0.1")
    );
    // X-Real-IP is always the connection's address.
    assert_eq!(r.echoed_header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        r.echoed_header("x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-host").as_deref(),
        Some("claimed.example")
    );
    assert_eq!(r.echoed_header("x-forwarded-port").as_deref(), Some("8443"));
    assert_eq!(
        r.echoed_header("forwarded").as_deref(),
        Some("for=1.2.3.4;proto=https;host=claimed.example")
    );
    assert_eq!(r.header("server"), Some("Edge/7"));
    assert_eq!(r.header_count("server"), 1);

    // A trusted client that claims nothing gets the observed values.
    let r = common::client::get(gw.addr(), "/plain");
    assert_eq!(
        r.echoed_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-host").as_deref(),
        Some("test.local")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-port"),
        Some(gw.port.to_string())
    );
    // The gateway's own error responses carry the configured Server too.
    let r = request(gw.addr(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 400, "HTTP/1.1 without Host");
    assert_eq!(r.header("server"), Some("Edge/7"));
}

#[test]
fn server_header_can_be_turned_off() {
    let up = Upstream::start();
    let gw = start(
        Driver::Uring,
        one_route("/*", up.addr, ""),
        "server_header: \"\"\n",
    );
    let r = common::client::get(gw.addr(), "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("server"), None, "neither ours nor the upstream's");
}

#[test]
fn pass_host_pass_node_and_rewrite() {
    let up = Upstream::start();
    let node = |pass_host: serde_json::Value| {
        let mut u = json!({"type": "roundrobin", "nodes": {up.addr.to_string(): 1}});
        u.as_object_mut()
            .unwrap()
            .extend(pass_host.as_object().unwrap().clone());
        u
    };
    let standalone = json!({"routes": [
        {"id": "pass", "uri": "/pass", "upstream": node(json!({"pass_host": "pass"}))},
        {"id": "default", "uri": "/default", "upstream": node(json!({}))},
        {"id": "node", "uri": "/node", "upstream": node(json!({"pass_host": "node"}))},
        {"id": "rewrite", "uri": "/rewrite", "upstream":
            node(json!({"pass_host": "rewrite", "upstream_host": "rewritten.example"}))},
    ]});
    let gw = start(Driver::Uring, standalone.to_string(), "");
    let host_seen = |path: &str| {
        let r = request(
            gw.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: Client.Example:8080\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "{path}");
        r.echoed_header("host")
    };
    assert_eq!(host_seen("/pass").as_deref(), Some("Client.Example:8080"));
    assert_eq!(
        host_seen("/default").as_deref(),
        Some("Client.Example:8080")
    );
    assert_eq!(host_seen("/node"), Some(up.addr.to_string()));
    assert_eq!(host_seen("/rewrite").as_deref(), Some("rewritten.example"));

    // An absolute-form target names the host: the Host field is ignored, and a proxy sends the
    // target's authority instead (RFC 9112 §3.2.2), as the router already does.
    let r = request(
        gw.addr(),
        b"GET http://target.example:81/pass?a=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/pass?a=1");
    assert_eq!(
        r.echoed_header("host").as_deref(),
        Some("target.example:81")
    );
    assert_eq!(
        r.echoed_header("x-forwarded-host").as_deref(),
        Some("target.example")
    );
}

#[test]
fn absolute_form_without_a_path_keeps_its_query() {
    let up = Upstream::start();
    let gw = gateway_to(Driver::Uring, &up);
    let r = request(
        gw.addr(),
        b"GET http://test.local?x=1&y=2 HTTP/1.1\r\nHost: test.local\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/?x=1&y=2");
    let r = request(
        gw.addr(),
        b"GET http://test.local HTTP/1.1\r\nHost: test.local\r\n\r\n",
    );
    assert_eq!(r.json()["uri"], "/");
}

#[test]
fn upstream_failures_get_json_errors() {
    let up = Upstream::start();
    // A port nothing listens on.
    let gone: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nodes = |addr: SocketAddr| json!({addr.to_string(): 1});
    let standalone = json!({"routes": [
        {"id": "gone", "uri": "/gone", "upstream": {"nodes": nodes(gone)}},
        {"id": "slow", "uri": "/slow/*", "upstream": {"nodes": nodes(up.addr),
            "timeout": {"connect": 1, "send": 1, "read": 0.3}}},
        {"id": "bad", "uri": "/garbage", "upstream": {"nodes": nodes(up.addr)}},
    ]});
    let gw = start(Driver::Uring, standalone.to_string(), "");
    for (path, status, msg) in [
        ("/gone", 502, "502 Bad Gateway"),
        ("/slow/3000", 504, "504 Gateway Timeout"),
        ("/garbage", 502, "502 Bad Gateway"),
    ] {
        let raw = common::raw_exchange(
            gw.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes(),
        );
        let r = read_response(&mut &raw[..], false).unwrap();
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), json!({ "error_msg": msg }));
        assert_eq!(r.header("connection"), Some("close"));
    }
}
