//! The state machine: events in (`open`, `handle_*`, application commands), actions out
//! (`poll_action`), and the next deadline (`poll_timeout`). What each client message does is in
//! `handlers.rs`, token checks in `claims.rs`, deadlines in `liveness.rs`, the fan-out in
//! `delivery.rs`, the read-only views in `query.rs`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use core::net::IpAddr;

use crate::action::{Action, CloseCode, CloseMode};
use crate::auth::Verifier;
use crate::claims::Identity;
use crate::cluster::{Cluster, NodeIdentity};
use crate::config::Config;
use crate::error::OpenError;
use crate::history;
use crate::limits::TokenBucket;
use crate::presence::PresenceChange;
use crate::protocol::{
    code, parse_client_message, server, validate_device_id, ClientMessage, Handshake,
    HandshakeError, MessageType, MAX_DEVICE_NAME_BYTES,
};
use crate::query::Stats;
use crate::registry::{AuthState, ConnId, Connection, Registry, Session};
use crate::telemetry::{DropReason, Telemetry};
use crate::time::{Instant, Now};
use crate::timers::TimerQueue;
use crate::topics::{presence_topic, Pattern, TopicTrie};

/// Longest user id (`sub`) accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// A data frame from a client, as the adapter received it (reassembled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text message (valid UTF-8; the adapter reports invalid UTF-8 as a [`Violation`]).
    Text(&'a str),
    /// A binary message: not part of the protocol, answered with `error` 400.
    Binary(&'a [u8]),
}

impl Frame<'_> {
    fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }
}

/// A transport-level fault that the adapter's WebSocket codec detected on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A text frame that is not UTF-8: close 1007.
    InvalidUtf8,
    /// A message over `max_message_bytes` that the codec refused to buffer: close 1009.
    MessageTooBig,
}

