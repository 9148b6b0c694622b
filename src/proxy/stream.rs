//! [`UpStream`]: an upstream connection, plain TCP or TLS over it, behind monoio's
//! ownership-passing I/O traits so the exchange code is the same for both.
//!
//! [`UpStream::still_open`] is the pool's liveness probe: a non-blocking `MSG_PEEK` on the TCP
//! socket. An idle HTTP/1.1 connection has nothing to read, so any byte means it is done: a FIN,
//! an RST, a stray response, and for TLS a `close_notify` alert (or anything else the server
//! sent unasked; a TLS 1.3 server's session tickets arrive before its first response and are
//! read with it).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::ClientTlsStream;

/// A connection to an upstream node.
pub enum UpStream {
    /// `scheme: http`.
    Plain(TcpStream),
    /// `scheme: https`; `fd` is the TCP socket's, which the TLS stream owns (kept for probing).
    Tls {
        /// The TLS session over the socket.
        stream: Box<ClientTlsStream<TcpStream>>,
        /// The socket's descriptor, valid as long as `stream` lives.
        fd: RawFd,
    },
}

impl UpStream {
    /// A TLS stream over `tcp`'s socket, whose descriptor is `fd`.
    pub fn tls(stream: ClientTlsStream<TcpStream>, fd: RawFd) -> UpStream {
        UpStream::Tls {
            stream: Box::new(stream),
            fd,
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            UpStream::Plain(s) => s.as_raw_fd(),
            UpStream::Tls { fd, .. } => *fd,
        }
    }

    /// `true` when the peer has neither closed the connection nor sent unsolicited bytes.
    pub fn still_open(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: the fd is owned by this connection and stays open for this call; the buffer is
        // one valid byte; MSG_DONTWAIT makes the call non-blocking.
        let n = unsafe {
            libc::recv(
                self.fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

impl AsyncReadRent for UpStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.read(buf).await,
            UpStream::Tls { stream, .. } => stream.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.readv(buf).await,
            UpStream::Tls { stream, .. } => stream.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.write(buf).await,
            UpStream::Tls { stream, .. } => stream.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.writev(buf).await,
            UpStream::Tls { stream, .. } => stream.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            UpStream::Plain(s) => s.flush().await,
            UpStream::Tls { stream, .. } => stream.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpStream::Plain(s) => s.shutdown().await,
            UpStream::Tls { stream, .. } => stream.shutdown().await,
        }
    }
}
