//! Request dispatch: APISIX v3's paths, methods and JSON envelopes over [`Control`].

use serde_json::{json, Map, Value};

use super::control::{Control, ControlError, Entry};
use super::kind::{validate, Kind};
use crate::plugins::Registry;

/// One Admin API request, already authenticated.
pub struct ApiRequest<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// The path (without query).
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The body (may be empty).
    pub body: &'a [u8],
}

/// An answer: status and JSON body.
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

fn reply(status: u16, body: Value) -> ApiResponse {
    ApiResponse { status, body }
}

fn error(status: u16, msg: impl Into<String>) -> ApiResponse {
    reply(status, json!({ "error_msg": msg.into() }))
}

fn not_found() -> ApiResponse {
    reply(404, json!({"message": "Key not found"}))
}

/// Where a request points.
struct Target<'a> {
    kind: Kind,
    parent: Option<&'a str>,
    id: Option<&'a str>,
    sub_path: Vec<&'a str>,
}

fn target<'a>(segs: &[&'a str]) -> Result<Target<'a>, ApiResponse> {
    let first = segs.first().copied().unwrap_or_default();
    let kind = Kind::from_segment(first)
        .ok_or_else(|| error(404, format!("Unsupported resource type: {first}")))?;
    match kind {
        Kind::Consumers if segs.get(2) == Some(&"credentials") => Ok(Target {
            kind: Kind::Credentials,
            parent: Some(segs[1]),
            id: segs.get(3).copied(),
            sub_path: segs.get(4..).unwrap_or_default().to_vec(),
        }),
        Kind::Secrets => match segs.get(1) {
            Some(&"vault") => Ok(Target {
                kind,
                parent: None,
                id: segs.get(2).copied(),
                sub_path: segs.get(3..).unwrap_or_default().to_vec(),
            }),
            Some(other) => Err(error(400, format!("unsupported secret manager: {other}"))),
            None => Ok(Target {
                kind,
                parent: None,
                id: None,
                sub_path: Vec::new(),
            }),
        },
        _ => Ok(Target {
            kind,
            parent: None,
            id: segs.get(1).copied(),
            sub_path: segs.get(2..).unwrap_or_default().to_vec(),
        }),
    }
}

/// Handles one request.
pub fn handle(ctl: &mut Control, req: &ApiRequest) -> ApiResponse {
    let rest = req.path.strip_prefix("/apisix/admin").unwrap_or("");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["plugins", "list"] if req.method == "GET" => {
            return reply(200, json!(crate::plugins::NAMES))
        }
        ["plugins", name] | ["schema", "plugins", name] if req.method == "GET" => {
            let consumer = req
                .query
                .unwrap_or_default()
                .split('&')
                .any(|kv| kv == "schema_type=consumer");
            return match Registry::schema(name, consumer) {
                Some(schema) => reply(200, schema),
                None => error(404, format!("plugin not found: {name}")),
            };
        }
        ["consumers", user, "credentials", id, "sign"] if req.method == "POST" => {
            return sign_for(ctl, user, id, req.body)
        }
        [] => return error(404, "not found"),
        _ => {}
    }
    let t = match target(&segs) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = if req.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(req.body) {
            Ok(v) => Some(v),
            Err(e) => return error(400, format!("invalid request body: {e}")),
        }
    };
    let result = match req.method {
        "GET" => Ok(get(ctl, &t, req.query)),
        "PUT" => put(ctl, &t, body, false),
        "POST" => put(ctl, &t, body, true),
        "PATCH" => patch(ctl, &t, body),
        "DELETE" => delete(ctl, &t),
        _ => Ok(error(405, "method not allowed")),
    };
    result.unwrap_or_else(store_failure)
}

/// A refused change (400) or a store failure (503).
fn store_failure(e: ControlError) -> ApiResponse {
    match e {
        ControlError::Invalid(m) => error(400, m),
        ControlError::Store(e) => {
            tracing::error!(error = %e, "store failure");
            error(503, e.to_string())
        }
    }
}

