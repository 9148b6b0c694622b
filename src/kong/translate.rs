//! The translation itself; see the module table in [`super`].

use serde_json::{json, Map, Value};

/// One object to create, as the Admin API would store it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Store key, e.g. `/apisix/routes/example-route`.
    pub key: String,
    /// The object.
    pub value: Value,
}

/// The result of a translation.
#[derive(Debug, Default)]
pub struct Translation {
    /// Objects in dependency order (services before routes, consumers before credentials).
    pub objects: Vec<Object>,
    /// What could not be translated, each with its path in the file and why.
    pub skipped: Vec<String>,
    /// Problems that make the file unusable (wrong format version, wrong types).
    pub errors: Vec<String>,
}

/// Whether a document looks like Kong's declarative format.
pub fn is_kong(doc: &Value) -> bool {
    doc.get("_format_version").is_some()
}

const TOP: &[&str] = &[
    "_format_version",
    "_transform",
    "_comment",
    "_info",
    "_workspace",
    "services",
    "routes",
    "consumers",
    "plugins",
    "jwt_secrets",
];

/// Translates a parsed Kong declarative document.
pub fn translate(doc: &Value) -> Translation {
    let mut t = Translation::default();
    let Some(top) = doc.as_object() else {
        t.errors.push("the file is not a mapping".into());
        return t;
    };
    match top.get("_format_version").and_then(Value::as_str) {
        Some(v) if v.starts_with("1.") || v.starts_with("2.") || v.starts_with("3.") => {}
        Some(v) => t.errors.push(format!(
            "_format_version {v:?} is not supported (1.1 to 3.x)"
        )),
        None => t
            .errors
            .push("_format_version is required (a string such as \"3.0\")".into()),
    }
    for k in top.keys() {
        if !TOP.contains(&k.as_str()) {
            t.skipped.push(format!("{k}: not supported, not imported"));
        }
    }
    let mut cx = Cx::default();
    for (i, svc) in list(top, "services", "", &mut t).iter().enumerate() {
        service(svc, &format!("services[{i}]"), &mut cx, &mut t);
    }
    for (i, r) in list(top, "routes", "", &mut t).iter().enumerate() {
        let svc_ref = r.get("service").and_then(reference);
        route(
            r,
            &format!("routes[{i}]"),
            svc_ref.as_deref(),
            &mut cx,
            &mut t,
        );
    }
    for (i, c) in list(top, "consumers", "", &mut t).iter().enumerate() {
        consumer(c, &format!("consumers[{i}]"), &mut cx, &mut t);
    }
    for (i, s) in list(top, "jwt_secrets", "", &mut t).iter().enumerate() {
        let path = format!("jwt_secrets[{i}]");
        match s.get("consumer").and_then(reference) {
            Some(c) => jwt_secret(s, &path, &c, &mut cx, &mut t),
            None => t.errors.push(format!("{path}: consumer is required")),
        }
    }
    for (i, p) in list(top, "plugins", "", &mut t).iter().enumerate() {
        let path = format!("plugins[{i}]");
        let scope = ["service", "route", "consumer"]
            .iter()
            .find_map(|k| p.get(*k).and_then(reference).map(|r| (*k, r)));
        match scope {
            None => plugin(p, &path, Scope::Global, &mut cx, &mut t),
            Some(("service", r)) => {
                plugin(p, &path, Scope::Service(cx.service_id(&r)), &mut cx, &mut t)
            }
            Some(("route", r)) => plugin(p, &path, Scope::Route(cx.route_id(&r)), &mut cx, &mut t),
            Some((_, r)) => plugin(p, &path, Scope::Consumer(r), &mut cx, &mut t),
        }
    }
    cx.finish(&mut t);
    clean(&mut t.objects);
    t
}

/// Names and ids seen so far, and plugins to attach once every object exists.
#[derive(Default)]
struct Cx {
    services: Vec<(Vec<String>, String, Value)>,
    routes: Vec<(Vec<String>, String, Value)>,
    consumers: Vec<(Vec<String>, String, Value)>,
    credentials: Vec<Object>,
    global: Vec<(String, Value)>,
    n: usize,
}

enum Scope {
    Global,
    Service(String),
    Route(String),
    Consumer(String),
}

