//! Delivery: one shared payload to each recipient once (the fan-out stamps), pushes and
//! error replies.

use serde_json::value::RawValue;

use crate::action::Action;
use crate::payload::Payload;
use crate::protocol::server;
use crate::registry::ConnId;
use crate::switchboard::Switchboard;
use crate::time::Now;
use crate::topics::Topic;

impl Switchboard {
    /// Sends one shared payload to every connection with a pattern matching `topic`, once each.
    pub(crate) fn fan_out(&mut self, topic: &Topic, payload: Payload) -> usize {
        self.delivery_seq += 1;
        let seq = self.delivery_seq;
        let Self {
            topics,
            delivery_stamps,
            actions,
            ..
        } = self;
        let mut delivered = 0;
        // The trie holds live connections only, so the stamp's slot index is all it needs; the
        // stamps sit in a dense array so that a large fan-out stays in cache.
        topics.for_each_match(topic, |id| {
            if let Some(stamp) = delivery_stamps.get_mut(id.index() as usize) {
                if *stamp != seq {
                    *stamp = seq;
                    actions.push_back(Action::Send {
                        conn: id,
                        payload: payload.clone(),
                    });
                    delivered += 1;
                }
            }
        });
        self.telemetry.published(delivered);
        delivered
    }

    pub(crate) fn push_to(
        &mut self,
        now: Now,
        targets: impl IntoIterator<Item = ConnId>,
        data: &RawValue,
    ) -> usize {
        let mut targets = targets.into_iter().peekable();
        if targets.peek().is_none() {
            return 0;
        }
        let payload = server::push(data, now.unix_millis);
        let mut n = 0;
        for id in targets {
            self.push_send(id, payload.clone());
            n += 1;
        }
        n
    }

    pub(crate) fn push_send(&mut self, conn: ConnId, payload: Payload) {
        self.actions.push_back(Action::Send { conn, payload });
    }

    pub(crate) fn reply_error(
        &mut self,
        now: Now,
        id: ConnId,
        code: u16,
        message: &str,
        reply_id: Option<&str>,
    ) {
        self.push_send(id, server::error(code, message, reply_id, now.unix_millis));
    }
}