/// Signs a token for a stored `jwt-auth` (or Kong `jwt`) credential: API7's "Generate JSON
/// Web Token". Body: `{"payload": {...}, "expires_in": seconds}` (both optional; the key claim
/// is set from the credential, `exp` defaults to the credential's `exp`, else 86400 s).
fn sign_for(ctl: &Control, user: &str, id: &str, body: &[u8]) -> ApiResponse {
    use crate::jwt::{sign, Alg, SignKey};
    let key = Kind::Credentials.key(Some(user), id);
    let entry = match ctl.get(&key) {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(e) => return store_failure(e),
    };
    let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error(400, "invalid request body: expected an object"),
            Err(e) => return error(400, format!("invalid request body: {e}")),
        }
    };
    let entry_value = entry.value();
    let plugins = entry_value.get("plugins").and_then(Value::as_object);
    let (plugin, conf) = match plugins.and_then(|p| p.iter().find(|(n, _)| Registry::is_auth(n))) {
        Some((n, c)) => (n.as_str(), c),
        None => return error(400, "the credential has no JWT plugin"),
    };
    let alg = conf
        .get("algorithm")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .unwrap_or(Alg::HS256);
    let secret_of = |field: &str| -> Result<String, String> {
        let v = conf.get(field).and_then(Value::as_str).unwrap_or_default();
        if crate::plugins::jwt_auth::is_reference(v) {
            ctl.resolve(v)
        } else {
            Ok(v.to_string())
        }
    };
    let sign_key = if alg.is_hmac() {
        let secret = match secret_of("secret") {
            Ok(s) => s,
            Err(e) => return error(400, format!("cannot resolve the secret: {e}")),
        };
        let b64 = conf.get("base64_secret").and_then(Value::as_bool) == Some(true);
        let bytes = if b64 {
            match crate::plugins::jwt_auth::decode_std_base64(&secret) {
                Some(b) => b,
                None => return error(400, "the secret is not base64"),
            }
        } else {
            secret.into_bytes()
        };
        SignKey::Hmac(bytes)
    } else {
        match secret_of("private_key") {
            Ok(pem) if !pem.is_empty() => SignKey::Pem(pem),
            _ => {
                return error(
                    400,
                    format!("{} credentials are signed with a private key, and this credential has no private_key", alg.as_str()),
                )
            }
        }
    };
    let mut payload = req
        .get("payload")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let claim = if plugin == "jwt" { "iss" } else { "key" };
    if let Some(k) = conf.get("key") {
        payload.insert(claim.into(), k.clone());
    }
    if !payload.contains_key("exp") {
        let ttl = req
            .get("expires_in")
            .and_then(Value::as_u64)
            .or_else(|| conf.get("exp").and_then(Value::as_u64))
            .unwrap_or(86_400);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        payload.insert("exp".into(), json!(now + ttl));
    }
    match sign(alg, &sign_key, &Map::new(), &Value::Object(payload)) {
        Ok(token) => reply(200, json!({ "token": token })),
        Err(e) => error(400, format!("cannot sign: {e}")),
    }
}

fn entry_json(key: &str, e: &Entry) -> Value {
    let mut value = e.value();
    if key.starts_with("/apisix/ssls/") {
        // APISIX never returns an ssl object's private keys on GET ("for security").
        if let Some(obj) = value.as_object_mut() {
            obj.remove("key");
            obj.remove("keys");
        }
    }
    json!({"key": key, "value": value, "createdIndex": e.created, "modifiedIndex": e.modified})
}

fn get(ctl: &Control, t: &Target, query: Option<&str>) -> ApiResponse {
    if let Some(id) = t.id {
        let key = t.kind.key(t.parent, id);
        return match ctl.get(&key) {
            Ok(Some(e)) => reply(200, entry_json(&key, &e)),
            Ok(None) => not_found(),
            Err(e) => store_failure(e),
        };
    }
    let window = match paging(query) {
        Ok((Some(page), Some(size))) => Some(((page - 1).saturating_mul(size), size)),
        Ok(_) => None,
        Err(r) => return r,
    };
    match ctl.list(t.kind, t.parent, window) {
        Ok((total, all)) => {
            let items: Vec<Value> = all.iter().map(|(k, e)| entry_json(k, e)).collect();
            reply(200, json!({"total": total, "list": items}))
        }
        Err(e) => store_failure(e),
    }
}

/// `page` (≥ 1) and `page_size` (10..=500) query arguments, as APISIX checks them.
fn paging(query: Option<&str>) -> Result<(Option<usize>, Option<usize>), ApiResponse> {
    let mut page = None;
    let mut size = None;
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "page" => &mut page,
            "page_size" => &mut size,
            _ => continue,
        };
        *slot = Some(
            v.parse::<usize>()
                .map_err(|_| error(400, format!("invalid argument {k}: should be a number")))?,
        );
    }
    if page == Some(0) {
        return Err(error(400, "invalid argument page: should be at least 1"));
    }
    if size.is_some_and(|s| !(10..=500).contains(&s)) {
        return Err(error(
            400,
            "invalid argument page_size: should be between 10 and 500",
        ));
    }
    match (page, size) {
        (Some(p), None) => Ok((Some(p), Some(10))),
        (None, Some(s)) => Ok((Some(1), Some(s))),
        other => Ok(other),
    }
}