impl Cx {
    fn fresh(&mut self, kind: &str) -> String {
        self.n += 1;
        format!("kong-{kind}-{}", self.n)
    }
    fn service_id(&self, r: &str) -> String {
        find(&self.services, r).unwrap_or_else(|| r.to_string())
    }
    fn route_id(&self, r: &str) -> String {
        find(&self.routes, r).unwrap_or_else(|| r.to_string())
    }
    fn finish(mut self, t: &mut Translation) {
        // Kong's `anonymous` names a consumer by id or username; ours by our id.
        let consumers = &self.consumers;
        let resolve = |conf: &mut Value| {
            if let Some(anon) = conf.get("anonymous").and_then(Value::as_str) {
                if let Some(id) = find(consumers, anon) {
                    conf["anonymous"] = json!(id);
                }
            }
        };
        for (_, _, v) in self.services.iter_mut().chain(self.routes.iter_mut()) {
            if let Some(conf) = v.get_mut("plugins").and_then(|p| p.get_mut("jwt")) {
                resolve(conf);
            }
        }
        for (_, conf) in self.global.iter_mut() {
            resolve(conf);
        }
        for (_, id, v) in self.services {
            t.objects.push(Object {
                key: format!("/apisix/services/{id}"),
                value: v,
            });
        }
        for (_, id, v) in self.routes {
            t.objects.push(Object {
                key: format!("/apisix/routes/{id}"),
                value: v,
            });
        }
        for (_, id, v) in self.consumers {
            t.objects.push(Object {
                key: format!("/apisix/consumers/{id}"),
                value: v,
            });
        }
        t.objects.extend(self.credentials);
        if !self.global.is_empty() {
            let mut plugins = Map::new();
            for (name, conf) in self.global {
                plugins.insert(name, conf);
            }
            t.objects.push(Object {
                key: "/apisix/global_rules/kong-global".into(),
                value: json!({"id": "kong-global", "plugins": plugins}),
            });
        }
    }
}

/// The id of the item Kong calls `r` (by name or id), else of the item whose id is `r` (a
/// nested entity refers to its parent by our id, which is generated when no Kong name fits).
fn find(items: &[(Vec<String>, String, Value)], r: &str) -> Option<String> {
    items
        .iter()
        .find(|(names, _, _)| names.iter().any(|n| n == r))
        .or_else(|| items.iter().find(|(_, id, _)| id == r))
        .map(|(_, id, _)| id.clone())
}

/// A reference to another entity: its name or id, as a string or `{name}` / `{id}`.
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("username"))
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

fn list<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    at: &str,
    t: &mut Translation,
) -> Vec<&'a Map<String, Value>> {
    match obj.get(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let o = v.as_object();
                if o.is_none() {
                    t.errors
                        .push(format!("{at}{field}[{i}]: expected a mapping"));
                }
                o
            })
            .collect(),
        Some(_) => {
            t.errors.push(format!("{at}{field}: expected a list"));
            Vec::new()
        }
    }
}

/// A Kong name usable as our id, or a generated one. Service and route ids are
/// `^[a-zA-Z0-9-_.]{1,64}$`; a consumer's username is `^[a-zA-Z0-9_-]{1,256}$` (no dot).
fn id_for(o: &Map<String, Value>, field: &str, kind: &str, cx: &mut Cx) -> (Vec<String>, String) {
    let mut names = Vec::new();
    for f in [field, "id"] {
        if let Some(s) = o.get(f).and_then(Value::as_str) {
            names.push(s.to_string());
        }
    }
    let (max, dot) = if kind == "consumer" {
        (256, false)
    } else {
        (64, true)
    };
    let usable = names.iter().find(|n| {
        (1..=max).contains(&n.len())
            && n.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') || (dot && b == b'.')
            })
    });
    let id = usable.cloned().unwrap_or_else(|| cx.fresh(kind));
    (names, id)
}

fn secs(ms: Option<&Value>) -> Option<f64> {
    ms.and_then(Value::as_f64).map(|m| m / 1000.0)
}

