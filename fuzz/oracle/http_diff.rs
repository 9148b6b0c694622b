//! The oracle of `fuzz_http_diff`: our request-head parser (`parse_request`, which wraps
//! httparse and adds the checks a proxy needs) against httparse's own verdict on the same
//! bytes, with the same number of header slots. Shared by the fuzz target and by
//! `tests/http_diff.rs`, which replays the committed corpora through it.
//!
//! Invariants (any break is a finding):
//! - **We never accept what httparse refuses**, and never accept a head httparse finds
//!   incomplete: a gateway that reads a message differently from a strict parser is where
//!   smuggling starts.
//! - **When both accept, they agree**: same head length, method, request-target, version, and
//!   the same header fields in the same order (names byte for byte, values once surrounding
//!   whitespace is trimmed, which HTTP says is not part of the value).
//! - **When httparse accepts and we refuse, the reason is one we chose to be stricter on**:
//!   every such reason is in [`STRICTER`], with why. Any other refusal of a head httparse
//!   accepts is a finding (we would be turning away valid traffic for no stated reason).

use portcullis::http::{parse_request, HeadError, Limits};

/// Our `Malformed` refusals of heads httparse accepts, each a deliberate choice. Besides these,
/// whole classes are stricter by construction ([`stricter_variant`]): ambiguous framing (RFC
/// 9112 §6.3: CL with TE, duplicate or invalid lengths, unknown codings), a missing or
/// duplicate Host (§3.2: MUST answer 400), paths that cannot be normalised safely (dot
/// segments escaping the root, encoded NUL or separators: routing must see what the upstream
/// sees), HTTP versions other than 1.0 and 1.1 (505), and heads over the size limit (431).
pub const STRICTER: &[(&str, &str)] = &[
    ("bare LF line ending", "RFC 9112 §2.2 allows it, but a proxy that accepts what its upstream parses differently invites smuggling"),
    ("bare CR or LF before the start line", "same reason, before the request line"),
    ("too many empty lines before the start line", "RFC 9112 §2.2 asks to ignore at least one empty line; a bound keeps a client from streaming blank lines forever"),
    ("invalid method", "a method the http crate cannot hold"),
    ("invalid request-target", "not origin-, absolute-, authority- or asterisk-form"),
    ("invalid method or request-target", "the form does not fit the method"),
    ("CONNECT needs host:port", "RFC 9112 §3.2.3"),
    ("asterisk-form without OPTIONS", "RFC 9112 §3.2.4"),
    ("fragment in request-target", "RFC 9112 §3.2: not part of a request-target"),
    ("invalid Host header", "a Host that is not a valid authority cannot be routed on"),
    ("invalid header value", "control characters other than HTAB (RFC 9110 §5.5); httparse lets some through"),
    ("obsolete line folding", "RFC 9112 §5.2: a server MUST reject it or unfold it"),
    ("whitespace before the first header field", "RFC 9112 §2.2: MUST reject"),
];

/// `Ok(())` when `buf` satisfies every invariant, else the finding.
pub fn compare(buf: &[u8]) -> Result<(), String> {
    let limits = Limits::default();
    let ours = parse_request(buf, &limits);
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let theirs = req.parse(buf);
    match (&ours, &theirs) {
        (Ok(Some(head)), Ok(httparse::Status::Complete(n))) => {
            if head.head_len != *n {
                return Err(format!("head length: ours {} httparse {n}", head.head_len));
            }
            if Some(head.method.as_str()) != req.method {
                return Err(format!(
                    "method: ours {} httparse {:?}",
                    head.method, req.method
                ));
            }
            let target = &buf[head.target.0 as usize..head.target.1 as usize];
            if Some(target) != req.path.map(str::as_bytes) {
                return Err(format!("target: ours {target:?} httparse {:?}", req.path));
            }
            if Some(head.version) != req.version {
                return Err(format!(
                    "version: ours {} httparse {:?}",
                    head.version, req.version
                ));
            }
            if head.headers.len() != req.headers.len() {
                return Err(format!(
                    "header count: ours {} httparse {}",
                    head.headers.len(),
                    req.headers.len()
                ));
            }
            for (h, t) in head.headers.iter().zip(req.headers.iter()) {
                let name = &buf[h.name.0 as usize..h.name.1 as usize];
                let value = &buf[h.value.0 as usize..h.value.1 as usize];
                if name != t.name.as_bytes() {
                    return Err(format!("header name: ours {name:?} httparse {:?}", t.name));
                }
                if value.trim_ascii() != t.value.trim_ascii() {
                    return Err(format!(
                        "value of {}: ours {value:?} httparse {:?}",
                        t.name, t.value
                    ));
                }
            }
            Ok(())
        }
        (Ok(Some(_)), other) => Err(format!("we accepted a head httparse answers {other:?}")),
        (Err(e), Ok(httparse::Status::Complete(_))) => {
            let chosen = match e {
                HeadError::Malformed(m) => STRICTER.iter().any(|(why, _)| why == m),
                e => stricter_variant(e),
            };
            if chosen {
                Ok(())
            } else {
                Err(format!("we refused a head httparse accepts: {e}"))
            }
        }
        _ => Ok(()),
    }
}

/// Refusal classes that are stricter by construction, whatever their message.
fn stricter_variant(e: &HeadError) -> bool {
    matches!(
        e,
        HeadError::Smuggling(_)
            | HeadError::MissingHost
            | HeadError::DuplicateHost
            | HeadError::Path(_)
            | HeadError::UnsupportedVersion
            | HeadError::TooLarge
    )
}
