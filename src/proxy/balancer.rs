//! Smooth weighted round-robin (nginx's algorithm, which APISIX's `roundrobin` type follows),
//! with per-core state: each worker spreads its own requests by weight, so no counter is shared
//! between cores. Over a whole node the distribution still follows the weights.

use std::collections::HashMap;
use std::sync::Arc;

use crate::snapshot::UpstreamTarget;

/// Per-worker balancer positions, keyed by upstream identity.
#[derive(Default)]
pub struct Balancers {
    // The Arc is kept so the key (its address) cannot be reused by another upstream while here.
    states: HashMap<usize, (Arc<UpstreamTarget>, Vec<i64>)>,
}

impl Balancers {
    /// Forgets every position (called when a new snapshot replaces the upstreams).
    pub fn clear(&mut self) {
        self.states.clear();
    }

    /// Picks the next node of `up`, skipping the indices in `tried`. `None` when no node is left.
    pub fn pick(&mut self, up: &Arc<UpstreamTarget>, tried: &[usize]) -> Option<usize> {
        let n = up.nodes.len();
        match n {
            0 => return None,
            1 => return (!tried.contains(&0)).then_some(0),
            _ => {}
        }
        let key = Arc::as_ptr(up) as usize;
        let (_, current) = self
            .states
            .entry(key)
            .or_insert_with(|| (up.clone(), vec![0; n]));
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, node) in up.nodes.iter().enumerate() {
            if tried.contains(&i) {
                continue;
            }
            let w = i64::from(node.weight);
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            current[b] -= total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeepalivePool, PassHost};
    use crate::snapshot::Target;
    use std::time::Duration;

    fn upstream(weights: &[u32]) -> Arc<UpstreamTarget> {
        Arc::new(UpstreamTarget {
            name: "t".into(),
            nodes: weights
                .iter()
                .map(|&w| Target {
                    addr: None,
                    host_header: String::new(),
                    weight: w,
                })
                .collect(),
            pass_host: PassHost::Pass,
            tls: None,
            connect_timeout: Duration::from_secs(1),
            send_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            retries: 1,
            retry_timeout: None,
            keepalive: KeepalivePool::default(),
        })
    }

    #[test]
    fn smooth_sequence_matches_nginx() {
        // nginx's documented example: weights 5, 1, 1 give a a b a c a a.
        let up = upstream(&[5, 1, 1]);
        let mut b = Balancers::default();
        let seq: Vec<usize> = (0..7).map(|_| b.pick(&up, &[]).unwrap()).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn distribution_follows_weights() {
        let up = upstream(&[3, 2, 1]);
        let mut b = Balancers::default();
        let mut counts = [0; 3];
        for _ in 0..600 {
            counts[b.pick(&up, &[]).unwrap()] += 1;
        }
        assert_eq!(counts, [300, 200, 100]);
    }

    #[test]
    fn skips_tried_nodes() {
        let up = upstream(&[1, 1]);
        let mut b = Balancers::default();
        let first = b.pick(&up, &[]).unwrap();
        let second = b.pick(&up, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(b.pick(&up, &[0, 1]), None);
        assert_eq!(b.pick(&upstream(&[]), &[]), None);
    }
}
