//! Model-based test: random sequences of inputs run against the core and against a simple
//! reference model (a `BTreeMap` of connections, the current time and a naive topic matcher);
//! every invariant of SPEC.md is checked after every step.
//!
//! 1,000 cases per run; set `SWITCHBOARD_MODEL_CASES` for more.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::value::RawValue;
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{
    Action, CloseCode, Config, ConnId, Frame, Handshake, Instant, Now, SessionPolicy, Switchboard,
};

const SECRET: &[u8] = b"model-secret";
const WALL0: u64 = 1_795_428_000_000;
const PING_MS: u64 = 1_000;
const PONG_TIMEOUT_MS: u64 = 2_500;
const AUTH_TIMEOUT_MS: u64 = 1_500;
const MAX_PER_IP: usize = 3;
const MAX_SUBS: usize = 3;
const USERS: [&str; 3] = ["u0", "u1", "u2@x.y"];
const DEVICES: [&str; 2] = ["d0", "d1"];
const PATTERNS: [&str; 8] = [
    "a.b",
    "a.*",
    "a.**",
    "*.b",
    "**",
    "presence.u0",
    "presence.*",
    "presence.u2@x%2Ey",
];
const TOPICS: [&str; 4] = ["a.b", "a.c", "x.b", "a.b.c"];

#[derive(Clone, Debug)]
enum Op {
    Open {
        ip: u8,
        token: Option<(usize, Option<usize>)>,
        handshake_device: Option<usize>,
    },
    Auth {
        conn: usize,
        user: usize,
        token_device: Option<usize>,
        message_device: Option<usize>,
    },
    Subscribe {
        conn: usize,
        pattern: usize,
    },
    Unsubscribe {
        conn: usize,
        pattern: usize,
    },
    Publish {
        conn: usize,
        topic: usize,
    },
    AppPublish {
        topic: usize,
    },
    ClientPing {
        conn: usize,
    },
    Pong {
        conn: usize,
    },
    Closed {
        conn: usize,
    },
    Advance {
        ms: u64,
    },
    /// Time moves to the core's `poll_timeout`, shifted by `delta_ms` (an adapter that wakes a
    /// little early or late).
    AdvanceToDeadline {
        delta_ms: i64,
    },
    SendToUser {
        user: usize,
    },
    DisconnectUser {
        user: usize,
    },
    Backlog {
        conn: usize,
        over: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0usize..16;
    prop_oneof![
        3 => (0u8..2, proptest::option::of((0usize..3, proptest::option::of(0usize..2))), proptest::option::of(0usize..2))
            .prop_map(|(ip, token, handshake_device)| Op::Open { ip, token, handshake_device }),
        2 => (conn.clone(), 0usize..3, proptest::option::of(0usize..2), proptest::option::of(0usize..2))
            .prop_map(|(conn, user, token_device, message_device)| Op::Auth { conn, user, token_device, message_device }),
        3 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Subscribe { conn, pattern }),
        1 => (conn.clone(), 0usize..PATTERNS.len()).prop_map(|(conn, pattern)| Op::Unsubscribe { conn, pattern }),
        3 => (conn.clone(), 0usize..TOPICS.len()).prop_map(|(conn, topic)| Op::Publish { conn, topic }),
        1 => (0usize..TOPICS.len()).prop_map(|topic| Op::AppPublish { topic }),
        1 => conn.clone().prop_map(|conn| Op::ClientPing { conn }),
        2 => conn.clone().prop_map(|conn| Op::Pong { conn }),
        1 => conn.clone().prop_map(|conn| Op::Closed { conn }),
        3 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        3 => prop_oneof![Just(0i64), -5i64..5, -300i64..300]
            .prop_map(|delta_ms| Op::AdvanceToDeadline { delta_ms }),
        1 => (0usize..3).prop_map(|user| Op::SendToUser { user }),
        1 => (0usize..3).prop_map(|user| Op::DisconnectUser { user }),
        1 => (conn, any::<bool>()).prop_map(|(conn, over)| Op::Backlog { conn, over }),
    ]
}

fn policy() -> impl Strategy<Value = SessionPolicy> {
    prop_oneof![
        Just(SessionPolicy::Single),
        Just(SessionPolicy::PerDevice),
        Just(SessionPolicy::Multi { max_per_user: 2 }),
    ]
}

