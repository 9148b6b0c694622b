//! The checker behind every `from_json`: reads one JSON object field by field, records each problem
//! with its path and keeps going, so one answer lists everything wrong.
//!
//! - [`Errors`]: where problems go: a path prefix (`routes[2].upstream.timeout`) over a shared list.
//! - [`Obj`]: one JSON object under check, with typed getters (`req_str`, `opt_int`, ...) that
//!   report a bad field and return `None` for it.
//! - [`Str`], [`Min`]: the string and number rules of APISIX's schema.
//! - free functions (`as_str`, `as_int`, ...) for values that are not object fields, such as
//!   array items; they return the message without a path.
//!
//! Messages follow APISIX's JSON-schema checker so the Admin API answers as APISIX does:
//! `property "uri" validation failed: wrong type: expected string, got number`,
//! `property "nodes" is required`, `additional properties forbidden, found foo`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::time::Duration;

use serde_json::{Map, Value};

/// The largest number of seconds a duration field takes: about 31 years, far past any sensible
/// timeout, and small enough that no arithmetic on it can overflow.
pub(crate) const MAX_SECS: f64 = 1e9;

/// A located sink for problems: the path of the value under check and the list shared by the whole
/// check.
pub(crate) struct Errors<'e> {
    path: String,
    out: &'e mut Vec<String>,
}

impl<'e> Errors<'e> {
    /// A sink for the top of an object: messages carry no path prefix.
    pub(crate) fn root(out: &'e mut Vec<String>) -> Self {
        Errors {
            path: String::new(),
            out,
        }
    }

    /// Records `msg`, prefixed with the path (`upstream.timeout: ...`) unless at the top.
    pub(crate) fn push(&mut self, msg: impl Display) {
        if self.path.is_empty() {
            self.out.push(msg.to_string());
        } else {
            self.out.push(format!("{}: {msg}", self.path));
        }
    }

    /// Records a problem with the field `name` of the object at this path.
    pub(crate) fn field(&mut self, name: &str, msg: impl Display) {
        self.push(format_args!("property \"{name}\" validation failed: {msg}"));
    }

    /// A sink for the member `seg` of the value at this path (`seg` may be an index, `[0]`).
    pub(crate) fn child(&mut self, seg: &str) -> Errors<'_> {
        let path = if self.path.is_empty() || seg.starts_with('[') {
            format!("{}{seg}", self.path)
        } else {
            format!("{}.{seg}", self.path)
        };
        Errors {
            path,
            out: self.out,
        }
    }

    /// A sink for item `index` (from 0) of the array at this path: `nodes[0]`.
    pub(crate) fn index(&mut self, index: usize) -> Errors<'_> {
        self.child(&format!("[{index}]"))
    }

    /// A sink for the entry `key` of the map at this path: `nodes["127.0.0.1:80"]`.
    pub(crate) fn key(&mut self, key: &str) -> Errors<'_> {
        self.child(&format!("[{key:?}]"))
    }

    /// A sink for item `index` (from 0) of the array field `name`: `nodes[0]`.
    pub(crate) fn item(&mut self, name: &str, index: usize) -> Errors<'_> {
        self.child(&format!("{name}[{index}]"))
    }

    /// A sink for the entry `key` of the map field `name`: `labels["env"]`.
    pub(crate) fn entry(&mut self, name: &str, key: &str) -> Errors<'_> {
        self.child(&format!("{name}[{key:?}]"))
    }

    /// How many problems the whole check has recorded so far (not only under this path).
    pub(crate) fn count(&self) -> usize {
        self.out.len()
    }
}

/// A pattern from APISIX's schema: its text for the message and a test that implements it.
#[derive(Clone, Copy)]
pub(crate) struct Pattern {
    pub(crate) text: &'static str,
    pub(crate) test: fn(&str) -> bool,
}

/// A string rule: length in characters, both ends included, and an optional pattern.
#[derive(Clone, Copy)]
pub(crate) struct Str {
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) pattern: Option<Pattern>,
}

impl Str {
    /// Any string of `min..=max` characters.
    pub(crate) const fn len(min: usize, max: usize) -> Str {
        Str {
            min,
            max,
            pattern: None,
        }
    }

