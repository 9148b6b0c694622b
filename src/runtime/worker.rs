//! One worker thread: runtime set-up with driver fallback, listeners (`node_listen`, and
//! `ssl_listen` with TLS), the accept loops and the drain on shutdown.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::io::Canceller;
use monoio::net::{ListenerOpts, TcpListener};
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::config::IoDriver;
use crate::proxy::{serve, ConnInfo, Shared, Worker};
use crate::tls::{self, Acceptors};

use super::FALLBACK_LOGGED;

type Ready = Sender<(usize, Result<&'static str, String>)>;

/// How often a worker looks at the shutdown flag and sweeps its pool.
const TICK: Duration = Duration::from_millis(50);
const SWEEP_EVERY: u32 = 100; // ticks: 5 s

/// Thread body: builds the runtime and serves until shutdown.
pub(super) fn run(shared: Arc<Shared>, id: usize, ready: Ready) {
    let cfg = &shared.config;
    if cfg.cpu_pinning {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Err(e) = monoio::utils::bind_to_cpu_set([id % cores]) {
            tracing::warn!(worker = id, error = ?e, "cannot pin worker to a core");
        }
    }
    let mode = cfg.io_driver;
    if mode != IoDriver::Epoll && monoio::utils::detect_uring() {
        match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(1024)
            .enable_timer()
            .build()
        {
            Ok(mut rt) => return rt.block_on(main(shared, id, "io_uring", ready)),
            Err(e) if mode == IoDriver::IoUring => {
                let _ = ready.send((id, Err(format!("cannot set up io_uring: {e}"))));
                return;
            }
            Err(e) => {
                if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "io_uring set-up failed; using the epoll driver");
                }
            }
        }
    } else if mode == IoDriver::IoUring {
        let _ = ready.send((id, Err("io_uring is not available on this kernel".into())));
        return;
    } else if mode == IoDriver::Auto && !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!("io_uring is not available; using the epoll driver");
    }
    match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => rt.block_on(main(shared, id, "epoll", ready)),
        Err(e) => {
            let _ = ready.send((id, Err(format!("cannot set up the epoll driver: {e}"))));
        }
    }
}

async fn main(shared: Arc<Shared>, id: usize, driver: &'static str, ready: Ready) {
    let cfg = &shared.config;
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(4096);
    let mut listeners = Vec::new();
    let plain = cfg.node_listen.iter().map(|a| (a, false));
    for (addr, tls) in plain.chain(cfg.ssl_listen.iter().map(|a| (a, true))) {
        match TcpListener::bind_with_config(addr, &opts) {
            Ok(l) => listeners.push((l, tls)),
            Err(e) => {
                let _ = ready.send((id, Err(format!("cannot listen on {addr}: {e}"))));
                return;
            }
        }
    }
    let w = Rc::new(Worker::new(shared.clone(), id));
    // Built once per worker, and only when there is a TLS listener.
    let acceptors = (!cfg.ssl_listen.is_empty()).then(|| Rc::new(Acceptors::new(shared.clone())));
    let canceller = Canceller::new();
    let mut accepting = Vec::new();
    for (l, tls) in listeners {
        let tls = if tls { acceptors.clone() } else { None };
        accepting.push(monoio::spawn(accept_loop(
            w.clone(),
            l,
            tls,
            canceller.handle(),
        )));
    }
    let _ = ready.send((id, Ok(driver)));
    drop(ready);

    let mut ticks = 0u32;
    while !shared.shutdown.load(Ordering::Acquire) {
        monoio::time::sleep(TICK).await;
        ticks = ticks.wrapping_add(1);
        if ticks % SWEEP_EVERY == 0 {
            w.pool.borrow_mut().sweep();
            // mimalloc returns a thread's freed pages to the OS only when that thread allocates
            // again; after 10,000 connections close, an idle worker would keep their ~200 MB.
            // SAFETY: mi_collect only walks and purges the calling thread's own heap.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
    }

    // Drain: stop accepting, close idle connections, give the rest until the deadline.
    let deadline = Instant::now() + cfg.timeouts.graceful_shutdown;
    let _ = canceller.cancel();
    for task in accepting {
        task.await;
    }
    w.begin_shutdown();
    while w.active() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if w.active() > 0 {
        tracing::warn!(
            worker = id,
            open = w.active(),
            "drain deadline passed; closing remaining connections"
        );
    }
}

/// Accepts connections until the drain; `tls` for a listener on `ssl_listen`.
async fn accept_loop(
    w: Rc<Worker>,
    listener: TcpListener,
    tls: Option<Rc<Acceptors>>,
    cancel: monoio::io::CancelHandle,
) {
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let max = w.shared.config.limits.max_connections_per_worker;
    loop {
        match listener.cancelable_accept(cancel.clone()).await {
            Ok((stream, peer)) => {
                if max != 0 && w.active() >= max {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let mut info = ConnInfo {
                    peer,
                    local_port,
                    fd: stream.as_raw_fd(),
                    scheme: "http",
                };
                match &tls {
                    None => monoio::spawn(serve(w.clone(), stream, info)),
                    Some(acceptors) => {
                        info.scheme = "https";
                        monoio::spawn(tls::serve(w.clone(), stream, info, acceptors.clone()))
                    }
                };
            }
            Err(_) if w.shared.shutdown.load(Ordering::Acquire) => return,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(worker = w.id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
