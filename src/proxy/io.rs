//! Small helpers over monoio's ownership-passing I/O: read into a `Vec`'s spare capacity, write a
//! whole buffer or a range of it, each under a timeout.

use std::io;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// Why an I/O step failed.
#[derive(Debug)]
pub enum IoFail {
    /// The peer closed the connection (a read returned 0 bytes).
    Eof,
    /// The step did not make progress in time.
    Timeout,
    /// The socket reported an error.
    Err(io::Error),
    /// The peer sent bytes that break the protocol.
    Invalid,
}

/// Reads once into `buf`'s spare capacity (growing it to at least `spare` free bytes), at most
/// `max` bytes. Returns the number of bytes appended; `Eof` when the peer closed.
pub async fn read_some<S: AsyncReadRent>(
    io: &mut S,
    buf: &mut Vec<u8>,
    spare: usize,
    max: usize,
    limit: Duration,
) -> Result<usize, IoFail> {
    if buf.capacity() - buf.len() < spare {
        buf.reserve(spare);
    }
    let start = buf.len();
    let end = buf.capacity().min(start.saturating_add(max.max(1)));
    let owned = std::mem::take(buf);
    match monoio::time::timeout(limit, io.read(owned.slice_mut(start..end))).await {
        Ok((res, slice)) => {
            *buf = slice.into_inner();
            match res {
                Ok(0) => Err(IoFail::Eof),
                Ok(n) => Ok(n),
                Err(e) => Err(IoFail::Err(e)),
            }
        }
        // The buffer went with the cancelled read; the caller closes this connection anyway.
        Err(_) => {
            *buf = Vec::with_capacity(spare);
            Err(IoFail::Timeout)
        }
    }
}

/// Writes all of `buf[range]`.
pub async fn write_range<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut Vec<u8>,
    range: std::ops::Range<usize>,
    limit: Duration,
) -> Result<(), IoFail> {
    if range.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(buf);
    match monoio::time::timeout(limit, io.write_all(owned.slice(range))).await {
        Ok((res, slice)) => {
            *buf = slice.into_inner();
            res.map(|_| ()).map_err(IoFail::Err)
        }
        Err(_) => Err(IoFail::Timeout),
    }
}

/// Writes all of `buf` and clears it (keeping its capacity).
pub async fn write_all<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> Result<(), IoFail> {
    let len = buf.len();
    let res = write_range(io, buf, 0..len, limit).await;
    buf.clear();
    res
}
