//! The reference model: a `BTreeMap` of connections, the current time and a naive matcher.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_core::{ConnId, SessionPolicy};

/// One connection as the model sees it.
#[derive(Clone, Debug)]
pub(crate) struct ModelConn {
    pub(crate) ip: u8,
    pub(crate) handshake_device: Option<String>,
    pub(crate) opened_ms: u64,
    pub(crate) last_seen_ms: u64,
    /// When the core owes it its next WebSocket ping.
    pub(crate) next_ping_ms: u64,
    /// Once authenticated.
    pub(crate) session: Option<Session>,
    pub(crate) subs: BTreeSet<String>,
    /// Its inbound token bucket.
    pub(crate) bucket: Bucket,
}

/// The inbound token bucket, in thousandths of a token and the steps' milliseconds: `rate`
/// tokens a second is `rate` thousandths a millisecond, so refills are exact integers.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    milli: u64,
    at_ms: u64,
}

impl Bucket {
    pub(crate) fn full(now_ms: u64, burst: u32) -> Self {
        Bucket {
            milli: u64::from(burst) * 1000,
            at_ms: now_ms,
        }
    }

    /// Refills up to `burst` tokens, then takes one if there is one. `rate` 0: no limit.
    pub(crate) fn take(&mut self, now_ms: u64, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let refill = (now_ms - self.at_ms) * u64::from(rate);
        self.milli = (self.milli + refill).min(u64::from(burst) * 1000);
        self.at_ms = now_ms;
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// What an authenticated connection is bound to.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) device: Option<String>,
    /// Authentication order (the policy replaces the oldest first).
    pub(crate) seq: u64,
    /// When its token expires (`exp` + `jwt_leeway`), on the steps' clock, in ms.
    pub(crate) expires_ms: u64,
    /// Its token's `topics` claim; `None`: any topic.
    pub(crate) topics: Option<Vec<String>>,
}

impl Session {
    /// Whether the `topics` claim covers the subscription `pattern`.
    pub(crate) fn may_subscribe(&self, pattern: &str) -> bool {
        self.topics
            .as_ref()
            .is_none_or(|claims| claims.iter().any(|c| naive_covers(c, pattern)))
    }

