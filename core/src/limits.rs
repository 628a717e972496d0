//! Inbound rate limiting: a token bucket per connection, in integer arithmetic so that the same
//! inputs always give the same verdict.

use crate::time::Instant;

/// Nano-tokens per token: refill is `rate * elapsed_nanos` nano-tokens, exact in integers.
const SCALE: u128 = 1_000_000_000;

/// A token bucket of `burst` tokens refilled at `rate` tokens per second.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    /// Available nano-tokens at `updated`.
    nanotokens: u64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn full(now: Instant, burst: u32) -> Self {
        TokenBucket {
            nanotokens: capacity(burst),
            updated: now,
        }
    }

    /// Takes one token if there is one. `rate == 0` means unlimited.
    pub(crate) fn try_take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let elapsed = u128::from(now.as_nanos().saturating_sub(self.updated.as_nanos()));
        let refill = elapsed.saturating_mul(u128::from(rate));
        let cap = capacity(burst);
        let available = (u128::from(self.nanotokens) + refill).min(u128::from(cap)) as u64;
        self.updated = self.updated.max(now);
        if available >= SCALE as u64 {
            self.nanotokens = available - SCALE as u64;
            true
        } else {
            self.nanotokens = available;
            false
        }
    }
}

fn capacity(burst: u32) -> u64 {
    u64::from(burst.max(1)) * SCALE as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_bucket_allows_exactly_burst_frames_at_once() {
        let t0 = Instant::ZERO;
        let mut bucket = TokenBucket::full(t0, 200);
        for _ in 0..200 {
            assert!(bucket.try_take(t0, 100, 200));
        }
        assert!(!bucket.try_take(t0, 100, 200));
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let t0 = Instant::ZERO;
        let mut bucket = TokenBucket::full(t0, 1);
        assert!(bucket.try_take(t0, 100, 1));
        assert!(!bucket.try_take(t0 + Duration::from_micros(9_999), 100, 1));
        assert!(bucket.try_take(t0 + Duration::from_millis(10), 100, 1));
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let t0 = Instant::ZERO;
        let mut bucket = TokenBucket::full(t0, 2);
        let later = t0 + Duration::from_secs(3600);
        assert!(bucket.try_take(later, 100, 2));
        assert!(bucket.try_take(later, 100, 2));
        assert!(!bucket.try_take(later, 100, 2));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut bucket = TokenBucket::full(Instant::ZERO, 1);
        for _ in 0..10_000 {
            assert!(bucket.try_take(Instant::ZERO, 0, 1));
        }
    }
}
