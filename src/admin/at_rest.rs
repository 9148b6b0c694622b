//! Secret fields encrypted at rest, like APISIX's `data_encryption`: which fields of which stored
//! objects are secrets, and how an object's value is sealed on its way to the store and opened
//! on its way back.
//!
//! The secret fields are the `encrypt_fields` of each plugin in an object's `plugins`
//! ([`Registry::encrypt_fields`]: jwt-auth `secret` and `private_key`, Kong jwt `secret`,
//! limit-count `redis_password`), in consumers, credentials, routes, services, global rules and
//! plugin configs alike, the `token` of a secret manager (`/apisix/secrets/...`), an
//! upstream's `tls.client_key` (in upstreams, and inline in routes and services), and the
//! private keys of an ssl object (`key` and each of `keys`, as APISIX encrypts them). A string
//! that is a secret reference (`$env://...`, `$secret://...`) is stored as it is: it names a
//! secret, it is not one, and it has to stay readable to be resolved.
//!
//! Each secret field is replaced by [`Keyring::seal`]'s `base64(nonce ‖ ciphertext ‖ tag)`,
//! bound to the object's key and the field's JSON pointer, and the stored envelope lists the
//! sealed fields' pointers in `encrypted` (next to `value`, `createdIndex`, `modifiedIndex`).
//! Only the stored bytes are sealed: the control plane's mirror, objects as read back, validation, the consumer index
//! and the Admin API's GET all see plaintext; a PUT answers with the sealed value, as APISIX
//! does.
//!
//! Opening: every field listed in `encrypted` must decrypt with some keyring key, or the object
//! is refused and the gateway does not start, with an error naming the object and the field
//! (never the value): serving without a credential's secret would silently lock its consumer
//! out. An object stored before encryption was enabled has no `encrypted` list, so its fields
//! are plaintext by construction: it is read as it is and sealed at its next write. (Telling
//! plaintext from ciphertext by the list rather than by the look of the value matters: a
//! `base64_secret` is valid base64 of the right length and would pass for ciphertext.)

use serde_json::{json, Value};

use crate::plugins::Registry;
use crate::store::keyring::{Keyring, OpenError};

/// The envelope field listing the sealed fields' JSON pointers.
pub const ENCRYPTED: &str = "encrypted";

/// The keyring, and whether objects are sealed when written. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AtRest {
    keyring: Keyring,
    encrypt: bool,
}

impl AtRest {
    /// Seals with the first key of `keyring` when `encrypt`, opens with any of its keys. Sealing
    /// needs a key: `encrypt` with an empty keyring is an error.
    pub fn new(keyring: Keyring, encrypt: bool) -> Result<AtRest, String> {
        if encrypt && keyring.is_empty() {
            return Err("data encryption is enabled but the keyring has no key".to_owned());
        }
        Ok(AtRest { keyring, encrypt })
    }

    /// No keys and no sealing: for stores that never leave memory. An object with sealed
    /// fields does not open.
    pub fn plaintext() -> AtRest {
        AtRest::default()
    }

    /// `value` as it is stored at `key`: its secret fields sealed (when enabled), and their
    /// pointers, in order.
    pub fn seal(&self, key: &str, value: &Value) -> Result<(Value, Vec<String>), String> {
        if !self.encrypt {
            return Ok((value.clone(), Vec::new()));
        }
        let pointers = secret_fields(key, value);
        let mut sealed = value.clone();
        for pointer in &pointers {
            let field = sealed
                .pointer_mut(pointer)
                .expect("secret_fields lists fields that exist");
            let plain = field.as_str().expect("secret_fields lists strings");
            let cipher = self
                .keyring
                .seal(plain, &aad(key, pointer))
                .map_err(|e| format!("{key}: cannot encrypt {pointer}: {e}"))?;
            *field = Value::String(cipher);
        }
        Ok((sealed, pointers))
    }

