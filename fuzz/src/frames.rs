//! `client_frames`: one connection, then arbitrary frames (raw bytes, and JSON built from a
//! grammar of client messages, valid and not), every reply checked.

use std::time::Duration;

use arbitrary::Arbitrary;
use serde_json::{json, Map, Value};
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{
    Action, CloseCode, Config, ConnId, Frame, Handshake, Instant, Now, Switchboard,
};

use crate::check::{expected_timestamp, is_protocol_close_code, server_message};
use crate::enc::{pick, Bytes, Encode, Encoder, Text};

/// The shared HS256 secret.
pub const SECRET: &[u8] = b"fuzz-secret";
/// 2000-01-01T00:00:00Z, the earliest wall clock used.
const WALL_BASE_SECS: u64 = 946_684_800;
/// Largest frame accepted: small so that 1009 is reachable.
pub const MAX_MESSAGE_BYTES: usize = 2048;

const USERS: [&str; 4] = ["alice", "bob@example.com", "u2", "\u{fc}n\u{ef} c\u{f6}de"];
const DEVICES: [&str; 5] = ["phone-1", "d:2", "", "bad device", "x.y_z-9"];
const SEGMENTS: [&str; 14] = [
    "a",
    "b",
    "chat",
    "*",
    "**",
    "presence",
    "alice",
    "bob@example%2Ecom",
    "",
    "%41",
    "x y",
    "\u{e9}",
    "u2",
    "room:1",
];
const TOPICS: [&str; 12] = [
    "a",
    "a.b",
    "a.*",
    "a.**",
    "**",
    "*",
    "chat.room1",
    "presence.alice",
    "presence.*",
    "presence.",
    "a..b",
    "**.a",
];
const KEYS: [&str; 10] = [
    "type", "id", "token", "deviceId", "topic", "data", "metadata", "senderId", "x", "",
];
const TYPES: [&str; 7] = [
    "auth",
    "subscribe",
    "unsubscribe",
    "message",
    "ping",
    "pong",
    "AUTH",
];

/// How the connection starts.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Setup {
    /// Wall clock: seconds after 2000-01-01.
    pub wall_secs: u32,
    /// Authenticated by a handshake token, or left pending (so `auth` messages are reached).
    pub auth_at_open: bool,
    /// The token used at the handshake.
    pub token: TokenChoice,
    /// `max_subscriptions` is 1 + this % 4 (small, so 429 is reachable).
    pub max_subscriptions: u8,
}

/// A token, valid or not.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum TokenChoice {
    /// Signed, unexpired, for `USERS[user]`, maybe with a `device` claim.
    Valid { user: u8, device: Option<u8> },
    /// Signed, with a `topics` claim restricting the user.
    Restricted { user: u8 },
    /// Signed, expired a second ago.
    Expired { user: u8 },
    /// Signed with another secret.
    BadSignature,
    /// Signed, with a 129-byte `sub`.
    LongSub,
    /// Arbitrary text.
    Garbage(Text),
}

impl TokenChoice {
    /// The token at wall-clock `unix_millis`.
    pub fn render(&self, unix_millis: u64) -> String {
        let now_secs = unix_millis / 1000;
        let claims = |user: u8| Claims {
            sub: pick(&USERS, user).to_owned(),
            exp: now_secs + 3600,
            device: None,
            topics: None,
            info: None,
        };
        match self {
            TokenChoice::Valid { user, device } => sign_hs256(
                SECRET,
                &Claims {
                    device: device.map(|d| pick(&DEVICES, d).to_owned()),
                    ..claims(*user)
                },
            ),
            TokenChoice::Restricted { user } => sign_hs256(
                SECRET,
                &Claims {
                    topics: Some(vec!["a.*".into(), "chat.**".into(), "presence.*".into()]),
                    ..claims(*user)
                },
            ),
            TokenChoice::Expired { user } => sign_hs256(
                SECRET,
                &Claims {
                    exp: now_secs.saturating_sub(1),
                    ..claims(*user)
                },
            ),
            TokenChoice::BadSignature => sign_hs256(b"not the secret", &claims(0)),
            TokenChoice::LongSub => sign_hs256(
                SECRET,
                &Claims {
                    sub: "x".repeat(129),
                    ..claims(0)
                },
            ),
            TokenChoice::Garbage(t) => t.0.clone(),
        }
    }
}

