//! Response-head tests: framing by status, method and fields (RFC 9112 §6.3), the
//! connection reuse that follows from it, syntax refusals and incremental feeding.

use super::*;
use crate::http::slice;
use crate::http::testing::{self, Rng};

fn parse(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    parse_response(buf, false, &Limits::default())
}

fn ok_after(buf: &[u8], request_was_head: bool) -> ResponseHead {
    match parse_response(buf, request_was_head, &Limits::default()) {
        Ok(Some(head)) => {
            assert_invariants(buf, &head);
            head
        }
        other => panic!(
            "expected a head for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn ok(buf: &[u8]) -> ResponseHead {
    ok_after(buf, false)
}

fn err(buf: &[u8]) -> HeadError {
    match parse(buf) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// A 200 response with the given field lines (each without CRLF).
fn resp(version: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = format!("HTTP/1.{version} 200 OK\r\n").into_bytes();
    for f in fields {
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn assert_invariants(buf: &[u8], head: &ResponseHead) {
    let len = head.head_len;
    assert!(len <= buf.len());
    let inside = |(a, b): (u32, u32)| assert!(a <= b && b as usize <= len, "{a}..{b} of {len}");
    inside(head.reason);
    head.connection_tokens.iter().copied().for_each(inside);
    for h in &head.headers {
        inside(h.name);
        inside(h.value);
    }
    assert!((100..=999).contains(&head.status));
}

fn assert_prefixes_agree(buf: &[u8], request_was_head: bool) {
    testing::assert_prefixes_agree(buf, |b| {
        parse_response(b, request_was_head, &Limits::default())
    });
}

#[test]
fn simple_response() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi";
    let head = ok(buf);
    assert_eq!((head.status, head.version), (200, 1));
    assert_eq!(slice(buf, head.reason), b"OK");
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers[1].value(buf), b"text/plain");
    assert_eq!(head.head_len, buf.len() - 2);
    assert_eq!(head.body, BodyFraming::Length(2));
    assert!(head.keep_alive);
}

#[test]
fn reason_phrases() {
    let buf = b"HTTP/1.1 404 Not  Found\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(slice(buf, ok(buf).reason), b"Not  Found");
    let buf = b"HTTP/1.1 204\r\n\r\n";
    assert_eq!(slice(buf, ok(buf).reason), b"");
    let buf = b"HTTP/1.1 204 \r\n\r\n";
    assert_eq!(slice(buf, ok(buf).reason), b"");
    let buf = "HTTP/1.1 200 \u{e9}t\u{e9}\r\nContent-Length: 0\r\n\r\n".as_bytes();
    assert_eq!(slice(buf, ok(buf).reason), "\u{e9}t\u{e9}".as_bytes());
    let buf = b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(slice(buf, ok(buf).reason), b"OK");
}

#[test]
fn bodiless_statuses_and_head() {
    for status in [
        "100 Continue",
        "101 Switching Protocols",
        "103 Early Hints",
        "204 No Content",
        "304 Not Modified",
    ] {
        let buf = format!(
            "HTTP/1.1 {status}\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let head = ok(buf.as_bytes());
        assert_eq!(head.body, BodyFraming::None, "{status}");
        assert!(head.keep_alive, "{status}");
    }
    let buf = resp("1", &["Content-Length: 1000"]);
    assert_eq!(ok_after(&buf, true).body, BodyFraming::None);
    let buf = resp("1", &["Transfer-Encoding: chunked"]);
    assert_eq!(ok_after(&buf, true).body, BodyFraming::None);
    let buf = resp("0", &[]);
    assert_eq!(ok_after(&buf, true).body, BodyFraming::None);
    let buf = b"HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(ok(buf).body, BodyFraming::Length(0));
}

#[test]
fn content_length() {
    let head = ok(&resp("1", &["Content-Length: 12"]));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::Length(12), true)
    );
    let head = ok(&resp("1", &["Content-Length: 12", "Content-Length: 12"]));
    assert_eq!(head.body, BodyFraming::Length(12));
    assert_eq!(
        ok(&resp("1", &["Content-Length: 12, 12"])).body,
        BodyFraming::Length(12)
    );
    for bad in [
        "12, 13",
        "+12",
        "-1",
        "0x10",
        "",
        "1 2",
        "99999999999999999999",
    ] {
        let buf = resp("1", &[&format!("Content-Length: {bad}")]);
        assert!(matches!(err(&buf), HeadError::Smuggling(_)), "{bad}");
    }
    let buf = resp("1", &["Content-Length: 1", "Content-Length: 2"]);
    assert_eq!(
        err(&buf),
        HeadError::Smuggling("conflicting Content-Length values")
    );
}

#[test]
fn no_framing_reads_until_close() {
    let head = ok(&resp("1", &[]));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::UntilClose, false)
    );
    let head = ok(&resp("0", &["Connection: keep-alive"]));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::UntilClose, false)
    );
}

