//! Topic names, subscription patterns and the subscription trie.
//!
//! [`Topic`] and [`Pattern`] validate the wire syntax once at the edge so the
//! hot path (the trie's `for_each_match`) can trust its input.

mod pattern;
mod trie;

pub use pattern::{presence_topic, Pattern, Topic, TopicError, PRESENCE_PREFIX};
/// The pattern trie (exposed for the benchmarks only).
#[cfg(feature = "bench-internals")]
pub use trie::TopicTrie;
#[cfg(not(feature = "bench-internals"))]
pub(crate) use trie::TopicTrie;
