//! The default store: one [redb](https://docs.rs/redb) file, `<data_dir>/store.redb`.
//!
//! Why redb: it is a pure-Rust, well-maintained embedded B-tree with ACID transactions,
//! copy-on-write pages and checksummed commits. A commit with immediate durability is fsynced
//! before it returns, so a 2xx from the Admin API survives `kill -9` and power loss; a commit
//! cut short by a crash is rolled back on the next open, never half-applied. The file is locked
//! so two gateways cannot share one `data_dir` by accident.
//!
//! Damage is never silently dropped: a file that is empty, truncated, not a redb file, or holds
//! a value that is not JSON makes [`EmbeddedStore::open`] fail with a message naming the file
//! and what is wrong. A new store is built under a temporary name and renamed into place, so an
//! empty `store.redb` always means damage, never "first start".

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableTable, StorageError, TableDefinition};

use super::{Op, Result, Store, StoreError};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const IDS: &str = "ids";
/// The file name inside `data_dir`.
pub const FILE_NAME: &str = "store.redb";

/// The embedded, durable [`Store`].
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or, on first start, creates) `<data_dir>/store.redb` and checks every stored
    /// value.
    pub fn open(data_dir: &Path) -> Result<EmbeddedStore> {
        let path = data_dir.join(FILE_NAME);
        let shown = path.display().to_string();
        let fail = |detail: String| StoreError::Open {
            path: shown.clone(),
            detail,
        };
        fs::create_dir_all(data_dir)
            .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        if !path.exists() {
            create_new(data_dir, &path).map_err(|e| fail(format!("cannot create it: {e}")))?;
        }
        let len = fs::metadata(&path).map_err(|e| fail(e.to_string()))?.len();
        if len == 0 {
            return Err(fail(
                "the file is empty (truncated); restore it from a backup, or move it away to start with an empty configuration".into(),
            ));
        }
        let db = open_guarded(&path).map_err(fail)?;
        let store = EmbeddedStore { db, path };
        store.verify().map_err(|e| fail(e.to_string()))?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every table exists, the revision is recorded and every value parses as JSON.
    fn verify(&self) -> Result<()> {
        let txn = self.db.begin_read().map_err(err)?;
        let meta = txn
            .open_table(META)
            .map_err(|e| StoreError::Corrupt(format!("not a Portcullis store ({e})")))?;
        if meta.get(REVISION).map_err(err)?.is_none() {
            return Err(StoreError::Corrupt(
                "not a Portcullis store (no revision recorded)".into(),
            ));
        }
        let kv = txn
            .open_table(KV)
            .map_err(|e| StoreError::Corrupt(format!("not a Portcullis store ({e})")))?;
        for row in kv.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(v.value()) {
                return Err(StoreError::Corrupt(format!(
                    "the value of {} is not JSON ({e})",
                    k.value()
                )));
            }
        }
        Ok(())
    }

    fn bump(&self, counter: &str) -> Result<u64> {
        let txn = self.db.begin_write().map_err(err)?;
        let n = {
            let mut meta = txn.open_table(META).map_err(err)?;
            let n = meta.get(counter).map_err(err)?.map_or(0, |g| g.value()) + 1;
            meta.insert(counter, n).map_err(err)?;
            n
        };
        txn.commit().map_err(err)?;
        Ok(n)
    }
}

/// Builds an empty store under a temporary name, then renames it into place and syncs the
/// directory, so `path` either does not exist or is a complete store.
fn create_new(dir: &Path, path: &Path) -> std::result::Result<(), String> {
    let tmp = dir.join(format!("{FILE_NAME}.new"));
    let _ = fs::remove_file(&tmp);
    {
        let db = Database::create(&tmp).map_err(|e| e.to_string())?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        {
            txn.open_table(KV).map_err(|e| e.to_string())?;
            let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
            meta.insert(REVISION, 0).map_err(|e| e.to_string())?;
            meta.insert(IDS, 0).map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
    }
    fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())
}

/// redb's page cache. Its default (1 GiB) would keep every page the start-up scan reads: the
/// whole store, hundreds of MiB at a million consumers. The gateway reads the store once at
/// start and writes a few pages per change, so a small cache costs nothing measurable.
const CACHE_BYTES: usize = 32 << 20;

