//! A streaming decoder for the chunked transfer coding (RFC 9112 §7.1): [`ChunkedDecoder`]
//! turns framed bytes into [`Decoded`] data spans; [`write_chunk_header`] and
//! [`LAST_CHUNK`] write the framing back.
//!
//! # Partial input
//!
//! The decoder keeps all partial-line state itself, so the caller never presents a byte
//! twice: it drops `consumed` bytes and calls again with the rest, or with newly read bytes
//! when nothing is left. A call consumes everything it is given except when it
//!
//! - returns a data span and more data follows (one span per call),
//! - is done: the rest is the next message,
//! - meets an invalid byte after valid ones: it returns what came before (data included)
//!   and the next call, which starts at that byte, returns the error.
//!
//! `Ok` with `consumed == 0`, no data and not done therefore only happens for empty input,
//! and however the input is split, the data handed out and the error (if any) are the same.
//!
//! # Strictness
//!
//! Two parsers that disagree on where a chunked body ends are a request-smuggling hole, so
//! the decoder accepts only the RFC grammar: `1*HEXDIG` sizes of at most 16 digits, chunk
//! extensions as tokens or quoted strings, CRLF (never a bare LF) after every line and
//! every chunk's data, and a trailer section of `name: value` lines, which is discarded.
//! Errors are sticky: after one, every call returns it again.

use super::syntax::{is_ows, is_tchar};
use super::{ChunkError, Limits};
use std::ops::Range;

/// The last chunk with an empty trailer section, ending a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The most hex digits a chunk size may have: 16 fill a `u64`.
const MAX_SIZE_DIGITS: u8 = 16;

/// What one [`ChunkedDecoder::decode`] call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used up; the caller drops them.
    pub consumed: usize,
    /// Body data within `input[..consumed]`, possibly empty.
    pub data: Range<usize>,
    /// The last chunk and the trailer section have been read; `input[consumed..]` is the
    /// next message.
    pub done: bool,
}

/// Where in the chunked grammar the decoder stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// In the hex digits of a chunk size.
    Size,
    /// After whitespace that follows the size or an extension value: `;` must come.
    ExtSemicolonNext,
    /// After `;`, before an extension name.
    ExtNameNext,
    ExtName,
    /// After whitespace that follows an extension name: `=` or `;` must come.
    ExtAfterName,
    /// After `=`, before an extension value.
    ExtValueNext,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtQuotedEnd,
    /// After the CR that ends a size line.
    SizeLf,
    /// In a chunk's data.
    Data {
        remaining: u64,
    },
    /// After a chunk's data.
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    Done,
    Failed(ChunkError),
}

