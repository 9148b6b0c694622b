//! Our request-head parser against httparse's own verdicts, through the `fuzz_http_diff`
//! oracle: every committed input of both head corpora (real requests, the classic smuggling
//! attempts, and every regression) replays without a finding, and each documented stricter
//! rule is exercised by a head httparse accepts and we refuse.

#[path = "../fuzz/oracle/http_diff.rs"]
mod http_diff;

use http_diff::compare;
use portcullis::http::{parse_request, Limits};

fn replay(dir: &str) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Inputs a running fuzzer adds (40 hex digits) are not committed; skip them, and any
        // file it removes while we list.
        if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        if let Err(finding) = compare(&bytes) {
            panic!("{}: {finding}", entry.path().display());
        }
        n += 1;
    }
    n
}

#[test]
fn committed_corpora_replay_without_a_finding() {
    let n = replay("fuzz/corpus/fuzz_http_head") + replay("fuzz/corpus/fuzz_http_diff");
    assert!(n >= 10, "only {n} committed inputs");
}

#[test]
fn stricter_rules_are_recognised_and_nothing_else_is() {
    // Each: a head httparse accepts, refused by us for a documented reason.
    let stricter: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for head in stricter {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let theirs = httparse::Request::new(&mut slots).parse(head);
        assert!(
            matches!(theirs, Ok(httparse::Status::Complete(_))),
            "{:?}: httparse should accept it, answered {theirs:?}",
            String::from_utf8_lossy(head)
        );
        assert!(
            parse_request(head, &Limits::default()).is_err(),
            "{:?}: we should refuse it",
            String::from_utf8_lossy(head)
        );
        assert_eq!(compare(head), Ok(()), "{:?}", String::from_utf8_lossy(head));
    }
    // Agreement on a plain head, field by field.
    let ok = b"GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*  \r\n\r\nrest";
    assert_eq!(compare(ok), Ok(()));
}
