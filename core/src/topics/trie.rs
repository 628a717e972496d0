//! Segment trie of subscription patterns.
//!
//! Each node is one pattern prefix. A node holds the keys whose pattern ends
//! exactly there and the keys whose pattern is `<prefix>.**`, so matching a
//! topic only visits the literal and `*` branches the topic can reach.

#![cfg_attr(not(feature = "bench-internals"), allow(unreachable_pub))]

use std::hash::Hash;

use slab::Slab;

use crate::hashing::{hasher, Map, Set};

use super::pattern::MAX_SEGMENTS;
use super::Pattern;

/// One pattern prefix.
#[derive(Debug, Clone)]
struct Node<K> {
    /// Children reached by a literal segment.
    literal: Map<Box<str>, usize>,
    /// Child reached by a `*` segment.
    star: Option<usize>,
    /// Keys whose pattern ends exactly at this node.
    exact: Set<K>,
    /// Keys whose pattern is this node's prefix followed by `**`.
    tail: Set<K>,
}

impl<K> Node<K> {
    fn new(seed: u64) -> Self {
        Node {
            literal: Map::with_hasher(hasher(seed)),
            star: None,
            exact: Set::with_hasher(hasher(seed)),
            tail: Set::with_hasher(hasher(seed)),
        }
    }

    /// A node with no keys and no children can be pruned.
    fn is_unused(&self) -> bool {
        self.literal.is_empty()
            && self.star.is_none()
            && self.exact.is_empty()
            && self.tail.is_empty()
    }
}

/// Subscriptions indexed by pattern in a segment trie, so that matching a topic costs O(depth + matches), never a scan of all patterns.
///
/// Keys are small handles (connection ids, slab indices); a key may be
/// subscribed through any number of patterns.
#[derive(Debug, Clone)]
pub struct TopicTrie<K> {
    nodes: Slab<Node<K>>,
    seed: u64,
    root: usize,
    patterns: usize,
    subscriptions: usize,
}

impl<K: Copy + Eq + Hash> Default for TopicTrie<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> TopicTrie<K> {
    /// Creates an empty trie (a single root node).
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// Creates an empty trie whose hash maps use this seed (see [`Switchboard::new`](crate::Switchboard::new)).
    pub fn with_seed(seed: u64) -> Self {
        let mut nodes = Slab::new();
        let root = nodes.insert(Node::new(seed));
        TopicTrie {
            nodes,
            seed,
            root,
            patterns: 0,
            subscriptions: 0,
        }
    }

    /// Subscribes `key` to `pattern`.
    ///
    /// Returns `true` if the (pattern, key) pair was not yet present.
    pub fn insert(&mut self, pattern: &Pattern, key: K) -> bool {
        let mut cur = self.root;
        let mut tail = false;
        for seg in pattern.segments() {
            if seg == "**" {
                // Validation puts `**` last; stop here regardless.
                tail = true;
                break;
            }
            cur = self.child_or_insert(cur, seg);
        }
        let Some(node) = self.nodes.get_mut(cur) else {
            return false;
        };
        let set = if tail {
            &mut node.tail
        } else {
            &mut node.exact
        };
        let was_empty = set.is_empty();
        if !set.insert(key) {
            return false;
        }
        if was_empty {
            self.patterns += 1;
        }
        self.subscriptions += 1;
        true
    }

    /// The child of `id` for `seg`, created if missing.
    fn child_or_insert(&mut self, id: usize, seg: &str) -> usize {
        if let Some(child) = self.child(id, seg) {
            return child;
        }
        let child = self.nodes.insert(Node::new(self.seed));
        if let Some(node) = self.nodes.get_mut(id) {
            if seg == "*" {
                node.star = Some(child);
            } else {
                node.literal.insert(seg.into(), child);
            }
        }
        child
    }

    /// The existing child of `id` for `seg` (`*` selects the star child).
    fn child(&self, id: usize, seg: &str) -> Option<usize> {
        let node = self.nodes.get(id)?;
        if seg == "*" {
            node.star
        } else {
            node.literal.get(seg).copied()
        }
    }

