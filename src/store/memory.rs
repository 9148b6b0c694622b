//! An in-process store for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Op, Result, Store};

/// A [`Store`] held in memory; nothing survives the process.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    kv: BTreeMap<String, Vec<u8>>,
    revision: u64,
    ids: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-written (every mutation is a
        // single map operation), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().kv.get(key).cloned())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let g = self.lock();
        Ok(g.kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan(&self, from: &str, to: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<()> {
        let g = self.lock();
        use std::ops::Bound::{Excluded, Included};
        for (k, v) in g.kv.range::<str, _>((Included(from), Excluded(to))) {
            if !f(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, ops: &[Op]) -> Result<u64> {
        let mut g = self.lock();
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    g.kv.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    g.kv.remove(key);
                }
            }
        }
        g.revision += 1;
        Ok(g.revision)
    }

    fn revision(&self) -> Result<u64> {
        Ok(self.lock().revision)
    }

    fn next_id(&self) -> Result<u64> {
        let mut g = self.lock();
        g.ids += 1;
        Ok(g.ids)
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;

    #[test]
    fn crud() {
        contract::crud(&MemoryStore::new());
    }

    #[test]
    fn list() {
        contract::list_is_prefix_and_ordered(&MemoryStore::new());
    }

    #[test]
    fn scan() {
        contract::scan_is_a_range_in_order(&MemoryStore::new());
    }

    #[test]
    fn ids() {
        contract::ids_are_fresh(&MemoryStore::new());
    }
}
