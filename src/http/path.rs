//! The path the gateway routes on, and the path it sends upstream.
//!
//! APISIX routes on nginx's `$uri`, not on the raw request-target: `ngx_http_parse_complex_uri`
//! percent-decodes it, resolves `.` and `..` segments (a `..` above the root is a 400) and
//! merges runs of `/`. Routing on the raw path instead lets `/pub/../admin` match `/pub/*`
//! and reach a backend that resolves the `..` itself and serves `/admin`.
//!
//! [`normalize`] does what nginx does, with one deliberate difference: an encoded separator
//! (`%2F`, and a backslash raw or as `%5C`) is refused rather than decoded. nginx turns `%2F`
//! into a real `/` that then takes part in dot-segment resolution, so the gateway's idea of
//! the segments and the upstream's can differ: an upstream that keeps `%2F` as data inside a
//! segment (most frameworks do) sees one resource while the gateway routed another, and a
//! backend on Windows-style semantics treats `\` as a separator the gateway never saw. No
//! way of forwarding such a path keeps both sides in agreement, so it gets a 400.
//!
//! [`encode`] turns a normalised path back into a request-target for the upstream,
//! percent-encoding every byte outside RFC 3986 `pchar` and `/`, so an upstream that decodes
//! it once sees exactly the path that was routed (APISIX escapes `$uri` the same way).
//!
//! Both are zero-copy in the common case: a path that is already normal is checked in one
//! pass and left where it is.

use std::borrow::Cow;

/// Why a path was refused; each is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    #[error("invalid percent-encoding")]
    BadEscape,
    /// `%00`.
    #[error("encoded NUL")]
    Nul,
    /// `%2F`, `%5C` or a raw `\`: a separator the segment structure would not show.
    #[error("encoded slash or backslash")]
    Separator,
    /// A `..` segment above the root.
    #[error("path escapes the root")]
    EscapesRoot,
}

/// Bytes that stand for themselves in a normal path: `pchar` (RFC 3986 §3.3) without
/// `pct-encoded`, plus the `/` separator.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let extra = b"-._~!$&'()*+,;=:@/";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = true;
        }
        b += 1;
    }
    t
};

/// The normalised form of `raw`, a path as written in the request-target (no query).
///
/// `Ok(None)` when `raw` is already normal (the common case, no allocation) or is not a path
/// at all (the `host:port` of CONNECT, the `*` of OPTIONS): use `raw` as it is. `Ok(Some(p))`:
/// route on `p`, decoded bytes that start with `/`.
pub fn normalize(raw: &[u8]) -> Result<Option<Vec<u8>>, PathError> {
    if raw.first() != Some(&b'/') || is_normal(raw) {
        return Ok(None);
    }
    resolve(raw).map(Some)
}

/// Whether `raw` is its own normal form and its own upstream encoding: plain bytes only (so
/// no `%`), no empty segment but the last, no `.` or `..` segment.
fn is_normal(raw: &[u8]) -> bool {
    let mut seg_start = 1;
    for (i, &b) in raw.iter().enumerate().skip(1) {
        if !PLAIN[b as usize] {
            return false;
        }
        if b == b'/' {
            if matches!(&raw[seg_start..i], b"" | b"." | b"..") {
                return false;
            }
            seg_start = i + 1;
        }
    }
    !matches!(&raw[seg_start..], b"." | b"..")
}