    /// Opens, in place, the fields of `value` (stored at `key`) that `encrypted` lists.
    pub fn open(&self, key: &str, value: &mut Value, encrypted: &[String]) -> Result<(), String> {
        for pointer in encrypted {
            let refuse = |why: &dyn std::fmt::Display| {
                format!("{key}: the encrypted field {pointer} cannot be decrypted: {why}")
            };
            let Some(field) = value.pointer_mut(pointer) else {
                return Err(refuse(&"it is missing"));
            };
            let Some(cipher) = field.as_str() else {
                return Err(refuse(&"it is not a string"));
            };
            let plain = self
                .keyring
                .open(cipher, &aad(key, pointer))
                .map_err(|e| match e {
                    OpenError::NoKey => refuse(
                        &"no keyring key decrypts it; add the key it was encrypted with to \
                          data_encryption.keyring (after the current one)",
                    ),
                    e => refuse(&e),
                })?;
            *field = Value::String(plain);
        }
        Ok(())
    }

    /// The plaintext of `cipher`, sealed for the field `pointer` of the object at `key`.
    pub fn open_one(&self, key: &str, pointer: &str, cipher: &str) -> Result<String, OpenError> {
        self.keyring.open(cipher, &aad(key, pointer))
    }

    /// Whether `value` (stored at `key` with no `encrypted` list) holds secrets in plaintext
    /// that would be sealed at its next write.
    pub fn would_seal(&self, key: &str, value: &Value) -> bool {
        self.encrypt && !secret_fields(key, value).is_empty()
    }
}

/// The associated data a field is sealed with: where it is stored, so it opens nowhere else.
fn aad(key: &str, pointer: &str) -> String {
    format!("{key}#{pointer}")
}

/// The JSON pointers of the secret fields `value` holds (strings that are not references).
pub fn secret_fields(key: &str, value: &Value) -> Vec<String> {
    let is_secret = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| !crate::plugins::jwt_auth::is_reference(s))
    };
    if key.starts_with("/apisix/secrets/") {
        return if is_secret(value.get("token")) {
            vec!["/token".to_owned()]
        } else {
            Vec::new()
        };
    }
    if key.starts_with("/apisix/ssls/") {
        // The private keys, as APISIX encrypts them (`aes_encrypt_pkey`): `key` and `keys[i]`.
        let mut out = Vec::new();
        if is_secret(value.get("key")) {
            out.push("/key".to_owned());
        }
        if let Some(keys) = value.get("keys").and_then(Value::as_array) {
            out.extend(
                keys.iter()
                    .enumerate()
                    .filter(|(_, k)| is_secret(Some(k)))
                    .map(|(i, _)| format!("/keys/{i}")),
            );
        }
        return out;
    }
    // An upstream's client certificate key (mutual TLS), in an upstream or inline in a route
    // or service.
    let client_key = if key.starts_with("/apisix/upstreams/") {
        Some("/tls/client_key")
    } else if key.starts_with("/apisix/routes/") || key.starts_with("/apisix/services/") {
        Some("/upstream/tls/client_key")
    } else {
        None
    };
    let mut fields: Vec<String> = client_key
        .filter(|p| is_secret(value.pointer(p)))
        .map(str::to_owned)
        .into_iter()
        .collect();
    let Some(plugins) = value.get("plugins").and_then(Value::as_object) else {
        return fields;
    };
    fields.extend(plugins.iter().flat_map(|(name, conf)| {
        Registry::encrypt_fields(name)
            .iter()
            .filter(|field| is_secret(conf.get(**field)))
            .map(move |field| format!("/plugins/{}/{field}", escape(name)))
    }));
    fields
}

