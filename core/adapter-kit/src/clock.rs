//! The adapters' clock: the only place where they read time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchboard_core::{Instant, Now};

/// Reads the monotonic and the wall clock and converts them for the core. A [`manual`]
/// clock runs with the system's but can be moved forward by its [`ClockHand`], so that a test
/// reaches a deadline (a ping, a zombie, an expiry) without sleeping until it.
///
/// [`manual`]: Clock::manual
#[derive(Clone, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
    /// How far a test moved this clock ahead of the system's, in nanoseconds.
    ahead: Option<Arc<AtomicU64>>,
}

/// Moves a [`Clock::manual`] forward.
#[derive(Clone, Debug)]
pub struct ClockHand(Arc<AtomicU64>);

impl ClockHand {
    /// Moves the clock `by` ahead. The adapter sees it at its next wake-up: give it an event,
    /// or let a deadline it already waits for pass.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::AcqRel);
    }
}

impl Clock {
    /// The system's clocks.
    pub fn system() -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
            ahead: None,
        }
    }

    /// A clock that runs with the system's and that a test can move forward.
    pub fn manual() -> (Clock, ClockHand) {
        let ahead = Arc::new(AtomicU64::new(0));
        let clock = Clock {
            epoch: std::time::Instant::now(),
            ahead: Some(ahead.clone()),
        };
        (clock, ClockHand(ahead))
    }

    fn ahead(&self) -> Duration {
        self.ahead.as_ref().map_or(Duration::ZERO, |a| {
            Duration::from_nanos(a.load(Ordering::Acquire))
        })
    }

    /// Now, on both clocks, for the core.
    pub fn now(&self) -> Now {
        let ahead = self.ahead();
        Now::from_std(
            self.epoch,
            std::time::Instant::now() + ahead,
            SystemTime::now() + ahead,
        )
    }

    /// Now on this clock's monotonic scale, for the adapter's own deadlines.
    pub fn now_std(&self) -> std::time::Instant {
        std::time::Instant::now() + self.ahead()
    }

    /// A core deadline on this clock's monotonic scale (that of [`now_std`](Self::now_std)).
    pub fn deadline(&self, at: Instant) -> std::time::Instant {
        at.to_std(self.epoch)
    }

    /// The system instant at which this clock reads `at` (a core deadline), for a sleep.
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.to_system(self.deadline(at))
    }

    /// The system instant at which this clock reads `at` (one of [`now_std`](Self::now_std)'s).
    pub fn to_system(&self, at: std::time::Instant) -> std::time::Instant {
        at.checked_sub(self.ahead()).unwrap_or(at)
    }

    /// How long from now until this clock reads `at` (zero if it has passed).
    pub fn until(&self, at: std::time::Instant) -> Duration {
        at.saturating_duration_since(self.now_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_forward_on_both_scales_when_told() {
        let (clock, hand) = Clock::manual();
        let before = clock.now();
        hand.advance(Duration::from_secs(60));
        let after = clock.now();
        assert!(after.instant.saturating_duration_since(before.instant) >= Duration::from_secs(60));
        assert!(after.unix_millis - before.unix_millis >= 60_000);
        // A deadline 60 s ahead on the old reading is due now on the system's clock.
        let deadline = before.instant + Duration::from_secs(60);
        assert!(clock.to_std(deadline) <= std::time::Instant::now());
    }

    #[test]
    fn the_system_clock_is_not_ahead() {
        let clock = Clock::system();
        let real = std::time::Instant::now();
        assert!(clock.now_std() >= real);
        assert!(clock.until(clock.now_std() + Duration::from_secs(1)) <= Duration::from_secs(1));
    }
}
