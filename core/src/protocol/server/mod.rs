//! Encoders for server-to-client messages.
//!
//! Each encoder runs its body twice: once to measure the exact output length, once to write
//! into a `String` of exactly that capacity, which the [`Payload`](crate::Payload) then takes over without a
//! second allocation (it needs one more when length and capacity differ), so each message
//! costs a single allocation. Writing into a `String` makes every payload UTF-8 by
//! construction. Field order is fixed by `PROTOCOL.md`; `id` goes right before
//! `timestamp`.

#![cfg_attr(not(feature = "bench-internals"), allow(unreachable_pub))]

use crate::history::Position;
use crate::payload::Payload;
use serde_json::value::RawValue;

mod history;
pub use history::{history, subscribed_at};

use super::client::Metadata;
use super::timestamp::{timestamp_bytes, TIMESTAMP_LEN};

/// `{"type":"auth_success","userId":..,"connId":..,"id"?,"timestamp":..}`
pub fn auth_success(user_id: &str, conn_id: &str, id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"auth_success\",\"userId\":");
        o.string(user_id);
        o.raw(",\"connId\":");
        o.string(conn_id);
        o.id_and_timestamp(id, unix_millis);
    })
}

/// `{"type":"auth_error","code":401,"message":..,"id"?,"timestamp":..}`
pub fn auth_error(code: u16, message: &str, id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"auth_error\",\"code\":");
        o.uint(u64::from(code));
        o.raw(",\"message\":");
        o.string(message);
        o.id_and_timestamp(id, unix_millis);
    })
}

/// `{"type":"error","code":..,"message":..,"id"?,"timestamp":..}`
pub fn error(code: u16, message: &str, id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"error\",\"code\":");
        o.uint(u64::from(code));
        o.raw(",\"message\":");
        o.string(message);
        o.id_and_timestamp(id, unix_millis);
    })
}

/// `{"type":"subscribed","topic":..,"id"?,"timestamp":..}`
pub fn subscribed(topic: &str, id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"subscribed\",\"topic\":");
        o.string(topic);
        o.id_and_timestamp(id, unix_millis);
    })
}

/// `{"type":"unsubscribed","topic":..,"id"?,"timestamp":..}`
pub fn unsubscribed(topic: &str, id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"unsubscribed\",\"topic\":");
        o.string(topic);
        o.id_and_timestamp(id, unix_millis);
    })
}

/// `{"type":"ack","id":..,"offset"?,"epoch"?,"timestamp":..}`: sent for a published message
/// that had an id, with the position it got when history is on.
pub fn ack(id: &str, position: Option<&Position>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"ack\",\"id\":");
        o.string(id);
        o.position(position);
        o.id_and_timestamp(None, unix_millis);
    })
}

/// `{"type":"pong","id"?,"timestamp":..}`
pub fn pong(id: Option<&str>, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"pong\"");
        o.id_and_timestamp(id, unix_millis);
    })
}

/// A published message as subscribers receive it: the client's metadata members (minus any
/// `senderId`) followed by `"senderId": sender_id`; without client metadata, `{"senderId":..}`.
///
/// `{"type":"message","topic":..,"data":..,"metadata":..,"offset"?,"epoch"?,"timestamp":..}`;
/// `data` and the metadata values are copied byte for byte; the stream position is there
/// when history is on.
pub fn message(
    topic: &str,
    data: &RawValue,
    metadata: Option<&Metadata<'_>>,
    sender_id: &str,
    position: Option<&Position>,
    unix_millis: u64,
) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"message\",\"topic\":");
        o.string(topic);
        o.raw(",\"data\":");
        o.raw(data.get());
        o.raw(",\"metadata\":{");
        for (key, value) in metadata.into_iter().flat_map(Metadata::iter) {
            // The server's own `senderId` overrides whatever the client claimed.
            if key == "senderId" {
                continue;
            }
            o.string(key);
            o.raw(":");
            o.raw(value.get());
            o.raw(",");
        }
        o.raw("\"senderId\":");
        o.string(sender_id);
        o.raw("}");
        o.position(position);
        o.id_and_timestamp(None, unix_millis);
    })
}

/// `{"type":"presence","userId":..,"online":..,"connections":..,"timestamp":..}`;
/// `user_id` is the plain, unencoded id.
pub fn presence(user_id: &str, online: bool, connections: usize, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"presence\",\"userId\":");
        o.string(user_id);
        o.raw(if online {
            ",\"online\":true"
        } else {
            ",\"online\":false"
        });
        o.raw(",\"connections\":");
        // usize is at most 64 bits on every supported target.
        o.uint(connections as u64);
        o.id_and_timestamp(None, unix_millis);
    })
}

