//! The control plane over a real embedded store: consumers and credentials are not mirrored
//! in memory, so every path that reads them (start-up, Admin API reads, a change's checks and
//! its rollback) goes through the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::admin::api::{handle, ApiRequest};
use crate::admin::{AtRest, Control};
use crate::config::NodeConfig;
use crate::consumers::Scheme;
use crate::plugins::Registry;
use crate::proxy::Shared;
use crate::snapshot::Snapshot;
use crate::store::{EmbeddedStore, Keyring, Op, Store};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "portcullis-control-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open(dir: &Path) -> Result<(Control, Arc<Shared>), String> {
    let cfg = NodeConfig::from_yaml("", Path::new(".")).unwrap();
    let shared = Arc::new(Shared::new(cfg, Snapshot::empty()));
    let store = EmbeddedStore::open(dir).unwrap();
    let at_rest = AtRest::new(Keyring::new(&[[7u8; 32]]).unwrap(), true).unwrap();
    let ctl = Control::open(Box::new(store), shared.clone(), Box::new(Registry), at_rest)?;
    Ok((ctl, shared))
}

fn call(ctl: &mut Control, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let r = handle(
        ctl,
        &ApiRequest {
            method,
            path,
            query,
            body: body.as_bytes(),
        },
    );
    (r.status, r.body)
}

/// A credential call: `PUT` with a jwt-auth credential holding `key`, or `GET` / `DELETE`.
fn cred(ctl: &mut Control, method: &str, user: &str, id: &str, key: Option<&str>) -> (u16, Value) {
    let path = format!("/apisix/admin/consumers/{user}/credentials/{id}");
    call(ctl, method, &path, key.map_or(Value::Null, jwt))
}

fn jwt(key: &str) -> Value {
    json!({"plugins": {"jwt-auth": {"key": key, "secret": format!("secret-of-{key}")}}})
}

fn owner(ctl: &Control, key: &str) -> Option<String> {
    ctl.index()
        .credential(Scheme::JwtAuth, key)
        .map(|c| c.consumer.username.to_string())
}

#[test]
fn consumers_come_back_from_the_store_with_their_credentials_after_a_restart() {
    let dir = tmpdir("restart");
    {
        let (mut ctl, _) = open(&dir).unwrap();
        // `a-b` and `a-b-c` sort between `a` and `a`'s credentials in the store.
        for user in ["a", "a-b", "a-b-c", "b"] {
            let (st, _) = call(
                &mut ctl,
                "PUT",
                "/apisix/admin/consumers",
                json!({"username": user}),
            );
            assert_eq!(st, 201, "{user}");
        }
        for (user, id) in [("a", "1"), ("a", "2"), ("a-b", "1"), ("b", "1")] {
            let key = format!("{user}-{id}");
            let (st, body) = cred(&mut ctl, "PUT", user, id, Some(&key));
            assert_eq!(st, 201, "{body}");
        }
        // Read back from the store: sealed at rest, opened for the answer.
        let (_, got) = cred(&mut ctl, "GET", "a", "1", None);
        assert_eq!(
            got["value"]["plugins"]["jwt-auth"]["secret"],
            "secret-of-a-1"
        );
    }
    let (mut ctl, _) = open(&dir).unwrap();
    for (user, id) in [("a", "1"), ("a", "2"), ("a-b", "1"), ("b", "1")] {
        assert_eq!(owner(&ctl, &format!("{user}-{id}")).as_deref(), Some(user));
    }
    assert_eq!(ctl.index().len(Scheme::JwtAuth), 4);
    let (st, list) = call(&mut ctl, "GET", "/apisix/admin/consumers", Value::Null);
    assert_eq!(st, 200);
    assert_eq!(list["total"], 4, "credentials are not consumers: {list}");
    let names: Vec<&str> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "a-b", "a-b-c", "b"]);
    let (_, creds) = call(
        &mut ctl,
        "GET",
        "/apisix/admin/consumers/a/credentials",
        Value::Null,
    );
    assert_eq!(creds["total"], 2);
    // Read back from the store: sealed at rest, plaintext in the answer.
    assert_eq!(
        creds["list"][1]["value"]["plugins"]["jwt-auth"]["secret"],
        "secret-of-a-2"
    );
    // Paging reads only the page.
    let (_, page) = call(
        &mut ctl,
        "GET",
        "/apisix/admin/consumers?page=1&page_size=10",
        Value::Null,
    );
    assert_eq!(page["total"], 4);
    assert_eq!(page["list"].as_array().unwrap().len(), 4);
    let (_, page) = call(
        &mut ctl,
        "GET",
        "/apisix/admin/consumers?page=2&page_size=10",
        Value::Null,
    );
    assert_eq!(page["total"], 4);
    assert_eq!(page["list"].as_array().unwrap().len(), 0);
}

