//! The HTTP/1.1 codec: pure functions over byte buffers, no I/O.
//!
//! - [`Limits`] ([`limits`]): every bound on untrusted input.
//! - [`HeadError`] / [`ChunkError`] ([`error`]): what went wrong, with the client status.

pub mod error;
pub mod limits;

pub use error::{ChunkError, HeadError};
pub use limits::Limits;
