//! Portcullis: a thread-per-core API gateway that authenticates API consumers with JSON Web Tokens
//! before proxying their requests upstream.
//!
//! - [`admin`]: the APISIX-compatible Admin API (control plane, its own threads).
//! - [`config`]: the node config file (`config/config.yaml`): listeners, workers, admin keys, limits.
//! - [`consumers`]: the shared consumer index (credential key → consumer, key material parsed).
//! - [`plugins`]: the plugin registry and per-route chains (`jwt-auth`, Kong `jwt`).
//! - [`kong`]: Kong declarative files translated into our objects (`portcullis import`).
//! - [`model`]: APISIX-shaped objects (routes, services, upstreams, consumers) and their validation.
//! - [`secrets`]: `$env://` and `$secret://vault/...` references in credentials.
//! - [`snapshot`]: the compiled, immutable view the data plane reads (router, upstreams).
//! - [`http`]: the HTTP/1.1 codec: head parsing, body framing, smuggling defences.
//! - [`proxy`]: the per-connection loop, upstream pool, balancer and forwarding headers.
//! - [`runtime`]: worker threads, listeners, driver selection, signals and graceful shutdown.
//! - [`store`]: durable storage of the Admin API objects (embedded redb by default).
//! - [`tls`]: TLS termination on `ssl_listen`, certificates from `ssl` objects picked by SNI.

pub mod admin;
pub mod config;
pub mod consumers;
pub mod http;
pub mod jwt;
pub mod kong;
pub mod model;
pub mod plugins;
pub mod proxy;
pub mod runtime;
pub mod secrets;
pub mod snapshot;
pub mod store;
pub mod tls;