/// The upstream of a service: `url`, or `protocol`/`host`/`port`/`path`.
fn upstream_of(o: &Map<String, Value>, path: &str, t: &mut Translation) -> Option<(Value, String)> {
    let (scheme, host, port, upath) = if let Some(url) = o.get("url").and_then(Value::as_str) {
        let Some((scheme, rest)) = url.split_once("://") else {
            t.errors.push(format!("{path}.url: {url:?} is not a URL"));
            return None;
        };
        let (authority, p) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (h, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                match p.parse::<u16>() {
                    Ok(p) => (h.to_string(), Some(p)),
                    Err(_) => (authority.to_string(), None),
                }
            }
            _ => (authority.to_string(), None),
        };
        (scheme.to_string(), h, port, p.to_string())
    } else {
        let Some(h) = o.get("host").and_then(Value::as_str) else {
            t.errors.push(format!("{path}: url or host is required"));
            return None;
        };
        (
            o.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("http")
                .to_string(),
            h.to_string(),
            o.get("port").and_then(Value::as_u64).map(|p| p as u16),
            o.get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    };
    if scheme != "http" && scheme != "https" {
        t.skipped.push(format!(
            "{path}: protocol {scheme} is not supported, service not imported"
        ));
        return None;
    }
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    let mut up = json!({
        "type": "roundrobin",
        "scheme": scheme,
        "nodes": {format!("{host}:{port}"): 1},
        "pass_host": "node",
    });
    let mut timeout = Map::new();
    for (kong, ours) in [
        ("connect_timeout", "connect"),
        ("write_timeout", "send"),
        ("read_timeout", "read"),
    ] {
        if let Some(s) = secs(o.get(kong)) {
            timeout.insert(ours.into(), json!(s));
        }
    }
    if !timeout.is_empty() {
        up["timeout"] = Value::Object(timeout);
    }
    if let Some(r) = o.get("retries").and_then(Value::as_u64) {
        up["retries"] = json!(r);
    }
    // Kong's `tls_verify` unset leaves nginx's default (off); ours verifies unless told not to.
    if let Some(v) = o.get("tls_verify").and_then(Value::as_bool) {
        up["tls"] = json!({ "verify": v });
    }
    Some((up, upath))
}

fn service(o: &Map<String, Value>, path: &str, cx: &mut Cx, t: &mut Translation) {
    let (names, id) = id_for(o, "name", "service", cx);
    let Some((upstream, upath)) = upstream_of(o, path, t) else {
        return;
    };
    let mut v = json!({"id": id, "upstream": upstream});
    if let Some(n) = o.get("name").and_then(Value::as_str) {
        v["name"] = json!(n);
    }
    // The service path prefixes every upstream path; routes read it back from here.
    v["_kong_path"] = json!(upath);
    for k in o.keys() {
        if ![
            "name",
            "id",
            "url",
            "protocol",
            "host",
            "port",
            "path",
            "connect_timeout",
            "write_timeout",
            "read_timeout",
            "retries",
            "tls_verify",
            "routes",
            "plugins",
            "tags",
            "enabled",
        ]
        .contains(&k.as_str())
        {
            t.skipped
                .push(format!("{path}.{k}: not supported, ignored"));
        }
    }
    cx.services.push((names, id.clone(), v));
    for (i, p) in list(o, "plugins", &format!("{path}."), t)
        .iter()
        .enumerate()
    {
        plugin(
            p,
            &format!("{path}.plugins[{i}]"),
            Scope::Service(id.clone()),
            cx,
            t,
        );
    }
    for (i, r) in list(o, "routes", &format!("{path}."), t).iter().enumerate() {
        route(r, &format!("{path}.routes[{i}]"), Some(&id), cx, t);
    }
}

