//! Admin API authentication: the `X-API-KEY` header (or `api_key` query argument, or the
//! `X-API-KEY` cookie, as APISIX accepts) compared in constant time with every configured key,
//! the `viewer` role limited to reads, and the client address allow-list.

use std::net::IpAddr;
use std::sync::OnceLock;

use ring::hmac;
use ring::rand::SystemRandom;

use crate::config::{AdminConfig, AdminRole};

/// Why a request was refused; the reason goes into APISIX's `description` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No key in the request.
    #[error("missing apikey")]
    Missing,
    /// A key that matches no configured key.
    #[error("wrong apikey")]
    Wrong,
    /// A viewer key on a write.
    #[error("invalid method for role viewer")]
    ViewerWrite,
}

/// A per-process random HMAC key. Keys are compared as HMAC tags under it: the tags have a
/// fixed length whatever the keys' lengths, and `ring::hmac::verify` compares them in constant
/// time, so timing tells nothing about a key's length or how much of it matched.
fn mac_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the system random source is available")
    })
}

/// Checks `presented` against the configured keys. Every key is compared, so timing does not
/// tell which key matched either.
pub fn check(admin: &AdminConfig, presented: Option<&[u8]>, method: &str) -> Result<(), Denied> {
    let presented = presented.ok_or(Denied::Missing)?;
    let key = mac_key();
    let tag = hmac::sign(key, presented);
    let mut role = None;
    for k in &admin.keys {
        let same = hmac::verify(key, k.key.as_bytes(), tag.as_ref()).is_ok();
        if same && role.is_none() {
            role = Some(k.role);
        }
    }
    match role {
        None => Err(Denied::Wrong),
        Some(AdminRole::Viewer) if !matches!(method, "GET" | "HEAD" | "OPTIONS") => {
            Err(Denied::ViewerWrite)
        }
        Some(_) => Ok(()),
    }
}

/// Whether `ip` may reach the Admin API (an empty allow-list allows everyone).
pub fn allowed(admin: &AdminConfig, ip: IpAddr) -> bool {
    admin.allow.is_empty() || admin.allow.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminKey, Cidr};

    fn admin() -> AdminConfig {
        AdminConfig {
            keys: vec![
                AdminKey {
                    name: "a".into(),
                    key: "admin-key-1".into(),
                    role: AdminRole::Admin,
                },
                AdminKey {
                    name: "v".into(),
                    key: "viewer-key".into(),
                    role: AdminRole::Viewer,
                },
            ],
            allow: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..AdminConfig::default()
        }
    }

    #[test]
    fn keys_and_roles() {
        let a = admin();
        assert_eq!(check(&a, None, "GET"), Err(Denied::Missing));
        assert_eq!(check(&a, Some(b"nope"), "GET"), Err(Denied::Wrong));
        assert_eq!(check(&a, Some(b"admin-key-"), "GET"), Err(Denied::Wrong));
        assert_eq!(check(&a, Some(b"admin-key-1"), "PUT"), Ok(()));
        assert_eq!(check(&a, Some(b"viewer-key"), "GET"), Ok(()));
        assert_eq!(
            check(&a, Some(b"viewer-key"), "DELETE"),
            Err(Denied::ViewerWrite)
        );
    }

    #[test]
    fn allow_list() {
        let a = admin();
        assert!(allowed(&a, "127.0.0.1".parse().unwrap()));
        assert!(!allowed(&a, "10.0.0.1".parse().unwrap()));
        let open = AdminConfig {
            allow: vec![],
            ..admin()
        };
        assert!(allowed(&open, "10.0.0.1".parse().unwrap()));
    }
}