    /// Unsubscribes `key` from `pattern`.
    ///
    /// Returns `true` if the pair was present. Nodes left without keys or
    /// children are removed so a churn of distinct patterns does not grow
    /// memory.
    pub fn remove(&mut self, pattern: &Pattern, key: K) -> bool {
        // path[i] is the node reached after i segments; segs[i] leads from
        // path[i] to path[i + 1]. Fixed arrays keep removal allocation-free.
        let mut path = [self.root; MAX_SEGMENTS + 1];
        let mut segs = [""; MAX_SEGMENTS];
        let mut depth = 0;
        let mut tail = false;
        for seg in pattern.segments() {
            if seg == "**" {
                tail = true;
                break;
            }
            let Some(child) = self.child(path[depth], seg) else {
                return false;
            };
            let (Some(seg_slot), Some(path_slot)) = (segs.get_mut(depth), path.get_mut(depth + 1))
            else {
                return false;
            };
            *seg_slot = seg;
            *path_slot = child;
            depth += 1;
        }
        let Some(node) = self.nodes.get_mut(path[depth]) else {
            return false;
        };
        let set = if tail {
            &mut node.tail
        } else {
            &mut node.exact
        };
        if !set.remove(&key) {
            return false;
        }
        if set.is_empty() {
            // Release the table now; the node may live on for its children.
            set.shrink_to_fit();
            self.patterns -= 1;
        }
        self.subscriptions -= 1;
        self.prune(&path[..=depth], &segs[..depth]);
        true
    }

    /// Removes unused nodes bottom-up along `path` (never the root).
    fn prune(&mut self, path: &[usize], segs: &[&str]) {
        for (i, &seg) in segs.iter().enumerate().rev() {
            let (Some(&id), Some(&parent)) = (path.get(i + 1), path.get(i)) else {
                return;
            };
            if !self.nodes.get(id).is_some_and(Node::is_unused) {
                return;
            }
            self.nodes.remove(id);
            if let Some(parent) = self.nodes.get_mut(parent) {
                if seg == "*" {
                    parent.star = None;
                } else {
                    parent.literal.remove(seg);
                    if parent.literal.is_empty() {
                        parent.literal.shrink_to_fit();
                    }
                }
            }
        }
    }

    /// Calls `f` once per (matching pattern, key) pair: a key subscribed through two matching patterns is reported twice; the caller dedups (cheaply, by a per-publish stamp). Must not allocate.
    ///
    /// Segments are split once into a stack array; the walk then follows the
    /// literal and `*` branches and reports `**` keys at every node that
    /// still has at least one topic segment left.
    pub fn for_each_match(&self, topic: &super::Topic, mut f: impl FnMut(K)) {
        let mut segs = [""; MAX_SEGMENTS];
        let mut len = 0;
        for seg in topic.segments() {
            // A validated topic never has more than MAX_SEGMENTS segments.
            let Some(slot) = segs.get_mut(len) else {
                return;
            };
            *slot = seg;
            len += 1;
        }
        if let Some(segs) = segs.get(..len) {
            self.walk(self.root, segs, &mut f);
        }
    }

    /// Reports the matches of `rest` below node `id`.
    fn walk<F: FnMut(K)>(&self, id: usize, rest: &[&str], f: &mut F) {
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        match rest.split_first() {
            None => node.exact.iter().for_each(|&k| f(k)),
            Some((seg, rest)) => {
                node.tail.iter().for_each(|&k| f(k));
                if let Some(&child) = node.literal.get(*seg) {
                    self.walk(child, rest, f);
                }
                if let Some(child) = node.star {
                    self.walk(child, rest, f);
                }
            }
        }
    }

