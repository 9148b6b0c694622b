use serde_json::{json, Value};

use super::template::{Part, Replacement, Template};
use super::*;
use crate::plugins::phase::{Ctx, Edits};
use crate::plugins::testing::Raw;
use crate::plugins::vars::Facts;

const FACTS: Facts<'static> = Facts {
    route_id: "r1",
    service_id: Some("s1"),
    server_port: 9080,
    scheme: "http",
};

fn err(conf: Value) -> String {
    compile(&conf).expect_err(&conf.to_string())
}

/// Runs `conf` on `target` with `headers`, after `before` edits.
fn run_with(conf: Value, raw: &Raw, before: Edits) -> Edits {
    let c = compile(&conf).unwrap_or_else(|e| panic!("{conf}: {e}"));
    let mut edits = before;
    access(&c, &raw.req(), &FACTS, &Ctx::default(), &mut edits).expect("rewrite succeeds");
    edits
}

fn run(conf: Value, target: &str, headers: &[&str]) -> Edits {
    run_with(conf, &Raw::get(target, headers), Edits::default())
}

fn target(conf: Value, t: &str) -> Option<String> {
    run(conf, t, &[])
        .target
        .map(|t| String::from_utf8(t).expect("targets are ASCII"))
}

#[test]
fn schema_errors_are_apisix_messages() {
    assert_eq!(
        err(json!({})),
        "expect object to have at least 1 properties"
    );
    assert_eq!(err(json!("x")), "wrong type: expected object, got string");
    assert_eq!(
        err(json!({"uri": "home"})),
        r#"property "uri" validation failed: failed to match pattern "^\\/.*" with "home""#
    );
    assert_eq!(
        err(json!({"uri": ""})),
        r#"property "uri" validation failed: string too short, expected at least 1, got 0"#
    );
    assert_eq!(
        err(json!({"uri": 1})),
        r#"property "uri" validation failed: wrong type: expected string, got number"#
    );
    assert_eq!(
        err(json!({"method": "FETCH"})),
        r#"property "method" validation failed: matches none of the enum values"#
    );
    assert_eq!(
        err(json!({"regex_uri": ["^/a"]})),
        r#"property "regex_uri" validation failed: expect array to have at least 2 items"#
    );
    assert_eq!(
        err(json!({"regex_uri": "^/a"})),
        r#"property "regex_uri" validation failed: wrong type: expected array, got string"#
    );
    assert_eq!(
        err(json!({"regex_uri": ["^/a", 1]})),
        r#"property "regex_uri" validation failed: failed to validate item 2: wrong type: expected string, got number"#
    );
    assert_eq!(
        err(json!({"regex_uri": ["^/a", "/b", "^/c"]})),
        "The length of regex_uri should be an even number"
    );
    assert_eq!(
        err(json!({"host": "a b"})),
        r#"property "host" validation failed: failed to match pattern "^[0-9a-zA-Z-.]+(:\\d{1,5})?$" with "a b""#
    );
    assert!(err(json!({"host": "a.b:123456"})).contains("failed to match pattern"));
    assert!(compile(&json!({"host": "a.example.com:8080"})).is_ok());
    assert!(err(json!({"use_real_request_uri_unsafe": true}))
        .starts_with(r#"property "use_real_request_uri_unsafe" validation failed: not supported"#));
    assert!(compile(&json!({"use_real_request_uri_unsafe": false})).is_ok());
    assert!(err(json!({"scheme": "https"})).starts_with(r#"property "scheme""#));
}

#[test]
fn invalid_regex_uri() {
    let e = err(json!({"regex_uri": ["[^/test/(.*)", "/$1"]}));
    assert!(
        e.starts_with("invalid regex_uri([^/test/(.*), /$1): "),
        "{e}"
    );
    let e = err(json!({"regex_uri": ["^/test/(.*)", "/$`1"]}));
    assert_eq!(
        e,
        "invalid regex_uri(^/test/(.*), /$`1): failed to compile the replacement template: invalid capturing variable name found in \"/$`1\""
    );
    // PCRE features the linear-time engine lacks are refused, never misread.
    for p in ["^/(?=a)", "^/(?!a)", "(?<=a)/", r"^/(a)\1"] {
        let e = err(json!({"regex_uri": [p, "/x"]}));
        assert!(e.contains("linear-time engine"), "{p}: {e}");
    }
    // Several pairs: each pattern and template is checked.
    let e = err(json!({"regex_uri": ["^/a", "/b", "^/c(", "/d"]}));
    assert!(e.starts_with("invalid regex_uri(^/c(, /d): "), "{e}");
    // A pattern over the size limit is refused, not compiled into a huge automaton.
    let e = err(json!({"regex_uri": ["(a{1000}){1000}", "/"]}));
    assert!(e.contains("size limit"), "{e}");
}

#[test]
fn replacement_templates_compile_like_ngx_re_sub() {
    assert!(Replacement::parse("/$1-${2}/$$/$0").is_ok());
    let e = |s: &str| Replacement::parse(s).unwrap_err();
    assert_eq!(e("/$"), "invalid capturing variable name found in \"/$\"");
    assert_eq!(e("/${"), "invalid capturing variable name found in \"/${\"");
    assert_eq!(
        e("/${}"),
        "invalid capturing variable name found in \"/${}\""
    );
    assert_eq!(
        e("/${12"),
        "the closing bracket in \"12\" variable is missing"
    );
    assert_eq!(
        e("/$name"),
        "attempt to use named capturing variable \"name\" (named captures not supported yet)"
    );
    assert_eq!(
        e("/${name}"),
        "attempt to use named capturing variable \"name\" (named captures not supported yet)"
    );
}

#[test]
fn templates_split_once() {
    let t = Template::parse(r"/a/$uri/${arg_x ?? none}/\$host/$", false).unwrap();
    assert_eq!(
        t.parts,
        vec![
            Part::Lit("/a/".into()),
            Part::Var {
                name: "uri".into(),
                default: None
            },
            Part::Lit("/".into()),
            Part::Var {
                name: "arg_x".into(),
                default: Some("none".into())
            },
            Part::Lit(r"/\$host/$".into()),
        ]
    );
    let t = Template::parse("$1-${2}x$http_a", true).unwrap();
    assert_eq!(
        t.parts,
        vec![
            Part::Capture(1),
            Part::Lit("-".into()),
            Part::Capture(2),
            Part::Lit("x".into()),
            Part::Var {
                name: "http_a".into(),
                default: None
            },
        ]
    );
    assert_eq!(
        Template::parse("/$nope", false).unwrap_err(),
        "unknown variable \"$nope\""
    );
    assert!(Template::parse("/$1", false)
        .unwrap_err()
        .contains("regex captures"));
    assert!(Template::parse("/$host.json", false)
        .unwrap_err()
        .contains("${host}"));
}

#[test]
fn uri_replaces_the_path_and_keeps_the_query() {
    assert_eq!(target(json!({"uri": "/new"}), "/old"), Some("/new".into()));
    assert_eq!(
        target(json!({"uri": "/new"}), "/old?a=1&b=2"),
        Some("/new?a=1&b=2".into())
    );
    // A query of its own: the client's follows after `&`.
    assert_eq!(
        target(json!({"uri": "/new?x=1"}), "/old?a=1"),
        Some("/new?x=1&a=1".into())
    );
    assert_eq!(
        target(json!({"uri": "/new?x=1"}), "/old"),
        Some("/new?x=1".into())
    );
    // An empty query is no query (nginx's `$is_args`).
    assert_eq!(target(json!({"uri": "/new"}), "/old?"), Some("/new".into()));
}

#[test]
fn uri_variables() {
    assert_eq!(
        target(
            json!({"uri": "/u/$arg_user/${http_x_tenant}/$uri"}),
            "/p/q?user=ann"
        ),
        Some("/u/ann///p/q?user=ann".into())
    );
    let r = run(
        json!({"uri": "/t/${http_x_tenant ?? public}$uri"}),
        "/a%20b",
        &["X-Tenant: acme"],
    );
    assert_eq!(r.target.as_deref(), Some(&b"/t/acme/a%20b"[..]));
    assert_eq!(
        target(json!({"uri": "/t/${http_x_tenant ?? public}"}), "/a"),
        Some("/t/public".into())
    );
    // A decoded `?` from the path stays in the path; a variable in the query part cannot
    // start a query of its own either.
    assert_eq!(
        target(json!({"uri": "/x$uri?from=$uri"}), "/a%3Fb"),
        Some("/x/a%3Fb?from=/a%3Fb".into())
    );
    // Bytes that cannot stand in a request line are escaped, in the path and the query.
    assert_eq!(
        target(json!({"uri": "/x?q=$arg_q"}), "/a?q=a%20b%0D%0AX:%231"),
        Some("/x?q=a%20b%0D%0AX:%231&q=a%20b%0D%0AX:%231".into())
    );
    assert_eq!(
        target(json!({"uri": "/$consumer_name/$route_id/$service_id"}), "/"),
        Some("//r1/s1".into())
    );
}

#[test]
fn regex_uri_captures_and_pairs() {
    let conf = json!({"regex_uri": ["^/v1/(.*)", "/$1"]});
    assert_eq!(target(conf.clone(), "/v1/json"), Some("/json".into()));
    assert_eq!(
        target(conf.clone(), "/v1/json?a=1"),
        Some("/json?a=1".into())
    );
    // No pair matches: the target is left as it is.
    assert_eq!(target(conf, "/v2/json"), None);

    let conf = json!({"regex_uri": [
        "^/test/(.*)/(.*)/(.*)", "/$1_$2_${3}",
        "^/theothers/.*", "/theothers",
        "^/(a)(b)?", "/[$2]$0",
    ]});
    assert_eq!(
        target(conf.clone(), "/test/plugin/proxy/rewrite"),
        Some("/plugin_proxy_rewrite".into())
    );
    assert_eq!(
        target(conf.clone(), "/theothers/hello/world"),
        Some("/theothers".into())
    );
    // The first match only is replaced; the rest of the path stays; an unmatched group is
    // empty.
    assert_eq!(target(conf, "/ax/y"), Some("/%5B%5D/ax/y".into()));

    // The replacement's own query; `$$` is a dollar sign.
    assert_eq!(
        target(
            json!({"regex_uri": ["^/item/(\\d+)$", "/items?id=$1&c=$$"]}),
            "/item/42?v=2"
        ),
        Some("/items?id=42&c=$&v=2".into())
    );
    // A path holding a decoded `?` makes every `?` part of the path.
    assert_eq!(
        target(json!({"regex_uri": ["^/a(.*)", "/b?$1"]}), "/a%3Fx"),
        Some("/b%3F%3Fx".into())
    );
    // An empty or relative result still goes out in origin form.
    assert_eq!(
        target(json!({"regex_uri": ["^/v1", ""]}), "/v1"),
        Some("/".into())
    );
    assert_eq!(
        target(json!({"regex_uri": ["^/(.*)", "$1"]}), "/json"),
        Some("/json".into())
    );
    // Byte semantics, as PCRE without UTF: `.` is one byte, non-ASCII literals match.
    assert_eq!(
        target(json!({"regex_uri": ["^/é/(.)", "/x/$1"]}), "/%C3%A9/%C3%A9"),
        Some("/x/%C3%A9".into())
    );
    // `uri` wins over `regex_uri`.
    assert_eq!(
        target(
            json!({"uri": "/hello", "regex_uri": ["^/test/(.*)", "/${1}1"]}),
            "/test/x"
        ),
        Some("/hello".into())
    );
}

#[test]
fn rewrite_keeps_what_jwt_auth_took_out_of_the_query() {
    let raw = Raw::get("/v1/x?jwt=t&a=1", &[]);
    let before = Edits {
        target: Some(b"/v1/x?a=1".to_vec()),
        ..Edits::default()
    };
    let e = run_with(json!({"regex_uri": ["^/v1/(.*)", "/$1"]}), &raw, before);
    assert_eq!(e.target.as_deref(), Some(&b"/x?a=1"[..]));
    let before = Edits {
        target: Some(b"/v1/x".to_vec()),
        ..Edits::default()
    };
    let e = run_with(json!({"uri": "/y"}), &raw, before);
    assert_eq!(e.target.as_deref(), Some(&b"/y"[..]));
}

fn sets(e: &Edits) -> Vec<(String, String)> {
    e.set
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn headers_add_set_remove_in_apisix_order() {
    let e = run(
        json!({"headers": {
            "add": {"X-Add": "a", "X-Multi": ["1", 2]},
            "set": {"X-Set": "s-$remote_addr", "X-Num": 7},
            "remove": ["X-Drop", "X-Add"]
        }}),
        "/",
        &["X-Set: client", "X-Drop: d"],
    );
    assert_eq!(
        sets(&e),
        vec![
            ("X-Multi".into(), "1".into()),
            ("X-Multi".into(), "2".into()),
            ("X-Num".into(), "7".into()),
            ("X-Set".into(), "s-127.0.0.1".into()),
        ]
    );
    assert!(e.drops(b"x-set") && e.drops(b"x-drop") && e.drops(b"x-add"));
    assert!(!e.drops(b"x-multi"));
}

#[test]
fn legacy_headers_mean_set() {
    let e = run(json!({"headers": {"X-Api-Version": "v2"}}), "/", &[]);
    assert_eq!(sets(&e), vec![("X-Api-Version".into(), "v2".into())]);
    assert!(e.drops(b"x-api-version"));
}

#[test]
fn header_values_use_captures_and_variables() {
    let e = run(
        json!({
            "regex_uri": ["^/u/(\\w+)/(\\d+)", "/users/$2"],
            "headers": {"set": {"X-User": "$1", "X-Id": "${2}:$http_x_tag:$0", "X-Arg": "$arg_a"}}
        }),
        "/u/ann/42?a=x%0D%0AEvil:%201",
        &["X-Tag: t"],
    );
    assert_eq!(
        e.target.as_deref(),
        Some(&b"/users/42?a=x%0D%0AEvil:%201"[..])
    );
    let mut s = sets(&e);
    s.sort();
    assert_eq!(
        s,
        vec![
            // A value taken from the request cannot end the header line.
            ("X-Arg".into(), "x%0D%0AEvil: 1".into()),
            ("X-Id".into(), "42:t:/u/ann/42".into()),
            ("X-User".into(), "ann".into()),
        ]
    );
    // Without a match, captures are empty; an empty value removes the header.
    let e = run(
        json!({"regex_uri": ["^/u/(\\w+)", "/x"], "headers": {"set": {"X-User": "$1"}}}),
        "/other",
        &["X-User: forged"],
    );
    assert!(e.set.is_empty() && e.drops(b"x-user"));
}

#[test]
fn set_replaces_an_earlier_plugins_header() {
    let mut before = Edits::default();
    before.set("X-Consumer-Username", "jack");
    before.set("X-Credential-Identifier", "c1");
    let e = run_with(
        json!({"headers": {"set": {"X-Consumer-Username": "someone"}, "remove": ["X-Credential-Identifier"]}}),
        &Raw::get("/", &[]),
        before,
    );
    assert_eq!(
        sets(&e),
        vec![("X-Consumer-Username".into(), "someone".into())]
    );
}

#[test]
fn header_validation() {
    assert_eq!(
        err(json!({"headers": {"X-Api:Version": "v2"}})),
        r#"property "headers" validation failed: invalid field character in header "X-Api:Version""#
    );
    assert_eq!(
        err(json!({"headers": {"X-Api-Version": "v2\r\n"}})),
        r#"property "headers.X-Api-Version" validation failed: invalid value character in header"#
    );
    assert_eq!(
        err(json!({"headers": {"set": {"X-A": "v\nX-B: 1"}}})),
        r#"property "headers.set.X-A" validation failed: invalid value character in header"#
    );
    assert_eq!(
        err(json!({"headers": {"add": {"X A": "v"}}})),
        r#"property "headers.add" validation failed: invalid field character in header "X A""#
    );
    assert_eq!(
        err(json!({"headers": {"remove": ["X:A"]}})),
        r#"property "headers.remove" validation failed: invalid field character in header "X:A""#
    );
    assert_eq!(
        err(json!({"headers": {"X-A": true}})),
        r#"property "headers.X-A" validation failed: invalid type as header value: expected string or number, got boolean"#
    );
    assert_eq!(
        err(json!({"headers": {"X-A": ["1"]}})),
        r#"property "headers.X-A" validation failed: invalid type as header value"#
    );
    assert_eq!(
        err(json!({"headers": {"set": {"X-A": []}}})),
        r#"property "headers.set.X-A" validation failed: expect array to have at least 1 items"#
    );
    assert_eq!(
        err(json!({"headers": {"set": {}}})),
        r#"property "headers.set" validation failed: expect object to have at least 1 properties"#
    );
    assert_eq!(
        err(json!({"headers": {"remove": []}})),
        r#"property "headers.remove" validation failed: expect array to have at least 1 items"#
    );
    assert_eq!(
        err(json!({"headers": {"set": {"X-A": "1"}, "X-B": "2"}})),
        r#"property "headers" validation failed: additional properties forbidden, found X-B"#
    );
    assert_eq!(
        err(json!({"headers": {}})),
        r#"property "headers" validation failed: expect object to have at least 1 properties"#
    );
    assert_eq!(
        err(json!({"headers": {"set": {"X-A": "$nope"}}})),
        r#"property "headers.set.X-A" validation failed: unknown variable "$nope""#
    );
    for name in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "X-Forwarded-For",
    ] {
        let e = err(json!({"headers": {"set": {name: "x"}}}));
        assert!(
            e.starts_with(&format!(
                "property \"headers.set.{name}\" validation failed: the gateway sets"
            )),
            "{e}"
        );
    }
    assert_eq!(
        err(json!({"headers": {"remove": ["host"]}})),
        r#"property "headers.remove.host" validation failed: the gateway sets Host: use property "host""#
    );
    // `{"set": "x"}` is the legacy form: a header named `set`.
    let e = run(json!({"headers": {"set": "x"}}), "/", &[]);
    assert_eq!(sets(&e), vec![("set".into(), "x".into())]);
}

#[test]
fn method_and_host() {
    let e = run(
        json!({"method": "POST", "host": "up.example:8080"}),
        "/",
        &[],
    );
    assert_eq!(e.method, Some(http::Method::POST));
    assert_eq!(e.host.as_deref(), Some("up.example:8080"));
    assert_eq!(e.target, None);
    for m in METHODS {
        let e = run(json!({ "method": m }), "/", &[]);
        assert_eq!(e.method.as_ref().map(http::Method::as_str), Some(*m));
    }
}

#[test]
fn oversized_results_are_a_500_not_a_huge_request() {
    let c =
        compile(&json!({"regex_uri": ["^/(.*)", "/$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1"]})).unwrap();
    let long = format!("/{}", "a".repeat(8000));
    let raw = Raw::get(&long, &[]);
    let mut e = Edits::default();
    let r = access(&c, &raw.req(), &FACTS, &Ctx::default(), &mut e).unwrap_err();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("error_msg"));
}

#[test]
fn registry_and_schema() {
    use crate::model::PluginCheck;
    let reg = crate::plugins::Registry;
    assert!(reg.check(NAME, &json!({"uri": "/x"})).is_ok());
    assert_eq!(
        reg.check(NAME, &json!({"uri": "x"})).unwrap_err(),
        r#"failed to check the configuration of plugin proxy-rewrite err: property "uri" validation failed: failed to match pattern "^\\/.*" with "x""#
    );
    assert!(reg.check_consumer(NAME, &json!({"uri": "/x"})).is_ok());
    assert!(crate::plugins::NAMES.contains(&NAME));
    let s = crate::plugins::Registry::schema(NAME, false).unwrap();
    assert_eq!(
        s["properties"]["method"]["enum"].as_array().unwrap().len(),
        14
    );
}