/// `Database::open`, with redb's internal assertions on a damaged file (it asserts, for one,
/// that the file is as long as its header says) turned into an error instead of a panic.
fn open_guarded(path: &Path) -> std::result::Result<Database, String> {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let opened =
        std::panic::catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).open(path));
    QUIET.with(|q| q.set(false));
    match opened {
        Ok(r) => r.map_err(open_detail),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!(
                "the file is damaged or truncated ({why}); restore it from a backup, or move it away to start with an empty configuration"
            ))
        }
    }
}

fn open_detail(e: DatabaseError) -> String {
    const ADVICE: &str =
        "restore it from a backup, or move it away to start with an empty configuration";
    match e {
        DatabaseError::DatabaseAlreadyOpen => {
            "it is in use by another process (is another gateway running with this data_dir?)"
                .into()
        }
        DatabaseError::Storage(StorageError::Corrupted(why)) => {
            format!("the file is damaged ({why}); {ADVICE}")
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            format!("the file is truncated ({io}); {ADVICE}")
        }
        DatabaseError::UpgradeRequired(v) => {
            format!("the file uses an unsupported format version ({v}); {ADVICE}")
        }
        other => format!("{other}; {ADVICE}"),
    }
}

fn err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(why) => StoreError::Corrupt(why),
        other => StoreError::Io(display(other)),
    }
}

fn display(e: impl Display) -> String {
    e.to_string()
}

