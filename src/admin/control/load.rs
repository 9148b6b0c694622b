//! Start-up: every consumer and credential read from the store once, in key order, and turned
//! into consumer index entries on every core at once.
//!
//! The store is scanned on the calling thread; consumers are grouped with their credentials
//! and handed in batches to one loader thread per core, which decode, validate, parse the key
//! material and insert into the (sharded, concurrent) index. Nothing but the batches in flight
//! is held: the objects themselves are not kept (see `mirrored`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use crate::admin::at_rest::AtRest;
use crate::admin::kind::Kind;
use crate::consumers::ConsumerIndex;
use crate::model::PluginCheck;
use crate::secrets::Resolver;
use crate::store::Store;

use super::{id_of, index_entries, username_of, Stored, CONSUMERS, CONSUMERS_END};

/// Consumers handed to a loader thread at a time.
const BATCH: usize = 256;

/// What loading the consumers found besides the index entries.
#[derive(Default)]
pub(super) struct Loaded {
    /// Objects holding secret fields in plaintext.
    pub plaintext: usize,
    /// Consumers whose credentials hold secret references.
    pub with_refs: HashSet<String>,
}

/// What the loader threads read.
pub(super) struct Parts<'a> {
    pub store: &'a dyn Store,
    pub plugins: &'a (dyn PluginCheck + Sync),
    pub at_rest: &'a AtRest,
    pub resolver: &'a Resolver,
    pub index: &'a ConsumerIndex,
}

/// A consumer's stored object and its credentials', as stored.
struct Group {
    name: String,
    consumer: Option<(String, Vec<u8>)>,
    creds: Vec<(String, Vec<u8>)>,
}

/// Groups keys, arriving in order, by consumer. A consumer's credentials (`name/...`) do not
/// always follow it directly: names extending it with a byte below `/` (`name-2`, `name.x`)
/// sort in between. So the consumers still open form a stack, each extending the one below,
/// and a consumer is done once a key arrives that neither is its own nor extends it that way.
#[derive(Default)]
struct Grouper {
    open: Vec<Group>,
}

impl Grouper {
    fn push(&mut self, key: &str, bytes: &[u8], done: &mut dyn FnMut(Group)) {
        let name = username_of(key);
        while let Some(top) = self.open.last() {
            let extends = name.len() > top.name.len()
                && name.starts_with(top.name.as_str())
                && name.as_bytes()[top.name.len()] < b'/';
            if top.name == name || extends {
                break;
            }
            if let Some(g) = self.open.pop() {
                done(g);
            }
        }
        if self.open.last().is_none_or(|t| t.name != name) {
            self.open.push(Group {
                name: name.to_string(),
                consumer: None,
                creds: Vec::new(),
            });
        }
        let Some(g) = self.open.last_mut() else {
            return;
        };
        if Kind::Consumers.owns(key, None) {
            g.consumer = Some((key.to_string(), bytes.to_vec()));
        } else if Kind::Credentials.owns(key, Some(name)) {
            g.creds.push((key.to_string(), bytes.to_vec()));
        }
    }

    fn finish(&mut self, done: &mut dyn FnMut(Group)) {
        while let Some(g) = self.open.pop() {
            done(g);
        }
    }
}

/// Loads every stored consumer into `parts.index`.
pub(super) fn consumers(parts: &Parts<'_>) -> Result<Loaded, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let (tx, rx) = mpsc::sync_channel::<Vec<Group>>(threads * 2);
    let rx = Mutex::new(rx);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| work(parts, &rx, &stop)))
            .collect();
        let mut pending: Vec<Group> = Vec::with_capacity(BATCH);
        let flush = |pending: &mut Vec<Group>| {
            tx.send(std::mem::replace(pending, Vec::with_capacity(BATCH)))
                .is_ok()
        };
        let mut grouper = Grouper::default();
        let scanned = parts
            .store
            .scan(CONSUMERS, CONSUMERS_END, &mut |key, bytes| {
                grouper.push(key, bytes, &mut |g| pending.push(g));
                if pending.len() >= BATCH && !flush(&mut pending) {
                    return false;
                }
                !stop.load(Ordering::Relaxed)
            });
        grouper.finish(&mut |g| pending.push(g));
        flush(&mut pending);
        drop(tx);
        let mut loaded = Loaded::default();
        let mut failed = None;
        for w in workers {
            match w.join() {
                Ok(Ok(l)) => {
                    loaded.plaintext += l.plaintext;
                    loaded.with_refs.extend(l.with_refs);
                }
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Err(_) => {
                    failed.get_or_insert_with(|| "a thread loading consumers panicked".into());
                }
            }
        }
        scanned.map_err(|e| e.to_string())?;
        match failed {
            Some(e) => Err(e),
            None => Ok(loaded),
        }
    })
}