fn put(
    ctl: &mut Control,
    t: &Target,
    body: Option<Value>,
    post: bool,
) -> Result<ApiResponse, ControlError> {
    let kind = t.kind;
    if !t.sub_path.is_empty() {
        return Ok(error(404, "not found"));
    }
    if post && matches!(kind, Kind::Consumers | Kind::Credentials | Kind::Secrets) {
        return Ok(error(
            405,
            format!("{} objects are created with PUT", kind.singular()),
        ));
    }
    let Some(mut value) = body else {
        return Ok(error(400, "missing configurations"));
    };
    let Some(obj) = value.as_object_mut() else {
        return Ok(error(
            400,
            "invalid configuration: wrong type: expected object",
        ));
    };
    let body_id = obj.get(kind.id_field()).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let id = if post {
        if t.id.is_some() {
            return Ok(error(
                400,
                format!("wrong {} id, do not need it", kind.singular()),
            ));
        }
        ctl.next_id()?
    } else {
        match (t.id, body_id.as_deref()) {
            (Some(p), Some(b)) if p != b => {
                return Ok(error(400, format!("wrong {} id", kind.singular())))
            }
            (Some(p), _) => p.to_string(),
            (None, Some(b)) => b.to_string(),
            (None, None) => return Ok(error(400, format!("missing {} id", kind.singular()))),
        }
    };
    if !valid_id(&id) {
        return Ok(error(
            400,
            format!("invalid {} id: {id:?}", kind.singular()),
        ));
    }
    if kind != Kind::Secrets {
        obj.insert(kind.id_field().into(), Value::String(id.clone()));
    }
    if let Some(consumer) = t.parent {
        if ctl.get(&Kind::Consumers.key(None, consumer))?.is_none() {
            return Ok(error(404, format!("consumer {consumer} not found")));
        }
    }
    if matches!(kind, Kind::Consumers | Kind::Credentials) {
        fill_consumer_defaults(&mut value);
    }
    let key = kind.key(t.parent, &id);
    if kind == Kind::Ssls {
        ctl.unseal_echoed(&key, &mut value);
    }
    if let Err(errs) = validate(kind, &value, &id, ctl.plugins()) {
        return Ok(invalid(errs));
    }
    if let Some(r) = missing_reference(ctl, kind, &value)? {
        return Ok(r);
    }
    let (stored, created) = ctl.put(&key, value)?;
    Ok(reply(
        if created || post { 201 } else { 200 },
        json!({"key": key, "value": stored}),
    ))
}

/// Fills what consumer-side plugins generate when omitted (Kong `jwt`'s key and secret), so
/// the generated values are stored and returned.
fn fill_consumer_defaults(value: &mut Value) {
    if let Some(Value::Object(plugins)) = value.get_mut("plugins") {
        for (name, conf) in plugins.iter_mut() {
            Registry::fill_consumer_defaults(name, conf);
        }
    }
}

/// A 400 naming every problem. Plugin errors keep APISIX's own wording
/// (`failed to check the configuration of plugin jwt-auth err: ...`) without a prefix.
fn invalid(errs: Vec<String>) -> ApiResponse {
    let joined = errs.join("; ");
    // APISIX answers these without the prefix too: plugin checks, and an ssl object's
    // certificate checks (`apisix/ssl.lua`), which come after its schema check.
    let plugin_only = errs.iter().all(|e| {
        e.starts_with("invalid plugins configuration: ")
            || e.starts_with("failed to check the configuration of plugin ")
            || e.starts_with("failed to parse cert: ")
            || e.starts_with("failed to parse key: ")
            || e.starts_with("key does not match cert: ")
            || e.starts_with("failed to handle cert-key pair[")
            || e == "mismatched number of certs and keys"
    });
    if plugin_only {
        error(400, joined)
    } else {
        error(400, format!("invalid configuration: {joined}"))
    }
}

/// Ids and usernames: APISIX's `^[a-zA-Z0-9-_.]+$`, 1 to 64 characters.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// APISIX's answers for a route or service that names a missing upstream or service.
fn missing_reference(
    ctl: &Control,
    kind: Kind,
    value: &Value,
) -> Result<Option<ApiResponse>, ControlError> {
    let has_inline = value.get("upstream").is_some();
    let check = |field: &str, target: Kind| -> Result<Option<ApiResponse>, ControlError> {
        let Some(id) = value.get(field) else {
            return Ok(None);
        };
        let id = id
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| id.to_string());
        Ok(ctl.get(&target.key(None, &id))?.is_none().then(|| {
            error(
                400,
                format!(
                    "failed to fetch {} info by {} id [{id}], response code: 404",
                    target.singular(),
                    target.singular()
                ),
            )
        }))
    };
    match kind {
        Kind::Routes => match check("service_id", Kind::Services)? {
            Some(r) => Ok(Some(r)),
            None if has_inline => Ok(None),
            None => check("upstream_id", Kind::Upstreams),
        },
        Kind::Services if !has_inline => check("upstream_id", Kind::Upstreams),
        _ => Ok(None),
    }
}

