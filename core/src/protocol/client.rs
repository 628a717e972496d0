//! Parsing of client-to-server text frames.
//!
//! Frames are read into borrowed `&RawValue` slots first, so every field can be checked with a
//! precise error message and `data` / metadata values pass through byte-exact (numbers and
//! strings exactly as sent). Strings borrow from the frame unless they contain escapes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::since::{parse_limit, parse_since, Since};

/// Longest accepted correlation `id`, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// How much of an unknown `type` is quoted back in the error (keeps replies small).
const MAX_ECHOED_TYPE_BYTES: usize = 64;

/// The kinds of client message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `{"type":"auth"}`: present a token.
    Auth,
    /// `{"type":"subscribe"}`: subscribe to a topic pattern.
    Subscribe,
    /// `{"type":"unsubscribe"}`: drop a topic pattern.
    Unsubscribe,
    /// `{"type":"message"}`: publish to a concrete topic.
    Message,
    /// `{"type":"ping"}`: application-level liveness check.
    Ping,
    /// `{"type":"history"}`: read a topic's kept messages without subscribing.
    History,
}

impl MessageType {
    /// The wire name of this type, as it appears in `"type"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Auth => "auth",
            MessageType::Subscribe => "subscribe",
            MessageType::Unsubscribe => "unsubscribe",
            MessageType::Message => "message",
            MessageType::Ping => "ping",
            MessageType::History => "history",
        }
    }

    fn from_wire(s: &str) -> Option<MessageType> {
        Some(match s {
            "auth" => MessageType::Auth,
            "subscribe" => MessageType::Subscribe,
            "unsubscribe" => MessageType::Unsubscribe,
            "message" => MessageType::Message,
            "ping" => MessageType::Ping,
            "history" => MessageType::History,
            _ => return None,
        })
    }
}

/// A parsed client message with its optional correlation id.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The client's `id`, echoed in the direct reply (at most 64 bytes).
    pub id: Option<Cow<'a, str>>,
    /// What the client asked for.
    pub message: ClientMessage<'a>,
}

/// A client message, its strings borrowed from the frame where possible.
#[derive(Clone, Debug)]
pub enum ClientMessage<'a> {
    /// Authenticate with a JWT; `device_id` is unvalidated (see `validate_device_id`).
    Auth {
        /// The JWT as sent (possibly empty; verification rejects it).
        token: Cow<'a, str>,
        /// The `deviceId` member, if sent.
        device_id: Option<Cow<'a, str>>,
    },
    /// Subscribe to a topic pattern (syntax not validated here).
    Subscribe {
        /// The pattern as sent.
        topic: Cow<'a, str>,
        /// The position to recover from, if asked (`null` reads as absent).
        since: Option<Since<'a>>,
    },
    /// Unsubscribe from a topic pattern (syntax not validated here).
    Unsubscribe {
        /// The pattern as sent.
        topic: Cow<'a, str>,
    },
    /// Publish `data` to a topic (syntax not validated here).
    Message {
        /// The topic as sent.
        topic: Cow<'a, str>,
        /// Any JSON value, `null` included, exactly as sent.
        data: &'a RawValue,
        /// The optional `metadata` object.
        metadata: Option<Metadata<'a>>,
    },
    /// Application-level ping, answered with `pong`.
    Ping,
    /// Read a topic's kept messages (syntax of the topic not validated here).
    History {
        /// The topic as sent.
        topic: Cow<'a, str>,
        /// How many messages at most (1..=1000; 100 when absent).
        limit: u64,
        /// List only what came after this position.
        since: Option<Since<'a>>,
    },
}

impl ClientMessage<'_> {
    /// The kind of this message.
    pub fn message_type(&self) -> MessageType {
        match self {
            ClientMessage::Auth { .. } => MessageType::Auth,
            ClientMessage::Subscribe { .. } => MessageType::Subscribe,
            ClientMessage::Unsubscribe { .. } => MessageType::Unsubscribe,
            ClientMessage::Message { .. } => MessageType::Message,
            ClientMessage::Ping => MessageType::Ping,
            ClientMessage::History { .. } => MessageType::History,
        }
    }
}

