//! Lexical helpers shared by the request and response parsers: byte offsets of httparse's
//! slices ([`span`]), leading empty lines ([`skip_empty_lines`]), the bare-LF check
//! ([`has_bare_lf`]), comma-separated lists ([`list_elements`]) and the mapping of
//! httparse errors onto [`HeadError`] ([`head_error`]).

use super::HeadError;

/// Empty lines (CRLF) tolerated before a start line (RFC 9112 §2.2 asks for at least one).
pub(crate) const MAX_LEADING_EMPTY_LINES: usize = 4;

/// The `(start, end)` offsets of `part` inside `buf`, or `None` when `part` does not lie
/// inside `buf` (httparse hands out a static `""` in a few places).
pub(crate) fn span(buf: &[u8], part: &[u8]) -> Option<(u32, u32)> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    if end > buf.len() {
        return None;
    }
    Some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
}

/// The bytes at `span` in `buf`; empty when the span does not fit `buf` (wrong buffer).
pub fn slice(buf: &[u8], span: (u32, u32)) -> &[u8] {
    buf.get(span.0 as usize..span.1 as usize)
        .unwrap_or_default()
}

/// Skips up to [`MAX_LEADING_EMPTY_LINES`] CRLFs. `Ok(Some(offset))` of the first byte of
/// the start line, `Ok(None)` when `buf` holds nothing else yet.
pub(crate) fn skip_empty_lines(buf: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut pos = 0;
    for _ in 0..=MAX_LEADING_EMPTY_LINES {
        match buf.get(pos..) {
            Some([b'\r', b'\n', ..]) => pos += 2,
            Some([b'\r']) | Some([]) | None => return Ok(None),
            Some([b'\r', ..]) | Some([b'\n', ..]) => {
                return Err(HeadError::Malformed("bare CR or LF before the start line"))
            }
            Some(_) => return Ok(Some(pos)),
        }
    }
    Err(HeadError::Malformed(
        "too many empty lines before the start line",
    ))
}

/// Whether `head` has an LF that does not follow a CR. httparse accepts a bare LF as a
/// line end; a peer that does not could see a different message, so the codec refuses it.
pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in head {
        if b == b'\n' && prev != b'\r' {
            return true;
        }
        prev = b;
    }
    false
}

/// Header slots that live on the stack when `Limits::max_headers` allows.
const STACK_SLOTS: usize = 128;

/// Runs `parse` with `max` httparse header slots: on the stack up to [`STACK_SLOTS`], else
/// on the heap. `max` is first cut to what `window_len` bytes could hold (a field line is at
/// least three bytes), so a huge configured limit never becomes a huge allocation.
pub(crate) fn with_header_slots<'b, R>(
    max: usize,
    window_len: usize,
    parse: impl FnOnce(&mut [httparse::Header<'b>]) -> R,
) -> R {
    let max = max.min(window_len / 3 + 1);
    if max <= STACK_SLOTS {
        let mut stack: [httparse::Header<'b>; STACK_SLOTS] = [httparse::EMPTY_HEADER; STACK_SLOTS];
        parse(&mut stack[..max])
    } else {
        let mut heap = vec![httparse::EMPTY_HEADER; max];
        parse(&mut heap)
    }
}

/// The prefix of `buf` a head may occupy: `max_header_bytes`, and never more than `u32`
/// offsets can address.
pub(crate) fn head_window(buf: &[u8], max_header_bytes: usize) -> &[u8] {
    let cap = max_header_bytes.min(u32::MAX as usize);
    &buf[..buf.len().min(cap)]
}

/// What an unfinished head means: read more, or give up because the head can no longer
/// fit the limit.
pub(crate) fn incomplete<T>(
    buf_len: usize,
    max_header_bytes: usize,
) -> Result<Option<T>, HeadError> {
    if buf_len >= max_header_bytes.min(u32::MAX as usize) {
        Err(HeadError::TooLarge)
    } else {
        Ok(None)
    }
}

/// Optional whitespace: SP or HTAB.
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `(start, end)` of each element of a comma-separated list, relative to `value`, with OWS
/// trimmed. Empty elements are yielded too (as an empty range) so callers can refuse them.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    value.split(|&b| b == b',').map(move |element| {
        let elem_start = start;
        start += element.len() + 1;
        let lead = element.iter().take_while(|&&b| is_ows(b)).count();
        let trail = element[lead..]
            .iter()
            .rev()
            .take_while(|&&b| is_ows(b))
            .count();
        (elem_start + lead, elem_start + element.len() - trail)
    })
}