/// A string field's value.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Str {
    /// One of a small alphabet (per field).
    Pick(u8),
    /// Arbitrary text.
    Raw(Text),
    /// A character repeated: over-long strings.
    Long { c: u8, len: u16 },
}

impl Str {
    /// The string, `Pick` choosing from `alphabet`.
    pub fn render(&self, alphabet: &[&str]) -> String {
        match self {
            Str::Pick(i) => pick(alphabet, *i).to_owned(),
            Str::Raw(t) => t.0.clone(),
            Str::Long { c, len } => char::from(b'a' + c % 26)
                .to_string()
                .repeat(usize::from(*len % 1100)),
        }
    }
}

/// A topic or pattern.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum TopicChoice {
    /// One of a small set, wildcards and invalid ones included.
    Pick(u8),
    /// Segments joined with dots.
    Segments(Vec<u8>),
    /// Arbitrary text.
    Raw(Text),
    /// Many segments (over the 16 allowed) or a long one (over 128 chars).
    Long { segments: u8, len: u8 },
}

impl TopicChoice {
    fn render(&self) -> String {
        match self {
            TopicChoice::Pick(i) => pick(&TOPICS, *i).to_owned(),
            TopicChoice::Segments(s) => s
                .iter()
                .map(|&i| pick(&SEGMENTS, i))
                .collect::<Vec<_>>()
                .join("."),
            TopicChoice::Raw(t) => t.0.clone(),
            TopicChoice::Long { segments, len } => {
                let seg = "s".repeat(1 + usize::from(*len));
                vec![seg; 1 + usize::from(*segments % 20)].join(".")
            }
        }
    }
}

/// A JSON value of any type, for `data`, `metadata` and mistyped fields.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Str),
    Array(Vec<Leaf>),
    Object(Vec<(u8, Leaf)>),
}

/// A JSON value without nesting.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Str(Str),
}

impl Leaf {
    fn render(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => Value::Bool(*b),
            Leaf::Int(i) => json!(i),
            Leaf::Str(s) => Value::String(s.render(&KEYS)),
        }
    }
}

impl Json {
    /// This value as JSON.
    pub fn render(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => json!(i),
            Json::Float(bits) => json!(f64::from_bits(*bits)),
            Json::Str(s) => Value::String(s.render(&KEYS)),
            Json::Array(v) => Value::Array(v.iter().map(Leaf::render).collect()),
            Json::Object(v) => Value::Object(
                v.iter()
                    .map(|(k, l)| (pick(&KEYS, *k).to_owned(), l.render()))
                    .collect(),
            ),
        }
    }
}

/// The optional `id`.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Id {
    Absent,
    Short(u8),
    Str(Str),
    /// 65 bytes: one over the limit.
    TooLong,
    /// Not a string.
    Other(Json),
}

impl Id {
    fn render(&self) -> Option<Value> {
        match self {
            Id::Absent => None,
            Id::Short(n) => Some(Value::String(format!("id-{n}"))),
            Id::Str(s) => Some(Value::String(s.render(&["1", "", "\u{1F600}"]))),
            Id::TooLong => Some(Value::String("i".repeat(65))),
            Id::Other(j) => Some(j.render()),
        }
    }
}

