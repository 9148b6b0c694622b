//! `fuzz_http_head`: arbitrary bytes as the start of a connection's read buffer, parsed as a
//! request head (`parse_request`) and as a response head (`parse_response`, answering a
//! HEAD request when the first byte is odd), with the default limits and with tiny ones.
//!
//! Guards against panics and out-of-bounds offsets on hostile heads, and against answers
//! that depend on how the bytes arrived: every prefix must be incomplete or give the answer
//! the whole buffer gives, or a split read could frame a message differently — the root of
//! request smuggling.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::{parse_request, parse_response, BodyFraming, HeaderSpan, Limits};

/// Past this length only some prefixes are checked, to keep each run fast.
const ALL_PREFIXES_UP_TO: usize = 512;

fn inside(span: (u32, u32), head_len: usize) {
    assert!(
        span.0 <= span.1 && span.1 as usize <= head_len,
        "{span:?} outside {head_len}"
    );
}

fn headers_inside(headers: &[HeaderSpan], head_len: usize) {
    for h in headers {
        inside(h.name, head_len);
        inside(h.value, head_len);
    }
}

fn prefixes(len: usize) -> impl Iterator<Item = usize> {
    let step = if len <= ALL_PREFIXES_UP_TO {
        1
    } else {
        len / 64
    };
    (0..len).step_by(step.max(1))
}

fn check_request(data: &[u8], limits: &Limits) {
    let full = parse_request(data, limits);
    if let Ok(Some(head)) = &full {
        assert!(head.head_len <= data.len());
        inside(head.target, head.head_len);
        head.host.into_iter().for_each(|s| inside(s, head.head_len));
        head.connection_tokens
            .iter()
            .for_each(|&s| inside(s, head.head_len));
        headers_inside(&head.headers, head.head_len);
        assert_ne!(head.body, BodyFraming::UntilClose);
        // The accessors must not panic either.
        let _ = (head.path(data), head.query(data), head.host_name(data));
        let _ = head.header(data, "content-length");
    }
    for i in prefixes(data.len()) {
        let part = parse_request(&data[..i], limits);
        assert!(
            part == Ok(None) || part == full,
            "prefix {i}: {part:?} vs {full:?}"
        );
    }
}

fn check_response(data: &[u8], request_was_head: bool, limits: &Limits) {
    let full = parse_response(data, request_was_head, limits);
    if let Ok(Some(head)) = &full {
        assert!(head.head_len <= data.len());
        assert!((100..=999).contains(&head.status));
        inside(head.reason, head.head_len);
        head.connection_tokens
            .iter()
            .for_each(|&s| inside(s, head.head_len));
        headers_inside(&head.headers, head.head_len);
    }
    for i in prefixes(data.len()) {
        let part = parse_response(&data[..i], request_was_head, limits);
        assert!(
            part == Ok(None) || part == full,
            "prefix {i}: {part:?} vs {full:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let tiny = Limits {
        max_header_bytes: 96,
        max_headers: 3,
        ..Limits::default()
    };
    let head_request = data.first().is_some_and(|b| b & 1 == 1);
    for limits in [Limits::default(), tiny] {
        check_request(data, &limits);
        check_response(data, head_request, &limits);
    }
});
