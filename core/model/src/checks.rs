//! The invariants checked after every step.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_core::{Action, ConnId, Instant, SessionPolicy};

use crate::harness::Harness;
use crate::ops::*;
use crate::reference::{naive_match, presence_topic};
use crate::wire::{expected_timestamp, is_protocol_close_code, server_message};

pub(crate) fn payload_type(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).expect("server messages are JSON");
    v["type"]
        .as_str()
        .expect("every server message has a type")
        .to_owned()
}

/// A direct reply as the model writes it: its type, and its code for errors.
fn reply_of(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    let kind = v["type"].as_str().unwrap();
    match v["code"].as_u64() {
        Some(code) => format!("{kind} {code}"),
        None => kind.to_owned(),
    }
}

impl Harness {
    /// An adapter sleeps until `poll_timeout`: it must not be later than anything the core owes
    /// (a ping, a zombie's eviction, an auth timeout, a token's expiry, the `Stop` of a
    /// shutdown), or a real server would miss it.
    pub(crate) fn check_deadline(&self) {
        let owed = self
            .model
            .conns
            .values()
            .flat_map(|c| {
                // Pending: its auth timeout; authenticated: its token's expiry.
                let auth = match &c.session {
                    None => c.opened_ms + AUTH_TIMEOUT_MS,
                    Some(s) => s.expires_ms,
                };
                [c.next_ping_ms, c.last_seen_ms + PONG_TIMEOUT_MS, auth]
            })
            .chain(self.model.draining.filter(|_| !self.model.stopped))
            .min();
        if let Some(owed) = owed {
            let next = self
                .sb
                .poll_timeout()
                .expect("a deadline while work is owed");
            assert!(
                next <= Instant::from_millis(owed),
                "poll_timeout {next:?} is later than the earliest deadline owed, {owed} ms"
            );
        }
    }

