//! Shared helpers: a `Switchboard` on a scripted clock, tokens, and filters over its actions.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::{
    Action, Config, ConnId, Frame, Handshake, Instant, Now, OpenError, Switchboard,
};

pub(crate) const SECRET: &[u8] = b"behaviour-secret";
/// The seed of every harness's hash maps: runs repeat exactly.
pub(crate) const HASH_SEED: u64 = 0x5eed;
/// Wall clock at the harness's start: 2026-11-23T10:00:00.123Z.
pub(crate) const WALL0: u64 = 1_795_428_000_123;
pub(crate) const TS0: &str = "2026-11-23T10:00:00.123Z";
/// A token expiry a day after the start.
pub(crate) const EXP_FAR: u64 = WALL0 / 1000 + 86_400;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

pub(crate) fn claims(user: &str) -> Claims {
    Claims {
        sub: user.into(),
        exp: EXP_FAR,
        device: None,
        topics: None,
        info: None,
    }
}

pub(crate) fn token(user: &str) -> String {
    sign_hs256(SECRET, &claims(user))
}

pub(crate) fn token_with(claims: &Claims) -> String {
    sign_hs256(SECRET, claims)
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) struct Harness {
    pub(crate) sb: Switchboard,
    pub(crate) now: Now,
    /// Actions polled from the core and not yet taken by a test.
    pub(crate) buffered: VecDeque<Action>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(Config::default())
    }

    pub(crate) fn with(config: Config) -> Self {
        Harness {
            sb: Switchboard::new(config, Hs256Verifier::new(SECRET), HASH_SEED),
            now: Now::new(Instant::ZERO, WALL0),
            buffered: VecDeque::new(),
        }
    }

    /// The moment `d` after the start, on both clocks.
    pub(crate) fn at(d: Duration) -> Now {
        Now::new(
            Instant::ZERO + d,
            WALL0 + u64::try_from(d.as_millis()).unwrap(),
        )
    }

    /// Sets the clocks to `d` after the start without running timers.
    pub(crate) fn set_time(&mut self, d: Duration) {
        let next = Self::at(d);
        assert!(next.instant >= self.now.instant, "time must not go back");
        self.now = next;
    }

    /// Moves time forward by `d` and runs `handle_timeout`.
    pub(crate) fn advance(&mut self, d: Duration) {
        let elapsed = self.now.instant - Instant::ZERO;
        self.advance_to(elapsed + d);
    }

    /// Moves time to `d` after the start and runs `handle_timeout`.
    pub(crate) fn advance_to(&mut self, d: Duration) {
        self.set_time(d);
        self.sb.handle_timeout(self.now);
    }

    pub(crate) fn open(&mut self, handshake: Handshake) -> Result<ConnId, OpenError> {
        self.open_from(ip("192.0.2.1"), handshake)
    }

    pub(crate) fn open_from(
        &mut self,
        addr: IpAddr,
        handshake: Handshake,
    ) -> Result<ConnId, OpenError> {
        self.sb.open(self.now, addr, handshake)
    }

    /// Opens a connection authenticated at the handshake as `user` (handshake `device`) and
    /// takes its `auth_success`; other actions (presence) stay buffered.
    pub(crate) fn open_with_token(&mut self, user: &str, device: Option<&str>) -> ConnId {
        self.open_with_claims(&claims(user), device)
    }

    pub(crate) fn open_with_claims(&mut self, claims: &Claims, device: Option<&str>) -> ConnId {
        let conn = self
            .open(Handshake {
                token: Some(token_with(claims)),
                device: device.map(Into::into),
                ..Handshake::default()
            })
            .expect("open with a valid token");
        let replies = self.sent_to(conn);
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(replies[0]["type"], "auth_success");
        conn
    }

    pub(crate) fn open_anonymous(&mut self) -> ConnId {
        let conn = self.open(Handshake::default()).expect("open");
        assert!(self.sent_to(conn).is_empty());
        conn
    }

    pub(crate) fn frame(&mut self, conn: ConnId, json: &str) {
        self.sb.handle_frame(self.now, conn, Frame::Text(json));
    }

    /// Sends `json` and returns the replies to `conn` it caused.
    pub(crate) fn ask(&mut self, conn: ConnId, json: &str) -> Vec<Value> {
        self.frame(conn, json);
        self.sent_to(conn)
    }

    /// Sends `json` and returns the one reply to `conn` it caused.
    pub(crate) fn ask1(&mut self, conn: ConnId, json: &str) -> Value {
        let mut replies = self.ask(conn, json);
        assert_eq!(replies.len(), 1, "replies to {json}: {replies:?}");
        replies.remove(0)
    }

    pub(crate) fn subscribe(&mut self, conn: ConnId, topic: &str) {
        let reply = self.ask(conn, &json!({"type":"subscribe","topic":topic}).to_string());
        assert_eq!(reply[0]["type"], "subscribed", "{reply:?}");
    }

    pub(crate) fn publish(&mut self, conn: ConnId, topic: &str, data: &str) {
        self.frame(
            conn,
            &format!(r#"{{"type":"message","topic":"{topic}","data":{data}}}"#),
        );
    }

    pub(crate) fn pull(&mut self) {
        while let Some(action) = self.sb.poll_action() {
            self.buffered.push_back(action);
        }
    }

    /// Every action not yet taken, in order.
    pub(crate) fn drain(&mut self) -> Vec<Action> {
        self.pull();
        self.buffered.drain(..).collect()
    }

    /// Takes the `Send`s to `conn`, parsed; other actions stay buffered.
    pub(crate) fn sent_to(&mut self, conn: ConnId) -> Vec<Value> {
        self.sent_raw(conn)
            .iter()
            .map(|p| serde_json::from_str(p).expect("payload is JSON"))
            .collect()
    }

    /// Takes the `Send` payloads to `conn`, as text; other actions stay buffered.
    pub(crate) fn sent_raw(&mut self, conn: ConnId) -> Vec<String> {
        self.pull();
        let mut out = Vec::new();
        self.buffered.retain(|a| match a {
            Action::Send { conn: c, payload } if *c == conn => {
                out.push(String::from_utf8(payload.to_vec()).expect("payload is UTF-8"));
                false
            }
            _ => true,
        });
        out
    }

    pub(crate) fn close(&mut self, conn: ConnId) {
        self.sb.handle_closed(self.now, conn);
    }

    pub(crate) fn is_open(&self, conn: ConnId) -> bool {
        self.sb.connection(conn).is_some()
    }
}

