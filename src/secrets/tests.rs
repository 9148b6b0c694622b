use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

/// A Vault KV v1 stand-in on loopback: `GET /v1/kv/apisix/{path}` with token `root`.
pub fn fake_vault(secrets: Vec<(&'static str, serde_json::Value)>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut token = String::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("x-vault-token:") {
                    token = v.trim().to_string();
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let found = secrets
                .iter()
                .find(|(p, _)| format!("/v1/kv/apisix/{p}") == path);
            let (status, body) = match (token == "root", found) {
                (false, _) => (
                    "403 Forbidden",
                    "{\"errors\":[\"permission denied\"]}".to_string(),
                ),
                (true, Some((_, data))) => {
                    ("200 OK", serde_json::json!({"data": data}).to_string())
                }
                (true, None) => ("404 Not Found", "{\"errors\":[]}".to_string()),
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    (format!("http://{addr}"), hits)
}

fn resolver(uri: &str, token: &str) -> Resolver {
    let mut r = Resolver::new();
    let mut v = HashMap::new();
    v.insert(
        "jwt".to_string(),
        Vault {
            uri: uri.to_string(),
            prefix: "kv/apisix".into(),
            token: token.into(),
            namespace: None,
        },
    );
    r.set_vaults(v);
    r
}

#[test]
fn references_parse() {
    assert_eq!(
        parse_secret_ref("$secret://vault/jwt/jack/jwt-secret"),
        Some(SecretRef {
            manager: "vault".into(),
            id: "jwt".into(),
            path: "jack".into(),
            field: "jwt-secret".into()
        })
    );
    assert_eq!(
        parse_secret_ref("$secret://vault/jwt/a/b/c").unwrap().path,
        "a/b"
    );
    assert!(parse_secret_ref("$secret://vault/jwt/onlyfield").is_none());
    assert!(parse_secret_ref("$env://X").is_none());
}

#[test]
fn vault_kv_v1_is_read_and_cached() {
    let (uri, hits) = fake_vault(vec![(
        "jack",
        serde_json::json!({"jwt-secret": "vault-hs256-secret-that-is-very-long"}),
    )]);
    let r = resolver(&uri, "root");
    assert_eq!(
        r.resolve("$secret://vault/jwt/jack/jwt-secret").unwrap(),
        "vault-hs256-secret-that-is-very-long"
    );
    r.resolve("$secret://vault/jwt/jack/jwt-secret").unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "second read comes from the cache"
    );
    r.expire();
    r.resolve("$secret://vault/jwt/jack/jwt-secret").unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let e = r.resolve("$secret://vault/jwt/jack/other").unwrap_err();
    assert!(e.contains("no field other"), "{e}");
    let e = r.resolve("$secret://vault/jwt/nobody/x").unwrap_err();
    assert!(e.contains("404"), "{e}");
    let e = r.resolve("$secret://vault/missing/jack/x").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn failures_are_errors_never_panics() {
    let (uri, _) = fake_vault(vec![("jack", serde_json::json!({"k": "v"}))]);
    let e = resolver(&uri, "wrong")
        .resolve("$secret://vault/jwt/jack/k")
        .unwrap_err();
    assert!(e.contains("403"), "{e}");
    assert!(
        !e.contains("wrong"),
        "the token never appears in errors: {e}"
    );
    // Nothing listens there.
    let dead = resolver("http://127.0.0.1:1", "root").resolve("$secret://vault/jwt/jack/k");
    assert!(dead.is_err());
    let tls = resolver("https://127.0.0.1:8200", "root").resolve("$secret://vault/jwt/jack/k");
    assert!(tls.unwrap_err().contains("only http://"));
}