/// A client message, built as JSON.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum ClientMsg {
    Auth {
        token: TokenChoice,
        device: Option<Str>,
        id: Id,
    },
    Subscribe {
        topic: TopicChoice,
        id: Id,
    },
    Unsubscribe {
        topic: TopicChoice,
        id: Id,
    },
    Message {
        topic: TopicChoice,
        data: Option<Json>,
        metadata: Option<Json>,
        id: Id,
    },
    Ping {
        id: Id,
    },
    /// Any `type` (unknown, wrong case, not a string) with arbitrary fields.
    Other {
        ty: Option<Json>,
        fields: Vec<(u8, Json)>,
        id: Id,
    },
    /// Not an object.
    NotObject(Json),
}

impl ClientMsg {
    /// The frame's text at wall-clock `unix_millis`.
    pub fn render(&self, unix_millis: u64) -> String {
        let mut m = Map::new();
        let ty = |m: &mut Map<String, Value>, t: &str| {
            m.insert("type".into(), Value::String(t.into()));
        };
        let id = match self {
            ClientMsg::Auth { token, device, id } => {
                ty(&mut m, "auth");
                m.insert("token".into(), Value::String(token.render(unix_millis)));
                if let Some(d) = device {
                    m.insert("deviceId".into(), Value::String(d.render(&DEVICES)));
                }
                id
            }
            ClientMsg::Subscribe { topic, id } | ClientMsg::Unsubscribe { topic, id } => {
                let t = if matches!(self, ClientMsg::Subscribe { .. }) {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                ty(&mut m, t);
                m.insert("topic".into(), Value::String(topic.render()));
                id
            }
            ClientMsg::Message {
                topic,
                data,
                metadata,
                id,
            } => {
                ty(&mut m, "message");
                m.insert("topic".into(), Value::String(topic.render()));
                if let Some(d) = data {
                    m.insert("data".into(), d.render());
                }
                if let Some(md) = metadata {
                    m.insert("metadata".into(), md.render());
                }
                id
            }
            ClientMsg::Ping { id } => {
                ty(&mut m, "ping");
                id
            }
            ClientMsg::Other { ty: t, fields, id } => {
                for (k, v) in fields {
                    m.insert(pick(&KEYS, *k).to_owned(), v.render());
                }
                if let Some(t) = t {
                    let v = match t {
                        Json::Str(Str::Pick(i)) => Value::String(pick(&TYPES, *i).into()),
                        other => other.render(),
                    };
                    m.insert("type".into(), v);
                }
                id
            }
            ClientMsg::NotObject(j) => return j.render().to_string(),
        };
        if let Some(v) = id.render() {
            m.insert("id".into(), v);
        }
        Value::Object(m).to_string()
    }
}

/// One step of the session.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum FrameOp {
    /// A text frame when the bytes are UTF-8, else a binary frame.
    Raw(Bytes),
    /// A binary frame.
    Binary(Bytes),
    /// A JSON client message.
    Json(ClientMsg),
    /// Time passes (0..=65 s), then `handle_timeout`.
    Tick(u16),
    /// A WebSocket pong.
    Pong,
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Input {
    pub setup: Setup,
    pub ops: Vec<FrameOp>,
}

struct Session {
    sb: Switchboard,
    conn: ConnId,
    now: Now,
    closed: bool,
}

impl Session {
    fn drain(&mut self) -> Vec<Action> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.sb.poll_action()).collect();
        let ts = expected_timestamp(self.now.unix_millis);
        for a in &actions {
            if let Some(id) = a.conn() {
                assert_eq!(id, self.conn, "action names an unknown connection: {a:?}");
                assert!(!self.closed, "action after the connection left: {a:?}");
            }
            match a {
                Action::Send { payload, .. } => {
                    server_message(payload, &ts);
                }
                Action::Close { code, .. } => {
                    assert!(
                        is_protocol_close_code(*code),
                        "close code not in PROTOCOL.md: {a:?}"
                    );
                    self.closed = true;
                }
                Action::Evict { .. } => self.closed = true,
                Action::Presence {
                    online,
                    connections,
                    ..
                } => assert_eq!(*online, *connections > 0, "{a:?}"),
                Action::Ping { .. } => {}
                Action::Stop => panic!("Stop without shutdown"),
                other => panic!("an action this target does not know: {other:?}"),
            }
        }
        let stats = self.sb.stats();
        assert_eq!(stats.connections, usize::from(!self.closed), "{stats:?}");
        assert_eq!(self.sb.connection(self.conn).is_none(), self.closed);
        actions
    }

    fn frame(&mut self, frame: Frame<'_>) {
        let was_closed = self.closed;
        let authenticated = self.sb.user_of(self.conn).is_some();
        self.sb.handle_frame(self.now, self.conn, frame);
        let actions = self.drain();
        if was_closed {
            assert!(
                actions.is_empty(),
                "a frame on a closed connection: {actions:?}"
            );
            return;
        }
        let len = match frame {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        };
        let closes: Vec<&Action> = actions
            .iter()
            .filter(|a| matches!(a, Action::Close { .. } | Action::Evict { .. }))
            .collect();
        if len > MAX_MESSAGE_BYTES {
            assert!(
                matches!(
                    closes[..],
                    [Action::Close {
                        code: CloseCode::TOO_BIG,
                        ..
                    }]
                ),
                "a frame over max_message_bytes must close 1009: {actions:?}"
            );
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Send { .. })),
                "{actions:?}"
            );
            return;
        }
        assert!(
            closes.is_empty(),
            "a frame closed the connection: {actions:?}"
        );
        let sends: Vec<&[u8]> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { payload, .. } => Some(&payload[..]),
                _ => None,
            })
            .collect();
        let Frame::Text(text) = frame else {
            let first = sends.first().map(|p| server_message(p, &self.ts()));
            assert!(
                first.is_some_and(|m| m["type"] == "error" && m["code"] == 400),
                "binary frame not answered with error 400: {actions:?}"
            );
            return;
        };
        // What the request looks like to an independent JSON parser.
        let request: Option<Map<String, Value>> = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
        let ty = request
            .as_ref()
            .and_then(|m| m.get("type"))
            .and_then(Value::as_str);
        if sends.is_empty() {
            // Only a publish with no `id` and no subscriber of its own gets no reply.
            assert!(
                authenticated && ty == Some("message"),
                "no reply to {text:?}: {actions:?}"
            );
            return;
        }
        let first = server_message(sends[0], &self.ts());
        match request.as_ref().and_then(|m| m.get("id")) {
            Some(Value::String(id)) if id.len() <= 64 => {
                // The direct reply comes first and echoes the id. (A publish without
                // subscribers of its own is acknowledged; a publish always has an ack first.)
                assert_eq!(
                    first.get("id"),
                    Some(&Value::String(id.clone())),
                    "reply to {text:?} does not echo its id: {actions:?}"
                );
            }
            Some(_) => {
                assert!(
                    first.get("id").is_none(),
                    "an invalid id was echoed: {text:?} -> {actions:?}"
                );
                assert_eq!(first["type"], "error", "invalid id accepted: {text:?}");
                let code = if !authenticated && !matches!(ty, Some("auth" | "ping") | None) {
                    [400, 401]
                } else {
                    [400, 400]
                };
                assert!(
                    code.contains(&first["code"].as_u64().unwrap_or(0)),
                    "{actions:?}"
                );
            }
            None => {}
        }
        if request.is_none() {
            assert!(
                first["type"] == "error" && first["code"] == 400,
                "non-object frame {text:?} not answered 400: {actions:?}"
            );
        }
        if !authenticated && !matches!(ty, Some("auth" | "ping")) {
            assert_eq!(first["type"], "error", "pre-auth {text:?}: {actions:?}");
        }
        if ty == Some("ping") && first["type"] != "error" {
            assert_eq!(first["type"], "pong", "{actions:?}");
        }
    }

    fn ts(&self) -> String {
        expected_timestamp(self.now.unix_millis)
    }
}

