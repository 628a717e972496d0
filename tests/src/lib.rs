//! End-to-end suite (in progress).
