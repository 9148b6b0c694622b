//! Putting a translated Kong file into force: into the durable store (`portcullis import`), or
//! as the running configuration of a standalone node.
//!
//! Every object goes through the Admin API's own handler, so it is validated exactly as a
//! `PUT` would be (schemas, references, credential key uniqueness). An import into the store is
//! rehearsed first on an in-memory copy of it: when any object is refused, nothing is written.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::admin::api::{handle, ApiRequest};
use crate::admin::{AtRest, Control};
use crate::config::NodeConfig;
use crate::plugins::Registry;
use crate::proxy::Shared;
use crate::snapshot::Snapshot;
use crate::store::{MemoryStore, Op, Store};

use super::{translate, Translation};

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    /// Objects written.
    pub written: usize,
    /// What was not translated (each with its path in the file and why).
    pub skipped: Vec<String>,
}

fn scratch_shared() -> Arc<Shared> {
    let cfg = NodeConfig::from_yaml("", Path::new("."))
        .expect("an empty node config is the built-in defaults");
    Arc::new(Shared::new(cfg, Snapshot::empty()))
}

/// Applies every translated object through the Admin API handler; returns the refusals.
fn apply(ctl: &mut Control, t: &Translation) -> Vec<String> {
    let mut errors = Vec::new();
    for o in &t.objects {
        let path = format!("/apisix/admin{}", o.key.trim_start_matches("/apisix"));
        let body = o.value.to_string();
        let r = handle(
            ctl,
            &ApiRequest {
                method: "PUT",
                path: &path,
                query: None,
                body: body.as_bytes(),
            },
        );
        if !(200..300).contains(&r.status) {
            let msg = r
                .body
                .get("error_msg")
                .and_then(Value::as_str)
                .map_or_else(|| r.body.to_string(), str::to_string);
            errors.push(format!("{}: {msg}", o.key));
        }
    }
    errors
}

/// Translates `doc` and writes it into `store`, all or nothing; secret fields are sealed with
/// `at_rest` as the gateway seals them.
pub fn into_store(
    store: Box<dyn Store>,
    doc: &Value,
    at_rest: AtRest,
) -> Result<Report, Vec<String>> {
    let t = translate(doc);
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    // Rehearsal on a copy.
    let copy = MemoryStore::new();
    let current = store.list("/apisix/").map_err(|e| vec![e.to_string()])?;
    let ops: Vec<Op> = current
        .into_iter()
        .map(|(key, value)| Op::Put { key, value })
        .collect();
    copy.apply(&ops).map_err(|e| vec![e.to_string()])?;
    let mut rehearsal = Control::open(
        Box::new(copy),
        scratch_shared(),
        Box::new(Registry),
        at_rest.clone(),
    )
    .map_err(|e| vec![e])?;
    let errors = apply(&mut rehearsal, &t);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut ctl =
        Control::open(store, scratch_shared(), Box::new(Registry), at_rest).map_err(|e| vec![e])?;
    let errors = apply(&mut ctl, &t);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Report {
        written: t.objects.len(),
        skipped: t.skipped,
    })
}

/// Translates `doc` into a running configuration (standalone mode); skipped pieces are logged.
pub fn snapshot(doc: &Value) -> Result<Snapshot, Vec<String>> {
    let t = translate(doc);
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    for s in &t.skipped {
        tracing::warn!("Kong file: {s}");
    }
    let mut ctl = Control::open(
        Box::new(MemoryStore::new()),
        scratch_shared(),
        Box::new(Registry),
        AtRest::plaintext(),
    )
    .map_err(|e| vec![e])?;
    let errors = apply(&mut ctl, &t);
    if !errors.is_empty() {
        return Err(errors);
    }
    ctl.snapshot().map_err(|e| vec![e])
}