    /// Number of distinct patterns with at least one key.
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Number of (pattern, key) pairs.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// Whether the trie holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// Number of allocated nodes, root included.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Pattern, Topic};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("valid pattern")
    }

    fn matches(trie: &TopicTrie<u32>, topic: &str) -> Vec<u32> {
        let topic = Topic::parse(topic).expect("valid topic");
        let mut out = Vec::new();
        trie.for_each_match(&topic, |k| out.push(k));
        out.sort_unstable();
        out
    }

    #[test]
    fn new_trie_is_empty_with_one_root_node() {
        let trie = TopicTrie::<u32>::default();
        assert!(trie.is_empty());
        assert_eq!(trie.pattern_count(), 0);
        assert_eq!(trie.subscription_count(), 0);
        assert_eq!(trie.node_count(), 1);
        assert!(matches(&trie, "a.b").is_empty());
    }

    #[test]
    fn insert_is_idempotent() {
        let mut trie = TopicTrie::new();
        assert!(trie.insert(&p("a.b"), 1));
        assert!(!trie.insert(&p("a.b"), 1));
        assert!(trie.insert(&p("a.b"), 2));
        assert!(trie.insert(&p("a.**"), 1));
        assert_eq!(trie.pattern_count(), 2);
        assert_eq!(trie.subscription_count(), 3);
    }

    #[test]
    fn remove_is_idempotent_and_reports_presence() {
        let mut trie = TopicTrie::new();
        trie.insert(&p("a.*"), 1);
        assert!(!trie.remove(&p("a.*"), 2));
        assert!(!trie.remove(&p("a.b"), 1));
        assert!(!trie.remove(&p("a.**"), 1));
        assert!(!trie.remove(&p("x.y.z"), 1));
        assert!(trie.remove(&p("a.*"), 1));
        assert!(!trie.remove(&p("a.*"), 1));
        assert!(trie.is_empty());
    }

    #[test]
    fn removing_everything_prunes_back_to_the_root() {
        let mut trie = TopicTrie::new();
        let pats = ["a.b.c", "a.b", "a.*.c", "a.**", "**", "*", "x.y.z.**", "a"];
        for (i, s) in pats.iter().enumerate() {
            trie.insert(&p(s), i as u32);
            trie.insert(&p(s), 100);
        }
        assert!(trie.node_count() > 1);
        for (i, s) in pats.iter().enumerate() {
            assert!(trie.remove(&p(s), i as u32));
            assert!(trie.remove(&p(s), 100));
        }
        assert!(trie.is_empty());
        assert_eq!(trie.pattern_count(), 0);
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn removing_a_leaf_keeps_nodes_still_in_use() {
        let mut trie = TopicTrie::new();
        trie.insert(&p("a.b.c"), 1);
        trie.insert(&p("a"), 2);
        assert_eq!(trie.node_count(), 4);
        trie.remove(&p("a.b.c"), 1);
        assert_eq!(trie.node_count(), 2);
        assert_eq!(matches(&trie, "a"), [2]);
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        let mut trie = TopicTrie::new();
        trie.insert(&p("chat.*"), 1);
        assert_eq!(matches(&trie, "chat.a"), [1]);
        assert!(matches(&trie, "chat.a.b").is_empty());
        assert!(matches(&trie, "chat").is_empty());
    }

    #[test]
    fn double_star_matches_one_or_more_but_not_the_prefix() {
        let mut trie = TopicTrie::new();
        trie.insert(&p("chat.**"), 1);
        trie.insert(&p("**"), 2);
        assert_eq!(matches(&trie, "chat.a"), [1, 2]);
        assert_eq!(matches(&trie, "chat.a.b"), [1, 2]);
        assert_eq!(matches(&trie, "chat"), [2]);
    }

    #[test]
    fn key_matching_through_two_patterns_is_reported_twice() {
        let mut trie = TopicTrie::new();
        trie.insert(&p("a.b"), 7);
        trie.insert(&p("a.*"), 7);
        trie.insert(&p("*.b"), 8);
        assert_eq!(matches(&trie, "a.b"), [7, 7, 8]);
        assert_eq!(matches(&trie, "a.c"), [7]);
    }

    /// Pattern strings over `a`, `b`, `*` with an optional trailing `**`.
    fn pattern_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "*"]), 0..=4),
            any::<bool>(),
        )
            .prop_filter_map("pattern needs a segment", |(mut segs, double)| {
                if double || segs.is_empty() {
                    segs.push("**");
                }
                (segs.len() <= 4).then(|| segs.join("."))
            })
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=4)
            .prop_map(|segs| segs.join("."))
    }

    proptest! {
        #[test]
        fn trie_reports_exactly_the_reference_matches(
            inserts in prop::collection::vec((pattern_strategy(), 0u32..4), 0..24),
            removes in prop::collection::vec((pattern_strategy(), 0u32..4), 0..12),
            topics in prop::collection::vec(topic_strategy(), 1..8),
        ) {
            let mut trie = TopicTrie::new();
            let mut model = BTreeSet::new();
            for (s, k) in &inserts {
                let pat = p(s);
                prop_assert_eq!(trie.insert(&pat, *k), model.insert((pat, *k)));
            }
            for (s, k) in &removes {
                let pat = p(s);
                prop_assert_eq!(trie.remove(&pat, *k), model.remove(&(pat, *k)));
            }
            let distinct: BTreeSet<&Pattern> = model.iter().map(|(pat, _)| pat).collect();
            prop_assert_eq!(trie.pattern_count(), distinct.len());
            prop_assert_eq!(trie.subscription_count(), model.len());
            for s in &topics {
                let topic = Topic::parse(s).expect("valid topic");
                let mut expected: Vec<u32> = model
                    .iter()
                    .filter(|(pat, _)| pat.matches(&topic))
                    .map(|&(_, k)| k)
                    .collect();
                expected.sort_unstable();
                prop_assert_eq!(matches(&trie, s), expected, "topic {}", s);
            }
            for (pat, k) in &model {
                prop_assert!(trie.remove(pat, *k));
            }
            prop_assert!(trie.is_empty());
            prop_assert_eq!(trie.node_count(), 1);
        }

        #[test]
        fn coverage_implies_match_inclusion(
            claim in pattern_strategy(),
            sub in pattern_strategy(),
            topics in prop::collection::vec(topic_strategy(), 1..16),
        ) {
            let (claim, sub) = (p(&claim), p(&sub));
            if claim.covers(&sub) {
                for s in &topics {
                    let topic = Topic::parse(s).expect("valid topic");
                    prop_assert!(!sub.matches(&topic) || claim.matches(&topic));
                }
            }
        }
    }
}
