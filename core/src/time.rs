//! Time as the core sees it: always handed in by the caller, never read from a clock.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on the caller's monotonic clock, in nanoseconds since an epoch the caller chooses
/// (typically the moment its server started).
///
/// The core never reads a clock; adapters convert their `std::time::Instant` with
/// [`Instant::since`] and back with [`Instant::to_std`]. Being a plain number keeps the state
/// machine deterministic and lets tests and fuzzers step time freely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// The end of time: a deadline that never comes.
    pub const NEVER: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The position of `now` relative to `epoch` on the standard monotonic clock.
    pub fn since(epoch: std::time::Instant, now: std::time::Instant) -> Self {
        Instant(duration_nanos(now.saturating_duration_since(epoch)))
    }

    /// The standard-clock instant that this instant denotes, given the same `epoch`.
    pub fn to_std(self, epoch: std::time::Instant) -> std::time::Instant {
        epoch + Duration::from_nanos(self.0)
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the end of time rather than overflowing: a huge timeout means "never".
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(rhs)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The current moment, as the caller read it: the monotonic instant that drives timers, and the
/// wall-clock time (milliseconds since the Unix epoch) that timestamps and token expiry use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: pings, zombies, timeouts.
    pub instant: Instant,
    /// Wall-clock time in milliseconds since the Unix epoch: message timestamps, JWT `exp`.
    pub unix_millis: u64,
}

impl Now {
    /// A moment from its two clocks.
    pub const fn new(instant: Instant, unix_millis: u64) -> Self {
        Now {
            instant,
            unix_millis,
        }
    }

    /// The moment that readings of the standard clocks denote: `mono` relative to the caller's
    /// `epoch`, and `wall` (a time before the Unix epoch counts as the epoch). It converts
    /// only; reading the clocks is the caller's business.
    pub fn from_std(
        epoch: std::time::Instant,
        mono: std::time::Instant,
        wall: std::time::SystemTime,
    ) -> Self {
        let unix_millis = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Now::new(Instant::since(epoch, mono), unix_millis)
    }

    /// The same moment advanced by `d` on both clocks (handy for tests and simulations).
    pub fn after(self, d: Duration) -> Self {
        Now {
            instant: self.instant + d,
            unix_millis: self
                .unix_millis
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}