/// A client's `metadata` object, its members in the order sent (values kept raw so numbers
/// stay exact).
///
/// A key sent more than once keeps its first position and its last value, as
/// `JSON.parse` does, so the re-encoded object never has duplicate keys.
#[derive(Clone, Debug, Default)]
pub struct Metadata<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Metadata<'a> {
    /// Reads metadata given as raw JSON (e.g. by the HTTP API); it must be an object.
    pub fn from_json(raw: &'a RawValue) -> Result<Metadata<'a>, ParseErrorKind> {
        let Members(mut members) = serde_json::from_str(raw.get())
            .map_err(|_| ParseErrorKind::FieldNotObject("metadata"))?;
        dedupe_last_wins(&mut members);
        Ok(Metadata { members })
    }

    /// The members in the order sent, keys unescaped, values as raw JSON.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.members.iter().map(|(k, v)| (&**k, *v))
    }

    /// The number of distinct members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object was `{}`.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The raw value of the member named `key`, if any.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// What exactly was wrong with a client frame; `Display` is the message sent back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The frame is not well-formed JSON (the parser's description follows).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The frame is JSON but not an object.
    #[error("message must be a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// `type` is a string naming no known type (quoted, truncated to 64 bytes).
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A field that must be a string is something else (`null` included).
    #[error("field `{0}` must be a string")]
    FieldNotString(&'static str),
    /// A field that must be an object is something else (`null` included).
    #[error("field `{0}` must be an object")]
    FieldNotObject(&'static str),
    /// `id` is present but not a string of at most 64 bytes.
    #[error("field `id` must be a string of at most 64 bytes")]
    InvalidId,
    /// `since` is neither `null` nor an object of exactly `offset` and `epoch`.
    #[error(
        "field `since` must be {{\"offset\": an integer >= 0, \"epoch\": a string of 1 to 32 bytes}}"
    )]
    InvalidSince,
    /// `limit` is not an integer in 1..=1000.
    #[error("field `limit` must be an integer from 1 to 1000")]
    InvalidLimit,
}

/// Why a frame could not be parsed; always answered with `error` 400 that echoes `id` when
/// one could be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError<'a> {
    /// The id, if the frame was an object with a valid `id`.
    pub id: Option<Cow<'a, str>>,
    /// The type, if `type` was a known type (lets the caller answer 401 before auth
    /// instead of 400).
    pub message_type: Option<MessageType>,
    /// What was wrong.
    pub reason: ParseErrorKind,
}

/// Parses one text frame. Never panics; every failure is a [`ParseError`].
///
/// Unknown fields are ignored; for a repeated field the last occurrence wins.
pub fn parse_client_message(text: &str) -> Result<Request<'_>, ParseError<'_>> {
    let slots: Slots<'_> = serde_json::from_str(text).map_err(|e| ParseError {
        id: None,
        message_type: None,
        reason: json_error(text, &e),
    })?;

    let id = match slots.id {
        None => None,
        Some(raw) => match as_str(raw) {
            Some(s) if s.len() <= MAX_ID_BYTES => Some(s),
            // Still report a known type so the caller can choose 401 over 400 before auth.
            _ => {
                let message_type = slots
                    .ty
                    .and_then(as_str)
                    .and_then(|t| MessageType::from_wire(&t));
                return Err(ParseError {
                    id: None,
                    message_type,
                    reason: ParseErrorKind::InvalidId,
                });
            }
        },
    };

    let fail = |id, message_type, reason| {
        Err(ParseError {
            id,
            message_type,
            reason,
        })
    };

    let ty_raw = match slots.ty {
        Some(raw) => raw,
        None => return fail(id, None, ParseErrorKind::MissingField("type")),
    };
    let ty_str = match as_str(ty_raw) {
        Some(s) => s,
        None => return fail(id, None, ParseErrorKind::FieldNotString("type")),
    };
    let ty = match MessageType::from_wire(&ty_str) {
        Some(t) => t,
        None => {
            let echoed = truncate_on_char_boundary(&ty_str, MAX_ECHOED_TYPE_BYTES).to_owned();
            return fail(id, None, ParseErrorKind::UnknownType(echoed));
        }
    };

    let message = match build_message(ty, &slots) {
        Ok(m) => m,
        Err(reason) => return fail(id, Some(ty), reason),
    };
    Ok(Request { id, message })
}

