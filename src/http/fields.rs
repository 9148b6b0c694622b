//! One pass over httparse's header fields for both parsers: [`scan`] turns them into
//! [`HeaderSpan`]s and records, in a [`FieldScan`], what the framing and connection rules
//! need — `Content-Length` ([`ContentLength`]), `Transfer-Encoding` ([`Codings`]),
//! `Connection` tokens, `Host`, `Expect` and `Upgrade`.
//!
//! The scan only records; the request and response parsers apply their own rules to it.

use super::syntax::{list_elements, span, trim_ows};
use super::HeaderSpan;

/// What the `Content-Length` fields said, across all of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ContentLength {
    /// How many `Content-Length` fields there were.
    pub fields: usize,
    /// How many list elements they held in all (`5, 5` is two).
    pub elements: usize,
    /// The value of the first valid element.
    pub value: Option<u64>,
    /// Some element was not `1*DIGIT` or did not fit a `u64`.
    pub invalid: bool,
    /// Two valid elements differ.
    pub conflicting: bool,
}

/// The transfer codings listed across all `Transfer-Encoding` fields.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Codings {
    /// Some `Transfer-Encoding` field was present.
    pub present: bool,
    /// Non-empty codings listed.
    pub count: usize,
    /// How many of them are `chunked`.
    pub chunked: usize,
    /// The last coding listed is `chunked`.
    pub last_is_chunked: bool,
    /// Some list element was empty (`chunked,` or an empty field).
    pub empty_element: bool,
}

impl Codings {
    /// Exactly one coding, `chunked`: the only request framing the gateway accepts.
    pub(crate) fn is_plain_chunked(&self) -> bool {
        self.count == 1 && self.chunked == 1 && !self.empty_element
    }
}

/// The fields of one head, as offsets, plus what the framing rules need.
#[derive(Debug, Default)]
pub(crate) struct FieldScan {
    pub headers: Vec<HeaderSpan>,
    pub content_length: ContentLength,
    pub codings: Codings,
    /// Each token of each `Connection` field.
    pub connection_tokens: Vec<(u32, u32)>,
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade_token: bool,
    /// The value of the first `Host` field and how many there were.
    pub host: Option<(u32, u32)>,
    pub host_fields: usize,
    pub expect_continue: bool,
    pub upgrade_field: bool,
}

/// Most spare span vectors a thread keeps, and the largest it keeps.
const SPARE_COUNT: usize = 64;
const SPARE_CAPACITY: usize = 256;

/// Spare field-span and `Connection`-token vectors.
type Spare = (Vec<Vec<HeaderSpan>>, Vec<Vec<(u32, u32)>>);

thread_local! {
    /// Span vectors of heads that were dropped, for the next heads parsed on this thread: a
    /// worker parses two heads per request, and allocating their vectors each time was most
    /// of its allocations per request.
    static SPARE: std::cell::RefCell<Spare> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Hands a dropped head's vectors back for reuse (see [`SPARE`]).
pub(crate) fn recycle(mut headers: Vec<HeaderSpan>, mut tokens: Vec<(u32, u32)>) {
    // `try_with`: a head dropped while the thread is exiting just frees its vectors.
    let _ = SPARE.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        if (1..=SPARE_CAPACITY).contains(&headers.capacity()) && s.0.len() < SPARE_COUNT {
            headers.clear();
            s.0.push(headers);
        }
        if (1..=SPARE_CAPACITY).contains(&tokens.capacity()) && s.1.len() < SPARE_COUNT {
            tokens.clear();
            s.1.push(tokens);
        }
    });
}

