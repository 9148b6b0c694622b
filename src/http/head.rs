//! Request heads, zero-copy: [`parse_request`] reads a [`RequestHead`] whose fields are
//! byte offsets ([`HeaderSpan`]) into the caller's buffer, and decides the body's
//! [`BodyFraming`].
//!
//! The framing rules are the gateway's request-smuggling defence (RFC 9112 §6): a request
//! is refused with [`HeadError::Smuggling`] unless exactly one reading of where its body
//! ends exists — at most one `Content-Length` of plain digits, or `Transfer-Encoding:
//! chunked` alone on HTTP/1.1, never both. Bare LF line ends, obsolete line folding and
//! whitespace before the colon are refused as [`HeadError::Malformed`].

use super::fields::{self, FieldScan};
use super::syntax::{self, slice, StartLine};
use super::target;
use super::{HeadError, Limits};
use http::Method;

/// A header as byte offsets into the buffer the head was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    /// `(start, end)` of the field name.
    pub name: (u32, u32),
    /// `(start, end)` of the field value, without surrounding whitespace.
    pub value: (u32, u32),
}

impl HeaderSpan {
    /// The field name's bytes in `buf`.
    pub fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, self.name)
    }

    /// The field value's bytes in `buf`.
    pub fn value<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, self.value)
    }
}

/// How the body after a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding; decode with `ChunkedDecoder`.
    Chunked,
    /// Until the peer closes the connection (responses only).
    UntilClose,
}

/// A parsed request head; spans are offsets into the buffer given to [`parse_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, extension methods included.
    pub method: Method,
    /// The request-target as written: origin-form `path?query`, absolute-form, `host:port`
    /// for CONNECT or `*` for OPTIONS.
    pub target: (u32, u32),
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Every field as received, in order (the proxy filters hop-by-hop fields).
    pub headers: Vec<HeaderSpan>,
    /// Bytes of the head including the blank line (and any empty lines before the request
    /// line); the body, or the next request, starts here.
    pub head_len: usize,
    /// `None`, `Length(n)` or `Chunked`; never `UntilClose`.
    pub body: BodyFraming,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (HTTP/1.0 expectations are ignored, RFC 9110
    /// §10.1.1).
    pub expect_continue: bool,
    /// The value of the Host field, if there is one.
    pub host: Option<(u32, u32)>,
    /// The tokens of all Connection fields (compare them ignoring case), so the proxy can
    /// drop the fields they name.
    pub connection_tokens: Vec<(u32, u32)>,
    /// An Upgrade field together with `Connection: upgrade` on HTTP/1.1.
    pub upgrade: bool,
    /// The normalised path when it differs from the path as written (see [`Self::uri`]);
    /// `None` in the common case of a path that is already normal.
    pub normalized: Option<Box<[u8]>>,
}

impl Drop for RequestHead {
    fn drop(&mut self) {
        super::fields::recycle(
            std::mem::take(&mut self.headers),
            std::mem::take(&mut self.connection_tokens),
        );
    }
}

