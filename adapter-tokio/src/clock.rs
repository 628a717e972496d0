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

    /// The standard-clock instant of a core deadline, for `tokio::time::sleep_until`.
    pub(crate) fn to_std(self, at: Instant) -> std::time::Instant {
        at.to_std(self.epoch)
    }
}
