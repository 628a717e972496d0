//! Benchmarks and load generation (in progress).