    /// Whether a pattern of the `topics` claim matches the concrete `topic`.
    pub(crate) fn may_publish(&self, topic: &str) -> bool {
        self.topics
            .as_ref()
            .is_none_or(|claims| claims.iter().any(|c| naive_match(c, topic)))
    }
}

pub(crate) struct Model {
    pub(crate) policy: SessionPolicy,
    /// `jwt_leeway`, in ms.
    pub(crate) leeway_ms: u64,
    /// `max_messages_per_sec` and `message_burst`.
    pub(crate) rate: u32,
    pub(crate) burst: u32,
    pub(crate) now_ms: u64,
    pub(crate) conns: BTreeMap<ConnId, ModelConn>,
    pub(crate) auth_seq: u64,
    /// This step's changes of users' connection counts, in order: (user, count after).
    pub(crate) presence_log: Vec<(String, usize)>,
    /// Once shut down: when `Stop` is owed, in ms.
    pub(crate) draining: Option<u64>,
    /// Whether `Stop` came.
    pub(crate) stopped: bool,
}

impl Model {
    pub(crate) fn user_conns(&self, user: &str) -> Vec<ConnId> {
        let mut v: Vec<(u64, ConnId)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match &c.session {
                Some(s) if s.user == user => Some((s.seq, *id)),
                _ => None,
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    pub(crate) fn count(&self, user: &str) -> usize {
        self.user_conns(user).len()
    }

    /// Who the policy replaces when `user` authenticates on `device`.
    pub(crate) fn replaced(&self, user: &str, device: Option<&str>) -> Vec<ConnId> {
        let existing = self.user_conns(user);
        match self.policy {
            SessionPolicy::Single => existing,
            SessionPolicy::PerDevice => existing
                .into_iter()
                .filter(|id| {
                    device.is_some()
                        && self.conns[id].session.as_ref().unwrap().device.as_deref() == device
                })
                .collect(),
            SessionPolicy::Multi { max_per_user } => {
                let excess = (existing.len() + 1).saturating_sub(max_per_user);
                existing.into_iter().take(excess).collect()
            }
        }
    }

    pub(crate) fn authenticate(
        &mut self,
        id: ConnId,
        user: &str,
        device: Option<String>,
        expires_ms: u64,
        topics: Option<Vec<String>>,
    ) -> Vec<ConnId> {
        let before = self.count(user);
        let replaced = self.replaced(user, device.as_deref());
        for r in &replaced {
            self.conns.remove(r);
        }
        self.auth_seq += 1;
        self.conns.get_mut(&id).unwrap().session = Some(Session {
            user: user.to_owned(),
            device,
            seq: self.auth_seq,
            expires_ms,
            topics,
        });
        // A replacement is one step: the newcomer takes the old one's place.
        let after = self.count(user);
        if after != before {
            self.presence_log.push((user.to_owned(), after));
        }
        replaced
    }

    /// A connection leaves (closed, evicted, timed out; not replaced): its user's count
    /// drops by one, a change of its own.
    pub(crate) fn leave(&mut self, id: ConnId) -> Option<ModelConn> {
        let c = self.conns.remove(&id)?;
        if let Some(s) = &c.session {
            let after = self.count(&s.user);
            self.presence_log.push((s.user.clone(), after));
        }
        Some(c)
    }

    pub(crate) fn touch(&mut self, id: ConnId) {
        let now = self.now_ms;
        if let Some(c) = self.conns.get_mut(&id) {
            c.last_seen_ms = now;
        }
    }

    pub(crate) fn subscribers(&self, topic: &str) -> BTreeSet<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.subs.iter().any(|p| naive_match(p, topic)))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// PROTOCOL.md's coverage, segment by segment: a literal covers the same literal, `*` a
/// literal or `*`, and a trailing `**` any tail of one or more segments.
pub(crate) fn naive_covers(claim: &str, pattern: &str) -> bool {
    let c: Vec<&str> = claim.split('.').collect();
    let p: Vec<&str> = pattern.split('.').collect();
    let covers = |c: &&str, p: &&str| if *c == "*" { *p != "**" } else { c == p };
    if c.last() == Some(&"**") {
        let head = &c[..c.len() - 1];
        return p.len() > head.len() && head.iter().zip(&p).all(|(c, p)| covers(c, p));
    }
    c.len() == p.len() && c.iter().zip(&p).all(|(c, p)| covers(c, p))
}

/// Whether `pattern` is a subscription pattern: no empty segment, `**` only as the last.
pub(crate) fn valid_pattern(pattern: &str) -> bool {
    let segments: Vec<&str> = pattern.split('.').collect();
    let (last, head) = segments.split_last().expect("split yields one at least");
    !last.is_empty() && head.iter().all(|s| !s.is_empty() && *s != "**")
}

/// Whether `topic` is a concrete topic: no empty segment, no wildcard.
pub(crate) fn valid_topic(topic: &str) -> bool {
    topic
        .split('.')
        .all(|s| !s.is_empty() && s != "*" && s != "**")
}

/// Whether the application may close with `code`: 1000, 1008 and 4000..=4999.
pub(crate) fn valid_app_code(code: u16) -> bool {
    matches!(code, 1000 | 1008 | 4000..=4999)
}

/// The reference matcher: written independently of the trie and of `Pattern::matches`.
pub(crate) fn naive_match(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if p.last() == Some(&"**") {
        let prefix = &p[..p.len() - 1];
        return t.len() > prefix.len() && prefix.iter().zip(&t).all(|(a, b)| *a == "*" || a == b);
    }
    p.len() == t.len() && p.iter().zip(&t).all(|(a, b)| *a == "*" || a == b)
}

pub(crate) fn presence_topic(user: &str) -> String {
    let mut s = String::from("presence.");
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"_:@+=~-".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