fn route(
    o: &Map<String, Value>,
    path: &str,
    service: Option<&str>,
    cx: &mut Cx,
    t: &mut Translation,
) {
    let (names, id) = id_for(o, "name", "route", cx);
    let Some(svc_ref) = service else {
        t.skipped.push(format!(
            "{path}: a route without a service is not supported, not imported"
        ));
        return;
    };
    let svc_id = cx.service_id(svc_ref);
    let Some(svc) = cx
        .services
        .iter()
        .find(|(_, i, _)| *i == svc_id)
        .map(|(_, _, v)| v.clone())
    else {
        t.errors
            .push(format!("{path}: service {svc_ref:?} not found"));
        return;
    };
    let paths: Vec<String> = o
        .get("paths")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = paths.iter().find(|p| p.starts_with('~')) {
        t.skipped.push(format!(
            "{path}: regex path {p:?} is not supported, route not imported"
        ));
        return;
    }
    let mut v = json!({"id": id, "service_id": svc_id});
    if let Some(n) = o.get("name").and_then(Value::as_str) {
        v["name"] = json!(n);
    }
    v["uris"] = if paths.is_empty() {
        json!(["/*"])
    } else {
        json!(paths.iter().map(|p| format!("{}*", p)).collect::<Vec<_>>())
    };
    if let Some(h) = o
        .get("hosts")
        .filter(|h| h.as_array().is_some_and(|a| !a.is_empty()))
    {
        v["hosts"] = h.clone();
    }
    if let Some(m) = o
        .get("methods")
        .filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
    {
        v["methods"] = m.clone();
    }
    let strip = o.get("strip_path").and_then(Value::as_bool).unwrap_or(true);
    let upath = svc["_kong_path"].as_str().unwrap_or("").to_string();
    let mut plugins = Map::new();
    // Kong's upstream path: the service path, then the request path (less the matched route
    // path when strip_path). Identity needs no rewrite; anything else becomes proxy-rewrite.
    let mut flat: Vec<Value> = Vec::new();
    // proxy-rewrite tries the pairs in order and the first match wins; Kong strips the
    // longest of the route's paths that matches, so longer paths go first.
    let mut by_length: Vec<&String> = paths.iter().collect();
    by_length.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in by_length {
        if let Some((pattern, target)) = rewrite_rule(p, strip, &upath) {
            flat.push(json!(pattern));
            flat.push(json!(target));
        }
    }
    if paths.is_empty() && !upath.trim_end_matches('/').is_empty() {
        flat.push(json!("^(.*)"));
        flat.push(json!(format!("{}$1", upath.trim_end_matches('/'))));
    }
    if !flat.is_empty() {
        plugins.insert("proxy-rewrite".into(), json!({"regex_uri": flat}));
    }
    if o.get("preserve_host").and_then(Value::as_bool) == Some(true) {
        // The service upstream sends the node host; preserving the client's needs the route's
        // own copy of the upstream.
        let mut up = svc["upstream"].clone();
        up["pass_host"] = json!("pass");
        v["upstream"] = up;
    }
    if !plugins.is_empty() {
        v["plugins"] = Value::Object(plugins);
    }
    for k in o.keys() {
        if ![
            "name",
            "id",
            "paths",
            "hosts",
            "methods",
            "strip_path",
            "preserve_host",
            "service",
            "plugins",
            "protocols",
            "tags",
            "path_handling",
            "https_redirect_status_code",
            "regex_priority",
            "request_buffering",
            "response_buffering",
        ]
        .contains(&k.as_str())
        {
            t.skipped
                .push(format!("{path}.{k}: not supported, ignored"));
        }
    }
    cx.routes.push((names, id.clone(), v));
    for (i, p) in list(o, "plugins", &format!("{path}."), t)
        .iter()
        .enumerate()
    {
        plugin(
            p,
            &format!("{path}.plugins[{i}]"),
            Scope::Route(id.clone()),
            cx,
            t,
        );
    }
}

