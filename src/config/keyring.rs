//! [`NodeConfig::keyring`]: the keys secret fields are encrypted with in the store.
//!
//! When `data_encryption.keyring` is not set, the node uses a random 32-byte key (AES-256-GCM)
//! that it generates into `<data_dir>/keyring` on first start (64 hex characters, mode 0600,
//! published as [`super::state_file`] describes) and reuses afterwards. There is no built-in
//! key: APISIX's default `qeddd145sfvddff3` is public, and a key everyone has protects nothing.
//!
//! When the keyring is set and `<data_dir>/keyring` exists too, the generated key is kept after
//! the configured ones as a decryption-only key, so moving from the generated key to configured
//! ones needs no migration: values sealed with it still open, and are sealed with the first
//! configured key at their next write.

use std::fs;
use std::io;
use std::path::Path;

use crate::store::Keyring;

use super::state_file::{create_dir, publish, random_hex, with_path};
use super::{KeyringKey, NodeConfig};

/// The generated key's file name inside `data_dir`.
pub const KEYRING_FILE: &str = "keyring";

impl NodeConfig {
    /// The keyring: the configured keys, then the key in `<data_dir>/keyring` if there is one.
    /// With no configured key and encryption enabled, that file is generated when missing
    /// (creating `data_dir` with mode 0700 if needed). An unreadable or malformed key file is
    /// an error naming the file (never its content) rather than being replaced.
    pub fn keyring(&self) -> io::Result<Keyring> {
        let configured = &self.data_encryption.keyring;
        let generate = configured.is_empty() && self.data_encryption.enable_encrypt_fields;
        let mut keys: Vec<KeyringKey> = configured.clone();
        keys.extend(generated_key(&self.data_dir, generate)?);
        Keyring::new(&keys.iter().map(|k| &k.0[..]).collect::<Vec<_>>())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

/// The key in `<dir>/keyring`; when there is none, a new one if `generate`, else `None`.
fn generated_key(dir: &Path, generate: bool) -> io::Result<Option<KeyringKey>> {
    let path = dir.join(KEYRING_FILE);
    match read_key(&path) {
        Ok(key) => return Ok(Some(key)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && generate => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    create_dir(dir)?;
    let hex = random_hex(32)?;
    match publish(dir, &path, &hex) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated the store encryption key");
            Ok(Some(decode_hex(&hex).expect("random_hex gives hex")))
        }
        // Another node on the same data_dir published its key first: use that one.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path).map(Some),
        Err(e) => Err(with_path(e, &path, "cannot write the store encryption key")),
    }
}

fn read_key(path: &Path) -> io::Result<KeyringKey> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
        Err(e) => return Err(with_path(e, path, "cannot read the store encryption key")),
    };
    decode_hex(text.trim()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a store encryption key (64 hex characters); objects stored with it \
                 cannot be decrypted without it, so restore the file rather than delete it",
                path.display()
            ),
        )
    })
}

/// 64 hex characters → the 32-byte key.
fn decode_hex(hex: &str) -> Option<KeyringKey> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(KeyringKey(bytes))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::tests::{config_in, mode, TempDir};

    #[test]
    fn generates_a_private_key_once_then_reloads_it() {
        let dir = TempDir::new("keyring");
        let config = config_in(&dir, "data_dir: state");
        let ring = config.keyring().unwrap();
        let file = dir.path().join("state/keyring");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        let hex = fs::read_to_string(&file).unwrap();
        assert_eq!(hex.trim().len(), 64, "32 bytes in hex");
        assert_ne!(hex.trim(), "0".repeat(64));
        let sealed = ring.seal("s", "a").unwrap();
        let again = config_in(&dir, "data_dir: state").keyring().unwrap();
        assert_eq!(again.open(&sealed, "a").unwrap(), "s", "the same key");
        assert_eq!(fs::read_to_string(&file).unwrap(), hex, "not replaced");
        assert_eq!(fs::read_dir(dir.path().join("state")).unwrap().count(), 1);
    }

    #[test]
    fn configured_keys_come_first_and_the_generated_one_still_decrypts() {
        let dir = TempDir::new("keyring-configured");
        let generated = config_in(&dir, "").keyring().unwrap();
        let old = generated.seal("old", "a").unwrap();
        let config = config_in(&dir, "data_encryption: {keyring: [abcdefgh12345678]}");
        let ring = config.keyring().unwrap();
        assert_eq!(ring.open(&old, "a").unwrap(), "old");
        let new = ring.seal("new", "a").unwrap();
        let only_configured = Keyring::new(&[b"abcdefgh12345678"]).unwrap();
        assert_eq!(only_configured.open(&new, "a").unwrap(), "new");
    }

    #[test]
    fn configured_keys_or_disabled_encryption_generate_nothing() {
        let dir = TempDir::new("keyring-none");
        let ring = config_in(&dir, "data_encryption: {keyring: [abcdefgh12345678]}")
            .keyring()
            .unwrap();
        assert!(!ring.is_empty());
        let disabled = config_in(&dir, "data_encryption: {enable_encrypt_fields: false}")
            .keyring()
            .unwrap();
        assert!(disabled.is_empty());
        assert!(!dir.path().join("data").exists(), "nothing written");
    }

    #[test]
    fn refuses_a_corrupt_key_file_without_quoting_it() {
        for (name, content) in [
            ("empty", ""),
            ("short", "abcd\n"),
            ("not-hex", &"z".repeat(64)),
        ] {
            let dir = TempDir::new(name);
            fs::create_dir(dir.path().join("data")).unwrap();
            let file = dir.path().join("data/keyring");
            fs::write(&file, content).unwrap();
            let err = config_in(&dir, "").keyring().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}");
            let shown = err.to_string();
            assert!(shown.contains(&*file.to_string_lossy()), "{shown}");
            assert!(
                content.is_empty() || !shown.contains(content.trim()),
                "{shown}"
            );
            assert_eq!(fs::read_to_string(&file).unwrap(), content, "not replaced");
        }
    }
}
