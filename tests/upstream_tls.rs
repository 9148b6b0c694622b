//! `https` upstreams against the real binary: a TLS echo upstream on loopback whose certificate
//! is signed by a CA made for the test, trusted through `ssl_trusted_certificate`.
//!
//! Covered: verification with the custom CA (IP address and DNS names), the server name per
//! `pass_host` (SNI and `Host`), refusal of a wrong name or an unknown CA with a 502 JSON answer,
//! `tls.verify: false`, pooled TLS connections (one TCP connection for many requests, a closed
//! one replaced), bodies both ways in both framings, client certificates (mutual TLS, also
//! through the Admin API, with the key encrypted in the store), and a bad CA file stopping the
//! start.
//!
//! Tests run on both drivers (io_uring and forced epoll), with one worker so the client
//! connection and the upstream pool it uses live on the same core.

mod common;

use common::client::{request, Conn, Response};
use common::pki::Pki;
use common::upstream::Upstream;
use common::{both_drivers, Driver, Gateway, GatewayOpts, TempDir, ADMIN_KEY};
use serde_json::{json, Value};

/// The DNS name in the upstream's certificate (besides the IP address 127.0.0.1).
const NAME: &str = "upstream.test";

/// A gateway (one worker) with one catch-all route to `up` over https, with the upstream
/// fields `upstream_extra` (YAML lines indented for the upstream) and top-level `config`.
fn gateway(driver: Driver, up: &Upstream, upstream_extra: &str, config: &str) -> Gateway {
    let standalone = format!(
        "routes:\n  - id: r1\n    uri: \"/*\"\n    upstream:\n      type: roundrobin\n      \
         scheme: https\n{upstream_extra}      nodes:\n        \"{}\": 1\n",
        up.addr
    );
    Gateway::start(GatewayOpts {
        driver,
        workers: 1,
        extra_config: config.into(),
        standalone: Some(standalone),
        ..Default::default()
    })
}

fn trusting(pki: &Pki) -> String {
    format!("ssl_trusted_certificate: \"{}\"\n", pki.ca_file())
}

fn get_host(c: &mut Conn, path: &str, host: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    c.read(false).expect("a response")
}

fn sni(r: &Response) -> Option<String> {
    r.json()["sni"].as_str().map(str::to_owned)
}

fn assert_bad_gateway(r: &Response, what: &str) {
    assert_eq!(r.status, 502, "{what}: {}", r.text());
    assert_eq!(r.json()["error_msg"], "502 Bad Gateway", "{what}");
}

#[test]
fn verified_with_the_custom_ca_and_the_server_name_follows_pass_host() {
    let pki = Pki::new();
    both_drivers(|driver| {
        let up = pki.upstream(&[NAME, "127.0.0.1"], false);

        // pass (the default): the client's Host is the server name.
        let gw = gateway(driver, &up, "", &trusting(&pki));
        let mut c = Conn::open(gw.addr());
        let r = get_host(&mut c, "/hello?x=1", NAME);
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["uri"], "/hello?x=1");
        assert_eq!(sni(&r).as_deref(), Some(NAME), "{driver:?}");
        assert_eq!(r.echoed_header("host").as_deref(), Some(NAME));
        // With a port, the server name is the host alone.
        let r = get_host(&mut c, "/port", &format!("{NAME}:9443"));
        assert_eq!((r.status, sni(&r).as_deref()), (200, Some(NAME)));
        // A name the certificate does not hold: 502 JSON, the reason in the log.
        let r = get_host(&mut c, "/wrong", "other.test");
        assert_bad_gateway(&r, "wrong name");
        assert!(
            gw.stderr().contains("upstream TLS handshake failed"),
            "{}",
            gw.stderr()
        );
        drop(gw);

        // rewrite: upstream_host is both the Host and the server name.
        let gw = gateway(
            driver,
            &up,
            &format!("      pass_host: rewrite\n      upstream_host: {NAME}\n"),
            &trusting(&pki),
        );
        let mut c = Conn::open(gw.addr());
        let r = get_host(&mut c, "/rewrite", "client.example");
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(sni(&r).as_deref(), Some(NAME));
        assert_eq!(r.echoed_header("host").as_deref(), Some(NAME));
        drop(gw);

        // node: the node is an IP address, checked against the certificate's IP SAN, and no
        // SNI is sent for an address.
        let gw = gateway(driver, &up, "      pass_host: node\n", &trusting(&pki));
        let r = Conn::open(gw.addr()).get("/node");
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(sni(&r), None);
        assert_eq!(
            r.echoed_header("host"),
            Some(up.addr.to_string()),
            "the node's host and port"
        );
    });
}

