//! Per-core state: everything one worker thread owns and its connections share without locks.
//!
//! The [`Shared`] part crosses threads (config, the published snapshot, the shutdown flag); the
//! [`Worker`] part is `!Send` and lives on one core: the upstream pool, balancer positions, the
//! worker's handle on the current snapshot, and the registry of idle client connections that a
//! graceful shutdown closes.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::NodeConfig;
use crate::snapshot::Snapshot;

use super::balancer::Balancers;
use super::pool::Pool;
use super::tls::UpstreamTls;

/// State shared by every worker and the control thread.
pub struct Shared {
    /// The node config (immutable while running).
    pub config: NodeConfig,
    /// HTTP parser limits derived from the config.
    pub limits: crate::http::Limits,
    /// The current compiled configuration.
    snapshot: ArcSwap<Snapshot>,
    /// Bumped after each publication; workers compare it to notice a new snapshot cheaply.
    generation: AtomicU64,
    /// Set once on SIGTERM/SIGINT.
    pub shutdown: AtomicBool,
    /// `limit-count` counters (policy `local`): one per node, shared by every worker, kept
    /// across configuration changes.
    pub counters: crate::plugins::limit_count::Counters,
    /// Trusted roots and client configurations for `https` upstreams.
    pub upstream_tls: UpstreamTls,
}

impl Shared {
    /// Shared state starting with `snapshot`.
    pub fn new(config: NodeConfig, snapshot: Snapshot) -> Shared {
        let limits = crate::http::Limits {
            max_header_bytes: config.limits.max_header_bytes,
            max_headers: config.limits.max_headers,
            ..Default::default()
        };
        Shared {
            limits,
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(1),
            shutdown: AtomicBool::new(false),
            counters: crate::plugins::limit_count::Counters::new(),
            upstream_tls: UpstreamTls::new(config.ssl_trusted_certificate.clone()),
            config,
        }
    }

    /// Publishes a new snapshot: every worker uses it for requests that start from now on;
    /// requests in flight finish on the one they started with.
    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current snapshot (control-plane use; workers go through [`Worker::snapshot`]).
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The current snapshot, borrowed without touching its reference count: for the TLS
    /// certificate resolver, which runs inside rustls where the worker's handle is out of reach.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }
}

/// One worker's state.
/// Spare buffers a worker keeps at most (the most requests in flight at once it remembers).
pub const SPARE_MAX_COUNT: usize = 512;
/// Largest spare buffer kept; bigger ones are freed when their exchange ends.
pub const SPARE_MAX_BYTES: usize = 64 * 1024;

pub struct Worker {
    /// Cross-thread state.
    pub shared: Arc<Shared>,
    /// Worker index, for logs.
    pub id: usize,
    /// This core's idle upstream connections.
    pub pool: RefCell<Pool>,
    /// This core's balancer positions.
    pub balancers: RefCell<Balancers>,
    /// This core's verified-token cache (asymmetric JWTs).
    pub tokens: crate::plugins::token_cache::TokenCache,
    /// This core's idle Redis connections (`limit-count` policy `redis`).
    pub redis: crate::plugins::limit_count::Pools,
    // An `Rc` around the shared `Arc` on purpose: requests clone this core's `Rc` (a plain
    // increment) instead of the `Arc`, whose count is one cache line every core would bounce.
    #[allow(clippy::redundant_allocation)]
    snap: RefCell<(u64, Rc<Arc<Snapshot>>)>,
    idle: RefCell<HashSet<RawFd>>,
    /// Spare exchange buffers: a request takes its upstream and write buffers from here and
    /// gives them back when it ends, so a keep-alive connection waiting for its next request
    /// holds only its read buffer. Bounded in count and in the size of what is kept.
    spare: RefCell<Vec<Vec<u8>>>,
    /// Spare [`Edits`], lent like the buffers so their vectors keep their capacity.
    spare_edits: RefCell<Vec<crate::plugins::phase::Edits>>,
    active: Cell<usize>,
    closing: Cell<bool>,
}