    pub(crate) fn check_actions(
        &mut self,
        op: &Op,
        actions: &[Action],
        subs_before: &BTreeMap<ConnId, BTreeSet<String>>,
        counts_before: &[usize],
    ) {
        let mut closed = BTreeMap::new();
        let mut evicted = BTreeSet::new();
        let mut messages: Vec<ConnId> = Vec::new();
        // Per connection and user, the (online, connections) pushes in order.
        let mut presence_pushes: BTreeMap<(ConnId, String), Vec<(bool, usize)>> = BTreeMap::new();
        let mut presence_events: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        let mut pings = BTreeSet::new();
        let mut pongs: BTreeMap<ConnId, usize> = BTreeMap::new();
        let mut replies: BTreeMap<ConnId, Vec<String>> = BTreeMap::new();
        let mut pushes: Vec<ConnId> = Vec::new();
        let mut stops = 0;
        // Every server message has PROTOCOL.md's shape, stamped with the step's wall clock.
        let ts = expected_timestamp(WALL0 + self.model.now_ms);
        let opened_now: BTreeSet<ConnId> = self
            .model
            .conns
            .keys()
            .filter(|id| !subs_before.contains_key(id))
            .copied()
            .collect();
        for action in actions {
            if let Some(id) = action.conn() {
                assert!(
                    !self.dead.contains(&id),
                    "{op:?}: action {action:?} names {id}, which has left"
                );
                assert!(
                    subs_before.contains_key(&id) || opened_now.contains(&id),
                    "{op:?}: action {action:?} names {id}, which was never live"
                );
            }
            match action {
                Action::Close { conn, code, .. } => {
                    // The core's own closes use PROTOCOL.md's codes; the application's, its own.
                    let app = matches!(
                        op,
                        Op::DisconnectUser { .. } | Op::DisconnectConnection { .. }
                    );
                    assert!(
                        is_protocol_close_code(*code) || app,
                        "{op:?}: close of {conn} with {code}"
                    );
                    closed.insert(*conn, *code);
                    self.dead.insert(*conn);
                }
                Action::Evict { conn } => {
                    evicted.insert(*conn);
                    self.dead.insert(*conn);
                }
                Action::Send { conn, payload } => match {
                    server_message(payload, &ts);
                    payload_type(payload)
                }
                .as_str()
                {
                    "message" => messages.push(*conn),
                    "presence" => {
                        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
                        let user = v["userId"].as_str().unwrap().to_owned();
                        let push = (
                            v["online"].as_bool().unwrap(),
                            v["connections"].as_u64().unwrap() as usize,
                        );
                        presence_pushes.entry((*conn, user)).or_default().push(push);
                    }
                    "pong" => *pongs.entry(*conn).or_default() += 1,
                    "push" => pushes.push(*conn),
                    _ => replies.entry(*conn).or_default().push(reply_of(payload)),
                },
                Action::Presence {
                    user,
                    online,
                    connections,
                } => {
                    assert_eq!(*online, *connections > 0, "presence event {action:?}");
                    presence_events
                        .entry(user.to_string())
                        .or_default()
                        .push(*online);
                }
                Action::Ping { conn } => {
                    assert!(pings.insert(*conn), "{op:?}: two pings to {conn}")
                }
                Action::Stop => stops += 1,
                other => panic!("{op:?}: an action the model does not know: {other:?}"),
            }
        }
        // `Stop` once, from the `handle_timeout` at or after the drain deadline.
        let stop = usize::from(self.expect.stop);
        assert_eq!(
            stops, stop,
            "{op:?}: Stop at the drain deadline: {actions:?}"
        );
        // A newcomer hears first of all its `auth_success`, with its id; without a token,
        // nothing.
        for &id in &opened_now {
            let first = actions.iter().find(|a| a.conn() == Some(id));
            let authenticated = self
                .expect
                .replies
                .get(&id)
                .is_some_and(|r| r[0] == "auth_success");
            match first {
                Some(Action::Send { payload, .. }) if authenticated => {
                    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
                    assert_eq!(v["type"], "auth_success", "{op:?}: first to {id}");
                    assert_eq!(v["connId"], id.to_string(), "{op:?}: connId of {id}");
                }
                None if !authenticated => {}
                other => panic!("{op:?}: first action to {id}: {other:?}"),
            }
        }
        assert_eq!(pings, self.expect.pings, "{op:?}: who is pinged");
        // A frame past the bucket closes with 4029; those before it were answered.
        assert_eq!(pongs, self.expect.pongs, "{op:?}: pongs");
        assert_eq!(replies, self.expect.replies, "{op:?}: replies");
        if let Op::Closed { conn } = op {
            // The transport went away: nothing to close, but the id is dead from now on.
            if let Some(id) = self.pick(*conn) {
                self.dead.insert(id);
            }
        }
        assert_eq!(closed, self.expect.closed, "{op:?}: closes");
        assert_eq!(evicted, self.expect.evicted, "{op:?}: zombie evictions");
        // An application send reaches exactly the connections the model selects, each once.
        let got: BTreeSet<ConnId> = pushes.iter().copied().collect();
        assert_eq!(
            got.len(),
            pushes.len(),
            "{op:?}: a connection got a push twice"
        );
        let want = self.expect.pushes.take().unwrap_or_default();
        assert_eq!(got, want, "{op:?}: push recipients");
        if let Some(expected) = self.expect.messages.take() {
            let got: BTreeSet<ConnId> = messages.iter().copied().collect();
            assert_eq!(
                got.len(),
                messages.len(),
                "{op:?}: a connection got one publish twice"
            );
            assert_eq!(got, expected, "{op:?}: publish recipients");
        } else {
            assert!(messages.is_empty(), "{op:?}: unexpected message deliveries");
        }
        // Presence: online exactly on 0 -> n, offline exactly on n -> 0.
        for (u, user) in USERS.iter().enumerate() {
            let (before, after) = (counts_before[u], self.model.count(user));
            let expected: Vec<bool> = match (before, after) {
                (0, a) if a > 0 => vec![true],
                (b, 0) if b > 0 => vec![false],
                _ => vec![],
            };
            let got = presence_events.remove(*user).unwrap_or_default();
            assert_eq!(
                got, expected,
                "{op:?}: presence events of {user} ({before} -> {after})"
            );
        }
        assert!(
            presence_events.is_empty(),
            "{op:?}: presence events of unknown users"
        );
        self.check_presence_pushes(op, subs_before, presence_pushes);
    }

