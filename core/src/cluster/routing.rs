//! Which topic globs this node listens to on the bus, and the `subscribed` replies waiting for
//! the bus to confirm one.

use std::sync::Arc;

use crate::hashing::{hasher, Map};
use crate::registry::ConnId;
use crate::topics::{Pattern, PRESENCE_PREFIX};

/// The bus glob that carries every topic `pattern` matches, or `None` when no publish on the bus
/// can match it (presence topics are reserved: each node derives their pushes itself).
///
/// A literal segment stays as it is and a wildcard becomes `*`, which in a bus glob matches any
/// run of characters, dots included: the glob may match more than the pattern (the trie filters
/// on arrival) but never less.
pub(crate) fn glob_of(pattern: &Pattern) -> Option<Arc<str>> {
    if pattern.as_str().starts_with(PRESENCE_PREFIX) && pattern.segments().count() == 2 {
        return None;
    }
    let mut glob = String::with_capacity(pattern.as_str().len());
    for (i, segment) in pattern.segments().enumerate() {
        if i > 0 {
            glob.push('.');
        }
        match segment {
            "*" | "**" => glob.push('*'),
            literal => glob.push_str(literal),
        }
    }
    Some(glob.into())
}

/// A `subscribed` reply held back until the bus confirms its glob.
pub(crate) struct PendingReply {
    pub(crate) conn: ConnId,
    pub(crate) pattern: Pattern,
    pub(crate) reply_id: Option<Box<str>>,
}

struct Glob {
    /// Local (connection, pattern) subscriptions that need it.
    holders: usize,
    confirmed: bool,
    waiting: Vec<PendingReply>,
}

/// The globs this node's subscriptions need.
pub(crate) struct Routing {
    globs: Map<Arc<str>, Glob>,
    /// Per glob, the `Subscribe`s sent and not answered yet, whether the glob is still needed
    /// or not: each `Subscribed` answers one, so the answer to a `Subscribe` sent before an
    /// `Unsubscribe` confirms nothing about a `Subscribe` sent after it.
    unanswered: Map<Arc<str>, u32>,
}

impl Routing {
    pub(crate) fn new(seed: u64) -> Self {
        Routing {
            globs: Map::with_hasher(hasher(seed)),
            unanswered: Map::with_hasher(hasher(seed)),
        }
    }

    /// A `Subscribe` for `glob` goes to the bus.
    pub(crate) fn sent(&mut self, glob: &Arc<str>) {
        *self.unanswered.entry(glob.clone()).or_insert(0) += 1;
    }

    /// One more subscription needs `glob`; whether it is new (subscribe to it).
    pub(crate) fn hold(&mut self, glob: &Arc<str>) -> bool {
        let entry = self.globs.entry(glob.clone()).or_insert(Glob {
            holders: 0,
            confirmed: false,
            waiting: Vec::new(),
        });
        entry.holders += 1;
        entry.holders == 1
    }

    /// One subscription less needs `glob`; whether none does now (unsubscribe from it).
    pub(crate) fn release(&mut self, glob: &str) -> bool {
        let Some(entry) = self.globs.get_mut(glob) else {
            return false;
        };
        entry.holders -= 1;
        if entry.holders > 0 {
            return false;
        }
        self.globs.remove(glob);
        true
    }

    pub(crate) fn is_confirmed(&self, glob: &str) -> bool {
        self.globs.get(glob).is_some_and(|g| g.confirmed)
    }

    /// Holds a reply until `glob` is confirmed.
    pub(crate) fn wait(&mut self, glob: &str, reply: PendingReply) {
        if let Some(entry) = self.globs.get_mut(glob) {
            entry.waiting.push(reply);
        }
    }

    /// The bus answered a `Subscribe` for `glob`: once it answered the last one sent, the
    /// glob is confirmed, and these are the replies that waited for it.
    pub(crate) fn confirm(&mut self, glob: &str) -> Vec<PendingReply> {
        if let Some(n) = self.unanswered.get_mut(glob) {
            *n -= 1;
            if *n > 0 {
                return Vec::new();
            }
            self.unanswered.remove(glob);
        }
        match self.globs.get_mut(glob) {
            Some(entry) => {
                entry.confirmed = true;
                std::mem::take(&mut entry.waiting)
            }
            None => Vec::new(),
        }
    }

    /// The replies of one connection's `pattern` that wait for `glob` (it unsubscribes or
    /// leaves first). Its other patterns of the same glob still wait.
    pub(crate) fn take_waiting(
        &mut self,
        glob: &str,
        conn: ConnId,
        pattern: &Pattern,
    ) -> Vec<PendingReply> {
        let Some(entry) = self.globs.get_mut(glob) else {
            return Vec::new();
        };
        let (mine, rest) = std::mem::take(&mut entry.waiting)
            .into_iter()
            .partition(|r| r.conn == conn && r.pattern == *pattern);
        entry.waiting = rest;
        mine
    }

    /// The bus is gone: nothing is confirmed any more, and the replies that waited are due now
    /// (routed locally; the bus will route them once it is back).
    pub(crate) fn unconfirm_all(&mut self) -> Vec<PendingReply> {
        self.unanswered.clear();
        let mut due = Vec::new();
        for entry in self.globs.values_mut() {
            entry.confirmed = false;
            due.append(&mut entry.waiting);
        }
        due
    }

    /// Every glob needed, sorted (to subscribe again after the bus returns, in an order that
    /// depends on the inputs only).
    pub(crate) fn globs(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = self.globs.keys().cloned().collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Option<String> {
        glob_of(&Pattern::parse(p).unwrap()).map(|g| g.to_string())
    }

    #[test]
    fn a_pattern_listens_to_a_glob_that_covers_every_topic_it_matches() {
        assert_eq!(glob("chat.lobby").as_deref(), Some("chat.lobby"));
        assert_eq!(glob("chat.*").as_deref(), Some("chat.*"));
        assert_eq!(glob("a.*.c").as_deref(), Some("a.*.c"));
        assert_eq!(glob("a.**").as_deref(), Some("a.*"));
        assert_eq!(glob("**").as_deref(), Some("*"));
    }

    #[test]
    fn presence_topics_need_no_glob() {
        assert_eq!(glob("presence.alice"), None);
        assert_eq!(glob("presence.*"), None);
        // Only `presence.<user>` is reserved; deeper topics are published like any other.
        assert_eq!(glob("presence.a.b").as_deref(), Some("presence.a.b"));
    }

    #[test]
    fn a_glob_is_subscribed_by_its_first_holder_and_unsubscribed_by_its_last() {
        let mut r = Routing::new(1);
        let g: Arc<str> = "a.*".into();
        assert!(r.hold(&g));
        assert!(!r.hold(&g));
        assert!(!r.release(&g));
        assert!(r.release(&g));
        assert!(!r.is_confirmed(&g));
    }

    #[test]
    fn a_glob_is_confirmed_by_the_answer_to_its_last_subscribe() {
        let mut r = Routing::new(1);
        let g: Arc<str> = "a.*".into();
        let reply = |n| PendingReply {
            conn: ConnId::new(n, 0),
            pattern: Pattern::parse("a.*").unwrap(),
            reply_id: None,
        };
        assert!(r.hold(&g));
        r.sent(&g);
        assert!(r.release(&g));
        assert!(r.hold(&g));
        r.sent(&g);
        r.wait(&g, reply(1));
        assert!(r.confirm(&g).is_empty(), "the first answer is stale");
        assert!(!r.is_confirmed(&g));
        assert_eq!(r.confirm(&g).len(), 1);
        assert!(r.is_confirmed(&g));
    }
}
