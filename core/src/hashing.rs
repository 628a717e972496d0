//! The hasher of the core's maps and sets.
//!
//! Seeded by the caller through [`Switchboard::new`](crate::Switchboard::new): with the seed an
//! input like any other, iteration orders that reach the outputs (fan-out order, shutdown order)
//! are a function of the inputs, so the same inputs give the same outputs. Adapters choose a
//! random seed at start, because map keys (user ids, topic segments) are chosen by clients, who
//! could otherwise make them collide on purpose.

use foldhash::fast::FixedState;

/// The build-hasher of every map and set in the core.
pub(crate) type Hasher = FixedState;
/// A map with the core's hasher.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, Hasher>;
/// A set with the core's hasher.
pub(crate) type Set<K> = hashbrown::HashSet<K, Hasher>;

/// The build-hasher for a seed.
pub(crate) fn hasher(seed: u64) -> Hasher {
    FixedState::with_seed(seed)
}