/// Checks the type-specific fields, in the order a reader would expect them reported.
fn build_message<'a>(ty: MessageType, s: &Slots<'a>) -> Result<ClientMessage<'a>, ParseErrorKind> {
    Ok(match ty {
        MessageType::Auth => ClientMessage::Auth {
            token: required_str(s.token, "token")?,
            device_id: optional_str(s.device_id, "deviceId")?,
        },
        MessageType::Subscribe => ClientMessage::Subscribe {
            topic: required_str(s.topic, "topic")?,
            since: parse_since(s.since)?,
        },
        MessageType::Unsubscribe => ClientMessage::Unsubscribe {
            topic: required_str(s.topic, "topic")?,
        },
        MessageType::Message => {
            let topic = required_str(s.topic, "topic")?;
            // Present-but-null is a value like any other, so only absence is an error.
            let data = s.data.ok_or(ParseErrorKind::MissingField("data"))?;
            let metadata = s.metadata.map(Metadata::from_json).transpose()?;
            ClientMessage::Message {
                topic,
                data,
                metadata,
            }
        }
        MessageType::Ping => ClientMessage::Ping,
        MessageType::History => ClientMessage::History {
            topic: required_str(s.topic, "topic")?,
            limit: parse_limit(s.limit)?,
            since: parse_since(s.since)?,
        },
    })
}

fn required_str<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<Cow<'a, str>, ParseErrorKind> {
    let raw = raw.ok_or(ParseErrorKind::MissingField(field))?;
    as_str(raw).ok_or(ParseErrorKind::FieldNotString(field))
}

fn optional_str<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<Option<Cow<'a, str>>, ParseErrorKind> {
    raw.map(|r| as_str(r).ok_or(ParseErrorKind::FieldNotString(field)))
        .transpose()
}

/// The string a raw value holds, borrowed unless it had escapes; `None` for non-strings.
pub(crate) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    // Fast path: without escapes the content is the bytes between the quotes.
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
    }
    serde_json::from_str::<CowStr<'_>>(text).ok().map(|s| s.0)
}

/// Distinguishes "not JSON at all" from "JSON, but not an object".
fn json_error(text: &str, err: &serde_json::Error) -> ParseErrorKind {
    if err.classify() == serde_json::error::Category::Data {
        // Asking for a map reports any non-object as a type error, even when the text is
        // not valid JSON either (`[1,`), so re-check the syntax on this cold path.
        match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => ParseErrorKind::NotAnObject,
            Err(e) => ParseErrorKind::InvalidJson(e.to_string()),
        }
    } else {
        ParseErrorKind::InvalidJson(err.to_string())
    }
}

