//! Secrets encrypted at rest (`data_encryption`), against the real binary: what the Admin API
//! shows, what reaches the store file, restarts, key rotation, a generated keyring, and objects
//! stored before encryption was enabled.

mod common;

use std::time::{Duration, Instant};

use common::client::{request, Response};
use common::upstream::Upstream;
use common::{Gateway, GatewayOpts, ADMIN_KEY};
use portcullis::jwt::{sign, Alg, SignKey};
use serde_json::{json, Value};

const SECRET: &str = "jack-hs256-secret-stored-encrypted";
const CREDENTIAL: &str = "/apisix/admin/consumers/jack/credentials/c1";
const OLD_KEY: &str = "Vb3kX9qTz2LmP7wd";
const NEW_KEY: &str = "n4Rf8YcJ1sHe6GuAq0Wt5ZxP2LkM9vBd";

fn start(extra_config: &str) -> Gateway {
    Gateway::start(GatewayOpts {
        standalone: None,
        extra_config: extra_config.to_owned(),
        ..Default::default()
    })
}

fn keyring_config(keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("data_encryption:\n  keyring: [{}]\n", keys.join(", "))
}

/// Replaces the `data_encryption` section of the gateway's config file (it is the last one).
fn set_data_encryption(gw: &Gateway, section: &str) {
    let path = gw.dir.path().join("config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let head = text.split("data_encryption:").next().unwrap().to_owned();
    std::fs::write(&path, head + section).unwrap();
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {ADMIN_KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.admin_addr(), raw.as_bytes())
}

fn ok(r: Response) -> Response {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    r
}

/// Consumer `jack`, a jwt-auth credential with [`SECRET`], and a route that requires it.
fn setup(gw: &Gateway, up: &Upstream) -> Response {
    ok(admin(
        gw,
        "PUT",
        "/apisix/admin/consumers",
        Some(json!({"username": "jack"})),
    ));
    let put = ok(admin(
        gw,
        "PUT",
        CREDENTIAL,
        Some(json!({"plugins": {"jwt-auth": {"key": "jack-key", "secret": SECRET}}})),
    ));
    ok(admin(
        gw,
        "PUT",
        "/apisix/admin/routes/r1",
        Some(json!({
            "uri": "/private",
            "plugins": {"jwt-auth": {}},
            "upstream": {"type": "roundrobin", "nodes": {up.addr.to_string(): 1}}
        })),
    ));
    put
}

fn token(secret: &str) -> String {
    sign(
        Alg::HS256,
        &SignKey::Hmac(secret.as_bytes().to_vec()),
        &serde_json::Map::new(),
        &json!({"key": "jack-key"}),
    )
    .expect("HS256 signing works")
}

/// Polls until a request with a token signed with [`SECRET`] is let through.
fn assert_authenticates(gw: &Gateway) {
    let raw = format!(
        "GET /private HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
        token(SECRET)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = request(gw.addr(), raw.as_bytes());
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {}: {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let wrong = format!(
        "GET /private HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
        token("another-secret")
    );
    assert_eq!(request(gw.addr(), wrong.as_bytes()).status, 401);
}

fn store_bytes(gw: &Gateway) -> Vec<u8> {
    std::fs::read(gw.dir.path().join("data/store.redb")).expect("the store file exists")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_encrypted_in_the_store_and_survive_restart_and_rotation() {
    let up = Upstream::start();
    let mut gw = start(&keyring_config(&[OLD_KEY]));
    let put = setup(&gw, &up);

    // The PUT answer shows the stored, encrypted value (as APISIX does); GET the plaintext.
    let stored = put.json()["value"]["plugins"]["jwt-auth"]["secret"]
        .as_str()
        .expect("a string secret")
        .to_owned();
    assert_ne!(stored, SECRET);
    assert!(
        base64_simd::STANDARD.decode_to_vec(&stored).unwrap().len() >= SECRET.len() + 28,
        "base64 of nonce, ciphertext and tag: {stored}"
    );
    assert_eq!(
        put.json()["value"]["plugins"]["jwt-auth"]["key"],
        "jack-key"
    );
    let got = ok(admin(&gw, "GET", CREDENTIAL, None)).json();
    assert_eq!(got["value"]["plugins"]["jwt-auth"]["secret"], SECRET);
    let list = ok(admin(
        &gw,
        "GET",
        "/apisix/admin/consumers/jack/credentials",
        None,
    ))
    .json();
    assert_eq!(
        list["list"][0]["value"]["plugins"]["jwt-auth"]["secret"],
        SECRET
    );
    assert_authenticates(&gw);

    gw.terminate(Duration::from_secs(10))
        .expect("gateway stops");
    let bytes = store_bytes(&gw);
    assert!(
        contains(&bytes, "jack-key"),
        "the store file is readable as such"
    );
    assert!(
        !contains(&bytes, SECRET),
        "the secret is not in the store file"
    );

    // Restart: the secret is decrypted at load.
    gw.restart(false).unwrap();
    assert_authenticates(&gw);

    // Rotation: the new key first, the old one kept to decrypt.
    set_data_encryption(&gw, &keyring_config(&[NEW_KEY, OLD_KEY]));
    gw.restart(false).unwrap();
    assert_authenticates(&gw);
    assert_eq!(
        ok(admin(&gw, "GET", CREDENTIAL, None)).json()["value"]["plugins"]["jwt-auth"]["secret"],
        SECRET
    );
    // A write re-encrypts with the new key; then the old key can go.
    ok(admin(
        &gw,
        "PATCH",
        CREDENTIAL,
        Some(json!({"desc": "re-encrypted"})),
    ));
    set_data_encryption(&gw, &keyring_config(&[NEW_KEY]));
    gw.restart(false).unwrap();
    assert_authenticates(&gw);

    // Without the key it was encrypted with, the gateway refuses to start, naming the object.
    set_data_encryption(&gw, &keyring_config(&[OLD_KEY]));
    let err = gw
        .restart(false)
        .expect_err("no key opens the stored secret");
    assert!(
        err.contains("/apisix/consumers/jack/credentials/c1")
            && err.contains("/plugins/jwt-auth/secret")
            && err.contains("cannot be decrypted"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
}

#[test]
fn a_generated_keyring_encrypts_credentials_and_vault_tokens() {
    let up = Upstream::start();
    let mut gw = start("");
    setup(&gw, &up);
    let vault = ok(admin(
        &gw,
        "PUT",
        "/apisix/admin/secrets/vault/v1",
        Some(
            json!({"uri": "http://127.0.0.1:1", "prefix": "kv/apisix", "token": "vault-root-token-1234"}),
        ),
    ));
    assert_ne!(vault.json()["value"]["token"], "vault-root-token-1234");
    let got = ok(admin(&gw, "GET", "/apisix/admin/secrets/vault/v1", None)).json();
    assert_eq!(got["value"]["token"], "vault-root-token-1234");
    // A reference is not a secret: it stays readable.
    let r = ok(admin(
        &gw,
        "PUT",
        "/apisix/admin/consumers/jack/credentials/c2",
        Some(json!({"plugins": {"jwt-auth": {"key": "jack-env", "secret": "$env://JACK_SECRET"}}})),
    ));
    assert_eq!(
        r.json()["value"]["plugins"]["jwt-auth"]["secret"],
        "$env://JACK_SECRET"
    );

    gw.terminate(Duration::from_secs(10))
        .expect("gateway stops");
    let keyring = gw.dir.path().join("data/keyring");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&keyring).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&keyring).unwrap().trim().len(), 64);
    let bytes = store_bytes(&gw);
    assert!(!contains(&bytes, SECRET));
    assert!(!contains(&bytes, "vault-root-token-1234"));
    assert!(contains(&bytes, "$env://JACK_SECRET"));

    gw.restart(false).unwrap();
    assert_authenticates(&gw);
    let got = ok(admin(&gw, "GET", "/apisix/admin/secrets/vault/v1", None)).json();
    assert_eq!(got["value"]["token"], "vault-root-token-1234");
}

#[test]
fn objects_stored_before_encryption_was_enabled_are_read_as_plaintext() {
    let up = Upstream::start();
    let mut gw = start("data_encryption:\n  enable_encrypt_fields: false\n");
    let put = setup(&gw, &up);
    assert_eq!(
        put.json()["value"]["plugins"]["jwt-auth"]["secret"],
        SECRET,
        "stored as it is"
    );
    gw.terminate(Duration::from_secs(10))
        .expect("gateway stops");
    assert!(contains(&store_bytes(&gw), SECRET));
    assert!(
        !gw.dir.path().join("data/keyring").exists(),
        "no key generated while encryption is off"
    );

    set_data_encryption(&gw, "data_encryption:\n  enable_encrypt_fields: true\n");
    gw.restart(false).unwrap();
    assert_authenticates(&gw);
    // Its next write encrypts it.
    let r = ok(admin(
        &gw,
        "PATCH",
        CREDENTIAL,
        Some(json!({"desc": "now sealed"})),
    ));
    assert_ne!(r.json()["value"]["plugins"]["jwt-auth"]["secret"], SECRET);
    gw.restart(false).unwrap();
    assert_authenticates(&gw);
}
