//! APISIX v3 admin objects, validated from JSON.
//!
//! Each object is checked straight from a [`serde_json::Value`] (the body of an Admin API `PUT`, or one
//! item of a standalone file) and every problem is reported at once, each with its field path, in the
//! wording of APISIX's JSON-schema checker (`property "uri" validation failed: wrong type: expected
//! string, got number`). The validated types are what the rest of the gateway sees; there is no
//! `Raw*` serde mirror because the checks need the untyped value to tell "absent" from "wrong type"
//! and to keep going after the first problem.
//!
//! - [`Route`], [`Service`], [`Upstream`] (with [`Node`]), [`Consumer`]: the objects, each with a
//!   `from_json` constructor.
//! - [`Ssl`]: a certificate, its key and its server names (`ssls`), parsed and checked.
//! - [`UriPattern`], [`HostPattern`]: what a route matches on, ready for the router.
//! - [`PluginCheck`]: how an object asks the plugin registry about its `plugins` map.
//! - [`standalone`]: the declarative `apisix.yaml` file, with cross-object checks.
//! - `check`: the small checker that collects errors with their paths.

mod check;
mod consumer;
mod meta;
mod node;
mod pattern;
mod route;
mod service;
mod ssl;
pub mod standalone;
mod upstream;

use serde_json::Value;

pub(crate) use check::type_name;
pub use consumer::Consumer;
pub use node::Node;
pub use pattern::{HostPattern, UriPattern};
pub use route::Route;
pub use service::Service;
pub use ssl::{certified_key, Ssl, TlsVersions};
pub use standalone::{load_standalone_file, parse_standalone, parse_text, ConfigSet};
pub use upstream::{
    ClientCert, KeepalivePool, LbType, PassHost, Scheme, TlsOptions, Upstream, UpstreamTimeout,
};

/// Every problem found in one object (or one file), each a message prefixed with its field path.
///
/// Displayed joined by `; `, which is what the Admin API puts in its `error_msg`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ValidationErrors(pub Vec<String>);

impl ValidationErrors {
    /// The outcome of a check: the value when nothing was reported, else every message.
    pub(crate) fn finish<T>(parsed: Option<T>, errors: Vec<String>) -> Result<T, ValidationErrors> {
        match parsed {
            Some(t) if errors.is_empty() => Ok(t),
            // A check returns `None` only after reporting why; never answer with an empty list.
            _ if errors.is_empty() => Err(ValidationErrors(vec!["invalid configuration".into()])),
            _ => Err(ValidationErrors(errors)),
        }
    }
}

/// The plugin registry as the object checks see it.
///
/// Called once for each entry of an object's `plugins` map, after the entry was found to be a JSON
/// object. The error string is reported as is, so it should read like APISIX's:
/// `unknown plugin [NAME]` for a plugin this build does not have, or
/// `failed to check the configuration of plugin NAME err: ...` for a bad configuration.
pub trait PluginCheck {
    /// Checks a plugin configured on a route or a service.
    fn check(&self, name: &str, conf: &Value) -> Result<(), String>;

    /// Checks a plugin configured on a consumer, where plugins take their per-consumer schema
    /// (for `jwt-auth`: the key and secret rather than where to find the token).
    fn check_consumer(&self, name: &str, conf: &Value) -> Result<(), String>;
}

/// A registry with no plugins: every plugin name is unknown.
///
/// Accepting a `jwt-auth` entry without enforcing it would open the route, so until a plugin is
/// implemented its configuration must be refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPlugins;

impl PluginCheck for NoPlugins {
    fn check(&self, name: &str, _conf: &Value) -> Result<(), String> {
        Err(format!("unknown plugin [{name}]"))
    }

    fn check_consumer(&self, name: &str, _conf: &Value) -> Result<(), String> {
        Err(format!("unknown plugin [{name}]"))
    }
}
