//! `proxy-rewrite` on one request: the new target, headers, method and Host, as edits.
//!
//! The target follows APISIX's `rewrite`: the path part is percent-encoded like any path the
//! gateway forwards ([`crate::http::path::encode`]); a `?` the configuration wrote starts the
//! rewritten URI's own query, which keeps its `?`, `=` and `&` and has only the bytes that
//! cannot stand in a request line escaped; the client's query string follows, after `&` when
//! the new URI has a query of its own and `?` otherwise.

use std::borrow::Cow;

use regex::bytes::Captures;

use crate::http::path;
use crate::plugins::phase::{Ctx, Edits, Reply, Request};
use crate::plugins::vars::Facts;

use super::template::{RenderEnv, Template};
use super::Conf;

/// The longest target or header value a rewrite may produce (templates repeat captures and
/// variables, so the output is not bounded by the input).
pub const MAX_OUTPUT: usize = 64 * 1024;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn pct(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// A variable's value in the query part: a `?` in it must not read as the configuration's.
fn escape_question(v: &[u8], out: &mut Vec<u8>) {
    for &b in v {
        if b == b'?' {
            out.extend_from_slice(b"%3F");
        } else {
            out.push(b);
        }
    }
}

/// The query part as it goes into the request line: control bytes, space, `#` and non-ASCII
/// bytes escaped (APISIX escapes control bytes only; a raw space or `#` would end the target).
fn escape_query(q: &[u8], out: &mut Vec<u8>) {
    for &b in q {
        if b <= b' ' || b == b'#' || b >= 0x7f {
            pct(out, b);
        } else {
            out.push(b);
        }
    }
}

/// A header value as it goes on the wire: control bytes (CR and LF included) escaped, so a
/// value taken from the URI or a query argument cannot start a header of its own.
fn header_text(raw: Vec<u8>) -> String {
    let mut out = Vec::with_capacity(raw.len());
    for b in raw {
        if (b < b' ' && b != b'\t') || b == 0x7f {
            pct(&mut out, b);
        } else {
            out.push(b);
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn error(msg: &str) -> Reply {
    Reply {
        status: 500,
        headers: Vec::new(),
        body: serde_json::json!({ "error_msg": msg }).to_string(),
    }
}

/// The path part, encoded; an empty or relative result gets the leading `/` origin form needs.
fn push_path(out: &mut Vec<u8>, raw: &[u8]) {
    if raw.first() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(&path::encode(raw));
}

/// The client's query string as it stands after the plugins before (jwt-auth may have taken
/// its token out of it); `None` when it is empty.
fn current_args<'a>(req: &Request<'a>, edits: &Edits) -> Option<Cow<'a, [u8]>> {
    match &edits.target {
        Some(t) => t
            .iter()
            .position(|&b| b == b'?')
            .map(|p| Cow::Owned(t[p + 1..].to_vec())),
        None => req.query().map(Cow::Borrowed),
    }
    // nginx's `$is_args` is empty for an empty query, so nothing is appended.
    .filter(|a| !a.is_empty())
}

/// Runs `proxy-rewrite` for `req`. Fails (500, `{"error_msg": ...}`) only when a rewrite would
/// exceed [`MAX_OUTPUT`].
pub fn access(
    conf: &Conf,
    req: &Request<'_>,
    facts: &Facts<'_>,
    ctx: &Ctx,
    edits: &mut Edits,
) -> Result<(), Reply> {
    let mut captures: Option<Captures<'_>> = None;
    let mut target: Option<(Vec<u8>, bool)> = None; // (path and own query, has own query)
    if let Some(u) = &conf.uri {
        let env = RenderEnv {
            req,
            ctx,
            facts,
            captures: None,
        };
        let mut raw = Vec::with_capacity(64);
        u.path
            .render(&mut raw, &env, |v, out| out.extend_from_slice(v));
        let mut t = Vec::with_capacity(raw.len() + 16);
        push_path(&mut t, &raw);
        if let Some(q) = &u.query {
            raw.clear();
            q.render(&mut raw, &env, escape_question);
            t.push(b'?');
            escape_query(&raw, &mut t);
        }
        target = Some((t, u.query.is_some()));
    } else {
        let subject = req.path();
        for (re, rep) in &conf.regex_uri {
            let Some(c) = re.captures(subject) else {
                continue;
            };
            let m = c.get(0).expect("group 0 is the whole match");
            let mut out = Vec::with_capacity(subject.len() + 16);
            out.extend_from_slice(&subject[..m.start()]);
            rep.expand(&c, &mut out);
            out.extend_from_slice(&subject[m.end()..]);
            // A `?` in the result is the replacement's own query, unless the path itself
            // held one (decoded from `%3F`), which makes every `?` part of the path.
            let split = if subject.contains(&b'?') {
                None
            } else {
                out.iter().position(|&b| b == b'?')
            };
            let mut t = Vec::with_capacity(out.len() + 16);
            match split {
                Some(p) => {
                    push_path(&mut t, &out[..p]);
                    t.push(b'?');
                    escape_query(&out[p + 1..], &mut t);
                }
                None => push_path(&mut t, &out),
            }
            target = Some((t, split.is_some()));
            captures = Some(c);
            break;
        }
    }
    if let Some((mut t, own_query)) = target {
        if let Some(args) = current_args(req, edits) {
            t.push(if own_query { b'&' } else { b'?' });
            t.extend_from_slice(&args);
        }
        if t.len() > MAX_OUTPUT {
            tracing::warn!(len = t.len(), "proxy-rewrite: rewritten uri too long");
            return Err(error("failed to rewrite the uri: the result is too long"));
        }
        edits.target = Some(t);
    }

    let h = &conf.headers;
    if !(h.add.is_empty() && h.set.is_empty()) {
        let env = RenderEnv {
            req,
            ctx,
            facts,
            captures: captures.as_ref(),
        };
        let render = |t: &Template| -> Result<String, Reply> {
            if let Some(s) = t.literal() {
                return Ok(s.to_string());
            }
            let mut raw = Vec::new();
            t.render(&mut raw, &env, |v, out| out.extend_from_slice(v));
            if raw.len() > MAX_OUTPUT {
                tracing::warn!(len = raw.len(), "proxy-rewrite: header value too long");
                return Err(error("failed to rewrite a header: the value is too long"));
            }
            Ok(header_text(raw))
        };
        for (name, values) in &h.add {
            for v in values {
                edits.add(name, &render(v)?);
            }
        }
        for (name, values) in &h.set {
            // An empty value removes the header, as nginx's `set_header` does.
            let mut first = true;
            for v in values {
                let v = render(v)?;
                if v.is_empty() {
                    continue;
                }
                if first {
                    edits.set(name, &v);
                    first = false;
                } else {
                    edits.add(name, &v);
                }
            }
            if first {
                edits.clear(name);
            }
        }
    }
    for name in &h.remove {
        edits.clear(name);
    }
    if let Some(m) = &conf.method {
        edits.method = Some(m.clone());
    }
    if let Some(host) = &conf.host {
        edits.host = Some(host.clone());
    }
    Ok(())
}