/// Drives one input; panics when an oracle fails.
pub fn run(input: &Input) {
    let wall = (WALL_BASE_SECS + u64::from(input.setup.wall_secs)) * 1000;
    let now = Now::new(Instant::ZERO, wall);
    let config = {
        let mut config = Config::default();
        config.ping_interval = Duration::from_secs(10);
        config.pong_timeout = Duration::from_secs(25);
        config.auth_timeout = Duration::from_secs(15);
        config.max_message_bytes = MAX_MESSAGE_BYTES;
        config.max_subscriptions = 1 + usize::from(input.setup.max_subscriptions % 4);
        config.max_messages_per_sec = 0;
        config
    };
    let mut sb = Switchboard::new(config, Hs256Verifier::new(SECRET), 1);
    let handshake = Handshake {
        token: input
            .setup
            .auth_at_open
            .then(|| input.setup.token.render(wall)),
        ..Handshake::default()
    };
    let ip = "192.0.2.1".parse().expect("an IP");
    let Ok(conn) = sb.open(now, ip, handshake) else {
        assert!(input.setup.auth_at_open, "open without a token refused");
        return;
    };
    let mut s = Session {
        sb,
        conn,
        now,
        closed: false,
    };
    let opening = s.drain();
    if input.setup.auth_at_open {
        let first = opening.iter().find_map(|a| match a {
            Action::Send { payload, .. } => Some(server_message(payload, &s.ts())),
            _ => None,
        });
        assert!(
            first.is_some_and(|m| m["type"] == "auth_success"),
            "handshake auth without auth_success first: {opening:?}"
        );
    } else {
        assert!(opening.is_empty(), "{opening:?}");
    }
    for op in &input.ops {
        match op {
            FrameOp::Raw(b) => match std::str::from_utf8(&b.0) {
                Ok(text) => s.frame(Frame::Text(text)),
                Err(_) => s.frame(Frame::Binary(&b.0)),
            },
            FrameOp::Binary(b) => s.frame(Frame::Binary(&b.0)),
            FrameOp::Json(m) => {
                let text = m.render(s.now.unix_millis);
                s.frame(Frame::Text(&text));
            }
            FrameOp::Pong => {
                s.sb.handle_pong(s.now, s.conn);
                let actions = s.drain();
                assert!(actions.is_empty(), "{actions:?}");
            }
            FrameOp::Tick(ms) => {
                s.now = s.now.after(Duration::from_millis(u64::from(*ms)));
                s.sb.handle_timeout(s.now);
                let actions = s.drain();
                for a in &actions {
                    assert!(
                        matches!(
                            a,
                            Action::Ping { .. }
                                | Action::Evict { .. }
                                | Action::Presence { online: false, .. }
                                | Action::Close {
                                    code: CloseCode::AUTH_TIMEOUT | CloseCode::TOKEN_EXPIRED,
                                    ..
                                }
                        ),
                        "unexpected action on a timer: {a:?}"
                    );
                }
                if let Some(next) = s.sb.poll_timeout() {
                    assert!(next > s.now.instant, "poll_timeout {next:?} not after now");
                }
            }
        }
    }
}