/// `{"type":"push","data":..,"timestamp":..}`: an application push; `data` copied byte for byte.
pub fn push(data: &RawValue, unix_millis: u64) -> Payload {
    encode(|o| {
        o.raw("{\"type\":\"push\",\"data\":");
        o.raw(data.get());
        o.id_and_timestamp(None, unix_millis);
    })
}

/// Runs `body` once to measure and once to write, so the buffer is allocated exactly once.
fn encode(body: impl Fn(&mut Out)) -> Payload {
    let mut measure = Out { buf: None, len: 0 };
    body(&mut measure);
    let mut write = Out {
        buf: Some(String::with_capacity(measure.len)),
        len: 0,
    };
    body(&mut write);
    let buf = write.buf.unwrap_or_default();
    debug_assert_eq!(buf.len(), measure.len, "measuring and writing disagree");
    Payload::from_json(buf)
}

/// A sink that either counts bytes (`buf` is `None`) or appends them. It writes into a
/// `String`, so whatever it produces is UTF-8 by construction.
struct Out {
    buf: Option<String>,
    len: usize,
}

impl Out {
    fn raw(&mut self, s: &str) {
        self.len += s.len();
        if let Some(buf) = &mut self.buf {
            buf.push_str(s);
        }
    }

    /// A JSON string literal, escaped exactly as `serde_json` does (only `"`, `\` and
    /// control characters; non-ASCII is written as UTF-8).
    fn string(&mut self, s: &str) {
        let Some(buf) = &mut self.buf else {
            self.len += 2 + s.bytes().map(escaped_len).sum::<usize>();
            return;
        };
        let start = buf.len();
        buf.push('"');
        let mut run = 0; // start of the pending run of bytes that need no escaping
        for (i, b) in s.bytes().enumerate() {
            if escaped_len(b) == 1 {
                continue;
            }
            // `b` is ASCII, so `i` and `i + 1` are character boundaries.
            buf.push_str(&s[run..i]);
            run = i + 1;
            match b {
                b'"' => buf.push_str("\\\""),
                b'\\' => buf.push_str("\\\\"),
                b'\n' => buf.push_str("\\n"),
                b'\r' => buf.push_str("\\r"),
                b'\t' => buf.push_str("\\t"),
                0x08 => buf.push_str("\\b"),
                0x0c => buf.push_str("\\f"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    buf.push_str("\\u00");
                    buf.push(char::from(HEX[usize::from(b >> 4)]));
                    buf.push(char::from(HEX[usize::from(b & 0xf)]));
                }
            }
        }
        buf.push_str(&s[run..]);
        buf.push('"');
        self.len += buf.len() - start;
    }

    fn uint(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            // `n % 10` is below 10, so the cast cannot truncate.
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.ascii(&digits[i..]);
    }

    /// Bytes known to be ASCII (digits, a timestamp), one character each.
    fn ascii(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.is_ascii());
        self.len += bytes.len();
        if let Some(buf) = &mut self.buf {
            // ASCII is UTF-8: the check passes, and costs less than a push per character.
            buf.push_str(std::str::from_utf8(bytes).unwrap_or_default());
        }
    }

    /// `,"offset":n,"epoch":"…"` when there is a position.
    fn position(&mut self, position: Option<&Position>) {
        if let Some(p) = position {
            self.raw(",\"offset\":");
            self.uint(p.offset);
            self.raw(",\"epoch\":\"");
            // An epoch is `[A-Za-z0-9_-]`: nothing to escape.
            self.raw(p.epoch.as_str());
            self.raw("\"");
        }
    }

    /// The common tail: optional `"id"`, then `"timestamp"` and the closing brace.
    fn id_and_timestamp(&mut self, id: Option<&str>, unix_millis: u64) {
        if let Some(id) = id {
            self.raw(",\"id\":");
            self.string(id);
        }
        self.raw(",\"timestamp\":\"");
        if self.buf.is_some() {
            self.ascii(&timestamp_bytes(unix_millis));
        } else {
            self.len += TIMESTAMP_LEN;
        }
        self.raw("\"}");
    }
}