/// Decodes and resolves `raw` (which starts with `/`) segment by segment.
fn resolve(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    // Whether the last segment ends the path in a directory (`/a/`, `/a/.`, `/a/b/..`).
    let mut trailing = false;
    for seg in raw[1..].split(|&b| b == b'/') {
        let start = out.len();
        out.push(b'/');
        decode_into(seg, &mut out)?;
        let name = &out[start + 1..];
        trailing = matches!(name, b"" | b"." | b"..");
        match name {
            b"" | b"." => out.truncate(start),
            b".." => {
                out.truncate(start);
                // Every `/` in `out` is a separator: decoded ones are refused.
                let parent = out
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(PathError::EscapesRoot)?;
                out.truncate(parent);
            }
            _ => {}
        }
    }
    if trailing || out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// Appends the percent-decoded `seg` to `out`.
fn decode_into(seg: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while i < seg.len() {
        let b = match seg[i] {
            b'%' => {
                let hex = |j: usize| seg.get(j).and_then(|&c| (c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(PathError::BadEscape);
                };
                i += 3;
                (hi << 4 | lo) as u8
            }
            b => {
                i += 1;
                b
            }
        };
        match b {
            0 => return Err(PathError::Nul),
            b'/' | b'\\' => return Err(PathError::Separator),
            _ => out.push(b),
        }
    }
    Ok(())
}

/// `path` (a normalised path) as a request-target path: every byte outside `pchar` and `/`
/// percent-encoded, `%` included. Borrowed when nothing needs encoding.
pub fn encode(path: &[u8]) -> Cow<'_, [u8]> {
    if path.iter().all(|&b| PLAIN[b as usize]) {
        return Cow::Borrowed(path);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(path.len() + 16);
    for &b in path {
        if PLAIN[b as usize] {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normal form of `raw`, as text for readable failures.
    fn norm(raw: &str) -> Result<String, PathError> {
        normalize(raw.as_bytes())
            .map(|n| String::from_utf8_lossy(n.as_deref().unwrap_or(raw.as_bytes())).into_owned())
    }

    #[test]
    fn normal_paths_are_left_in_place() {
        for raw in [
            "/",
            "/a",
            "/a/",
            "/a/b/c",
            "/pub/x.json",
            "/...",
            "/.well-known/jwks",
            "/a..b/..c/c..",
            "/a;v=1/b:c@d!$&'()*+,=~_-",
            "*",
            "example.com:443",
        ] {
            assert_eq!(normalize(raw.as_bytes()), Ok(None), "{raw}");
        }
    }

    #[test]
    fn table() {
        use PathError::*;
        let cases: &[(&str, Result<&str, PathError>)] = &[
            // Slashes merge, dot segments resolve (RFC 3986 §5.2.4, nginx's merge_slashes).
            ("//", Ok("/")),
            ("//admin", Ok("/admin")),
            ("/pub//x", Ok("/pub/x")),
            ("/pub///x//", Ok("/pub/x/")),
            ("/pub/./x", Ok("/pub/x")),
            ("/./", Ok("/")),
            ("/.", Ok("/")),
            ("/a/.", Ok("/a/")),
            ("/a/b/..", Ok("/a/")),
            ("/a/..", Ok("/")),
            ("/pub/../admin", Ok("/admin")),
            ("/pub/x/../../admin", Ok("/admin")),
            ("/a/b/../../c/./d/", Ok("/c/d/")),
            // Encoded dots are dots.
            ("/pub/%2e%2e/admin", Ok("/admin")),
            ("/pub/%2E%2E/admin", Ok("/admin")),
            ("/pub/.%2e/admin", Ok("/admin")),
            ("/pub/%2e/x", Ok("/pub/x")),
            ("/pub/%2e%2e%2e/x", Ok("/pub/.../x")),
            // Decoding.
            ("/pub/%61dmin", Ok("/pub/admin")),
            ("/pub/x%20y", Ok("/pub/x y")),
            ("/caf%C3%A9", Ok("/café")),
            ("/a%25b", Ok("/a%b")),
            ("/a%252e%252e/x", Ok("/a%2e%2e/x")),
            ("/a%3Fb%23c", Ok("/a?b#c")),
            ("/a%3Bb", Ok("/a;b")),
            ("/a|b", Ok("/a|b")),
            // Above the root.
            ("/..", Err(EscapesRoot)),
            ("/../admin", Err(EscapesRoot)),
            ("/pub/../../admin", Err(EscapesRoot)),
            ("/%2e%2e/admin", Err(EscapesRoot)),
            ("//../admin", Err(EscapesRoot)),
            ("/a/../..", Err(EscapesRoot)),
            // Encoded separators, NUL, broken escapes.
            ("/pub/..%2fadmin", Err(Separator)),
            ("/pub%2F..%2Fadmin", Err(Separator)),
            ("/a%2fb", Err(Separator)),
            ("/pub/..%5cadmin", Err(Separator)),
            ("/pub/..\\admin", Err(Separator)),
            ("/a%00b", Err(Nul)),
            ("/a%", Err(BadEscape)),
            ("/a%2", Err(BadEscape)),
            ("/a%zz", Err(BadEscape)),
            ("/a%%32%65", Err(BadEscape)),
            ("/a%2g", Err(BadEscape)),
        ];
        for (raw, want) in cases {
            let got = norm(raw);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{raw}");
        }
    }

    #[test]
    fn encoding_keeps_pchar_and_escapes_the_rest() {
        let cases: &[(&[u8], &str)] = &[
            (b"/a/b", "/a/b"),
            (b"/a;v=1/b:c@d!$&'()*+,=~_-.", "/a;v=1/b:c@d!$&'()*+,=~_-."),
            (b"/x y", "/x%20y"),
            (b"/a%b", "/a%25b"),
            (b"/a?b#c", "/a%3Fb%23c"),
            (b"/a|\"<>^`{}[]", "/a%7C%22%3C%3E%5E%60%7B%7D%5B%5D"),
            ("/café".as_bytes(), "/caf%C3%A9"),
            (b"/\x01\x7f\xff", "/%01%7F%FF"),
        ];
        for (path, want) in cases {
            assert_eq!(&*encode(path), want.as_bytes(), "{path:?}");
        }
        assert!(matches!(encode(b"/a/b"), Cow::Borrowed(_)));
    }

    /// What the upstream gets, normalised again, is what was routed.
    /// `n` encoded for the upstream and normalised again.
    fn round_trip(n: &[u8]) -> Vec<u8> {
        let sent = encode(n);
        let again = normalize(&sent).expect("an encoded normal path is valid");
        again.unwrap_or_else(|| sent.into_owned())
    }

    #[test]
    fn encoding_round_trips() {
        for raw in [
            "/pub/x%20y/../z",
            "/a%25b",
            "/a%3Fb%23c//d",
            "/caf%C3%A9/./%2e",
            "/a|b",
            "/%01%7F%FF",
            "/a/b",
        ] {
            let n = normalize(raw.as_bytes())
                .unwrap()
                .unwrap_or(raw.as_bytes().to_vec());
            assert_eq!(round_trip(&n), n, "{raw}");
        }
    }

    #[test]
    fn every_two_byte_path_is_handled() {
        // Exhaustive over short paths: no panic, and an accepted path's normal form starts
        // with `/` and survives the trip upstream.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let raw = [b'/', a, b];
                if let Ok(Some(n)) = normalize(&raw) {
                    assert_eq!(n.first(), Some(&b'/'));
                    assert_eq!(round_trip(&n), n, "{raw:?}");
                }
            }
        }
    }
}