// ---- seeds --------------------------------------------------------------------------------

impl Encode for Setup {
    fn encode(&self, e: &mut Encoder) {
        self.wall_secs.encode(e);
        self.auth_at_open.encode(e);
        self.token.encode(e);
        self.max_subscriptions.encode(e);
    }
}

impl Encode for TokenChoice {
    fn encode(&self, e: &mut Encoder) {
        match self {
            TokenChoice::Valid { user, device } => {
                e.tag(0, 6);
                user.encode(e);
                device.encode(e);
            }
            TokenChoice::Restricted { user } => {
                e.tag(1, 6);
                user.encode(e);
            }
            TokenChoice::Expired { user } => {
                e.tag(2, 6);
                user.encode(e);
            }
            TokenChoice::BadSignature => e.tag(3, 6),
            TokenChoice::LongSub => e.tag(4, 6),
            TokenChoice::Garbage(t) => {
                e.tag(5, 6);
                t.encode(e);
            }
        }
    }
}

impl Encode for Str {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Str::Pick(i) => {
                e.tag(0, 3);
                i.encode(e);
            }
            Str::Raw(t) => {
                e.tag(1, 3);
                t.encode(e);
            }
            Str::Long { c, len } => {
                e.tag(2, 3);
                c.encode(e);
                len.encode(e);
            }
        }
    }
}

