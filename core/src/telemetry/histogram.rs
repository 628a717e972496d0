//! A fixed-bucket histogram of whole numbers: what Prometheus calls a histogram, without the
//! atomics (the core is single-threaded; the exporter reads it between inputs).

/// Counts of observations at or under each bound (`le`), plus the sum of all of them.
#[derive(Clone, Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, then the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[u64]>,
    sum: u64,
}

impl Histogram {
    /// An empty histogram over these ascending upper bounds.
    pub(crate) fn new(bounds: &'static [u64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1].into_boxed_slice(),
            sum: 0,
        }
    }

    /// Counts one observation: O(log buckets), no allocation.
    pub(crate) fn observe(&mut self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// The upper bounds, ascending (the last bucket, `+Inf`, has none).
    pub fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    /// Observations per bucket, not cumulative: one per bound, then the `+Inf` bucket.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of every observation.
    pub fn sum(&self) -> u64 {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket_and_over_the_last_in_inf() {
        let mut h = Histogram::new(&[1, 10, 100]);
        for v in [0, 1, 2, 10, 11, 100, 101, 5000] {
            h.observe(v);
        }
        assert_eq!(h.counts(), &[2, 2, 2, 2]);
        assert_eq!(h.count(), 8);
        assert_eq!(h.sum(), 5225);
    }
}
