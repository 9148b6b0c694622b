//! The APISIX-compatible Admin API (`/apisix/admin`, on `deployment.admin.admin_listen`).
//!
//! Every request needs an admin key (`X-API-KEY` header, `api_key` query argument or
//! `X-API-KEY` cookie); `viewer` keys may only read; clients outside `allow_admin` get 403.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/apisix/admin/{kind}` | `{"total":N,"list":[{key,value,createdIndex,modifiedIndex}]}`; `page`, `page_size` (10–500) |
//! | GET | `/apisix/admin/{kind}/{id}` | `{key,value,createdIndex,modifiedIndex}`, or 404 `{"message":"Key not found"}` |
//! | PUT | `/apisix/admin/{kind}/{id}` or `/apisix/admin/{kind}` with the id in the body | 201 created / 200 replaced, `{key,value}` |
//! | POST | `/apisix/admin/{kind}` | 201, `{key,value}` with a generated 20-digit id (not for consumers, credentials, secrets) |
//! | PATCH | `/apisix/admin/{kind}/{id}` | JSON merge patch (`null` removes a field), 200 `{key,value}` |
//! | PATCH | `/apisix/admin/{kind}/{id}/{field}/...` | replaces that field with the body, 200 `{key,value}` |
//! | DELETE | `/apisix/admin/{kind}/{id}` | 200 `{"deleted":"1","key":...}`; 400 while something still uses it |
//! | GET | `/apisix/admin/plugins/list` | names of the plugins this build enforces |
//! | GET | `/apisix/admin/plugins/{name}`, `/apisix/admin/schema/plugins/{name}` | the plugin's schema (`?schema_type=consumer` for the consumer side) |
//! | POST | `/apisix/admin/consumers/{username}/credentials/{id}/sign` | `{"token": ...}` signed for that credential; body `{"payload": {...}, "expires_in": s}` (admin keys only) |
//!
//! `{kind}` is `routes`, `services`, `upstreams`, `consumers` (id = username), `global_rules`,
//! `plugin_configs`, `consumers/{username}/credentials`, `secrets/vault` or `ssls`. Invalid
//! objects get 400 `{"error_msg":"invalid configuration: ..."}` naming every problem with its
//! field path. An ssl object's `key` and `keys` are stored encrypted, answered encrypted by a
//! write (which also takes them back encrypted) and left out of every GET, as in APISIX.
//!
//! - [`server`]: the HTTP server (own threads).
//! - [`auth`]: keys, roles, allow-list.
//! - [`api`]: dispatch and envelopes.
//! - [`kind`]: kinds, keys and per-object validation.
//! - [`control`]: store, mirror of the routing objects, whole-configuration checks and
//!   publication.
//! - [`at_rest`]: secret fields encrypted in the store (a PUT answers with the stored,
//!   encrypted value, a GET with the plaintext, as in APISIX).

pub mod api;
pub mod at_rest;
mod auth;
pub mod control;
pub mod kind;
pub mod server;

pub use at_rest::AtRest;
pub use control::Control;
pub use server::start;
