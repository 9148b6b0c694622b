//! Reading credentials out of a request, and removing them: query arguments, cookies and
//! `Bearer` header values.

/// Percent-decodes `raw` (and `+` as space, as form-encoded query strings do). Invalid escapes
/// are kept as written.
pub fn url_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Every value of query argument `name` (names compared after decoding), decoded, in order.
pub fn query_args<'q>(query: &'q [u8], name: &'q str) -> impl Iterator<Item = Vec<u8>> + 'q {
    query
        .split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .filter_map(move |pair| {
            let (k, v) = match pair.iter().position(|&c| c == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            (url_decode(k) == name.as_bytes()).then(|| url_decode(v))
        })
}

/// `query` without the arguments named `name`; other arguments are kept byte for byte.
pub fn query_without(query: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.len());
    for pair in query.split(|&c| c == b'&').filter(|p| !p.is_empty()) {
        let k = match pair.iter().position(|&c| c == b'=') {
            Some(eq) => &pair[..eq],
            None => pair,
        };
        if url_decode(k) == name.as_bytes() {
            continue;
        }
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(pair);
    }
    out
}

/// `(name, value)` of each cookie in one `Cookie` header value.
pub fn cookies(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&c| c == b';').filter_map(|part| {
        let part = trim(part);
        let eq = part.iter().position(|&c| c == b'=')?;
        Some((trim(&part[..eq]), trim(&part[eq + 1..])))
    })
}

/// The value of cookie `name` across `Cookie` header values.
pub fn cookie<'a>(headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a [u8]> {
    for h in headers {
        // nginx's `$cookie_NAME`, which both peers read, matches names ignoring case.
        if let Some((_, v)) = cookies(h).find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())) {
            return Some(v);
        }
    }
    None
}

/// The `Cookie` header rebuilt without cookie `name` (`None` when nothing is left). Other
/// cookies are kept byte for byte (APISIX rebuilds them through a regex that drops cookies
/// with characters such as `%` or `/`; we do not).
pub fn cookies_without<'a>(headers: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<String> {
    let mut out = Vec::new();
    for h in headers {
        for part in h.split(|&c| c == b';') {
            let part = trim(part);
            if part.is_empty() {
                continue;
            }
            let key = part
                .iter()
                .position(|&c| c == b'=')
                .map_or(part, |eq| trim(&part[..eq]));
            if key.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(part);
        }
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// Trims optional whitespace (spaces and tabs).
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(url_decode(b"a%20b+c"), b"a b c");
        assert_eq!(url_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(url_decode(b"%41"), b"A");
        assert_eq!(url_decode(b"100%"), b"100%");
    }

    #[test]
    fn query() {
        let q = b"foo=bar&jwt=a.b.c&hello=world&jwt=x";
        let v: Vec<_> = query_args(q, "jwt").collect();
        assert_eq!(v, vec![b"a.b.c".to_vec(), b"x".to_vec()]);
        assert_eq!(query_without(q, "jwt"), b"foo=bar&hello=world");
        assert_eq!(query_without(b"jwt=1", "jwt"), b"");
        assert_eq!(query_without(b"j%77t=1&a", "jwt"), b"a");
    }

    #[test]
    fn cookie_jar() {
        let h: [&[u8]; 2] = [b"a=1; jwt=tok; b=%2F", b"c=3"];
        assert_eq!(cookie(h.iter().copied(), "jwt"), Some(&b"tok"[..]));
        assert_eq!(cookie(h.iter().copied(), "c"), Some(&b"3"[..]));
        assert_eq!(cookie(h.iter().copied(), "x"), None);
        assert_eq!(
            cookies_without(h.iter().copied(), "jwt").as_deref(),
            Some("a=1; b=%2F; c=3")
        );
        let only: [&[u8]; 1] = [b"jwt=tok"];
        assert_eq!(cookies_without(only.iter().copied(), "jwt"), None);
        // Names match ignoring case, as nginx's `$cookie_NAME` does; the one read is the one
        // hidden.
        let upper: [&[u8]; 1] = [b"JWT=tok; Jwt2=x"];
        assert_eq!(cookie(upper.iter().copied(), "jwt"), Some(&b"tok"[..]));
        assert_eq!(cookie(upper.iter().copied(), "JWT2"), Some(&b"x"[..]));
        assert_eq!(
            cookies_without(upper.iter().copied(), "jwt").as_deref(),
            Some("Jwt2=x")
        );
    }
}
