//! The HTTP/1.1 codec: pure functions over byte buffers, no I/O.
//!
//! - [`parse_request`] / [`RequestHead`] ([`head`]): request heads as offsets into the
//!   caller's buffer, with the request-smuggling defences of RFC 9112 §6.
//! - [`parse_response`] / [`ResponseHead`] ([`response`]): upstream response heads and
//!   their body framing (§6.3), HEAD / 1xx / 204 / 304 included.
//! - [`ChunkedDecoder`] ([`chunked`]): a streaming decoder for chunked bodies, strict about
//!   CRLF, sizes and trailers; [`write_chunk_header`] / [`LAST_CHUNK`] re-encode.
//! - [`Limits`] ([`limits`]): every bound on untrusted input.
//! - [`HeadError`] / [`ChunkError`] ([`error`]): what went wrong, with the client status.
//! - [`path`]: the normalised path requests are routed on (nginx's `$uri`), and its encoding
//!   for the upstream; [`RequestHead::uri`] gives it.
//! - [`slice()`]: the bytes a `(start, end)` span names in the buffer.
//!
//! The proxy loop reads into a buffer, calls [`parse_request`] until it returns a head,
//! then frames the body with [`BodyFraming`] from `head_len` on.

pub mod chunked;
pub mod error;
mod fields;
pub mod head;
pub mod limits;
pub mod path;
pub mod response;
mod syntax;
mod target;
#[cfg(test)]
mod testing;

pub use chunked::{write_chunk_header, ChunkedDecoder, Decoded, LAST_CHUNK};
pub use error::{ChunkError, HeadError};
pub use head::{parse_request, BodyFraming, HeaderSpan, RequestHead};
pub use limits::Limits;
pub use path::PathError;
pub use response::{parse_response, ResponseHead};
pub use syntax::slice;
