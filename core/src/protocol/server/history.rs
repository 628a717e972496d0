//! Encoders of the history replies: `subscribed` with a stream position, and `history`.

use super::{encode, Out};
use crate::history::{HistoryMessage, Position};
use crate::payload::Payload;
use crate::protocol::timestamp::{timestamp_bytes, TIMESTAMP_LEN};

/// `{"type":"subscribed","topic":..,"id"?,"recovered"?,"offset":..,"epoch":..,"timestamp":..}`:
/// a subscription to a concrete topic, with where its stream stands; `recovered` answers a
/// `since`.
pub fn subscribed_at(
    topic: &str,
    id: Option<&str>,
    recovered: Option<bool>,
    position: &Position,
    unix_millis: u64,
) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"subscribed\",\"topic\":");
        o.string(topic);
        if let Some(id) = id {
            o.raw(",\"id\":");
            o.string(id);
        }
        match recovered {
            Some(true) => o.raw(",\"recovered\":true"),
            Some(false) => o.raw(",\"recovered\":false"),
            None => {}
        }
        o.position(Some(position));
        o.id_and_timestamp(None, unix_millis);
    })
}

/// `{"type":"history","topic":..,"offset":..,"epoch":..,"id"?,"messages":[..],"timestamp":..}`,
/// each message `{"offset":..,"data":..,"metadata":{..},"timestamp":..}` quoted from its kept
/// frame. Without `with_type`, the HTTP API's body: the same without `type` (and `id`).
pub fn history(
    topic: &str,
    position: &Position,
    id: Option<&str>,
    messages: &[HistoryMessage],
    with_type: bool,
    unix_millis: u64,
) -> Payload {
    encode(|o| {
        o.raw(if with_type {
            "{\"type\":\"history\",\"topic\":"
        } else {
            "{\"topic\":"
        });
        o.string(topic);
        o.position(Some(position));
        if let Some(id) = id {
            o.raw(",\"id\":");
            o.string(id);
        }
        o.raw(",\"messages\":[");
        for (i, m) in messages.iter().enumerate() {
            o.raw(if i == 0 {
                "{\"offset\":"
            } else {
                ",{\"offset\":"
            });
            o.uint(m.offset());
            o.raw(",");
            o.raw(m.body());
            o.raw(",\"timestamp\":\"");
            o.timestamp(m.unix_millis());
            o.raw("\"}");
        }
        o.raw("]");
        o.id_and_timestamp(None, unix_millis);
    })
}

impl Out {
    /// An RFC 3339 timestamp's characters (no quotes).
    fn timestamp(&mut self, unix_millis: u64) {
        if self.buf.is_some() {
            self.ascii(&timestamp_bytes(unix_millis));
        } else {
            self.len += TIMESTAMP_LEN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Epoch;
    use crate::protocol::server::message;
    use crate::time::Instant;
    use serde_json::value::RawValue;

    fn position(offset: u64) -> Position {
        Position {
            offset,
            epoch: Epoch::parse("k3x9v1").unwrap(),
        }
    }

    #[test]
    fn subscribed_at_carries_recovered_and_the_position_in_protocol_order() {
        assert_eq!(
            subscribed_at("chat.room1", Some("2"), Some(true), &position(42), 0).as_str(),
            r#"{"type":"subscribed","topic":"chat.room1","id":"2","recovered":true,"offset":42,"epoch":"k3x9v1","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(
            subscribed_at("a", None, None, &position(0), 0).as_str(),
            r#"{"type":"subscribed","topic":"a","offset":0,"epoch":"k3x9v1","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
    }

    #[test]
    fn history_quotes_each_kept_frame_with_its_offset_and_publication_time() {
        let data = RawValue::from_string(r#"{"n":1.50}"#.into()).unwrap();
        let frame = message("a.b", &data, None, "u1", Some(&position(41)), 1_000);
        let kept = HistoryMessage::new(41, Instant::ZERO, 1_000, frame);
        let body = history(
            "a.b",
            &position(42),
            Some("h"),
            &[kept.clone(), kept],
            true,
            0,
        );
        assert_eq!(
            body.as_str(),
            concat!(
                r#"{"type":"history","topic":"a.b","offset":42,"epoch":"k3x9v1","id":"h","messages":["#,
                r#"{"offset":41,"data":{"n":1.50},"metadata":{"senderId":"u1"},"timestamp":"1970-01-01T00:00:01.000Z"},"#,
                r#"{"offset":41,"data":{"n":1.50},"metadata":{"senderId":"u1"},"timestamp":"1970-01-01T00:00:01.000Z"}"#,
                r#"],"timestamp":"1970-01-01T00:00:00.000Z"}"#
            )
        );
        let api = history("a.b", &position(42), None, &[], false, 0);
        assert_eq!(
            api.as_str(),
            r#"{"topic":"a.b","offset":42,"epoch":"k3x9v1","messages":[],"timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
    }
}
