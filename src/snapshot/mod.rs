//! The compiled, immutable view of the configuration that the data plane reads, rebuilt on each
//! config change.
//!
//! - [`router`]: routes compiled into hash tables for matching by host, path and method.
//! - [`compile`](mod@compile): validated objects → [`Snapshot`] (resolved upstreams, router).

pub mod compile;
pub mod router;

pub use compile::{compile, CompileError, RouteEntry, Snapshot, Target, UpstreamTarget};