/// How many bytes `b` takes inside a JSON string literal.
fn escaped_len(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0x00..=0x1f => 6,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client::{parse_client_message, ClientMessage};
    use proptest::prelude::*;

    /// 2026-11-23T10:00:00.123Z, checked by hand in the timestamp tests.
    const T: u64 = 1_795_428_000_123;
    const TS: &str = "2026-11-23T10:00:00.123Z";

    fn s(b: Payload) -> String {
        b.as_str().to_owned()
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn auth_success_has_fields_in_protocol_order() {
        assert_eq!(
            s(auth_success("u1", "c-1", None, T)),
            format!(r#"{{"type":"auth_success","userId":"u1","connId":"c-1","timestamp":"{TS}"}}"#)
        );
        assert_eq!(
            s(auth_success("u1", "c-1", Some("a"), 0)),
            r#"{"type":"auth_success","userId":"u1","connId":"c-1","id":"a","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
    }

    #[test]
    fn auth_error_carries_code_and_message() {
        assert_eq!(
            s(auth_error(401, "token expired", None, T)),
            format!(
                r#"{{"type":"auth_error","code":401,"message":"token expired","timestamp":"{TS}"}}"#
            )
        );
        assert_eq!(
            s(auth_error(401, "bad", Some("9"), T)),
            format!(
                r#"{{"type":"auth_error","code":401,"message":"bad","id":"9","timestamp":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn error_echoes_id_before_timestamp() {
        assert_eq!(
            s(error(400, "missing field `data`", Some("7"), T)),
            format!(
                r#"{{"type":"error","code":400,"message":"missing field `data`","id":"7","timestamp":"{TS}"}}"#
            )
        );
        assert_eq!(
            s(error(409, "already authenticated", None, T)),
            format!(
                r#"{{"type":"error","code":409,"message":"already authenticated","timestamp":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn subscribed_and_unsubscribed_echo_topic_and_id() {
        assert_eq!(
            s(subscribed("chat.*", Some("1"), T)),
            format!(r#"{{"type":"subscribed","topic":"chat.*","id":"1","timestamp":"{TS}"}}"#)
        );
        assert_eq!(
            s(unsubscribed("chat.*", None, T)),
            format!(r#"{{"type":"unsubscribed","topic":"chat.*","timestamp":"{TS}"}}"#)
        );
    }

    #[test]
    fn ack_and_pong_are_minimal() {
        assert_eq!(
            s(ack("7", None, T)),
            format!(r#"{{"type":"ack","id":"7","timestamp":"{TS}"}}"#)
        );
        assert_eq!(
            s(pong(None, T)),
            format!(r#"{{"type":"pong","timestamp":"{TS}"}}"#)
        );
        assert_eq!(
            s(pong(Some("p"), T)),
            format!(r#"{{"type":"pong","id":"p","timestamp":"{TS}"}}"#)
        );
    }

    #[test]
    fn presence_reports_state_and_count() {
        assert_eq!(
            s(presence("alice@example.com", true, 2, T)),
            format!(
                r#"{{"type":"presence","userId":"alice@example.com","online":true,"connections":2,"timestamp":"{TS}"}}"#
            )
        );
        assert_eq!(
            s(presence("u", false, 0, T)),
            format!(
                r#"{{"type":"presence","userId":"u","online":false,"connections":0,"timestamp":"{TS}"}}"#
            )
        );
        let big = s(presence("u", true, usize::MAX, T));
        assert!(big.contains(&format!(r#""connections":{}"#, usize::MAX)));
    }

    #[test]
    fn push_passes_data_through_byte_exact() {
        let data = raw(r#"{"n":1.000000000000000000001,"s":"\u00e9"}"#);
        assert_eq!(
            s(push(&data, T)),
            format!(
                r#"{{"type":"push","data":{{"n":1.000000000000000000001,"s":"\u00e9"}},"timestamp":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn message_without_metadata_gets_only_the_sender() {
        let data = raw("null");
        assert_eq!(
            s(message("chat.room1", &data, None, "u1", None, T)),
            format!(
                r#"{{"type":"message","topic":"chat.room1","data":null,"metadata":{{"senderId":"u1"}},"timestamp":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn message_keeps_metadata_order_and_overrides_sender_id() {
        let frame = r#"{"type":"message","topic":"chat.room1","data":{"x":1.000000000000000000001,"y":"\u00e9"},"metadata":{"z":1,"senderId":"mallory","a":{"deep":[1e400]}},"id":"7"}"#;
        let req = parse_client_message(frame).unwrap();
        let ClientMessage::Message {
            topic,
            data,
            metadata,
        } = req.message
        else {
            panic!("not a message");
        };
        assert_eq!(
            s(message(&topic, data, metadata.as_ref(), "u1", None, T)),
            format!(
                r#"{{"type":"message","topic":"chat.room1","data":{{"x":1.000000000000000000001,"y":"\u00e9"}},"metadata":{{"z":1,"a":{{"deep":[1e400]}},"senderId":"u1"}},"timestamp":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn message_with_empty_metadata_gets_only_the_sender() {
        let m = raw("{}");
        let m = Metadata::from_json(&m).unwrap();
        let out = s(message("t", &raw("1"), Some(&m), "u", None, 0));
        assert!(out.contains(r#""metadata":{"senderId":"u"}"#), "{out}");
    }

    #[test]
    fn metadata_keys_with_escapes_are_re_escaped() {
        let m = raw(r#"{"a\"b\n":1}"#);
        let m = Metadata::from_json(&m).unwrap();
        let out = s(message("t", &raw("1"), Some(&m), "u", None, 0));
        assert!(
            out.contains(r#""metadata":{"a\"b\n":1,"senderId":"u"}"#),
            "{out}"
        );
    }

    #[test]
    fn strings_are_json_escaped() {
        let out = s(error(
            400,
            "say \"hi\"\nback\\slash\ttab\u{1}\u{1f}é😀/",
            Some("\u{8}\u{c}\r"),
            0,
        ));
        assert_eq!(
            out,
            r#"{"type":"error","code":400,"message":"say \"hi\"\nback\\slash\ttab\u0001\u001fé😀/","id":"\b\f\r","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["message"], "say \"hi\"\nback\\slash\ttab\u{1}\u{1f}é😀/");
    }

    #[test]
    fn output_length_equals_capacity_so_bytes_takes_the_buffer_over() {
        // `encode` debug-asserts this; exercise every escape class through it.
        let nasty = "\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é";
        let _ = auth_success(nasty, nasty, Some(nasty), u64::MAX);
        let _ = subscribed(nasty, None, 0);
    }

    fn check(out: &Payload, ty: &str) -> Result<serde_json::Value, TestCaseError> {
        let v: serde_json::Value = serde_json::from_slice(out)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(out))))?;
        prop_assert_eq!(v["type"].as_str(), Some(ty));
        prop_assert!(v["timestamp"]
            .as_str()
            .is_some_and(|t| t.len() == 24 && t.ends_with('Z')));
        Ok(v)
    }

    proptest! {
        #[test]
        fn string_escaping_matches_serde_json(text in any::<String>()) {
            let mut o = Out { buf: Some(String::new()), len: 0 };
            o.string(&text);
            let expected = serde_json::to_string(&text).unwrap();
            prop_assert_eq!(o.len, expected.len());
            prop_assert_eq!(o.buf.unwrap(), expected);
        }

        #[test]
        fn every_encoder_emits_valid_json_of_its_type(
            a in any::<String>(),
            b in any::<String>(),
            id in proptest::option::of(any::<String>()),
            code in any::<u16>(),
            n in any::<usize>(),
            online in any::<bool>(),
            t in any::<u64>(),
            data in prop_oneof![
                Just("null".to_owned()),
                Just("1.000000000000000000001".to_owned()),
                Just(r#""\u00e9""#.to_owned()),
                any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
                any::<(String, i64)>().prop_map(|(k, v)| serde_json::to_string(&serde_json::json!({ k: v })).unwrap()),
            ],
            meta in proptest::collection::vec((any::<String>(), any::<i32>()), 0..5),
        ) {
            let id = id.as_deref();
            let data = raw(&data);

            let v = check(&auth_success(&a, &b, id, t), "auth_success")?;
            prop_assert_eq!(v["userId"].as_str(), Some(a.as_str()));
            prop_assert_eq!(v["id"].as_str(), id);
            let v = check(&auth_error(code, &a, id, t), "auth_error")?;
            prop_assert_eq!(v["code"].as_u64(), Some(u64::from(code)));
            let v = check(&error(code, &a, id, t), "error")?;
            prop_assert_eq!(v["message"].as_str(), Some(a.as_str()));
            let v = check(&subscribed(&a, id, t), "subscribed")?;
            prop_assert_eq!(v["topic"].as_str(), Some(a.as_str()));
            check(&unsubscribed(&a, id, t), "unsubscribed")?;
            let v = check(&ack(&b, None, t), "ack")?;
            prop_assert_eq!(v["id"].as_str(), Some(b.as_str()));
            check(&pong(id, t), "pong")?;
            let v = check(&presence(&a, online, n, t), "presence")?;
            prop_assert_eq!(v["online"].as_bool(), Some(online));
            prop_assert_eq!(v["connections"].as_u64(), Some(n as u64));
            let v = check(&push(&data, t), "push")?;
            prop_assert_eq!(v["data"].clone(), serde_json::from_str::<serde_json::Value>(data.get()).unwrap());

            let mut obj = serde_json::Map::new();
            for (k, v) in &meta {
                obj.insert(k.clone(), (*v).into());
            }
            let meta_raw = raw(&serde_json::to_string(&obj).unwrap());
            let m = Metadata::from_json(&meta_raw).unwrap();
            for meta in [None, Some(&m)] {
                let v = check(&message(&a, &data, meta, &b, None, t), "message")?;
                prop_assert_eq!(v["metadata"]["senderId"].as_str(), Some(b.as_str()));
                prop_assert!(v.get("id").is_none());
            }
        }
    }
}
