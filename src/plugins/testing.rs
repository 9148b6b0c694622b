//! Helpers for plugin tests: requests parsed from raw bytes, HS256 tokens signed with ring
//! directly (independently of the JWT core under test), and an index with consumers.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::consumers::ConsumerIndex;
use crate::http::{parse_request, Limits, RequestHead};
use crate::model::Consumer;

use super::phase::{Ctx, Edits, Reply, Request};

/// A parsed request and the bytes it points into.
pub struct Raw {
    pub buf: Vec<u8>,
    pub head: RequestHead,
}

impl Raw {
    /// Parses `GET {target}` with `headers` (each `Name: value`).
    pub fn get(target: &str, headers: &[&str]) -> Raw {
        Raw::method("GET", target, headers)
    }

    pub fn method(method: &str, target: &str, headers: &[&str]) -> Raw {
        let mut s = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n");
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        let buf = s.into_bytes();
        let head = parse_request(&buf, &Limits::default())
            .expect("test requests parse")
            .expect("test requests are complete");
        Raw { buf, head }
    }

    pub fn req(&self) -> Request<'_> {
        Request {
            head: &self.head,
            buf: &self.buf,
            peer: SocketAddr::from(([127, 0, 0, 1], 5000)),
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// An HS256 token over `payload`, signed with `secret` (header `{"alg":"HS256","typ":"JWT"}`
/// unless `header` is given).
pub fn hs256(secret: &[u8], payload: &Value) -> String {
    hs256_with(secret, &json!({"alg": "HS256", "typ": "JWT"}), payload)
}

pub fn hs256_with(secret: &[u8], header: &Value, payload: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(sig.as_ref()))
}

/// A consumer object (validated with the real registry).
pub fn consumer(v: Value) -> Consumer {
    Consumer::from_json(&v, None, &super::Registry).expect("test consumers are valid")
}

/// An index holding `consumers`, each with credential objects `(id, plugins)`.
pub fn index(consumers: &[(Value, Vec<(&str, Value)>)]) -> Arc<ConsumerIndex> {
    let index = ConsumerIndex::new();
    for (c, creds) in consumers {
        let c = consumer(c.clone());
        let maps: Vec<(&str, Map<String, Value>)> = creds
            .iter()
            .map(|(id, p)| (*id, p.as_object().cloned().expect("plugins object")))
            .collect();
        let refs: Vec<(&str, &Map<String, Value>)> = maps.iter().map(|(i, m)| (*i, m)).collect();
        let (view, entries) =
            super::credentials::entries(&c, &refs, &super::credentials::resolve_env);
        index.replace(&c.username, Some(view), entries);
    }
    Arc::new(index)
}

/// The outcome of one access call.
pub struct Outcome {
    pub result: Result<(), Reply>,
    pub edits: Edits,
    pub ctx: Ctx,
}

impl Outcome {
    pub fn reply(&self) -> &Reply {
        self.result.as_ref().expect_err("expected a reply")
    }
    pub fn status(&self) -> u16 {
        self.result.as_ref().err().map_or(200, |r| r.status)
    }
    pub fn body(&self) -> Value {
        serde_json::from_str(&self.reply().body).expect("reply body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.reply()
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The value a plugin set for upstream header `name`.
    pub fn set(&self, name: &str) -> Option<&str> {
        self.edits
            .set
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn dropped(&self, name: &str) -> bool {
        self.edits.drops(name.as_bytes())
    }
}

/// Runs `f` (a plugin's access) on `raw` at time `now`.
pub fn run(
    raw: &Raw,
    now: i64,
    f: impl FnOnce(&Request<'_>, &mut Ctx, &mut Edits) -> Result<(), Reply>,
) -> Outcome {
    let mut ctx = Ctx {
        now,
        ..Ctx::default()
    };
    let mut edits = Edits::default();
    let result = f(&raw.req(), &mut ctx, &mut edits);
    Outcome { result, edits, ctx }
}

/// Runs a future that must complete without waiting (a chain with no Redis step).
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the access phase waited with no Redis step"),
    }
}