/// One connection as the model sees it.
#[derive(Clone, Debug)]
struct ModelConn {
    ip: u8,
    handshake_device: Option<String>,
    opened_ms: u64,
    last_seen_ms: u64,
    /// When the core owes it its next WebSocket ping.
    next_ping_ms: u64,
    /// (user, device, auth order) once authenticated.
    session: Option<(String, Option<String>, u64)>,
    subs: BTreeSet<String>,
}

struct Model {
    policy: SessionPolicy,
    now_ms: u64,
    conns: BTreeMap<ConnId, ModelConn>,
    auth_seq: u64,
}

impl Model {
    fn user_conns(&self, user: &str) -> Vec<ConnId> {
        let mut v: Vec<(u64, ConnId)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match &c.session {
                Some((u, _, seq)) if u == user => Some((*seq, *id)),
                _ => None,
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    fn count(&self, user: &str) -> usize {
        self.user_conns(user).len()
    }

    /// Who the policy replaces when `user` authenticates on `device`.
    fn replaced(&self, user: &str, device: Option<&str>) -> Vec<ConnId> {
        let existing = self.user_conns(user);
        match self.policy {
            SessionPolicy::Single => existing,
            SessionPolicy::PerDevice => existing
                .into_iter()
                .filter(|id| {
                    device.is_some()
                        && self.conns[id].session.as_ref().unwrap().1.as_deref() == device
                })
                .collect(),
            SessionPolicy::Multi { max_per_user } => {
                let excess = (existing.len() + 1).saturating_sub(max_per_user);
                existing.into_iter().take(excess).collect()
            }
        }
    }

    fn authenticate(&mut self, id: ConnId, user: &str, device: Option<String>) -> Vec<ConnId> {
        let replaced = self.replaced(user, device.as_deref());
        for r in &replaced {
            self.conns.remove(r);
        }
        self.auth_seq += 1;
        self.conns.get_mut(&id).unwrap().session = Some((user.to_owned(), device, self.auth_seq));
        replaced
    }

    fn touch(&mut self, id: ConnId) {
        let now = self.now_ms;
        if let Some(c) = self.conns.get_mut(&id) {
            c.last_seen_ms = now;
        }
    }

    fn subscribers(&self, topic: &str) -> BTreeSet<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.subs.iter().any(|p| naive_match(p, topic)))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The reference matcher: written independently of the trie and of `Pattern::matches`.
fn naive_match(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if p.last() == Some(&"**") {
        let prefix = &p[..p.len() - 1];
        return t.len() > prefix.len() && prefix.iter().zip(&t).all(|(a, b)| *a == "*" || a == b);
    }
    p.len() == t.len() && p.iter().zip(&t).all(|(a, b)| *a == "*" || a == b)
}

fn token(user: &str, device: Option<usize>) -> String {
    sign_hs256(
        SECRET,
        &Claims {
            sub: user.to_owned(),
            exp: WALL0 / 1000 + 1_000_000,
            device: device.map(|d| DEVICES[d].to_owned()),
            topics: None,
            info: None,
        },
    )
}

fn payload_type(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).expect("server messages are JSON");
    v["type"]
        .as_str()
        .expect("every server message has a type")
        .to_owned()
}

struct Harness {
    sb: Switchboard,
    model: Model,
    /// Every id the core ever returned, live or not: ops pick from these, so stale ids are used too.
    ids: Vec<ConnId>,
    dead: BTreeSet<ConnId>,
    /// The connections this step owes a ping.
    expect_pings: BTreeSet<ConnId>,
}

impl Harness {
    fn now(&self) -> Now {
        Now::new(
            Instant::from_millis(self.model.now_ms),
            WALL0 + self.model.now_ms,
        )
    }