fn patch(ctl: &mut Control, t: &Target, body: Option<Value>) -> Result<ApiResponse, ControlError> {
    let Some(id) = t.id else {
        return Ok(error(400, format!("missing {} id", t.kind.singular())));
    };
    let Some(body) = body else {
        return Ok(error(400, "missing new configuration"));
    };
    let key = t.kind.key(t.parent, id);
    let Some(current) = ctl.get(&key)? else {
        return Ok(not_found());
    };
    let mut value = current.value();
    if t.sub_path.is_empty() {
        if !body.is_object() {
            return Ok(error(400, "invalid configuration"));
        }
        merge(&mut value, &body);
    } else if let Err(msg) = set_path(&mut value, &t.sub_path, body) {
        return Ok(error(400, msg));
    }
    if matches!(t.kind, Kind::Consumers | Kind::Credentials) {
        fill_consumer_defaults(&mut value);
    }
    if t.kind == Kind::Ssls {
        ctl.unseal_echoed(&key, &mut value);
    }
    if let Err(errs) = validate(t.kind, &value, id, ctl.plugins()) {
        return Ok(invalid(errs));
    }
    if let Some(r) = missing_reference(ctl, t.kind, &value)? {
        return Ok(r);
    }
    let (stored, _) = ctl.put(&key, value)?;
    Ok(reply(200, json!({"key": key, "value": stored})))
}

/// JSON merge patch (RFC 7386): objects merge recursively, `null` removes, the rest replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Replaces the value at `path` (object keys) with `new`.
fn set_path(value: &mut Value, path: &[&str], new: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("invalid sub path")?;
    let mut cur = value;
    for seg in parents {
        cur = cur
            .as_object_mut()
            .and_then(|o: &mut Map<String, Value>| o.get_mut(*seg))
            .ok_or_else(|| format!("invalid sub path: {}", path.join("/")))?;
    }
    let obj = cur
        .as_object_mut()
        .ok_or_else(|| format!("invalid sub path: {}", path.join("/")))?;
    obj.insert((*last).to_string(), new);
    Ok(())
}

fn delete(ctl: &mut Control, t: &Target) -> Result<ApiResponse, ControlError> {
    let Some(id) = t.id else {
        return Ok(error(400, format!("missing {} id", t.kind.singular())));
    };
    let key = t.kind.key(t.parent, id);
    if ctl.get(&key)?.is_none() {
        return Ok(not_found());
    }
    if let Some(msg) = still_used(ctl, t.kind, id)? {
        return Ok(error(400, msg));
    }
    ctl.delete(&key)?;
    Ok(reply(200, json!({"deleted": "1", "key": key})))
}

/// APISIX's refusal when deleting an object something else still uses.
fn still_used(ctl: &Control, kind: Kind, id: &str) -> Result<Option<String>, ControlError> {
    let uses = |k: Kind, field: &str| -> Result<Option<String>, ControlError> {
        Ok(ctl.list(k, None, None)?.1.into_iter().find_map(|(_, e)| {
            let value = e.value();
            let v = value.get(field)?;
            let same = match v.as_str() {
                Some(s) => s == id,
                None => v.as_u64().is_some_and(|n| id.parse::<u64>() == Ok(n)),
            };
            same.then(|| value.get("id").map(plain).unwrap_or_default())
        }))
    };
    Ok(match kind {
        Kind::Upstreams => match uses(Kind::Routes, "upstream_id")? {
            Some(r) => Some(format!(
                "can not delete this upstream, route [{r}] is still using it now"
            )),
            None => uses(Kind::Services, "upstream_id")?.map(|s| {
                format!("can not delete this upstream, service [{s}] is still using it now")
            }),
        },
        Kind::Services => uses(Kind::Routes, "service_id")?.map(|r| {
            format!("can not delete this service directly, route [{r}] is still using it now")
        }),
        // A consumer is deleted with its credentials (see `Control::delete`).
        _ => None,
    })
}

fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        merge(&mut v, &json!({"a": null, "b": {"c": 5}, "e": [9]}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}, "e": [9]}));
    }

    #[test]
    fn sub_path() {
        let mut v = json!({"upstream": {"nodes": {"a:1": 1}}});
        set_path(&mut v, &["upstream", "nodes"], json!({"b:2": 1})).unwrap();
        assert_eq!(v, json!({"upstream": {"nodes": {"b:2": 1}}}));
        assert!(set_path(&mut v, &["nope", "x"], json!(1)).is_err());
    }

    #[test]
    fn paging_rules() {
        assert!(matches!(paging(None), Ok((None, None))));
        assert!(matches!(
            paging(Some("page=2&page_size=10")),
            Ok((Some(2), Some(10)))
        ));
        assert!(paging(Some("page=0")).is_err());
        assert!(paging(Some("page_size=5")).is_err());
        assert!(paging(Some("page=x")).is_err());
    }
}
