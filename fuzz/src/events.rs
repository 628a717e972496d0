//! `event_sequences`: arbitrary sequences of transport events, client messages, time steps and
//! application commands against one `Switchboard`, with SPEC.md's invariants checked after
//! every step from outside the core (stats and queries against what the actions said).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{
    Action, CloseCode, Config, ConnId, DisconnectError, Frame, Handshake, Instant, Now, OpenError,
    SessionPolicy, Switchboard, Violation,
};

use crate::check::{expected_timestamp, is_protocol_close_code, naive_match, server_message};
use crate::enc::{pick, Encode, Encoder};

const SECRET: &[u8] = b"events-secret";
const WALL0: u64 = 1_795_428_000_000;
const PING_MS: u64 = 1_000;
const PONG_TIMEOUT_MS: u64 = 2_500;
const AUTH_TIMEOUT_MS: u64 = 1_500;
const MAX_PER_IP: usize = 3;
const MAX_OUTBOUND: usize = 64 * 1024;
const USERS: [&str; 3] = ["u0", "u1", "u2@x.y"];
const DEVICES: [&str; 3] = ["d0", "d1", "d:2"];
const PATTERNS: [&str; 11] = [
    "a.b",
    "a.*",
    "a.**",
    "*.b",
    "**",
    "presence.u0",
    "presence.*",
    "presence.u2@x%2Ey",
    "x.b",
    "a..b",
    "**.a",
];
const TOPICS: [&str; 7] = ["a.b", "a.c", "x.b", "a.b.c", "presence.u0", "a.*", "a"];
/// The `topics` claim of restricted tokens.
const RESTRICTED: [&str; 2] = ["a.*", "presence.**"];
/// Close codes the application may try; 1000, 1008 and 4000..=4999 are valid.
const APP_CODES: [u16; 8] = [1000, 1008, 4000, 4999, 4001, 1001, 999, 5000];

/// A token presented at the handshake or in an `auth` message.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Token {
    pub user: u8,
    pub device: Option<u8>,
    /// 0..=3 valid for an hour, 4 valid for 2 s, 5 expired, 6 restricted topics, 7 bad signature.
    pub kind: u8,
}

