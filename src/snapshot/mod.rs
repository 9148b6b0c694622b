//! The compiled, immutable view the data plane reads, rebuilt on each config change.
//!
//! - [`router`]: routes compiled into hash tables for matching by host, path and method.

pub mod router;
