//! Secrets the node generates once into `data_dir` and reuses afterwards (the Admin API key,
//! the keyring of the encrypted store fields).
//!
//! A file is published atomically and without clobbering: the content is written to a temporary
//! file (mode 0600) and fsynced, then hard-linked to its name. A crash never leaves a partial
//! secret behind, and of two nodes starting at once on the same `data_dir` the second finds the
//! first one's secret instead of replacing it (a plain rename would silently swap a secret the
//! first one already uses).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::rand::{SecureRandom, SystemRandom};

/// Creates `dir` (and its parents) with mode 0700 if needed.
pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| with_path(e, dir, "cannot create the data directory"))
}

/// `len` random bytes as lowercase hex.
pub(super) fn random_hex(len: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system random number generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `content` and a newline to a fresh temporary file in `dir`, fsyncs it, links it to
/// `path` (failing with `AlreadyExists` if `path` appeared meanwhile) and fsyncs `dir`.
pub(super) fn publish(dir: &Path, path: &Path, content: &str) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let linked = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(content.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        })
        .and_then(|()| fs::hard_link(&tmp, path));
    // The temporary name is never needed again, whether or not the link was made.
    let _ = fs::remove_file(&tmp);
    linked?;
    File::open(dir)?.sync_all()
}

/// `e` with `what` and `path` in front.
pub(super) fn with_path(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::TempDir;

    #[test]
    fn a_file_published_meanwhile_wins() {
        let dir = TempDir::new("race");
        let file = dir.path().join("secret");
        fs::write(&file, "first\n").unwrap();
        let err = publish(dir.path(), &file, "second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&file).unwrap(), "first\n");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file removed"
        );
    }

    #[test]
    fn random_hex_is_hex_of_the_length_asked() {
        let a = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(32).unwrap());
    }
}
