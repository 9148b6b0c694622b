//! Size bounds the codec enforces on untrusted bytes: [`Limits`].
//!
//! Every loop in the codec that reads a line or a head stops at one of these bounds, so
//! a peer can never make a worker buffer or scan without end.

/// Bounds on request and response heads and on chunked framing.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest head (start line, header fields and the blank line that ends them) in bytes;
    /// a longer request head is answered with 431. Defaults to `32768` (32 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in one head; more is answered with 431. Defaults to `100`.
    pub max_headers: usize,
    /// Longest chunk-size line in bytes, extensions included, CRLF excluded.
    /// Defaults to `4096`.
    pub max_chunk_line_bytes: usize,
    /// Largest trailer section after the last chunk in bytes, line ends included.
    /// Defaults to `8192` (8 KiB).
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_chunk_line_bytes: 4096,
            max_trailer_bytes: 8 * 1024,
        }
    }
}
