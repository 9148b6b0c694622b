//! Small checks for plugin configuration objects, worded like the JSON-schema messages APISIX
//! answers with (`property "realm" validation failed: wrong type: expected string, got number`),
//! so clients that match on them keep working.

use serde_json::{Map, Value};

/// The JSON type name used in messages: APISIX's jsonschema says `number` for every number
/// (`expected string, got number`), so does the object validation.
pub(crate) use crate::model::type_name;

fn failed(field: &str, why: impl std::fmt::Display) -> String {
    format!("property \"{field}\" validation failed: {why}")
}

/// Reads the fields of one plugin configuration, collecting the first problem.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// The first problem found (APISIX reports one schema error at a time).
    pub error: Option<String>,
}

impl<'a> Fields<'a> {
    /// Wraps `conf`, which must be an object.
    pub fn new(conf: &'a Value) -> Result<Fields<'a>, String> {
        conf.as_object()
            .map(|map| Fields { map, error: None })
            .ok_or_else(|| format!("wrong type: expected object, got {}", type_name(conf)))
    }

    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// Whether `field` is present.
    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// The raw value of `field`.
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field)
    }

    /// Marks `field` as required.
    pub fn require(&mut self, field: &str) {
        if !self.map.contains_key(field) {
            self.fail(format!("property \"{field}\" is required"));
        }
    }

    /// An optional string of `min..=max` characters.
    pub fn string(&mut self, field: &str, min: usize, max: usize) -> Option<&'a str> {
        match self.map.get(field)? {
            Value::String(s) => {
                let n = s.chars().count();
                if n < min {
                    self.fail(failed(
                        field,
                        format!("string too short, expected at least {min}, got {n}"),
                    ));
                    None
                } else if n > max {
                    self.fail(failed(
                        field,
                        format!("string too long, expected at most {max}, got {n}"),
                    ));
                    None
                } else {
                    Some(s)
                }
            }
            other => {
                let t = type_name(other);
                self.fail(failed(
                    field,
                    format!("wrong type: expected string, got {t}"),
                ));
                None
            }
        }
    }

    /// An optional boolean.
    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.map.get(field)? {
            Value::Bool(b) => Some(*b),
            other => {
                let t = type_name(other);
                self.fail(failed(
                    field,
                    format!("wrong type: expected boolean, got {t}"),
                ));
                None
            }
        }
    }

    /// An optional integer of at least `min`.
    pub fn integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.map.get(field)?;
        let n = v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        });
        match n {
            Some(n) if n < min => {
                self.fail(failed(field, format!("expected {n} to be at least {min}")));
                None
            }
            Some(n) if n > max => {
                self.fail(failed(field, format!("expected {n} to be at most {max}")));
                None
            }
            Some(n) => Some(n),
            None => {
                let t = type_name(v);
                self.fail(failed(
                    field,
                    format!("wrong type: expected integer, got {t}"),
                ));
                None
            }
        }
    }

    /// An optional number within `min..=max`.
    pub fn number(&mut self, field: &str, min: f64, max: f64) -> Option<f64> {
        let v = self.map.get(field)?;
        match v.as_f64() {
            Some(n) if n < min || n > max => {
                self.fail(format!("value should be between {min} and {max}"));
                None
            }
            Some(n) => Some(n),
            None => {
                let t = type_name(v);
                self.fail(failed(
                    field,
                    format!("wrong type: expected number, got {t}"),
                ));
                None
            }
        }
    }

    /// An optional string that must be one of `allowed`.
    pub fn one_of(&mut self, field: &str, allowed: &[&str]) -> Option<&'a str> {
        let s = self.string(field, 0, usize::MAX)?;
        if allowed.contains(&s) {
            Some(s)
        } else {
            self.fail(failed(field, "matches none of the enum values".to_string()));
            None
        }
    }

    /// An optional array of strings, each one of `allowed` (when given), without duplicates
    /// when `unique`.
    pub fn string_list(
        &mut self,
        field: &str,
        allowed: Option<&[&str]>,
        unique: bool,
    ) -> Option<Vec<&'a str>> {
        let v = self.map.get(field)?;
        let Some(items) = v.as_array() else {
            let t = type_name(v);
            self.fail(failed(
                field,
                format!("wrong type: expected array, got {t}"),
            ));
            return None;
        };
        let mut out: Vec<&'a str> = Vec::with_capacity(items.len());
        for item in items {
            let Some(s) = item.as_str() else {
                let t = type_name(item);
                self.fail(failed(
                    field,
                    format!(
                        "failed to validate item {}: wrong type: expected string, got {t}",
                        out.len() + 1
                    ),
                ));
                return None;
            };
            if allowed.is_some_and(|a| !a.contains(&s)) {
                self.fail(failed(
                    field,
                    format!(
                        "failed to validate item {}: matches none of the enum values",
                        out.len() + 1
                    ),
                ));
                return None;
            }
            if unique && out.contains(&s) {
                self.fail(failed(
                    field,
                    "expected unique items but items are not unique",
                ));
                return None;
            }
            out.push(s);
        }
        Some(out)
    }

    /// The first problem, if any.
    pub fn finish(self) -> Result<(), String> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