impl Encode for TopicChoice {
    fn encode(&self, e: &mut Encoder) {
        match self {
            TopicChoice::Pick(i) => {
                e.tag(0, 4);
                i.encode(e);
            }
            TopicChoice::Segments(s) => {
                e.tag(1, 4);
                s.encode(e);
            }
            TopicChoice::Raw(t) => {
                e.tag(2, 4);
                t.encode(e);
            }
            TopicChoice::Long { segments, len } => {
                e.tag(3, 4);
                segments.encode(e);
                len.encode(e);
            }
        }
    }
}

impl Encode for Leaf {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Leaf::Null => e.tag(0, 4),
            Leaf::Bool(b) => {
                e.tag(1, 4);
                b.encode(e);
            }
            Leaf::Int(i) => {
                e.tag(2, 4);
                i.encode(e);
            }
            Leaf::Str(s) => {
                e.tag(3, 4);
                s.encode(e);
            }
        }
    }
}

impl Encode for Json {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Json::Null => e.tag(0, 7),
            Json::Bool(b) => {
                e.tag(1, 7);
                b.encode(e);
            }
            Json::Int(i) => {
                e.tag(2, 7);
                i.encode(e);
            }
            Json::Float(f) => {
                e.tag(3, 7);
                f.encode(e);
            }
            Json::Str(s) => {
                e.tag(4, 7);
                s.encode(e);
            }
            Json::Array(v) => {
                e.tag(5, 7);
                v.encode(e);
            }
            Json::Object(v) => {
                e.tag(6, 7);
                v.encode(e);
            }
        }
    }
}

impl Encode for Id {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Id::Absent => e.tag(0, 5),
            Id::Short(n) => {
                e.tag(1, 5);
                n.encode(e);
            }
            Id::Str(s) => {
                e.tag(2, 5);
                s.encode(e);
            }
            Id::TooLong => e.tag(3, 5),
            Id::Other(j) => {
                e.tag(4, 5);
                j.encode(e);
            }
        }
    }
}

impl Encode for ClientMsg {
    fn encode(&self, e: &mut Encoder) {
        match self {
            ClientMsg::Auth { token, device, id } => {
                e.tag(0, 7);
                token.encode(e);
                device.encode(e);
                id.encode(e);
            }
            ClientMsg::Subscribe { topic, id } => {
                e.tag(1, 7);
                topic.encode(e);
                id.encode(e);
            }
            ClientMsg::Unsubscribe { topic, id } => {
                e.tag(2, 7);
                topic.encode(e);
                id.encode(e);
            }
            ClientMsg::Message {
                topic,
                data,
                metadata,
                id,
            } => {
                e.tag(3, 7);
                topic.encode(e);
                data.encode(e);
                metadata.encode(e);
                id.encode(e);
            }
            ClientMsg::Ping { id } => {
                e.tag(4, 7);
                id.encode(e);
            }
            ClientMsg::Other { ty, fields, id } => {
                e.tag(5, 7);
                ty.encode(e);
                fields.encode(e);
                id.encode(e);
            }
            ClientMsg::NotObject(j) => {
                e.tag(6, 7);
                j.encode(e);
            }
        }
    }
}

