//! The mio adapter (in progress).
