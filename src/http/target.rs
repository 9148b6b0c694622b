//! The request-target and the authority: [`classify`] checks the target against the four
//! forms of RFC 9112 §3.2 and [`valid_host`] checks a `Host` value; [`path`], [`query`] and
//! [`host_name`] split them for the router.
//!
//! A target with a fragment, a userinfo part or a scheme other than `http`/`https` is
//! refused: each is a classic way to make the gateway and the upstream route the same
//! request differently.

use super::HeadError;
use http::Method;

/// Which of the four request-target forms a target is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `/path?query`
    Origin,
    /// `http://authority/path?query`
    Absolute,
    /// `host:port`, CONNECT only.
    Authority,
    /// `*`, OPTIONS only.
    Asterisk,
}

/// Checks `target` for `method` and tells its form.
pub(crate) fn classify(method: &Method, target: &[u8]) -> Result<Form, HeadError> {
    if target.contains(&b'#') {
        return Err(HeadError::Malformed("fragment in request-target"));
    }
    let form = if *method == Method::CONNECT {
        match split_host_port(target) {
            Some((host, Some(port))) if !host.is_empty() && !port.is_empty() => Form::Authority,
            _ => return Err(HeadError::Malformed("CONNECT needs host:port")),
        }
    } else if target.first() == Some(&b'/') {
        Form::Origin
    } else if target == b"*" {
        if *method != Method::OPTIONS {
            return Err(HeadError::Malformed("asterisk-form without OPTIONS"));
        }
        Form::Asterisk
    } else {
        match absolute_authority(target) {
            Some(authority) if !authority.is_empty() && valid_authority(authority) => {
                Form::Absolute
            }
            _ => return Err(HeadError::Malformed("invalid request-target")),
        }
    };
    if form == Form::Authority && !valid_authority(target) {
        return Err(HeadError::Malformed("invalid request-target"));
    }
    Ok(form)
}

/// The authority of an absolute-form target with an `http` or `https` scheme.
fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = target.get(..sep)?;
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let rest = target.get(sep + 3..)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    rest.get(..end)
}

/// Splits `host[:port]`, keeping the brackets of an IP literal. `None` when a bracketed
/// host is not closed or is followed by something other than `:port`.
fn split_host_port(authority: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_end = if authority.first() == Some(&b'[') {
        authority.iter().position(|&b| b == b']')? + 1
    } else {
        authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] => Some((host, Some(port))),
        _ => None,
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2) with no userinfo; an empty host is allowed
/// here (an empty Host is valid), callers that need a host check for it.
fn valid_authority(authority: &[u8]) -> bool {
    let Some((host, port)) = split_host_port(authority) else {
        return false;
    };
    let host_ok = match host {
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        _ => host.iter().all(|&b| is_reg_name_char(b)),
    };
    host_ok && port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

/// unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2).
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// Whether `value` is a valid `Host` field value.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    valid_authority(value)
}

/// The path of `target`: up to `?`; for absolute-form the part after the authority, `/`
/// when empty; authority-form and asterisk-form targets are returned whole.
pub(crate) fn path(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    let before_query = &target[..end];
    if before_query.first() == Some(&b'/') {
        return before_query;
    }
    match absolute_authority(target) {
        Some(authority) => {
            let skip = scheme_len(target) + 3 + authority.len();
            match before_query.get(skip..) {
                Some(path) if !path.is_empty() => path,
                _ => b"/",
            }
        }
        None => before_query,
    }
}

fn scheme_len(target: &[u8]) -> usize {
    target
        .windows(3)
        .position(|w| w == b"://")
        .unwrap_or_default()
}

/// The query of `target`: after the first `?`, possibly empty; `None` without a `?`.
pub(crate) fn query(target: &[u8]) -> Option<&[u8]> {
    let q = target.iter().position(|&b| b == b'?')?;
    target.get(q + 1..)
}

/// The authority the request is for, port included: an absolute-form target's (RFC 9112
/// §3.2.2: the Host field is then ignored), else the `Host` value.
pub(crate) fn authority<'a>(target: &'a [u8], host_field: Option<&'a [u8]>) -> Option<&'a [u8]> {
    absolute_authority(target).or(host_field)
}

/// The host the request is for, without the port: from an absolute-form target if there is
/// one (RFC 9112 §3.2.2: the Host field is then ignored), else from the `Host` value.
/// `None` when that host is empty.
pub(crate) fn host_name<'a>(target: &'a [u8], host_field: Option<&'a [u8]>) -> Option<&'a [u8]> {
    let (host, _) = split_host_port(authority(target, host_field)?)?;
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_follow_the_method() {
        let ok = |m: Method, t: &[u8]| classify(&m, t);
        assert_eq!(ok(Method::GET, b"/a?b"), Ok(Form::Origin));
        assert_eq!(ok(Method::GET, b"//a"), Ok(Form::Origin));
        assert_eq!(ok(Method::GET, b"http://h:80/p"), Ok(Form::Absolute));
        assert_eq!(ok(Method::GET, b"HTTPS://h"), Ok(Form::Absolute));
        assert_eq!(ok(Method::OPTIONS, b"*"), Ok(Form::Asterisk));
        assert_eq!(ok(Method::CONNECT, b"h:443"), Ok(Form::Authority));
        assert_eq!(ok(Method::CONNECT, b"[::1]:443"), Ok(Form::Authority));
        for (m, t) in [
            (Method::GET, &b"*"[..]),
            (Method::GET, b"a/b"),
            (Method::GET, b"/a#frag"),
            (Method::GET, b"ftp://h/"),
            (Method::GET, b"http:///p"),
            (Method::GET, b"http://user@h/"),
            (Method::GET, b"h:443"),
            (Method::CONNECT, b"/"),
            (Method::CONNECT, b"h"),
            (Method::CONNECT, b"h:"),
            (Method::CONNECT, b"h:x"),
        ] {
            assert!(classify(&m, t).is_err(), "{m} {t:?}");
        }
    }

    #[test]
    fn hosts_are_checked() {
        for good in [
            &b""[..],
            b"example.com",
            b"a_b.example:8080",
            b"[::1]",
            b"[::1]:80",
            b"h:",
        ] {
            assert!(valid_host(good), "{good:?}");
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"u@h",
            b"[::1",
            b"[::1]x",
            b"h:1:2",
            b"[]",
            b"h:8x",
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
    }

    #[test]
    fn path_and_query_split_every_form() {
        assert_eq!(path(b"/a/b?c=d"), b"/a/b");
        assert_eq!(query(b"/a/b?c=d"), Some(&b"c=d"[..]));
        assert_eq!(query(b"/a?"), Some(&b""[..]));
        assert_eq!(query(b"/a"), None);
        assert_eq!(path(b"http://h:1/p?q"), b"/p");
        assert_eq!(query(b"http://h:1/p?q"), Some(&b"q"[..]));
        assert_eq!(path(b"http://h"), b"/");
        assert_eq!(path(b"http://h?q"), b"/");
        assert_eq!(path(b"*"), b"*");
        assert_eq!(path(b"h:443"), b"h:443");
    }

    #[test]
    fn host_name_drops_the_port() {
        assert_eq!(
            host_name(b"/", Some(b"Example.com:8080")),
            Some(&b"Example.com"[..])
        );
        assert_eq!(host_name(b"/", Some(b"[::1]:8080")), Some(&b"[::1]"[..]));
        assert_eq!(host_name(b"/", Some(b"")), None);
        assert_eq!(host_name(b"/", None), None);
        assert_eq!(host_name(b"http://a:1/x", Some(b"b")), Some(&b"a"[..]));
    }
}
