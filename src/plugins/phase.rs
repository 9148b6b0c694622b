//! What an access-phase plugin sees of a request and what it can do about it.
//!
//! - [`Request`]: a read-only view of the client's head (zero-copy over the read buffer).
//! - [`Edits`]: changes to the head sent upstream (headers removed, set or added, a new
//!   target, method or Host).
//! - [`Reply`]: an answer the gateway sends itself instead of proxying (a 401, a 429).
//! - [`Ctx`]: what earlier plugins of the chain learnt (the authenticated consumer).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::consumers::Consumer;
use crate::http::RequestHead;

/// A read-only view of one request.
pub struct Request<'a> {
    /// The parsed head.
    pub head: &'a RequestHead,
    /// The bytes the head's spans point into.
    pub buf: &'a [u8],
    /// The client's address.
    pub peer: SocketAddr,
}

impl<'a> Request<'a> {
    fn span(&self, s: (u32, u32)) -> &'a [u8] {
        self.buf.get(s.0 as usize..s.1 as usize).unwrap_or_default()
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.head.method.as_str()
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        let buf = self.buf;
        self.head
            .headers
            .iter()
            .filter(move |h| {
                buf.get(h.name.0 as usize..h.name.1 as usize)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            })
            .map(move |h| {
                buf.get(h.value.0 as usize..h.value.1 as usize)
                    .unwrap_or_default()
            })
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers(name).next()
    }

    /// The raw query string (after `?`), if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.head.query(self.buf)
    }

    /// The normalised path, without the query: percent-decoded, dot segments resolved, slashes
    /// merged, as the route matched it (APISIX's `ctx.var.uri`). Encode it with
    /// [`crate::http::path::encode`] before putting it in a target.
    pub fn path(&self) -> &'a [u8] {
        self.head.uri(self.buf)
    }

    /// The raw request target, as the client wrote it.
    pub fn target(&self) -> &'a [u8] {
        self.span(self.head.target)
    }
}

/// A header name or value in [`Edits`]: a literal, a string shared with the consumer index
/// (a username, a credential id), or one built for this request. The first two cost no
/// allocation, which is what the per-request path of jwt-auth and Kong jwt uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Text {
    /// A literal.
    Static(&'static str),
    /// Shared with the consumer index.
    Shared(std::sync::Arc<str>),
    /// Built for this request.
    Owned(String),
    /// Built for this request and short enough to live inline (a number, a few characters):
    /// see [`Text::short`].
    Inline([u8; INLINE], u8),
}

/// Longest text [`Text::Inline`] holds: any `u64` in decimal, a reset time in seconds.
const INLINE: usize = 22;

impl Text {
    /// `args` formatted without allocating when the result fits inline, else into a `String`.
    pub fn short(args: std::fmt::Arguments<'_>) -> Text {
        struct Buf([u8; INLINE], usize, bool);
        impl std::fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                match self.0.get_mut(self.1..self.1 + s.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(s.as_bytes());
                        self.1 += s.len();
                        Ok(())
                    }
                    None => {
                        self.2 = true;
                        Err(std::fmt::Error)
                    }
                }
            }
        }
        let mut b = Buf([0; INLINE], 0, false);
        if std::fmt::write(&mut b, args).is_ok() && !b.2 {
            // `b.1` never exceeds `INLINE`, which fits a u8.
            return Text::Inline(b.0, b.1 as u8);
        }
        Text::Owned(std::fmt::format(args))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Shared(s) => s,
            Text::Owned(s) => s,
            // Only whole `str`s are ever copied in, so this is valid UTF-8.
            Text::Inline(b, n) => std::str::from_utf8(&b[..usize::from(*n)]).unwrap_or_default(),
        }
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&std::sync::Arc<str>> for Text {
    fn from(s: &std::sync::Arc<str>) -> Text {
        Text::Shared(s.clone())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::Owned(s)
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Changes to the request head sent upstream. A worker lends one to each exchange and takes it
/// back cleared, so its vectors keep their capacity from one request to the next.
#[derive(Default, Debug)]
pub struct Edits {
    /// Client headers not to forward (compared without regard to case).
    pub remove: Vec<Text>,
    /// Headers to send after the client's (those of a name in `remove` are not sent): what
    /// [`Edits::set`] replaces and what [`Edits::add`] appends.
    pub set: Vec<(Text, Text)>,
    /// A new origin-form target (`/path?query`), sent as it is: its path must already be
    /// encoded.
    pub target: Option<Vec<u8>>,
    /// The method sent upstream instead of the client's (`proxy-rewrite`'s `method`).
    pub method: Option<http::Method>,
    /// The `Host` sent upstream when the upstream's `pass_host` is `pass` (`proxy-rewrite`'s
    /// `host`, APISIX's `upstream_host` variable); `node` and `rewrite` still win, as in
    /// APISIX, which sets the upstream's choice after the plugins ran.
    pub host: Option<String>,
    /// Headers added to the response sent back to the client (`X-RateLimit-*`).
    pub respond: Vec<(&'static str, Text)>,
}

impl Edits {
    /// Sends `name: value` upstream instead of whatever the client sent.
    pub fn set(&mut self, name: &str, value: &str) {
        self.clear(name);
        self.set.push((
            Text::Owned(name.to_string()),
            Text::Owned(value.to_string()),
        ));
    }

    /// [`Edits::set`] for a literal name, with a value that may be shared: no allocation once
    /// the vectors have grown.
    pub fn set_text(&mut self, name: &'static str, value: Text) {
        self.clear_static(name);
        self.set.push((Text::Static(name), value));
    }

    /// Sends `name: value` upstream in addition to the values already there (the client's
    /// and those set or added before).
    pub fn add(&mut self, name: &str, value: &str) {
        self.set.push((
            Text::Owned(name.to_string()),
            Text::Owned(value.to_string()),
        ));
    }

    /// Drops `name` from the upstream request, whether the client or a plugin set it.
    pub fn clear(&mut self, name: &str) {
        self.set.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !self.drops(name.as_bytes()) {
            self.remove.push(Text::Owned(name.to_string()));
        }
    }

    /// [`Edits::clear`] for a literal name.
    pub fn clear_static(&mut self, name: &'static str) {
        self.set.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !self.drops(name.as_bytes()) {
            self.remove.push(Text::Static(name));
        }
    }

    /// Whether client header `name` is replaced or dropped.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.remove
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.set.is_empty()
            && self.target.is_none()
            && self.method.is_none()
            && self.host.is_none()
    }

    /// Back to no change, keeping the vectors' capacity.
    pub fn reset(&mut self) {
        self.remove.clear();
        self.set.clear();
        self.target = None;
        self.method = None;
        self.host = None;
        self.respond.clear();
    }
}

/// A response a plugin sends instead of proxying. The body is JSON; a newline is appended, as
/// APISIX and Kong do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers (`WWW-Authenticate`, rate-limit headers).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body, without the trailing newline.
    pub body: String,
}

impl Reply {
    /// `{"message": msg}` with `status`.
    pub fn message(status: u16, msg: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: serde_json::json!({ "message": msg }).to_string(),
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// What the chain learnt so far about one request.
#[derive(Default)]
pub struct Ctx {
    /// The authenticated (or anonymous) consumer.
    pub consumer: Option<Arc<Consumer>>,
    /// The consumer is an anonymous fallback, not an authenticated one.
    pub anonymous: bool,
    /// Unix time in seconds, read once per request.
    pub now: i64,
    /// The same instant in milliseconds.
    pub now_ms: u64,
}