/// A JSON pointer reference token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The stored envelope of `value` with its indices and sealed-field list.
pub fn envelope(value: Value, created: u64, modified: u64, encrypted: Vec<String>) -> Value {
    let mut env = json!({"value": value, "createdIndex": created, "modifiedIndex": modified});
    if !encrypted.is_empty() {
        env[ENCRYPTED] = json!(encrypted);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRED: &str = "/apisix/consumers/jack/credentials/c1";

    fn at_rest(keys: &[&[u8]]) -> AtRest {
        AtRest::new(Keyring::new(keys).unwrap(), true).unwrap()
    }

    fn credential() -> Value {
        json!({"id": "c1", "plugins": {
            "jwt-auth": {"key": "jack-key", "secret": "jack-secret", "algorithm": "HS256"},
            "limit-count": {"count": 1, "time_window": 60, "redis_password": "$env://REDIS_PW"}
        }})
    }

    #[test]
    fn seals_only_secret_fields_and_opens_them_back() {
        let ar = at_rest(&[b"0123456789abcdef"]);
        let value = credential();
        let (sealed, pointers) = ar.seal(CRED, &value).unwrap();
        assert_eq!(pointers, ["/plugins/jwt-auth/secret"]);
        let cipher = sealed["plugins"]["jwt-auth"]["secret"].as_str().unwrap();
        assert_ne!(cipher, "jack-secret");
        assert!(!sealed.to_string().contains("jack-secret"));
        assert_eq!(sealed["plugins"]["jwt-auth"]["key"], "jack-key");
        assert_eq!(
            sealed["plugins"]["limit-count"]["redis_password"], "$env://REDIS_PW",
            "references stay readable"
        );
        let mut opened = sealed.clone();
        ar.open(CRED, &mut opened, &pointers).unwrap();
        assert_eq!(opened, value);
    }

    #[test]
    fn covers_every_listed_field_and_secret_managers() {
        let ar = at_rest(&[b"0123456789abcdef0123456789abcdef"]);
        let route = json!({"plugins": {
            "limit-count": {"redis_password": "pw"},
            "jwt-auth": {"header": "x"},
        }});
        assert_eq!(
            secret_fields("/apisix/routes/1", &route),
            ["/plugins/limit-count/redis_password"]
        );
        let consumer = json!({"plugins": {
            "jwt-auth": {"secret": "s", "private_key": "pem"},
            "jwt": {"secret": "k"},
        }});
        assert_eq!(
            secret_fields("/apisix/consumers/a", &consumer),
            [
                "/plugins/jwt/secret",
                "/plugins/jwt-auth/secret",
                "/plugins/jwt-auth/private_key"
            ]
        );
        let upstream = json!({"scheme": "https", "tls": {"client_cert": "c", "client_key": "k"}});
        assert_eq!(
            secret_fields("/apisix/upstreams/1", &upstream),
            ["/tls/client_key"]
        );
        let inline = json!({"upstream": upstream, "plugins": {"jwt": {"secret": "k"}}});
        assert_eq!(
            secret_fields("/apisix/services/1", &inline),
            ["/upstream/tls/client_key", "/plugins/jwt/secret"]
        );
        assert_eq!(
            secret_fields("/apisix/routes/1", &json!({"upstream": {"nodes": {}}})),
            Vec::<String>::new()
        );
        let (sealed, pointers) = ar.seal("/apisix/routes/1", &inline).unwrap();
        assert_ne!(sealed["upstream"]["tls"]["client_key"], "k");
        let mut opened = sealed;
        ar.open("/apisix/routes/1", &mut opened, &pointers).unwrap();
        assert_eq!(opened, inline);
        let vault = json!({"uri": "http://v", "prefix": "kv", "token": "root-token"});
        let key = "/apisix/secrets/vault/1";
        let (sealed, pointers) = ar.seal(key, &vault).unwrap();
        assert_eq!(pointers, ["/token"]);
        assert_ne!(sealed["token"], "root-token");
        assert_eq!(sealed["uri"], "http://v");
        let mut opened = sealed;
        ar.open(key, &mut opened, &pointers).unwrap();
        assert_eq!(opened, vault);
    }

    #[test]
    fn disabled_seals_nothing_but_still_opens() {
        let ring = Keyring::new(&[b"0123456789abcdef"]).unwrap();
        let on = AtRest::new(ring.clone(), true).unwrap();
        let off = AtRest::new(ring, false).unwrap();
        let (sealed, pointers) = on.seal(CRED, &credential()).unwrap();
        assert_eq!(
            off.seal(CRED, &credential()).unwrap(),
            (credential(), vec![])
        );
        let mut opened = sealed;
        off.open(CRED, &mut opened, &pointers).unwrap();
        assert_eq!(opened, credential());
        assert!(AtRest::new(Keyring::default(), true).is_err());
    }

    #[test]
    fn a_rotated_keyring_opens_values_sealed_with_the_old_key() {
        let old = at_rest(&[b"0123456789abcdef"]);
        let (sealed, pointers) = old.seal(CRED, &credential()).unwrap();
        let rotated = at_rest(&[b"fedcba9876543210fedcba9876543210", b"0123456789abcdef"]);
        let mut opened = sealed;
        rotated.open(CRED, &mut opened, &pointers).unwrap();
        assert_eq!(opened, credential());
    }

    #[test]
    fn refuses_what_does_not_open_without_quoting_it() {
        let ar = at_rest(&[b"0123456789abcdef"]);
        let (sealed, pointers) = ar.seal(CRED, &credential()).unwrap();
        let cipher = sealed["plugins"]["jwt-auth"]["secret"]
            .as_str()
            .unwrap()
            .to_owned();

        let wrong = at_rest(&[b"fedcba9876543210"]);
        let err = wrong
            .open(CRED, &mut sealed.clone(), &pointers)
            .unwrap_err();
        assert!(err.starts_with(CRED), "{err}");
        assert!(err.contains("/plugins/jwt-auth/secret"), "{err}");
        assert!(err.contains("no keyring key decrypts it"), "{err}");
        assert!(!err.contains(&cipher), "{err}");

        let mut tampered = sealed.clone();
        let mut flipped = cipher.into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        tampered["plugins"]["jwt-auth"]["secret"] = json!(String::from_utf8(flipped).unwrap());
        assert!(ar.open(CRED, &mut tampered, &pointers).is_err());

        let moved = "/apisix/consumers/jill/credentials/c1";
        assert!(ar.open(moved, &mut sealed.clone(), &pointers).is_err());

        let mut plain_but_listed = credential();
        let err = ar.open(CRED, &mut plain_but_listed, &pointers).unwrap_err();
        assert!(err.contains("not an encrypted value"), "{err}");
        assert!(!err.contains("jack-secret"), "{err}");
    }

    #[test]
    fn legacy_plaintext_is_accepted_even_when_it_looks_like_base64() {
        let ar = at_rest(&[b"0123456789abcdef"]);
        // A base64_secret: valid base64, long enough to pass for a nonce, ciphertext and tag.
        let b64 = "c2VjcmV0LXRoYXQtaXMtdmVyeS1sb25nLWFuZC1yYW5kb20=";
        let mut value = json!({"plugins": {"jwt-auth": {"key": "k", "secret": b64}}});
        ar.open(CRED, &mut value, &[]).unwrap();
        assert_eq!(value["plugins"]["jwt-auth"]["secret"], b64);
        assert!(ar.would_seal(CRED, &value));
        assert!(!ar.would_seal(CRED, &json!({"plugins": {}})));
    }

    #[test]
    fn ssl_private_keys_are_sealed() {
        let ar = at_rest(&[b"0123456789abcdef"]);
        let key = "/apisix/ssls/1";
        let ssl = json!({"cert": "C", "key": "-----BEGIN PRIVATE KEY-----k", "certs": ["C2"],
                         "keys": ["-----BEGIN PRIVATE KEY-----k2"], "snis": ["a.test"]});
        let (sealed, pointers) = ar.seal(key, &ssl).unwrap();
        assert_eq!(pointers, ["/key", "/keys/0"]);
        assert!(!sealed.to_string().contains("PRIVATE KEY"));
        assert_eq!(sealed["cert"], "C");
        let cipher = sealed["key"].as_str().unwrap();
        assert_eq!(
            ar.open_one(key, "/key", cipher).unwrap(),
            "-----BEGIN PRIVATE KEY-----k"
        );
        assert!(
            ar.open_one(key, "/keys/0", cipher).is_err(),
            "bound to its field"
        );
        let mut opened = sealed.clone();
        ar.open(key, &mut opened, &pointers).unwrap();
        assert_eq!(opened, ssl);
    }

    #[test]
    fn plugin_names_are_escaped_in_pointers() {
        assert_eq!(escape("a/b~c"), "a~1b~0c");
    }
}