    /// Subscribers of a user's presence topic get exactly one push per change of its count,
    /// in order, each with the count after it (a connection that left during the step: the
    /// pushes before it left, a prefix); a subscribe to a concrete presence topic, one
    /// snapshot; nobody else, nothing.
    fn check_presence_pushes(
        &mut self,
        op: &Op,
        subs_before: &BTreeMap<ConnId, BTreeSet<String>>,
        mut got: BTreeMap<(ConnId, String), Vec<(bool, usize)>>,
    ) {
        let mut owed: BTreeMap<(ConnId, String), Vec<(bool, usize)>> = BTreeMap::new();
        if let Some((id, (user, online, n))) = self.expect.snapshot.take() {
            owed.entry((id, user)).or_default().push((online, n));
        }
        let survivors = self.model.conns.iter().map(|(id, c)| (*id, &c.subs, true));
        let leavers = subs_before
            .iter()
            .filter(|(id, _)| !self.model.conns.contains_key(id))
            .map(|(id, subs)| (*id, subs, false));
        for (id, subs, survived) in survivors.chain(leavers) {
            for user in USERS {
                let topic = presence_topic(user);
                let want: Vec<(bool, usize)> = if subs.iter().any(|p| naive_match(p, &topic)) {
                    let changes = self.model.presence_log.iter().filter(|(u, _)| u == user);
                    changes.map(|&(_, n)| (n > 0, n)).collect()
                } else {
                    Vec::new()
                };
                let key = (id, user.to_owned());
                let mut want_all = owed.remove(&key).unwrap_or_default();
                want_all.extend(want);
                let got = got.remove(&key).unwrap_or_default();
                if survived {
                    assert_eq!(got, want_all, "{op:?}: presence pushes of {user} to {id}");
                } else {
                    assert!(
                        want_all.starts_with(&got),
                        "{op:?}: presence pushes of {user} to {id}, which left: {got:?}, \
                         not a prefix of {want_all:?}"
                    );
                }
            }
        }
        assert!(owed.is_empty(), "{op:?}: snapshot owed to no connection");
        assert!(got.is_empty(), "{op:?}: presence pushes to others: {got:?}");
    }

    pub(crate) fn check_indexes(&self) {
        let stats = self.sb.stats();
        assert_eq!(
            stats.connections,
            self.model.conns.len(),
            "connection count"
        );
        let authed = self
            .model
            .conns
            .values()
            .filter(|c| c.session.is_some())
            .count();
        assert_eq!(stats.authenticated, authed, "authenticated count");
        let subs: usize = self.model.conns.values().map(|c| c.subs.len()).sum();
        assert_eq!(stats.subscriptions, subs, "subscription count");
        let patterns: BTreeSet<&String> = self.model.conns.values().flat_map(|c| &c.subs).collect();
        assert_eq!(stats.topics, patterns.len(), "distinct pattern count");
        for (id, c) in &self.model.conns {
            let info = self.sb.connection(*id).expect("a live connection is known");
            assert_eq!(info.id(), *id);
            assert_eq!(
                info.ip(),
                core::net::IpAddr::from([10, 0, 0, c.ip]),
                "ip of {id}"
            );
            assert_eq!(info.user(), self.sb.user_of(*id), "user_of({id})");
            assert_eq!(info.is_authenticated(), info.user().is_some());
            assert_eq!(
                info.user(),
                c.session.as_ref().map(|s| s.user.as_str()),
                "user of {id}"
            );
            assert_eq!(
                info.device(),
                c.session.as_ref().and_then(|s| s.device.as_deref()),
                "device of {id}"
            );
            let got: BTreeSet<&str> = info.subscriptions().collect();
            let want: BTreeSet<&str> = c.subs.iter().map(String::as_str).collect();
            assert_eq!(got, want, "subscriptions of {id}");
        }
        for id in &self.dead {
            assert!(
                self.sb.connection(*id).is_none(),
                "{id} has left but is still known"
            );
            assert!(
                self.sb.user_of(*id).is_none(),
                "{id} has left but has a user"
            );
        }
        let mut online = 0;
        for user in USERS {
            let want = self.model.user_conns(user);
            assert_eq!(
                self.sb.user_connections(user),
                &want[..],
                "connections of {user}, oldest first"
            );
            assert_eq!(self.sb.is_online(user), !want.is_empty());
            online += usize::from(!want.is_empty());
            // The session policy holds at every instant.
            match self.model.policy {
                SessionPolicy::Single => {
                    assert!(want.len() <= 1, "single: {user} has {}", want.len())
                }
                SessionPolicy::Multi { max_per_user } => assert!(want.len() <= max_per_user),
                SessionPolicy::PerDevice => {}
            }
            for device in DEVICES {
                let n = self.sb.device_connections(user, device).count();
                let on_device = want.iter().filter(|id| {
                    let session = self.model.conns[id].session.as_ref();
                    session.unwrap().device.as_deref() == Some(device)
                });
                assert_eq!(n, on_device.count(), "device_connections({user}, {device})");
                if self.model.policy == SessionPolicy::PerDevice {
                    assert!(n <= 1, "per-device: {user} has {n} connections on {device}");
                }
            }
        }
        assert_eq!(stats.users, online, "online users");
        assert_eq!(self.sb.online_users().count(), online);
    }
}
