//! [`Keyring`]: the AES-GCM keys that encrypt secret fields before they reach the store.
//!
//! Like APISIX's `data_encryption.keyring`, a value is encrypted with the first key and decrypted
//! with whichever key opens it, so a key is rotated by putting the new one first and keeping the
//! old one after it until every object has been written again.
//!
//! Unlike APISIX (AES-128-CBC with the key as its own IV, unauthenticated), each value is sealed
//! with AES-GCM under a fresh random 96-bit nonce: AES-128-GCM for a 16-byte key, AES-256-GCM for
//! a 32-byte one. The stored form is `base64(nonce ‖ ciphertext ‖ tag)` (standard alphabet,
//! padded). The caller passes associated data naming where the value lives (object key and
//! field), so a ciphertext copied into another object or field does not open there.

use std::fmt;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The length of the GCM authentication tag appended to the ciphertext.
const TAG_LEN: usize = 16;

/// The keys, first one encrypting. Cheap to clone; `Debug` shows only how many keys it holds.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Arc<[LessSafeKey]>,
}

/// Why a stored value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It is not `base64(nonce ‖ ciphertext ‖ tag)` at all.
    #[error("not an encrypted value (not base64 of a nonce, ciphertext and tag)")]
    NotCiphertext,
    /// No key of the keyring opens it: encrypted with a key that is not in the keyring, or
    /// altered since.
    #[error("no keyring key decrypts it (encrypted with a key not in the keyring, or altered)")]
    NoKey,
    /// It opened, but is not UTF-8 text (never written by [`Keyring::seal`]).
    #[error("it decrypts to something that is not text")]
    NotText,
}

/// Why a value could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The keyring is empty.
    #[error("the keyring has no key to encrypt with")]
    NoKey,
    /// The system random number generator failed (no nonce).
    #[error("the system random number generator failed")]
    Random,
    /// The value is longer than AES-GCM can seal under one nonce (about 64 GiB).
    #[error("the value is too long to encrypt")]
    TooLong,
}

impl Keyring {
    /// A keyring of `keys`, in order; each must be 16 bytes (AES-128-GCM) or 32 bytes
    /// (AES-256-GCM). The error names the position of a bad key, never the key.
    pub fn new<K: AsRef<[u8]>>(keys: &[K]) -> Result<Keyring, String> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let key = key.as_ref();
                let alg = match key.len() {
                    16 => &AES_128_GCM,
                    32 => &AES_256_GCM,
                    n => return Err(format!("keyring[{i}]: must be 16 or 32 bytes, not {n}")),
                };
                UnboundKey::new(alg, key)
                    .map(LessSafeKey::new)
                    .map_err(|_| format!("keyring[{i}]: not a usable AES key"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring { keys: keys.into() })
    }

    /// Whether there is no key (nothing can be sealed or opened).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `plaintext` encrypted with the first key under a fresh nonce, bound to `aad`.
    pub fn seal(&self, plaintext: &str, aad: &str) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext.as_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| SealError::TooLong)?;
        out.extend_from_slice(tag.as_ref());
        Ok(base64_simd::STANDARD.encode_to_string(&out))
    }

    /// The plaintext of a value [`Keyring::seal`] made with `aad`, trying every key in order.
    pub fn open(&self, stored: &str, aad: &str) -> Result<String, OpenError> {
        let bytes = base64_simd::STANDARD
            .decode_to_vec(stored)
            .map_err(|_| OpenError::NotCiphertext)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::NotCiphertext);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::NotCiphertext)?;
        for key in self.keys.iter() {
            let mut buf = sealed.to_vec();
            let opened = key.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            );
            if let Ok(plain) = opened {
                let len = plain.len();
                buf.truncate(len);
                return String::from_utf8(buf).map_err(|_| OpenError::NotText);
            }
        }
        Err(OpenError::NoKey)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K16: &[u8; 16] = b"0123456789abcdef";
    const K32: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trips_with_each_key_size() {
        for key in [&K16[..], &K32[..]] {
            let ring = Keyring::new(&[key]).unwrap();
            let sealed = ring.seal("my-secret", "/apisix/x#/secret").unwrap();
            assert!(!sealed.contains("my-secret"));
            // nonce 12 + 9 bytes + tag 16 = 37 bytes → 52 base64 characters.
            assert_eq!(sealed.len(), 52, "{sealed}");
            assert_eq!(
                ring.open(&sealed, "/apisix/x#/secret").unwrap(),
                "my-secret"
            );
        }
        let ring = Keyring::new(&[K32]).unwrap();
        assert_eq!(ring.open(&ring.seal("", "a").unwrap(), "a").unwrap(), "");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = Keyring::new(&[K16]).unwrap();
        assert_ne!(
            ring.seal("same", "a").unwrap(),
            ring.seal("same", "a").unwrap()
        );
    }

    #[test]
    fn after_rotation_old_values_open_with_the_second_key() {
        let old = Keyring::new(&[K16]).unwrap();
        let sealed = old.seal("s3cret", "aad").unwrap();
        let rotated = Keyring::new(&[&K32[..], &K16[..]]).unwrap();
        assert_eq!(rotated.open(&sealed, "aad").unwrap(), "s3cret");
        // New values are sealed with the first key only.
        let fresh = rotated.seal("new", "aad").unwrap();
        assert_eq!(old.open(&fresh, "aad"), Err(OpenError::NoKey));
        assert_eq!(
            Keyring::new(&[K32]).unwrap().open(&fresh, "aad").unwrap(),
            "new"
        );
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let sealed = Keyring::new(&[K16]).unwrap().seal("s3cret", "aad").unwrap();
        let other = Keyring::new(&[b"fedcba9876543210"]).unwrap();
        assert_eq!(other.open(&sealed, "aad"), Err(OpenError::NoKey));
        assert_eq!(
            Keyring::default().open(&sealed, "aad"),
            Err(OpenError::NoKey)
        );
    }

    #[test]
    fn tampered_or_moved_ciphertext_is_refused() {
        let ring = Keyring::new(&[K32]).unwrap();
        let sealed = ring.seal("s3cret", "/apisix/a#/secret").unwrap();
        let mut bytes = base64_simd::STANDARD.decode_to_vec(&sealed).unwrap();
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = base64_simd::STANDARD.encode_to_string(&bytes);
            assert_eq!(
                ring.open(&tampered, "/apisix/a#/secret"),
                Err(OpenError::NoKey),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        assert_eq!(
            ring.open(&sealed, "/apisix/b#/secret"),
            Err(OpenError::NoKey),
            "bound to where it was stored"
        );
    }

    #[test]
    fn plaintext_is_told_apart_from_ciphertext() {
        let ring = Keyring::new(&[K16]).unwrap();
        for plain in ["my-secret", "", "not base64!", "c2hvcnQ="] {
            assert_eq!(
                ring.open(plain, "a"),
                Err(OpenError::NotCiphertext),
                "{plain}"
            );
        }
    }

    #[test]
    fn refuses_keys_of_other_sizes_without_quoting_them() {
        let err = Keyring::new(&[&K16[..], b"too-short-key"]).unwrap_err();
        assert_eq!(err, "keyring[1]: must be 16 or 32 bytes, not 13");
        assert!(Keyring::new(&[[0u8; 24]]).is_err());
        assert_eq!(Keyring::default().seal("x", "a"), Err(SealError::NoKey));
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", Keyring::new(&[K16]).unwrap());
        assert_eq!(shown, "Keyring(1 keys)");
    }
}