#[test]
fn an_unknown_ca_is_refused_unless_verification_is_off() {
    let pki = Pki::new();
    both_drivers(|driver| {
        let up = pki.upstream(&[NAME, "127.0.0.1"], false);
        // The system roots do not hold the test CA.
        let gw = gateway(driver, &up, "", "");
        let mut c = Conn::open(gw.addr());
        let r = get_host(&mut c, "/unknown-ca", NAME);
        assert_bad_gateway(&r, "unknown CA");
        assert!(gw.stderr().contains("UnknownIssuer"), "{}", gw.stderr());
        drop(gw);

        let gw = gateway(
            driver,
            &up,
            "      tls:\n        verify: false\n      keepalive_pool:\n        size: 2\n",
            "",
        );
        let mut c = Conn::open(gw.addr());
        let before = up.connections();
        for host in [NAME, "a.test", "b.test"] {
            let r = get_host(&mut c, "/unverified", host);
            assert_eq!(r.status, 200, "{driver:?} {host}: {}", r.text());
        }
        assert_eq!(
            up.connections(),
            before + 3,
            "one connection per server name"
        );
        // At most `size` idle connections per node, whatever the names: the first name's,
        // the oldest, made room for the third.
        assert_eq!(
            get_host(&mut c, "/again", "b.test").json()["served_on_connection"],
            2
        );
        assert_eq!(
            get_host(&mut c, "/again", "a.test").json()["served_on_connection"],
            2
        );
        assert_eq!(up.connections(), before + 3);
        assert_eq!(
            get_host(&mut c, "/again", NAME).json()["served_on_connection"],
            1
        );
        assert_eq!(up.connections(), before + 4, "{driver:?}");
        assert!(
            gw.stderr().contains("tls.verify is false"),
            "warned: {}",
            gw.stderr()
        );
    });
}

#[test]
fn pooled_tls_connections_are_reused_and_replaced_when_closed() {
    let pki = Pki::new();
    both_drivers(|driver| {
        let up = pki.upstream(&[NAME, "127.0.0.1"], false);
        let gw = gateway(driver, &up, "", &trusting(&pki));
        let mut c = Conn::open(gw.addr());
        for i in 1..=5 {
            let r = get_host(&mut c, &format!("/ka/{i}"), NAME);
            assert_eq!(r.status, 200, "{driver:?} request {i}");
            assert_eq!(r.json()["served_on_connection"], i);
        }
        assert_eq!(
            up.connections(),
            1,
            "{driver:?}: one TLS connection for 5 requests"
        );

        // Another server name is never served by that connection.
        let r = get_host(&mut c, "/other-name", "127.0.0.1");
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["connection"], 2, "a connection of its own");
        let r = get_host(&mut c, "/same-name", NAME);
        assert_eq!(r.json()["connection"], 1, "back to the first one");

        // The upstream answers, then closes with close_notify: the next request succeeds on
        // a new connection (the pool's probe, or the retry of an idempotent request).
        let r = get_host(&mut c, "/then-close", NAME);
        assert_eq!(r.status, 200);
        let r = get_host(&mut c, "/after-close", NAME);
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["connection"], 3);
        let retries = |gw: &Gateway| gw.stderr().matches("retrying on a fresh one").count();
        assert_eq!(
            retries(&gw),
            1,
            "{driver:?}: reused at once, the retry covered it"
        );
        // Once idle past the probe threshold (250 ms), the closed connection is noticed before
        // reuse: no retry is needed.
        assert_eq!(get_host(&mut c, "/then-close", NAME).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(400));
        let r = get_host(&mut c, "/after-probe", NAME);
        assert_eq!((r.status, r.json()["connection"].as_u64()), (200, Some(4)));
        assert_eq!(retries(&gw), 1, "{driver:?}: the probe discarded it");

        // Dropped without an answer while pooled: a GET is sent again on a fresh connection.
        assert_eq!(get_host(&mut c, "/drop-next", NAME).status, 200);
        let r = get_host(&mut c, "/again", NAME);
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["connection"], 5);
        assert_eq!(up.seen_count("GET", "/again"), 2);

        // A POST is not: 502.
        assert_eq!(get_host(&mut c, "/drop-next", NAME).status, 200);
        c.send(
            format!("POST /once HTTP/1.1\r\nHost: {NAME}\r\nContent-Length: 3\r\n\r\nabc")
                .as_bytes(),
        );
        assert_bad_gateway(&c.read(false).unwrap(), "POST on a dropped connection");
        assert_eq!(up.seen_count("POST", "/once"), 1);
    });
}

