//! The fields every APISIX object shares: `id`, `name`, `desc`, `labels`, `plugins` and the
//! `create_time` / `update_time` stamps, with APISIX's rules for each (`schema_def.lua`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::check::{as_int, as_str, Obj, Pattern, Str};
use super::PluginCheck;

/// `id`: `^[a-zA-Z0-9-_.]+$`, 1 to 64 characters (or an integer from 1, stored as its decimal).
pub(crate) const ID: Str = Str {
    min: 1,
    max: 64,
    pattern: Some(Pattern {
        text: "^[a-zA-Z0-9-_.]+$",
        test: |s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        },
    }),
};

/// `name`: 1 to 256 characters.
pub(crate) const NAME: Str = Str::len(1, 256);

/// `desc`: up to 256 characters.
pub(crate) const DESC: Str = Str::len(0, 256);

/// A label key: 1 to 256 characters.
const LABEL_KEY: Str = Str::len(1, 256);

/// A label value: `^\S+$`, 1 to 256 characters.
const LABEL_VALUE: Str = Str {
    min: 1,
    max: 256,
    pattern: Some(Pattern {
        text: "^\\S+$",
        test: |s| !s.chars().any(char::is_whitespace),
    }),
};

/// An id as APISIX takes it: a string matching [`ID`] or an integer from 1.
pub(crate) fn as_id(v: &Value) -> Result<String, String> {
    match v {
        Value::String(_) => as_str(v, &ID).map(str::to_owned),
        Value::Number(_) => as_int(v, Some(1), None).map(|i| i.to_string()),
        other => Err(format!(
            "wrong type: expected string or integer, got {}",
            super::check::type_name(other)
        )),
    }
}

/// The object's id, from the Admin API path or from the body's `id`.
///
/// Both may be given, but then they must agree (`wrong route id`, as APISIX says). `Err(())` when
/// a problem was reported; `Ok(None)` when neither gives an id.
pub(crate) fn resolve_id(
    obj: &mut Obj<'_, '_>,
    id_from_path: Option<&str>,
    kind: &str,
) -> Result<Option<String>, ()> {
    let body = match obj.get("id") {
        None => None,
        Some(v) => match as_id(v) {
            Ok(id) => Some(id),
            Err(msg) => {
                obj.err.field("id", msg);
                return Err(());
            }
        },
    };
    let Some(path) = id_from_path else {
        return Ok(body);
    };
    if let Err(msg) = ID.check(path) {
        obj.err
            .push(format_args!("invalid {kind} id in the path: {msg}"));
        return Err(());
    }
    match body {
        Some(body) if body != path => {
            obj.err.push(format_args!("wrong {kind} id"));
            Err(())
        }
        _ => Ok(Some(path.to_owned())),
    }
}

/// Like [`resolve_id`], reporting `missing route id` when there is none.
pub(crate) fn required_id(
    obj: &mut Obj<'_, '_>,
    id_from_path: Option<&str>,
    kind: &str,
) -> Option<String> {
    match resolve_id(obj, id_from_path, kind) {
        Ok(Some(id)) => Some(id),
        Ok(None) => {
            obj.err.push(format_args!("missing {kind} id"));
            None
        }
        Err(()) => None,
    }
}

pub(crate) fn name(obj: &mut Obj<'_, '_>) -> Option<String> {
    obj.opt_str("name", &NAME).map(str::to_owned)
}

pub(crate) fn desc(obj: &mut Obj<'_, '_>) -> Option<String> {
    obj.opt_str("desc", &DESC).map(str::to_owned)
}

pub(crate) fn labels(obj: &mut Obj<'_, '_>) -> BTreeMap<String, String> {
    obj.opt_str_map("labels", &LABEL_KEY, &LABEL_VALUE)
}

/// `create_time` and `update_time`: APISIX fills them in and accepts them back in a body, so they
/// are checked to be integers and otherwise ignored.
pub(crate) fn timestamps(obj: &mut Obj<'_, '_>) {
    obj.opt_int("create_time", None, None);
    obj.opt_int("update_time", None, None);
}

/// `plugins`: an object of plugin name to plugin configuration, each entry checked by the
/// registry (with its consumer schema when `consumer`). An empty map when absent.
pub(crate) fn plugins(
    obj: &mut Obj<'_, '_>,
    registry: &dyn PluginCheck,
    consumer: bool,
) -> Map<String, Value> {
    let Some(map) = obj.opt_object("plugins") else {
        return Map::new();
    };
    for (name, conf) in map {
        if !conf.is_object() {
            obj.err.push(format_args!(
                "invalid plugin conf {conf} for plugin [{name}]"
            ));
            continue;
        }
        let checked = if consumer {
            registry.check_consumer(name, conf)
        } else {
            registry.check(name, conf)
        };
        if let Err(msg) = checked {
            obj.err.push(msg);
        }
    }
    map.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::check::Errors;
    use crate::model::NoPlugins;
    use serde_json::json;

    fn with_obj<T>(v: Value, f: impl FnOnce(&mut Obj<'_, '_>) -> T) -> (T, Vec<String>) {
        let mut out = Vec::new();
        let mut obj = Obj::new(&v, Errors::root(&mut out)).expect("test values are objects");
        let t = f(&mut obj);
        (t, out)
    }

    #[test]
    fn ids() {
        assert_eq!(as_id(&json!("a-b_c.1")), Ok("a-b_c.1".to_owned()));
        assert_eq!(as_id(&json!(7)), Ok("7".to_owned()));
        assert!(as_id(&json!(0)).is_err());
        assert!(as_id(&json!("a b")).is_err());
        assert!(as_id(&json!("x".repeat(65))).is_err());
        assert_eq!(
            as_id(&json!(true)),
            Err("wrong type: expected string or integer, got boolean".to_owned())
        );
    }

    #[test]
    fn id_from_path_and_body() {
        let (id, errs) = with_obj(json!({"id": 1}), |o| resolve_id(o, Some("1"), "route"));
        assert_eq!((id, errs.len()), (Ok(Some("1".to_owned())), 0));
        let (id, errs) = with_obj(json!({}), |o| resolve_id(o, Some("r1"), "route"));
        assert_eq!((id, errs.len()), (Ok(Some("r1".to_owned())), 0));
        let (_, errs) = with_obj(json!({"id": 2}), |o| resolve_id(o, Some("1"), "route"));
        assert_eq!(errs, ["wrong route id"]);
        let (_, errs) = with_obj(json!({}), |o| required_id(o, None, "service"));
        assert_eq!(errs, ["missing service id"]);
    }

    #[test]
    fn label_values_have_no_spaces() {
        let (labels, errs) = with_obj(json!({"labels": {"env": "prod", "team": "a b"}}), labels);
        assert_eq!(labels.len(), 1);
        assert_eq!(
            errs,
            ["labels[\"team\"]: failed to match pattern \"^\\\\S+$\" with \"a b\""]
        );
    }

    #[test]
    fn plugins_are_checked_one_by_one() {
        let v = json!({"plugins": {"jwt-auth": {}, "bad": 1}});
        let (map, errs) = with_obj(v, |o| plugins(o, &NoPlugins, false));
        assert_eq!(map.len(), 2);
        assert_eq!(
            errs,
            [
                "invalid plugin conf 1 for plugin [bad]",
                "unknown plugin [jwt-auth]"
            ]
        );
    }
}