#[test]
fn a_refused_credential_change_leaves_store_and_index_as_they_were() {
    let dir = tmpdir("refused");
    let (mut ctl, _) = open(&dir).unwrap();
    for user in ["x", "y"] {
        call(
            &mut ctl,
            "PUT",
            "/apisix/admin/consumers",
            json!({"username": user}),
        );
    }
    let (st, _) = cred(&mut ctl, "PUT", "x", "c", Some("k1"));
    assert_eq!(st, 201);
    let (st, _) = cred(&mut ctl, "PUT", "y", "c", Some("k2"));
    assert_eq!(st, 201);
    // y takes x's key: refused, and y keeps its own.
    let (st, body) = cred(&mut ctl, "PUT", "y", "c", Some("k1"));
    assert_eq!(st, 400);
    assert_eq!(
        body["error_msg"],
        "duplicate key of plugin jwt-auth found with credential: c of consumer: x"
    );
    assert_eq!(owner(&ctl, "k1").as_deref(), Some("x"));
    assert_eq!(owner(&ctl, "k2").as_deref(), Some("y"));
    let (_, got) = cred(&mut ctl, "GET", "y", "c", None);
    assert_eq!(got["value"]["plugins"]["jwt-auth"]["key"], "k2");
    // A new credential refused the same way is not stored.
    let (st, _) = cred(&mut ctl, "PUT", "y", "d", Some("k1"));
    assert_eq!(st, 400);
    let (st, _) = cred(&mut ctl, "GET", "y", "d", None);
    assert_eq!(st, 404);
    // Rotating a key frees the old one; deleting a credential removes its key.
    let (st, _) = cred(&mut ctl, "PUT", "y", "c", Some("k3"));
    assert_eq!(st, 200);
    assert_eq!(owner(&ctl, "k2"), None);
    assert_eq!(owner(&ctl, "k3").as_deref(), Some("y"));
    let (st, _) = cred(&mut ctl, "DELETE", "y", "c", None);
    assert_eq!(st, 200);
    assert_eq!(owner(&ctl, "k3"), None);
    let (st, _) = call(&mut ctl, "DELETE", "/apisix/admin/consumers/y", Value::Null);
    assert_eq!(st, 200);
    assert!(ctl.index().consumer("y").is_none());
    drop(ctl);
    let (ctl, _) = open(&dir).unwrap();
    assert_eq!(owner(&ctl, "k1").as_deref(), Some("x"));
    assert_eq!(ctl.index().len(Scheme::JwtAuth), 1);
}

/// A store of 2,000 consumers with one credential each, consumer 1234 spoilt by `spoil`.
fn fill(dir: &Path, spoil: impl Fn(&mut Vec<Op>)) {
    let store = EmbeddedStore::open(dir).unwrap();
    let obj = |v: Value| {
        json!({"value": v, "createdIndex": 1, "modifiedIndex": 1})
            .to_string()
            .into_bytes()
    };
    let mut ops = Vec::new();
    for i in 0..2000 {
        let user = format!("u{i}");
        ops.push(Op::Put {
            key: format!("/apisix/consumers/{user}"),
            value: obj(json!({"username": user})),
        });
        ops.push(Op::Put {
            key: format!("/apisix/consumers/{user}/credentials/c"),
            value: obj(jwt(&format!("k{i}"))),
        });
    }
    spoil(&mut ops);
    store.apply(&ops).unwrap();
}

#[test]
fn a_stored_object_that_does_not_decode_or_validate_stops_start_up_naming_its_key() {
    let dir = tmpdir("undecodable");
    fill(&dir, |ops| {
        ops.push(Op::Put {
            key: "/apisix/consumers/u1234/credentials/c".into(),
            value: br#"{"value": {"id": "c"}}"#.to_vec(),
        })
    });
    let err = open(&dir).err().expect("start-up refused");
    assert!(
        err.contains("/apisix/consumers/u1234/credentials/c: not a stored object"),
        "{err}"
    );
    let dir = tmpdir("invalid");
    fill(&dir, |ops| {
        let bad = json!({"value": {"username": "u1234", "plugins": "none"}, "createdIndex": 1, "modifiedIndex": 1});
        ops.push(Op::Put {
            key: "/apisix/consumers/u1234".into(),
            value: bad.to_string().into_bytes(),
        })
    });
    let err = open(&dir).err().expect("start-up refused");
    assert!(
        err.starts_with("the stored configuration is invalid: /apisix/consumers/u1234: "),
        "{err}"
    );
}

#[test]
fn two_thousand_consumers_load_in_parallel_into_the_index() {
    let dir = tmpdir("many");
    fill(&dir, |_| {});
    let (ctl, _) = open(&dir).unwrap();
    assert_eq!(ctl.index().len(Scheme::JwtAuth), 2000);
    for i in (0..2000).step_by(97) {
        assert_eq!(owner(&ctl, &format!("k{i}")), Some(format!("u{i}")));
    }
}