    /// Checks `s` in APISIX's order: too short, too long, pattern.
    pub(crate) fn check(&self, s: &str) -> Result<(), String> {
        let chars = s.chars().count();
        if chars < self.min {
            return Err(format!(
                "string too short, expected at least {}, got {chars}",
                self.min
            ));
        }
        if chars > self.max {
            return Err(format!(
                "string too long, expected at most {}, got {chars}",
                self.max
            ));
        }
        if let Some(p) = self.pattern {
            if !(p.test)(s) {
                return Err(format!("failed to match pattern {:?} with {s:?}", p.text));
            }
        }
        Ok(())
    }
}

/// The lower bound of a number field.
#[derive(Clone, Copy)]
pub(crate) enum Min {
    /// `minimum`: the bound itself is allowed.
    AtLeast(f64),
    /// `exclusiveMinimum`: only numbers above the bound.
    GreaterThan(f64),
}

/// The JSON name of a value's type, as used in `wrong type` messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(expected: &str, v: &Value) -> String {
    format!("wrong type: expected {expected}, got {}", type_name(v))
}

/// `v` as a string that satisfies `rule`.
pub(crate) fn as_str<'v>(v: &'v Value, rule: &Str) -> Result<&'v str, String> {
    let s = v.as_str().ok_or_else(|| wrong_type("string", v))?;
    rule.check(s)?;
    Ok(s)
}

/// `v` as an integer within `min..=max`. A number with no fraction (`3.0`) counts as an integer,
/// as in APISIX.
pub(crate) fn as_int(v: &Value, min: Option<i64>, max: Option<i64>) -> Result<i64, String> {
    let Value::Number(n) = v else {
        return Err(wrong_type("integer", v));
    };
    let i = if let Some(i) = n.as_i64() {
        i
    } else if n.is_u64() {
        // Above i64::MAX: larger than any maximum we set.
        return Err(format!(
            "expected {n} to be at most {}",
            max.unwrap_or(i64::MAX)
        ));
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(wrong_type("integer", v));
        }
        if f < i64::MIN as f64 || f >= i64::MAX as f64 {
            return Err(format!("expected {n} to be an integer within 64 bits"));
        }
        f as i64
    };
    if let Some(min) = min.filter(|&min| i < min) {
        return Err(format!("expected {n} to be at least {min}"));
    }
    if let Some(max) = max.filter(|&max| i > max) {
        return Err(format!("expected {n} to be at most {max}"));
    }
    Ok(i)
}

/// `v` as a number above `min`.
pub(crate) fn as_num(v: &Value, min: Min) -> Result<f64, String> {
    let Value::Number(n) = v else {
        return Err(wrong_type("number", v));
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    match min {
        Min::AtLeast(m) if f < m => Err(format!("expected {n} to be at least {m}")),
        Min::GreaterThan(m) if f <= m => Err(format!("expected {n} to be greater than {m}")),
        _ => Ok(f),
    }
}

/// `v` as a number of seconds above `min` (fractions allowed), at most [`MAX_SECS`].
pub(crate) fn as_secs(v: &Value, min: Min) -> Result<Duration, String> {
    let f = as_num(v, min)?;
    if f > MAX_SECS {
        return Err(format!("expected {v} to be at most {MAX_SECS}"));
    }
    Duration::try_from_secs_f64(f).map_err(|e| format!("{v} is not a duration: {e}"))
}

/// The items of the array `items` as strings that satisfy `rule`, each at least `min_items` long
/// and unique. A bad item is reported under `name[index]`; `None` if anything was wrong.
pub(crate) fn str_items<'v>(
    items: &'v [Value],
    name: &str,
    rule: &Str,
    err: &mut Errors<'_>,
) -> Option<Vec<&'v str>> {
    let before = err.count();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match as_str(item, rule) {
            Ok(s) => out.push(s),
            Err(msg) => err.item(name, i).push(msg),
        }
    }
    if err.count() > before {
        return None;
    }
    if let Err(msg) = unique(&out) {
        err.field(name, msg);
        return None;
    }
    Some(out)
}

/// APISIX's `uniqueItems`; items are numbered from 1 in the message, as APISIX does.
fn unique(items: &[&str]) -> Result<(), String> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, s) in items.iter().enumerate() {
        if let Some(first) = seen.insert(s, i) {
            return Err(format!(
                "expected unique items but items {} and {} are equal",
                first + 1,
                i + 1
            ));
        }
    }
    Ok(())
}