/// One loader thread: batches until the channel closes, or the first invalid consumer.
fn work(
    parts: &Parts<'_>,
    rx: &Mutex<mpsc::Receiver<Vec<Group>>>,
    stop: &AtomicBool,
) -> Result<Loaded, String> {
    let mut out = Loaded::default();
    loop {
        let batch = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(batch) = batch else {
            break;
        };
        for g in batch {
            if let Err(e) = load(parts, g, &mut out) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn load(parts: &Parts<'_>, g: Group, out: &mut Loaded) -> Result<(), String> {
    // Credentials without their consumer cannot be written through the Admin API; a store
    // holding some serves them to nobody, as before.
    let Some((key, bytes)) = g.consumer else {
        return Ok(());
    };
    let consumer = Stored::decode(&key, &bytes, parts.at_rest)?;
    out.plaintext += usize::from(consumer.plaintext_secrets);
    let mut creds = Vec::with_capacity(g.creds.len());
    for (k, b) in &g.creds {
        let s = Stored::decode(k, b, parts.at_rest)?;
        out.plaintext += usize::from(s.plaintext_secrets);
        creds.push((id_of(k).to_string(), s.value));
    }
    let (view, entries, has_refs) = index_entries(
        &g.name,
        &consumer.value,
        &creds,
        parts.plugins,
        parts.resolver,
    )
    .map_err(|e| format!("the stored configuration is invalid: {key}: {e}"))?;
    parts.index.replace(&g.name, view, entries);
    if has_refs {
        out.with_refs.insert(g.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(keys: &[&str]) -> Vec<(String, bool, Vec<String>)> {
        let mut out = Vec::new();
        let mut g = Grouper::default();
        let mut done = |g: Group| {
            out.push((
                g.name,
                g.consumer.is_some(),
                g.creds
                    .into_iter()
                    .map(|(k, _)| id_of(&k).to_string())
                    .collect(),
            ))
        };
        for k in keys {
            g.push(k, b"", &mut done);
        }
        g.finish(&mut done);
        out.sort();
        out
    }

    #[test]
    fn credentials_find_their_consumer_across_names_sorting_in_between() {
        // Store order: `a-b` and `a.c` sort between `a` and `a/credentials/...`.
        let keys = [
            "/apisix/consumers/a",
            "/apisix/consumers/a-b",
            "/apisix/consumers/a-b/credentials/x",
            "/apisix/consumers/a.c",
            "/apisix/consumers/a/credentials/1",
            "/apisix/consumers/a/credentials/2",
            "/apisix/consumers/a0",
            "/apisix/consumers/a_/credentials/y",
            "/apisix/consumers/b",
        ];
        let mut sorted = keys.to_vec();
        sorted.sort();
        assert_eq!(sorted, keys, "the test's keys are in store order");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            groups(&keys),
            vec![
                ("a".into(), true, s(&["1", "2"])),
                ("a-b".into(), true, s(&["x"])),
                ("a.c".into(), true, s(&[])),
                ("a0".into(), true, s(&[])),
                ("a_".into(), false, s(&["y"])),
                ("b".into(), true, s(&[])),
            ]
        );
    }

    #[test]
    fn every_key_lands_in_exactly_one_group_whatever_the_names() {
        // Names built from the bytes that sort around `/`.
        let alphabet = ["a", "-", ".", "0", "_"];
        let mut names = Vec::new();
        for x in alphabet {
            for y in alphabet {
                names.push(format!("a{x}{y}"));
                names.push(format!("a{x}"));
            }
        }
        names.sort();
        names.dedup();
        let mut keys = Vec::new();
        for n in &names {
            keys.push(format!("/apisix/consumers/{n}"));
            keys.push(format!("/apisix/consumers/{n}/credentials/c1"));
            keys.push(format!("/apisix/consumers/{n}/credentials/c2"));
        }
        keys.sort();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = groups(&refs);
        assert_eq!(got.len(), names.len());
        for (name, has_consumer, creds) in got {
            assert!(has_consumer, "{name}");
            assert_eq!(creds, ["c1", "c2"], "{name}");
        }
    }
}
