//! Seed 002 end to end over TLS on both legs, as a new user would set it up through the Admin
//! API: an ssl object for `auth.httpbin.org`, a service with that host in front of an `https`
//! upstream, a route `/v1/json` (GET) with jwt-auth and proxy-rewrite `regex_uri`, a consumer
//! whose credential has a base64 random secret, and a token with `user`/`age` claims and an
//! expiry. The client speaks TLS to the gateway (SNI `auth.httpbin.org`), the gateway speaks
//! TLS to the upstream (a local stand-in for httpbin.org whose certificate a test CA signed,
//! trusted through `ssl_trusted_certificate`), and `/v1/json` reaches it as `/json`.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::client::{read_response, request, Response};
use common::pki::Pki;
use common::{both_drivers, Gateway, GatewayOpts, ADMIN_KEY};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};

const HOST: &str = "auth.httpbin.org";

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A client that trusts only the test CA, verifies `HOST` and sends it as SNI.
fn connect(pki: &Pki, addr: SocketAddr) -> Tls {
    let roots = pki.roots();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn = ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(HOST.to_owned()).expect("server name"),
    )
    .expect("client connection");
    let tcp = TcpStream::connect(addr).expect("connect to the TLS port");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("TLS handshake with the gateway");
    }
    tls
}

/// `GET path` on the TLS connection with `Host: auth.httpbin.org` and `headers`.
fn get(tls: &mut Tls, path: &str, headers: &[&str]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    tls.write_all(raw.as_bytes()).unwrap();
    tls.flush().unwrap();
    read_response(&mut BufReader::new(tls), false).expect("a response over TLS")
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Value) -> Response {
    let body = body.to_string();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

fn put(gw: &Gateway, path: &str, body: Value) {
    let r = admin(gw, "PUT", path, body);
    assert!(
        r.status == 200 || r.status == 201,
        "PUT {path}: {}",
        r.text()
    );
}

#[test]
fn seed_002_over_tls_on_both_legs() {
    both_drivers(|driver| {
        let pki = Pki::new();
        // The stand-in for https://httpbin.org, its certificate naming the Host the seed sends.
        let up = pki.upstream(&[HOST, "127.0.0.1"], false);
        let gw = Gateway::start(GatewayOpts {
            driver,
            standalone: None,
            extra_config: format!("ssl_trusted_certificate: \"{}\"\n", pki.ca_file()),
            ..Default::default()
        });

        // The gateway's certificate for the API's host name.
        let leaf = pki.leaf(&[HOST]);
        put(
            &gw,
            "/apisix/admin/ssls/1",
            json!({"cert": leaf.cert_pem, "key": leaf.key_pem, "snis": [HOST]}),
        );
        // Service jwt-auth-app: host auth.httpbin.org, upstream https://httpbin.org (here the
        // local stand-in; the Host it gets, auth.httpbin.org, is also the name verified).
        put(
            &gw,
            "/apisix/admin/services/jwt-auth-app",
            json!({
                "name": "jwt-auth-app",
                "hosts": [HOST],
                "upstream": {"type": "roundrobin", "scheme": "https",
                             "nodes": {up.addr.to_string(): 1}}
            }),
        );
        // Route json: GET /json under the service's /v1 prefix, with jwt-auth.
        put(
            &gw,
            "/apisix/admin/routes/json",
            json!({
                "name": "json",
                "uri": "/v1/json",
                "methods": ["GET"],
                "service_id": "jwt-auth-app",
                "plugins": {"jwt-auth": {}, "proxy-rewrite": {"regex_uri": ["^/v1/(.*)", "/$1"]}}
            }),
        );
        // Consumer oiloil with a random secret, base64-encoded.
        let secret: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(71).wrapping_add(5))
            .collect();
        let secret_b64 = base64_simd::STANDARD.encode_to_string(&secret);
        put(
            &gw,
            "/apisix/admin/consumers",
            json!({"username": "oiloil"}),
        );
        put(
            &gw,
            "/apisix/admin/consumers/oiloil/credentials/jwt",
            json!({"plugins": {"jwt-auth": {"key": "oiloil_key", "secret": secret_b64,
                                              "base64_secret": true}}}),
        );
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let token = portcullis::jwt::sign(
            portcullis::jwt::Alg::HS256,
            &portcullis::jwt::SignKey::Hmac(secret),
            &serde_json::Map::new(),
            &json!({"key": "oiloil_key", "user": "oiloil", "age": 18, "exp": exp}),
        )
        .expect("HS256 signing works");

        let mut tls = connect(&pki, gw.ssl_addr());
        // curl https://.../v1/json -H 'Host: auth.httpbin.org' -i
        let r = get(&mut tls, "/v1/json", &[]);
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json(), json!({"message": "Missing JWT token in request"}));
        // ... -H 'Authorization: <Your JSON Web Token>'
        let auth = format!("Authorization: {token}");
        let r = get(&mut tls, "/v1/json", &[&auth]);
        assert_eq!(r.status, 200, "{}", r.text());
        let echo = r.json();
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["uri"], "/json");
        assert_eq!(
            echo["sni"], HOST,
            "the upstream leg is TLS, verified for the Host sent"
        );
        assert_eq!(r.echoed_header("Host").as_deref(), Some(HOST));
        assert_eq!(
            r.echoed_header("X-Forwarded-Proto").as_deref(),
            Some("https")
        );
        assert_eq!(
            r.echoed_header("X-Consumer-Username").as_deref(),
            Some("oiloil")
        );
        assert_eq!(
            r.echoed_header("X-Credential-Identifier").as_deref(),
            Some("jwt")
        );
        // ... -H 'Authorization: wrong token'
        let r = get(&mut tls, "/v1/json", &["Authorization: wrong token"]);
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"message": "JWT token invalid"}));
        // The same keep-alive TLS connection still serves the token.
        assert_eq!(get(&mut tls, "/v1/json", &[&auth]).status, 200);
        assert_eq!(up.requests(), ["GET /json", "GET /json"]);
    });
}