impl Encode for FrameOp {
    fn encode(&self, e: &mut Encoder) {
        match self {
            FrameOp::Raw(b) => {
                e.tag(0, 5);
                b.encode(e);
            }
            FrameOp::Binary(b) => {
                e.tag(1, 5);
                b.encode(e);
            }
            FrameOp::Json(m) => {
                e.tag(2, 5);
                m.encode(e);
            }
            FrameOp::Tick(ms) => {
                e.tag(3, 5);
                ms.encode(e);
            }
            FrameOp::Pong => e.tag(4, 5),
        }
    }
}

impl Encode for Input {
    fn encode(&self, e: &mut Encoder) {
        self.setup.encode(e);
        self.ops.encode(e);
    }
}

fn raw(s: &str) -> FrameOp {
    FrameOp::Raw(Bytes(s.as_bytes().to_vec()))
}

/// Seed inputs: every client message type, valid and not, before and after authentication.
pub fn seeds() -> Vec<(String, Input)> {
    let setup = |auth_at_open: bool, token: TokenChoice| Setup {
        wall_secs: 848_743_200, // 2026-11-23T10:00:00Z
        auth_at_open,
        token,
        max_subscriptions: 1,
    };
    let valid = TokenChoice::Valid {
        user: 0,
        device: Some(0),
    };
    let sub = |t: &str, id: Option<u8>| {
        raw(&match id {
            Some(n) => format!(r#"{{"type":"subscribe","topic":"{t}","id":"{n}"}}"#),
            None => format!(r#"{{"type":"subscribe","topic":"{t}"}}"#),
        })
    };
    let mut out = vec![
        (
            "raw_session",
            Input {
                setup: setup(true, valid.clone()),
                ops: vec![
                    sub("a.*", Some(1)),
                    sub("a.*", None),
                    sub("presence.alice", Some(2)),
                    sub("presence.*", None),
                    sub("a.**", None),
                    sub("*.b", None),
                    sub("a..b", Some(3)),
                    raw(
                        r#"{"type":"message","topic":"a.b","data":{"n":1},"metadata":{"k":"v","senderId":"me"},"id":"7"}"#,
                    ),
                    raw(r#"{"type":"message","topic":"a.b","data":null}"#),
                    raw(r#"{"type":"message","topic":"a.*","data":1}"#),
                    raw(r#"{"type":"message","topic":"presence.alice","data":1}"#),
                    raw(r#"{"type":"message","topic":"a.b"}"#),
                    raw(r#"{"type":"message","topic":"a.b","data":1,"metadata":[1]}"#),
                    raw(r#"{"type":"unsubscribe","topic":"a.*","id":"8"}"#),
                    raw(r#"{"type":"unsubscribe","topic":"a.*"}"#),
                    raw(r#"{"type":"unsubscribe","topic":7}"#),
                    raw(r#"{"type":"ping","id":"9"}"#),
                    raw(r#"{"type":"ping"}"#),
                    raw(r#"{"type":"auth","token":"x"}"#),
                    raw(r#"{"type":"nope","id":"10"}"#),
                    raw(r#"{"id":"11"}"#),
                    raw(r#"{"type":5}"#),
                    raw(r#"{"type":"ping","id":5}"#),
                    raw(
                        r#"{"type":"ping","id":"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"}"#,
                    ),
                    raw("[1,2]"),
                    raw("{\"type\":"),
                    raw(""),
                    FrameOp::Raw(Bytes(vec![0xff, 0xfe, b'{'])),
                    FrameOp::Binary(Bytes(b"{\"type\":\"ping\"}".to_vec())),
                    FrameOp::Raw(Bytes(vec![b' '; MAX_MESSAGE_BYTES + 1])),
                ],
            },
        ),
        (
            "raw_pending",
            Input {
                setup: setup(false, valid.clone()),
                ops: vec![
                    sub("a.*", Some(1)),
                    raw(r#"{"type":"message","topic":"a.b","data":1,"id":"2"}"#),
                    raw(r#"{"type":"unsubscribe","topic":"a.b"}"#),
                    raw(r#"{"type":"ping"}"#),
                    raw(r#"{"type":"auth"}"#),
                    raw(r#"{"type":"auth","token":12}"#),
                    raw(r#"{"type":"auth","token":"a.b.c","deviceId":"bad device"}"#),
                    raw(r#"{"type":"auth","token":"a.b.c","id":"3"}"#),
                    raw(r#"{"type":"subscribe","id":7}"#),
                    FrameOp::Tick(16_000),
                ],
            },
        ),
        (
            "json_pending_then_auth",
            Input {
                setup: setup(false, valid.clone()),
                ops: vec![
                    FrameOp::Json(ClientMsg::Auth {
                        token: TokenChoice::Expired { user: 1 },
                        device: None,
                        id: Id::Short(1),
                    }),
                    FrameOp::Json(ClientMsg::Auth {
                        token: TokenChoice::BadSignature,
                        device: None,
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Auth {
                        token: TokenChoice::LongSub,
                        device: None,
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Auth {
                        token: TokenChoice::Restricted { user: 3 },
                        device: Some(Str::Pick(1)),
                        id: Id::Short(2),
                    }),
                    FrameOp::Json(ClientMsg::Auth {
                        token: valid.clone(),
                        device: None,
                        id: Id::Short(3),
                    }),
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Pick(1),
                        id: Id::Short(4),
                    }),
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Pick(2),
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Segments(vec![0, 3]),
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Message {
                        topic: TopicChoice::Segments(vec![0, 1]),
                        data: Some(Json::Object(vec![(1, Leaf::Int(5))])),
                        metadata: Some(Json::Object(vec![(7, Leaf::Str(Str::Pick(0)))])),
                        id: Id::Short(5),
                    }),
                    FrameOp::Json(ClientMsg::Message {
                        topic: TopicChoice::Pick(1),
                        data: Some(Json::Null),
                        metadata: None,
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Unsubscribe {
                        topic: TopicChoice::Pick(2),
                        id: Id::Str(Str::Pick(0)),
                    }),
                    FrameOp::Json(ClientMsg::Ping { id: Id::Short(6) }),
                    FrameOp::Json(ClientMsg::Other {
                        ty: Some(Json::Str(Str::Pick(5))),
                        fields: vec![(4, Json::Int(1))],
                        id: Id::Other(Json::Int(3)),
                    }),
                    FrameOp::Json(ClientMsg::NotObject(Json::Array(vec![Leaf::Null]))),
                    FrameOp::Pong,
                    FrameOp::Tick(10_000),
                    FrameOp::Tick(30_000),
                ],
            },
        ),
        (
            "json_restricted",
            Input {
                setup: setup(true, TokenChoice::Restricted { user: 1 }),
                ops: vec![
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Pick(3),
                        id: Id::Short(1),
                    }),
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Pick(6),
                        id: Id::Short(1),
                    }),
                    FrameOp::Json(ClientMsg::Subscribe {
                        topic: TopicChoice::Long {
                            segments: 17,
                            len: 3,
                        },
                        id: Id::Absent,
                    }),
                    FrameOp::Json(ClientMsg::Message {
                        topic: TopicChoice::Pick(1),
                        data: Some(Json::Bool(true)),
                        metadata: None,
                        id: Id::TooLong,
                    }),
                    FrameOp::Json(ClientMsg::Message {
                        topic: TopicChoice::Raw(Text::from("x.y")),
                        data: Some(Json::Str(Str::Long { c: 1, len: 70 })),
                        metadata: None,
                        id: Id::Short(9),
                    }),
                    FrameOp::Json(ClientMsg::Auth {
                        token: TokenChoice::Garbage(Text::from("a.b.c")),
                        device: None,
                        id: Id::Short(2),
                    }),
                ],
            },
        ),
    ];
    out.push((
        "expired_at_open",
        Input {
            setup: setup(true, TokenChoice::Expired { user: 0 }),
            ops: vec![],
        },
    ));
    out.into_iter().map(|(n, i)| (n.to_owned(), i)).collect()
}
