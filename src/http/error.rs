//! Codec errors: [`HeadError`] for request and response heads, [`ChunkError`] for chunked
//! bodies.
//!
//! [`HeadError::status`] and [`HeadError::message`] are the one place a head error becomes
//! an answer to the client; the `&'static str` detail inside `Malformed` and `Smuggling`
//! is for the log only.

/// Why a request or response head was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// The head is longer than `Limits::max_header_bytes`.
    #[error("head exceeds the size limit")]
    TooLarge,
    /// The head has more fields than `Limits::max_headers`.
    #[error("head has too many header fields")]
    TooManyHeaders,
    /// A syntax error: start line, field name or value, line ending, line folding.
    #[error("malformed head: {0}")]
    Malformed(&'static str),
    /// The body framing is ambiguous or unsupported, so two parsers could disagree on
    /// where the message ends.
    #[error("ambiguous message framing: {0}")]
    Smuggling(&'static str),
    /// An HTTP/1.1 request without a Host field.
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// A request with more than one Host field.
    #[error("request with more than one Host")]
    DuplicateHost,
    /// A path that cannot be normalised safely: it escapes the root, or holds an encoded NUL,
    /// an encoded separator or a broken percent-encoding.
    #[error("invalid path: {0}")]
    Path(#[from] super::PathError),
    /// A well-formed HTTP version other than 1.0 or 1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
}

impl HeadError {
    /// The status to answer a client whose request head failed with this error.
    ///
    /// For a response head from an upstream the proxy answers 502 instead.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::UnsupportedVersion => 505,
            Self::Malformed(_)
            | Self::Smuggling(_)
            | Self::MissingHost
            | Self::DuplicateHost
            | Self::Path(_) => 400,
        }
    }

    /// A short text for the client's JSON error body; it never carries the detail.
    pub fn message(&self) -> &'static str {
        match self {
            Self::TooLarge => "Request Header Fields Too Large",
            Self::TooManyHeaders => "Too Many Header Fields",
            Self::Malformed(_) | Self::Smuggling(_) => "Bad Request",
            Self::MissingHost => "Bad Request: missing Host header",
            Self::DuplicateHost => "Bad Request: duplicate Host header",
            Self::Path(_) => "Bad Request: invalid path",
            Self::UnsupportedVersion => "HTTP Version Not Supported",
        }
    }
}

/// Why a chunked body was refused. Any of these ends the connection: the framing is lost.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The chunk-size line is not `1*HEXDIG *chunk-ext`.
    #[error("invalid chunk-size line")]
    BadSize,
    /// The chunk size has more than 16 hex digits.
    #[error("chunk size overflows 64 bits")]
    SizeOverflow,
    /// The chunk-size line is longer than `Limits::max_chunk_line_bytes`.
    #[error("chunk-size line too long")]
    LineTooLong,
    /// A line or a chunk's data does not end with CRLF (a bare LF included).
    #[error("missing CRLF in chunked framing")]
    MissingCrlf,
    /// The trailer section is longer than `Limits::max_trailer_bytes`.
    #[error("trailer section too large")]
    TrailerTooLarge,
    /// A trailer line is not `field-name ":" field-value`.
    #[error("invalid trailer field")]
    BadTrailer,
}

#[cfg(test)]
mod tests {
    use super::HeadError;

    #[test]
    fn statuses_follow_the_rfc() {
        assert_eq!(HeadError::TooLarge.status(), 431);
        assert_eq!(HeadError::TooManyHeaders.status(), 431);
        assert_eq!(HeadError::Malformed("x").status(), 400);
        assert_eq!(HeadError::Smuggling("x").status(), 400);
        assert_eq!(HeadError::MissingHost.status(), 400);
        assert_eq!(HeadError::DuplicateHost.status(), 400);
        assert_eq!(HeadError::UnsupportedVersion.status(), 505);
    }

    #[test]
    fn messages_never_carry_the_detail() {
        let secret = "detail for the log";
        assert!(!HeadError::Malformed(secret).message().contains(secret));
        assert!(!HeadError::Smuggling(secret).message().contains(secret));
        assert!(HeadError::Smuggling(secret).to_string().contains(secret));
    }
}
