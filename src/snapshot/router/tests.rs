use http::Method;

use super::*;

fn uri(p: &str) -> UriPattern {
    UriPattern::parse(p).expect("test uris are valid")
}

fn host(h: &str) -> HostPattern {
    HostPattern::parse(h).expect("test hosts are valid")
}

fn spec(uris: &[&str], hosts: &[&str], methods: &[Method], priority: i64) -> RouteSpec {
    RouteSpec {
        uris: uris.iter().map(|u| uri(u)).collect(),
        hosts: hosts.iter().map(|h| host(h)).collect(),
        methods: methods.to_vec(),
        priority,
    }
}

fn get(router: &Router, host: Option<&str>, path: &str) -> Option<usize> {
    router.find(host.map(str::as_bytes), path.as_bytes(), &Method::GET)
}

#[test]
fn exact_before_prefix_and_longer_prefix_first() {
    let r = Router::build(&[
        spec(&["/*"], &[], &[], 0),
        spec(&["/api/*"], &[], &[], 0),
        spec(&["/api/v1/*"], &[], &[], 0),
        spec(&["/api/v1/users"], &[], &[], 0),
        spec(&["/api"], &[], &[], 0),
    ]);
    assert_eq!(get(&r, None, "/api/v1/users"), Some(3));
    assert_eq!(get(&r, None, "/api/v1/users/1"), Some(2));
    assert_eq!(get(&r, None, "/api/v2"), Some(1));
    assert_eq!(get(&r, None, "/api"), Some(4));
    assert_eq!(get(&r, None, "/apix"), Some(0));
    assert_eq!(get(&r, None, "/"), Some(0));
    assert_eq!(get(&r, None, ""), None);
}

#[test]
fn prefix_without_slash_matches_bytes() {
    let r = Router::build(&[spec(&["/foo*"], &[], &[], 0)]);
    assert_eq!(get(&r, None, "/foo"), Some(0));
    assert_eq!(get(&r, None, "/foobar"), Some(0));
    assert_eq!(get(&r, None, "/fo"), None);
}

#[test]
fn priority_then_definition_order() {
    let r = Router::build(&[
        spec(&["/a"], &[], &[], 0),
        spec(&["/a"], &[], &[], 5),
        spec(&["/a"], &[], &[], 5),
        spec(&["/b/*"], &[], &[], -1),
        spec(&["/b/*"], &[], &[], 0),
    ]);
    assert_eq!(get(&r, None, "/a"), Some(1));
    assert_eq!(get(&r, None, "/b/x"), Some(4));
}

#[test]
fn priority_does_not_beat_a_better_pattern() {
    let r = Router::build(&[
        spec(&["/a/*"], &[], &[], 100),
        spec(&["/a/b/*"], &[], &[], 0),
        spec(&["/a/b/c"], &[], &[], -100),
    ]);
    assert_eq!(get(&r, None, "/a/b/c"), Some(2));
    assert_eq!(get(&r, None, "/a/b/d"), Some(1));
    assert_eq!(get(&r, None, "/a/x"), Some(0));
}

#[test]
fn host_groups_in_order() {
    let r = Router::build(&[
        spec(&["/*"], &[], &[], 0),
        spec(&["/*"], &["*.com"], &[], 0),
        spec(&["/*"], &["*.example.com"], &[], 0),
        spec(&["/*"], &["api.example.com"], &[], 0),
    ]);
    assert_eq!(get(&r, Some("api.example.com"), "/x"), Some(3));
    assert_eq!(get(&r, Some("www.example.com"), "/x"), Some(2));
    assert_eq!(get(&r, Some("example.com"), "/x"), Some(1));
    assert_eq!(get(&r, Some("example.org"), "/x"), Some(0));
    assert_eq!(get(&r, None, "/x"), Some(0));
}

#[test]
fn host_group_beats_a_better_uri_elsewhere() {
    // The host group comes first even when a route without hosts has an exact path.
    let r = Router::build(&[
        spec(&["/login"], &[], &[], 0),
        spec(&["/*"], &["a.com"], &[], 0),
    ]);
    assert_eq!(get(&r, Some("a.com"), "/login"), Some(1));
    assert_eq!(get(&r, Some("b.com"), "/login"), Some(0));
}

#[test]
fn falls_through_host_groups_when_no_path_matches() {
    let r = Router::build(&[
        spec(&["/fallback"], &[], &[], 0),
        spec(&["/wild"], &["*.a.com"], &[], 0),
        spec(&["/exact"], &["x.a.com"], &[], 0),
    ]);
    assert_eq!(get(&r, Some("x.a.com"), "/exact"), Some(2));
    assert_eq!(get(&r, Some("x.a.com"), "/wild"), Some(1));
    assert_eq!(get(&r, Some("x.a.com"), "/fallback"), Some(0));
    assert_eq!(get(&r, Some("x.a.com"), "/nothing"), None);
}