#[test]
fn bodies_in_both_framings_both_ways() {
    let pki = Pki::new();
    both_drivers(|driver| {
        let up = pki.upstream(&[NAME, "127.0.0.1"], false);
        let gw = gateway(driver, &up, "", &trusting(&pki));
        let mut c = Conn::open(gw.addr());
        let body: String = (0..200_000)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();

        // Content-Length request body, larger than one TLS record and the relay buffer.
        c.send(
            format!(
                "POST /cl HTTP/1.1\r\nHost: {NAME}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["body"].as_str(), Some(body.as_str()));

        // Chunked request body.
        let mut raw = format!(
            "PUT /chunked-in HTTP/1.1\r\nHost: {NAME}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        for part in body.as_bytes().chunks(30_000) {
            raw.push_str(&format!(
                "{:x}\r\n{}\r\n",
                part.len(),
                std::str::from_utf8(part).unwrap()
            ));
        }
        raw.push_str("0\r\n\r\n");
        c.send(raw.as_bytes());
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.json()["body"].as_str(), Some(body.as_str()));

        // Chunked response body.
        let r = get_host(&mut c, "/chunked", NAME);
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));

        // Content-Length response body.
        let r = get_host(&mut c, "/big/300000", NAME);
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 300_000);
        assert!(r.body.iter().all(|&b| b == b'x'));

        assert_eq!(up.connections(), 1, "{driver:?}: all on one TLS connection");
    });
}

/// A client certificate signed by the CA, and its key, in PEM.
fn client_identity(pki: &Pki) -> (String, String) {
    let leaf = pki.leaf(&["gateway.test"]);
    (leaf.cert_pem, leaf.key_pem)
}

#[test]
fn client_certificates_for_mutual_tls() {
    let pki = Pki::new();
    let (cert_pem, key_pem) = client_identity(&pki);
    let yaml_block = |s: &str| {
        s.trim()
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    };
    both_drivers(|driver| {
        let up = pki.upstream(&[NAME, "127.0.0.1"], true);
        let gw = gateway(driver, &up, "", &trusting(&pki));
        let r = get_host(&mut Conn::open(gw.addr()), "/no-cert", NAME);
        assert_bad_gateway(&r, "no client certificate");

        let tls = format!(
            "      tls:\n        client_cert: |\n{}        client_key: |\n{}",
            yaml_block(&cert_pem),
            yaml_block(&key_pem)
        );
        let gw = gateway(driver, &up, &tls, &trusting(&pki));
        let r = get_host(&mut Conn::open(gw.addr()), "/with-cert", NAME);
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(sni(&r).as_deref(), Some(NAME));
    });
}

#[test]
fn a_bad_trusted_certificate_file_stops_the_start() {
    let dir = TempDir::new("bad-ca");
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, why) in [
        (bad.display().to_string(), "certificate #1"),
        (
            dir.path().join("missing.pem").display().to_string(),
            "No such file",
        ),
    ] {
        let err = Gateway::try_start(GatewayOpts {
            workers: 1,
            extra_config: format!("ssl_trusted_certificate: \"{file}\"\n"),
            ..Default::default()
        })
        .err()
        .expect("the gateway refuses to start");
        assert!(err.contains("ssl_trusted_certificate: "), "{err}");
        assert!(err.contains(why), "{err}");
    }
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

#[test]
fn admin_api_https_upstreams_with_a_client_key_kept_encrypted() {
    let pki = Pki::new();
    let (cert_pem, key_pem) = client_identity(&pki);
    let up = pki.upstream(&[NAME, "127.0.0.1"], true);
    let gw = Gateway::start(GatewayOpts {
        workers: 1,
        standalone: None,
        extra_config: trusting(&pki),
        ..Default::default()
    });
    let upstream = |tls: Value| json!({"type": "roundrobin", "scheme": "https", "nodes": {up.addr.to_string(): 1}, "tls": tls});

    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/upstreams/u1",
        Some(upstream(json!({"client_cert_id": "1"}))),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("client_cert_id")),
        "{}",
        r.text()
    );
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/upstreams/u1",
        Some(upstream(
            json!({"client_cert": cert_pem, "client_key": "x".repeat(80)}),
        )),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/upstreams/u1",
        Some(upstream(
            json!({"client_cert": cert_pem, "client_key": key_pem}),
        )),
    );
    assert!((200..300).contains(&r.status), "{}", r.text());
    let sealed = r.json()["value"]["tls"]["client_key"].clone();
    assert!(
        sealed.as_str().is_some_and(|k| !k.contains("PRIVATE KEY")),
        "answered sealed: {sealed}"
    );
    let r = admin(&gw, "GET", "/apisix/admin/upstreams/u1", None);
    assert_eq!(r.json()["value"]["tls"]["client_key"], json!(key_pem));
    let r = admin(
        &gw,
        "PUT",
        "/apisix/admin/routes/r1",
        Some(json!({"uri": "/*", "upstream_id": "u1"})),
    );
    assert!((200..300).contains(&r.status), "{}", r.text());

    let r = get_host(&mut Conn::open(gw.addr()), "/via-admin", NAME);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sni(&r).as_deref(), Some(NAME));

    let store = std::fs::read(gw.dir.path().join("data").join("store.redb")).expect("store");
    let key_line = key_pem.lines().nth(1).expect("a base64 line");
    assert!(
        !store
            .windows(key_line.len())
            .any(|w| w == key_line.as_bytes()),
        "the client key reached the store in plaintext"
    );
}