    fn pick(&self, i: usize) -> Option<ConnId> {
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()])
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.sb.poll_action()).collect()
    }

    fn step(&mut self, op: &Op) {
        let counts_before: Vec<usize> = USERS.iter().map(|u| self.model.count(u)).collect();
        let live_before: BTreeSet<ConnId> = self.model.conns.keys().copied().collect();
        let mut expect_closed: BTreeMap<ConnId, CloseCode> = BTreeMap::new();
        let mut expect_evicted: BTreeSet<ConnId> = BTreeSet::new();
        self.expect_pings.clear();
        let mut expect_messages: Option<BTreeSet<ConnId>> = None;
        let now = self.now();
        match *op {
            Op::Open {
                ip,
                token: tok,
                handshake_device,
            } => {
                let handshake = Handshake {
                    token: tok.map(|(u, d)| token(USERS[u], d)),
                    device: handshake_device.map(|d| DEVICES[d].to_owned()),
                    ..Handshake::default()
                };
                let addr = core::net::IpAddr::from([10, 0, 0, ip]);
                let at_limit =
                    self.model.conns.values().filter(|c| c.ip == ip).count() >= MAX_PER_IP;
                match self.sb.open(now, addr, handshake) {
                    Ok(id) => {
                        assert!(!at_limit, "open past the per-IP limit was accepted");
                        assert!(
                            !self.model.conns.contains_key(&id),
                            "id {id} reused while live"
                        );
                        assert!(
                            !self.dead.contains(&id),
                            "id {id} of a dead connection reused"
                        );
                        self.ids.push(id);
                        self.model.conns.insert(
                            id,
                            ModelConn {
                                ip,
                                handshake_device: handshake_device.map(|d| DEVICES[d].to_owned()),
                                opened_ms: self.model.now_ms,
                                last_seen_ms: self.model.now_ms,
                                next_ping_ms: self.model.now_ms + PING_MS,
                                session: None,
                                subs: BTreeSet::new(),
                            },
                        );
                        if let Some((u, d)) = tok {
                            let device = handshake_device.or(d).map(|d| DEVICES[d].to_owned());
                            for r in self.model.authenticate(id, USERS[u], device) {
                                expect_closed.insert(r, CloseCode::SESSION_REPLACED);
                            }
                        }
                    }
                    Err(e) => assert!(at_limit, "open refused below the per-IP limit: {e}"),
                }
            }
            Op::Auth {
                conn,
                user,
                token_device,
                message_device,
            } => {
                let Some(id) = self.pick(conn) else { return };
                let mut msg =
                    serde_json::json!({"type": "auth", "token": token(USERS[user], token_device)});
                if let Some(d) = message_device {
                    msg["deviceId"] = DEVICES[d].into();
                }
                self.model.touch(id);
                if let Some(c) = self.model.conns.get(&id) {
                    if c.session.is_none() {
                        let device = message_device
                            .map(|d| DEVICES[d].to_owned())
                            .or_else(|| c.handshake_device.clone())
                            .or(token_device.map(|d| DEVICES[d].to_owned()));
                        for r in self.model.authenticate(id, USERS[user], device) {
                            expect_closed.insert(r, CloseCode::SESSION_REPLACED);
                        }
                    }
                }
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Subscribe { conn, pattern } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                if let Some(c) = self.model.conns.get_mut(&id) {
                    if c.session.is_some()
                        && (c.subs.len() < MAX_SUBS || c.subs.contains(PATTERNS[pattern]))
                    {
                        c.subs.insert(PATTERNS[pattern].to_owned());
                    }
                }
                let msg = serde_json::json!({"type": "subscribe", "topic": PATTERNS[pattern]});
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Unsubscribe { conn, pattern } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                if let Some(c) = self.model.conns.get_mut(&id) {
                    c.subs.remove(PATTERNS[pattern]);
                }
                let msg = serde_json::json!({"type": "unsubscribe", "topic": PATTERNS[pattern]});
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Publish { conn, topic } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                let authed = self
                    .model
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.session.is_some());
                expect_messages = Some(if authed {
                    self.model.subscribers(TOPICS[topic])
                } else {
                    BTreeSet::new()
                });
                let msg = serde_json::json!({"type": "message", "topic": TOPICS[topic], "data": {"n": 1}});
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::AppPublish { topic } => {
                let expected = self.model.subscribers(TOPICS[topic]);
                let data = RawValue::from_string("[1,2]".into()).unwrap();
                let n = self
                    .sb
                    .publish(now, TOPICS[topic], &data, None)
                    .unwrap()
                    .delivered;
                assert_eq!(n, expected.len(), "publish count");
                expect_messages = Some(expected);
            }
            Op::ClientPing { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                self.sb
                    .handle_frame(now, id, Frame::Text(r#"{"type":"ping"}"#));
            }
            Op::Pong { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                self.sb.handle_pong(now, id);
            }
            Op::Closed { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.conns.remove(&id);
                self.sb.handle_closed(now, id);
            }
            Op::Advance { .. } | Op::AdvanceToDeadline { .. } => {
                self.model.now_ms = match op {
                    Op::Advance { ms } => self.model.now_ms + ms,
                    _ => {
                        let Op::AdvanceToDeadline { delta_ms } = op else {
                            unreachable!()
                        };
                        let deadline = self
                            .sb
                            .poll_timeout()
                            .map_or(self.model.now_ms, |d| d.as_nanos() / 1_000_000);
                        deadline
                            .saturating_add_signed(*delta_ms)
                            .max(self.model.now_ms)
                    }
                };
                let t = self.model.now_ms;
                for (id, c) in &self.model.conns {
                    if c.last_seen_ms + PONG_TIMEOUT_MS <= t {
                        expect_evicted.insert(*id);
                    } else if c.session.is_none() && c.opened_ms + AUTH_TIMEOUT_MS <= t {
                        expect_closed.insert(*id, CloseCode::AUTH_TIMEOUT);
                    }
                }
                self.model.conns.retain(|id, _| {
                    !expect_evicted.contains(id) && !expect_closed.contains_key(id)
                });
                // Every survivor whose ping is due gets one; after a stall, one, and the
                // cadence resumes from now.
                for (id, c) in self.model.conns.iter_mut() {
                    if c.next_ping_ms <= t {
                        self.expect_pings.insert(*id);
                        c.next_ping_ms = (c.next_ping_ms + PING_MS).max(t + PING_MS);
                    }
                }
                let now = self.now();
                self.sb.handle_timeout(now);
                if let Some(next) = self.sb.poll_timeout() {
                    assert!(
                        next > now.instant,
                        "poll_timeout {next:?} is not after the handled time"
                    );
                }
            }
            Op::SendToUser { user } => {
                let n = self.sb.send_to_user(
                    now,
                    USERS[user],
                    &RawValue::from_string("1".into()).unwrap(),
                );
                assert_eq!(n, self.model.count(USERS[user]));
            }
            Op::DisconnectUser { user } => {
                for id in self.model.user_conns(USERS[user]) {
                    self.model.conns.remove(&id);
                    expect_closed.insert(id, CloseCode(4000));
                }
                let n = self
                    .sb
                    .disconnect_user(now, USERS[user], None, CloseCode(4000), "bye")
                    .unwrap();
                assert_eq!(n, expect_closed.len());
            }
            Op::Backlog { conn, over } => {
                let Some(id) = self.pick(conn) else { return };
                let queued = if over { 1024 * 1024 + 1 } else { 1024 * 1024 };
                if over && self.model.conns.remove(&id).is_some() {
                    expect_closed.insert(id, CloseCode::SLOW_CONSUMER);
                }
                self.sb.handle_backlog(now, id, queued);
            }
        }
        let actions = self.drain();
        self.check_actions(
            op,
            &actions,
            &live_before,
            &expect_closed,
            &expect_evicted,
            expect_messages,
            &counts_before,
        );
        self.check_indexes();
        self.check_deadline();
    }

    /// An adapter sleeps until `poll_timeout`: it must not be later than anything the core owes
    /// (a ping, a zombie's eviction, an auth timeout), or a real server would miss it.
    fn check_deadline(&self) {
        let owed = self
            .model
            .conns
            .values()
            .flat_map(|c| {
                let auth = c.session.is_none().then_some(c.opened_ms + AUTH_TIMEOUT_MS);
                [
                    Some(c.next_ping_ms),
                    Some(c.last_seen_ms + PONG_TIMEOUT_MS),
                    auth,
                ]
            })
            .flatten()
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

    #[allow(clippy::too_many_arguments)]
    fn check_actions(
        &mut self,
        op: &Op,
        actions: &[Action],
        live_before: &BTreeSet<ConnId>,
        expect_closed: &BTreeMap<ConnId, CloseCode>,
        expect_evicted: &BTreeSet<ConnId>,
        expect_messages: Option<BTreeSet<ConnId>>,
        counts_before: &[usize],
    ) {
        let mut closed = BTreeMap::new();
        let mut evicted = BTreeSet::new();
        let mut messages: Vec<ConnId> = Vec::new();
        let mut presence_pushes: Vec<ConnId> = Vec::new();
        let mut presence_events: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        let mut pings = BTreeSet::new();
        let opened_now: BTreeSet<ConnId> = self
            .model
            .conns
            .keys()
            .filter(|id| !live_before.contains(id))
            .copied()
            .collect();
        for action in actions {
            if let Some(id) = action.conn() {
                assert!(
                    !self.dead.contains(&id),
                    "{op:?}: action {action:?} names {id}, which has left"
                );
                assert!(
                    live_before.contains(&id) || opened_now.contains(&id),
                    "{op:?}: action {action:?} names {id}, which was never live"
                );
            }
            match action {
                Action::Close { conn, code, .. } => {
                    closed.insert(*conn, *code);
                    self.dead.insert(*conn);
                }
                Action::Evict { conn } => {
                    evicted.insert(*conn);
                    self.dead.insert(*conn);
                }
                Action::Send { conn, payload } => match payload_type(payload).as_str() {
                    "message" => messages.push(*conn),
                    "presence" => presence_pushes.push(*conn),
                    _ => {}
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
                Action::Stop => {}
                other => panic!("{op:?}: an action the model does not know: {other:?}"),
            }
        }
        assert_eq!(pings, self.expect_pings, "{op:?}: who is pinged");
        if let Op::Closed { conn } = op {
            // The transport went away: nothing to close, but the id is dead from now on.
            if let Some(id) = self.pick(*conn) {
                self.dead.insert(id);
            }
        }
        assert_eq!(&closed, expect_closed, "{op:?}: closes");
        assert_eq!(&evicted, expect_evicted, "{op:?}: zombie evictions");
        if let Some(expected) = expect_messages {
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
            // Every surviving subscriber of the user's presence topic heard of a count change.
            if before != after && !matches!(op, Op::Subscribe { .. }) {
                let topic = presence_topic(user);
                for id in self.model.subscribers(&topic) {
                    assert!(
                        presence_pushes.contains(&id),
                        "{op:?}: {id} missed presence of {user}"
                    );
                }
            }
        }
        assert!(
            presence_events.is_empty(),
            "{op:?}: presence events of unknown users"
        );
    }

    fn check_indexes(&self) {
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
            assert_eq!(
                info.user(),
                c.session.as_ref().map(|s| s.0.as_str()),
                "user of {id}"
            );
            assert_eq!(
                info.device(),
                c.session.as_ref().and_then(|s| s.1.as_deref()),
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
                SessionPolicy::PerDevice => {
                    for device in DEVICES {
                        let n = self.sb.device_connections(user, device).count();
                        assert!(n <= 1, "per-device: {user} has {n} connections on {device}");
                    }
                }
            }
        }
        assert_eq!(stats.users, online, "online users");
        assert_eq!(self.sb.online_users().count(), online);
    }
}

fn presence_topic(user: &str) -> String {
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

fn cases() -> u32 {
    std::env::var("SWITCHBOARD_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn core_agrees_with_the_reference_model(policy in policy(), ops in proptest::collection::vec(op(), 1..80)) {
        let config = {
 let mut config = Config::default();
config.session_policy = policy;
config.ping_interval = Duration::from_millis(PING_MS);
config.pong_timeout = Duration::from_millis(PONG_TIMEOUT_MS);
config.auth_timeout = Duration::from_millis(AUTH_TIMEOUT_MS);
config.max_connections_per_ip = MAX_PER_IP as u32;
config.max_subscriptions = MAX_SUBS;
config.max_messages_per_sec = 0;
 config
};
        let mut h = Harness {
            sb: Switchboard::new(config, Hs256Verifier::new(SECRET), 1),
            model: Model { policy, now_ms: 0, conns: BTreeMap::new(), auth_seq: 0 },
            ids: Vec::new(),
            dead: BTreeSet::new(),
            expect_pings: BTreeSet::new(),
        };
        for op in &ops {
            h.step(op);
        }
    }
}