/// Decodes one chunked body, fed in pieces of any size.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read.
    size: u64,
    size_digits: u8,
    /// Bytes of the current size line so far, CRLF excluded.
    line_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
    body_bytes: u64,
    max_line: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: &Limits) -> Self {
        Self {
            state: State::Size,
            size: 0,
            size_digits: 0,
            line_len: 0,
            trailer_len: 0,
            body_bytes: 0,
            max_line: limits.max_chunk_line_bytes,
            max_trailer: limits.max_trailer_bytes,
        }
    }

    /// Feeds `input`; see the module doc for the partial-input contract. Errors are sticky.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkError> {
        let mut pos = 0;
        let mut data = 0..0;
        loop {
            match self.state {
                State::Done => break,
                State::Failed(ref e) => return Err(e.clone()),
                State::Data { remaining } => {
                    let available = input.len() - pos;
                    if available == 0 || !data.is_empty() {
                        break;
                    }
                    let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    data = pos..pos + take;
                    pos += take;
                    self.body_bytes = self.body_bytes.saturating_add(take as u64);
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                _ => {
                    let Some(&b) = input.get(pos) else { break };
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e.clone());
                        if pos == 0 {
                            return Err(e);
                        }
                        // Hand over what came before the offending byte first; the
                        // next call, which starts at that byte, reports the error.
                        break;
                    }
                    pos += 1;
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            data,
            done: self.is_done(),
        })
    }

    /// Whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes decoded so far, for the body size limit.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Advances over one framing byte (anything but chunk data).
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        let in_size_line = self.in_size_line();
        if in_size_line && b != b'\r' && b != b'\n' {
            self.line_len += 1;
            if self.line_len > self.max_line {
                return Err(ChunkError::LineTooLong);
            }
        }
        if self.in_trailer() {
            self.trailer_len += 1;
            if self.trailer_len > self.max_trailer {
                return Err(ChunkError::TrailerTooLarge);
            }
        }
        self.state = match (&self.state, b) {
            (Size, _) if b.is_ascii_hexdigit() => {
                if self.size_digits == MAX_SIZE_DIGITS {
                    return Err(ChunkError::SizeOverflow);
                }
                self.size_digits += 1;
                // Cannot overflow: at most 16 digits of 4 bits each.
                self.size = (self.size << 4) | u64::from(hex_value(b));
                Size
            }
            (Size, _) if self.size_digits == 0 => return Err(ChunkError::BadSize),
            (Size | ExtToken | ExtQuotedEnd, _) if is_ows(b) => ExtSemicolonNext,
            (Size | ExtSemicolonNext | ExtName | ExtAfterName | ExtToken | ExtQuotedEnd, b';') => {
                ExtNameNext
            }
            (ExtSemicolonNext, _) if is_ows(b) => ExtSemicolonNext,
            (ExtNameNext, _) if is_ows(b) => ExtNameNext,
            (ExtNameNext | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtAfterName, _) if is_ows(b) => ExtAfterName,
            (ExtName | ExtAfterName, b'=') => ExtValueNext,
            (ExtValueNext, _) if is_ows(b) => ExtValueNext,
            (ExtValueNext, b'"') => ExtQuoted,
            (ExtValueNext | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtQuotedEnd,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedEscape, _) if is_quoted_pair_char(b) => ExtQuoted,
            (Size | ExtName | ExtToken | ExtQuotedEnd, b'\r') => SizeLf,
            // A bare LF anywhere in a size line, even where nothing may end it.
            (_, b'\n') if in_size_line => return Err(ChunkError::MissingCrlf),
            (SizeLf, b'\n') => self.end_size_line(),
            (SizeLf, _) => return Err(ChunkError::MissingCrlf),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (DataCr | DataLf, _) => return Err(ChunkError::MissingCrlf),
            (TrailerLineStart, b'\r') => EndLf,
            (TrailerLineStart, b'\n') => return Err(ChunkError::MissingCrlf),
            (TrailerLineStart | TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b'\n') => return Err(ChunkError::MissingCrlf),
            (TrailerValue, _) if is_field_value_char(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerLineStart,
            (TrailerLf, _) => return Err(ChunkError::MissingCrlf),
            (EndLf, b'\n') => Done,
            (EndLf, _) => return Err(ChunkError::MissingCrlf),
            (TrailerLineStart | TrailerName | TrailerValue, _) => {
                return Err(ChunkError::BadTrailer)
            }
            _ => return Err(ChunkError::BadSize),
        };
        Ok(())
    }

    /// The LF of a size line: start the chunk's data, or the trailer after the last chunk.
    fn end_size_line(&mut self) -> State {
        let size = self.size;
        self.size = 0;
        self.size_digits = 0;
        self.line_len = 0;
        if size == 0 {
            State::TrailerLineStart
        } else {
            State::Data { remaining: size }
        }
    }

    fn in_size_line(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            Size | ExtSemicolonNext
                | ExtNameNext
                | ExtName
                | ExtAfterName
                | ExtValueNext
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtQuotedEnd
        )
    }

    fn in_trailer(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            TrailerLineStart | TrailerName | TrailerValue | TrailerLf | EndLf
        )
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// `qdtext` of RFC 9110 §5.6.4.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// What may follow a backslash in a quoted string.
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7E | 0x80..=0xFF)
}

/// A byte of a field value: visible, SP, HTAB or obs-text; never NUL or another control.
fn is_field_value_char(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7E | 0x80..=0xFF)
}

/// Appends a chunk header, `{size:x}\r\n`, for re-encoding a body as chunked.
/// A size of 0 writes the last-chunk line; prefer [`LAST_CHUNK`], which ends the trailer too.
pub fn write_chunk_header(out: &mut Vec<u8>, size: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut n = size;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
