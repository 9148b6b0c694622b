//! Kong declarative configuration (`_format_version: "3.0"`, the format of decK and of Kong's
//! DB-less mode), translated into our APISIX-shaped objects.
//!
//! | Kong                                   | becomes                                                  |
//! |----------------------------------------|----------------------------------------------------------|
//! | service `{name, url \| host/port/path, timeouts, retries}` | service with an inline upstream (ms → s)  |
//! | route `{name, paths, hosts, methods, strip_path, preserve_host}` | route (prefix uris), `pass_host`, path rewriting through `proxy-rewrite` when the upstream path differs |
//! | consumer `{username, custom_id, id}`   | consumer (`labels.custom_id`, `labels.kong_id`; `labels.kong_username` when the Kong username is not a valid APISIX username, `labels.kong_no_username` when there was none) |
//! | `consumers[].jwt_secrets[]`            | credentials with the `jwt` plugin                        |
//! | plugin `jwt` (global, service, route)  | global rule / service / route plugin `jwt`               |
//!
//! Anything else (other plugins, other credential kinds, stream routes, certificates, ...) is
//! listed in [`Translation::skipped`] with its path: an import never drops a piece silently.

pub mod import;
mod translate;

pub use translate::{is_kong, translate, Object, Translation};

#[cfg(test)]
mod tests;
