//! `proxy-rewrite`: APISIX's plugin that changes the request sent upstream (priority 1008, so
//! it runs after the authentication plugins and sees their consumer).
//!
//! - [`compile`]: checks a configuration (APISIX's schema and `check_schema` messages) and
//!   compiles it once per configuration change: `regex_uri` patterns into [`regex`] automata,
//!   `uri` and header values into [`template::Template`] parts, so a request only matches and
//!   copies.
//! - [`access`] (in `access.rs`): rewrites the target (`uri`, else the first `regex_uri` pair
//!   that matches), adds, sets and removes headers (in APISIX's code order: add, set,
//!   remove), and sets the method and the upstream `Host`.
//!
//! Where the gateway is stricter than APISIX, on purpose, the configuration is refused with a
//! 400 that names the field, never accepted and then quietly not enforced:
//!
//! - patterns are compiled by the `regex` crate, which runs in time linear in the path (no
//!   catastrophic backtracking) and has no look-around or backreferences: a pattern using
//!   them is refused;
//! - a variable the gateway cannot resolve (APISIX would put an empty string);
//! - header names outside RFC 9110's `token`, values with control characters, and headers
//!   the gateway owns: `Host` (use `host`), the framing and hop-by-hop headers, `X-Real-IP`
//!   and `X-Forwarded-For`;
//! - `use_real_request_uri_unsafe: true` (the gateway forwards only the normalised path it
//!   routed on) and `scheme` (removed from APISIX in 3.0).

mod access;
pub mod template;
#[cfg(test)]
mod tests;

pub use access::access;

use regex::bytes::{Regex, RegexBuilder};
use serde_json::{json, Map, Value};

use super::schema::{type_name, Fields};
use template::{Part, Replacement, Template};

/// The plugin name.
pub const NAME: &str = "proxy-rewrite";
/// APISIX's priority: after `jwt-auth` (2510) and Kong's `jwt` (1450), before `limit-count`.
pub const PRIORITY: i32 = 1008;

/// The compiled size a `regex_uri` pattern may reach (the `regex` crate's `size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The methods `method` may name (APISIX's enum).
pub const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "LOCK",
    "UNLOCK", "PATCH", "TRACE",
];

const URI_PATTERN: &str = r"^\/.*";
const HOST_PATTERN: &str = r"^[0-9a-zA-Z-.]+(:\d{1,5})?$";

/// A compiled configuration.
#[derive(Debug)]
pub struct Conf {
    /// The new upstream path (and maybe its own query). Defaults to none.
    pub uri: Option<UriTemplate>,
    /// `(pattern, replacement)` pairs tried in order when there is no `uri`; the first that
    /// matches the path rewrites it. Defaults to none.
    pub regex_uri: Vec<(Regex, Replacement)>,
    /// The upstream `Host`. Defaults to the one `pass_host` gives.
    pub host: Option<String>,
    /// The upstream method. Defaults to the client's.
    pub method: Option<http::Method>,
    /// Header operations. Defaults to none.
    pub headers: HeaderOps,
}

/// The `uri` template, split at its first literal `?`: the path part is percent-encoded as a
/// path, the part after keeps its `?`, `=` and `&`.
#[derive(Debug)]
pub struct UriTemplate {
    /// Up to the first literal `?`.
    pub path: Template,
    /// After it, when there is one.
    pub query: Option<Template>,
}

/// One header's values: a scalar or APISIX's newer array form (one header line each).
pub type Values = Vec<Template>;

/// `headers`: what to add, set and remove.
#[derive(Debug, Default)]
pub struct HeaderOps {
    /// Appended to the client's values.
    pub add: Vec<(String, Values)>,
    /// Replace the client's values.
    pub set: Vec<(String, Values)>,
    /// Not sent upstream.
    pub remove: Vec<String>,
}

fn failed(field: &str, why: impl std::fmt::Display) -> String {
    format!("property \"{field}\" validation failed: {why}")
}

