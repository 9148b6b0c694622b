//! Upstream response heads: [`parse_response`] reads a [`ResponseHead`] (offsets into the
//! caller's buffer) and decides its body framing by RFC 9112 §6.3.
//!
//! Responses are read more leniently than requests where the RFC asks for it — identical
//! duplicate `Content-Length`s, codings before `chunked`, reading until close — but
//! conflicting lengths, a repeated `chunked` and `Transfer-Encoding` on HTTP/1.0 are still
//! refused ([`HeadError::Smuggling`]): the response would otherwise be forwarded with a
//! framing the client may read differently. Bare LF and obsolete line folding are refused.

use super::fields::{self, FieldScan};
use super::syntax::{self, StartLine};
use super::{BodyFraming, HeadError, HeaderSpan, Limits};

/// A parsed response head; spans are offsets into the buffer given to [`parse_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100 to 999.
    pub status: u16,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The reason phrase as sent (may be empty).
    pub reason: (u32, u32),
    /// Every field as received, in order.
    pub headers: Vec<HeaderSpan>,
    /// Bytes of the head including the blank line; the body starts here.
    pub head_len: usize,
    /// `None` for 1xx, 204, 304 and answers to HEAD; else `Length`, `Chunked` or
    /// `UntilClose`.
    pub body: BodyFraming,
    /// Whether the upstream connection can carry another request after this response:
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `keep-alive`, and never
    /// after a body read until close or a `Transfer-Encoding` + `Content-Length` response.
    pub keep_alive: bool,
    /// The tokens of all Connection fields (compare them ignoring case).
    pub connection_tokens: Vec<(u32, u32)>,
}

impl Drop for ResponseHead {
    fn drop(&mut self) {
        super::fields::recycle(
            std::mem::take(&mut self.headers),
            std::mem::take(&mut self.connection_tokens),
        );
    }
}

/// Parses the response head at the start of `buf`. `request_was_head`: the response
/// answers a HEAD request, so it has no body whatever its fields say.
///
/// `Ok(None)`: incomplete, read more. `Err(TooLarge)` once `buf` holds
/// `limits.max_header_bytes` bytes without a complete head.
pub fn parse_response(
    buf: &[u8],
    request_was_head: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, HeadError> {
    let window = syntax::head_window(buf, limits.max_header_bytes);
    let Some(start) = syntax::skip_empty_lines(window)? else {
        return syntax::incomplete(buf.len(), limits.max_header_bytes);
    };
    let line = &window[start..];
    syntax::with_header_slots(limits.max_headers, line.len(), |slots| {
        let mut resp = httparse::Response::new(slots);
        let parsed = match resp.parse(line) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return syntax::incomplete(buf.len(), limits.max_header_bytes)
            }
            Err(e) => {
                return match syntax::head_error(e, line, StartLine::Response) {
                    Some(error) => Err(error),
                    None => syntax::incomplete(buf.len(), limits.max_header_bytes),
                }
            }
        };
        let head_len = start + parsed;
        if syntax::has_bare_lf(&window[start..head_len]) {
            return Err(HeadError::Malformed("bare LF line ending"));
        }
        let (Some(version), Some(status)) = (resp.version, resp.code) else {
            return Err(HeadError::Malformed("incomplete status line"));
        };
        if status < 100 {
            return Err(HeadError::Malformed("invalid status code"));
        }
        let reason = reason_span(window, start)?;
        let scan = fields::scan(window, resp.headers);
        let bodiless = request_was_head || status < 200 || status == 204 || status == 304;
        let (body, framing_allows_reuse) = body_framing(version, bodiless, &scan)?;
        let persistent = !scan.close && (version == 1 || scan.keep_alive);
        Ok(Some(ResponseHead {
            status,
            version,
            reason,
            headers: scan.headers,
            head_len,
            body,
            keep_alive: persistent && framing_allows_reuse,
            connection_tokens: scan.connection_tokens,
        }))
    })
}

/// The reason phrase of the status line at `start`: `HTTP/1.x NNN[ reason]CRLF`, which
/// httparse has checked (it hands back an empty static string for some reasons, so the
/// span is found here).
fn reason_span(window: &[u8], start: usize) -> Result<(u32, u32), HeadError> {
    const CODE_END: usize = "HTTP/1.1 200".len();
    let line = window.get(start..).unwrap_or_default();
    let cr = line
        .iter()
        .position(|&b| b == b'\r')
        .ok_or(HeadError::Malformed("invalid status line"))?;
    let from = if cr > CODE_END { CODE_END + 1 } else { cr };
    let to_u32 = |n: usize| u32::try_from(start + n).map_err(|_| HeadError::TooLarge);
    Ok((to_u32(from)?, to_u32(cr)?))
}

/// RFC 9112 §6.3. Returns the framing and whether it lets the connection be reused.
fn body_framing(
    version: u8,
    bodiless: bool,
    scan: &FieldScan,
) -> Result<(BodyFraming, bool), HeadError> {
    let cl = &scan.content_length;
    let te = &scan.codings;
    if cl.invalid {
        return Err(HeadError::Smuggling("invalid Content-Length"));
    }
    if cl.conflicting {
        return Err(HeadError::Smuggling("conflicting Content-Length values"));
    }
    if bodiless {
        return Ok((BodyFraming::None, true));
    }
    if te.present {
        if version == 0 {
            return Err(HeadError::Smuggling("Transfer-Encoding on HTTP/1.0"));
        }
        if te.count == 0 {
            return Err(HeadError::Smuggling("empty Transfer-Encoding"));
        }
        if te.chunked > 1 {
            return Err(HeadError::Smuggling("chunked applied more than once"));
        }
        if te.last_is_chunked {
            // §6.3 rule 3: Transfer-Encoding wins, then the connection must close.
            return Ok((BodyFraming::Chunked, cl.fields == 0));
        }
        return Ok((BodyFraming::UntilClose, false));
    }
    match cl.value {
        Some(n) => Ok((BodyFraming::Length(n), true)),
        None => Ok((BodyFraming::UntilClose, false)),
    }
}

#[cfg(test)]
mod tests;
