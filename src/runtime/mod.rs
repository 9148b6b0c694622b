//! Worker threads and the process lifecycle.
//!
//! - [`start`] spawns one OS thread per worker, each with its own monoio runtime (io_uring, or
//!   the epoll driver when io_uring cannot be set up or `io_driver: epoll` forces it), its own
//!   `SO_REUSEPORT` listener per address (the kernel spreads connections over the workers) and,
//!   optionally, pinned to one core. It returns once every worker listens, or with the first
//!   worker's error. It first raises the open-file limit ([`limits`]).
//! - [`Gateway::wait`] runs the signal loop on the calling thread: SIGHUP reloads (the caller's
//!   reload function builds a new snapshot; a failed reload keeps the old one), SIGTERM/SIGINT
//!   drain: listeners stop accepting, idle keep-alive connections close, requests in flight get
//!   up to `timeouts.graceful_shutdown_secs` to finish.

pub mod limits;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::proxy::Shared;
use crate::snapshot::Snapshot;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A worker could not set up its runtime or bind a listener.
    #[error("worker {worker}: {message}")]
    Worker {
        /// Worker index.
        worker: usize,
        /// What failed.
        message: String,
    },
    /// Spawning threads or installing signal handlers failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Builds a fresh snapshot on SIGHUP.
pub type Reload = Box<dyn FnMut() -> Result<Snapshot, String> + Send>;

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The I/O driver the workers run on (`io_uring` or `epoll`).
    pub driver: &'static str,
}

static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

/// Starts the workers and returns once all of them are listening.
pub fn start(shared: Arc<Shared>) -> Result<Gateway, RuntimeError> {
    limits::raise_nofile_logged();
    let n = shared.config.workers;
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(n);
    for id in 0..n {
        let shared = shared.clone();
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("portcullis-w{id}"))
            .spawn(move || worker::run(shared, id, tx))?;
        threads.push(handle);
    }
    drop(tx);
    let mut driver = "epoll";
    let mut failure = None;
    for _ in 0..n {
        match rx.recv() {
            Ok((_, Ok(d))) => driver = d,
            Ok((worker, Err(message))) => {
                failure.get_or_insert(RuntimeError::Worker { worker, message });
            }
            Err(_) => {
                failure.get_or_insert(RuntimeError::Worker {
                    worker: 0,
                    message: "a worker exited during start-up".into(),
                });
                break;
            }
        }
    }
    let gateway = Gateway {
        shared,
        threads,
        driver,
    };
    match failure {
        None => Ok(gateway),
        Some(e) => {
            gateway.shared.shutdown.store(true, Ordering::Release);
            gateway.join();
            Err(e)
        }
    }
}

impl Gateway {
    /// The state shared with the workers (publish new snapshots through it).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Handles signals until SIGTERM or SIGINT, then drains and joins the workers.
    pub fn wait(self, mut reload: Option<Reload>) -> Result<(), RuntimeError> {
        let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM])?;
        for sig in signals.forever() {
            match sig {
                SIGHUP => match reload.as_mut() {
                    Some(f) => match f() {
                        Ok(snap) => {
                            self.shared.publish(snap);
                            tracing::info!("configuration reloaded");
                        }
                        Err(e) => {
                            tracing::error!("reload failed, keeping the running configuration: {e}")
                        }
                    },
                    None => tracing::info!("SIGHUP ignored: no standalone file to reload"),
                },
                _ => {
                    tracing::info!(
                        "shutting down: draining for up to {:?}",
                        self.shared.config.timeouts.graceful_shutdown
                    );
                    break;
                }
            }
        }
        self.stop();
        Ok(())
    }

    /// Drains and joins the workers without waiting for a signal.
    pub fn stop(self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.join();
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