/// A consumer is deleted with its credentials, in one batch, as APISIX removes the
/// consumer's `credentials/` directory: nothing is left to come back with a consumer of the
/// same name, and its keys are free for others at once.
#[test]
fn deleting_a_consumer_deletes_its_credentials() {
    let dir = tmpdir("cascade");
    {
        let (mut ctl, _shared) = open(&dir).unwrap();
        for user in ["jack", "jack-b"] {
            assert_eq!(
                call(
                    &mut ctl,
                    "PUT",
                    "/apisix/admin/consumers",
                    json!({"username": user})
                )
                .0,
                201
            );
        }
        assert_eq!(cred(&mut ctl, "PUT", "jack", "c1", Some("k1")).0, 201);
        assert_eq!(cred(&mut ctl, "PUT", "jack", "c2", Some("k2")).0, 201);
        assert_eq!(cred(&mut ctl, "PUT", "jack-b", "c1", Some("kb")).0, 201);
        let (status, body) = call(
            &mut ctl,
            "DELETE",
            "/apisix/admin/consumers/jack",
            Value::Null,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["key"], json!("/apisix/consumers/jack"));
        let index = ctl.index();
        assert!(index.credential(Scheme::JwtAuth, "k1").is_none());
        assert!(index.credential(Scheme::JwtAuth, "k2").is_none());
        assert!(index.consumer("jack").is_none());
        // The neighbour whose name sorts right after is untouched.
        assert_eq!(owner(&ctl, "kb").as_deref(), Some("jack-b"));
        // A consumer of the same name starts with no credentials.
        assert_eq!(
            call(
                &mut ctl,
                "PUT",
                "/apisix/admin/consumers",
                json!({"username": "jack"})
            )
            .0,
            201
        );
        let (status, list) = call(
            &mut ctl,
            "GET",
            "/apisix/admin/consumers/jack/credentials",
            Value::Null,
        );
        assert_eq!(status, 200);
        assert_eq!(list["total"], json!(0), "{list}");
        // Another consumer may take the freed key.
        assert_eq!(cred(&mut ctl, "PUT", "jack-b", "c2", Some("k1")).0, 201);
    }
    // And after a restart.
    let (ctl, _shared) = open(&dir).unwrap();
    assert_eq!(owner(&ctl, "k1").as_deref(), Some("jack-b"));
    assert_eq!(owner(&ctl, "k2"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A key held by another consumer's inline `jwt-auth` is refused with APISIX's
/// consumer form of the message, whether the newcomer is inline or a credential.
#[test]
fn a_duplicate_of_an_inline_key_names_the_consumer() {
    let dir = tmpdir("inline-dup");
    let (mut ctl, _shared) = open(&dir).unwrap();
    let inline = |user: &str, key: &str| json!({"username": user, "plugins": {"jwt-auth": {"key": key, "secret": "s"}}});
    assert_eq!(
        call(
            &mut ctl,
            "PUT",
            "/apisix/admin/consumers",
            inline("a", "shared")
        )
        .0,
        201
    );
    let (st, body) = call(
        &mut ctl,
        "PUT",
        "/apisix/admin/consumers",
        inline("b", "shared"),
    );
    assert_eq!(st, 400);
    assert_eq!(
        body["error_msg"],
        json!("duplicate key of plugin jwt-auth found with consumer: a")
    );
    assert!(ctl.index().consumer("b").is_none());
    assert_eq!(
        call(
            &mut ctl,
            "PUT",
            "/apisix/admin/consumers",
            json!({"username": "c"})
        )
        .0,
        201
    );
    let (st, body) = cred(&mut ctl, "PUT", "c", "x", Some("shared"));
    assert_eq!(st, 400);
    assert_eq!(
        body["error_msg"],
        json!("duplicate key of plugin jwt-auth found with consumer: a")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Admin API stores a jwt-auth credential as sent: no `algorithm`, `exp` or
/// `base64_secret` filled in (APISIX applies its defaults when it uses them).
#[test]
fn jwt_auth_defaults_are_not_written_into_the_object() {
    let dir = tmpdir("no-defaults");
    let (mut ctl, _shared) = open(&dir).unwrap();
    call(
        &mut ctl,
        "PUT",
        "/apisix/admin/consumers",
        json!({"username": "a"}),
    );
    assert_eq!(cred(&mut ctl, "PUT", "a", "c", Some("k")).0, 201);
    let (_, got) = cred(&mut ctl, "GET", "a", "c", None);
    let conf = got["value"]["plugins"]["jwt-auth"].as_object().unwrap();
    let mut fields: Vec<&str> = conf.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["key", "secret"]);
    let _ = std::fs::remove_dir_all(&dir);
}