/// The bytes of `value` with leading and trailing OWS removed.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let lead = value.iter().take_while(|&&b| is_ows(b)).count();
    let trail = value[lead..]
        .iter()
        .rev()
        .take_while(|&&b| is_ows(b))
        .count();
    &value[lead..value.len() - trail]
}

/// What a version httparse refused is: one we could read but do not speak
/// (`HTTP/<d>` or `HTTP/<d>.<d>`), garbage, or — when the bytes end inside the token —
/// not yet known. `rest` starts at the version.
fn classify_version(rest: &[u8]) -> Option<HeadError> {
    const SHAPE: &[u8] = b"HTTP/#.#";
    let len = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n' || b == b' ')
        .unwrap_or(rest.len());
    let token = &rest[..len];
    let fits = |shape: &[u8]| {
        token.len() <= shape.len()
            && token.iter().zip(shape).all(|(&b, &want)| {
                if want == b'#' {
                    b.is_ascii_digit()
                } else {
                    b == want
                }
            })
    };
    let ended = len < rest.len();
    if !fits(SHAPE) {
        Some(HeadError::Malformed("invalid HTTP version"))
    } else if !ended {
        // `HTTP/2` may go on as `HTTP/2.0`, or as garbage: wait for the delimiter.
        None
    } else if token.len() == SHAPE.len() || token.len() == "HTTP/#".len() {
        Some(HeadError::UnsupportedVersion)
    } else {
        Some(HeadError::Malformed("invalid HTTP version"))
    }
}

/// Which start line an httparse error came from.
#[derive(Clone, Copy)]
pub(crate) enum StartLine {
    Request,
    Response,
}

/// Maps an httparse error to a [`HeadError`]. `head` starts at the start line. `None`:
/// the bytes end inside a version token that may still turn out well-formed, read more
/// to tell a 505 from a 400.
pub(crate) fn head_error(err: httparse::Error, head: &[u8], kind: StartLine) -> Option<HeadError> {
    let error = match err {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => {
            let version = match kind {
                // method SP request-target SP HTTP-version
                StartLine::Request => head.splitn(3, |&b| b == b' ').nth(2),
                StartLine::Response => Some(head),
            };
            match version {
                Some(version) => return classify_version(version),
                None => HeadError::Malformed("invalid HTTP version"),
            }
        }
        httparse::Error::HeaderName => match leading_whitespace_line(head) {
            Some(1) => HeadError::Malformed("whitespace before the first header field"),
            Some(_) => HeadError::Malformed("obsolete line folding"),
            None => HeadError::Malformed("invalid header name"),
        },
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status line"),
        httparse::Error::Token => HeadError::Malformed("invalid method or request-target"),
    };
    Some(error)
}

/// The index of the first line of the head (the start line is 0) that begins with SP or
/// HTAB after well-formed field lines: obsolete line folding (RFC 9112 §5.2), or
/// whitespace before the first field (RFC 9112 §2.2) when it is line 1. `None` when some
/// other line is the culprit. Reads no further than the first byte of that line, which is
/// where httparse stops, so every prefix of a head gets the same answer.
fn leading_whitespace_line(head: &[u8]) -> Option<usize> {
    // Lines end at LF as httparse sees them (a bare LF included; it is refused later).
    let mut rest = head.get(find_lf(head)? + 1..)?;
    let mut index = 1;
    loop {
        match rest.first() {
            Some(b' ' | b'\t') => return Some(index),
            None | Some(b'\r' | b'\n') => return None,
            Some(_) => {}
        }
        let end = find_lf(rest)?;
        let line = &rest[..end];
        if !is_field_line(line.strip_suffix(b"\r").unwrap_or(line)) {
            return None;
        }
        rest = rest.get(end + 1..)?;
        index += 1;
    }
}

fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// `field-name ":" field-value` without its CRLF.
fn is_field_line(line: &[u8]) -> bool {
    let name_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    match line.get(name_len..) {
        Some([b':', value @ ..]) if name_len > 0 => value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_is_relative_to_the_buffer() {
        let buf = b"GET /x HTTP/1.1";
        assert_eq!(span(buf, &buf[4..6]), Some((4, 6)));
        assert_eq!(span(buf, b"elsewhere"), None);
        assert_eq!(slice(buf, (4, 6)), b"/x");
        assert_eq!(slice(buf, (4, 600)), b"");
    }

    #[test]
    fn leading_empty_lines_are_bounded() {
        assert_eq!(skip_empty_lines(b"GET"), Ok(Some(0)));
        assert_eq!(skip_empty_lines(b"\r\n\r\nGET"), Ok(Some(4)));
        assert_eq!(skip_empty_lines(b"\r\n\r"), Ok(None));
        assert_eq!(skip_empty_lines(b""), Ok(None));
        assert!(skip_empty_lines(b"\nGET").is_err());
        assert!(skip_empty_lines(b"\rGET").is_err());
        let many = b"\r\n".repeat(MAX_LEADING_EMPTY_LINES);
        assert_eq!(skip_empty_lines(&many), Ok(None));
        let too_many = [b"\r\n".repeat(MAX_LEADING_EMPTY_LINES + 1), b"GET".to_vec()].concat();
        assert!(skip_empty_lines(&too_many).is_err());
    }

    #[test]
    fn bare_lf_is_found() {
        assert!(!has_bare_lf(b"a\r\nb\r\n\r\n"));
        assert!(has_bare_lf(b"a\nb\r\n\r\n"));
        assert!(has_bare_lf(b"\n"));
    }

    #[test]
    fn list_elements_trim_and_keep_empties() {
        let v = b" a ,b,, \tc\t";
        let got: Vec<&[u8]> = list_elements(v).map(|(s, e)| &v[s..e]).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(trim_ows(b" \t x y \t"), b"x y");
    }

    #[test]
    fn version_errors_split_unsupported_from_garbage() {
        let e = |h: &[u8], k| head_error(httparse::Error::Version, h, k);
        let req = StartLine::Request;
        let unsupported = Some(HeadError::UnsupportedVersion);
        let garbage = Some(HeadError::Malformed("invalid HTTP version"));
        assert_eq!(e(b"GET / HTTP/2.0\r\n", req), unsupported);
        assert_eq!(e(b"GET / HTTP/1.2\r\n", req), unsupported);
        assert_eq!(e(b"GET / HTTP/2\r\n", req), unsupported);
        assert_eq!(e(b"GET / HTTP/3", req), None);
        assert_eq!(e(b"GET / HTTP/0.", req), None);
        assert_eq!(e(b"GET / HTTP/0.1\0", req), garbage);
        assert_eq!(e(b"GET / HTTP/2.\r\n", req), garbage);
        assert_eq!(e(b"GET / HTTP/22\r\n", req), garbage);
        assert_eq!(e(b"GET / http/1.1\r\n", req), garbage);
        assert_eq!(e(b"GET /a b HTTP/1.1\r\n", req), garbage);
        assert_eq!(e(b"GET /", req), garbage);
        let resp = StartLine::Response;
        assert_eq!(e(b"HTTP/2 200\r\n", resp), unsupported);
        assert_eq!(e(b"HTTP/1.1x 200\r\n", resp), garbage);
        assert_eq!(e(b"HTTX/1.1 200\r\n", resp), garbage);
    }

    #[test]
    fn header_name_errors_name_folding() {
        let e = |h: &[u8]| head_error(httparse::Error::HeaderName, h, StartLine::Request);
        let fold = Some(HeadError::Malformed("obsolete line folding"));
        assert_eq!(e(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), fold);
        assert_eq!(e(b"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n"), fold);
        let first = Some(HeadError::Malformed(
            "whitespace before the first header field",
        ));
        assert_eq!(e(b"GET / HTTP/1.1\r\n A: b\r\n\r\n"), first);
        let name = Some(HeadError::Malformed("invalid header name"));
        assert_eq!(e(b"GET / HTTP/1.1\r\nA b: c\r\n\r\n"), name);
        assert_eq!(e(b"GET / HTTP/1.1\r\nA\n b: c\r\n\r\n"), name);
        assert_eq!(e(b"GET / HTTP/1.1\r\nA\n b"), name);
        // Only bytes up to the offending line are read, whatever follows.
        assert_eq!(e(b"HTTP/1.1 200 OK\nX / Y\r\nA: b\r\n c"), name);
        assert_eq!(e(b"HTTP/1.1 200 OK\nA: b\n c"), fold);
    }
}