/// Checks `conf` and compiles it. The error is the first problem, worded as APISIX does where
/// APISIX has a message for it.
pub fn compile(conf: &Value) -> Result<Conf, String> {
    let mut f = Fields::new(conf)?;
    let map = conf.as_object().expect("Fields::new accepted an object");
    if map.is_empty() {
        return Err("expect object to have at least 1 properties".into());
    }
    let uri = f.string("uri", 1, 4096);
    let method = f.one_of("method", METHODS);
    let regex_uri = f.string_list("regex_uri", None, false);
    let host = f.string("host", 0, usize::MAX);
    let unsafe_uri = f.boolean("use_real_request_uri_unsafe");
    f.finish()?;
    if uri.is_some_and(|u| !u.starts_with('/')) {
        return Err(failed(
            "uri",
            format!(
                "failed to match pattern {URI_PATTERN:?} with {:?}",
                uri.unwrap_or_default()
            ),
        ));
    }
    if let Some(r) = &regex_uri {
        if r.len() < 2 {
            return Err(failed("regex_uri", "expect array to have at least 2 items"));
        }
    }
    if let Some(h) = host {
        if !host_ok(h) {
            return Err(failed(
                "host",
                format!("failed to match pattern {HOST_PATTERN:?} with {h:?}"),
            ));
        }
    }
    if unsafe_uri == Some(true) {
        return Err(failed(
            "use_real_request_uri_unsafe",
            "not supported: the gateway forwards the normalised path it routed on, never the raw one",
        ));
    }
    if map.contains_key("scheme") {
        return Err(failed(
            "scheme",
            "removed in APISIX 3.0: set the upstream's scheme instead",
        ));
    }

    let mut pairs = Vec::new();
    if let Some(r) = regex_uri {
        if r.len() % 2 != 0 {
            return Err("The length of regex_uri should be an even number".into());
        }
        for pair in r.chunks(2) {
            let (pattern, replacement) = (pair[0], pair[1]);
            let invalid =
                |why: String| format!("invalid regex_uri({pattern}, {replacement}): {why}");
            let re = compile_regex(pattern).map_err(invalid)?;
            let rep = Replacement::parse(replacement)
                .map_err(|e| invalid(format!("failed to compile the replacement template: {e}")))?;
            pairs.push((re, rep));
        }
    }
    let uri = uri
        .map(|u| uri_template(u).map_err(|e| failed("uri", e)))
        .transpose()?;
    let headers = match map.get("headers") {
        Some(h) => header_ops(h)?,
        None => HeaderOps::default(),
    };
    Ok(Conf {
        uri,
        regex_uri: pairs,
        host: host.map(str::to_string),
        method: method.map(|m| {
            http::Method::from_bytes(m.as_bytes()).expect("every METHODS entry is a valid token")
        }),
        headers,
    })
}

/// `^[0-9a-zA-Z-.]+(:\d{1,5})?$`
fn host_ok(h: &str) -> bool {
    let (name, port) = match h.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Compiles a `regex_uri` pattern as PCRE without its UTF mode would read it (APISIX's
/// `ngx.re` with `jo`): over bytes, `.` any byte but `\n`, `\d`, `\w`, `\s` ASCII.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = match &e {
                regex::Error::Syntax(s) => s
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(s)
                    .to_string(),
                regex::Error::CompiledTooBig(n) => {
                    format!("the compiled pattern exceeds the size limit of {n} bytes")
                }
                other => other.to_string(),
            };
            if text.contains("look-around") || text.contains("backreferences") {
                format!("{text} (patterns run on a linear-time engine without PCRE's look-around and backreferences)")
            } else {
                text
            }
        })
}

fn uri_template(u: &str) -> Result<UriTemplate, String> {
    let t = Template::parse(u, false)?;
    let mut path = Vec::new();
    let mut query: Option<Vec<Part>> = None;
    for p in t.parts {
        match (&mut query, p) {
            (Some(q), p) => q.push(p),
            (None, Part::Lit(s)) if s.contains('?') => {
                let (before, after) = s.split_once('?').expect("contains '?'");
                if !before.is_empty() {
                    path.push(Part::Lit(before.to_string()));
                }
                let mut q = Vec::new();
                if !after.is_empty() {
                    q.push(Part::Lit(after.to_string()));
                }
                query = Some(q);
            }
            (None, p) => path.push(p),
        }
    }
    Ok(UriTemplate {
        path: Template { parts: path },
        query: query.map(|parts| Template { parts }),
    })
}

/// Whether `name` is an RFC 9110 `token`.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Headers the gateway writes itself: a plugin changing them would break the framing or the
/// forwarding headers' promise.
fn gateway_owned(name: &str) -> Option<&'static str> {
    const FRAMING: &[&str] = &[
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ];
    let lower = name.to_ascii_lowercase();
    if lower == "host" {
        Some("the gateway sets Host: use property \"host\"")
    } else if FRAMING.contains(&lower.as_str()) {
        Some("the gateway sets the framing and hop-by-hop headers itself")
    } else if lower == "x-real-ip" || lower == "x-forwarded-for" {
        Some("the gateway sets X-Real-IP and X-Forwarded-For from the connection")
    } else {
        None
    }
}

fn header_name(field: &str, name: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(failed(
            field,
            format!("invalid field character in header {name:?}"),
        ));
    }
    if let Some(why) = gateway_owned(name) {
        return Err(failed(&format!("{field}.{name}"), why));
    }
    Ok(())
}