#[test]
fn transfer_encoding() {
    let head = ok(&resp("1", &["Transfer-Encoding: chunked"]));
    assert_eq!((head.body, head.keep_alive), (BodyFraming::Chunked, true));
    let head = ok(&resp("1", &["Transfer-Encoding: gzip, Chunked"]));
    assert_eq!((head.body, head.keep_alive), (BodyFraming::Chunked, true));
    let head = ok(&resp(
        "1",
        &["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
    ));
    assert_eq!(head.body, BodyFraming::Chunked);
    let head = ok(&resp("1", &["Transfer-Encoding: chunked, gzip"]));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::UntilClose, false)
    );
    let head = ok(&resp("1", &["Transfer-Encoding: gzip"]));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::UntilClose, false)
    );
    for bad in ["chunked, chunked", ""] {
        let buf = resp("1", &[&format!("Transfer-Encoding: {bad}")]);
        assert!(matches!(err(&buf), HeadError::Smuggling(_)), "{bad:?}");
    }
    let buf = resp("0", &["Transfer-Encoding: chunked"]);
    assert_eq!(
        err(&buf),
        HeadError::Smuggling("Transfer-Encoding on HTTP/1.0")
    );
}

#[test]
fn transfer_encoding_wins_over_content_length_and_closes() {
    let head = ok(&resp(
        "1",
        &["Content-Length: 5", "Transfer-Encoding: chunked"],
    ));
    assert_eq!((head.body, head.keep_alive), (BodyFraming::Chunked, false));
    let head = ok(&resp(
        "1",
        &["Transfer-Encoding: gzip", "Content-Length: 5"],
    ));
    assert_eq!(
        (head.body, head.keep_alive),
        (BodyFraming::UntilClose, false)
    );
}

#[test]
fn keep_alive() {
    assert!(!ok(&resp("1", &["Content-Length: 0", "Connection: close"])).keep_alive);
    assert!(!ok(&resp("0", &["Content-Length: 0"])).keep_alive);
    assert!(ok(&resp("0", &["Content-Length: 0", "Connection: Keep-Alive"])).keep_alive);
    let buf = resp("1", &["Content-Length: 0", "Connection: x-a, Close"]);
    let head = ok(&buf);
    assert!(!head.keep_alive);
    let tokens: Vec<&[u8]> = head
        .connection_tokens
        .iter()
        .map(|&s| slice(&buf, s))
        .collect();
    assert_eq!(tokens, [&b"x-a"[..], b"Close"]);
}

#[test]
fn syntax_refusals() {
    let folded = b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(err(folded), HeadError::Malformed("obsolete line folding"));
    let bare = b"HTTP/1.1 200 OK\nContent-Length: 0\n\n";
    assert_eq!(err(bare), HeadError::Malformed("bare LF line ending"));
    assert!(matches!(
        err(b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        err(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        err(b"HTTP/1.1 099 Low\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        err(b"HTTP/1.1 20 OK\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        err(b"HTTP/1.1 2000 OK\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        err(b"HTTX/1.1 200 OK\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert_eq!(err(b"HTTP/2 200 OK\r\n\r\n"), HeadError::UnsupportedVersion);
    assert_eq!(
        err(b"HTTP/1.2 200 OK\r\n\r\n"),
        HeadError::UnsupportedVersion
    );
}

#[test]
fn limits() {
    let limits = Limits {
        max_header_bytes: 32,
        max_headers: 1,
        ..Limits::default()
    };
    let buf = b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n";
    assert!(matches!(parse_response(buf, false, &limits), Ok(Some(_))));
    let buf = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_eq!(
        parse_response(buf, false, &limits),
        Err(HeadError::TooManyHeaders)
    );
    let buf = b"HTTP/1.1 200 OK\r\nA: 1234567890123456\r\n\r\n";
    assert_eq!(
        parse_response(buf, false, &limits),
        Err(HeadError::TooLarge)
    );
    assert_eq!(parse_response(&buf[..31], false, &limits), Ok(None));
}

#[test]
fn back_to_back_responses() {
    let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    let first = ok(buf);
    assert_eq!((first.status, first.body), (100, BodyFraming::None));
    let rest = &buf[first.head_len..];
    let second = ok(rest);
    assert_eq!((second.status, second.body), (200, BodyFraming::Length(1)));
}

#[test]
fn byte_by_byte_feeding_agrees_with_the_whole() {
    let cases: [&[u8]; 7] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nbody",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n",
        b"HTTP/1.1 200 OK\nX: a\r\n\r\n",
        b"HTTP/3.0 200 OK\r\n\r\n",
    ];
    for case in cases {
        assert_prefixes_agree(case, false);
        assert_prefixes_agree(case, true);
    }
}

#[test]
fn randomized_mutations_never_panic_and_prefixes_agree() {
    let seeds: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello",
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.0 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    ];
    let alphabet = b"\r\n :,;\t\0HTTP/1.10chunked-Content-Length";
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..3000 {
        let mut buf = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(buf.len());
            match rng.below(3) {
                0 => buf[at] = alphabet[rng.below(alphabet.len())],
                1 => buf.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => {
                    buf.remove(at);
                }
            }
        }
        let head_request = rng.below(2) == 0;
        if let Ok(Some(head)) = parse_response(&buf, head_request, &Limits::default()) {
            assert_invariants(&buf, &head);
        }
        assert_prefixes_agree(&buf, head_request);
    }
}
