//! nginx-style request variables (`remote_addr`, `http_x_api_key`, `arg_page`, `cookie_id`,
//! `consumer_name`, `route_id`, ...) as APISIX's `ctx.var` resolves them, for plugins that
//! key on them (limit-count) or write them into the upstream request (proxy-rewrite).
//! [`is_known`] tells a configuration check which names [`var`] can resolve.

use super::phase::{Ctx, Request};
use super::source;

/// Facts about the request that are not in its head.
pub struct Facts<'a> {
    /// The matched route's id.
    pub route_id: &'a str,
    /// The route's service id, if any.
    pub service_id: Option<&'a str>,
    /// The local port the client connected to.
    pub server_port: u16,
    /// `http` or `https`.
    pub scheme: &'a str,
}

/// The value of variable `name` (without `$`), or `None` when it has none.
pub fn var(name: &str, req: &Request<'_>, ctx: &Ctx, facts: &Facts<'_>) -> Option<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some(match name {
        "remote_addr" => req.peer.ip().to_string(),
        "remote_port" => req.peer.port().to_string(),
        "server_port" => facts.server_port.to_string(),
        "scheme" => facts.scheme.to_string(),
        "request_method" => req.method().to_string(),
        "uri" => text(req.path()),
        // APISIX rebuilds `request_uri` from the normalised `uri` before routing, so a key on
        // it cannot be dodged with `/a/./b` or `%61`.
        "request_uri" => match req.query() {
            Some(q) => format!("{}?{}", text(req.path()), text(q)),
            None => text(req.path()),
        },
        "args" | "query_string" => text(req.query()?),
        "is_args" => if req.query().is_some_and(|q| !q.is_empty()) {
            "?"
        } else {
            ""
        }
        .to_string(),
        "document_uri" => text(req.path()),
        "host" => text(req.head.host_name(req.buf)?),
        "consumer_name" => ctx.consumer.as_ref()?.username.to_string(),
        "route_id" => facts.route_id.to_string(),
        "service_id" => facts.service_id?.to_string(),
        _ => {
            if let Some(h) = name.strip_prefix("http_") {
                let header = h.replace('_', "-");
                return req.header(&header).map(text);
            }
            if let Some(a) = name.strip_prefix("arg_") {
                return source::query_args(req.query()?, a).next().map(|v| text(&v));
            }
            if let Some(c) = name.strip_prefix("cookie_") {
                return source::cookie(req.headers("cookie"), c).map(text);
            }
            return None;
        }
    })
}

/// Appends the value of variable `name` to `out`; `false` (and `out` unchanged) when it has
/// none. The variables quota keys use most are written without an intermediate `String`.
pub fn write_var(
    out: &mut String,
    name: &str,
    req: &Request<'_>,
    ctx: &Ctx,
    facts: &Facts<'_>,
) -> bool {
    use std::fmt::Write;
    match name {
        "remote_addr" => {
            let _ = write!(out, "{}", req.peer.ip());
            true
        }
        "consumer_name" => match &ctx.consumer {
            Some(c) => {
                out.push_str(&c.username);
                true
            }
            None => false,
        },
        "route_id" => {
            out.push_str(facts.route_id);
            true
        }
        _ => match var(name, req, ctx, facts) {
            Some(v) => {
                out.push_str(&v);
                true
            }
            None => false,
        },
    }
}

/// Whether [`var`] knows variable `name` (it may still have no value for a request).
pub fn is_known(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "remote_addr",
        "remote_port",
        "server_port",
        "scheme",
        "request_method",
        "uri",
        "document_uri",
        "request_uri",
        "args",
        "query_string",
        "is_args",
        "host",
        "consumer_name",
        "route_id",
        "service_id",
    ];
    NAMES.contains(&name)
        || ["http_", "arg_", "cookie_"]
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p))
}

/// APISIX's `resolve_var`: `$name` and `${name}` in `template` replaced by their values (an
/// absent variable becomes empty). `None` when the template names variables and none of them
/// has a value.
pub fn interpolate(
    template: &str,
    req: &Request<'_>,
    ctx: &Ctx,
    facts: &Facts<'_>,
) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let (mut named, mut found) = (0, 0);
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        named += 1;
        if let Some(v) = var(name, req, ctx, facts) {
            found += 1;
            out.push_str(&v);
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    if named > 0 && found == 0 {
        None
    } else {
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::Raw;

    const FACTS: Facts<'static> = Facts {
        route_id: "r1",
        service_id: None,
        server_port: 9080,
        scheme: "http",
    };

    #[test]
    fn variables() {
        let raw = Raw::get("/p/q?page=2&x=y", &["X-Api-Key: k1", "Cookie: sid=abc"]);
        let req = raw.req();
        let ctx = Ctx::default();
        let v = |n: &str| var(n, &req, &ctx, &FACTS);
        assert_eq!(v("remote_addr").as_deref(), Some("127.0.0.1"));
        assert_eq!(v("http_x_api_key").as_deref(), Some("k1"));
        assert_eq!(v("arg_page").as_deref(), Some("2"));
        assert_eq!(v("cookie_sid").as_deref(), Some("abc"));
        assert_eq!(v("uri").as_deref(), Some("/p/q"));
        assert_eq!(v("route_id").as_deref(), Some("r1"));
        assert_eq!(v("consumer_name"), None);
        assert_eq!(v("http_missing"), None);
        assert_eq!(v("service_id"), None);
    }

    #[test]
    fn uri_and_request_uri_are_normalised() {
        let raw = Raw::get("/p/./q//../r%20s?page=%2e&x", &[]);
        let req = raw.req();
        let ctx = Ctx::default();
        let v = |n: &str| var(n, &req, &ctx, &FACTS);
        assert_eq!(v("uri").as_deref(), Some("/p/r s"));
        assert_eq!(v("request_uri").as_deref(), Some("/p/r s?page=%2e&x"));
        assert_eq!(v("args").as_deref(), Some("page=%2e&x"));
        let raw = Raw::get("/a", &[]);
        assert_eq!(
            var("request_uri", &raw.req(), &ctx, &FACTS).as_deref(),
            Some("/a")
        );
    }

    #[test]
    fn combinations() {
        let raw = Raw::get("/", &["X-A: 1"]);
        let req = raw.req();
        let ctx = Ctx::default();
        let i = |t: &str| interpolate(t, &req, &ctx, &FACTS);
        assert_eq!(i("$http_x_a $remote_addr").as_deref(), Some("1 127.0.0.1"));
        assert_eq!(i("${http_x_a}-x").as_deref(), Some("1-x"));
        assert_eq!(i("$http_x_b $http_x_a").as_deref(), Some(" 1"));
        assert_eq!(i("$http_x_b$http_x_c"), None);
        assert_eq!(i("plain").as_deref(), Some("plain"));
    }
}