impl Worker {
    /// A worker bound to `shared`.
    pub fn new(shared: Arc<Shared>, id: usize) -> Worker {
        let gen = shared.generation.load(Ordering::Acquire);
        let snap = Rc::new(shared.snapshot.load_full());
        let tokens = crate::plugins::token_cache::TokenCache::new(shared.config.jwt_cache_size);
        Worker {
            tokens,
            redis: crate::plugins::limit_count::Pools::new(),
            shared,
            id,
            pool: RefCell::default(),
            balancers: RefCell::default(),
            snap: RefCell::new((gen, snap)),
            idle: RefCell::default(),
            spare: RefCell::default(),
            spare_edits: RefCell::default(),
            active: Cell::new(0),
            closing: Cell::new(false),
        }
    }

    /// A buffer for one exchange (empty; whatever capacity an earlier exchange grew it to).
    pub fn take_buf(&self) -> Vec<u8> {
        self.spare.borrow_mut().pop().unwrap_or_default()
    }

    /// Gives back a buffer [`Worker::take_buf`] lent. Buffers grown past [`SPARE_MAX_BYTES`]
    /// (a huge head) are freed rather than kept, and at most [`SPARE_MAX_COUNT`] are kept.
    pub fn give_buf(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > SPARE_MAX_BYTES {
            return;
        }
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_MAX_COUNT {
            buf.clear();
            spare.push(buf);
        }
    }

    /// Empty [`Edits`](crate::plugins::phase::Edits) for one exchange.
    pub fn take_edits(&self) -> crate::plugins::phase::Edits {
        self.spare_edits.borrow_mut().pop().unwrap_or_default()
    }

    /// Gives back what [`Worker::take_edits`] lent, cleared.
    pub fn give_edits(&self, mut edits: crate::plugins::phase::Edits) {
        let mut spare = self.spare_edits.borrow_mut();
        if spare.len() < SPARE_MAX_COUNT {
            edits.reset();
            spare.push(edits);
        }
    }

    /// The snapshot for a request starting now. Costs one relaxed-contention atomic load when
    /// nothing changed; the refcount touched is this core's own `Rc`, not the shared `Arc`.
    #[allow(clippy::redundant_allocation)]
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
        let gen = self.shared.generation.load(Ordering::Acquire);
        let mut cur = self.snap.borrow_mut();
        if cur.0 != gen {
            *cur = (gen, Rc::new(self.shared.snapshot.load_full()));
            self.balancers.borrow_mut().clear();
        }
        cur.1.clone()
    }

    /// Whether the worker is draining (no new requests on existing connections).
    pub fn closing(&self) -> bool {
        self.closing.get()
    }

    /// Starts draining: marks the worker closing and wakes every connection waiting idle for a
    /// next request by shutting its socket's read side, so it ends at once.
    pub fn begin_shutdown(&self) {
        self.closing.set(true);
        for fd in self.idle.borrow_mut().drain() {
            // SAFETY: fds in the registry belong to live connections, which remove themselves
            // before closing; shutdown(2) on a valid socket only ends its read side.
            unsafe { libc::shutdown(fd, libc::SHUT_RD) };
        }
        self.pool.borrow_mut().clear();
        self.redis.clear();
    }

    /// Registers `fd` as waiting for a next request.
    pub fn set_idle(&self, fd: RawFd, idle: bool) {
        let mut set = self.idle.borrow_mut();
        if idle {
            set.insert(fd);
        } else {
            set.remove(&fd);
        }
    }

    /// Number of open client connections.
    pub fn active(&self) -> usize {
        self.active.get()
    }

    /// Counts a connection for as long as the returned guard lives.
    pub fn track(self: &Rc<Self>, fd: RawFd) -> ConnGuard {
        self.active.set(self.active.get() + 1);
        ConnGuard {
            worker: self.clone(),
            fd,
        }
    }
}

/// Keeps a connection counted and unregisters it from the idle set when dropped.
pub struct ConnGuard {
    worker: Rc<Worker>,
    fd: RawFd,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker.set_idle(self.fd, false);
        self.worker.active.set(self.worker.active.get() - 1);
    }
}
