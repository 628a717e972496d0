//! The harness: one `Switchboard` and the model side by side, one op at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::value::RawValue;
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{
    Action, CloseCode, Commands, Config, ConnId, DisconnectError, Frame, Handshake, Instant, Now,
    OpenError, Switchboard, Violation,
};

use crate::ops::*;
use crate::reference::{
    presence_topic, valid_app_code, valid_pattern, valid_topic, Bucket, Model, ModelConn,
};

pub(crate) struct Harness {
    pub(crate) sb: Switchboard,
    pub(crate) model: Model,
    /// Every id the core ever returned, live or not: ops pick from these, so stale ids are used too.
    pub(crate) ids: Vec<ConnId>,
    pub(crate) dead: BTreeSet<ConnId>,
    /// What the model says this step's actions are.
    pub(crate) expect: Expect,
}

/// A token's `topics` claim.
fn claim(i: usize) -> Option<Vec<String>> {
    CLAIMS[i].map(|c| c.iter().map(|p| p.to_string()).collect())
}

/// What one step's actions must be, as the model predicts them.
#[derive(Default)]
pub(crate) struct Expect {
    pub(crate) closed: BTreeMap<ConnId, CloseCode>,
    pub(crate) evicted: BTreeSet<ConnId>,
    /// The connections this step owes a ping.
    pub(crate) pings: BTreeSet<ConnId>,
    /// `pong` replies to `{"type":"ping"}`, per connection.
    pub(crate) pongs: BTreeMap<ConnId, usize>,
    /// Direct replies to the client, in order, per connection: a reply's type, and its code
    /// for `error` and `auth_error` (pushes, publishes, presence and pongs are not replies).
    pub(crate) replies: BTreeMap<ConnId, Vec<String>>,
    /// The presence snapshot a subscribe to a concrete presence topic owes: to whom, and
    /// (user, online, connections).
    pub(crate) snapshot: Option<(ConnId, (String, bool, usize))>,
    /// The recipients of an application push, if the step sends one.
    pub(crate) pushes: Option<BTreeSet<ConnId>>,
    /// The recipients of a publish, if the step publishes.
    pub(crate) messages: Option<BTreeSet<ConnId>>,
    /// Whether this step owes `Stop` (the drain deadline has come).
    pub(crate) stop: bool,
}

impl Harness {
    fn now(&self) -> Now {
        Now::new(
            Instant::from_millis(self.model.now_ms),
            WALL0 + self.model.now_ms,
        )
    }

    /// Mints `tok` now: the token, and when it expires on the steps' clock (`exp` +
    /// `jwt_leeway`, in ms), or `None` if the core must refuse it (expired already, or signed
    /// with another secret).
    fn mint(&self, tok: &Tok) -> (String, Option<u64>) {
        let wall_ms = WALL0 + self.model.now_ms;
        let exp = match tok.exp {
            Exp::Far => WALL0 / 1000 + 1_000_000,
            Exp::In(s) => (wall_ms / 1000).saturating_add_signed(s),
        };
        let claims = Claims {
            sub: USERS[tok.user].to_owned(),
            exp,
            device: tok.device.map(|d| DEVICES[d].to_owned()),
            topics: claim(tok.topics),
            info: None,
        };
        let expires_wall_ms = exp * 1000 + self.model.leeway_ms;
        let expires =
            (expires_wall_ms > wall_ms && !tok.bad_signature).then(|| expires_wall_ms - WALL0);
        let secret: &[u8] = if tok.bad_signature { b"wrong" } else { SECRET };
        (sign_hs256(secret, &claims), expires)
    }

    /// A data frame reaches `id` now: a sign of life, and one token from its bucket. `false`
    /// if the frame goes no further: the connection is gone, or out of tokens (then closed
    /// with 4029 by this very frame).
    fn inbound(&mut self, id: ConnId) -> bool {
        let (now, rate, burst) = (self.model.now_ms, self.model.rate, self.model.burst);
        let Some(c) = self.model.conns.get_mut(&id) else {
            return false;
        };
        c.last_seen_ms = now;
        if c.bucket.take(now, rate, burst) {
            return true;
        }
        self.model.leave(id);
        self.expect.closed.insert(id, CloseCode::RATE_LIMITED);
        false
    }

