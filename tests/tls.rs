//! TLS termination against the real binary: ssl objects through the Admin API (and a standalone
//! file), certificates picked by SNI (exact, wildcard, fallback, none), TLS 1.2 and 1.3, ALPN,
//! per-object `ssl_protocols`, bad pairs refused, a certificate replaced and deleted live, keys
//! encrypted at rest, and the drain. Certificates are made at test time with rcgen, under a test
//! CA the rustls client trusts, so every handshake is verified for the name it asked for.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client::{read_response, request, Response};
use common::upstream::Upstream;
use common::{both_drivers, Driver, Gateway, GatewayOpts, ADMIN_KEY};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use serde_json::{json, Value};

/// A test CA and the leaf certificates it signs.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A leaf certificate and key in PEM, and the certificate's DER to compare with what a server
/// presented.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portcullis test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert.der().to_vec()))
            .unwrap();
        roots
    }
}

/// How a test client connects.
#[derive(Clone, Copy)]
struct Client<'a> {
    /// The name verified against the certificate (and sent as SNI when `sni`).
    name: &'a str,
    sni: bool,
    versions: &'a [&'static rustls::SupportedProtocolVersion],
}

impl<'a> Client<'a> {
    fn to(name: &'a str) -> Client<'a> {
        Client {
            name,
            sni: true,
            versions: rustls::ALL_VERSIONS,
        }
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the handshake.
fn connect(ca: &Ca, addr: SocketAddr, c: Client<'_>) -> Result<Tls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(c.versions)
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.enable_sni = c.sni;
    let name = ServerName::try_from(c.name.to_owned()).unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// The leaf certificate the server presented.
fn presented(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

/// Sends a GET for `path` with `Host: host` and reads the answer, keeping the connection.
fn get(tls: &mut Tls, host: &str, path: &str) -> Response {
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    tls.flush().unwrap();
    let mut reader = BufReader::new(tls);
    read_response(&mut reader, false).expect("a response over TLS")
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<&Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

fn put_ssl(gw: &Gateway, id: &str, leaf: &Leaf, snis: &[&str], extra: Value) -> Response {
    let mut body = json!({"cert": leaf.cert_pem, "key": leaf.key_pem, "snis": snis});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    admin(gw, "PUT", &format!("/apisix/admin/ssls/{id}"), Some(&body))
}

/// A gateway on the Admin API with one catch-all route to `up`.
fn gateway(driver: Driver, up: &Upstream, extra_config: &str) -> Gateway {
    let gw = Gateway::start(GatewayOpts {
        driver,
        standalone: None,
        extra_config: extra_config.into(),
        ..Default::default()
    });
    let route = json!({"uri": "/*", "upstream": {"type": "roundrobin",
                       "nodes": {up.addr.to_string(): 1}}});
    let r = admin(&gw, "PUT", "/apisix/admin/routes/all", Some(&route));
    assert_eq!(r.status, 201, "{}", r.text());
    gw
}

#[test]
fn certificates_are_picked_by_sni_and_requests_go_through() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway(driver, &up, "");
        let ca = Ca::new();
        let exact = ca.leaf(&["a.test"]);
        let wild = ca.leaf(&["*.wild.test"]);
        assert_eq!(
            put_ssl(&gw, "exact", &exact, &["a.test"], json!({})).status,
            201
        );
        assert_eq!(
            put_ssl(&gw, "wild", &wild, &["*.wild.test"], json!({})).status,
            201
        );

        let mut tls = connect(&ca, gw.ssl_addr(), Client::to("a.test")).unwrap();
        assert_eq!(presented(&tls), exact.der);
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let r = get(&mut tls, "a.test", "/hello");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.echoed_header("x-forwarded-proto").as_deref(),
            Some("https")
        );
        assert_eq!(
            r.echoed_header("x-forwarded-port"),
            Some(gw.ssl_port.to_string())
        );
        // Keep-alive over TLS, then `Connection: close`: the gateway ends with close_notify
        // (rustls reports a close without it as a truncation).
        assert_eq!(get(&mut tls, "a.test", "/again").status, 200);
        tls.write_all(b"GET /last HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest)
            .expect("a clean close (close_notify) after the last answer");
        assert!(rest.starts_with(b"HTTP/1.1 200"), "{rest:?}");

        let tls = connect(&ca, gw.ssl_addr(), Client::to("x.wild.test")).unwrap();
        assert_eq!(presented(&tls), wild.der);

        for name in ["unknown.test", "a.b.wild.test", "wild.test"] {
            let e = connect(&ca, gw.ssl_addr(), Client::to(name)).unwrap_err();
            assert!(!e.is_empty(), "{name}");
        }
        // No SNI and no fallback_sni: refused.
        let no_sni = Client {
            sni: false,
            ..Client::to("a.test")
        };
        assert!(connect(&ca, gw.ssl_addr(), no_sni).is_err());

        // The plain listener is untouched, and failed handshakes took no worker down.
        let r = common::client::get(gw.addr(), "/plain");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.echoed_header("x-forwarded-proto").as_deref(),
            Some("http")
        );
        for _ in 0..4 {
            assert!(connect(&ca, gw.ssl_addr(), Client::to("a.test")).is_ok());
        }
    });
}

#[test]
fn clients_without_sni_get_the_fallback_sni_certificate() {
    let up = Upstream::start();
    let gw = gateway(Driver::Uring, &up, "fallback_sni: Fallback.Test\n");
    let ca = Ca::new();
    let leaf = ca.leaf(&["fallback.test"]);
    assert_eq!(
        put_ssl(&gw, "f", &leaf, &["fallback.test"], json!({})).status,
        201
    );
    let no_sni = Client {
        sni: false,
        ..Client::to("fallback.test")
    };
    let mut tls = connect(&ca, gw.ssl_addr(), no_sni).unwrap();
    assert_eq!(presented(&tls), leaf.der);
    assert_eq!(get(&mut tls, "fallback.test", "/").status, 200);
    // An SNI that matches nothing does not fall back.
    assert!(connect(&ca, gw.ssl_addr(), Client::to("other.test")).is_err());
}

#[test]
fn tls_12_and_13_and_per_object_protocols() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway(driver, &up, "");
        let ca = Ca::new();
        let any = ca.leaf(&["any.test"]);
        assert_eq!(
            put_ssl(&gw, "any", &any, &["any.test"], json!({})).status,
            201
        );
        let v12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        let v13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        for (versions, expected) in [
            (v12, ProtocolVersion::TLSv1_2),
            (v13, ProtocolVersion::TLSv1_3),
        ] {
            let c = Client {
                versions,
                ..Client::to("any.test")
            };
            let mut tls = connect(&ca, gw.ssl_addr(), c).unwrap();
            assert_eq!(tls.conn.protocol_version(), Some(expected));
            assert_eq!(get(&mut tls, "any.test", "/").status, 200);
        }

        // An object restricted to TLS 1.3: a TLS 1.2 client is refused for that name only.
        let only13 = ca.leaf(&["new.test"]);
        let extra = json!({"ssl_protocols": ["TLSv1.3"]});
        assert_eq!(
            put_ssl(&gw, "only13", &only13, &["new.test"], extra).status,
            201
        );
        let c12 = Client {
            versions: v12,
            ..Client::to("new.test")
        };
        let e = connect(&ca, gw.ssl_addr(), c12).unwrap_err();
        assert!(e.contains("ProtocolVersion"), "{e}");
        let c13 = Client {
            versions: v13,
            ..Client::to("new.test")
        };
        let mut tls = connect(&ca, gw.ssl_addr(), c13).unwrap();
        assert_eq!(presented(&tls), only13.der);
        assert_eq!(get(&mut tls, "new.test", "/").status, 200);
        let other12 = Client {
            versions: v12,
            ..Client::to("any.test")
        };
        let mut tls = connect(&ca, gw.ssl_addr(), other12).unwrap();
        assert_eq!(get(&mut tls, "any.test", "/").status, 200);
        // The ClientHello read ahead is replayed whole: no SNI and an unknown SNI still fail.
        assert!(connect(&ca, gw.ssl_addr(), Client::to("nope.test")).is_err());
    });
}

