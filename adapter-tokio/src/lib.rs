//! The tokio adapter (in progress).
