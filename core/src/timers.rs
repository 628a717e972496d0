//! When each connection next needs attention: a min-heap with one live entry per connection.
//!
//! Signs of life do not touch the heap (they only move `last_seen`); an entry that fires early
//! is re-armed at the connection's real next deadline. Entries of connections that left, or
//! that were superseded by an earlier deadline, are recognised as stale when they surface
//! and dropped. So `handle_timeout` costs O(work due · log n), never a scan of all connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::registry::ConnId;
use crate::time::Instant;

/// Deadlines of connections, earliest first.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl TimerQueue {
    pub(crate) fn schedule(&mut self, at: Instant, conn: ConnId) {
        self.heap.push(Reverse((at, conn)));
    }

    /// The earliest deadline, possibly a stale one (a spurious wake-up costs one no-op call).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Keeps only the entries for which `live(at, conn)` holds.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(Instant, ConnId) -> bool) {
        self.heap.retain(|Reverse((at, conn))| live(*at, *conn));
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry (all connections are gone).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_earliest_first_and_only_when_due() {
        let mut q = TimerQueue::default();
        let (a, b) = (ConnId::new(0, 0), ConnId::new(1, 0));
        q.schedule(Instant::from_millis(20), a);
        q.schedule(Instant::from_millis(10), b);
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(10)));
        assert_eq!(q.pop_due(Instant::from_millis(9)), None);
        assert_eq!(
            q.pop_due(Instant::from_millis(10)),
            Some((Instant::from_millis(10), b))
        );
        assert_eq!(q.pop_due(Instant::from_millis(19)), None);
        assert_eq!(
            q.pop_due(Instant::from_millis(25)),
            Some((Instant::from_millis(20), a))
        );
        assert_eq!(q.len(), 0);
    }
}
