//! The data plane's request path: one client connection at a time on one core.
//!
//! - [`conn`]: the connection loop (read head, keep-alive, pipelining, header timeouts).
//! - [`exchange`]: one request/response exchange with an upstream, in phase order.
//! - [`forward`]: rewriting heads on the way through (hop-by-hop, `X-Forwarded-*`, `Host`).
//! - [`pool`]: the per-core upstream connection pool.
//! - [`stream`], [`tls`]: upstream connections, plain or TLS, and TLS's trust and configuration.
//! - [`balancer`]: per-core smooth weighted round-robin.
//! - [`worker`]: per-core state and the state shared with the control thread.
//! - [`reply`]: responses the gateway writes itself (JSON errors, `100 Continue`).
//! - [`io`], [`date`]: small helpers.

pub mod balancer;
pub mod conn;
pub mod date;
pub mod exchange;
pub mod forward;
pub mod io;
pub mod pool;
pub mod reply;
pub mod stream;
pub mod tls;
pub mod worker;

pub use conn::{serve, ConnInfo};
pub use worker::{Shared, Worker};