pub(crate) fn closes(actions: &[Action]) -> Vec<(ConnId, u16, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close {
                conn, code, reason, ..
            } => Some((*conn, code.0, reason.to_string())),
            _ => None,
        })
        .collect()
}

pub(crate) fn presences(actions: &[Action]) -> Vec<(String, bool, usize)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Presence {
                user,
                online,
                connections,
            } => Some((user.to_string(), *online, *connections)),
            _ => None,
        })
        .collect()
}

pub(crate) fn pings(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Ping { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

pub(crate) fn evictions(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Evict { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

pub(crate) fn naming(actions: &[Action], conn: ConnId) -> Vec<&Action> {
    actions.iter().filter(|a| a.conn() == Some(conn)).collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
pub(crate) fn assert_timestamp_format(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 24, "{ts}");
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        };
        assert!(ok, "timestamp {ts:?}: unexpected {:?} at {i}", c as char);
    }
}

pub(crate) fn assert_error(reply: &Value, code: u16, names: &str) {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    let message = reply["message"].as_str().expect("message is a string");
    assert!(
        message.contains(names),
        "error message {message:?} should name {names:?}"
    );
    assert_timestamp_format(reply["timestamp"].as_str().unwrap());
}

pub(crate) fn heartbeat_config() -> Config {
    let mut config = Config::default();
    config.ping_interval = secs(1);
    config.pong_timeout = ms(2500);
    config
}
