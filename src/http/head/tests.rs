//! Request-head tests: the framing rules each with a positive and a negative case, syntax
//! refusals, limits, incremental feeding and pipelining, a randomized run and a replay of
//! the fuzz seed corpus.

use super::*;
use crate::http::testing::{self, Rng};

fn parse(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    parse_request(buf, &Limits::default())
}

fn ok(buf: &[u8]) -> RequestHead {
    match parse(buf) {
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

fn err(buf: &[u8]) -> HeadError {
    match parse(buf) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// A request with the given extra field lines (each without CRLF).
fn req(fields: &[&str]) -> Vec<u8> {
    let mut out = b"POST /p HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    for f in fields {
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn smuggling(buf: &[u8]) {
    assert!(
        matches!(err(buf), HeadError::Smuggling(_)),
        "{:?}",
        String::from_utf8_lossy(buf)
    );
}

fn malformed(buf: &[u8]) {
    assert!(
        matches!(err(buf), HeadError::Malformed(_)),
        "{:?}",
        String::from_utf8_lossy(buf)
    );
}

/// Offsets stay inside the head, which stays inside the buffer.
fn assert_invariants(buf: &[u8], head: &RequestHead) {
    let len = head.head_len;
    assert!(len <= buf.len());
    let inside = |(a, b): (u32, u32)| assert!(a <= b && b as usize <= len, "{a}..{b} of {len}");
    inside(head.target);
    head.host.map(inside);
    head.connection_tokens.iter().copied().for_each(inside);
    for h in &head.headers {
        inside(h.name);
        inside(h.value);
    }
    assert_ne!(head.body, BodyFraming::UntilClose);
    if head.path(buf).first() == Some(&b'/') {
        assert_eq!(head.uri(buf).first(), Some(&b'/'));
    }
}

#[test]
fn the_routed_path_is_normalised() {
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
    let buf = get("/a/b?x=../y");
    let head = ok(&buf);
    assert_eq!(head.normalized, None, "a normal path is not copied");
    assert_eq!(head.uri(&buf), b"/a/b");
    for (target, uri, query) in [
        ("/pub/../admin?q=%2e%2e", "/admin", Some("q=%2e%2e")),
        ("/pub/%2e%2e/admin", "/admin", None),
        ("//pub//x/./y/", "/pub/x/y/", None),
        ("/x%20y?", "/x y", Some("")),
        ("http://h/a/../b?c", "/b", Some("c")),
        ("http://h", "/", None),
    ] {
        let buf = get(target);
        let head = ok(&buf);
        assert_eq!(head.uri(&buf), uri.as_bytes(), "{target}");
        assert_eq!(head.query(&buf), query.map(str::as_bytes), "{target}");
    }
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(ok(buf).uri(buf), b"*");
    for target in [
        "/..",
        "/a/../../b",
        "/a%2fb",
        "/a\\b",
        "/a%00",
        "/a%g0",
        "http://h/../x",
    ] {
        assert!(matches!(err(&get(target)), HeadError::Path(_)), "{target}");
    }
    assert_eq!(err(&get("/..")).status(), 400);
}

fn assert_prefixes_agree(buf: &[u8]) {
    testing::assert_prefixes_agree(buf, parse);
}

#[test]
fn simple_get() {
    let buf = b"GET /users/1?active=true&x=%20 HTTP/1.1\r\nHost: Example.com:9080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n";
    let head = ok(buf);
    assert_eq!(head.method, Method::GET);
    assert_eq!(slice(buf, head.target), b"/users/1?active=true&x=%20");
    assert_eq!(head.version, 1);
    assert_eq!(head.headers.len(), 3);
    assert_eq!(head.headers[1].name(buf), b"User-Agent");
    assert_eq!(head.headers[1].value(buf), b"t");
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.body, BodyFraming::None);
    assert!(head.keep_alive && !head.expect_continue && !head.upgrade);
    assert_eq!(
        head.host.map(|s| slice(buf, s)),
        Some(&b"Example.com:9080"[..])
    );
    assert_eq!(head.path(buf), b"/users/1");
    assert_eq!(head.query(buf), Some(&b"active=true&x=%20"[..]));
    assert_eq!(head.header(buf, "user-agent"), Some(&b"t"[..]));
    assert_eq!(head.header(buf, "ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(head.header(buf, "missing"), None);
    assert_eq!(head.host_name(buf), Some(&b"Example.com"[..]));
}

#[test]
fn header_returns_the_first_value() {
    let buf = req(&["X-A: 1", "x-a: 2", "X-Empty:"]);
    let head = ok(&buf);
    assert_eq!(head.header(&buf, "X-A"), Some(&b"1"[..]));
    assert_eq!(head.header(&buf, "x-empty"), Some(&b""[..]));
}

#[test]
fn absolute_form_takes_host_from_the_target() {
    let buf = b"GET http://api.example:8080/v1/x?q=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    let head = ok(buf);
    assert_eq!(head.path(buf), b"/v1/x");
    assert_eq!(head.query(buf), Some(&b"q=1"[..]));
    assert_eq!(head.host_name(buf), Some(&b"api.example"[..]));
    assert_eq!(head.authority(buf), Some(&b"api.example:8080"[..]));
    let buf = b"GET /v1 HTTP/1.1\r\nHost: other:81\r\n\r\n";
    assert_eq!(ok(buf).authority(buf), Some(&b"other:81"[..]));
    let buf = b"GET http://api.example HTTP/1.1\r\nHost: api.example\r\n\r\n";
    assert_eq!(ok(buf).path(buf), b"/");
}

#[test]
fn ipv6_host_keeps_brackets() {
    let buf = b"GET / HTTP/1.1\r\nHost: [::1]:9080\r\n\r\n";
    assert_eq!(ok(buf).host_name(buf), Some(&b"[::1]"[..]));
}

#[test]
fn other_target_forms() {
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(ok(buf).path(buf), b"*");
    let buf = b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n";
    assert_eq!(ok(buf).method, Method::CONNECT);
    malformed(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn pipelined_requests_are_found_by_head_len() {
    let first = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    let second = b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    let buf = [first.clone(), second.to_vec()].concat();
    let a = ok(&buf);
    assert_eq!(a.body, BodyFraming::Length(3));
    assert_eq!(a.head_len, first.len() - 3);
    let rest = &buf[a.head_len + 3..];
    let b = ok(rest);
    assert_eq!(b.path(rest), b"/b");
    assert_eq!(b.head_len, second.len());
}

#[test]
fn leading_empty_lines_are_skipped_up_to_a_few() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = ok(buf);
    assert_eq!(head.head_len, buf.len());
    assert_eq!(slice(buf, head.target), b"/");
    malformed(b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn content_length_framing() {
    assert_eq!(
        ok(&req(&["Content-Length: 5"])).body,
        BodyFraming::Length(5)
    );
    assert_eq!(
        ok(&req(&["content-length:   42  "])).body,
        BodyFraming::Length(42)
    );
    assert_eq!(
        ok(&req(&["Content-Length: 0"])).body,
        BodyFraming::Length(0)
    );
    assert_eq!(
        ok(&req(&["Content-Length: 007"])).body,
        BodyFraming::Length(7)
    );
    let max = format!("Content-Length: {}", u64::MAX);
    assert_eq!(ok(&req(&[&max])).body, BodyFraming::Length(u64::MAX));
    for bad in [
        "+5",
        "-1",
        "5x",
        "0x5",
        "5 5",
        "1e3",
        "18446744073709551616",
        "",
        "5,",
    ] {
        smuggling(&req(&[&format!("Content-Length: {bad}")]));
    }
}

#[test]
fn duplicate_content_length_is_refused_even_when_equal() {
    smuggling(&req(&["Content-Length: 5", "Content-Length: 5"]));
    smuggling(&req(&["Content-Length: 5", "content-length: 6"]));
    smuggling(&req(&["Content-Length: 5, 5"]));
    smuggling(&req(&["Content-Length: 5,5"]));
}

#[test]
fn chunked_framing() {
    assert_eq!(
        ok(&req(&["Transfer-Encoding: chunked"])).body,
        BodyFraming::Chunked
    );
    assert_eq!(
        ok(&req(&["transfer-encoding: Chunked"])).body,
        BodyFraming::Chunked
    );
    assert_eq!(
        ok(&req(&["Transfer-Encoding:  chunked  "])).body,
        BodyFraming::Chunked
    );
}

#[test]
fn transfer_encoding_other_than_plain_chunked_is_refused() {
    for te in [
        "gzip, chunked",
        "chunked, chunked",
        "identity",
        "xchunked",
        "chunkedx",
        "chunked;x",
        "chunked ;q=1",
        "",
        "chunked,",
        ", chunked",
        "\"chunked\"",
    ] {
        smuggling(&req(&[&format!("Transfer-Encoding: {te}")]));
    }
    smuggling(&req(&[
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked",
    ]));
    smuggling(&req(&[
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: chunked",
    ]));
}

#[test]
fn transfer_encoding_with_content_length_is_refused() {
    smuggling(&req(&["Content-Length: 5", "Transfer-Encoding: chunked"]));
    smuggling(&req(&["Transfer-Encoding: chunked", "Content-Length: 0"]));
    assert_eq!(
        err(&req(&["Transfer-Encoding: chunked", "Content-Length: 5"])),
        HeadError::Smuggling("Transfer-Encoding with Content-Length")
    );
}

#[test]
fn transfer_encoding_on_http10_is_refused() {
    let buf = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        err(buf),
        HeadError::Smuggling("Transfer-Encoding on HTTP/1.0")
    );
    let buf = b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(ok(buf).body, BodyFraming::Length(2));
}

#[test]
fn obsolete_line_folding_is_refused() {
    let fold = HeadError::Malformed("obsolete line folding");
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"),
        fold
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n"),
        fold
    );
    // The folded line could hide a second Content-Length from one reader but not another.
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: h\r\nX: a\r\n Content-Length: 5\r\n\r\n"),
        fold
    );
    malformed(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n");
}

#[test]
fn whitespace_before_colon_is_refused() {
    malformed(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    malformed(&req(&["Content-Length : 5"]));
    malformed(&req(&["Transfer-Encoding\t: chunked"]));
}

#[test]
fn control_bytes_in_values_are_refused() {
    malformed(&req(&["X-A: a\0b"]));
    malformed(&req(&["X-A: a\rb"]));
    malformed(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n");
    assert_eq!(ok(&req(&["X-A: a\tb \u{e9}"])).headers.len(), 2);
}

#[test]
fn bare_lf_is_refused() {
    let bare = HeadError::Malformed("bare LF line ending");
    assert_eq!(err(b"GET / HTTP/1.1\nHost: h\r\n\r\n"), bare);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"), bare);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: h\r\n\n"), bare);
    assert_eq!(err(b"GET / HTTP/1.1\nHost: h\n\n"), bare);
}

#[test]
fn host_rules() {
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), HeadError::MissingHost);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nX: y\r\n\r\n"),
        HeadError::MissingHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        HeadError::DuplicateHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        HeadError::DuplicateHost
    );
    let head = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((head.host, head.version), (None, 0));
    let empty = b"GET / HTTP/1.1\r\nHost:\r\n\r\n";
    assert_eq!(ok(empty).host_name(empty), None);
    malformed(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
    malformed(b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n");
}

#[test]
fn methods() {
    assert_eq!(
        ok(b"PURGE / HTTP/1.1\r\nHost: h\r\n\r\n").method.as_str(),
        "PURGE"
    );
    malformed(b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    malformed(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn versions() {
    assert_eq!(
        err(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
        HeadError::UnsupportedVersion
    );
    assert_eq!(
        err(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
        HeadError::UnsupportedVersion
    );
    assert_eq!(
        err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        HeadError::UnsupportedVersion
    );
    malformed(b"GET / HTTP/1.1x\r\nHost: h\r\n\r\n");
    malformed(b"GET / HTTPS/1.1\r\nHost: h\r\n\r\n");
    malformed(b"GET /\r\n\r\n");
}

#[test]
fn keep_alive() {
    assert!(ok(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive);
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
    assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(!ok(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

#[test]
fn expect_continue() {
    assert!(ok(&req(&["Expect: 100-continue"])).expect_continue);
    assert!(ok(&req(&["expect: 100-Continue"])).expect_continue);
    assert!(!ok(&req(&["Expect: 200-ok"])).expect_continue);
    assert!(!ok(&req(&[])).expect_continue);
    assert!(!ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

#[test]
fn upgrade_needs_the_connection_token() {
    assert!(ok(&req(&["Upgrade: websocket", "Connection: Upgrade"])).upgrade);
    assert!(ok(&req(&["Connection: keep-alive, upgrade", "Upgrade: h2c"])).upgrade);
    assert!(!ok(&req(&["Upgrade: websocket"])).upgrade);
    assert!(!ok(&req(&["Connection: upgrade"])).upgrade);
    let buf = b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
    assert!(!ok(buf).upgrade);
}

#[test]
fn connection_tokens_name_hop_by_hop_fields() {
    let buf = req(&["Connection: close, X-Internal", "X-Internal: secret"]);
    let head = ok(&buf);
    let tokens: Vec<&[u8]> = head
        .connection_tokens
        .iter()
        .map(|&s| slice(&buf, s))
        .collect();
    assert_eq!(tokens, [&b"close"[..], b"X-Internal"]);
    assert!(!head.keep_alive);
}

#[test]
fn size_limit() {
    let limits = Limits {
        max_header_bytes: 64,
        ..Limits::default()
    };
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nX: ";
    let pad = |n: usize| [&head[..], &b"a".repeat(n), b"\r\n\r\n"].concat();
    let exact = pad(64 - head.len() - 4);
    assert_eq!(exact.len(), 64);
    assert!(matches!(parse_request(&exact, &limits), Ok(Some(_))));
    let over = pad(64 - head.len() - 3);
    assert_eq!(parse_request(&over, &limits), Err(HeadError::TooLarge));
    assert_eq!(parse_request(&over[..63], &limits), Ok(None));
    assert_eq!(
        parse_request(&over[..64], &limits),
        Err(HeadError::TooLarge)
    );
    assert_eq!(
        parse_request(&b"\r\n".repeat(40), &limits),
        Err(HeadError::Malformed(
            "too many empty lines before the start line"
        ))
    );
    let zero = Limits {
        max_header_bytes: 0,
        ..Limits::default()
    };
    assert_eq!(parse_request(b"", &zero), Err(HeadError::TooLarge));
}

#[test]
fn body_after_a_head_does_not_count_toward_the_limit() {
    let limits = Limits {
        max_header_bytes: 40,
        ..Limits::default()
    };
    let buf = [&b"POST / HTTP/1.1\r\nHost: h\r\n\r\n"[..], &[b'x'; 100]].concat();
    assert!(matches!(parse_request(&buf, &limits), Ok(Some(_))));
}

#[test]
fn header_count_limit() {
    let limits = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    let three = req(&["A: 1", "B: 2"]);
    assert!(matches!(parse_request(&three, &limits), Ok(Some(_))));
    let four = req(&["A: 1", "B: 2", "C: 3"]);
    assert_eq!(
        parse_request(&four, &limits),
        Err(HeadError::TooManyHeaders)
    );
    let fields: Vec<String> = (0..99).map(|i| format!("X-{i}: v")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    assert_eq!(ok(&req(&fields)).headers.len(), 100);
    let fields: Vec<String> = (0..100).map(|i| format!("X-{i}: v")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    assert_eq!(err(&req(&fields)), HeadError::TooManyHeaders);
}

#[test]
fn header_count_above_the_stack_slots() {
    let limits = Limits {
        max_headers: 300,
        ..Limits::default()
    };
    let fields: Vec<String> = (0..250).map(|i| format!("X-{i}: v")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let buf = req(&fields);
    let head = parse_request(&buf, &limits);
    assert!(
        matches!(head, Ok(Some(ref h)) if h.headers.len() == 251),
        "{head:?}"
    );
    let huge = Limits {
        max_headers: usize::MAX,
        ..Limits::default()
    };
    assert!(matches!(parse_request(&buf, &huge), Ok(Some(_))));
}

#[test]
fn byte_by_byte_feeding_agrees_with_the_whole() {
    let cases: [&[u8]; 10] = [
        b"GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        b"\r\nPOST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: h\n\n",
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
        b"G\0T / HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        assert_prefixes_agree(case);
    }
}

#[test]
fn randomized_mutations_never_panic_and_prefixes_agree() {
    let seeds: [&[u8]; 4] = [
        b"GET /a?b HTTP/1.1\r\nHost: h:1\r\nConnection: keep-alive, x\r\n\r\n",
        b"POST http://h/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        b"PUT / HTTP/1.0\r\nContent-Length: 10\r\n\r\n0123456789",
        b"OPTIONS * HTTP/1.1\r\nHost: [::1]\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n",
    ];
    let alphabet = b"\r\n :,;\t\0HTTP/1.10chunked-Content-Length";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
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
        if let Ok(Some(head)) = parse(&buf) {
            assert_invariants(&buf, &head);
        }
        assert_prefixes_agree(&buf);
    }
}

#[test]
fn fuzz_seed_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_http_head");
    let entries = std::fs::read_dir(dir).expect("the seed corpus is committed");
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("a readable corpus entry").path();
        let buf = std::fs::read(&path).expect("a readable corpus file");
        if let Ok(Some(head)) = parse(&buf) {
            assert_invariants(&buf, &head);
        }
        assert_prefixes_agree(&buf);
        for request_was_head in [false, true] {
            testing::assert_prefixes_agree(&buf, |b| {
                crate::http::parse_response(b, request_was_head, &Limits::default())
            });
        }
        replayed += 1;
    }
    assert!(replayed > 0);
}