/// Scans `fields`, whose slices all point into `buf`.
pub(crate) fn scan(buf: &[u8], fields: &[httparse::Header<'_>]) -> FieldScan {
    let (mut headers, connection_tokens) = SPARE
        .try_with(|s| {
            s.try_borrow_mut()
                .map(|mut s| (s.0.pop().unwrap_or_default(), s.1.pop().unwrap_or_default()))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    headers.reserve(fields.len());
    let mut out = FieldScan {
        headers,
        connection_tokens,
        ..FieldScan::default()
    };
    for field in fields {
        let Some(name) = span(buf, field.name.as_bytes()) else {
            continue;
        };
        // httparse's empty values point into `buf`; fall back to an empty span anyway.
        let value = span(buf, field.value).unwrap_or((name.1, name.1));
        out.headers.push(HeaderSpan { name, value });
        let name = field.name.as_bytes();
        let value_bytes = field.value;
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length(&mut out.content_length, value_bytes);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings(&mut out.codings, value_bytes);
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection(&mut out, value.0, value_bytes);
        } else if name.eq_ignore_ascii_case(b"host") {
            out.host_fields += 1;
            out.host.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            out.expect_continue |= trim_ows(value_bytes).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            out.upgrade_field = true;
        }
    }
    out
}

fn content_length(cl: &mut ContentLength, value: &[u8]) {
    cl.fields += 1;
    for (start, end) in list_elements(value) {
        cl.elements += 1;
        match value.get(start..end).and_then(parse_digits) {
            None => cl.invalid = true,
            Some(n) => match cl.value {
                Some(first) if first != n => cl.conflicting = true,
                Some(_) => {}
                None => cl.value = Some(n),
            },
        }
    }
}

/// `1*DIGIT` as a `u64`; `None` for anything else, an empty string or an overflow.
pub(crate) fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn codings(te: &mut Codings, value: &[u8]) {
    te.present = true;
    for (start, end) in list_elements(value) {
        let coding = value.get(start..end).unwrap_or_default();
        if coding.is_empty() {
            te.empty_element = true;
            continue;
        }
        te.count += 1;
        te.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if te.last_is_chunked {
            te.chunked += 1;
        }
    }
}

fn connection(out: &mut FieldScan, value_start: u32, value: &[u8]) {
    for (start, end) in list_elements(value) {
        let token = value.get(start..end).unwrap_or_default();
        if token.is_empty() {
            continue;
        }
        // `value` is at most a head long, which `span` already fitted into u32.
        let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
            continue;
        };
        out.connection_tokens
            .push((value_start + start, value_start + end));
        out.close |= token.eq_ignore_ascii_case(b"close");
        out.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        out.upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(head: &[u8]) -> FieldScan {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut fields);
        assert!(req.parse(head).is_ok_and(|s| s.is_complete()));
        scan(head, req.headers)
    }

    #[test]
    fn digits_are_strict() {
        assert_eq!(parse_digits(b"0"), Some(0));
        assert_eq!(parse_digits(b"0042"), Some(42));
        assert_eq!(parse_digits(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"5x",
            b"0x5",
            b" 5",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_digits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn content_length_lists_are_counted() {
        let s = scan_of(b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n");
        let cl = s.content_length;
        assert_eq!((cl.fields, cl.elements, cl.value), (2, 3, Some(5)));
        assert!(!cl.invalid && !cl.conflicting);
        let s = scan_of(b"GET / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n");
        assert!(s.content_length.conflicting);
        let s = scan_of(b"GET / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n");
        assert!(s.content_length.invalid);
    }

    #[test]
    fn codings_join_across_fields() {
        let s = scan_of(
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
        );
        assert_eq!((s.codings.count, s.codings.chunked), (2, 1));
        assert!(s.codings.last_is_chunked && !s.codings.is_plain_chunked());
        let s = scan_of(b"GET / HTTP/1.1\r\nTransfer-Encoding:  chunked \r\n\r\n");
        assert!(s.codings.is_plain_chunked());
    }

    #[test]
    fn connection_tokens_are_spans_into_the_buffer() {
        let head =
            b"GET / HTTP/1.1\r\nConnection: Keep-Alive , X-Secret,\r\nConnection: upgrade\r\n\r\n";
        let s = scan_of(head);
        let tokens: Vec<&[u8]> = s
            .connection_tokens
            .iter()
            .map(|&(a, b)| &head[a as usize..b as usize])
            .collect();
        assert_eq!(tokens, [&b"Keep-Alive"[..], b"X-Secret", b"upgrade"]);
        assert!(s.keep_alive && s.upgrade_token && !s.close);
    }
}
