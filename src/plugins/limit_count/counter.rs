//! The `local` policy's counters: one fixed window per limit key, shared by every worker of
//! the node, exact under concurrency, without a lock on the request path.
//!
//! Design. A limit key maps (through a sharded `DashMap`, whose shard lock is held only for the
//! lookup) to a slot holding the current window, an immutable `{end, used}` pair behind an
//! `ArcSwap`. A request loads the window; if it has ended, it tries to install a fresh one with a
//! compare-and-swap (one request wins; the others reload and count in the winner's window).
//! Counting is a single `fetch_add` on the window's `used`, so N workers hitting one key see N
//! distinct results and exactly `count` of them pass, whatever the interleaving.
//!
//! Trade-offs, written down as the style guide asks:
//! - A request that loaded a window just before it ended is counted in that window. It arrived
//!   while the window was open, so that is where it belongs; the next window is not charged.
//! - As in APISIX, the window starts at the first hit (not at a clock boundary), is not
//!   extended by later hits, and rejected hits are counted too (harmless inside the window).
//! - The map only grows with distinct keys (per IP, per consumer); expired windows are swept
//!   every 4096 new keys, so memory is bounded by the keys seen in one window.
//! - Counts are per node. Several nodes share a quota only through the `redis` policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;

struct Window {
    end_ms: u64,
    used: AtomicU64,
}

type Slot = Arc<ArcSwap<Window>>;

/// The outcome of one request against a quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The request is over the quota.
    pub rejected: bool,
    /// `count - used` after this request, never below 0.
    pub remaining: u64,
    /// Seconds until the window ends, floored to 2 decimals (the full window on a first hit).
    pub reset: f64,
}

/// All local counters of a node.
#[derive(Default)]
pub struct Counters {
    slots: DashMap<String, Slot>,
    inserts: AtomicU64,
}

impl Counters {
    /// An empty set of counters.
    pub fn new() -> Counters {
        Counters::default()
    }

    fn slot(&self, key: &str, now_ms: u64) -> Slot {
        if let Some(s) = self.slots.get(key) {
            return s.value().clone();
        }
        if self.inserts.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.sweep(now_ms);
        }
        self.slots
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(ArcSwap::from_pointee(Window {
                    end_ms: 0,
                    used: AtomicU64::new(0),
                }))
            })
            .value()
            .clone()
    }

    /// Drops every window that has ended.
    pub fn sweep(&self, now_ms: u64) {
        self.slots.retain(|_, s| s.load().end_ms > now_ms);
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Charges `cost` to `key`'s window (`window_ms` long, `count` allowed).
    pub fn incoming(
        &self,
        key: &str,
        count: u64,
        window_ms: u64,
        cost: u64,
        now_ms: u64,
    ) -> Decision {
        let slot = self.slot(key, now_ms);
        loop {
            let w = slot.load_full();
            if now_ms >= w.end_ms {
                let fresh = Arc::new(Window {
                    end_ms: now_ms + window_ms,
                    used: AtomicU64::new(0),
                });
                // Whoever wins installs the new window; everyone then counts in it.
                slot.compare_and_swap(&w, fresh);
                continue;
            }
            let used = w.used.fetch_add(cost, Ordering::AcqRel) + cost;
            let reset = if used == cost {
                window_ms as f64 / 1000.0
            } else {
                ((w.end_ms - now_ms) as f64 / 10.0).floor() / 100.0
            };
            return Decision {
                rejected: used > count,
                remaining: count.saturating_sub(used),
                reset,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_from_first_hit() {
        let c = Counters::new();
        let d = c.incoming("k", 2, 30_000, 1, 1_000);
        assert_eq!(
            d,
            Decision {
                rejected: false,
                remaining: 1,
                reset: 30.0
            }
        );
        let d = c.incoming("k", 2, 30_000, 1, 11_005);
        assert_eq!(
            d,
            Decision {
                rejected: false,
                remaining: 0,
                reset: 19.99
            }
        );
        let d = c.incoming("k", 2, 30_000, 1, 20_000);
        assert!(d.rejected);
        assert_eq!(d.remaining, 0);
        // Other keys are independent.
        assert!(!c.incoming("other", 2, 30_000, 1, 20_000).rejected);
        // The window ends 30 s after the first hit, not at a clock boundary.
        assert!(c.incoming("k", 2, 30_000, 1, 30_999).rejected);
        let d = c.incoming("k", 2, 30_000, 1, 31_000);
        assert_eq!(
            d,
            Decision {
                rejected: false,
                remaining: 1,
                reset: 30.0
            }
        );
    }

    #[test]
    fn cost_counts_like_apisix() {
        // count 10, cost 2: remaining 8, 6, 4, 2, 0, rejected, rejected.
        let c = Counters::new();
        let got: Vec<Option<u64>> = (0..7)
            .map(|_| {
                let d = c.incoming("k", 10, 60_000, 2, 5);
                (!d.rejected).then_some(d.remaining)
            })
            .collect();
        assert_eq!(
            got,
            [Some(8), Some(6), Some(4), Some(2), Some(0), None, None]
        );
    }

    #[test]
    fn exact_across_threads() {
        let c = Arc::new(Counters::new());
        let passed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, passed) = (c.clone(), passed.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if !c.incoming("hot", 1234, 60_000, 1, 42).rejected {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(passed.load(Ordering::Relaxed), 1234);
    }

    #[test]
    fn window_rollover_under_contention_starts_one_window() {
        let c = Arc::new(Counters::new());
        c.incoming("k", 5, 1_000, 1, 0);
        let passed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, passed) = (c.clone(), passed.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if !c.incoming("k", 5, 1_000, 1, 5_000).rejected {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(passed.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn sweep_drops_ended_windows() {
        let c = Counters::new();
        c.incoming("a", 1, 1_000, 1, 0);
        c.incoming("b", 1, 10_000, 1, 0);
        c.sweep(5_000);
        assert_eq!(c.len(), 1);
    }
}
