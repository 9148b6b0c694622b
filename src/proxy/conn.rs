//! The client connection loop: read a request head, route it, run the exchange with the
//! upstream, and go round again while the connection stays keep-alive.
//!
//! Requests on one connection are handled strictly one after another; bytes of a pipelined next
//! request simply wait in the read buffer, so pipelined requests are answered in order. Slow
//! clients are bounded by the header timeout (the whole head must arrive in time) and the
//! keep-alive timeout (an idle connection waiting for its next request).

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http::{parse_request, HeadError, RequestHead};

use super::exchange::{exchange, Next};
use super::io::{read_some, write_all, IoFail};
use super::reply;
use super::worker::{ConnGuard, Worker};

/// Initial size of a connection's read buffer; it grows up to the header limit for big heads.
/// nginx starts at 1 KiB (`client_header_buffer_size`); 2 KiB holds a head with a typical JWT
/// in one read (bigger heads take another read), and is most of what an idle keep-alive
/// connection costs.
pub const READ_BUF: usize = 2 * 1024;

/// A read buffer grown past this by a big head is replaced by a fresh one after its request.
const READ_BUF_KEEP: usize = 4 * READ_BUF;

/// Facts about one accepted connection.
#[derive(Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The local port it connected to.
    pub local_port: u16,
    /// Its socket, for the graceful-shutdown idle registry.
    pub fd: RawFd,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// The buffers one connection reuses for every request.
pub struct Bufs {
    /// Bytes read from the client; the current request's head starts at 0.
    pub rbuf: Vec<u8>,
    /// Heads (and small bodies) being written, either way.
    pub wbuf: Vec<u8>,
    /// Bytes read from the upstream, and the relay buffer for request bodies.
    pub ubuf: Vec<u8>,
}

/// Serves one client connection until it closes, fails or the worker drains.
pub async fn serve<S: AsyncReadRent + AsyncWriteRent>(w: Rc<Worker>, io: S, info: ConnInfo) {
    let guard = w.track(info.fd);
    serve_counted(w, io, info, guard).await
}

/// Like [`serve`], for a connection counted since before its first request (a TLS connection
/// is, from its handshake on).
pub async fn serve_counted<S: AsyncReadRent + AsyncWriteRent>(
    w: Rc<Worker>,
    mut io: S,
    info: ConnInfo,
    _guard: ConnGuard,
) {
    let mut bufs = Bufs {
        rbuf: Vec::with_capacity(READ_BUF),
        wbuf: Vec::new(),
        ubuf: Vec::new(),
    };
    loop {
        if w.closing() {
            break;
        }
        let head = match read_head(&w, &mut io, &mut bufs.rbuf, info.fd).await {
            HeadRead::Head(h) => h,
            HeadRead::Closed => break,
            HeadRead::Reject(status, msg) => {
                let cfg = &w.shared.config;
                reply::json_error(&mut bufs.wbuf, status, msg, &cfg.server_header, true);
                let _ = write_all(&mut io, &mut bufs.wbuf, cfg.timeouts.send).await;
                break;
            }
        };
        // The write and upstream buffers are the worker's, lent for this exchange only.
        bufs.wbuf = w.take_buf();
        bufs.ubuf = w.take_buf();
        // Boxed: the exchange's state (about 4.5 KiB) lives on the heap only while a request
        // is in flight, instead of inside every connection's task, idle ones included. One
        // allocation per request buys a third of an idle connection's memory.
        let next = Box::pin(exchange(&w, &mut io, &mut bufs, &head, &info)).await;
        w.give_buf(std::mem::take(&mut bufs.wbuf));
        w.give_buf(std::mem::take(&mut bufs.ubuf));
        match next {
            Next::KeepAlive => {}
            Next::Close => break,
        }
        if bufs.rbuf.is_empty() && bufs.rbuf.capacity() > READ_BUF_KEEP {
            bufs.rbuf = Vec::with_capacity(READ_BUF);
        }
    }
}

enum HeadRead {
    Head(RequestHead),
    Closed,
    Reject(u16, &'static str),
}

/// Reads until `rbuf` holds a complete request head, within the keep-alive timeout while no byte
/// of it has arrived and the header timeout once one has.
async fn read_head<S: AsyncReadRent>(
    w: &Worker,
    io: &mut S,
    rbuf: &mut Vec<u8>,
    fd: RawFd,
) -> HeadRead {
    let cfg = &w.shared.config;
    let limits = &w.shared.limits;
    let mut deadline = (!rbuf.is_empty()).then(|| Instant::now() + cfg.timeouts.client_header);
    let mut scanned = 0;
    loop {
        // Parse only once the end of the head can be in the buffer: a slow client sending one
        // byte at a time must not make us re-parse the whole head per byte.
        if has_head_end(rbuf, scanned) {
            match parse_request(rbuf, limits) {
                Ok(Some(head)) => return HeadRead::Head(head),
                Ok(None) => {}
                Err(e) => return reject(&e),
            }
        } else if rbuf.len() >= limits.max_header_bytes {
            return reject(&HeadError::TooLarge);
        }
        scanned = rbuf.len().saturating_sub(3);
        let idle = rbuf.is_empty();
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None if cfg.timeouts.keepalive.is_zero() => Duration::from_secs(1),
            None => cfg.timeouts.keepalive,
        };
        if idle {
            w.set_idle(fd, true);
        }
        let room = limits.max_header_bytes.saturating_sub(rbuf.len()).max(1);
        let res = read_some(io, rbuf, READ_BUF.min(room), room, wait).await;
        if idle {
            w.set_idle(fd, false);
        }
        match res {
            Ok(_) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + cfg.timeouts.client_header);
                }
            }
            // `idle`, not `rbuf`: a timed-out read hands back a fresh, empty buffer.
            Err(IoFail::Timeout) if !idle => return HeadRead::Reject(408, "408 Request Timeout"),
            // Idle keep-alive expiry, a client closing between requests, a reset, or a drain.
            Err(_) => return HeadRead::Closed,
        }
    }
}

fn reject(e: &HeadError) -> HeadRead {
    tracing::debug!(error = %e, "bad request head");
    HeadRead::Reject(e.status(), e.message())
}

/// Whether `buf` may contain the blank line ending a head (`\n\r\n` or `\n\n`), looking only at
/// bytes from `from` on.
fn has_head_end(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.min(buf.len())..];
    tail.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && tail.get(i + 2) == Some(&b'\n')))
    })
}

#[cfg(test)]
mod tests {
    use super::has_head_end;

    #[test]
    fn head_end_detection() {
        assert!(has_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0));
        assert!(has_head_end(b"GET / HTTP/1.1\nHost: a\n\n", 0));
        assert!(!has_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(!has_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0));
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(has_head_end(full, full.len() - 4));
    }
}