#[test]
fn hosts_match_in_any_case() {
    let r = Router::build(&[
        spec(&["/"], &["Api.Example.COM"], &[], 0),
        spec(&["/w"], &["*.Example.com"], &[], 0),
    ]);
    assert_eq!(get(&r, Some("API.EXAMPLE.COM"), "/"), Some(0));
    assert_eq!(get(&r, Some("api.example.com"), "/"), Some(0));
    assert_eq!(get(&r, Some("WWW.EXAMPLE.COM"), "/w"), Some(1));
    assert_eq!(get(&r, Some("api.example.co"), "/"), None);
}

#[test]
fn long_hosts_need_no_buffer() {
    let long = format!("{}.example.com", "a".repeat(300));
    let r = Router::build(&[
        spec(&["/"], &[&long], &[], 0),
        spec(&["/w"], &["*.example.com"], &[], 0),
    ]);
    assert_eq!(get(&r, Some(&long.to_uppercase()), "/"), Some(0));
    assert_eq!(get(&r, Some(&long), "/w"), Some(1));
}

#[test]
fn lone_star_host_matches_any_host_before_hostless_routes() {
    let r = Router::build(&[spec(&["/"], &[], &[], 0), spec(&["/"], &["*"], &[], 0)]);
    assert_eq!(get(&r, Some("anything.org"), "/"), Some(1));
    assert_eq!(get(&r, None, "/"), Some(0));
}

#[test]
fn a_route_in_several_groups() {
    let r = Router::build(&[
        spec(&["/"], &["*.a.com"], &[], 10),
        spec(&["/"], &["x.a.com", "*.a.com"], &[], 0),
    ]);
    // Route 1 lists the host exactly, so its exact group comes before route 0's wildcard group.
    assert_eq!(get(&r, Some("x.a.com"), "/"), Some(1));
    // In the wildcard group, priority decides.
    assert_eq!(get(&r, Some("y.a.com"), "/"), Some(0));
}

#[test]
fn methods_filter_and_fall_through() {
    let purge = Method::from_bytes(b"PURGE").expect("a valid token");
    let r = Router::build(&[
        spec(&["/*"], &[], &[], 0),
        spec(&["/a/*"], &[], &[Method::POST], 0),
        spec(&["/a/b"], &[], &[Method::GET, Method::HEAD], 0),
        spec(&["/a/b"], &[], &[Method::DELETE], 0),
        spec(&["/a/b"], &[], std::slice::from_ref(&purge), 0),
    ]);
    let find = |m: &Method, p: &str| r.find(None, p.as_bytes(), m);
    assert_eq!(find(&Method::GET, "/a/b"), Some(2));
    assert_eq!(find(&Method::HEAD, "/a/b"), Some(2));
    assert_eq!(find(&Method::DELETE, "/a/b"), Some(3));
    assert_eq!(find(&purge, "/a/b"), Some(4));
    assert_eq!(find(&Method::POST, "/a/b"), Some(1));
    assert_eq!(find(&Method::PUT, "/a/b"), Some(0));
    let odd = Method::from_bytes(b"PROPFIND").expect("a valid token");
    assert_eq!(find(&odd, "/a/b"), Some(0));
}

#[test]
fn methods_outside_the_list_are_told_apart() {
    let foo = Method::from_bytes(b"FOO").expect("a valid token");
    let bar = Method::from_bytes(b"BAR").expect("a valid token");
    let r = Router::build(&[spec(&["/"], &[], std::slice::from_ref(&foo), 0)]);
    assert_eq!(r.find(None, b"/", &foo), Some(0));
    assert_eq!(r.find(None, b"/", &bar), None);
    assert_eq!(r.find(None, b"/", &Method::GET), None);
}

#[test]
fn method_fall_through_crosses_host_groups() {
    let r = Router::build(&[
        spec(&["/x"], &[], &[], 0),
        spec(&["/x"], &["a.com"], &[Method::POST], 0),
    ]);
    assert_eq!(get(&r, Some("a.com"), "/x"), Some(0));
    let post = r.find(Some(b"a.com"), b"/x", &Method::POST);
    assert_eq!(post, Some(1));
}

#[test]
fn several_uris_per_route() {
    let r = Router::build(&[spec(&["/a", "/b/*"], &[], &[], 0)]);
    assert_eq!(get(&r, None, "/a"), Some(0));
    assert_eq!(get(&r, None, "/b/c"), Some(0));
    assert_eq!(get(&r, None, "/c"), None);
}

#[test]
fn empty_router() {
    let r = Router::build(&[]);
    assert_eq!(get(&r, Some("a.com"), "/"), None);
}

