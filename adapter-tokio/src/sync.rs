//! The primitives that cross threads, in one place, so that a build with
//! `RUSTFLAGS="--cfg switchboard_loom"` model-checks the real code with loom.

#[cfg(switchboard_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};
#[cfg(not(switchboard_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};