impl RequestHead {
    /// The path: the target up to `?`; `/p` for `http://h/p?q` (`/` when the absolute
    /// target has no path); CONNECT and `*` targets whole.
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        target::path(slice(buf, self.target))
    }

    /// The path requests are routed on, nginx's `$uri`: [`Self::path`] percent-decoded, with
    /// `.` and `..` segments resolved and runs of `/` merged (see [`crate::http::path`]).
    /// Borrowed from `buf` when the path was already normal.
    pub fn uri<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match &self.normalized {
            Some(n) => n,
            None => self.path(buf),
        }
    }

    /// The query after the first `?` (possibly empty), `None` without a `?`.
    pub fn query<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        target::query(slice(buf, self.target))
    }

    /// The first value of the field `name`, compared ignoring case.
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value(buf))
    }

    /// The authority the request is for, `host[:port]` as written: from an absolute-form
    /// target when there is one (RFC 9112 §3.2.2), else the Host field. A proxy sends it on as
    /// the Host it forwards.
    pub fn authority<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        let host = self.host.map(|span| slice(buf, span));
        target::authority(slice(buf, self.target), host)
    }

    /// The host the request is for, without `:port` and with the brackets of an IPv6
    /// literal kept, like nginx's `$host` before lower-casing (comparing ignoring case is
    /// the caller's job). Taken from an absolute-form target when there is one (RFC 9112
    /// §3.2.2), else from Host. `None` when there is no host or it is empty.
    pub fn host_name<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        let host = self.host.map(|span| slice(buf, span));
        target::host_name(slice(buf, self.target), host)
    }
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: the head is incomplete, read more and call again with the longer buffer.
/// `Err(TooLarge)` once `buf` holds `limits.max_header_bytes` bytes without a complete
/// head, or when a complete head is longer than that.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HeadError> {
    let window = syntax::head_window(buf, limits.max_header_bytes);
    let Some(start) = syntax::skip_empty_lines(window)? else {
        return syntax::incomplete(buf.len(), limits.max_header_bytes);
    };
    let line = &window[start..];
    syntax::with_header_slots(limits.max_headers, line.len(), |slots| {
        let mut req = httparse::Request::new(slots);
        let parsed = match req.parse(line) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return syntax::incomplete(buf.len(), limits.max_header_bytes)
            }
            Err(e) => {
                return match syntax::head_error(e, line, StartLine::Request) {
                    Some(error) => Err(error),
                    None => syntax::incomplete(buf.len(), limits.max_header_bytes),
                }
            }
        };
        let head_len = start + parsed;
        if syntax::has_bare_lf(&window[start..head_len]) {
            return Err(HeadError::Malformed("bare LF line ending"));
        }
        let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
            return Err(HeadError::Malformed("incomplete request line"));
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| HeadError::Malformed("invalid method"))?;
        let target = syntax::span(window, path.as_bytes())
            .ok_or(HeadError::Malformed("invalid request-target"))?;
        target::classify(&method, path.as_bytes())?;
        let normalized = super::path::normalize(target::path(path.as_bytes()))?;
        let scan = fields::scan(window, req.headers);
        let mut head = finish(window, method, target, version, head_len, scan)?;
        head.normalized = normalized.map(Vec::into_boxed_slice);
        Ok(Some(head))
    })
}

/// The checks that need every field at once: Host, framing, connection handling.
fn finish(
    window: &[u8],
    method: Method,
    target: (u32, u32),
    version: u8,
    head_len: usize,
    scan: FieldScan,
) -> Result<RequestHead, HeadError> {
    if scan.host_fields > 1 {
        return Err(HeadError::DuplicateHost);
    }
    match scan.host {
        None if version == 1 => return Err(HeadError::MissingHost),
        Some(span) if !target::valid_host(slice(window, span)) => {
            return Err(HeadError::Malformed("invalid Host header"))
        }
        _ => {}
    }
    let body = body_framing(version, &scan)?;
    let http11 = version == 1;
    Ok(RequestHead {
        method,
        target,
        version,
        headers: scan.headers,
        head_len,
        body,
        keep_alive: !scan.close && (http11 || scan.keep_alive),
        expect_continue: http11 && scan.expect_continue,
        host: scan.host,
        connection_tokens: scan.connection_tokens,
        upgrade: http11 && scan.upgrade_field && scan.upgrade_token,
        normalized: None,
    })
}

/// RFC 9112 §6.3 for requests, strictly: one reading of the body length or none.
fn body_framing(version: u8, scan: &FieldScan) -> Result<BodyFraming, HeadError> {
    let cl = &scan.content_length;
    let te = &scan.codings;
    if te.present {
        if cl.fields > 0 {
            return Err(HeadError::Smuggling(
                "Transfer-Encoding with Content-Length",
            ));
        }
        if version == 0 {
            return Err(HeadError::Smuggling("Transfer-Encoding on HTTP/1.0"));
        }
        if !te.is_plain_chunked() {
            return Err(HeadError::Smuggling("Transfer-Encoding other than chunked"));
        }
        return Ok(BodyFraming::Chunked);
    }
    if cl.fields == 0 {
        return Ok(BodyFraming::None);
    }
    if cl.fields > 1 || cl.elements > 1 {
        return Err(HeadError::Smuggling("more than one Content-Length"));
    }
    match cl.value {
        Some(n) if !cl.invalid => Ok(BodyFraming::Length(n)),
        _ => Err(HeadError::Smuggling("invalid Content-Length")),
    }
}

#[cfg(test)]
mod tests;
