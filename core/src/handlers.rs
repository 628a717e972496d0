//! What each client message does: auth, subscribe, unsubscribe, publish.

use serde_json::value::RawValue;

use crate::presence::user_of_presence_pattern;
use crate::protocol::{code, server, validate_device_id, Metadata, Since};
use crate::registry::{ConnId, Connection};
use crate::switchboard::Switchboard;
use crate::time::Now;
use crate::topics::{Pattern, Topic};

impl Switchboard {
    // ---- protocol handlers ----------------------------------------------------------------

    pub(crate) fn on_auth(
        &mut self,
        now: Now,
        id: ConnId,
        token: &str,
        device: Option<&str>,
        reply_id: Option<&str>,
    ) {
        if self
            .registry
            .get(id)
            .and_then(Connection::session)
            .is_some()
        {
            self.reply_error(now, id, code::CONFLICT, "already authenticated", reply_id);
            return;
        }
        if let Some(device) = device {
            if let Err(e) = validate_device_id(device) {
                self.reply_error(now, id, code::BAD_REQUEST, &e.to_string(), reply_id);
                return;
            }
        }
        match self.verify(now, token) {
            Ok(identity) => self.authenticate(now, id, identity, device, reply_id),
            Err(e) => {
                self.telemetry.auth_failed();
                // A log line changes no output (quinn-proto and rustls log from their state
                // machines alike); the subscriber is the application's.
                if let Some(conn) = self.registry.get(id) {
                    tracing::info!(conn = %id, ip = %conn.ip, code = 401, reason = %e, "authentication refused");
                }
                let payload = server::auth_error(
                    code::UNAUTHORIZED,
                    &e.to_string(),
                    reply_id,
                    now.unix_millis,
                );
                self.push_send(id, payload);
            }
        }
    }

    pub(crate) fn on_subscribe(
        &mut self,
        now: Now,
        id: ConnId,
        topic: &str,
        since: Option<&Since<'_>>,
        reply_id: Option<&str>,
    ) {
        let pattern = match Pattern::parse(topic) {
            Ok(p) => p,
            Err(e) => {
                return self.reply_error(now, id, code::BAD_REQUEST, &e.to_string(), reply_id)
            }
        };
        if let Some(refusal) = since.and_then(|_| self.since_refusal(&pattern)) {
            return self.reply_error(now, id, code::BAD_REQUEST, refusal, reply_id);
        }
        let Some(conn) = self.registry.get_mut(id) else {
            return;
        };
        let Some(session) = conn.session() else {
            return;
        };
        if let Some(allowed) = &session.allowed_topics {
            if !allowed.iter().any(|claim| claim.covers(&pattern)) {
                let msg = "topic not allowed by token";
                return self.reply_error(now, id, code::FORBIDDEN, msg, reply_id);
            }
        }
        let new = !conn.subscriptions.contains(&pattern);
        if new {
            if conn.subscriptions.len() >= self.config.max_subscriptions {
                let msg = format!(
                    "too many subscriptions: at most {}",
                    self.config.max_subscriptions
                );
                return self.reply_error(now, id, code::TOO_MANY, &msg, reply_id);
            }
            conn.subscriptions.insert(pattern.clone());
        }
        // Held (a repeated subscribe too) until the bus routes the pattern; the subscription
        // takes effect with its `subscribed`, so that no message on it comes first.
        if self.cluster_subscribed(id, &pattern, new, reply_id) {
            return;
        }
        if new {
            self.topics.insert(&pattern, id);
        }
        self.reply_subscribed_at(now, id, &pattern, new, since, reply_id);
        if let Some(user) = user_of_presence_pattern(&pattern) {
            let count = self.presence_count(&user);
            self.push_send(
                id,
                server::presence(&user, count > 0, count, now.unix_millis),
            );
        }
    }

    pub(crate) fn on_unsubscribe(
        &mut self,
        now: Now,
        id: ConnId,
        topic: &str,
        reply_id: Option<&str>,
    ) {
        let pattern = match Pattern::parse(topic) {
            Ok(p) => p,
            Err(e) => {
                return self.reply_error(now, id, code::BAD_REQUEST, &e.to_string(), reply_id)
            }
        };
        let Some(conn) = self.registry.get_mut(id) else {
            return;
        };
        if !conn.subscriptions.remove(&pattern) {
            return self.reply_error(
                now,
                id,
                code::NOT_FOUND,
                "not subscribed to this topic",
                reply_id,
            );
        }
        self.topics.remove(&pattern, id);
        self.history_unsubscribed(now, &pattern);
        self.cluster_unsubscribed(now, id, &pattern);
        self.push_send(
            id,
            server::unsubscribed(pattern.as_str(), reply_id, now.unix_millis),
        );
    }

    pub(crate) fn on_publish(
        &mut self,
        now: Now,
        id: ConnId,
        topic: &str,
        data: &RawValue,
        metadata: Option<&Metadata<'_>>,
        reply_id: Option<&str>,
    ) {
        let topic = match Topic::parse(topic) {
            Ok(t) => t,
            Err(e) => {
                return self.reply_error(now, id, code::BAD_REQUEST, &e.to_string(), reply_id)
            }
        };
        if topic.is_presence() {
            return self.reply_error(
                now,
                id,
                code::FORBIDDEN,
                "presence topics are reserved",
                reply_id,
            );
        }
        let Some(session) = self.registry.get(id).and_then(Connection::session) else {
            return;
        };
        if let Some(allowed) = &session.allowed_topics {
            if !allowed.iter().any(|claim| claim.matches(&topic)) {
                return self.reply_error(
                    now,
                    id,
                    code::FORBIDDEN,
                    "topic not allowed by token",
                    reply_id,
                );
            }
        }
        let sender = session.user.clone();
        let (frame, position) = self.encode_published(now, &topic, data, metadata, &sender);
        if let Some(reply_id) = reply_id {
            let ack = server::ack(reply_id, position.as_ref(), now.unix_millis);
            self.push_send(id, ack);
        }
        self.deliver_published(&topic, frame, position);
    }
}