#[test]
fn bad_objects_are_refused_with_400() {
    let up = Upstream::start();
    let gw = gateway(Driver::Uring, &up, "");
    let ca = Ca::new();
    let a = ca.leaf(&["a.test"]);
    let b = ca.leaf(&["b.test"]);
    let cases: [(Value, &str); 6] = [
        (
            json!({"cert": a.cert_pem, "key": b.key_pem, "snis": ["a.test"]}),
            "key does not match cert",
        ),
        (
            json!({"cert": "x".repeat(300), "key": a.key_pem, "snis": ["a.test"]}),
            "failed to parse cert",
        ),
        (
            json!({"cert": a.cert_pem, "key": "-".repeat(100), "snis": ["a.test"]}),
            "failed to parse key",
        ),
        (
            json!({"cert": a.cert_pem, "key": a.key_pem, "snis": ["a b.test"]}),
            "snis[0]: \"a b.test\" is not a host name",
        ),
        (
            json!({"cert": a.cert_pem, "key": a.key_pem}),
            "property \"snis\" is required",
        ),
        (
            json!({"cert": a.cert_pem, "key": a.key_pem, "snis": ["a.test"], "type": "client"}),
            "property \"type\" validation failed",
        ),
    ];
    for (body, expected) in cases {
        let r = admin(&gw, "PUT", "/apisix/admin/ssls/bad", Some(&body));
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error_msg"].as_str().unwrap().to_owned();
        assert!(
            msg.contains(expected),
            "{msg:?} should contain {expected:?}"
        );
        for leaf in [&a, &b] {
            let body = leaf.key_pem.lines().nth(1).unwrap();
            assert!(!msg.contains(body), "no key material in {msg:?}");
        }
    }
    assert_eq!(
        admin(&gw, "GET", "/apisix/admin/ssls/bad", None).status,
        404
    );
    // POST creates with a generated id.
    let body = json!({"cert": a.cert_pem, "key": a.key_pem, "snis": ["a.test"]});
    let r = admin(&gw, "POST", "/apisix/admin/ssls", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["key"]
        .as_str()
        .unwrap()
        .starts_with("/apisix/ssls/"));
}

