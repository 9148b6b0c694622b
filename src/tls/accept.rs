//! One TLS connection: the handshake, then [`serve_counted`] with scheme `https`.
//!
//! The handshake has `timeouts.client_header_secs` to complete (nginx bounded it by
//! `client_header_timeout` too, before `ssl_handshake_timeout`). The connection is counted from
//! accept on, and registered as idle while it handshakes, so a drain closes it at once, like a
//! keep-alive connection between requests. A connection that ends sends `close_notify`. A failed
//! handshake is logged at debug level with the
//! peer and rustls's reason, never with key material, and only ends its own task.
//!
//! When some ssl object restricts `ssl_protocols`, the ClientHello is read first with rustls's
//! [`Acceptor`](rustls::server::Acceptor) to learn the SNI, so the handshake runs under the
//! config allowing that object's versions (a TLS 1.2 client asking for a TLS 1.3-only name gets
//! a `protocol_version` alert, as with APISIX); the bytes read are then replayed into the
//! handshake ([`Replay`]). Otherwise the handshake starts at once.

use std::io;
use std::rc::Rc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, RawBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::{ServerTlsStream, TlsAcceptor, TlsError};

use crate::proxy::conn::serve_counted;
use crate::proxy::io::{read_some, write_all, IoFail};
use crate::proxy::{ConnInfo, Worker};

use super::sni::lookup_key;
use super::Acceptors;

/// The longest a closing connection waits to send its `close_notify` alert.
const CLOSE_NOTIFY: std::time::Duration = std::time::Duration::from_secs(1);

/// The most ClientHello bytes read before the handshake proper (rustls refuses a larger hello
/// first).
const MAX_HELLO: usize = 64 * 1024;

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client closed the connection.
    #[error("the client closed the connection")]
    Closed,
    /// The ClientHello is larger than [`MAX_HELLO`].
    #[error("ClientHello too large")]
    TooLarge,
    /// A socket error, or a TLS error reported through the socket layer.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// rustls refused the handshake.
    #[error("{0}")]
    Tls(#[from] rustls::Error),
}

impl From<TlsError> for HandshakeError {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => HandshakeError::Closed,
            TlsError::Io(e) => HandshakeError::Io(e),
            TlsError::Rustls(e) => HandshakeError::Tls(e),
        }
    }
}

/// A client connection after its handshake.
pub type TlsConn = Guarded<ServerTlsStream<Replay<TcpStream>>>;

/// Serves one accepted connection on a TLS listener.
pub async fn serve(w: Rc<Worker>, tcp: TcpStream, info: ConnInfo, acceptors: Rc<Acceptors>) {
    let guard = w.track(info.fd);
    w.set_idle(info.fd, true);
    let limit = w.shared.config.timeouts.client_header;
    let done = monoio::time::timeout(limit, handshake(&w, &acceptors, tcp)).await;
    w.set_idle(info.fd, false);
    match done {
        Ok(Ok(mut conn)) => {
            let send = w.shared.config.timeouts.send.min(CLOSE_NOTIFY);
            serve_counted(w, &mut conn, info, guard).await;
            // close_notify, so a client reading a body delimited by the close can tell the end
            // from a truncation; bounded, and skipped after an interrupted write.
            let _ = monoio::time::timeout(send, conn.shutdown()).await;
        }
        Ok(Err(e)) => tracing::debug!(peer = %info.peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %info.peer, "TLS handshake timed out"),
    }
}

async fn handshake(
    w: &Worker,
    acceptors: &Acceptors,
    mut tcp: TcpStream,
) -> Result<TlsConn, HandshakeError> {
    let snapshot = w.snapshot();
    let (config, replay) = if snapshot.tls.restricts_versions() {
        let (hello, sni) = client_hello(w, &mut tcp).await?;
        let name = sni.as_deref().map(lookup_key).or(w
            .shared
            .config
            .fallback_sni
            .as_deref()
            .map(Into::into));
        let versions = name
            .and_then(|n| snapshot.tls.find(&n).map(|e| e.versions))
            .unwrap_or(crate::model::TlsVersions::ALL);
        (acceptors.config(versions), Replay::new(tcp, hello))
    } else {
        (
            acceptors.config(crate::model::TlsVersions::ALL),
            Replay::new(tcp, Vec::new()),
        )
    };
    let stream = TlsAcceptor::from(config.clone()).accept(replay).await?;
    Ok(Guarded::new(stream))
}