fn header_value(field: &str, v: &Value) -> Result<Template, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(failed(
                field,
                format!(
                    "invalid type as header value: expected string or number, got {}",
                    type_name(other)
                ),
            ))
        }
    };
    if text.bytes().any(|c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        return Err(failed(field, "invalid value character in header"));
    }
    Template::parse(&text, true).map_err(|e| failed(field, e))
}

fn header_values(field: &str, v: &Value) -> Result<Values, String> {
    match v {
        Value::Array(items) if items.is_empty() => {
            Err(failed(field, "expect array to have at least 1 items"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| header_value(&format!("{field}[{i}]"), item))
            .collect(),
        v => Ok(vec![header_value(field, v)?]),
    }
}

fn header_map(field: &str, v: &Value, arrays: bool) -> Result<Vec<(String, Values)>, String> {
    let Some(m) = v.as_object() else {
        return Err(failed(
            field,
            format!("wrong type: expected object, got {}", type_name(v)),
        ));
    };
    if m.is_empty() {
        return Err(failed(field, "expect object to have at least 1 properties"));
    }
    let mut out = Vec::with_capacity(m.len());
    for (name, value) in m {
        header_name(field, name)?;
        let path = format!("{field}.{name}");
        if !arrays && value.is_array() {
            return Err(failed(&path, "invalid type as header value"));
        }
        out.push((name.clone(), header_values(&path, value)?));
    }
    Ok(out)
}

/// APISIX's `is_new_headers_conf`: `add`, `set` or `remove` holding a table.
fn is_new_form(m: &Map<String, Value>) -> bool {
    ["add", "set", "remove"]
        .iter()
        .any(|k| m.get(*k).is_some_and(|v| v.is_object() || v.is_array()))
}

fn header_ops(h: &Value) -> Result<HeaderOps, String> {
    let Some(m) = h.as_object() else {
        return Err(failed(
            "headers",
            format!("wrong type: expected object, got {}", type_name(h)),
        ));
    };
    if m.is_empty() {
        return Err(failed(
            "headers",
            "expect object to have at least 1 properties",
        ));
    }
    if !is_new_form(m) {
        // The legacy form: every field is a header to set.
        return Ok(HeaderOps {
            set: header_map("headers", h, false)?,
            ..HeaderOps::default()
        });
    }
    if let Some(k) = m
        .keys()
        .find(|k| !["add", "set", "remove"].contains(&k.as_str()))
    {
        return Err(failed(
            "headers",
            format!("additional properties forbidden, found {k}"),
        ));
    }
    let mut ops = HeaderOps::default();
    if let Some(v) = m.get("add") {
        ops.add = header_map("headers.add", v, true)?;
    }
    if let Some(v) = m.get("set") {
        ops.set = header_map("headers.set", v, true)?;
    }
    if let Some(v) = m.get("remove") {
        let Some(items) = v.as_array() else {
            return Err(failed(
                "headers.remove",
                format!("wrong type: expected array, got {}", type_name(v)),
            ));
        };
        if items.is_empty() {
            return Err(failed(
                "headers.remove",
                "expect array to have at least 1 items",
            ));
        }
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.as_str() else {
                return Err(failed(
                    "headers.remove",
                    format!(
                        "failed to validate item {}: wrong type: expected string, got {}",
                        i + 1,
                        type_name(item)
                    ),
                ));
            };
            header_name("headers.remove", name)?;
            ops.remove.push(name.to_string());
        }
    }
    Ok(ops)
}

/// The JSON schema answered by `GET /apisix/admin/plugins/proxy-rewrite` (APISIX's, with the
/// gateway's stricter header names).
pub fn schema() -> Value {
    let value = json!({"oneOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "array", "minItems": 1,
         "items": {"oneOf": [{"type": "string"}, {"type": "number"}]}}
    ]});
    let token = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
    json!({
        "type": "object",
        "minProperties": 1,
        "properties": {
            "uri": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": URI_PATTERN},
            "method": {"type": "string", "enum": METHODS},
            "regex_uri": {"type": "array", "minItems": 2, "items": {"type": "string"}},
            "host": {"type": "string", "pattern": HOST_PATTERN},
            "headers": {"oneOf": [
                {"type": "object", "minProperties": 1, "additionalProperties": false,
                 "properties": {
                    "add": {"type": "object", "minProperties": 1, "patternProperties": {token: value}},
                    "set": {"type": "object", "minProperties": 1, "patternProperties": {token: value}},
                    "remove": {"type": "array", "minItems": 1,
                               "items": {"type": "string", "pattern": token}}
                 }},
                {"type": "object", "minProperties": 1,
                 "patternProperties": {token: {"oneOf": [{"type": "string"}, {"type": "number"}]}}}
            ]},
            "use_real_request_uri_unsafe": {"type": "boolean", "default": false, "enum": [false]}
        }
    })
}
