//! What history does to the switchboard's requests: a publish appends, a subscription counts
//! and may recover, a `history` request lists.

use serde_json::value::RawValue;

use crate::history::stream::Gap;
use crate::history::{HistoryError, HistoryMessage, HistoryPage, Position, Published};
use crate::payload::Payload;
use crate::protocol::{code, server, Metadata, Since};
use crate::registry::{ConnId, Connection};
use crate::switchboard::Switchboard;
use crate::time::Now;
use crate::topics::{Pattern, Topic};

impl Switchboard {
    /// Reads a topic's history: without `since` the latest `limit` kept messages, with it the
    /// kept messages after its position (at most `limit`), oldest first. Starts the topic's
    /// stream if it has none.
    pub fn history(
        &mut self,
        now: Now,
        topic: &str,
        limit: usize,
        since: Option<&Since<'_>>,
    ) -> Result<HistoryPage, HistoryError> {
        let store = self.history.as_mut().ok_or(HistoryError::Off)?;
        let topic = Topic::parse(topic)?;
        if topic.is_presence() {
            return Err(HistoryError::PresenceTopic);
        }
        let stream = store.stream(topic.as_str(), now.instant);
        let messages: Vec<HistoryMessage> = match since {
            None => stream.latest(limit).cloned().collect(),
            Some(since) => stream
                .kept_after(since.offset, &since.epoch)
                .map_err(|gap| match gap {
                    Gap::OtherEpoch => HistoryError::OtherEpoch,
                    _ => HistoryError::Ahead,
                })?
                .take(limit)
                .cloned()
                .collect(),
        };
        Ok(HistoryPage {
            topic: topic.as_str().to_owned(),
            position: stream.position(),
            messages,
        })
    }

    /// Whether history is on (`history_size` > 0).
    pub fn history_enabled(&self) -> bool {
        self.history.is_some()
    }

    /// Draws the epochs of new streams from `seed` (by default, from the hash seed). A server
    /// gives each run its own random seed, so that a stream started again after a restart never
    /// has the epoch it had before.
    pub fn with_epoch_seed(mut self, seed: u64) -> Self {
        if let Some(store) = self.history.as_mut() {
            store.reseed(seed);
        }
        self
    }

    /// A client's `history` request (authenticated already).
    pub(crate) fn on_history(
        &mut self,
        now: Now,
        id: ConnId,
        topic: &str,
        limit: u64,
        since: Option<&Since<'_>>,
        reply_id: Option<&str>,
    ) {
        if self.history.is_none() {
            return self.reply_error(now, id, code::BAD_REQUEST, "history is off", reply_id);
        }
        let parsed = match Topic::parse(topic) {
            Ok(t) if t.is_presence() => Err(HistoryError::PresenceTopic),
            Ok(t) => Ok(t),
            Err(e) => Err(HistoryError::InvalidTopic(e)),
        };
        let topic = match parsed {
            Ok(t) => t,
            Err(e) => return self.reply_error(now, id, e.status(), &e.to_string(), reply_id),
        };
        let Some(session) = self.registry.get(id).and_then(Connection::session) else {
            return;
        };
        if let Some(allowed) = &session.allowed_topics {
            if !allowed.iter().any(|claim| claim.matches(&topic)) {
                let msg = "topic not allowed by token";
                return self.reply_error(now, id, code::FORBIDDEN, msg, reply_id);
            }
        }
        // `limit` is 1..=1000: it fits.
        match self.history(now, topic.as_str(), limit as usize, since) {
            Ok(page) => {
                let reply = server::history(
                    &page.topic,
                    &page.position,
                    reply_id,
                    &page.messages,
                    true,
                    now.unix_millis,
                );
                self.push_send(id, reply);
            }
            Err(e) => self.reply_error(now, id, e.status(), &e.to_string(), reply_id),
        }
    }

    /// Refuses a `since` that cannot apply to `pattern`: history off, a pattern, a presence
    /// topic. `Some(message)` is the 400's.
    pub(crate) fn since_refusal(&self, pattern: &Pattern) -> Option<&'static str> {
        if self.history.is_none() {
            return Some("history is off");
        }
        match pattern.as_topic() {
            None => Some("since needs a concrete topic, not a pattern"),
            Some(t) if t.is_presence() => Some("presence topics have no history"),
            Some(_) => None,
        }
    }

    /// The `subscribed` reply to a subscription that took effect, with its stream's position
    /// and, when `since` asks, the replay of what the client missed. `new` counts the
    /// subscriber (its stream then stays while it is held).
    pub(crate) fn reply_subscribed_at(
        &mut self,
        now: Now,
        id: ConnId,
        pattern: &Pattern,
        new: bool,
        since: Option<&Since<'_>>,
        reply_id: Option<&str>,
    ) {
        let topic = pattern.as_topic().filter(|t| !t.is_presence());
        let max_replay = self.config.max_outbound_bytes;
        let (Some(topic), true) = (topic, self.history.is_some()) else {
            let reply = server::subscribed(pattern.as_str(), reply_id, now.unix_millis);
            return self.push_send(id, reply);
        };
        let Some(store) = self.history.as_mut() else {
            return;
        };
        let stream = if new {
            store.subscribe(topic.as_str(), now.instant)
        } else {
            store.stream(topic.as_str(), now.instant)
        };
        let position = stream.position();
        let replay: Option<Vec<Payload>> = since.and_then(|since| {
            let missed = stream.after(since.offset, &since.epoch).ok()?;
            let frames: Vec<Payload> = missed.map(|m| m.frame().clone()).collect();
            let bytes: usize = frames.iter().map(Payload::len).sum();
            (bytes <= max_replay).then_some(frames)
        });
        let recovered = since.map(|_| replay.is_some());
        let reply = server::subscribed_at(
            pattern.as_str(),
            reply_id,
            recovered,
            &position,
            now.unix_millis,
        );
        self.push_send(id, reply);
        for frame in replay.into_iter().flatten() {
            self.push_send(id, frame);
        }
    }

    /// A connection no longer holds `pattern`: if it is a concrete topic, its stream has one
    /// subscriber less.
    pub(crate) fn history_unsubscribed(&mut self, now: Now, pattern: &Pattern) {
        if let (Some(store), true) = (self.history.as_mut(), pattern.is_concrete()) {
            store.unsubscribe(pattern.as_str(), now.instant);
        }
    }

    /// Encodes a message published on `topic`, appending it to the topic's stream when
    /// history is on: the frame then carries its position.
    pub(crate) fn encode_published(
        &mut self,
        now: Now,
        topic: &Topic,
        data: &RawValue,
        metadata: Option<&Metadata<'_>>,
        sender: &str,
    ) -> (Payload, Option<Position>) {
        let encode = |position: Option<&Position>| {
            server::message(
                topic.as_str(),
                data,
                metadata,
                sender,
                position,
                now.unix_millis,
            )
        };
        match self.history.as_mut() {
            Some(store) => {
                let (position, frame) =
                    store.append(topic.as_str(), now.instant, now.unix_millis, |p| {
                        encode(Some(p))
                    });
                (frame, Some(position))
            }
            None => (encode(None), None),
        }
    }

    /// Publishes an encoded message: to the other nodes, and to the subscribers here.
    pub(crate) fn deliver_published(
        &mut self,
        topic: &Topic,
        frame: Payload,
        position: Option<Position>,
    ) -> Published {
        self.cluster_published(topic, &frame);
        Published {
            delivered: self.fan_out(topic, frame),
            position,
        }
    }
}
