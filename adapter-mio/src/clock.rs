//! The adapter's clock: the only place where time is read.

use std::time::SystemTime;

use switchboard_core::{Instant, Now};

/// Reads both clocks and converts them for the core.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Now {
        Now::from_std(self.epoch, std::time::Instant::now(), SystemTime::now())
    }

    /// The standard monotonic clock, for the adapter's own deadlines.
    pub(crate) fn now_std(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    /// How long from now until `at` (zero if it has passed).
    pub(crate) fn until(&self, at: std::time::Instant) -> std::time::Duration {
        at.saturating_duration_since(self.now_std())
    }

    /// The standard-clock instant of a core deadline, for the poll timeout.
    pub(crate) fn to_std(self, at: Instant) -> std::time::Instant {
        at.to_std(self.epoch)
    }
}