/// How a connection leaves.
pub(crate) enum Leave {
    /// The transport is gone already: nothing to tell the adapter.
    Closed,
    /// Close with this code (removal is immediate; the adapter performs the handshake).
    Close(CloseCode, Cow<'static, str>),
    /// Outbound backlog over the limit: close 4009, dropping what the client could not take.
    SlowConsumer,
    /// Drop the transport without a close handshake.
    Evict,
    /// Replaced by a newer connection: close 4001, and no presence change (the newcomer takes
    /// its place in the same step).
    Replaced,
    /// The server is draining: close 1001, and no presence push (every subscriber is leaving
    /// too; `shutdown` reports the users offline at once).
    Drain,
}

/// The connection manager: a deterministic state machine that performs no IO and reads no clock.
///
/// The drive contract: after every input (`open`, `handle_*`, a command), drain
/// [`poll_action`](Self::poll_action) until it returns `None` and execute the actions in order,
/// then sleep until [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout). Time must not go backwards; calling
/// `handle_timeout` early is a harmless no-op.
pub struct Switchboard {
    pub(crate) config: Config,
    pub(crate) verifier: Box<dyn Verifier>,
    pub(crate) registry: Registry,
    pub(crate) topics: TopicTrie<ConnId>,
    pub(crate) timers: TimerQueue,
    pub(crate) actions: VecDeque<Action>,
    /// Stamp of the latest fan-out, for one delivery per connection.
    pub(crate) delivery_seq: u64,
    /// Per slot index: the fan-out that last delivered to the connection in that slot.
    pub(crate) delivery_stamps: Vec<u64>,
    /// Timer entries that no longer name a live deadline (their connection left, or an earlier
    /// deadline superseded them); the heap is compacted when they are the majority.
    pub(crate) stale_timers: usize,
    /// Backlog reports over the limit made mid-drain, applied once the drain is done.
    pub(crate) deferred_backlog: Vec<(Now, ConnId)>,
    /// Set by `shutdown`: the drain deadline.
    pub(crate) draining: Option<Instant>,
    pub(crate) stopped: bool,
    pub(crate) stats: Stats,
    pub(crate) telemetry: Telemetry,
    /// This node's name and run, when it has them (ids are then unique across nodes).
    pub(crate) node: Option<NodeIdentity>,
    /// Cluster mode.
    pub(crate) cluster: Option<Box<Cluster>>,
    /// Every topic's stream; `None` while history is off.
    pub(crate) history: Option<Box<history::Store>>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl Switchboard {
    /// A switchboard with no connections that verifies tokens with `verifier`.
    ///
    /// `hash_seed` seeds the core's hash maps. It is an input like any other: the same seed
    /// and inputs give the same outputs, in the same order. A server draws it at random,
    /// since clients choose the keys and a known seed would let them collide on purpose.
    pub fn new(config: Config, verifier: impl Verifier, hash_seed: u64) -> Self {
        let history = (config.history_size > 0).then(|| {
            let bounds = history::Bounds {
                size: config.history_size,
                ttl: config.history_ttl,
                max_bytes: config.history_max_bytes,
            };
            Box::new(history::Store::new(bounds, hash_seed, hash_seed))
        });
        Switchboard {
            history,
            verifier: Box::new(verifier),
            registry: Registry::new(hash_seed),
            topics: TopicTrie::with_seed(hash_seed),
            config,
            timers: TimerQueue::default(),
            actions: VecDeque::new(),
            delivery_seq: 0,
            delivery_stamps: Vec::new(),
            stale_timers: 0,
            deferred_backlog: Vec::new(),
            draining: None,
            stopped: false,
            stats: Stats::default(),
            telemetry: Telemetry::default(),
            node: None,
            cluster: None,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- inputs from the transport -------------------------------------------------------

    /// A transport connection completed its upgrade request. Returns its id, or why it must be
    /// refused (answer the upgrade with [`OpenError::http_status`]). A valid handshake token
    /// authenticates at once: `auth_success` is then its first frame.
    pub fn open(
        &mut self,
        now: Now,
        ip: IpAddr,
        handshake: Handshake,
    ) -> Result<ConnId, OpenError> {
        let result = self.try_open(now, ip, handshake);
        if let Err(refused) = &result {
            self.stats.rejected_total += 1;
            if refused.http_status() == 401 {
                self.telemetry.auth_failed();
            }
        }
        result
    }

    pub(crate) fn try_open(
        &mut self,
        now: Now,
        ip: IpAddr,
        handshake: Handshake,
    ) -> Result<ConnId, OpenError> {
        if self.draining.is_some() {
            return Err(OpenError::Draining);
        }
        if self.registry.ip_count(ip) >= self.config.max_connections_per_ip {
            return Err(OpenError::TooManyFromIp);
        }
        // The adapter parsed these already; checked again because `Handshake` is plain data.
        if let Some(device) = &handshake.device {
            validate_device_id(device)?;
        }
        if let Some(name) = &handshake.device_name {
            if name.len() > MAX_DEVICE_NAME_BYTES {
                return Err(HandshakeError::DeviceNameTooLong { len: name.len() }.into());
            }
        }
        let identity = match handshake.token.as_deref() {
            Some(token) => Some(self.verify(now, token)?),
            None => None,
        };
        let t = now.instant;
        let conn = Connection {
            ip,
            connected_at_unix_millis: now.unix_millis,
            handshake_device: handshake.device.map(Into::into),
            device_name: handshake.device_name.map(Into::into),
            user_agent: handshake.user_agent.map(Into::into),
            auth: AuthState::Pending {
                deadline: t + self.config.auth_timeout,
            },
            subscriptions: self.registry.new_subscription_set(),
            last_seen: t,
            next_ping: t + self.config.ping_interval,
            // Not scheduled yet: `rearm` below schedules it once its state is final.
            timer_at: Instant::NEVER,
            inbound: TokenBucket::full(t, self.config.message_burst),
        };
        let id = self.registry.insert(conn);
        let slot = id.index() as usize;
        if self.delivery_stamps.len() <= slot {
            self.delivery_stamps.resize(slot + 1, 0);
        }
        self.stats.opened_total += 1;
        match identity {
            Some(identity) => self.authenticate(now, id, identity, None, None),
            None => self.rearm(id),
        }
        Ok(id)
    }

    /// A data frame arrived. Any frame is a sign of life; it is checked against the size and
    /// rate limits, then parsed and answered per PROTOCOL.md.
    pub fn handle_frame(&mut self, now: Now, id: ConnId, frame: Frame<'_>) {
        let Some(conn) = self.registry.get_mut(id) else {
            return;
        };
        conn.last_seen = conn.last_seen.max(now.instant);
        self.stats.frames_in_total += 1;
        if frame.len() > self.config.max_message_bytes {
            self.telemetry.drop_message(DropReason::TooBig);
            self.leave(
                now,
                id,
                Leave::Close(CloseCode::TOO_BIG, "message too big".into()),
            );
            return;
        }
        let (rate, burst) = (self.config.max_messages_per_sec, self.config.message_burst);
        if !conn.inbound.try_take(now.instant, rate, burst) {
            self.telemetry.drop_message(DropReason::RateLimited);
            let reason = "rate limit exceeded".into();
            self.leave(now, id, Leave::Close(CloseCode::RATE_LIMITED, reason));
            return;
        }
        let authenticated = conn.session().is_some();
        let text = match frame {
            Frame::Text(text) => text,
            Frame::Binary(_) => {
                let msg = "binary frames are not supported: send JSON text";
                self.reply_error(now, id, code::BAD_REQUEST, msg, None);
                return;
            }
        };
        let request = match parse_client_message(text) {
            Ok(request) => request,
            Err(e) => {
                let id_echo = e.id.as_deref();
                match e.message_type {
                    Some(t)
                        if !authenticated
                            && !matches!(t, MessageType::Auth | MessageType::Ping) =>
                    {
                        self.reply_error(now, id, code::UNAUTHORIZED, "not authenticated", id_echo)
                    }
                    _ => {
                        self.reply_error(now, id, code::BAD_REQUEST, &e.reason.to_string(), id_echo)
                    }
                }
                return;
            }
        };
        let reply_id = request.id.as_deref();
        match request.message {
            ClientMessage::Ping => {
                let payload = server::pong(reply_id, now.unix_millis);
                self.push_send(id, payload);
            }
            ClientMessage::Auth { token, device_id } => {
                self.on_auth(now, id, &token, device_id.as_deref(), reply_id)
            }
            _ if !authenticated => {
                self.reply_error(now, id, code::UNAUTHORIZED, "not authenticated", reply_id)
            }
            ClientMessage::Subscribe { topic, since } => {
                self.on_subscribe(now, id, &topic, since.as_ref(), reply_id)
            }
            ClientMessage::Unsubscribe { topic } => self.on_unsubscribe(now, id, &topic, reply_id),
            ClientMessage::Message {
                topic,
                data,
                metadata,
            } => self.on_publish(now, id, &topic, data, metadata.as_ref(), reply_id),
            ClientMessage::History {
                topic,
                limit,
                since,
            } => self.on_history(now, id, &topic, limit, since.as_ref(), reply_id),
        }
    }

    /// A WebSocket pong arrived: a sign of life.
    pub fn handle_pong(&mut self, now: Now, id: ConnId) {
        if let Some(conn) = self.registry.get_mut(id) {
            conn.last_seen = conn.last_seen.max(now.instant);
        }
    }

    /// The transport is gone (the peer closed, or a close the core asked for completed).
    /// Idempotent: unknown and stale ids are ignored.
    pub fn handle_closed(&mut self, now: Now, id: ConnId) {
        self.leave(now, id, Leave::Closed);
    }

    /// The adapter's codec found a fault in the connection's input.
    pub fn handle_violation(&mut self, now: Now, id: ConnId, violation: Violation) {
        let (code, reason, dropped) = match violation {
            Violation::InvalidUtf8 => (
                CloseCode::INVALID_PAYLOAD,
                "invalid utf-8",
                DropReason::InvalidUtf8,
            ),
            Violation::MessageTooBig => (CloseCode::TOO_BIG, "message too big", DropReason::TooBig),
        };
        if self.registry.get(id).is_some() {
            self.telemetry.drop_message(dropped);
        }
        self.leave(now, id, Leave::Close(code, reason.into()));
    }

    /// The adapter reports a connection's unwritten outbound backlog; over
    /// `max_outbound_bytes` the connection is closed with 4009 ([`CloseMode::Discard`]).
    ///
    /// [`execute`](Self::execute) does this itself. A report made while actions are still
    /// waiting to be drained takes effect once they are drained: an input never changes the
    /// core under a drain in progress.
    pub fn handle_backlog(&mut self, now: Now, id: ConnId, queued_bytes: usize) {
        if queued_bytes <= self.config.max_outbound_bytes {
            return;
        }
        if self.actions.is_empty() {
            self.close_slow(now, id);
        } else {
            self.deferred_backlog.push((now, id));
        }
    }

    /// Closes a slow consumer with 4009; whether it was still open.
    pub(crate) fn close_slow(&mut self, now: Now, id: ConnId) -> bool {
        if self.registry.get(id).is_none() {
            return false;
        }
        self.leave(now, id, Leave::SlowConsumer);
        true
    }

    // ---- outputs ----------------------------------------------------------------------------

    /// The next action for the adapter, in the order decided. [`execute`](Self::execute)
    /// drains them into a [`Transport`](crate::Transport) instead.
    pub fn poll_action(&mut self) -> Option<Action> {
        let Some(action) = self.actions.pop_front() else {
            return self.end_of_drain();
        };
        if matches!(action, Action::Send { .. }) {
            self.stats.sends_total += 1;
        }
        Some(action)
    }

    /// The queue ran dry: the backlog reports deferred during the drain take effect now, and
    /// what they decided is drained next.
    #[cold]
    fn end_of_drain(&mut self) -> Option<Action> {
        if !self.apply_deferred_backlog() {
            return None;
        }
        self.poll_action()
    }

    /// The next action without counting it (for `execute`, which counts what it hands over).
    pub(crate) fn next_action(&mut self) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if !self.apply_deferred_backlog() {
            return None;
        }
        self.actions.pop_front()
    }

    /// Applies the backlog reports made during the drain; whether there were any.
    #[cold]
    fn apply_deferred_backlog(&mut self) -> bool {
        if self.deferred_backlog.is_empty() {
            return false;
        }
        for (now, id) in std::mem::take(&mut self.deferred_backlog) {
            self.close_slow(now, id);
        }
        true
    }

    #[inline]
    pub(crate) fn count_send(&mut self) {
        self.stats.sends_total += 1;
    }

    /// When `handle_timeout` next has work (possibly a little earlier: calling it then is a no-op).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let drain = self.draining.filter(|_| !self.stopped);
        let cluster = self.cluster.as_ref().and_then(|c| c.next_deadline());
        let history = self.history.as_ref().and_then(|h| h.next_deadline());
        [self.timers.next_deadline(), drain, cluster, history]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- mechanisms ---------------------------------------------------------------------------

    /// Binds a verified identity to a pending connection: applies the session policy, answers
    /// `auth_success`, and announces the presence change.
    pub(crate) fn authenticate(
        &mut self,
        now: Now,
        id: ConnId,
        identity: Identity,
        message_device: Option<&str>,
        reply_id: Option<&str>,
    ) {
        let Some(conn) = self.registry.get(id) else {
            return;
        };
        // Precedence: auth message, handshake, token; none = a device of its own.
        let device: Option<Arc<str>> = message_device
            .or(conn.handshake_device.as_deref())
            .or(identity.device.as_deref())
            .map(Arc::from);
        let user: Arc<str> = match self.registry.user_key(&identity.user) {
            Some(user) => user.clone(),
            None => identity.user.into(),
        };
        let before = self.presence_count(&user);
        let existing = self.registry.user_conns(&user);
        let registry = &self.registry;
        let replaced = self.config.session_policy.replaced_by(
            existing.iter().map(|&c| {
                let device = registry
                    .get(c)
                    .and_then(Connection::session)
                    .and_then(|s| s.device.as_deref());
                (c, device)
            }),
            device.as_deref(),
        );
        for old in replaced {
            self.leave(now, old, Leave::Replaced);
        }
        self.registry.authenticate(
            id,
            Session {
                user: user.clone(),
                device,
                allowed_topics: identity.allowed_topics,
                expires_at: identity.expires_at,
                authenticated_at_unix_millis: now.unix_millis,
                info: identity.info,
            },
        );
        self.rearm(id);
        self.cluster_authenticated(id, now.unix_millis);
        let conn_id = self.conn_id_text(id);
        self.push_send(
            id,
            server::auth_success(&user, &conn_id, reply_id, now.unix_millis),
        );
        // A replacement is one step: the newcomer took the place of those it replaced.
        let after = self.presence_count(&user);
        self.presence_changed(now, &user, PresenceChange { before, after });
    }

    /// Decides a close frame for `conn`, counted by its code.
    fn push_close(
        &mut self,
        conn: ConnId,
        code: CloseCode,
        reason: Cow<'static, str>,
        mode: CloseMode,
    ) {
        self.telemetry.close(code.0);
        self.actions.push_back(Action::Close {
            conn,
            code,
            reason,
            mode,
        });
    }

    /// Removes a connection from every index, tells the adapter what to do with its transport,
    /// and announces the presence change.
    pub(crate) fn leave(&mut self, now: Now, id: ConnId, how: Leave) {
        // In cluster mode a departure may let a connection elsewhere count again (one it had
        // outranked): the count is taken before, not inferred.
        let before = match (
            &self.cluster,
            self.registry.get(id).and_then(|c| c.session()),
        ) {
            (Some(_), Some(session)) => Some(self.presence_count(&session.user)),
            _ => None,
        };
        let Some(conn) = self.registry.remove(id) else {
            return;
        };
        self.forget_timer();
        for pattern in &conn.subscriptions {
            self.topics.remove(pattern, id);
            self.history_unsubscribed(now, pattern);
        }
        if self.cluster.is_some() {
            let patterns: Vec<Pattern> = conn.subscriptions.iter().cloned().collect();
            self.cluster_left(now, id, &patterns);
        }
        match how {
            Leave::Closed => {}
            Leave::Close(code, reason) => self.push_close(id, code, reason, CloseMode::Flush),
            Leave::SlowConsumer => self.push_close(
                id,
                CloseCode::SLOW_CONSUMER,
                "slow consumer".into(),
                CloseMode::Discard,
            ),
            Leave::Evict => {
                self.stats.evicted_total += 1;
                self.actions.push_back(Action::Evict { conn: id });
            }
            Leave::Replaced => {
                self.stats.replaced_total += 1;
                let reason = "session replaced".into();
                self.push_close(id, CloseCode::SESSION_REPLACED, reason, CloseMode::Flush);
                return;
            }
            Leave::Drain => {
                let reason = "server shutting down".into();
                self.push_close(id, CloseCode::GOING_AWAY, reason, CloseMode::Flush);
                return;
            }
        }
        if let Some(session) = conn.session() {
            let after = self.presence_count(&session.user);
            let change = PresenceChange {
                before: before.unwrap_or(after + 1),
                after,
            };
            self.presence_changed(now, &session.user, change);
        }
    }

    pub(crate) fn presence_changed(&mut self, now: Now, user: &Arc<str>, change: PresenceChange) {
        if let Some(online) = change.transition() {
            self.actions.push_back(Action::Presence {
                user: user.clone(),
                online,
                connections: change.after,
            });
        }
        if change.is_push() && !self.topics.is_empty() {
            let payload = server::presence(user, change.after > 0, change.after, now.unix_millis);
            self.fan_out(&presence_topic(user), payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sign_hs256, Claims, Hs256Verifier};
    use std::time::Duration;

    #[test]
    fn timer_entries_of_departed_connections_do_not_pile_up_under_churn() {
        let mut sb = Switchboard::new(Config::default(), Hs256Verifier::new(b"k"), 1);
        let now = Now::new(Instant::ZERO, 1_795_428_000_000);
        let token = sign_hs256(
            b"k",
            &Claims {
                sub: "u".into(),
                exp: 1_795_431_600,
                device: None,
                topics: None,
                info: None,
            },
        );
        let ip = IpAddr::from([127, 0, 0, 1]);
        // Connections come and go while time stands still: none of their deadlines is reached.
        for _ in 0..10_000 {
            let handshake = Handshake {
                token: Some(token.clone()),
                ..Handshake::default()
            };
            let id = sb.open(now, ip, handshake).unwrap();
            sb.handle_closed(now, id);
            while sb.poll_action().is_some() {}
        }
        assert!(
            sb.timers.len() <= 2 * 1024 + 2,
            "{} timer entries",
            sb.timers.len()
        );
        // A live connection's deadline survives the compactions.
        let live = sb.open(now, ip, Handshake::default()).unwrap();
        for _ in 0..3_000 {
            let id = sb.open(now, ip, Handshake::default()).unwrap();
            sb.handle_closed(now, id);
        }
        sb.handle_timeout(now.after(Duration::from_secs(10)));
        let closed = std::iter::from_fn(|| sb.poll_action())
            .any(|a| matches!(a, Action::Close { conn, code: CloseCode::AUTH_TIMEOUT, .. } if conn == live));
        assert!(closed, "the live connection's auth timeout still fires");
    }
}
