//! Per-core pool of idle upstream connections, keyed by [`PoolKey`]: the node address and, for
//! TLS, the client configuration and the server name (as APISIX keys its pool by scheme, host,
//! port, SNI and client certificate), so a TLS connection is only reused for the name it was
//! verified for.
//!
//! Each worker owns its pool (no lock, no sharing): a connection is only ever reused by the core
//! that opened it. Connections are handed out last-in first-out (the warmest first), dropped once
//! they have served `keepalive_pool.requests` requests or idled past `idle_timeout`, and at most
//! `keepalive_pool.size` idle ones are kept per node address, whatever their server names: with
//! `pass_host: pass` the client picks the server name, and a client sending many names must not
//! make the pool keep a connection for each (APISIX caps each name separately). Idle
//! connections are listed per address, so finding one for a name scans at most `size` entries. A connection idle for a while is checked
//! with a non-blocking `MSG_PEEK` before reuse ([`UpStream::still_open`]), so one the upstream
//! has closed is discarded instead of failing a request; the proxy still retries the rare race
//! on a fresh connection when that is safe.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::model::KeepalivePool;

use super::stream::UpStream;

/// Idle time after which a pooled connection is probed before reuse.
const PROBE_AFTER: Duration = Duration::from_millis(250);

/// What an idle connection may be reused for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The node's address.
    pub addr: SocketAddr,
    /// For TLS: the [`super::tls::Connector`] id (trust settings, client certificate) and the
    /// server name the connection was opened (and its certificate verified) for.
    pub tls: Option<(u64, ServerName<'static>)>,
}

/// An upstream connection and its history.
pub struct UpConn {
    /// The connection.
    pub stream: UpStream,
    /// Requests already served on it.
    pub served: u32,
    /// Whether it came from the pool (a failure before any response byte may then be retried).
    pub reused: bool,
}

struct Idle {
    tls: Option<(u64, ServerName<'static>)>,
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
    /// Takes the most recently parked live connection for `key`, if any.
    pub fn take(&mut self, key: &PoolKey) -> Option<UpConn> {
        let list = self.idle.get_mut(&key.addr)?;
        let now = Instant::now();
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].tls != key.tls {
                continue;
            }
            let idle = list.remove(i);
            let age = now.saturating_duration_since(idle.since);
            if age >= idle.idle_timeout {
                continue;
            }
            if age >= PROBE_AFTER && !idle.conn.stream.still_open() {
                continue;
            }
            let mut conn = idle.conn;
            conn.reused = true;
            return Some(conn);
        }
        None
    }

    /// Parks `conn` for reuse, unless it has served its quota. When `size` connections to the
    /// address are idle already, the oldest makes room.
    pub fn put(&mut self, key: PoolKey, conn: UpConn, cfg: &KeepalivePool) {
        if conn.served >= cfg.requests || cfg.idle_timeout.is_zero() || cfg.size == 0 {
            return;
        }
        let list = self.idle.entry(key.addr).or_default();
        if list.len() >= cfg.size as usize {
            list.remove(0);
        }
        list.push(Idle {
            tls: key.tls,
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
