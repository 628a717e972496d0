//! The `--max-connections` cap: WebSocket connections in their upgrade or open, counted across
//! the accept path, the connection tasks and the driver.

use crate::sync::{AtomicUsize, Ordering};

/// A counter that admits at most `max` holders at once.
#[derive(Debug)]
pub(crate) struct ConnectionCap {
    held: AtomicUsize,
    max: usize,
}

impl ConnectionCap {
    pub(crate) fn new(max: usize) -> Self {
        ConnectionCap {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a place if one is free.
    pub(crate) fn try_acquire(&self) -> bool {
        // Optimistic: a loser gives its place back at once, so the cap is never exceeded by
        // more than the racers' transient increments, and never admits more than `max`.
        if self.held.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives a place back.
    pub(crate) fn release(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }

    /// Places held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(all(test, switchboard_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    /// Three racing upgrades against a cap of two: at most two are admitted, at least one is
    /// (a racer's transient increment must not refuse everyone), and the count returns to zero.
    #[test]
    fn loom_cap_admits_at_most_max_and_the_count_returns_to_zero() {
        loom::model(|| {
            let cap = Arc::new(ConnectionCap::new(2));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let cap = cap.clone();
                    loom::thread::spawn(move || cap.try_acquire())
                })
                .collect();
            let mine = cap.try_acquire();
            let admitted = racers
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|&a| a)
                .count()
                + usize::from(mine);
            assert!(
                (1..=2).contains(&admitted),
                "admitted {admitted} with a cap of 2"
            );
            assert_eq!(cap.held(), admitted);
            for _ in 0..admitted {
                cap.release();
            }
            assert_eq!(cap.held(), 0);
        });
    }
}