/// The rules of the module doc, applied by brute force: every (host group, uri pattern) a route
/// sits under gets a rank; the lowest rank among routes admitting the method wins.
fn naive(specs: &[RouteSpec], host: Option<&[u8]>, path: &[u8], method: &Method) -> Option<usize> {
    // (host group, uri rank, -priority, index): the lowest wins.
    type Rank = ((u8, usize), (u8, usize), i64, usize);
    let mut best: Option<Rank> = None;
    for (i, s) in specs.iter().enumerate() {
        if !s.methods.is_empty() && !s.methods.contains(method) {
            continue;
        }
        let mut groups = Vec::new();
        if s.hosts.is_empty() {
            groups.push((2, 0));
        }
        for h in &s.hosts {
            match (h, host) {
                (HostPattern::Exact(_), Some(req)) if h.matches(req) => groups.push((0, 0)),
                (HostPattern::Wildcard(sfx), Some(req)) if h.matches(req) => {
                    groups.push((1, usize::MAX - sfx.len()))
                }
                _ => {}
            }
        }
        for &g in &groups {
            for u in &s.uris {
                if !u.matches(path) {
                    continue;
                }
                let ur = match u {
                    UriPattern::Exact(_) => (0, 0),
                    UriPattern::Prefix(p) => (1, usize::MAX - p.len()),
                };
                let key = (g, ur, -s.priority, i);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
    }
    best.map(|(_, _, _, i)| i)
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn agrees_with_brute_force_on_random_tables() {
    const URIS: &[&str] = &[
        "/", "/*", "/a", "/a*", "/a/*", "/a/b", "/a/b/*", "/b", "/b/*", "/ab",
    ];
    const HOSTS: &[&str] = &[
        "a.com", "b.a.com", "*.a.com", "*.com", "*", "*a.com", "x.org",
    ];
    const PATHS: &[&str] = &[
        "/", "/a", "/ab", "/a/", "/a/b", "/a/b/c", "/b", "/b/x", "/c", "",
    ];
    const REQ_HOSTS: &[&str] = &[
        "a.com", "B.A.com", "c.a.com", "x.com", "x.org", "ba.com", "",
    ];
    let methods = [Method::GET, Method::POST, Method::PUT];
    let mut rng = Lcg(7);
    for _ in 0..200 {
        let specs: Vec<RouteSpec> = (0..rng.next(12))
            .map(|_| {
                let uris: Vec<&str> = (0..=rng.next(2))
                    .map(|_| URIS[rng.next(URIS.len())])
                    .collect();
                let hosts: Vec<&str> = (0..rng.next(3))
                    .map(|_| HOSTS[rng.next(HOSTS.len())])
                    .collect();
                let ms: Vec<Method> = (0..rng.next(3))
                    .map(|_| methods[rng.next(methods.len())].clone())
                    .collect();
                spec(&uris, &hosts, &ms, rng.next(3) as i64 - 1)
            })
            .collect();
        let router = Router::build(&specs);
        for path in PATHS {
            for h in REQ_HOSTS.iter().map(Some).chain([None]) {
                for m in &methods {
                    let host = h.map(|h| h.as_bytes());
                    assert_eq!(
                        router.find(host, path.as_bytes(), m),
                        naive(&specs, host, path.as_bytes(), m),
                        "{specs:#?} {h:?} {path} {m}"
                    );
                }
            }
        }
    }
}

#[test]
fn ten_thousand_routes() {
    let mut specs = Vec::new();
    for i in 0..10_000 {
        let hosts = match i % 4 {
            0 => vec![],
            1 => vec![host(&format!("h{}.example.com", i % 100))],
            2 => vec![host(&format!("*.w{}.example.com", i % 50))],
            _ => vec![host("shared.example.com")],
        };
        specs.push(RouteSpec {
            uris: vec![uri(&format!("/exact/{i}")), uri(&format!("/svc/{i}/*"))],
            hosts,
            methods: if i % 3 == 0 {
                vec![Method::GET]
            } else {
                vec![]
            },
            priority: (i % 7) as i64,
        });
    }
    specs.push(spec(&["/*"], &[], &[], 0));
    let catch_all = specs.len() - 1;
    let router = Router::build(&specs);
    for i in 0..10_000 {
        let host = match i % 4 {
            0 => "anything.org".to_owned(),
            1 => format!("H{}.Example.com", i % 100),
            2 => format!("x.w{}.example.com", i % 50),
            _ => "shared.example.com".to_owned(),
        };
        let exact = format!("/exact/{i}");
        let deep = format!("/svc/{i}/deep/path");
        for path in [&exact, &deep] {
            assert_eq!(
                router.find(Some(host.as_bytes()), path.as_bytes(), &Method::GET),
                Some(i),
                "{host} {path}"
            );
            let expect_post = if i % 3 == 0 { catch_all } else { i };
            assert_eq!(
                router.find(Some(host.as_bytes()), path.as_bytes(), &Method::POST),
                Some(expect_post),
                "{host} {path} POST"
            );
        }
        // Another route's host group does not lead here.
        if i % 4 == 1 {
            assert_eq!(
                router.find(Some(b"nowhere.org"), exact.as_bytes(), &Method::GET),
                Some(catch_all)
            );
        }
    }
    assert_eq!(
        router.find(Some(b"shared.example.com"), b"/nothing", &Method::GET),
        Some(catch_all)
    );
}