fn truncate_on_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A key sent more than once keeps its first position and takes its last value.
fn dedupe_last_wins(members: &mut Vec<(Cow<'_, str>, &RawValue)>) {
    let n = members.len();
    if n < 2 {
        return;
    }
    // Typical metadata is small: a quadratic scan without allocating settles most cases.
    if n <= 16 {
        let any_dup = (1..n).any(|i| members[..i].iter().any(|(k, _)| *k == members[i].0));
        if !any_dup {
            return;
        }
    }
    // General case in O(n log n) (a hash map would need OS randomness for its seed).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| members[a].0.cmp(&members[b].0).then(a.cmp(&b)));
    let mut keep = vec![true; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && members[order[end]].0 == members[order[start]].0 {
            end += 1;
        }
        if end - start > 1 {
            let first = order[start];
            let last = order[end - 1];
            members[first].1 = members[last].1;
            for &dup in &order[start + 1..end] {
                keep[dup] = false;
            }
        }
        start = end;
    }
    let mut i = 0;
    members.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
}

/// The top-level members this module understands; everything else is skipped.
#[derive(Default)]
struct Slots<'a> {
    ty: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    token: Option<&'a RawValue>,
    device_id: Option<&'a RawValue>,
    topic: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
    metadata: Option<&'a RawValue>,
    since: Option<&'a RawValue>,
    limit: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Slots<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Slots<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Slots<'de>, A::Error> {
                let mut s = Slots::default();
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    // Every value is read raw: cheap (no tree is built) and it keeps the
                    // syntax check, so `{"x":[}` is still invalid JSON.
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match &*key {
                        "type" => &mut s.ty,
                        "id" => &mut s.id,
                        "token" => &mut s.token,
                        "deviceId" => &mut s.device_id,
                        "topic" => &mut s.topic,
                        "data" => &mut s.data,
                        "metadata" => &mut s.metadata,
                        "since" => &mut s.since,
                        "limit" => &mut s.limit,
                        _ => continue,
                    };
                    *slot = Some(value); // last occurrence wins
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// Every member of an object, in order, values raw.
pub(crate) struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                // Cap the hint: it comes from the input and must not drive a huge allocation.
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string that borrows from the input when it has no escapes (serde's own `Cow<str>`
/// impl always allocates).
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(text: &str) -> ParseError<'_> {
        match parse_client_message(text) {
            Ok(r) => panic!("expected an error for {text}, got {r:?}"),
            Err(e) => e,
        }
    }

    fn ok(text: &str) -> Request<'_> {
        match parse_client_message(text) {
            Ok(r) => r,
            Err(e) => panic!("expected {text} to parse, got {e}"),
        }
    }

    #[test]
    fn auth_with_token_and_device_id_is_parsed_borrowing_from_the_frame() {
        let r = ok(r#"{"type":"auth","token":"eyJ.a.b","deviceId":"phone-1","id":"9"}"#);
        assert_eq!(r.id.as_deref(), Some("9"));
        match r.message {
            ClientMessage::Auth { token, device_id } => {
                assert!(matches!(token, Cow::Borrowed("eyJ.a.b")));
                assert_eq!(device_id.as_deref(), Some("phone-1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_without_device_id_has_none() {
        let r = ok(r#"{"type":"auth","token":"t"}"#);
        assert!(r.id.is_none());
        assert!(matches!(
            r.message,
            ClientMessage::Auth {
                device_id: None,
                ..
            }
        ));
        assert_eq!(r.message.message_type(), MessageType::Auth);
    }

    #[test]
    fn auth_without_token_is_rejected_naming_the_field() {
        let e = err(r#"{"type":"auth","id":"1"}"#);
        assert_eq!(e.reason, ParseErrorKind::MissingField("token"));
        assert_eq!(e.reason.to_string(), "missing field `token`");
        assert_eq!(e.id.as_deref(), Some("1"));
        assert_eq!(e.message_type, Some(MessageType::Auth));
    }

    #[test]
    fn auth_with_non_string_token_is_rejected_naming_the_field() {
        for token in ["5", "null", "{}", "[\"t\"]", "true"] {
            let text = format!(r#"{{"type":"auth","token":{token}}}"#);
            let e = err(&text);
            assert_eq!(e.reason, ParseErrorKind::FieldNotString("token"), "{text}");
            assert_eq!(e.reason.to_string(), "field `token` must be a string");
        }
    }

    #[test]
    fn auth_with_non_string_device_id_is_rejected() {
        let e = err(r#"{"type":"auth","token":"t","deviceId":7,"id":"x"}"#);
        assert_eq!(e.reason, ParseErrorKind::FieldNotString("deviceId"));
        assert_eq!(e.id.as_deref(), Some("x"));
    }

    #[test]
    fn subscribe_and_unsubscribe_carry_their_topic_unvalidated() {
        let r = ok(r#"{"type":"subscribe","topic":"chat.*","id":"1"}"#);
        assert!(
            matches!(r.message, ClientMessage::Subscribe { ref topic, .. } if topic == "chat.*")
        );
        let r = ok(r#"{"type":"unsubscribe","topic":"not a valid topic!"}"#);
        assert!(
            matches!(r.message, ClientMessage::Unsubscribe { ref topic } if topic == "not a valid topic!")
        );
    }

    #[test]
    fn subscribe_without_topic_is_rejected_naming_the_field() {
        let e = err(r#"{"type":"subscribe","id":"2"}"#);
        assert_eq!(e.reason.to_string(), "missing field `topic`");
        assert_eq!(e.id.as_deref(), Some("2"));
        assert_eq!(e.message_type, Some(MessageType::Subscribe));
    }

    #[test]
    fn topic_that_is_not_a_string_is_rejected_naming_the_field() {
        let e = err(r#"{"type":"unsubscribe","topic":["a"]}"#);
        assert_eq!(e.reason.to_string(), "field `topic` must be a string");
        assert_eq!(e.message_type, Some(MessageType::Unsubscribe));
    }

    #[test]
    fn message_with_data_and_metadata_is_parsed_byte_exact() {
        let text = r#"{"type":"message","topic":"chat.room1","data":{"n":1.000000000000000000001,"s":"\u00e9"},"metadata":{"b":2,"a":"x"},"id":"7"}"#;
        let r = ok(text);
        assert_eq!(r.id.as_deref(), Some("7"));
        match r.message {
            ClientMessage::Message {
                topic,
                data,
                metadata,
            } => {
                assert_eq!(topic, "chat.room1");
                assert_eq!(data.get(), r#"{"n":1.000000000000000000001,"s":"\u00e9"}"#);
                let m = metadata.unwrap();
                let members: Vec<_> = m.iter().map(|(k, v)| (k, v.get())).collect();
                assert_eq!(members, vec![("b", "2"), ("a", "\"x\"")]);
                assert_eq!(m.len(), 2);
                assert!(!m.is_empty());
                assert_eq!(m.get("a").map(RawValue::get), Some("\"x\""));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn message_without_data_is_rejected_naming_the_field() {
        let e = err(r#"{"type":"message","topic":"a","id":"3"}"#);
        assert_eq!(e.reason, ParseErrorKind::MissingField("data"));
        assert_eq!(e.reason.to_string(), "missing field `data`");
        assert_eq!(e.id.as_deref(), Some("3"));
        assert_eq!(e.message_type, Some(MessageType::Message));
    }

    #[test]
    fn message_with_null_data_is_accepted() {
        let r = ok(r#"{"type":"message","topic":"a","data":null}"#);
        match r.message {
            ClientMessage::Message { data, metadata, .. } => {
                assert_eq!(data.get(), "null");
                assert!(metadata.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn message_without_topic_is_rejected_before_data() {
        let e = err(r#"{"type":"message"}"#);
        assert_eq!(e.reason, ParseErrorKind::MissingField("topic"));
    }

    #[test]
    fn metadata_that_is_not_an_object_is_rejected_naming_the_field() {
        for m in ["[]", "null", "\"x\"", "1"] {
            let text =
                format!(r#"{{"type":"message","topic":"a","data":1,"metadata":{m},"id":"4"}}"#);
            let e = err(&text);
            assert_eq!(
                e.reason,
                ParseErrorKind::FieldNotObject("metadata"),
                "{text}"
            );
            assert_eq!(e.reason.to_string(), "field `metadata` must be an object");
            assert_eq!(e.id.as_deref(), Some("4"));
        }
    }

    #[test]
    fn empty_metadata_is_accepted_as_empty() {
        let r = ok(r#"{"type":"message","topic":"a","data":1,"metadata":{}}"#);
        match r.message {
            ClientMessage::Message {
                metadata: Some(m), ..
            } => assert!(m.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ping_is_parsed_and_extra_fields_are_ignored() {
        let r = ok(r#"{"type":"ping","extra":{"deep":[1,2,3]},"topic":5}"#);
        assert!(matches!(r.message, ClientMessage::Ping));
        assert_eq!(r.message.message_type(), MessageType::Ping);
    }

    #[test]
    fn invalid_json_is_rejected_with_the_parser_position_and_no_id() {
        let e = err("{]");
        assert!(e.id.is_none());
        assert!(e.message_type.is_none());
        assert!(matches!(e.reason, ParseErrorKind::InvalidJson(_)));
        assert_eq!(
            e.reason.to_string(),
            "invalid JSON: key must be a string at line 1 column 2"
        );

        let e = err("ab");
        assert_eq!(
            e.reason.to_string(),
            "invalid JSON: expected value at line 1 column 1"
        );
        let e = err("");
        assert!(matches!(e.reason, ParseErrorKind::InvalidJson(_)));
        // Broken JSON inside an ignored field is still broken JSON.
        let e = err(r#"{"type":"ping","x":[}"#);
        assert!(matches!(e.reason, ParseErrorKind::InvalidJson(_)));
        // Trailing garbage after the object.
        let e = err(r#"{"type":"ping"} x"#);
        assert!(matches!(e.reason, ParseErrorKind::InvalidJson(_)));
    }

    #[test]
    fn invalid_non_object_json_is_reported_as_invalid_json_not_as_a_non_object() {
        let e = err("[1,");
        assert!(matches!(e.reason, ParseErrorKind::InvalidJson(_)), "{e}");
    }

    #[test]
    fn non_object_json_is_rejected_as_such() {
        for text in [
            "[]",
            "1",
            "\"ping\"",
            "null",
            "true",
            "[{\"type\":\"ping\"}]",
        ] {
            let e = err(text);
            assert_eq!(e.reason, ParseErrorKind::NotAnObject, "{text}");
            assert_eq!(e.reason.to_string(), "message must be a JSON object");
            assert!(e.id.is_none());
        }
    }

    #[test]
    fn missing_type_is_rejected_echoing_the_id() {
        let e = err(r#"{"id":"5","topic":"a"}"#);
        assert_eq!(e.reason.to_string(), "missing field `type`");
        assert_eq!(e.id.as_deref(), Some("5"));
        assert!(e.message_type.is_none());
    }

    #[test]
    fn non_string_type_is_rejected_naming_the_field() {
        let e = err(r#"{"type":1,"id":"6"}"#);
        assert_eq!(e.reason.to_string(), "field `type` must be a string");
        assert_eq!(e.id.as_deref(), Some("6"));
    }

    #[test]
    fn unknown_type_is_rejected_quoting_it_and_echoing_the_id() {
        let e = err(r#"{"type":"foo","id":"7"}"#);
        assert_eq!(e.reason.to_string(), "unknown message type `foo`");
        assert_eq!(e.id.as_deref(), Some("7"));
        assert!(e.message_type.is_none());
        // Types are case-sensitive.
        assert!(matches!(
            err(r#"{"type":"PING"}"#).reason,
            ParseErrorKind::UnknownType(_)
        ));
    }

    #[test]
    fn unknown_type_is_quoted_at_most_64_bytes_on_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let text = format!(r#"{{"type":"{long}"}}"#);
        match err(&text).reason {
            ParseErrorKind::UnknownType(t) => assert_eq!(t, "é".repeat(32)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn id_of_exactly_64_bytes_is_accepted() {
        let id = "a".repeat(64);
        let text = format!(r#"{{"type":"ping","id":"{id}"}}"#);
        assert_eq!(ok(&text).id.as_deref(), Some(id.as_str()));
    }

    #[test]
    fn id_of_65_bytes_is_refused_without_echo() {
        let text = format!(r#"{{"type":"ping","id":"{}"}}"#, "a".repeat(65));
        let e = err(&text);
        assert_eq!(e.reason, ParseErrorKind::InvalidId);
        assert_eq!(
            e.reason.to_string(),
            "field `id` must be a string of at most 64 bytes"
        );
        assert!(e.id.is_none());
        assert_eq!(e.message_type, Some(MessageType::Ping));
    }

    #[test]
    fn id_length_counts_utf8_bytes_after_unescaping() {
        // 32 × "é" = 64 bytes, written with escapes so the raw text is much longer.
        let text = format!(r#"{{"type":"ping","id":"{}"}}"#, r"\u00e9".repeat(32));
        assert_eq!(ok(&text).id.as_deref(), Some("é".repeat(32).as_str()));
        let text = format!(r#"{{"type":"ping","id":"{}a"}}"#, r"\u00e9".repeat(32));
        assert_eq!(err(&text).reason, ParseErrorKind::InvalidId);
    }

    #[test]
    fn non_string_id_is_refused_without_echo() {
        for id in ["1", "null", "[\"a\"]", "{}"] {
            let text = format!(r#"{{"type":"subscribe","topic":"a","id":{id}}}"#);
            let e = err(&text);
            assert_eq!(e.reason, ParseErrorKind::InvalidId, "{text}");
            assert!(e.id.is_none());
        }
    }

    #[test]
    fn invalid_id_is_reported_before_an_unknown_type() {
        let e = err(r#"{"type":"foo","id":5}"#);
        assert_eq!(e.reason, ParseErrorKind::InvalidId);
        assert!(e.message_type.is_none());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let r = ok(r#"{"type":"subscribe","topic":"a\"b\\c\u00e9\n","id":"\u0041"}"#);
        assert_eq!(r.id.as_deref(), Some("A"));
        assert!(
            matches!(r.message, ClientMessage::Subscribe { ref topic, .. } if topic == "a\"b\\cé\n")
        );
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let r = ok(r#"{"\u0074ype":"ping"}"#);
        assert!(matches!(r.message, ClientMessage::Ping));
    }

    #[test]
    fn duplicate_keys_take_the_last_value() {
        let r = ok(r#"{"type":"foo","type":"subscribe","topic":"a","topic":"b"}"#);
        assert!(matches!(r.message, ClientMessage::Subscribe { ref topic, .. } if topic == "b"));
    }

    #[test]
    fn duplicate_metadata_keys_keep_the_first_position_and_the_last_value() {
        let r = ok(
            r#"{"type":"message","topic":"t","data":0,"metadata":{"a":1,"b":2,"a":3,"c":4,"b":5}}"#,
        );
        match r.message {
            ClientMessage::Message {
                metadata: Some(m), ..
            } => {
                let v: Vec<_> = m.iter().map(|(k, v)| (k, v.get())).collect();
                assert_eq!(v, vec![("a", "3"), ("b", "5"), ("c", "4")]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn many_duplicate_metadata_keys_are_deduplicated_in_order() {
        // Over the small-input threshold, exercising the sort-based path.
        let mut obj = String::from("{");
        for i in 0..40 {
            obj.push_str(&format!(r#""k{}":{i},"#, i % 10));
        }
        obj.push_str(r#""z":true}"#);
        let raw = RawValue::from_string(obj).unwrap();
        let m = Metadata::from_json(&raw).unwrap();
        let v: Vec<_> = m
            .iter()
            .map(|(k, v)| (k.to_owned(), v.get().to_owned()))
            .collect();
        let mut expected: Vec<(String, String)> = (0..10)
            .map(|i| (format!("k{i}"), (30 + i).to_string()))
            .collect();
        expected.push(("z".into(), "true".into()));
        assert_eq!(v, expected);
    }

    #[test]
    fn metadata_from_json_requires_an_object() {
        let raw = RawValue::from_string("[1]".into()).unwrap();
        assert_eq!(
            Metadata::from_json(&raw).unwrap_err(),
            ParseErrorKind::FieldNotObject("metadata")
        );
        let raw = RawValue::from_string(r#" {"x" : [1, 2]} "#.into()).unwrap();
        let m = Metadata::from_json(&raw).unwrap();
        assert_eq!(
            m.iter().next().map(|(k, v)| (k, v.get())),
            Some(("x", "[1, 2]"))
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let text = format!(
            r#"{{"type":"message","topic":"a","data":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let _ = parse_client_message(&text);
        let text = "[".repeat(100_000);
        assert!(matches!(err(&text).reason, ParseErrorKind::InvalidJson(_)));
    }

    #[test]
    fn parse_error_displays_its_reason() {
        assert_eq!(err("[]").to_string(), "message must be a JSON object");
    }

    #[test]
    fn message_type_names_match_the_wire() {
        for t in [
            MessageType::Auth,
            MessageType::Subscribe,
            MessageType::Unsubscribe,
            MessageType::Message,
            MessageType::Ping,
        ] {
            assert_eq!(MessageType::from_wire(t.as_str()), Some(t));
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = parse_client_message(&s);
        }

        #[test]
        fn parsing_json_like_text_never_panics(s in r#"[{}\[\]":,a-z0-9\\ ."tupe]{0,80}"#) {
            let _ = parse_client_message(&s);
        }

        #[test]
        fn parsing_mutated_valid_frames_never_panics(
            cut in 0usize..120,
            insert in ".{0,3}",
        ) {
            let base = r#"{"type":"message","topic":"a.b","data":{"x":[1,"\u00e9"]},"metadata":{"k":1,"k":2},"id":"1"}"#;
            let mut at = cut.min(base.len());
            while !base.is_char_boundary(at) { at -= 1; }
            let s = format!("{}{}{}", &base[..at], insert, &base[at..]);
            let _ = parse_client_message(&s);
            let _ = parse_client_message(&base[..at]);
        }
    }
}
