//! The ratio lines printed at the end of each bench group.
//!
//! Criterion's report has the careful estimates; these lines time both sides again with a plain
//! `Instant` over a fixed number of iterations, right after each other, so that the ratio is
//! taken against a baseline measured in the same run on the same (possibly noisy) machine.

use std::time::{Duration, Instant};

use crate::fixtures::smoke_mode;

/// Mean time of one call of `f`, over `iters` calls (after `iters / 10` warm-up calls).
pub fn time_per_iter(iters: u64, mut f: impl FnMut()) -> Duration {
    let iters = if smoke_mode() { 1 } else { iters.max(1) };
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / u32::try_from(iters).unwrap_or(u32::MAX)
}

/// Prints `RATIO group/case: ours … baseline … -> x.x× faster` (or slower).
pub fn print_ratio(group: &str, case: &str, ours: Duration, baseline: Duration) {
    let ratio = baseline.as_secs_f64() / ours.as_secs_f64().max(1e-12);
    let verdict = if ratio >= 1.0 {
        format!("{ratio:.1}x faster")
    } else {
        format!("{:.1}x slower", 1.0 / ratio)
    };
    // In smoke mode both sides ran once: say so, lest a CI log be read as a measurement.
    let note = if smoke_mode() {
        " (smoke mode: one iteration, not a measurement)"
    } else {
        ""
    };
    println!(
        "RATIO {group}/{case}: ours {} baseline {} -> {verdict}{note}",
        fmt(ours),
        fmt(baseline)
    );
}

/// A duration in the unit that reads best.
#[must_use]
pub fn fmt(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}