    /// A `{"type":"ping"}` frame to `id`: a `pong` back if it is let in.
    fn client_ping(&mut self, id: ConnId) {
        if self.inbound(id) {
            *self.expect.pongs.entry(id).or_default() += 1;
        }
        let now = self.now();
        self.sb
            .handle_frame(now, id, Frame::Text(r#"{"type":"ping"}"#));
    }

    /// An application send through `Commands`: its recipients are exactly those the model
    /// selects (each once), and the count it returns is theirs.
    fn app_send(&mut self, op: &Op) {
        let data = RawValue::from_string("1".into()).unwrap();
        let now = self.now();
        let model = &self.model;
        let mut commands = Commands::new(&mut self.sb, now);
        let (n, selected): (usize, BTreeSet<ConnId>) = match *op {
            Op::SendToConnection { conn } => {
                let Some(id) = (!self.ids.is_empty()).then(|| self.ids[conn % self.ids.len()])
                else {
                    return;
                };
                let sent = commands.send_to_connection(id, &data);
                let live = model.conns.contains_key(&id);
                assert_eq!(
                    sent.is_ok(),
                    live,
                    "{op:?}: Gone exactly when {id} has left"
                );
                (usize::from(live), BTreeSet::from_iter(live.then_some(id)))
            }
            Op::SendToDevice { user, device } => {
                let n = commands.send_to_device(USERS[user], DEVICES[device], &data);
                let selected = model.conns.iter().filter(|(_, c)| {
                    c.session.as_ref().is_some_and(|s| {
                        s.user == USERS[user] && s.device.as_deref() == Some(DEVICES[device])
                    })
                });
                (n, selected.map(|(id, _)| *id).collect())
            }
            Op::SendToUser { user } => {
                let n = commands.send_to_user(USERS[user], &data);
                (n, model.user_conns(USERS[user]).into_iter().collect())
            }
            Op::SendToUsers { ref users } => {
                let n = commands.send_to_users(users.iter().map(|&u| USERS[u]), &data);
                let selected = users.iter().flat_map(|&u| model.user_conns(USERS[u]));
                (n, selected.collect())
            }
            Op::Broadcast => {
                let n = commands.broadcast(&data);
                let selected = model.conns.iter().filter(|(_, c)| c.session.is_some());
                (n, selected.map(|(id, _)| *id).collect())
            }
            _ => unreachable!(),
        };
        assert_eq!(n, selected.len(), "{op:?}: how many it reached");
        self.expect.pushes = Some(selected);
    }

    /// `id` owes its client a direct reply: its type, and its code for errors.
    fn reply(&mut self, id: ConnId, reply: &str) {
        self.expect
            .replies
            .entry(id)
            .or_default()
            .push(reply.to_owned());
    }

    pub(crate) fn pick(&self, i: usize) -> Option<ConnId> {
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()])
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.sb.poll_action()).collect()
    }

    fn step(&mut self, op: &Op) {
        let counts_before: Vec<usize> = USERS.iter().map(|u| self.model.count(u)).collect();
        // Each connection's subscriptions as the step starts.
        let subs_before: BTreeMap<ConnId, BTreeSet<String>> = (self.model.conns.iter())
            .map(|(id, c)| (*id, c.subs.clone()))
            .collect();
        self.model.presence_log.clear();
        self.expect = Expect::default();
        let now = self.now();
        match *op {
            Op::Open {
                ip,
                ref token,
                handshake_device,
            } => {
                let minted = token.as_ref().map(|t| self.mint(t));
                let refused = matches!(minted, Some((_, None)));
                let handshake = Handshake {
                    token: minted.as_ref().map(|(t, _)| t.clone()),
                    device: handshake_device.map(|d| DEVICES[d].to_owned()),
                    ..Handshake::default()
                };
                let addr = core::net::IpAddr::from([10, 0, 0, ip]);
                let at_limit =
                    self.model.conns.values().filter(|c| c.ip == ip).count() >= MAX_PER_IP;
                let result = self.sb.open(now, addr, handshake);
                if self.model.draining.is_some() {
                    assert!(
                        matches!(result, Err(OpenError::Draining)),
                        "{op:?}: {result:?}"
                    );
                } else if at_limit {
                    let refused = matches!(result, Err(OpenError::TooManyFromIp));
                    assert!(refused, "{op:?}: past the per-IP limit: {result:?}");
                } else if refused {
                    let refused = matches!(result, Err(OpenError::InvalidToken(_)));
                    assert!(refused, "{op:?}: an invalid token: {result:?}");
                } else {
                    let id = result.expect("open below the per-IP limit, with a valid token");
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
                            bucket: Bucket::full(self.model.now_ms, self.model.burst),
                        },
                    );
                    if let (Some(tok), Some((_, Some(expires)))) = (token, minted) {
                        let device = handshake_device
                            .or(tok.device)
                            .map(|d| DEVICES[d].to_owned());
                        let (user, topics) = (USERS[tok.user], claim(tok.topics));
                        for r in self.model.authenticate(id, user, device, expires, topics) {
                            self.expect.closed.insert(r, CloseCode::SESSION_REPLACED);
                        }
                        self.reply(id, "auth_success");
                    }
                }
            }
            Op::Auth {
                conn,
                ref token,
                message_device,
            } => {
                let Some(id) = self.pick(conn) else { return };
                let (jwt, expires) = self.mint(token);
                let mut msg = serde_json::json!({"type": "auth", "token": jwt});
                if let Some(d) = message_device {
                    msg["deviceId"] = DEVICES[d].into();
                }
                if self.inbound(id) {
                    let c = &self.model.conns[&id];
                    let device = message_device
                        .map(|d| DEVICES[d].to_owned())
                        .or_else(|| c.handshake_device.clone())
                        .or(token.device.map(|d| DEVICES[d].to_owned()));
                    match (&c.session, expires) {
                        (Some(_), _) => self.reply(id, "error 409"),
                        (None, None) => self.reply(id, "auth_error 401"),
                        (None, Some(expires)) => {
                            let (user, topics) = (USERS[token.user], claim(token.topics));
                            for r in self.model.authenticate(id, user, device, expires, topics) {
                                self.expect.closed.insert(r, CloseCode::SESSION_REPLACED);
                            }
                            self.reply(id, "auth_success");
                        }
                    }
                }
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Subscribe { conn, pattern } => {
                let Some(id) = self.pick(conn) else { return };
                let pattern = PATTERNS[pattern];
                if self.inbound(id) {
                    let c = self.model.conns.get_mut(&id).unwrap();
                    let reply = match &c.session {
                        None => "error 401",
                        Some(_) if !valid_pattern(pattern) => "error 400",
                        // Outside the token's `topics`: refused, and nothing subscribed.
                        Some(s) if !s.may_subscribe(pattern) => "error 403",
                        Some(_) if c.subs.len() >= MAX_SUBS && !c.subs.contains(pattern) => {
                            "error 429"
                        }
                        Some(_) => {
                            c.subs.insert(pattern.to_owned());
                            "subscribed"
                        }
                    };
                    self.reply(id, reply);
                    // A concrete presence topic: the user's state right after `subscribed`.
                    let user = USERS.into_iter().find(|u| presence_topic(u) == pattern);
                    if let Some(user) = user.filter(|_| reply == "subscribed") {
                        let n = self.model.count(user);
                        let snapshot = (user.to_owned(), n > 0, n);
                        self.expect.snapshot = Some((id, snapshot));
                    }
                }
                let msg = serde_json::json!({"type": "subscribe", "topic": pattern});
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Unsubscribe { conn, pattern } => {
                let Some(id) = self.pick(conn) else { return };
                let pattern = PATTERNS[pattern];
                if self.inbound(id) {
                    let c = self.model.conns.get_mut(&id).unwrap();
                    let reply = match &c.session {
                        None => "error 401",
                        Some(_) if !valid_pattern(pattern) => "error 400",
                        Some(_) if !c.subs.remove(pattern) => "error 404",
                        Some(_) => "unsubscribed",
                    };
                    self.reply(id, reply);
                }
                let msg = serde_json::json!({"type": "unsubscribe", "topic": pattern});
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::Publish {
                conn,
                topic,
                with_id,
            } => {
                let Some(id) = self.pick(conn) else { return };
                let topic = TOPICS[topic];
                let mut recipients = BTreeSet::new();
                if self.inbound(id) {
                    match &self.model.conns[&id].session {
                        None => self.reply(id, "error 401"),
                        Some(_) if !valid_topic(topic) => self.reply(id, "error 400"),
                        // Presence topics are the core's own.
                        Some(_) if topic.starts_with("presence.") => self.reply(id, "error 403"),
                        Some(s) if !s.may_publish(topic) => self.reply(id, "error 403"),
                        Some(_) => {
                            if with_id {
                                self.reply(id, "ack");
                            }
                            recipients = self.model.subscribers(topic);
                        }
                    }
                }
                self.expect.messages = Some(recipients);
                let mut msg =
                    serde_json::json!({"type": "message", "topic": topic, "data": {"n": 1}});
                if with_id {
                    msg["id"] = "p".into();
                }
                self.sb.handle_frame(now, id, Frame::Text(&msg.to_string()));
            }
            Op::AppPublish { topic } => {
                let topic = TOPICS[topic];
                let valid = valid_topic(topic) && !topic.starts_with("presence.");
                let expected = if valid {
                    self.model.subscribers(topic)
                } else {
                    BTreeSet::new()
                };
                let data = RawValue::from_string("[1,2]".into()).unwrap();
                match self.sb.publish(now, topic, &data, None) {
                    Ok(n) => {
                        assert!(valid, "{op:?}: publish to {topic} accepted");
                        assert_eq!(n.delivered, expected.len(), "{op:?}: publish count");
                    }
                    Err(e) => assert!(!valid, "{op:?}: publish to {topic} refused: {e}"),
                }
                self.expect.messages = Some(expected);
            }
            Op::ClientPing { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.client_ping(id);
            }
            Op::Burst { conn, frames } => {
                let Some(id) = self.pick(conn) else { return };
                for _ in 0..frames {
                    self.client_ping(id);
                }
            }
            Op::Pong { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.touch(id);
                self.sb.handle_pong(now, id);
            }
            Op::Closed { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.model.leave(id);
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
                let due = self.model.draining.is_some_and(|d| d <= t) && !self.model.stopped;
                self.expect.stop = due;
                self.model.stopped |= due;
                for (id, c) in &self.model.conns {
                    // Due together, eviction comes first; then the auth timeout or the token's
                    // expiry, never before its instant.
                    if c.last_seen_ms + PONG_TIMEOUT_MS <= t {
                        self.expect.evicted.insert(*id);
                    } else {
                        match &c.session {
                            None if c.opened_ms + AUTH_TIMEOUT_MS <= t => {
                                self.expect.closed.insert(*id, CloseCode::AUTH_TIMEOUT);
                            }
                            Some(s) if s.expires_ms <= t => {
                                self.expect.closed.insert(*id, CloseCode::TOKEN_EXPIRED);
                            }
                            _ => {}
                        }
                    }
                }
                let gone = self.expect.evicted.iter().chain(self.expect.closed.keys());
                for id in gone.copied().collect::<Vec<_>>() {
                    self.model.leave(id);
                }
                // Every survivor whose ping is due gets one; after a stall, one, and the
                // cadence resumes from now.
                for (id, c) in self.model.conns.iter_mut() {
                    if c.next_ping_ms <= t {
                        self.expect.pings.insert(*id);
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
            Op::SendToConnection { .. }
            | Op::SendToDevice { .. }
            | Op::SendToUser { .. }
            | Op::SendToUsers { .. }
            | Op::Broadcast => self.app_send(op),
            Op::DisconnectUser { user, device, code } => {
                let (user, device) = (USERS[user], device.map(|d| DEVICES[d]));
                let result = self
                    .sb
                    .disconnect_user(now, user, device, CloseCode(code), "bye");
                if valid_app_code(code) {
                    let model = &self.model;
                    let on_device = |id: &ConnId| {
                        let session = model.conns[id].session.as_ref();
                        device.is_none() || session.unwrap().device.as_deref() == device
                    };
                    let targets: Vec<ConnId> = model
                        .user_conns(user)
                        .into_iter()
                        .filter(on_device)
                        .collect();
                    for &id in &targets {
                        self.model.leave(id);
                        self.expect.closed.insert(id, CloseCode(code));
                    }
                    assert_eq!(result, Ok(targets.len()), "{op:?}");
                } else {
                    assert_eq!(result, Err(DisconnectError::InvalidCode(code)), "{op:?}");
                }
            }
            Op::DisconnectConnection { conn, code } => {
                let Some(id) = self.pick(conn) else { return };
                let live = self.model.conns.contains_key(&id);
                let result = self
                    .sb
                    .disconnect_connection(now, id, CloseCode(code), "bye");
                match result {
                    Ok(()) => {
                        assert!(valid_app_code(code) && live, "{op:?}: accepted");
                        self.model.leave(id);
                        self.expect.closed.insert(id, CloseCode(code));
                    }
                    Err(DisconnectError::InvalidCode(c)) => {
                        assert!(!valid_app_code(code) && c == code, "{op:?}: {result:?}")
                    }
                    Err(DisconnectError::Gone(_)) => {
                        assert!(valid_app_code(code) && !live, "{op:?}: {result:?}")
                    }
                    Err(other) => panic!("{op:?}: an unknown refusal {other:?}"),
                }
            }
            Op::Backlog { conn, over } => {
                let Some(id) = self.pick(conn) else { return };
                let queued = MAX_OUTBOUND + usize::from(over);
                if over && self.model.leave(id).is_some() {
                    self.expect.closed.insert(id, CloseCode::SLOW_CONSUMER);
                }
                self.sb.handle_backlog(now, id, queued);
            }
            Op::Violation { conn, invalid_utf8 } => {
                let Some(id) = self.pick(conn) else { return };
                let (violation, code) = if invalid_utf8 {
                    (Violation::InvalidUtf8, CloseCode::INVALID_PAYLOAD)
                } else {
                    (Violation::MessageTooBig, CloseCode::TOO_BIG)
                };
                if self.model.leave(id).is_some() {
                    self.expect.closed.insert(id, code);
                }
                self.sb.handle_violation(now, id, violation);
            }
            Op::Shutdown { drain_ms } => {
                if self.model.draining.is_none() {
                    self.model.draining = Some(self.model.now_ms + drain_ms);
                    for id in self.model.conns.keys().copied().collect::<Vec<_>>() {
                        self.model.leave(id);
                        self.expect.closed.insert(id, CloseCode::GOING_AWAY);
                    }
                }
                // A second shutdown, with the same deadline: changes nothing.
                let deadline = Instant::from_millis(self.model.draining.expect("draining"));
                self.sb.shutdown(now, deadline);
                assert!(self.sb.is_draining(), "{op:?}: not draining");
            }
        }
        let actions = self.drain();
        self.check_actions(op, &actions, &subs_before, &counts_before);
        self.check_indexes();
        self.check_deadline();
    }
}

/// Runs `ops` under `setup` against a `Switchboard` and the model, checking every invariant
/// after every step; panics at the first that fails.
pub fn run(setup: &Setup, ops: &[Op]) {
    let mut config = Config::default();
    config.session_policy = setup.policy;
    config.ping_interval = Duration::from_millis(PING_MS);
    config.pong_timeout = Duration::from_millis(PONG_TIMEOUT_MS);
    config.auth_timeout = Duration::from_millis(AUTH_TIMEOUT_MS);
    config.max_connections_per_ip = MAX_PER_IP as u32;
    config.max_subscriptions = MAX_SUBS;
    config.max_outbound_bytes = MAX_OUTBOUND;
    config.max_messages_per_sec = setup.rate;
    config.message_burst = setup.burst;
    config.jwt_leeway = Duration::from_millis(setup.leeway_ms);
    let model = Model {
        policy: setup.policy,
        leeway_ms: setup.leeway_ms,
        rate: setup.rate,
        burst: setup.burst,
        now_ms: 0,
        conns: BTreeMap::new(),
        auth_seq: 0,
        presence_log: Vec::new(),
        draining: None,
        stopped: false,
    };
    let mut h = Harness {
        sb: Switchboard::new(config, Hs256Verifier::new(SECRET), setup.hash_seed),
        model,
        ids: Vec::new(),
        dead: BTreeSet::new(),
        expect: Expect::default(),
    };
    for op in ops {
        h.step(op);
    }
}
