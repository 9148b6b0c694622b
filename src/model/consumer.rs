//! [`Consumer`]: an API client, named by `username`, whose plugins carry its credentials (a
//! `jwt-auth` key and secret, for instance), from an APISIX consumer object.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::check::{Errors, Obj, Pattern, Str};
use super::{meta, PluginCheck, ValidationErrors};

/// Every field of APISIX's consumer schema, which refuses any other (`additionalProperties`).
const FIELDS: &[&str] = &[
    "id",
    "username",
    "desc",
    "labels",
    "create_time",
    "update_time",
    "group_id",
    "plugins",
];

/// `username`: `^[a-zA-Z0-9_\-]+$`, 1 to 256 characters.
const USERNAME: Str = Str {
    min: 1,
    max: 256,
    pattern: Some(Pattern {
        text: "^[a-zA-Z0-9_\\-]+$",
        test: |s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        },
    }),
};

/// A validated consumer.
#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    /// The consumer's name and key. No default: required.
    pub username: String,
    /// Up to 256 characters. Defaults to none.
    pub desc: Option<String>,
    /// Free-form key/value pairs. Defaults to empty.
    pub labels: BTreeMap<String, String>,
    /// Plugin name to configuration, each checked with its consumer schema. Defaults to empty.
    pub plugins: Map<String, Value>,
    /// The consumer group whose plugins also apply. Defaults to none.
    pub group_id: Option<String>,
}

impl Consumer {
    /// Validates a consumer object.
    ///
    /// `id_from_path` is the username in `PUT /apisix/admin/consumers/{username}`; it must match the
    /// body's `username` (`wrong username`, as APISIX says). The body's `id`, which APISIX's schema
    /// allows, is checked and ignored: a consumer is known by its username. Each plugin is checked
    /// with [`PluginCheck::check_consumer`]. Every problem is reported, each with its field path.
    pub fn from_json(
        v: &Value,
        id_from_path: Option<&str>,
        plugins: &dyn PluginCheck,
    ) -> Result<Consumer, ValidationErrors> {
        let mut errors = Vec::new();
        let parsed = Consumer::parse(v, id_from_path, plugins, Errors::root(&mut errors));
        ValidationErrors::finish(parsed, errors)
    }

    fn parse(
        v: &Value,
        id_from_path: Option<&str>,
        registry: &dyn PluginCheck,
        err: Errors<'_>,
    ) -> Option<Consumer> {
        let mut o = Obj::new(v, err)?;
        let before = o.err.count();
        o.reject_unknown(FIELDS);
        o.opt("id", meta::as_id);
        let username = o.req_str("username", &USERNAME);
        if let (Some(path), Some(body)) = (id_from_path, username) {
            if path != body {
                o.err.push("wrong username");
            }
        }
        let desc = meta::desc(&mut o);
        let labels = meta::labels(&mut o);
        meta::timestamps(&mut o);
        let group_id = o.opt("group_id", meta::as_id);
        let plugins = meta::plugins(&mut o, registry, true);

        if o.err.count() > before {
            return None;
        }
        Some(Consumer {
            username: username?.to_owned(),
            desc,
            labels,
            plugins,
            group_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoPlugins;
    use serde_json::json;

    /// Knows `jwt-auth` and tells which schema it was asked for.
    struct JwtOnly;

    impl PluginCheck for JwtOnly {
        fn check(&self, name: &str, _conf: &Value) -> Result<(), String> {
            Err(format!("route schema asked for {name}"))
        }

        fn check_consumer(&self, name: &str, conf: &Value) -> Result<(), String> {
            match (name, conf.get("key")) {
                ("jwt-auth", Some(_)) => Ok(()),
                ("jwt-auth", None) => Err(
                    "failed to check the configuration of plugin jwt-auth err: property \"key\" is required"
                        .into(),
                ),
                _ => Err(format!("unknown plugin [{name}]")),
            }
        }
    }

    #[test]
    fn a_consumer_with_a_credential() {
        let v = json!({
            "username": "jack",
            "desc": "Jack",
            "labels": {"tier": "gold"},
            "group_id": "company_a",
            "plugins": {"jwt-auth": {"key": "user-key", "secret": "s"}}
        });
        let c = Consumer::from_json(&v, Some("jack"), &JwtOnly).expect("valid");
        assert_eq!(c.username, "jack");
        assert_eq!(c.group_id.as_deref(), Some("company_a"));
        assert_eq!(c.plugins["jwt-auth"]["key"], "user-key");
    }

    #[test]
    fn plugins_use_the_consumer_schema() {
        let v = json!({"username": "jack", "plugins": {"jwt-auth": {}}});
        let err = Consumer::from_json(&v, None, &JwtOnly).expect_err("no key");
        assert_eq!(
            err.0,
            ["failed to check the configuration of plugin jwt-auth err: property \"key\" is required"]
        );
        let v = json!({"username": "jack", "plugins": {"jwt-auth": {"key": "k"}}});
        let err = Consumer::from_json(&v, None, &NoPlugins).expect_err("no plugins");
        assert_eq!(err.0, ["unknown plugin [jwt-auth]"]);
    }

    #[test]
    fn username_rules() {
        let err = Consumer::from_json(&json!({}), None, &NoPlugins).expect_err("missing");
        assert_eq!(err.0, ["property \"username\" is required"]);
        let err = Consumer::from_json(&json!({"username": "a.b"}), None, &NoPlugins)
            .expect_err("bad pattern");
        assert_eq!(
            err.0,
            ["property \"username\" validation failed: failed to match pattern \"^[a-zA-Z0-9_\\\\-]+$\" with \"a.b\""]
        );
        let err = Consumer::from_json(&json!({"username": "a"}), Some("b"), &NoPlugins)
            .expect_err("mismatch");
        assert_eq!(err.0, ["wrong username"]);
    }

    #[test]
    fn ids_and_timestamps_are_accepted() {
        let v = json!({"username": "a", "id": "a", "create_time": 1, "update_time": 2});
        assert!(Consumer::from_json(&v, None, &NoPlugins).is_ok());
        let v = json!({"username": "a", "password": "x"});
        let err = Consumer::from_json(&v, None, &NoPlugins).expect_err("unknown");
        assert_eq!(err.0, ["additional properties forbidden, found password"]);
    }
}