/// One JSON object under check, and where its problems go.
pub(crate) struct Obj<'v, 'e> {
    map: &'v Map<String, Value>,
    pub(crate) err: Errors<'e>,
}

impl<'v, 'e> Obj<'v, 'e> {
    /// Starts checking `v`, which must be an object.
    pub(crate) fn new(v: &'v Value, mut err: Errors<'e>) -> Option<Self> {
        match v {
            Value::Object(map) => Some(Obj { map, err }),
            other => {
                err.push(wrong_type("object", other));
                None
            }
        }
    }

    /// The raw value of a field, unchecked.
    pub(crate) fn get(&self, name: &str) -> Option<&'v Value> {
        self.map.get(name)
    }

    /// Whether the field is present (even as `null`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Reports every field not named in `allowed`.
    pub(crate) fn reject_unknown(&mut self, allowed: &[&str]) {
        for key in self.map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.err
                    .push(format_args!("additional properties forbidden, found {key}"));
            }
        }
    }

    /// Reports each field of `names` that is present: APISIX has it, this gateway does not yet.
    pub(crate) fn unsupported(&mut self, names: &[&str]) {
        for name in names {
            if self.has(name) {
                self.err
                    .push(format_args!("property \"{name}\" is not supported yet"));
            }
        }
    }

    /// Runs `parse` on the field when present; reports its error against the field.
    pub(crate) fn opt<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&'v Value) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.map.get(name)?;
        match parse(v) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.err.field(name, msg);
                None
            }
        }
    }

    /// The field, reporting `property "NAME" is required` when it is absent.
    pub(crate) fn req(&mut self, name: &str) -> Option<&'v Value> {
        let v = self.map.get(name);
        if v.is_none() {
            self.err
                .push(format_args!("property \"{name}\" is required"));
        }
        v
    }

    pub(crate) fn req_str(&mut self, name: &str, rule: &Str) -> Option<&'v str> {
        self.req(name)?;
        self.opt_str(name, rule)
    }

    pub(crate) fn opt_str(&mut self, name: &str, rule: &Str) -> Option<&'v str> {
        self.opt(name, |v| as_str(v, rule))
    }

    pub(crate) fn opt_bool(&mut self, name: &str) -> Option<bool> {
        self.opt(name, |v| {
            v.as_bool().ok_or_else(|| wrong_type("boolean", v))
        })
    }

    pub(crate) fn opt_int(
        &mut self,
        name: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        self.opt(name, |v| as_int(v, min, max))
    }

    pub(crate) fn opt_secs(&mut self, name: &str, min: Min) -> Option<Duration> {
        self.opt(name, |v| as_secs(v, min))
    }

    pub(crate) fn opt_object(&mut self, name: &str) -> Option<&'v Map<String, Value>> {
        self.opt(name, |v| {
            v.as_object().ok_or_else(|| wrong_type("object", v))
        })
    }

    /// The field as an array of at least `min_items` items.
    pub(crate) fn opt_array(&mut self, name: &str, min_items: usize) -> Option<&'v [Value]> {
        self.opt(name, |v| {
            let items = v.as_array().ok_or_else(|| wrong_type("array", v))?;
            if items.len() < min_items {
                return Err(format!("expect array to have at least {min_items} items"));
            }
            Ok(items.as_slice())
        })
    }

    /// A map of strings to strings (APISIX `labels`); an empty map when absent or bad.
    pub(crate) fn opt_str_map(
        &mut self,
        name: &str,
        key: &Str,
        value: &Str,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(map) = self.opt_object(name) else {
            return out;
        };
        for (k, v) in map {
            let checked = key
                .check(k)
                .map_err(|msg| format!("key: {msg}"))
                .and_then(|()| as_str(v, value));
            match checked {
                Ok(s) => {
                    out.insert(k.clone(), s.to_owned());
                }
                Err(msg) => self.err.entry(name, k).push(msg),
            }
        }
        out
    }

    /// Starts checking the field `name`, which must be an object, under the path `name`. `None`
    /// when absent or not an object (reported).
    pub(crate) fn child(&mut self, name: &str) -> Option<Obj<'v, '_>> {
        let v = self.map.get(name)?;
        match v {
            Value::Object(map) => Some(Obj {
                map,
                err: self.err.child(name),
            }),
            other => {
                self.err.field(name, wrong_type("object", other));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value, f: impl FnOnce(&mut Obj<'_, '_>)) -> Vec<String> {
        let mut out = Vec::new();
        let mut obj = Obj::new(&v, Errors::root(&mut out)).expect("test values are objects");
        f(&mut obj);
        out
    }

    #[test]
    fn messages_follow_apisix() {
        let errs = check(json!({"uri": 1, "n": 0, "foo": 1}), |o| {
            o.reject_unknown(&["uri", "n"]);
            assert_eq!(o.req_str("uri", &Str::len(1, 10)), None);
            assert_eq!(o.opt_secs("n", Min::GreaterThan(0.0)), None);
            assert_eq!(o.req("nodes"), None);
        });
        assert_eq!(
            errs,
            [
                "additional properties forbidden, found foo",
                "property \"uri\" validation failed: wrong type: expected string, got number",
                "property \"n\" validation failed: expected 0 to be greater than 0",
                "property \"nodes\" is required",
            ]
        );
    }

    #[test]
    fn nested_paths_prefix_messages() {
        let errs = check(json!({"upstream": {"timeout": {"connect": 0}}}), |o| {
            let mut up = o.child("upstream").expect("an object");
            let mut t = up.child("timeout").expect("an object");
            t.opt_secs("connect", Min::GreaterThan(0.0));
        });
        assert_eq!(
            errs,
            ["upstream.timeout: property \"connect\" validation failed: expected 0 to be greater than 0"]
        );
    }

    #[test]
    fn integers() {
        assert_eq!(as_int(&json!(3), Some(0), None), Ok(3));
        assert_eq!(as_int(&json!(3.0), Some(0), None), Ok(3));
        assert_eq!(
            as_int(&json!(1.5), None, None),
            Err("wrong type: expected integer, got number".to_owned())
        );
        assert_eq!(
            as_int(&json!(-1), Some(0), None),
            Err("expected -1 to be at least 0".to_owned())
        );
        assert_eq!(
            as_int(&json!(70000), Some(1), Some(65535)),
            Err("expected 70000 to be at most 65535".to_owned())
        );
        assert!(as_int(&json!(u64::MAX), None, Some(10)).is_err());
    }

    #[test]
    fn strings() {
        let rule = Str {
            min: 1,
            max: 3,
            pattern: Some(Pattern {
                text: "^[a-z]+$",
                test: |s| s.bytes().all(|b| b.is_ascii_lowercase()),
            }),
        };
        assert_eq!(as_str(&json!("abc"), &rule), Ok("abc"));
        assert_eq!(
            as_str(&json!(""), &rule),
            Err("string too short, expected at least 1, got 0".to_owned())
        );
        assert_eq!(
            as_str(&json!("abcd"), &rule),
            Err("string too long, expected at most 3, got 4".to_owned())
        );
        assert_eq!(
            as_str(&json!("A"), &rule),
            Err("failed to match pattern \"^[a-z]+$\" with \"A\"".to_owned())
        );
        // Length counts characters, not bytes.
        assert_eq!(as_str(&json!("ééé"), &Str::len(1, 3)), Ok("ééé"));
    }

    #[test]
    fn seconds() {
        assert_eq!(
            as_secs(&json!(0.5), Min::GreaterThan(0.0)),
            Ok(Duration::from_millis(500))
        );
        assert!(as_secs(&json!(1e300), Min::AtLeast(0.0)).is_err());
    }

    #[test]
    fn string_items_are_checked_and_unique() {
        let mut out = Vec::new();
        let mut err = Errors::root(&mut out);
        let items = [json!("a"), json!(2), json!("a")];
        assert_eq!(str_items(&items, "hosts", &Str::len(1, 9), &mut err), None);
        let items = [json!("a"), json!("b"), json!("a")];
        assert_eq!(str_items(&items, "hosts", &Str::len(1, 9), &mut err), None);
        assert_eq!(
            out,
            [
                "hosts[1]: wrong type: expected string, got number",
                "property \"hosts\" validation failed: expected unique items but items 1 and 3 are equal",
            ]
        );
    }

    #[test]
    fn labels_map() {
        let errs = check(
            json!({"labels": {"env": "prod", "bad": "a b", "n": 1}}),
            |o| {
                let m = o.opt_str_map("labels", &Str::len(1, 9), &Str::len(1, 9));
                assert_eq!(m.len(), 2);
            },
        );
        assert_eq!(
            errs,
            ["labels[\"n\"]: wrong type: expected string, got number"]
        );
    }
}