/// Reads the ClientHello; returns the bytes read and its SNI. A malformed hello gets rustls's
/// alert.
async fn client_hello(
    w: &Worker,
    tcp: &mut TcpStream,
) -> Result<(Vec<u8>, Option<String>), HandshakeError> {
    let limit = w.shared.config.timeouts.client_header;
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buf = Vec::with_capacity(2048);
    let mut fed = 0;
    loop {
        if buf.len() >= MAX_HELLO {
            return Err(HandshakeError::TooLarge);
        }
        let room = MAX_HELLO - buf.len();
        match read_some(tcp, &mut buf, 2048, room, limit).await {
            Ok(_) => {}
            Err(IoFail::Err(e)) => return Err(e.into()),
            Err(_) => return Err(HandshakeError::Closed),
        }
        while fed < buf.len() {
            match acceptor.read_tls(&mut &buf[fed..])? {
                0 => break,
                n => fed += n,
            }
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_owned);
                return Ok((buf, sni));
            }
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                if alert.write_all(&mut out).is_ok() {
                    let _ = write_all(tcp, &mut out, limit).await;
                }
                return Err(e.into());
            }
        }
    }
}

/// A stream whose first reads return bytes already read from it.
pub struct Replay<IO> {
    io: IO,
    prefix: Vec<u8>,
    at: usize,
}

impl<IO> Replay<IO> {
    /// `io`, with `prefix` to be read before anything else.
    pub fn new(io: IO, prefix: Vec<u8>) -> Replay<IO> {
        Replay { io, prefix, at: 0 }
    }

    /// Copies replayed bytes into `buf`; `None` once there are none left.
    fn replay<T: IoBufMut>(&mut self, buf: &mut T) -> Option<usize> {
        let left = self.prefix.len() - self.at;
        if left == 0 {
            return None;
        }
        let n = left.min(buf.bytes_total());
        // SAFETY: `write_ptr` is valid for `bytes_total` bytes and `n` is at most that; the
        // source is `n` initialised bytes of `prefix`, which does not overlap a caller's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.prefix.as_ptr().add(self.at), buf.write_ptr(), n);
            buf.set_init(n);
        }
        self.at += n;
        if self.at == self.prefix.len() {
            self.prefix = Vec::new();
            self.at = 0;
        }
        Some(n)
    }
}

impl<IO: AsyncReadRent> AsyncReadRent for Replay<IO> {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        match self.replay(&mut buf) {
            Some(n) => (Ok(n), buf),
            None => self.io.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if self.prefix.is_empty() {
            return self.io.readv(buf).await;
        }
        // SAFETY: the raw buffer views the first iovec of `buf`, which outlives this call.
        let n = match unsafe { RawBuf::new_from_iovec_mut(&mut buf) } {
            Some(mut raw) => self.replay(&mut raw).unwrap_or(0),
            None => 0,
        };
        // SAFETY: `n` bytes were written at the start of the first iovec.
        unsafe { buf.set_init(n) };
        (Ok(n), buf)
    }
}

impl<IO: AsyncWriteRent> AsyncWriteRent for Replay<IO> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        self.io.write(buf).await
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        self.io.writev(buf).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.io.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// A TLS stream that refuses further I/O in a direction where an operation was dropped before it
/// finished (a timeout). `monoio-rustls` lends its internal buffer to the socket for the length
/// of a read or write; a dropped operation takes it along, and the next call on that side would
/// panic. Reads and writes use separate buffers, so a timed-out read still lets the gateway write
/// its `408` answer.
pub struct Guarded<S> {
    inner: S,
    read_lost: bool,
    write_lost: bool,
}

impl<S> Guarded<S> {
    /// Guards `inner`.
    pub fn new(inner: S) -> Guarded<S> {
        Guarded {
            inner,
            read_lost: false,
            write_lost: false,
        }
    }
}

fn interrupted() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "an earlier TLS operation on this connection was interrupted",
    )
}

impl<S: AsyncReadRent> AsyncReadRent for Guarded<S> {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.read_lost {
            return (Err(interrupted()), buf);
        }
        self.read_lost = true;
        let r = self.inner.read(buf).await;
        self.read_lost = false;
        r
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.read_lost {
            return (Err(interrupted()), buf);
        }
        self.read_lost = true;
        let r = self.inner.readv(buf).await;
        self.read_lost = false;
        r
    }
}

impl<S: AsyncWriteRent> AsyncWriteRent for Guarded<S> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.write_lost {
            return (Err(interrupted()), buf);
        }
        self.write_lost = true;
        let r = self.inner.write(buf).await;
        self.write_lost = false;
        r
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.write_lost {
            return (Err(interrupted()), buf);
        }
        self.write_lost = true;
        let r = self.inner.writev(buf).await;
        self.write_lost = false;
        r
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.write_lost {
            return Err(interrupted());
        }
        self.write_lost = true;
        let r = self.inner.flush().await;
        self.write_lost = false;
        r
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        if self.write_lost {
            return Err(interrupted());
        }
        self.write_lost = true;
        let r = self.inner.shutdown().await;
        self.write_lost = false;
        r
    }
}