#[test]
fn a_certificate_replaced_or_deleted_live() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let gw = gateway(driver, &up, "");
        let ca = Ca::new();
        let v1 = ca.leaf(&["live.test"]);
        let v2 = ca.leaf(&["live.test"]);
        assert_eq!(
            put_ssl(&gw, "live", &v1, &["live.test"], json!({})).status,
            201
        );
        let mut old = connect(&ca, gw.ssl_addr(), Client::to("live.test")).unwrap();
        assert_eq!(presented(&old), v1.der);
        assert_eq!(get(&mut old, "live.test", "/1").status, 200);

        let r = put_ssl(&gw, "live", &v2, &["live.test"], json!({}));
        assert_eq!(r.status, 200, "{}", r.text());
        let mut new = connect(&ca, gw.ssl_addr(), Client::to("live.test")).unwrap();
        assert_eq!(
            presented(&new),
            v2.der,
            "the next handshake presents the new one"
        );
        assert_eq!(get(&mut new, "live.test", "/2").status, 200);
        assert_eq!(
            get(&mut old, "live.test", "/3").status,
            200,
            "keep-alive goes on"
        );

        // PATCH to another name, then disable with status 0, then delete.
        let r = admin(
            &gw,
            "PATCH",
            "/apisix/admin/ssls/live",
            Some(&json!({"snis": ["*.live.test", "live.test"]})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(connect(&ca, gw.ssl_addr(), Client::to("live.test")).is_ok());
        let r = admin(
            &gw,
            "PATCH",
            "/apisix/admin/ssls/live/status",
            Some(&json!(0)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(connect(&ca, gw.ssl_addr(), Client::to("live.test")).is_err());
        let r = admin(
            &gw,
            "PATCH",
            "/apisix/admin/ssls/live/status",
            Some(&json!(1)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            admin(&gw, "DELETE", "/apisix/admin/ssls/live", None).status,
            200
        );
        assert!(connect(&ca, gw.ssl_addr(), Client::to("live.test")).is_err());
        assert_eq!(get(&mut old, "live.test", "/4").status, 200);
        assert_eq!(get(&mut new, "live.test", "/5").status, 200);
    });
}

#[test]
fn private_keys_are_encrypted_at_rest_and_never_read_back() {
    let up = Upstream::start();
    let mut gw = gateway(Driver::Uring, &up, "");
    let ca = Ca::new();
    let leaf = ca.leaf(&["rest.test"]);
    let r = put_ssl(
        &gw,
        "rest",
        &leaf,
        &["rest.test"],
        json!({"labels": {"k": "v"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let stored = r.json()["value"].clone();
    let sealed = stored["key"].as_str().unwrap().to_owned();
    assert!(
        !sealed.contains("PRIVATE KEY"),
        "a PUT answers with the encrypted key"
    );
    assert_eq!(stored["cert"], leaf.cert_pem);

    let one = admin(&gw, "GET", "/apisix/admin/ssls/rest", None).json();
    assert_eq!(one["value"]["snis"], json!(["rest.test"]));
    assert!(one["value"].get("key").is_none(), "{one}");
    let list = admin(&gw, "GET", "/apisix/admin/ssls", None).json();
    assert_eq!(list["total"], 1);
    assert!(list["list"][0]["value"].get("key").is_none(), "{list}");

    // The store holds no part of the PEM key.
    let key_body: String = leaf
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let db = std::fs::read(gw.dir.path().join("data/store.redb")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(
        !db.contains(&key_body[..40]),
        "the key is not in the store in clear"
    );
    assert!(db.contains(&sealed), "the sealed key is");

    // A PUT of the object as a write answered it (encrypted key) is taken back.
    let r = admin(&gw, "PUT", "/apisix/admin/ssls/rest", Some(&stored));
    assert_eq!(r.status, 200, "{}", r.text());
    // ...but the sealed key of another object is not.
    let mut moved = stored.clone();
    moved["id"] = json!("other");
    let r = admin(&gw, "PUT", "/apisix/admin/ssls/other", Some(&moved));
    assert_eq!(r.status, 400, "{}", r.text());

    // After a restart the key is decrypted and serves handshakes.
    gw.restart(false).unwrap();
    let mut tls = connect(&ca, gw.ssl_addr(), Client::to("rest.test")).unwrap();
    assert_eq!(presented(&tls), leaf.der);
    assert_eq!(get(&mut tls, "rest.test", "/").status, 200);
}

#[test]
fn standalone_files_carry_ssls() {
    let up = Upstream::start();
    let ca = Ca::new();
    let leaf = ca.leaf(&["file.test"]);
    let file = json!({
        "routes": [{"id": "r", "uri": "/*", "upstream": {"nodes": {up.addr.to_string(): 1}}}],
        "ssls": [{"id": "s", "snis": ["file.test"], "cert": leaf.cert_pem, "key": leaf.key_pem}],
    });
    let gw = Gateway::start(GatewayOpts {
        standalone: Some(file.to_string()),
        ..Default::default()
    });
    let mut tls = connect(&ca, gw.ssl_addr(), Client::to("file.test")).unwrap();
    assert_eq!(presented(&tls), leaf.der);
    assert_eq!(get(&mut tls, "file.test", "/").status, 200);

    // A reload with another certificate applies to the next handshake.
    let next = ca.leaf(&["file.test"]);
    let file = json!({
        "routes": [{"id": "r", "uri": "/*", "upstream": {"nodes": {up.addr.to_string(): 1}}}],
        "ssls": [{"id": "s", "snis": ["file.test"], "cert": next.cert_pem, "key": next.key_pem}],
    });
    gw.reload(&file.to_string());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tls = connect(&ca, gw.ssl_addr(), Client::to("file.test")).unwrap();
        if presented(&tls) == next.der {
            break;
        }
        assert!(Instant::now() < deadline, "the reload did not apply");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn garbage_and_stalled_handshakes_do_not_hurt_and_the_drain_closes_them() {
    both_drivers(|driver| {
        let up = Upstream::start();
        let mut gw = gateway(driver, &up, "");
        let ca = Ca::new();
        let leaf = ca.leaf(&["d.test"]);
        assert_eq!(put_ssl(&gw, "d", &leaf, &["d.test"], json!({})).status, 201);

        // Plain HTTP to the TLS port: an alert or a close, never an answer or a crash.
        let mut s = TcpStream::connect(gw.ssl_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: d.test\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(!out.starts_with(b"HTTP/"), "{out:?}");

        // An idle TLS keep-alive connection and a handshake that never starts.
        let mut idle = connect(&ca, gw.ssl_addr(), Client::to("d.test")).unwrap();
        assert_eq!(get(&mut idle, "d.test", "/").status, 200);
        let stalled = TcpStream::connect(gw.ssl_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(100));

        let started = Instant::now();
        let status = gw.terminate(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{}", gw.stderr());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the drain waited {:?} for idle TLS connections",
            started.elapsed()
        );
        drop(stalled);
    });
}
