//! Topic names, subscription patterns and the subscription trie.
//!
//! [`Topic`] and [`Pattern`] validate the wire syntax once at the edge so the
//! hot path ([`TopicTrie::for_each_match`]) can trust its input.

mod pattern;
mod trie;

pub use pattern::{presence_topic, Pattern, Topic, TopicError, PRESENCE_PREFIX};
pub use trie::TopicTrie;