impl Token {
    fn kind(&self) -> u8 {
        self.kind % 8
    }
    fn user(&self) -> &'static str {
        pick(&USERS, self.user)
    }
    fn device(&self) -> Option<&'static str> {
        self.device.map(|d| pick(&DEVICES, d))
    }
    /// Whether the core must accept it at wall-clock `wall`.
    fn valid(&self) -> bool {
        !matches!(self.kind(), 5 | 7)
    }
    /// Its `exp` in Unix milliseconds.
    fn exp_millis(&self, wall: u64) -> u64 {
        self.exp(wall) * 1000
    }
    fn exp(&self, wall: u64) -> u64 {
        match self.kind() {
            4 => wall / 1000 + 2,
            5 => wall / 1000 - 1,
            _ => wall / 1000 + 3600,
        }
    }
    fn render(&self, wall: u64) -> String {
        let claims = Claims {
            sub: self.user().to_owned(),
            exp: self.exp(wall),
            device: self.device().map(str::to_owned),
            topics: (self.kind() == 6).then(|| RESTRICTED.map(str::to_owned).to_vec()),
            info: None,
        };
        let secret: &[u8] = if self.kind() == 7 { b"wrong" } else { SECRET };
        sign_hs256(secret, &claims)
    }
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Op {
    Open {
        ip: u8,
        token: Option<Token>,
        device: Option<u8>,
    },
    Auth {
        conn: u8,
        token: Token,
        device: Option<u8>,
    },
    Subscribe {
        conn: u8,
        pattern: u8,
    },
    Unsubscribe {
        conn: u8,
        pattern: u8,
    },
    Publish {
        conn: u8,
        topic: u8,
        with_id: bool,
    },
    ClientPing {
        conn: u8,
    },
    Pong {
        conn: u8,
    },
    Closed {
        conn: u8,
    },
    Backlog {
        conn: u8,
        over: bool,
    },
    Violation {
        conn: u8,
        invalid_utf8: bool,
    },
    /// 0..=5 s pass, then `handle_timeout`.
    Advance {
        ms: u16,
    },
    SendToUser {
        user: u8,
    },
    SendToUsers {
        users: Vec<u8>,
    },
    SendToDevice {
        user: u8,
        device: u8,
    },
    SendToConnection {
        conn: u8,
    },
    Broadcast,
    AppPublish {
        topic: u8,
    },
    DisconnectUser {
        user: u8,
        device: Option<u8>,
        code: u8,
    },
    DisconnectConnection {
        conn: u8,
        code: u8,
    },
    Shutdown {
        drain_ms: u16,
    },
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Input {
    /// 0: single, 1: per-device, else multi with `max_per_user` 1 + policy % 3.
    pub policy: u8,
    /// Inbound rate limit of 5 frames/s (burst 8) instead of none.
    pub rate_limited: bool,
    pub hash_seed: u64,
    pub ops: Vec<Op>,
}

impl Input {
    fn policy(&self) -> SessionPolicy {
        match self.policy % 4 {
            0 => SessionPolicy::Single,
            1 => SessionPolicy::PerDevice,
            n => SessionPolicy::Multi {
                max_per_user: usize::from(n - 1) + usize::from(self.policy / 4 % 2),
            },
        }
    }
}

/// What the driver knows of a live connection (from its own inputs, not from the core).
#[derive(Clone, Debug)]
struct Tracked {
    ip: IpAddr,
    handshake_device: Option<&'static str>,
    opened_ms: u64,
    last_seen_ms: u64,
    /// Token expiry (Unix ms) and `topics` restriction, once authenticated.
    session: Option<(u64, bool)>,
}

/// What one step is expected to do to connections (where the driver can know it exactly).
#[derive(Default)]
struct Expect {
    /// The exact closes and evictions, when known.
    closes: Option<BTreeMap<ConnId, Option<CloseCode>>>,
    /// Recipients of a topic publish (type `message`).
    messages: Option<BTreeSet<ConnId>>,
    /// Recipients of an application push (type `push`).
    pushes: Option<BTreeSet<ConnId>>,
    /// A connection whose frame this step is (it may be closed 4029 when rate limited).
    sender: Option<ConnId>,
    /// A newcomer that must be authenticated after this step, with its user and device.
    authenticates: Option<(ConnId, &'static str, Option<&'static str>)>,
}

struct Harness {
    sb: Switchboard,
    policy: SessionPolicy,
    rate_limited: bool,
    now_ms: u64,
    live: BTreeMap<ConnId, Tracked>,
    dead: BTreeSet<ConnId>,
    /// Every id ever returned by `open`, live or not: ops pick from these.
    ids: Vec<ConnId>,
    draining: Option<u64>,
    stopped: bool,
}

impl Harness {
    fn now(&self) -> Now {
        Now::new(Instant::from_millis(self.now_ms), self.wall())
    }
    fn wall(&self) -> u64 {
        WALL0 + self.now_ms
    }
    fn pick(&self, i: u8) -> Option<ConnId> {
        (!self.ids.is_empty()).then(|| self.ids[usize::from(i) % self.ids.len()])
    }
    fn touch(&mut self, id: ConnId) {
        let now = self.now_ms;
        if let Some(c) = self.live.get_mut(&id) {
            c.last_seen_ms = now;
        }
    }
    fn authenticated(&self, id: ConnId) -> bool {
        self.sb.connection(id).is_some_and(|c| c.is_authenticated())
    }
    fn subscribers(&self, topic: &str) -> BTreeSet<ConnId> {
        self.live
            .keys()
            .filter(|&&id| {
                let info = self.sb.connection(id).expect("live");
                info.subscriptions().any(|p| naive_match(p, topic))
            })
            .copied()
            .collect()
    }
    fn frame(&mut self, id: ConnId, text: &str) {
        self.touch(id);
        self.sb.handle_frame(self.now(), id, Frame::Text(text));
    }

    /// The connections the session policy replaces when `user` authenticates on `device`.
    fn replaced(&self, user: &str, device: Option<&str>) -> Vec<ConnId> {
        let existing = self.sb.user_connections(user);
        match self.policy {
            SessionPolicy::Single => existing.to_vec(),
            SessionPolicy::PerDevice => existing
                .iter()
                .copied()
                .filter(|&c| {
                    device.is_some() && self.sb.connection(c).expect("live").device() == device
                })
                .collect(),
            SessionPolicy::Multi { max_per_user } => {
                let excess = (existing.len() + 1).saturating_sub(max_per_user.max(1));
                existing[..excess.min(existing.len())].to_vec()
            }
        }
    }

    fn expect_auth(&self, e: &mut Expect, id: ConnId, token: &Token, device: Option<&'static str>) {
        let user = token.user();
        let mut closes = BTreeMap::new();
        for r in self.replaced(user, device) {
            closes.insert(r, Some(CloseCode::SESSION_REPLACED));
        }
        e.closes = Some(closes);
        e.authenticates = Some((id, user, device));
    }

    fn step(&mut self, op: &Op) {
        let now = self.now();
        let users_before: Vec<usize> = USERS
            .iter()
            .map(|u| self.sb.user_connections(u).len())
            .collect();
        let live_before: BTreeSet<ConnId> = self.live.keys().copied().collect();
        let mut e = Expect::default();
        let mut opened = None;
        match op {
            Op::Open { ip, token, device } => {
                let ip = IpAddr::from([10, 0, 0, ip % 4]);
                let device = device.map(|d| pick(&DEVICES, d));
                let handshake = Handshake {
                    token: token.as_ref().map(|t| t.render(self.wall())),
                    device: device.map(str::to_owned),
                    ..Handshake::default()
                };
                // Device precedence at the handshake: its `device`, then the token's.
                let session = token.as_ref().map(|t| (t.user(), device.or(t.device())));
                let replaced = session.map(|(user, dev)| self.replaced(user, dev));
                let from_ip = self.live.values().filter(|c| c.ip == ip).count();
                let result = self.sb.open(now, ip, handshake);
                let mut closes = BTreeMap::new();
                if self.draining.is_some() {
                    assert!(matches!(result, Err(OpenError::Draining)), "{result:?}");
                } else if from_ip >= MAX_PER_IP {
                    assert!(
                        matches!(result, Err(OpenError::TooManyFromIp)),
                        "{result:?}"
                    );
                } else if token.as_ref().is_some_and(|t| !t.valid()) {
                    assert!(
                        matches!(result, Err(OpenError::InvalidToken(_))),
                        "{result:?}"
                    );
                } else {
                    let id = result.expect("open must succeed");
                    assert!(
                        !self.dead.contains(&id),
                        "id {id} of a dead connection reused"
                    );
                    assert!(!self.live.contains_key(&id), "id {id} reused while live");
                    opened = Some(id);
                    self.ids.push(id);
                    for r in replaced.into_iter().flatten() {
                        closes.insert(r, Some(CloseCode::SESSION_REPLACED));
                    }
                    if let Some((user, dev)) = session {
                        e.authenticates = Some((id, user, dev));
                    }
                    self.live.insert(
                        id,
                        Tracked {
                            ip,
                            handshake_device: device,
                            opened_ms: self.now_ms,
                            last_seen_ms: self.now_ms,
                            session: token
                                .as_ref()
                                .map(|t| (t.exp_millis(self.wall()), t.kind() == 6)),
                        },
                    );
                }
                e.closes = Some(closes);
            }
            Op::Auth {
                conn,
                token,
                device,
            } => {
                let Some(id) = self.pick(*conn) else { return };
                let device = device.map(|d| pick(&DEVICES, d));
                let mut msg = json!({"type": "auth", "token": token.render(self.wall())});
                if let Some(d) = device {
                    msg["deviceId"] = d.into();
                }
                e.sender = Some(id);
                e.closes = Some(BTreeMap::new());
                if let Some(c) = self.live.get(&id) {
                    if c.session.is_none() && token.valid() {
                        let dev = device.or(c.handshake_device).or(token.device());
                        self.expect_auth(&mut e, id, token, dev);
                    }
                }
                self.frame(id, &msg.to_string());
            }
            Op::Subscribe { conn, pattern } | Op::Unsubscribe { conn, pattern } => {
                let Some(id) = self.pick(*conn) else { return };
                let ty = if matches!(op, Op::Subscribe { .. }) {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                e.sender = Some(id);
                e.closes = Some(BTreeMap::new());
                e.messages = Some(BTreeSet::new());
                let msg = json!({"type": ty, "topic": pick(&PATTERNS, *pattern)});
                self.frame(id, &msg.to_string());
            }
            Op::Publish {
                conn,
                topic,
                with_id,
            } => {
                let Some(id) = self.pick(*conn) else { return };
                let topic = pick(&TOPICS, *topic);
                let allowed = match self.live.get(&id).and_then(|c| c.session) {
                    None => false,
                    Some((_, restricted)) => {
                        !topic.contains('*')
                            && !topic.starts_with("presence.")
                            && (!restricted || RESTRICTED.iter().any(|p| naive_match(p, topic)))
                    }
                };
                e.sender = Some(id);
                e.closes = Some(BTreeMap::new());
                e.messages = Some(if allowed {
                    self.subscribers(topic)
                } else {
                    BTreeSet::new()
                });
                let mut msg = json!({"type": "message", "topic": topic, "data": {"n": 1}});
                if *with_id {
                    msg["id"] = "p".into();
                }
                self.frame(id, &msg.to_string());
            }
            Op::ClientPing { conn } => {
                let Some(id) = self.pick(*conn) else { return };
                e.sender = Some(id);
                e.closes = Some(BTreeMap::new());
                self.frame(id, r#"{"type":"ping"}"#);
            }
            Op::Pong { conn } => {
                let Some(id) = self.pick(*conn) else { return };
                e.closes = Some(BTreeMap::new());
                self.touch(id);
                self.sb.handle_pong(now, id);
            }
            Op::Closed { conn } => {
                let Some(id) = self.pick(*conn) else { return };
                e.closes = Some(BTreeMap::new());
                if self.live.remove(&id).is_some() {
                    self.dead.insert(id);
                }
                self.sb.handle_closed(now, id);
            }
            Op::Backlog { conn, over } => {
                let Some(id) = self.pick(*conn) else { return };
                let mut closes = BTreeMap::new();
                if *over && self.live.contains_key(&id) {
                    closes.insert(id, Some(CloseCode::SLOW_CONSUMER));
                }
                e.closes = Some(closes);
                let queued = MAX_OUTBOUND + usize::from(*over);
                self.sb.handle_backlog(now, id, queued);
            }
            Op::Violation { conn, invalid_utf8 } => {
                let Some(id) = self.pick(*conn) else { return };
                let (v, code) = if *invalid_utf8 {
                    (Violation::InvalidUtf8, CloseCode::INVALID_PAYLOAD)
                } else {
                    (Violation::MessageTooBig, CloseCode::TOO_BIG)
                };
                let mut closes = BTreeMap::new();
                if self.live.contains_key(&id) {
                    closes.insert(id, Some(code));
                }
                e.closes = Some(closes);
                self.sb.handle_violation(now, id, v);
            }
            Op::Advance { ms } => {
                self.now_ms += u64::from(*ms % 5001);
                let (t, wall) = (self.now_ms, self.wall());
                let mut closes = BTreeMap::new();
                for (id, c) in &self.live {
                    if c.last_seen_ms + PONG_TIMEOUT_MS <= t {
                        closes.insert(*id, None);
                    } else {
                        match c.session {
                            None if c.opened_ms + AUTH_TIMEOUT_MS <= t => {
                                closes.insert(*id, Some(CloseCode::AUTH_TIMEOUT));
                            }
                            Some((exp, _)) if exp <= wall => {
                                closes.insert(*id, Some(CloseCode::TOKEN_EXPIRED));
                            }
                            _ => {}
                        }
                    }
                }
                e.closes = Some(closes);
                let now = self.now();
                self.sb.handle_timeout(now);
                if let Some(next) = self.sb.poll_timeout() {
                    assert!(
                        next > now.instant,
                        "poll_timeout {next:?} is not after the handled time {:?}",
                        now.instant
                    );
                }
            }
            Op::SendToUser { user } => {
                let user = pick(&USERS, *user);
                let targets: BTreeSet<ConnId> =
                    self.sb.user_connections(user).iter().copied().collect();
                let n = self.sb.send_to_user(now, user, &data());
                assert_eq!(n, targets.len(), "send_to_user count");
                e.pushes = Some(targets);
                e.closes = Some(BTreeMap::new());
            }
            Op::SendToUsers { users } => {
                let users: Vec<&str> = users.iter().map(|&u| pick(&USERS, u)).collect();
                let targets: BTreeSet<ConnId> = users
                    .iter()
                    .flat_map(|u| self.sb.user_connections(u).iter().copied())
                    .collect();
                let n = self.sb.send_to_users(now, users.iter().copied(), &data());
                assert_eq!(n, targets.len(), "send_to_users count");
                e.pushes = Some(targets);
                e.closes = Some(BTreeMap::new());
            }
            Op::SendToDevice { user, device } => {
                let (user, device) = (pick(&USERS, *user), pick(&DEVICES, *device));
                let targets: BTreeSet<ConnId> = self
                    .live
                    .keys()
                    .copied()
                    .filter(|&id| {
                        let info = self.sb.connection(id).expect("live");
                        info.user() == Some(user) && info.device() == Some(device)
                    })
                    .collect();
                let n = self.sb.send_to_device(now, user, device, &data());
                assert_eq!(n, targets.len(), "send_to_device count");
                e.pushes = Some(targets);
                e.closes = Some(BTreeMap::new());
            }
            Op::SendToConnection { conn } => {
                let Some(id) = self.pick(*conn) else { return };
                let live = self.live.contains_key(&id);
                let result = self.sb.send_to_connection(now, id, &data());
                assert_eq!(result.is_ok(), live, "send_to_connection {id}: {result:?}");
                e.pushes = Some(if live { [id].into() } else { BTreeSet::new() });
                e.closes = Some(BTreeMap::new());
            }
            Op::Broadcast => {
                let targets: BTreeSet<ConnId> = self
                    .live
                    .keys()
                    .copied()
                    .filter(|&id| self.authenticated(id))
                    .collect();
                let n = self.sb.broadcast(now, &data());
                assert_eq!(n, targets.len(), "broadcast count");
                e.pushes = Some(targets);
                e.closes = Some(BTreeMap::new());
            }
            Op::AppPublish { topic } => {
                let topic = pick(&TOPICS, *topic);
                let valid = !topic.contains('*') && !topic.starts_with("presence.");
                let expected = if valid {
                    self.subscribers(topic)
                } else {
                    BTreeSet::new()
                };
                let result = self.sb.publish(now, topic, &data(), None);
                match result {
                    Ok(n) => {
                        assert!(valid, "publish to {topic} accepted");
                        assert_eq!(n.delivered, expected.len(), "publish count");
                    }
                    Err(err) => assert!(!valid, "publish to {topic} refused: {err}"),
                }
                e.messages = Some(expected);
                e.closes = Some(BTreeMap::new());
            }
            Op::DisconnectUser { user, device, code } => {
                let user = pick(&USERS, *user);
                let device = device.map(|d| pick(&DEVICES, d));
                let code = CloseCode(pick(&APP_CODES, *code));
                let valid = matches!(code.0, 1000 | 1008 | 4000..=4999);
                let targets: Vec<ConnId> = self
                    .sb
                    .user_connections(user)
                    .iter()
                    .copied()
                    .filter(|&id| {
                        device.is_none() || self.sb.connection(id).expect("live").device() == device
                    })
                    .collect();
                let result = self.sb.disconnect_user(now, user, device, code, "bye");
                let mut closes = BTreeMap::new();
                if valid {
                    assert_eq!(result, Ok(targets.len()), "disconnect_user");
                    closes.extend(targets.iter().map(|&id| (id, Some(code))));
                } else {
                    assert_eq!(result, Err(DisconnectError::InvalidCode(code.0)));
                }
                e.closes = Some(closes);
            }
            Op::DisconnectConnection { conn, code } => {
                let Some(id) = self.pick(*conn) else { return };
                let code = CloseCode(pick(&APP_CODES, *code));
                let valid = matches!(code.0, 1000 | 1008 | 4000..=4999);
                let live = self.live.contains_key(&id);
                let result = self.sb.disconnect_connection(now, id, code, "bye");
                let mut closes = BTreeMap::new();
                match result {
                    Ok(()) => {
                        assert!(valid && live, "disconnect_connection {id} {code} accepted");
                        closes.insert(id, Some(code));
                    }
                    Err(DisconnectError::InvalidCode(c)) => assert!(!valid && c == code.0),
                    Err(DisconnectError::Gone(_)) => assert!(valid && !live),
                    Err(other) => panic!("disconnect_connection: unknown refusal {other:?}"),
                }
                e.closes = Some(closes);
            }
            Op::Shutdown { drain_ms } => {
                let mut closes = BTreeMap::new();
                if self.draining.is_none() {
                    self.draining = Some(self.now_ms + u64::from(*drain_ms % 5001));
                    closes.extend(
                        self.live
                            .keys()
                            .map(|&id| (id, Some(CloseCode::GOING_AWAY))),
                    );
                }
                let deadline = Instant::from_millis(self.draining.expect("set"));
                self.sb.shutdown(now, deadline);
                assert!(self.sb.is_draining());
                e.closes = Some(closes);
            }
        }
        let actions: Vec<Action> = std::iter::from_fn(|| self.sb.poll_action()).collect();
        self.check_actions(op, &actions, &live_before, opened, e, &users_before);
        if matches!(op, Op::Advance { .. }) {
            let stop = actions.iter().filter(|a| **a == Action::Stop).count();
            let due = self.draining.is_some_and(|d| self.now_ms >= d) && !self.stopped;
            assert_eq!(
                stop,
                usize::from(due),
                "Stop at the drain deadline: {actions:?}"
            );
            self.stopped |= due;
        } else {
            assert!(
                !actions.contains(&Action::Stop),
                "Stop outside handle_timeout"
            );
        }
        self.check_indexes();
    }

    fn check_actions(
        &mut self,
        op: &Op,
        actions: &[Action],
        live_before: &BTreeSet<ConnId>,
        opened: Option<ConnId>,
        e: Expect,
        users_before: &[usize],
    ) {
        let ts = expected_timestamp(self.wall());
        let mut closes: BTreeMap<ConnId, Option<CloseCode>> = BTreeMap::new();
        let mut messages: Vec<ConnId> = Vec::new();
        let mut pushes: Vec<ConnId> = Vec::new();
        let mut presence_pushes: Vec<(ConnId, String)> = Vec::new();
        let mut presence_events: BTreeMap<String, Vec<(bool, usize)>> = BTreeMap::new();
        for action in actions {
            if let Some(id) = action.conn() {
                assert!(
                    !self.dead.contains(&id) && !closes.contains_key(&id),
                    "{op:?}: {action:?} names {id}, which has left"
                );
                assert!(
                    live_before.contains(&id) || opened == Some(id),
                    "{op:?}: {action:?} names {id}, which was never live"
                );
            }
            match action {
                Action::Close { conn, code, .. } => {
                    closes.insert(*conn, Some(*code));
                }
                Action::Evict { conn } => {
                    closes.insert(*conn, None);
                }
                Action::Send { conn, payload } => {
                    let m = server_message(payload, &ts);
                    match m["type"].as_str() {
                        Some("message") => messages.push(*conn),
                        Some("push") => pushes.push(*conn),
                        Some("presence") => {
                            let user = m["userId"].as_str().unwrap_or_default().to_owned();
                            presence_pushes.push((*conn, user));
                        }
                        _ => {}
                    }
                }
                Action::Presence {
                    user,
                    online,
                    connections,
                } => {
                    assert_eq!(*online, *connections > 0, "{op:?}: {action:?}");
                    presence_events
                        .entry(user.to_string())
                        .or_default()
                        .push((*online, *connections));
                }
                Action::Ping { .. } | Action::Stop => {}
                other => panic!("{op:?}: an action the model does not know: {other:?}"),
            }
        }
        // Closes: the codes the core may choose are PROTOCOL.md's; the application's are its own.
        for (id, code) in &closes {
            if let Some(code) = code {
                let app = matches!(
                    op,
                    Op::DisconnectUser { .. } | Op::DisconnectConnection { .. }
                );
                assert!(
                    is_protocol_close_code(*code) || app,
                    "{op:?}: close of {id} with {code}"
                );
            }
        }
        let rate_limited = e.sender.is_some_and(|s| {
            closes.get(&s) == Some(&Some(CloseCode::RATE_LIMITED)) && live_before.contains(&s)
        });
        if rate_limited {
            assert!(
                self.rate_limited,
                "{op:?}: closed 4029 without a rate limit"
            );
            assert_eq!(
                closes.len(),
                1,
                "{op:?}: a rate-limited frame did more: {actions:?}"
            );
            assert!(
                messages.is_empty() && pushes.is_empty(),
                "{op:?}: {actions:?}"
            );
        } else {
            if let Some((id, user, device)) = e.authenticates {
                let info = self.sb.connection(id).expect("the newcomer is live");
                assert_eq!(info.user(), Some(user), "{op:?}: user of {id}");
                assert_eq!(info.device(), device, "{op:?}: device of {id} (precedence)");
                if let Op::Auth { token, .. } = op {
                    if let Some(c) = self.live.get_mut(&id) {
                        c.session =
                            Some((token.exp_millis(WALL0 + self.now_ms), token.kind() == 6));
                    }
                }
            } else if let (Op::Auth { .. }, Some(id)) = (op, e.sender) {
                if let Some(c) = self.live.get(&id) {
                    assert_eq!(
                        c.session.is_some(),
                        self.authenticated(id),
                        "{op:?}: auth state of {id}"
                    );
                }
            }
            if let Some(expected) = &e.closes {
                assert_eq!(
                    &closes, expected,
                    "{op:?}: closes and evictions: {actions:?}"
                );
            }
            if let Some(expected) = e.messages {
                let got: BTreeSet<ConnId> = messages.iter().copied().collect();
                assert_eq!(
                    got.len(),
                    messages.len(),
                    "{op:?}: a message delivered twice"
                );
                assert_eq!(got, expected, "{op:?}: publish recipients");
            } else {
                assert!(
                    messages.is_empty(),
                    "{op:?}: unexpected deliveries: {actions:?}"
                );
            }
            if let Some(expected) = e.pushes {
                let got: BTreeSet<ConnId> = pushes.iter().copied().collect();
                assert_eq!(got.len(), pushes.len(), "{op:?}: a push delivered twice");
                assert_eq!(got, expected, "{op:?}: push recipients");
            } else {
                assert!(pushes.is_empty(), "{op:?}: unexpected pushes: {actions:?}");
            }
        }
        if let Op::Open { .. } = op {
            if let Some(id) = opened {
                let first = actions.iter().find(|a| a.conn() == Some(id));
                if e.authenticates.is_some() {
                    let Some(Action::Send { payload, .. }) = first else {
                        panic!("{op:?}: no auth_success: {actions:?}")
                    };
                    let m = server_message(payload, &ts);
                    assert_eq!(m["type"], "auth_success", "{op:?}");
                    assert_eq!(m["connId"], Value::String(id.to_string()), "{op:?}");
                } else {
                    assert!(first.is_none(), "{op:?}: {actions:?}");
                }
            }
        }
        // The connections that left.
        for id in closes.keys() {
            self.live.remove(id);
            self.dead.insert(*id);
        }
        // Presence: online exactly on 0 -> n, offline exactly on n -> 0, per user.
        for (u, user) in USERS.iter().enumerate() {
            let (before, after) = (users_before[u], self.sb.user_connections(user).len());
            let expected: Vec<(bool, usize)> = match (before, after) {
                (0, a) if a > 0 => vec![(true, a)],
                (b, 0) if b > 0 => vec![(false, 0)],
                _ => vec![],
            };
            let got = presence_events.remove(*user).unwrap_or_default();
            assert_eq!(
                got, expected,
                "{op:?}: presence events of {user} ({before} -> {after})"
            );
            // Every surviving subscriber of the user's presence topic heard of a count change.
            let snapshot = matches!(op, Op::Subscribe { .. });
            if before != after && !snapshot && !matches!(op, Op::Shutdown { .. }) {
                let topic = crate::check::presence_topic(user);
                for id in self.subscribers(&topic) {
                    assert!(
                        presence_pushes.iter().any(|(c, u)| *c == id && u == user),
                        "{op:?}: {id} missed presence of {user}: {actions:?}"
                    );
                }
            }
        }
        assert!(
            presence_events.is_empty(),
            "{op:?}: presence of unknown users"
        );
    }

    fn check_indexes(&self) {
        let stats = self.sb.stats();
        assert_eq!(
            stats.connections,
            self.live.len(),
            "connection count: {stats:?}"
        );
        let mut authed = 0;
        let mut subs = 0;
        let mut patterns = BTreeSet::new();
        let mut by_user: BTreeMap<&str, BTreeSet<ConnId>> = BTreeMap::new();
        let mut by_device: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (&id, c) in &self.live {
            let info = self.sb.connection(id).expect("a live connection is known");
            assert_eq!(info.id(), id);
            assert_eq!(info.ip(), c.ip);
            assert_eq!(info.user(), self.sb.user_of(id));
            assert_eq!(info.is_authenticated(), info.user().is_some());
            assert_eq!(
                info.is_authenticated(),
                c.session.is_some(),
                "auth state of {id}"
            );
            for p in info.subscriptions() {
                subs += 1;
                patterns.insert(p.to_owned());
            }
            if let Some(user) = info.user() {
                authed += 1;
                by_user.entry(user).or_default().insert(id);
                if let Some(d) = info.device() {
                    *by_device.entry((user, d)).or_default() += 1;
                }
            } else {
                assert_eq!(
                    info.subscriptions().count(),
                    0,
                    "pending {id} has subscriptions"
                );
            }
        }
        assert_eq!(
            stats.authenticated, authed,
            "authenticated count: {stats:?}"
        );
        assert_eq!(stats.subscriptions, subs, "subscription count: {stats:?}");
        assert_eq!(
            stats.topics,
            patterns.len(),
            "distinct pattern count: {stats:?}"
        );
        assert_eq!(stats.users, by_user.len(), "online users: {stats:?}");
        assert_eq!(
            self.sb.online_users().count(),
            by_user.len(),
            "online_users()"
        );
        for user in self.sb.online_users() {
            let got: BTreeSet<ConnId> = self.sb.user_connections(user).iter().copied().collect();
            assert_eq!(
                got.len(),
                self.sb.user_connections(user).len(),
                "duplicate in {user}"
            );
            assert_eq!(Some(&got), by_user.get(user), "connections of {user}");
            assert!(self.sb.is_online(user));
        }
        for user in USERS {
            let n = self.sb.user_connections(user).len();
            assert_eq!(self.sb.is_online(user), n > 0);
            match self.policy {
                SessionPolicy::Single => assert!(n <= 1, "single: {user} has {n}"),
                SessionPolicy::Multi { max_per_user } => {
                    assert!(n <= max_per_user.max(1), "multi: {user} has {n}")
                }
                SessionPolicy::PerDevice => {}
            }
            for device in DEVICES {
                let via_query = self.sb.device_connections(user, device).count();
                let via_info = by_device.get(&(user, device)).copied().unwrap_or(0);
                assert_eq!(via_query, via_info, "device_connections({user}, {device})");
            }
        }
        if self.policy == SessionPolicy::PerDevice {
            for ((user, device), n) in &by_device {
                assert!(*n <= 1, "per-device: {user} has {n} on {device}");
            }
        }
        for &id in &self.dead {
            assert!(
                self.sb.connection(id).is_none(),
                "{id} has left but is known"
            );
            assert!(self.sb.user_of(id).is_none());
        }
        if self.draining.is_some() {
            assert!(self.live.is_empty(), "a connection survived shutdown");
        }
    }
}

fn data() -> Box<RawValue> {
    RawValue::from_string(r#"{"k":[1,"two",null]}"#.into()).expect("JSON")
}

/// Drives one input; panics when an invariant fails.
pub fn run(input: &Input) {
    let policy = input.policy();
    let config = {
        let mut config = Config::default();
        config.session_policy = policy;
        config.ping_interval = Duration::from_millis(PING_MS);
        config.pong_timeout = Duration::from_millis(PONG_TIMEOUT_MS);
        config.auth_timeout = Duration::from_millis(AUTH_TIMEOUT_MS);
        config.max_connections_per_ip = MAX_PER_IP as u32;
        config.max_outbound_bytes = MAX_OUTBOUND;
        config.max_subscriptions = 3;
        config.max_messages_per_sec = if input.rate_limited { 5 } else { 0 };
        config.message_burst = 8;
        config
    };
    let mut h = Harness {
        sb: Switchboard::new(config, Hs256Verifier::new(SECRET), input.hash_seed),
        policy,
        rate_limited: input.rate_limited,
        now_ms: 0,
        live: BTreeMap::new(),
        dead: BTreeSet::new(),
        ids: Vec::new(),
        draining: None,
        stopped: false,
    };
    for op in input.ops.iter().take(512) {
        h.step(op);
    }
}

// ---- seeds --------------------------------------------------------------------------------

impl Encode for Token {
    fn encode(&self, e: &mut Encoder) {
        self.user.encode(e);
        self.device.encode(e);
        self.kind.encode(e);
    }
}

impl Encode for Op {
    fn encode(&self, e: &mut Encoder) {
        const N: usize = 20;
        match self {
            Op::Open { ip, token, device } => {
                e.tag(0, N);
                ip.encode(e);
                token.encode(e);
                device.encode(e);
            }
            Op::Auth {
                conn,
                token,
                device,
            } => {
                e.tag(1, N);
                conn.encode(e);
                token.encode(e);
                device.encode(e);
            }
            Op::Subscribe { conn, pattern } => {
                e.tag(2, N);
                conn.encode(e);
                pattern.encode(e);
            }
            Op::Unsubscribe { conn, pattern } => {
                e.tag(3, N);
                conn.encode(e);
                pattern.encode(e);
            }
            Op::Publish {
                conn,
                topic,
                with_id,
            } => {
                e.tag(4, N);
                conn.encode(e);
                topic.encode(e);
                with_id.encode(e);
            }
            Op::ClientPing { conn } => {
                e.tag(5, N);
                conn.encode(e);
            }
            Op::Pong { conn } => {
                e.tag(6, N);
                conn.encode(e);
            }
            Op::Closed { conn } => {
                e.tag(7, N);
                conn.encode(e);
            }
            Op::Backlog { conn, over } => {
                e.tag(8, N);
                conn.encode(e);
                over.encode(e);
            }
            Op::Violation { conn, invalid_utf8 } => {
                e.tag(9, N);
                conn.encode(e);
                invalid_utf8.encode(e);
            }
            Op::Advance { ms } => {
                e.tag(10, N);
                ms.encode(e);
            }
            Op::SendToUser { user } => {
                e.tag(11, N);
                user.encode(e);
            }
            Op::SendToUsers { users } => {
                e.tag(12, N);
                users.encode(e);
            }
            Op::SendToDevice { user, device } => {
                e.tag(13, N);
                user.encode(e);
                device.encode(e);
            }
            Op::SendToConnection { conn } => {
                e.tag(14, N);
                conn.encode(e);
            }
            Op::Broadcast => e.tag(15, N),
            Op::AppPublish { topic } => {
                e.tag(16, N);
                topic.encode(e);
            }
            Op::DisconnectUser { user, device, code } => {
                e.tag(17, N);
                user.encode(e);
                device.encode(e);
                code.encode(e);
            }
            Op::DisconnectConnection { conn, code } => {
                e.tag(18, N);
                conn.encode(e);
                code.encode(e);
            }
            Op::Shutdown { drain_ms } => {
                e.tag(19, N);
                drain_ms.encode(e);
            }
        }
    }
}

impl Encode for Input {
    fn encode(&self, e: &mut Encoder) {
        self.policy.encode(e);
        self.rate_limited.encode(e);
        self.hash_seed.encode(e);
        self.ops.encode(e);
    }
}

fn tok(user: u8, device: Option<u8>, kind: u8) -> Option<Token> {
    Some(Token { user, device, kind })
}

/// Seed inputs: every op, under each session policy.
pub fn seeds() -> Vec<(String, Input)> {
    use Op::*;
    let session = vec![
        Open {
            ip: 0,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 0,
            token: tok(0, Some(1), 0),
            device: None,
        },
        Open {
            ip: 1,
            token: None,
            device: Some(2),
        },
        Open {
            ip: 1,
            token: tok(1, None, 6),
            device: None,
        },
        Subscribe {
            conn: 0,
            pattern: 1,
        },
        Subscribe {
            conn: 1,
            pattern: 2,
        },
        Subscribe {
            conn: 3,
            pattern: 0,
        },
        Subscribe {
            conn: 3,
            pattern: 6,
        },
        Subscribe {
            conn: 0,
            pattern: 5,
        },
        Subscribe {
            conn: 0,
            pattern: 9,
        },
        Subscribe {
            conn: 2,
            pattern: 0,
        },
        Auth {
            conn: 2,
            token: Token {
                user: 2,
                device: Some(1),
                kind: 1,
            },
            device: Some(0),
        },
        Subscribe {
            conn: 2,
            pattern: 7,
        },
        Subscribe {
            conn: 2,
            pattern: 4,
        },
        Publish {
            conn: 0,
            topic: 0,
            with_id: true,
        },
        Publish {
            conn: 3,
            topic: 1,
            with_id: false,
        },
        Publish {
            conn: 3,
            topic: 2,
            with_id: true,
        },
        Publish {
            conn: 1,
            topic: 4,
            with_id: true,
        },
        Publish {
            conn: 1,
            topic: 5,
            with_id: false,
        },
        AppPublish { topic: 0 },
        AppPublish { topic: 1 },
        AppPublish { topic: 2 },
        AppPublish { topic: 3 },
        AppPublish { topic: 4 },
        AppPublish { topic: 5 },
        AppPublish { topic: 6 },
        Publish {
            conn: 0,
            topic: 6,
            with_id: false,
        },
        Unsubscribe {
            conn: 0,
            pattern: 1,
        },
        Unsubscribe {
            conn: 0,
            pattern: 1,
        },
        ClientPing { conn: 1 },
        Pong { conn: 0 },
        SendToUser { user: 0 },
        SendToUsers {
            users: vec![0, 1, 0],
        },
        SendToDevice { user: 0, device: 1 },
        SendToConnection { conn: 2 },
        Broadcast,
        Open {
            ip: 2,
            token: tok(2, None, 0),
            device: Some(0),
        },
        Open {
            ip: 2,
            token: tok(0, None, 5),
            device: None,
        },
        Open {
            ip: 2,
            token: tok(0, None, 7),
            device: None,
        },
        Advance { ms: 900 },
        Advance { ms: 900 },
        Pong { conn: 0 },
        Advance { ms: 2000 },
        Backlog {
            conn: 1,
            over: false,
        },
        Backlog {
            conn: 1,
            over: true,
        },
        Violation {
            conn: 0,
            invalid_utf8: true,
        },
        DisconnectUser {
            user: 2,
            device: None,
            code: 2,
        },
        DisconnectUser {
            user: 1,
            device: Some(0),
            code: 5,
        },
        DisconnectConnection { conn: 3, code: 1 },
        Closed { conn: 0 },
        Closed { conn: 0 },
        Shutdown { drain_ms: 1000 },
        Open {
            ip: 3,
            token: None,
            device: None,
        },
        Advance { ms: 500 },
        Advance { ms: 600 },
        Shutdown { drain_ms: 0 },
    ];
    let timers = vec![
        Open {
            ip: 0,
            token: None,
            device: None,
        },
        Open {
            ip: 0,
            token: tok(1, None, 4),
            device: None,
        },
        Open {
            ip: 0,
            token: tok(1, None, 0),
            device: None,
        },
        Open {
            ip: 0,
            token: None,
            device: None,
        },
        Subscribe {
            conn: 2,
            pattern: 6,
        },
        ClientPing { conn: 1 },
        ClientPing { conn: 2 },
        Advance { ms: 1600 },
        ClientPing { conn: 1 },
        Advance { ms: 1000 },
        Auth {
            conn: 0,
            token: Token {
                user: 0,
                device: None,
                kind: 0,
            },
            device: None,
        },
        Advance { ms: 5000 },
    ];
    let replace = vec![
        Open {
            ip: 0,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 1,
            token: tok(0, Some(0), 0),
            device: None,
        },
        Open {
            ip: 2,
            token: tok(0, Some(1), 0),
            device: None,
        },
        Open {
            ip: 3,
            token: tok(0, None, 0),
            device: None,
        },
        Open {
            ip: 0,
            token: None,
            device: Some(1),
        },
        Subscribe {
            conn: 2,
            pattern: 5,
        },
        Auth {
            conn: 4,
            token: Token {
                user: 0,
                device: Some(0),
                kind: 0,
            },
            device: None,
        },
        Auth {
            conn: 4,
            token: Token {
                user: 0,
                device: Some(0),
                kind: 0,
            },
            device: None,
        },
        Auth {
            conn: 0,
            token: Token {
                user: 1,
                device: None,
                kind: 5,
            },
            device: None,
        },
        DisconnectUser {
            user: 0,
            device: Some(1),
            code: 0,
        },
    ];
    let flood: Vec<Op> = std::iter::once(Open {
        ip: 0,
        token: tok(0, None, 0),
        device: None,
    })
    .chain(std::iter::repeat(ClientPing { conn: 0 }).take(12))
    .collect();
    let mut out = Vec::new();
    for (policy, name) in [
        (0u8, "single"),
        (1, "per_device"),
        (2, "multi1"),
        (3, "multi2"),
        (7, "multi3"),
    ] {
        for (what, ops) in [
            ("session", &session),
            ("timers", &timers),
            ("replace", &replace),
        ] {
            out.push((
                format!("{what}_{name}"),
                Input {
                    policy,
                    rate_limited: false,
                    hash_seed: 7,
                    ops: ops.clone(),
                },
            ));
        }
    }
    out.push((
        "rate_limited".into(),
        Input {
            policy: 1,
            rate_limited: true,
            hash_seed: 0,
            ops: flood,
        },
    ));
    out
}