/// The `proxy-rewrite` rule giving Kong's upstream path for route path `p`, or `None` when the
/// path reaches the upstream unchanged.
fn rewrite_rule(p: &str, strip: bool, upath: &str) -> Option<(String, String)> {
    let base = upath.trim_end_matches('/');
    if !strip {
        return (!base.is_empty()).then(|| ("^(.*)".to_string(), format!("{base}$1")));
    }
    let prefix = p.trim_end_matches('/');
    let escaped = regex_escape(prefix);
    if base.is_empty() {
        return Some((format!("^{escaped}/?(.*)"), "/$1".to_string()));
    }
    if prefix == base && !p.ends_with('/') {
        return None;
    }
    // Kong appends whatever follows the route path, `/v1x` included (the route matches it
    // as a prefix), so the rule must match it too rather than pass `/v1x` on unstripped.
    Some((format!("^{escaped}(.*)"), format!("{base}$1")))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn consumer(o: &Map<String, Value>, path: &str, cx: &mut Cx, t: &mut Translation) {
    let username = o.get("username").and_then(Value::as_str);
    let (mut names, id) = id_for(o, "username", "consumer", cx);
    if let Some(c) = o.get("custom_id").and_then(Value::as_str) {
        names.push(c.to_string());
    }
    let mut labels = Map::new();
    if let Some(c) = o.get("custom_id").and_then(Value::as_str) {
        labels.insert("custom_id".into(), json!(c));
    }
    if let Some(k) = o.get("id").and_then(Value::as_str) {
        labels.insert("kong_id".into(), json!(k));
    }
    if username.is_none() && o.get("custom_id").is_none() {
        t.errors
            .push(format!("{path}: username or custom_id is required"));
        return;
    }
    // Kong's plugin sends the Kong username upstream (and clears the header without one);
    // ours is an APISIX username, which allows fewer characters.
    match username {
        Some(u) if u != id => {
            if u.chars().any(char::is_whitespace) || u.chars().count() > 256 {
                t.skipped.push(format!(
                    "{path}.username: {u:?} cannot be kept; X-Consumer-Username will be {id:?}"
                ));
            } else {
                labels.insert("kong_username".into(), json!(u));
            }
        }
        Some(_) => {}
        None => {
            labels.insert("kong_no_username".into(), json!("true"));
        }
    }
    let mut v = json!({"username": id});
    if !labels.is_empty() {
        v["labels"] = Value::Object(labels);
    }
    for k in o.keys() {
        if ![
            "username",
            "id",
            "custom_id",
            "jwt_secrets",
            "plugins",
            "tags",
        ]
        .contains(&k.as_str())
        {
            t.skipped
                .push(format!("{path}.{k}: not supported, ignored"));
        }
    }
    cx.consumers.push((names, id.clone(), v));
    for (i, s) in list(o, "jwt_secrets", &format!("{path}."), t)
        .iter()
        .enumerate()
    {
        jwt_secret(s, &format!("{path}.jwt_secrets[{i}]"), &id, cx, t);
    }
    for (i, p) in list(o, "plugins", &format!("{path}."), t)
        .iter()
        .enumerate()
    {
        plugin(
            p,
            &format!("{path}.plugins[{i}]"),
            Scope::Consumer(id.clone()),
            cx,
            t,
        );
    }
}

fn jwt_secret(
    o: &Map<String, Value>,
    path: &str,
    consumer: &str,
    cx: &mut Cx,
    t: &mut Translation,
) {
    let Some(owner) = find(&cx.consumers, consumer) else {
        t.errors
            .push(format!("{path}: consumer {consumer:?} not found"));
        return;
    };
    let id = match o.get("id").and_then(Value::as_str) {
        Some(i) if i.len() <= 64 && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            i.to_string()
        }
        _ => {
            let n = cx
                .credentials
                .iter()
                .filter(|c| c.key.contains(&format!("/{owner}/")))
                .count()
                + 1;
            format!("jwt-{n}")
        }
    };
    let conf = crate::plugins::kong_jwt::from_kong_secret(o);
    cx.credentials.push(Object {
        key: format!("/apisix/consumers/{owner}/credentials/{id}"),
        value: json!({"id": id, "plugins": {"jwt": conf}}),
    });
}

fn plugin(o: &Map<String, Value>, path: &str, scope: Scope, cx: &mut Cx, t: &mut Translation) {
    let Some(name) = o.get("name").and_then(Value::as_str) else {
        t.errors.push(format!("{path}: name is required"));
        return;
    };
    if o.get("enabled").and_then(Value::as_bool) == Some(false) {
        t.skipped
            .push(format!("{path} ({name}): disabled, not imported"));
        return;
    }
    if name != "jwt" {
        t.skipped.push(format!(
            "{path} ({name}): plugin not supported, not imported"
        ));
        return;
    }
    let conf = o.get("config").cloned().unwrap_or_else(|| json!({}));
    let conf = strip_nulls(conf);
    let slot = match scope {
        Scope::Global => {
            cx.global.push((name.into(), conf));
            return;
        }
        Scope::Service(id) => cx.services.iter_mut().find(|(_, i, _)| *i == id),
        Scope::Route(id) => cx.routes.iter_mut().find(|(_, i, _)| *i == id),
        Scope::Consumer(c) => {
            t.skipped.push(format!(
                "{path} ({name}): a jwt plugin scoped to consumer {c:?} is not supported, not imported"
            ));
            return;
        }
    };
    match slot {
        Some((_, _, v)) => {
            if !v["plugins"].is_object() {
                v["plugins"] = json!({});
            }
            v["plugins"][name] = conf;
        }
        None => t.errors.push(format!(
            "{path} ({name}): the entity it is attached to was not found"
        )),
    }
}

/// Kong writes unset options as `null`; our schemas want them absent.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// Removes our private bookkeeping field from service objects before they are stored.
fn clean(objects: &mut [Object]) {
    for o in objects {
        if let Some(m) = o.value.as_object_mut() {
            m.remove("_kong_path");
        }
    }
}
