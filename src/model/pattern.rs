//! What a route matches on: [`UriPattern`] (a path or a path prefix) and [`HostPattern`] (a host
//! or a wildcard suffix), parsed from a route's `uri(s)` and `host(s)`.
//!
//! Known difference from APISIX: its radixtree also takes `:name` parameter segments and a `*`
//! in the middle of a path; here a uri is an exact path or a prefix ending in `*`, and anything else
//! is refused rather than matched differently.

use super::check::{Pattern, Str};

/// A route's `uri`: 1 to 4096 characters.
pub(crate) const URI: Str = Str::len(1, 4096);

/// A route's `host`, as APISIX's `host_def`: `^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$`.
pub(crate) const HOST: Str = Str {
    min: 0,
    max: usize::MAX,
    pattern: Some(Pattern {
        text: "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$",
        test: |s| {
            let rest = s.strip_prefix('*').unwrap_or(s);
            s == "*"
                || (!rest.is_empty()
                    && rest.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
                    }))
        },
    }),
};

/// How a route matches the request path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UriPattern {
    /// `/hello`: the path must be exactly this.
    Exact(String),
    /// `/api/*`: the path must start with this (here `/api/`); `/*` gives `/`, matching every path.
    Prefix(String),
}

impl UriPattern {
    /// Parses one `uri` of a route, already checked for length.
    pub fn parse(uri: &str) -> Result<UriPattern, String> {
        if !uri.starts_with('/') {
            return Err(format!("uri {uri:?}: must start with \"/\""));
        }
        let (path, prefix) = match uri.strip_suffix('*') {
            Some(path) => (path, true),
            None => (uri, false),
        };
        if path.contains('*') || path.split('/').any(|seg| seg.starts_with(':')) {
            return Err(format!(
                "uri {uri:?}: only exact paths and a trailing \"*\" prefix are supported"
            ));
        }
        Ok(if prefix {
            UriPattern::Prefix(path.to_owned())
        } else {
            UriPattern::Exact(path.to_owned())
        })
    }

    /// Whether `path` matches (the router does the same through its tables).
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            UriPattern::Exact(p) => p.as_bytes() == path,
            UriPattern::Prefix(p) => path.starts_with(p.as_bytes()),
        }
    }
}

/// How a route matches the request's host. Lower case; matched without regard to case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `api.example.com`.
    Exact(String),
    /// `*.example.com` holds `.example.com`: any host ending so (not `example.com` itself).
    /// A lone `*` holds the empty suffix and matches every host.
    Wildcard(String),
}

impl HostPattern {
    /// Parses one `host` of a route or service, already checked against [`HOST`].
    pub fn parse(host: &str) -> Result<HostPattern, String> {
        let lower = host.to_ascii_lowercase();
        match lower.strip_prefix('*') {
            None => Ok(HostPattern::Exact(lower)),
            Some(".") => Err(format!(
                "host {host:?}: a wildcard needs a domain after \"*.\""
            )),
            Some(suffix) => Ok(HostPattern::Wildcard(suffix.to_owned())),
        }
    }

    /// Whether `host` matches, in any case.
    pub fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h.as_bytes()),
            HostPattern::Wildcard(suffix) => {
                host.len() >= suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            UriPattern::parse("/hello"),
            Ok(UriPattern::Exact("/hello".into()))
        );
        assert_eq!(
            UriPattern::parse("/api/*"),
            Ok(UriPattern::Prefix("/api/".into()))
        );
        assert_eq!(UriPattern::parse("/*"), Ok(UriPattern::Prefix("/".into())));
        assert_eq!(
            UriPattern::parse("/a*"),
            Ok(UriPattern::Prefix("/a".into()))
        );
        assert_eq!(
            UriPattern::parse("hello"),
            Err("uri \"hello\": must start with \"/\"".into())
        );
        for bad in ["/a/*/b", "/a/:id", "/:id/*", "/**"] {
            let err = UriPattern::parse(bad).expect_err(bad);
            assert!(err.ends_with("only exact paths and a trailing \"*\" prefix are supported"));
        }
        // A colon inside a segment is an ordinary character.
        assert!(UriPattern::parse("/a:b").is_ok());
    }

    #[test]
    fn uri_matching() {
        let p = UriPattern::parse("/api*").expect("valid");
        assert!(p.matches(b"/api"));
        assert!(p.matches(b"/apis/x"));
        assert!(!p.matches(b"/ap"));
        assert!(UriPattern::parse("/x").expect("valid").matches(b"/x"));
    }

    #[test]
    fn host_rule() {
        for ok in ["a.com", "*.a.com", "*", "[::1]", "127.0.0.1", "A-b_c.d"] {
            assert!(HOST.check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a.*.com", "**", "http://a"] {
            assert!(HOST.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            HostPattern::parse("API.Example.com"),
            Ok(HostPattern::Exact("api.example.com".into()))
        );
        let w = HostPattern::parse("*.Example.com").expect("valid");
        assert_eq!(w, HostPattern::Wildcard(".example.com".into()));
        assert!(w.matches(b"a.EXAMPLE.com"));
        assert!(w.matches(b"a.b.example.com"));
        assert!(!w.matches(b"example.com"));
        assert!(HostPattern::parse("*.").is_err());
        let any = HostPattern::parse("*").expect("valid");
        assert!(any.matches(b"whatever"));
    }
}
