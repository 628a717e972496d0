//! The primitives that cross threads, in one place, so that a build with
//! `RUSTFLAGS="--cfg switchboard_loom"` model-checks the real code with loom.

#[cfg(switchboard_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(switchboard_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks, ignoring poisoning: every critical section here leaves the state consistent even if
/// a caller panicked while holding the lock (they only push or take whole items).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
