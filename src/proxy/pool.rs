//! Per-core pool of idle upstream connections, keyed by upstream address.
//!
//! Each worker owns its pool (no lock, no sharing): a connection is only ever reused by the core
//! that opened it. Connections are handed out last-in first-out (the warmest first), dropped once
//! they have served `keepalive_pool.requests` requests or idled past `idle_timeout`, and at most
//! `keepalive_pool.size` idle ones are kept per address. A connection idle for a while is checked
//! with a non-blocking `MSG_PEEK` before reuse, so one the upstream has closed is discarded
//! instead of failing a request; the proxy still retries the rare race on a fresh connection
//! when that is safe.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::model::KeepalivePool;

/// Idle time after which a pooled connection is probed before reuse.
const PROBE_AFTER: Duration = Duration::from_millis(250);

/// An upstream connection and its history.
pub struct UpConn {
    /// The socket.
    pub stream: TcpStream,
    /// Requests already served on it.
    pub served: u32,
    /// Whether it came from the pool (a failure before any response byte may then be retried).
    pub reused: bool,
}

struct Idle {
    conn: UpConn,
    since: Instant,
    idle_timeout: Duration,
}

/// The worker's idle upstream connections.
#[derive(Default)]
pub struct Pool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
}

impl Pool {
    /// Takes the most recently parked live connection to `addr`, if any.
    pub fn take(&mut self, addr: SocketAddr) -> Option<UpConn> {
        let list = self.idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(idle) = list.pop() {
            let age = now.saturating_duration_since(idle.since);
            if age >= idle.idle_timeout {
                continue;
            }
            if age >= PROBE_AFTER && !still_open(&idle.conn.stream) {
                continue;
            }
            let mut conn = idle.conn;
            conn.reused = true;
            return Some(conn);
        }
        None
    }

    /// Parks `conn` for reuse, unless it has served its quota or the pool for `addr` is full
    /// (then the oldest idle connection makes room).
    pub fn put(&mut self, addr: SocketAddr, conn: UpConn, cfg: &KeepalivePool) {
        if conn.served >= cfg.requests || cfg.idle_timeout.is_zero() || cfg.size == 0 {
            return;
        }
        let list = self.idle.entry(addr).or_default();
        if list.len() >= cfg.size as usize {
            list.remove(0);
        }
        list.push(Idle {
            conn,
            since: Instant::now(),
            idle_timeout: cfg.idle_timeout,
        });
    }

    /// Closes connections idle past their timeout (run periodically by the worker).
    pub fn sweep(&mut self) {
        let now = Instant::now();
        self.idle.retain(|_, list| {
            list.retain(|i| now.saturating_duration_since(i.since) < i.idle_timeout);
            !list.is_empty()
        });
    }

    /// Closes every idle connection (shutdown).
    pub fn clear(&mut self) {
        self.idle.clear();
    }

    /// Number of idle connections (for tests and stats).
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Whether no connection is idle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `true` when the peer has neither closed the connection nor sent unsolicited bytes.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: the fd is owned by `stream` and stays open for this call; the buffer is one
    // valid byte; MSG_DONTWAIT makes the call non-blocking.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}
