//! Durable configuration storage.
//!
//! The control plane keeps every Admin API object under an etcd-style key
//! (`/apisix/routes/1`) as JSON bytes. A [`Store`] holds those keys; [`apply`](Store::apply)
//! writes a batch atomically and returns only once it is durable, so an Admin API answer of
//! 2xx means the change survives a crash right after it.
//!
//! - [`EmbeddedStore`]: the default, a single redb file in `data_dir` (no server to run).
//! - [`MemoryStore`]: for tests; nothing survives the process.
//! - [`Keyring`]: the AES-GCM keys secret fields are encrypted with before they are stored.

mod embedded;
pub mod keyring;
mod memory;

pub use embedded::EmbeddedStore;
pub use keyring::Keyring;
pub use memory::MemoryStore;

/// One change in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create or replace `key`.
    Put {
        /// Full key, e.g. `/apisix/routes/1`.
        key: String,
        /// JSON bytes.
        value: Vec<u8>,
    },
    /// Remove `key` (no error when absent).
    Delete {
        /// Full key.
        key: String,
    },
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened; `detail` says why in words an operator can act on.
    #[error("cannot open the configuration store {path}: {detail}")]
    Open {
        /// The file or address.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// Reading or writing failed.
    #[error("configuration store I/O failed: {0}")]
    Io(String),
    /// The stored data is damaged.
    #[error("configuration store is corrupt: {0}")]
    Corrupt(String),
    /// A concurrent writer changed the store first.
    #[error("configuration store conflict: {0}")]
    Conflict(String),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A durable, ordered key-value store of JSON documents.
pub trait Store: Send + Sync {
    /// The value at `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// Calls `f` with every `(key, value)` whose key is in `from..to`, in key order, without
    /// collecting them first (start-up reads a million objects this way); `f` returns `false`
    /// to stop early.
    fn scan(&self, from: &str, to: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<()>;
    /// Applies `ops` atomically and durably; returns the new revision. An empty batch still
    /// bumps the revision.
    fn apply(&self, ops: &[Op]) -> Result<u64>;
    /// The revision of the last applied batch (0 for a new store).
    fn revision(&self) -> Result<u64>;
    /// A fresh id, never handed out before by this store (durably counted).
    fn next_id(&self) -> Result<u64>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! Behaviour every [`Store`] implementation must have; each implementation's tests call
    //! these.
    use super::*;

    pub fn put(key: &str, v: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    pub fn crud(s: &dyn Store) {
        assert_eq!(s.revision().unwrap(), 0);
        assert_eq!(s.get("/apisix/routes/1").unwrap(), None);
        let r1 = s
            .apply(&[
                put("/apisix/routes/1", "{\"a\":1}"),
                put("/apisix/routes/2", "{}"),
            ])
            .unwrap();
        assert_eq!(r1, 1);
        assert_eq!(s.revision().unwrap(), 1);
        assert_eq!(s.get("/apisix/routes/1").unwrap().unwrap(), b"{\"a\":1}");
        let r2 = s
            .apply(&[
                Op::Delete {
                    key: "/apisix/routes/1".into(),
                },
                put("/apisix/upstreams/9", "[]"),
            ])
            .unwrap();
        assert_eq!(r2, 2);
        assert_eq!(s.get("/apisix/routes/1").unwrap(), None);
        // Deleting an absent key is not an error.
        s.apply(&[Op::Delete {
            key: "/apisix/nothing".into(),
        }])
        .unwrap();
        assert_eq!(s.revision().unwrap(), 3);
    }

    pub fn list_is_prefix_and_ordered(s: &dyn Store) {
        s.apply(&[
            put("/apisix/routes/b", "2"),
            put("/apisix/routes/a", "1"),
            put("/apisix/routesX", "0"),
            put("/apisix/services/a", "3"),
            put("/apisix/route", "4"),
        ])
        .unwrap();
        let keys: Vec<String> = s
            .list("/apisix/routes/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["/apisix/routes/a", "/apisix/routes/b"]);
        assert_eq!(s.list("/apisix/").unwrap().len(), 5);
        assert!(s.list("/nope/").unwrap().is_empty());
    }

    pub fn scan_is_a_range_in_order(s: &dyn Store) {
        s.apply(&[
            put("/a/1", "1"),
            put("/a/2", "2"),
            put("/a/2/x", "3"),
            put("/a0", "4"),
            put("/b/1", "5"),
        ])
        .unwrap();
        let mut seen = Vec::new();
        s.scan("/a/", "/a0", &mut |k, v| {
            seen.push((k.to_string(), v.to_vec()));
            true
        })
        .unwrap();
        let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["/a/1", "/a/2", "/a/2/x"]);
        assert_eq!(seen[2].1, b"3");
        let mut after = Vec::new();
        s.scan("/a0", "/c", &mut |k, _| {
            after.push(k.to_string());
            true
        })
        .unwrap();
        assert_eq!(after, ["/a0", "/b/1"]);
        let mut first = Vec::new();
        s.scan("/", "/z", &mut |k, _| {
            first.push(k.to_string());
            false
        })
        .unwrap();
        assert_eq!(first, ["/a/1"]);
    }

    pub fn ids_are_fresh(s: &dyn Store) {
        let a = s.next_id().unwrap();
        let b = s.next_id().unwrap();
        assert!(b > a);
        assert!(a >= 1);
    }
}