impl Store for EmbeddedStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(err)?;
        let kv = txn.open_table(KV).map_err(err)?;
        let v = kv.get(key).map_err(err)?.map(|g| g.value().to_vec());
        Ok(v)
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let kv = txn.open_table(KV).map_err(err)?;
        let mut out = Vec::new();
        for row in kv.range(prefix..).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn scan(&self, from: &str, to: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<()> {
        let txn = self.db.begin_read().map_err(err)?;
        let kv = txn.open_table(KV).map_err(err)?;
        for row in kv.range::<&str>(from..to).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            if !f(k.value(), v.value()) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, ops: &[Op]) -> Result<u64> {
        let txn = self.db.begin_write().map_err(err)?;
        let rev = {
            let mut kv = txn.open_table(KV).map_err(err)?;
            for op in ops {
                match op {
                    Op::Put { key, value } => {
                        kv.insert(key.as_str(), value.as_slice()).map_err(err)?;
                    }
                    Op::Delete { key } => {
                        kv.remove(key.as_str()).map_err(err)?;
                    }
                }
            }
            let mut meta = txn.open_table(META).map_err(err)?;
            let rev = meta.get(REVISION).map_err(err)?.map_or(0, |g| g.value()) + 1;
            meta.insert(REVISION, rev).map_err(err)?;
            rev
        };
        // Default durability is Immediate: the commit is fsynced before this returns.
        txn.commit().map_err(err)?;
        Ok(rev)
    }

    fn revision(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(err)?;
        let meta = txn.open_table(META).map_err(err)?;
        let r = meta.get(REVISION).map_err(err)?.map_or(0, |g| g.value());
        Ok(r)
    }

    fn next_id(&self) -> Result<u64> {
        self.bump(IDS)
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract::{self, put};
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "portcullis-store-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn contract_holds() {
        let d = tmpdir("contract");
        contract::crud(&EmbeddedStore::open(&d).unwrap());
        let d = tmpdir("list");
        contract::list_is_prefix_and_ordered(&EmbeddedStore::open(&d).unwrap());
        let d = tmpdir("scan");
        contract::scan_is_a_range_in_order(&EmbeddedStore::open(&d).unwrap());
        let d = tmpdir("ids");
        contract::ids_are_fresh(&EmbeddedStore::open(&d).unwrap());
    }

    #[test]
    fn survives_reopen_with_revision_and_ids() {
        let d = tmpdir("reopen");
        {
            let s = EmbeddedStore::open(&d).unwrap();
            s.apply(&[put("/apisix/routes/1", "{\"uri\":\"/a\"}")])
                .unwrap();
            s.apply(&[put("/apisix/routes/2", "{}")]).unwrap();
            assert_eq!(s.next_id().unwrap(), 1);
        }
        let s = EmbeddedStore::open(&d).unwrap();
        assert_eq!(s.revision().unwrap(), 2);
        assert_eq!(
            s.get("/apisix/routes/1").unwrap().unwrap(),
            b"{\"uri\":\"/a\"}"
        );
        assert_eq!(s.next_id().unwrap(), 2, "ids never repeat across restarts");
    }

    #[test]
    fn second_opener_is_refused() {
        let d = tmpdir("lock");
        let _a = EmbeddedStore::open(&d).unwrap();
        let e = EmbeddedStore::open(&d)
            .err()
            .expect("second open must fail");
        assert!(e.to_string().contains("in use"), "{e}");
    }

    fn filled(tag: &str) -> PathBuf {
        let d = tmpdir(tag);
        let s = EmbeddedStore::open(&d).unwrap();
        for i in 0..200 {
            let v = format!("{{\"uri\":\"/r{i}\",\"pad\":\"{}\"}}", "x".repeat(500));
            s.apply(&[put(&format!("/apisix/routes/{i}"), &v)]).unwrap();
        }
        d
    }

    #[test]
    fn empty_file_is_an_error_not_a_fresh_start() {
        let d = filled("empty");
        fs::write(d.join(FILE_NAME), b"").unwrap();
        let e = EmbeddedStore::open(&d).err().expect("must fail");
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(e.to_string().contains("store.redb"), "{e}");
    }

    #[test]
    fn truncated_file_is_an_error() {
        for keep in [100u64, 4096, 0] {
            let d = filled(&format!("trunc{keep}"));
            let p = d.join(FILE_NAME);
            let len = fs::metadata(&p).unwrap().len();
            let keep = if keep == 0 { len / 2 } else { keep };
            let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(keep).unwrap();
            drop(f);
            let e = EmbeddedStore::open(&d)
                .err()
                .unwrap_or_else(|| panic!("truncation to {keep} bytes went unnoticed"));
            assert!(e.to_string().contains("store.redb"), "{e}");
        }
    }

    #[test]
    fn garbage_file_is_an_error() {
        let d = tmpdir("garbage");
        fs::write(d.join(FILE_NAME), vec![0xA5u8; 64 * 1024]).unwrap();
        let e = EmbeddedStore::open(&d).err().expect("must fail");
        assert!(e.to_string().contains("store.redb"), "{e}");
    }

    #[test]
    fn non_json_value_names_its_key() {
        let d = tmpdir("nonjson");
        {
            let s = EmbeddedStore::open(&d).unwrap();
            s.apply(&[put("/apisix/routes/7", "{not json")]).unwrap();
        }
        let e = EmbeddedStore::open(&d).err().expect("must fail");
        assert!(e.to_string().contains("/apisix/routes/7"), "{e}");
    }

    const CRASH_DIR: &str = "PORTCULLIS_STORE_CRASH_DIR";

    /// Child half of [`committed_batches_survive_sigkill`]: writes batches forever, printing
    /// each revision once `apply` has returned.
    #[test]
    #[ignore = "run as a child process by committed_batches_survive_sigkill"]
    fn crash_child() {
        let Ok(dir) = std::env::var(CRASH_DIR) else {
            return;
        };
        let s = EmbeddedStore::open(Path::new(&dir)).unwrap();
        for i in 0u64.. {
            let rev = s
                .apply(&[
                    put(&format!("/apisix/routes/{i}"), &format!("{{\"n\":{i}}}")),
                    put("/apisix/last", &i.to_string()),
                ])
                .unwrap();
            println!("committed {i} {rev}");
        }
    }

    #[test]
    fn committed_batches_survive_sigkill() {
        let d = tmpdir("crash");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::embedded::tests::crash_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, &d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut last = None;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("committed ") {
                let i: u64 = rest.split(' ').next().unwrap().parse().unwrap();
                last = Some(i);
                if i >= 40 {
                    break;
                }
            }
        }
        // SIGKILL: no destructors, no flush.
        child.kill().unwrap();
        child.wait().unwrap();
        let last = last.expect("child committed nothing");
        let s = EmbeddedStore::open(&d).expect("store reopens after kill -9");
        for i in 0..=last {
            let v = s.get(&format!("/apisix/routes/{i}")).unwrap();
            assert_eq!(
                v,
                Some(format!("{{\"n\":{i}}}").into_bytes()),
                "batch {i} lost"
            );
        }
        // Atomicity: `last` and the routes agree (a batch is all or nothing).
        let stored_last: u64 = String::from_utf8(s.get("/apisix/last").unwrap().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(stored_last >= last);
        assert!(s
            .get(&format!("/apisix/routes/{stored_last}"))
            .unwrap()
            .is_some());
        assert!(s
            .get(&format!("/apisix/routes/{}", stored_last + 1))
            .unwrap()
            .is_none());
    }
}
