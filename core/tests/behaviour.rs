//! Behaviour tests of `switchboard-core`, driven through its public API only.
//!
//! Each test's name states one behaviour of PROTOCOL.md or SPEC.md; every error code and every
//! limit is checked at its edge (exactly at the limit allowed, one past it refused).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, AuthError, Claims, Hs256Verifier};
use switchboard_core::topics::presence_topic;
use switchboard_core::{
    Action, CloseCode, Config, ConnId, DisconnectError, Frame, Gone, Handshake, HandshakeError,
    Instant, Now, OpenError, PublishError, SessionPolicy, Switchboard, Violation,
};

// ---- harness ------------------------------------------------------------------------------

const SECRET: &[u8] = b"behaviour-secret";
/// Wall clock at the harness's start: 2026-11-23T10:00:00.123Z.
const WALL0: u64 = 1_795_428_000_123;
const TS0: &str = "2026-11-23T10:00:00.123Z";
/// A token expiry a day after the start.
const EXP_FAR: u64 = WALL0 / 1000 + 86_400;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

fn claims(user: &str) -> Claims {
    Claims {
        sub: user.into(),
        exp: EXP_FAR,
        device: None,
        topics: None,
    }
}

fn token(user: &str) -> String {
    sign_hs256(SECRET, &claims(user))
}

fn token_with(claims: &Claims) -> String {
    sign_hs256(SECRET, claims)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

struct Harness {
    sb: Switchboard,
    now: Now,
    /// Actions polled from the core and not yet taken by a test.
    buffered: VecDeque<Action>,
}

impl Harness {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Harness {
            sb: Switchboard::new(config, Hs256Verifier::new(SECRET)),
            now: Now::new(Instant::ZERO, WALL0),
            buffered: VecDeque::new(),
        }
    }

    /// The moment `d` after the start, on both clocks.
    fn at(d: Duration) -> Now {
        Now::new(
            Instant::ZERO + d,
            WALL0 + u64::try_from(d.as_millis()).unwrap(),
        )
    }

    /// Sets the clocks to `d` after the start without running timers.
    fn set_time(&mut self, d: Duration) {
        let next = Self::at(d);
        assert!(next.instant >= self.now.instant, "time must not go back");
        self.now = next;
    }

    /// Moves time forward by `d` and runs `handle_timeout`.
    fn advance(&mut self, d: Duration) {
        let elapsed = self.now.instant - Instant::ZERO;
        self.advance_to(elapsed + d);
    }

    /// Moves time to `d` after the start and runs `handle_timeout`.
    fn advance_to(&mut self, d: Duration) {
        self.set_time(d);
        self.sb.handle_timeout(self.now);
    }

    fn open(&mut self, handshake: Handshake) -> Result<ConnId, OpenError> {
        self.open_from(ip("192.0.2.1"), handshake)
    }

    fn open_from(&mut self, addr: IpAddr, handshake: Handshake) -> Result<ConnId, OpenError> {
        self.sb.open(self.now, addr, handshake)
    }

    /// Opens a connection authenticated at the handshake as `user` (handshake `device`) and
    /// takes its `auth_success`; other actions (presence) stay buffered.
    fn open_with_token(&mut self, user: &str, device: Option<&str>) -> ConnId {
        self.open_with_claims(&claims(user), device)
    }

    fn open_with_claims(&mut self, claims: &Claims, device: Option<&str>) -> ConnId {
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

    fn open_anonymous(&mut self) -> ConnId {
        let conn = self.open(Handshake::default()).expect("open");
        assert!(self.sent_to(conn).is_empty());
        conn
    }

    fn frame(&mut self, conn: ConnId, json: &str) {
        self.sb.handle_frame(self.now, conn, Frame::Text(json));
    }

    /// Sends `json` and returns the replies to `conn` it caused.
    fn ask(&mut self, conn: ConnId, json: &str) -> Vec<Value> {
        self.frame(conn, json);
        self.sent_to(conn)
    }

    /// Sends `json` and returns the one reply to `conn` it caused.
    fn ask1(&mut self, conn: ConnId, json: &str) -> Value {
        let mut replies = self.ask(conn, json);
        assert_eq!(replies.len(), 1, "replies to {json}: {replies:?}");
        replies.remove(0)
    }

    fn subscribe(&mut self, conn: ConnId, topic: &str) {
        let reply = self.ask(conn, &json!({"type":"subscribe","topic":topic}).to_string());
        assert_eq!(reply[0]["type"], "subscribed", "{reply:?}");
    }

    fn publish(&mut self, conn: ConnId, topic: &str, data: &str) {
        self.frame(
            conn,
            &format!(r#"{{"type":"message","topic":"{topic}","data":{data}}}"#),
        );
    }

    fn pull(&mut self) {
        while let Some(action) = self.sb.poll_action() {
            self.buffered.push_back(action);
        }
    }

    /// Every action not yet taken, in order.
    fn drain(&mut self) -> Vec<Action> {
        self.pull();
        self.buffered.drain(..).collect()
    }

    /// Takes the `Send`s to `conn`, parsed; other actions stay buffered.
    fn sent_to(&mut self, conn: ConnId) -> Vec<Value> {
        self.sent_raw(conn)
            .iter()
            .map(|p| serde_json::from_str(p).expect("payload is JSON"))
            .collect()
    }

    /// Takes the `Send` payloads to `conn`, as text; other actions stay buffered.
    fn sent_raw(&mut self, conn: ConnId) -> Vec<String> {
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

    fn close(&mut self, conn: ConnId) {
        self.sb.handle_closed(self.now, conn);
    }

    fn is_open(&self, conn: ConnId) -> bool {
        self.sb.connection(conn).is_some()
    }
}

fn closes(actions: &[Action]) -> Vec<(ConnId, u16, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn, code, reason } => Some((*conn, code.0, reason.to_string())),
            _ => None,
        })
        .collect()
}

fn presences(actions: &[Action]) -> Vec<(String, bool, usize)> {
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

fn pings(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Ping { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn evictions(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Evict { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn naming(actions: &[Action], conn: ConnId) -> Vec<&Action> {
    actions.iter().filter(|a| a.conn() == Some(conn)).collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
fn assert_timestamp_format(ts: &str) {
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

fn assert_error(reply: &Value, code: u16, names: &str) {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    let message = reply["message"].as_str().expect("message is a string");
    assert!(
        message.contains(names),
        "error message {message:?} should name {names:?}"
    );
    assert_timestamp_format(reply["timestamp"].as_str().unwrap());
}

// ---- defaults -----------------------------------------------------------------------------

#[test]
fn config_defaults_are_those_of_the_spec() {
    let c = Config::default();
    assert_eq!(c.session_policy, SessionPolicy::PerDevice);
    assert_eq!(c.ping_interval, secs(30));
    assert_eq!(c.pong_timeout, secs(60));
    assert_eq!(c.auth_timeout, secs(10));
    assert_eq!(c.max_connections_per_ip, 100);
    assert_eq!(c.max_message_bytes, 1024 * 1024);
    assert_eq!(c.max_outbound_bytes, 1024 * 1024);
    assert_eq!(c.max_subscriptions, 1000);
    assert_eq!(c.max_messages_per_sec, 100);
    assert_eq!(c.message_burst, 200);
    assert_eq!(c.jwt_leeway, Duration::ZERO);
}

// ---- open ---------------------------------------------------------------------------------

#[test]
fn handshake_token_authenticates_and_auth_success_is_the_first_frame() {
    let mut h = Harness::new();
    let conn = h
        .open(Handshake {
            token: Some(token("alice")),
            ..Handshake::default()
        })
        .unwrap();
    let actions = h.drain();
    let Action::Send { conn: to, payload } = &actions[0] else {
        panic!("first action should be a Send: {actions:?}");
    };
    assert_eq!(*to, conn);
    assert_eq!(
        std::str::from_utf8(payload).unwrap(),
        format!(
            r#"{{"type":"auth_success","userId":"alice","connId":"{conn}","timestamp":"{TS0}"}}"#
        )
    );
    assert_eq!(
        conn.to_string(),
        format!("c-{}-{}", conn.index(), conn.generation())
    );
    assert_eq!(h.sb.user_of(conn), Some("alice"));
    assert_eq!(presences(&actions), vec![("alice".to_string(), true, 1)]);
}

#[test]
fn handshake_with_invalid_token_is_refused_with_401() {
    let mut h = Harness::new();
    for bad in [
        "not-a-jwt".to_string(),
        sign_hs256(b"another secret", &claims("alice")),
    ] {
        let err = h
            .open(Handshake {
                token: Some(bad),
                ..Handshake::default()
            })
            .unwrap_err();
        assert!(matches!(err, OpenError::InvalidToken(_)), "{err:?}");
        assert_eq!(err.http_status(), 401);
    }
    assert!(h.drain().is_empty());
    assert_eq!(h.sb.stats().connections, 0);
    assert_eq!(h.sb.stats().rejected_total, 2);
}

#[test]
fn handshake_with_expired_token_is_refused_with_401() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 - 1;
    let err = h
        .open(Handshake {
            token: Some(token_with(&c)),
            ..Handshake::default()
        })
        .unwrap_err();
    assert_eq!(err, OpenError::InvalidToken(AuthError::Expired));
    assert_eq!(err.http_status(), 401);
    assert!(h.drain().is_empty());
}

#[test]
fn token_is_valid_one_millisecond_before_exp_and_expired_exactly_at_exp() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 + 10;
    let exp_ms = c.exp * 1000;
    let hs = || Handshake {
        token: Some(token_with(&c)),
        ..Handshake::default()
    };
    h.set_time(ms(exp_ms - 1 - WALL0));
    assert!(h.open(hs()).is_ok());
    h.set_time(ms(exp_ms - WALL0));
    assert_eq!(
        h.open(hs()).unwrap_err(),
        OpenError::InvalidToken(AuthError::Expired)
    );
}

#[test]
fn per_ip_limit_allows_exactly_max_then_refuses_with_429() {
    let mut h = Harness::with(Config {
        max_connections_per_ip: 3,
        ..Config::default()
    });
    let a = ip("198.51.100.7");
    // Authenticated or not, every open socket counts.
    h.open_from(a, Handshake::default()).unwrap();
    h.open_from(
        a,
        Handshake {
            token: Some(token("alice")),
            ..Handshake::default()
        },
    )
    .unwrap();
    h.open_from(a, Handshake::default()).unwrap();
    let err = h.open_from(a, Handshake::default()).unwrap_err();
    assert_eq!(err, OpenError::TooManyFromIp);
    assert_eq!(err.http_status(), 429);
    // Another address is not affected.
    assert!(h
        .open_from(ip("198.51.100.8"), Handshake::default())
        .is_ok());
    assert!(h.open_from(ip("2001:db8::1"), Handshake::default()).is_ok());
}

#[test]
fn per_ip_slot_frees_when_a_connection_closes() {
    let mut h = Harness::with(Config {
        max_connections_per_ip: 2,
        ..Config::default()
    });
    let a = ip("198.51.100.7");
    let first = h.open_from(a, Handshake::default()).unwrap();
    h.open_from(a, Handshake::default()).unwrap();
    assert_eq!(
        h.open_from(a, Handshake::default()),
        Err(OpenError::TooManyFromIp)
    );
    h.close(first);
    let third = h.open_from(a, Handshake::default()).unwrap();
    assert_eq!(
        h.open_from(a, Handshake::default()),
        Err(OpenError::TooManyFromIp)
    );
    // A close the core decided frees the slot too.
    h.sb.disconnect_connection(h.now, third, CloseCode::NORMAL, "bye")
        .unwrap();
    assert!(h.open_from(a, Handshake::default()).is_ok());
}

#[test]
fn draining_server_refuses_new_connections_with_503() {
    let mut h = Harness::new();
    h.sb.shutdown(h.now, Instant::ZERO + secs(10));
    let err = h.open(Handshake::default()).unwrap_err();
    assert_eq!(err, OpenError::Draining);
    assert_eq!(err.http_status(), 503);
    let err = h
        .open(Handshake {
            token: Some(token("alice")),
            ..Handshake::default()
        })
        .unwrap_err();
    assert_eq!(err, OpenError::Draining);
}

#[test]
fn malformed_handshake_device_is_refused_with_400() {
    let mut h = Harness::new();
    for bad in ["", "has space", "slash/no", "é"] {
        let err = h
            .open(Handshake {
                device: Some(bad.into()),
                ..Handshake::default()
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::InvalidHandshake(HandshakeError::InvalidDevice(_))
            ),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.http_status(), 400);
    }
    assert_eq!(h.sb.stats().connections, 0);
}

#[test]
fn handshake_device_of_64_chars_is_accepted_and_65_refused_with_400() {
    let mut h = Harness::new();
    let ok = "a.b_c:d-".repeat(8);
    assert_eq!(ok.len(), 64);
    let conn = h
        .open(Handshake {
            token: Some(token("alice")),
            device: Some(ok.clone()),
            ..Handshake::default()
        })
        .unwrap();
    assert_eq!(h.sb.connection(conn).unwrap().device(), Some(ok.as_str()));
    let err = h
        .open(Handshake {
            device: Some(format!("{ok}x")),
            ..Handshake::default()
        })
        .unwrap_err();
    assert!(matches!(
        err,
        OpenError::InvalidHandshake(HandshakeError::InvalidDevice(_))
    ));
    assert_eq!(err.http_status(), 400);
}

#[test]
fn handshake_device_name_of_128_bytes_is_accepted_and_129_refused_with_400() {
    let mut h = Harness::new();
    let name = "é".repeat(64); // 128 bytes of free text
    let conn = h
        .open(Handshake {
            device_name: Some(name.clone()),
            ..Handshake::default()
        })
        .unwrap();
    assert_eq!(
        h.sb.connection(conn).unwrap().device_name(),
        Some(name.as_str())
    );
    let err = h
        .open(Handshake {
            device_name: Some(format!("{name}x")),
            ..Handshake::default()
        })
        .unwrap_err();
    assert_eq!(
        err,
        OpenError::InvalidHandshake(HandshakeError::DeviceNameTooLong { len: 129 })
    );
    assert_eq!(err.http_status(), 400);
}

#[test]
fn reused_slot_gets_a_new_id_and_the_stale_id_is_ignored_by_every_input() {
    let mut h = Harness::new();
    let old = h.open_with_token("alice", Some("phone"));
    h.close(old);
    h.drain();
    let new = h.open_with_token("bob", Some("phone"));
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old);
    assert_ne!(new.to_string(), old.to_string());
    h.drain();

    h.frame(old, r#"{"type":"ping"}"#);
    h.frame(old, r#"{"type":"subscribe","topic":"a"}"#);
    h.sb.handle_frame(h.now, old, Frame::Binary(b"x"));
    h.sb.handle_pong(h.now, old);
    h.sb.handle_backlog(h.now, old, usize::MAX);
    h.sb.handle_violation(h.now, old, Violation::InvalidUtf8);
    h.sb.handle_violation(h.now, old, Violation::MessageTooBig);
    h.sb.handle_closed(h.now, old);
    h.sb.handle_closed(h.now, old); // idempotent
    assert!(h.drain().is_empty());

    assert_eq!(h.sb.send_to_connection(h.now, old, &raw("1")), Err(Gone));
    assert_eq!(
        h.sb.disconnect_connection(h.now, old, CloseCode::NORMAL, "x"),
        Err(DisconnectError::Gone(Gone))
    );
    assert!(h.sb.connection(old).is_none());
    assert_eq!(h.sb.user_of(old), None);
    assert!(h.drain().is_empty());

    // The newcomer in the slot is untouched.
    assert_eq!(h.sb.user_of(new), Some("bob"));
    assert_eq!(h.sb.send_to_connection(h.now, new, &raw("1")), Ok(()));
    assert_eq!(h.sent_to(new).len(), 1);
}

#[test]
fn user_id_of_128_bytes_is_accepted_and_129_refused_with_401() {
    let mut h = Harness::new();
    let sub128 = "u".repeat(128);
    let conn = h.open_with_token(&sub128, None);
    assert_eq!(h.sb.user_of(conn), Some(sub128.as_str()));
    let long = claims(&"u".repeat(129));
    let err = h
        .open(Handshake {
            token: Some(token_with(&long)),
            ..Handshake::default()
        })
        .unwrap_err();
    assert!(matches!(err, OpenError::InvalidToken(_)), "{err:?}");
    assert_eq!(err.http_status(), 401);
    let anon = h.open_anonymous();
    let reply = h.ask1(
        anon,
        &json!({"type":"auth","token":token_with(&long)}).to_string(),
    );
    assert_eq!(reply["type"], "auth_error");
    assert_eq!(reply["code"], 401);
    assert!(
        reply["message"].as_str().unwrap().contains("sub"),
        "{reply}"
    );
    let empty = claims("");
    let reply = h.ask1(
        anon,
        &json!({"type":"auth","token":token_with(&empty)}).to_string(),
    );
    assert_eq!(reply["type"], "auth_error");
}

#[test]
fn handshake_request_reads_token_device_device_name_and_user_agent() {
    let hs = Handshake::from_request(
        "/ws?token=abc&device=phone-1&deviceName=Alice%27s+phone&other=x",
        [("User-Agent", &b"Agent/1"[..])],
    )
    .unwrap();
    assert_eq!(
        hs,
        Handshake {
            token: Some("abc".into()),
            device: Some("phone-1".into()),
            device_name: Some("Alice's phone".into()),
            user_agent: Some("Agent/1".into()),
        }
    );
    let hs = Handshake::from_request(
        "/ws?token=from-query",
        [("authorization", &b"Bearer from-header"[..])],
    )
    .unwrap();
    assert_eq!(hs.token.as_deref(), Some("from-header"), "the header wins");
    let hs = Handshake::from_request("/ws?token=", []).unwrap();
    assert_eq!(hs.token, None, "an empty token is absent");
}

#[test]
fn handshake_request_with_malformed_parameters_is_400_and_another_path_404() {
    let bad = |target: &str| Handshake::from_request(target, []).unwrap_err();
    assert_eq!(bad("/other").http_status(), 404);
    assert_eq!(bad("/ws/x").http_status(), 404);
    assert_eq!(bad("/ws?device=a%20b").http_status(), 400);
    assert_eq!(
        bad(&format!("/ws?device={}", "d".repeat(65))).http_status(),
        400
    );
    assert_eq!(
        bad(&format!("/ws?deviceName={}", "n".repeat(129))),
        HandshakeError::DeviceNameTooLong { len: 129 }
    );
    assert!(Handshake::from_request(&format!("/ws?deviceName={}", "n".repeat(128)), []).is_ok());
    let err = Handshake::from_request("/ws", [("Authorization", &b"Basic abc"[..])]).unwrap_err();
    assert_eq!(err, HandshakeError::InvalidAuthorization);
    assert_eq!(err.http_status(), 400);
}

// ---- auth message -------------------------------------------------------------------------

#[test]
fn auth_message_with_a_valid_token_answers_auth_success_and_goes_online() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    assert!(!h.sb.connection(conn).unwrap().is_authenticated());
    let frame = json!({"type":"auth","token":token("alice"),"id":"a1"}).to_string();
    let reply = h.ask1(conn, &frame);
    assert_eq!(
        reply,
        json!({"type":"auth_success","userId":"alice","connId":conn.to_string(),
               "id":"a1","timestamp":TS0})
    );
    assert!(h.sb.connection(conn).unwrap().is_authenticated());
    assert_eq!(h.sb.user_of(conn), Some("alice"));
    assert_eq!(presences(&h.drain()), vec![("alice".to_string(), true, 1)]);
}

#[test]
fn auth_message_with_a_bad_token_is_auth_error_401_and_the_connection_stays_open() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let reply = h.ask1(conn, r#"{"type":"auth","token":"garbage","id":"x"}"#);
    assert_eq!(
        reply,
        json!({"type":"auth_error","code":401,"message":"malformed token","id":"x","timestamp":TS0})
    );
    let forged = sign_hs256(b"wrong", &claims("alice"));
    let reply = h.ask1(conn, &json!({"type":"auth","token":forged}).to_string());
    assert_eq!(reply["type"], "auth_error");
    assert_eq!(reply["code"], 401);
    assert_eq!(reply["message"], "invalid token signature");
    assert!(h.drain().is_empty(), "no close, no presence");
    assert!(h.is_open(conn));
    // A good token later works.
    let reply = h.ask1(
        conn,
        &json!({"type":"auth","token":token("alice")}).to_string(),
    );
    assert_eq!(reply["type"], "auth_success");
}

#[test]
fn auth_message_with_an_expired_token_is_auth_error_401_token_expired() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 - 60;
    let reply = h.ask1(
        conn,
        &json!({"type":"auth","token":token_with(&c)}).to_string(),
    );
    assert_eq!(
        reply,
        json!({"type":"auth_error","code":401,"message":"token expired","timestamp":TS0})
    );
    assert!(h.is_open(conn));
    let reply = h.ask1(
        conn,
        &json!({"type":"auth","token":token("alice")}).to_string(),
    );
    assert_eq!(reply["type"], "auth_success");
}

#[test]
fn auth_without_a_string_token_is_error_400() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let reply = h.ask1(conn, r#"{"type":"auth","id":"t"}"#);
    assert_error(&reply, 400, "token");
    assert_eq!(reply["id"], "t");
    let reply = h.ask1(conn, r#"{"type":"auth","token":42}"#);
    assert_error(&reply, 400, "token");
    let reply = h.ask1(conn, r#"{"type":"auth","token":null}"#);
    assert_error(&reply, 400, "token");
    assert!(!h.sb.connection(conn).unwrap().is_authenticated());
}

#[test]
fn second_auth_on_an_authenticated_connection_is_error_409() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    let reply = h.ask1(
        conn,
        &json!({"type":"auth","token":token("bob"),"id":"again"}).to_string(),
    );
    assert_error(&reply, 409, "already authenticated");
    assert_eq!(reply["id"], "again");
    assert_eq!(h.sb.user_of(conn), Some("alice"));
    assert!(h.drain().is_empty());
}

#[test]
fn auth_with_an_invalid_device_id_is_error_400() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let frame = json!({"type":"auth","token":token("alice"),"deviceId":"bad device","id":"d"});
    let reply = h.ask1(conn, &frame.to_string());
    assert_error(&reply, 400, "device");
    assert_eq!(reply["id"], "d");
    assert!(!h.sb.connection(conn).unwrap().is_authenticated());
    let long = "d".repeat(65);
    let frame = json!({"type":"auth","token":token("alice"),"deviceId":long});
    assert_error(&h.ask1(conn, &frame.to_string()), 400, "device");
    let exact = "d".repeat(64);
    let frame = json!({"type":"auth","token":token("alice"),"deviceId":exact});
    assert_eq!(h.ask1(conn, &frame.to_string())["type"], "auth_success");
    assert_eq!(
        h.sb.connection(conn).unwrap().device(),
        Some(exact.as_str())
    );
}

#[test]
fn before_auth_subscribe_message_and_unsubscribe_are_error_401() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    for frame in [
        r#"{"type":"subscribe","topic":"chat.a","id":"1"}"#,
        r#"{"type":"message","topic":"chat.a","data":1,"id":"1"}"#,
        r#"{"type":"unsubscribe","topic":"chat.a","id":"1"}"#,
        // Even malformed, a known type is refused for being unauthenticated.
        r#"{"type":"subscribe","id":"1"}"#,
    ] {
        let reply = h.ask1(conn, frame);
        assert_error(&reply, 401, "not authenticated");
        assert_eq!(reply["id"], "1", "{frame}");
    }
    assert!(h.is_open(conn));
}

#[test]
fn before_auth_ping_is_answered_with_pong() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let reply = h.ask1(conn, r#"{"type":"ping","id":"p"}"#);
    assert_eq!(reply, json!({"type":"pong","id":"p","timestamp":TS0}));
    let reply = h.ask1(conn, r#"{"type":"ping"}"#);
    assert_eq!(reply, json!({"type":"pong","timestamp":TS0}));
}

#[test]
fn auth_timeout_closes_with_4008_exactly_at_auth_timeout() {
    let mut h = Harness::with(Config {
        auth_timeout: secs(5),
        ..Config::default()
    });
    let conn = h.open_anonymous();
    // An auth_error does not stop the clock.
    h.set_time(secs(1));
    h.ask1(conn, r#"{"type":"auth","token":"bad"}"#);
    h.advance_to(secs(5) - Duration::from_nanos(1));
    assert!(h.drain().is_empty());
    assert!(h.is_open(conn));
    h.advance_to(secs(5));
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 4008, "authentication timeout".to_string())]
    );
    assert_eq!(actions.len(), 1);
    assert!(!h.is_open(conn));
}

#[test]
fn authenticated_connection_is_not_closed_at_auth_timeout() {
    let mut h = Harness::with(Config {
        auth_timeout: secs(5),
        ..Config::default()
    });
    let by_handshake = h.open_with_token("alice", None);
    let by_message = h.open_anonymous();
    h.set_time(secs(4));
    h.ask1(
        by_message,
        &json!({"type":"auth","token":token("bob")}).to_string(),
    );
    h.advance_to(secs(6));
    assert!(closes(&h.drain()).is_empty());
    assert!(h.is_open(by_handshake));
    assert!(h.is_open(by_message));
}

#[test]
fn auth_message_device_takes_precedence_over_handshake_and_token_device() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.device = Some("from-token".into());
    let conn = h
        .open(Handshake {
            device: Some("from-handshake".into()),
            ..Handshake::default()
        })
        .unwrap();
    let frame = json!({"type":"auth","token":token_with(&c),"deviceId":"from-message"});
    assert_eq!(h.ask1(conn, &frame.to_string())["type"], "auth_success");
    assert_eq!(
        h.sb.connection(conn).unwrap().device(),
        Some("from-message")
    );
}

#[test]
fn handshake_device_takes_precedence_over_token_device() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.device = Some("from-token".into());
    let by_handshake_token = h.open_with_claims(&c, Some("from-handshake"));
    assert_eq!(
        h.sb.connection(by_handshake_token).unwrap().device(),
        Some("from-handshake")
    );
    let conn = h
        .open(Handshake {
            device: Some("hs2".into()),
            ..Handshake::default()
        })
        .unwrap();
    let frame = json!({"type":"auth","token":token_with(&c)});
    assert_eq!(h.ask1(conn, &frame.to_string())["type"], "auth_success");
    assert_eq!(h.sb.connection(conn).unwrap().device(), Some("hs2"));
}

#[test]
fn token_device_is_used_when_no_other_is_given_and_none_means_no_device() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.device = Some("from-token".into());
    let with = h.open_with_claims(&c, None);
    assert_eq!(h.sb.connection(with).unwrap().device(), Some("from-token"));
    let without = h.open_with_token("bob", None);
    assert_eq!(h.sb.connection(without).unwrap().device(), None);
}

#[test]
fn device_precedence_is_observable_through_per_device_replacement() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.device = Some("tok".into());
    // Token "tok", handshake "hs", message "msg": known as "msg".
    let first = h
        .open(Handshake {
            device: Some("hs".into()),
            ..Handshake::default()
        })
        .unwrap();
    let frame = json!({"type":"auth","token":token_with(&c),"deviceId":"msg"}).to_string();
    h.ask1(first, &frame);
    // Token "tok", handshake "hs": known as "hs", so "msg" is not replaced.
    let second = h.open_with_claims(&c, Some("hs"));
    // Token "tok" alone: known as "tok", a third device.
    let third = h.open_with_claims(&c, None);
    assert!(closes(&h.drain()).is_empty());
    assert_eq!(h.sb.user_connections("alice"), &[first, second, third]);
    // A newcomer on "msg" replaces the first only.
    let fourth = h.open_anonymous();
    h.ask1(fourth, &frame);
    assert_eq!(
        closes(&h.drain()),
        vec![(first, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[second, third, fourth]);
}

// ---- token expiry while connected -------------------------------------------------------

#[test]
fn token_expiry_while_connected_closes_with_4003_at_exp() {
    let mut h = Harness::new();
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 + 10;
    let conn = h.open_with_claims(&c, None);
    h.drain();
    let deadline = ms(c.exp * 1000 - WALL0);
    h.advance_to(deadline - Duration::from_nanos(1));
    assert!(h.drain().is_empty());
    assert_eq!(h.sb.poll_timeout(), Some(Instant::ZERO + deadline));
    h.advance_to(deadline);
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 4003, "token expired".to_string())]
    );
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
    assert!(!h.is_open(conn));
}

#[test]
fn jwt_leeway_shifts_the_expiry_close_by_the_leeway() {
    let mut h = Harness::with(Config {
        jwt_leeway: secs(2),
        ..Config::default()
    });
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 + 10;
    let conn = h.open_with_claims(&c, None);
    h.drain();
    let deadline = ms(c.exp * 1000 + 2000 - WALL0);
    h.advance_to(deadline - Duration::from_nanos(1));
    assert!(h.drain().is_empty());
    h.advance_to(deadline);
    assert_eq!(
        closes(&h.drain()),
        vec![(conn, 4003, "token expired".to_string())]
    );
}

#[test]
fn jwt_leeway_admits_a_token_expired_less_than_the_leeway_ago() {
    let mut h = Harness::with(Config {
        jwt_leeway: secs(2),
        ..Config::default()
    });
    let mut c = claims("alice");
    c.exp = WALL0 / 1000 - 1; // 1.123 s ago
    let conn = h.open_with_claims(&c, None);
    assert!(h.is_open(conn));
    c.exp = WALL0 / 1000 - 2; // 2.123 s ago
    let err = h
        .open(Handshake {
            token: Some(token_with(&c)),
            ..Handshake::default()
        })
        .unwrap_err();
    assert_eq!(err, OpenError::InvalidToken(AuthError::Expired));
}

// ---- session policies -------------------------------------------------------------------

#[test]
fn per_device_is_the_default_session_policy() {
    assert_eq!(Config::default().session_policy, SessionPolicy::PerDevice);
}

#[test]
fn per_device_new_connection_on_the_same_device_replaces_the_old_with_4001() {
    let mut h = Harness::new();
    let phone = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    h.drain();
    let phone2 = h.open_with_token("alice", Some("phone"));
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(phone, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[laptop, phone2]);
    // Another user's same device name is another device.
    h.open_with_token("bob", Some("phone"));
    assert!(closes(&h.drain()).is_empty());
}

#[test]
fn single_policy_new_connection_replaces_every_other() {
    let mut h = Harness::with(Config {
        session_policy: SessionPolicy::Single,
        ..Config::default()
    });
    let a = h.open_with_token("alice", Some("phone"));
    h.drain();
    let b = h.open_with_token("alice", Some("laptop"));
    assert_eq!(
        closes(&h.drain()),
        vec![(a, 4001, "session replaced".to_string())]
    );
    let c = h.open_with_token("alice", None);
    assert_eq!(
        closes(&h.drain()),
        vec![(b, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[c]);
}

#[test]
fn multi_policy_allows_max_per_user_and_over_the_cap_replaces_the_oldest() {
    let mut h = Harness::with(Config {
        session_policy: SessionPolicy::Multi { max_per_user: 2 },
        ..Config::default()
    });
    let a = h.open_with_token("alice", Some("tab"));
    let b = h.open_with_token("alice", Some("tab"));
    assert!(closes(&h.drain()).is_empty(), "exactly the cap is allowed");
    let c = h.open_with_token("alice", None);
    assert_eq!(
        closes(&h.drain()),
        vec![(a, 4001, "session replaced".to_string())]
    );
    let d = h.open_with_token("alice", Some("other"));
    assert_eq!(
        closes(&h.drain()),
        vec![(b, 4001, "session replaced".to_string())]
    );
    assert_eq!(h.sb.user_connections("alice"), &[c, d]);
}

#[test]
fn replaced_connection_gets_exactly_one_close_4001_and_no_later_action() {
    let mut h = Harness::with(Config {
        ping_interval: secs(1),
        ..Config::default()
    });
    let old = h.open_with_token("alice", Some("phone"));
    h.subscribe(old, "chat.*");
    h.drain();
    let new = h.open_with_token("alice", Some("phone"));
    let mut actions = h.drain();
    assert_eq!(
        naming(&actions, old),
        vec![&Action::Close {
            conn: old,
            code: CloseCode::SESSION_REPLACED,
            reason: "session replaced".into()
        }]
    );
    // Nothing that follows names it.
    h.sb.send_to_user(h.now, "alice", &raw("1"));
    h.sb.broadcast(h.now, &raw("2"));
    h.sb.publish(h.now, "chat.a", &raw("3"), None).unwrap();
    h.frame(old, r#"{"type":"ping"}"#);
    h.sb.handle_backlog(h.now, old, usize::MAX);
    h.sb.disconnect_user(h.now, "bob", None, CloseCode::NORMAL, "x")
        .unwrap();
    h.advance(secs(3));
    h.sb.shutdown(h.now, h.now.instant);
    h.advance(secs(1));
    actions = h.drain();
    assert!(naming(&actions, old).is_empty(), "{actions:?}");
    assert!(!naming(&actions, new).is_empty());
    assert_eq!(h.sb.send_to_connection(h.now, old, &raw("1")), Err(Gone));
}

#[test]
fn replacement_emits_no_presence_action_and_no_presence_push() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "presence.alice");
    let star_watcher = h.open_with_token("watcher2", None);
    h.subscribe(star_watcher, "presence.*");
    h.open_with_token("alice", Some("phone"));
    h.drain();
    h.open_with_token("alice", Some("phone"));
    let actions = h.drain();
    assert_eq!(closes(&actions).len(), 1);
    assert!(presences(&actions).is_empty(), "{actions:?}");
    assert!(naming(&actions, watcher).is_empty());
    assert!(naming(&actions, star_watcher).is_empty());
    assert!(h.sb.is_online("alice"));
    assert_eq!(h.sb.user_connections("alice").len(), 1);
}

#[test]
fn per_device_never_replaces_connections_without_a_device() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("alice", None);
    let c = h.open_with_token("alice", Some("phone"));
    let d = h.open_with_token("alice", None);
    assert!(closes(&h.drain()).is_empty());
    assert_eq!(h.sb.user_connections("alice"), &[a, b, c, d]);
}

// ---- heartbeat ----------------------------------------------------------------------------

fn heartbeat_config() -> Config {
    Config {
        ping_interval: secs(1),
        pong_timeout: ms(2500),
        ..Config::default()
    }
}

#[test]
fn pings_are_sent_at_every_ping_interval() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_with_token("alice", None);
    h.drain();
    for n in 1..=10u64 {
        h.advance_to(secs(n) - Duration::from_nanos(1));
        assert!(pings(&h.drain()).is_empty(), "no ping before {n} s");
        h.advance_to(secs(n));
        assert_eq!(pings(&h.drain()), vec![conn], "one ping at {n} s");
        h.sb.handle_pong(h.now, conn);
    }
}

#[test]
fn connection_that_answers_pongs_is_never_evicted() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_with_token("alice", None);
    h.drain();
    for _ in 0..1000 {
        h.advance(ms(100));
        let actions = h.drain();
        assert!(evictions(&actions).is_empty());
        if !pings(&actions).is_empty() {
            h.sb.handle_pong(h.now, conn);
        }
    }
    assert!(h.is_open(conn));
}

#[test]
fn silent_connection_is_evicted_at_pong_timeout_and_not_one_nanosecond_before() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_with_token("alice", None);
    h.drain();
    let mut actions = Vec::new();
    for d in [secs(1), secs(2), ms(2500) - Duration::from_nanos(1)] {
        h.advance_to(d);
        actions.extend(h.drain());
    }
    assert!(evictions(&actions).is_empty());
    assert_eq!(pings(&actions), vec![conn, conn], "pinged, unanswered");
    assert!(h.is_open(conn));
    h.advance_to(ms(2500));
    let actions = h.drain();
    assert_eq!(evictions(&actions), vec![conn]);
    assert!(closes(&actions).is_empty(), "a zombie gets no close frame");
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
    assert!(!h.is_open(conn));
    assert_eq!(h.sb.stats().evicted_total, 1);
}

#[test]
fn zombie_is_evicted_by_the_first_handle_timeout_after_its_deadline() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_anonymous();
    h.advance_to(secs(7));
    let actions = h.drain();
    assert_eq!(evictions(&actions), vec![conn]);
    assert_eq!(actions.len(), 1, "{actions:?}");
}

#[test]
fn any_frame_counts_as_a_sign_of_life() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_with_token("alice", None);
    h.set_time(secs(2));
    // Even a frame that is answered with an error.
    h.sb.handle_frame(h.now, conn, Frame::Binary(b"\x00"));
    h.advance_to(ms(4500) - Duration::from_nanos(1));
    assert!(evictions(&h.drain()).is_empty());
    assert!(h.is_open(conn));
    h.advance_to(ms(4500));
    assert_eq!(evictions(&h.drain()), vec![conn]);
}

#[test]
fn a_websocket_pong_counts_as_a_sign_of_life() {
    let mut h = Harness::with(heartbeat_config());
    let conn = h.open_with_token("alice", None);
    h.set_time(secs(2));
    h.sb.handle_pong(h.now, conn);
    h.advance_to(ms(4500) - Duration::from_nanos(1));
    assert!(evictions(&h.drain()).is_empty());
    h.advance_to(ms(4500));
    assert_eq!(evictions(&h.drain()), vec![conn]);
}

#[test]
fn poll_timeout_returns_the_next_due_instant() {
    let mut h = Harness::with(Config {
        ping_interval: secs(1),
        pong_timeout: ms(2500),
        auth_timeout: ms(700),
        ..Config::default()
    });
    assert_eq!(
        h.sb.poll_timeout(),
        None,
        "nothing to do without connections"
    );
    h.open_with_token("alice", None);
    assert_eq!(h.sb.poll_timeout(), Some(Instant::ZERO + secs(1)));
    h.set_time(ms(100));
    h.open_anonymous();
    assert_eq!(h.sb.poll_timeout(), Some(Instant::ZERO + ms(800)));
    h.advance_to(ms(800));
    assert_eq!(closes(&h.drain()).len(), 1);
    assert_eq!(h.sb.poll_timeout(), Some(Instant::ZERO + secs(1)));
    h.advance_to(secs(1));
    assert_eq!(h.sb.poll_timeout(), Some(Instant::ZERO + secs(2)));
}

#[test]
fn handle_timeout_before_the_next_deadline_is_a_no_op() {
    let mut h = Harness::with(heartbeat_config());
    h.open_with_token("alice", None);
    h.open_anonymous();
    h.drain();
    let due = h.sb.poll_timeout().unwrap();
    for d in [ms(1), ms(500), secs(1) - Duration::from_nanos(1)] {
        h.advance_to(d);
        assert!(h.drain().is_empty());
        assert_eq!(h.sb.poll_timeout(), Some(due));
    }
}

// ---- presence -----------------------------------------------------------------------------

#[test]
fn presence_action_on_first_connection_and_on_last_disconnect_only() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", Some("phone"));
    assert_eq!(presences(&h.drain()), vec![("alice".to_string(), true, 1)]);
    let b = h.open_with_token("alice", Some("laptop"));
    assert!(presences(&h.drain()).is_empty());
    // An unauthenticated connection is no presence.
    let anon = h.open_anonymous();
    h.close(anon);
    h.close(a);
    assert!(presences(&h.drain()).is_empty());
    h.close(b);
    assert_eq!(presences(&h.drain()), vec![("alice".to_string(), false, 0)]);
}

#[test]
fn presence_subscriber_gets_a_push_on_every_count_change() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "presence.alice");
    h.sent_to(watcher);
    let push = |online: bool, n: usize| json!({"type":"presence","userId":"alice","online":online,"connections":n,"timestamp":TS0});
    let a = h.open_with_token("alice", Some("phone"));
    assert_eq!(h.sent_to(watcher), vec![push(true, 1)]);
    let b = h.open_with_token("alice", Some("laptop"));
    assert_eq!(h.sent_to(watcher), vec![push(true, 2)]);
    h.close(a);
    assert_eq!(h.sent_to(watcher), vec![push(true, 1)]);
    h.close(b);
    assert_eq!(h.sent_to(watcher), vec![push(false, 0)]);
    // Other users' changes are not pushed to it.
    h.open_with_token("bob", None);
    assert!(h.sent_to(watcher).is_empty());
}

#[test]
fn presence_wildcard_subscriber_gets_pushes_but_no_snapshot() {
    let mut h = Harness::new();
    h.open_with_token("alice", None);
    let watcher = h.open_with_token("watcher", None);
    h.drain();
    let replies = h.ask(watcher, r#"{"type":"subscribe","topic":"presence.*"}"#);
    assert_eq!(
        replies,
        vec![json!({"type":"subscribed","topic":"presence.*","timestamp":TS0})]
    );
    h.open_with_token("bob", None);
    assert_eq!(
        h.sent_to(watcher),
        vec![
            json!({"type":"presence","userId":"bob","online":true,"connections":1,"timestamp":TS0})
        ]
    );
}

#[test]
fn subscribing_to_a_concrete_presence_topic_sends_a_snapshot_right_after_subscribed() {
    let mut h = Harness::new();
    h.open_with_token("alice", Some("phone"));
    h.open_with_token("alice", Some("laptop"));
    let watcher = h.open_with_token("watcher", None);
    h.drain();
    let replies = h.ask(
        watcher,
        r#"{"type":"subscribe","topic":"presence.alice","id":"s"}"#,
    );
    assert_eq!(
        replies,
        vec![
            json!({"type":"subscribed","topic":"presence.alice","id":"s","timestamp":TS0}),
            json!({"type":"presence","userId":"alice","online":true,"connections":2,"timestamp":TS0}),
        ]
    );
}

#[test]
fn snapshot_of_an_offline_user_says_offline_with_zero_connections() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(watcher, r#"{"type":"subscribe","topic":"presence.nobody"}"#);
    assert_eq!(
        replies,
        vec![
            json!({"type":"subscribed","topic":"presence.nobody","timestamp":TS0}),
            json!({"type":"presence","userId":"nobody","online":false,"connections":0,"timestamp":TS0}),
        ]
    );
}

#[test]
fn presence_topic_percent_encodes_the_user_id() {
    assert_eq!(
        presence_topic("alice@example.com").as_str(),
        "presence.alice@example%2Ecom"
    );
    assert_eq!(presence_topic("a b/c").as_str(), "presence.a%20b%2Fc");
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(
        watcher,
        r#"{"type":"subscribe","topic":"presence.alice@example%2Ecom"}"#,
    );
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1]["userId"], "alice@example.com");
    h.open_with_token("alice@example.com", None);
    let pushes = h.sent_to(watcher);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["userId"], "alice@example.com", "plain, unencoded");
    assert_eq!(pushes[0]["online"], true);
}

#[test]
fn presence_topic_of_a_128_byte_user_id_made_of_escaped_bytes_can_be_subscribed() {
    let mut h = Harness::new();
    let user = ".".repeat(128);
    let topic = presence_topic(&user);
    assert_eq!(topic.as_str().len(), "presence.".len() + 384);
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(
        watcher,
        &json!({"type":"subscribe","topic":topic.as_str()}).to_string(),
    );
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0]["type"], "subscribed");
    assert_eq!(replies[1]["userId"], user.as_str());
    h.open_with_token(&user, None);
    let pushes = h.sent_to(watcher);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["online"], true);
}

#[test]
fn publishing_to_a_presence_topic_is_error_403() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.subscribe(conn, "presence.*");
    h.drain();
    let reply = h.ask1(
        conn,
        r#"{"type":"message","topic":"presence.alice","data":{"online":false},"id":"p"}"#,
    );
    assert_error(&reply, 403, "presence");
    assert_eq!(reply["id"], "p");
    assert_eq!(
        h.sb.publish(h.now, "presence.alice", &raw("1"), None),
        Err(PublishError::ReservedTopic)
    );
    assert!(h.drain().is_empty());
}

// ---- topics -------------------------------------------------------------------------------

/// Subscribes a fresh connection to `pattern` and reports which of `topics` reach it.
fn reached(pattern: &str, topics: &[&str]) -> Vec<String> {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, pattern);
    let publisher = h.open_with_token("pub", None);
    for topic in topics {
        h.publish(publisher, topic, "1");
    }
    h.sent_to(sub)
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| m["topic"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn single_star_matches_exactly_one_segment() {
    assert_eq!(
        reached(
            "chat.*",
            &["chat.a", "chat.a.b", "chat", "other.a", "chat.b"]
        ),
        ["chat.a", "chat.b"]
    );
    assert_eq!(
        reached("*.x", &["a.x", "b.x", "a.y", "x", "a.b.x"]),
        ["a.x", "b.x"]
    );
}

#[test]
fn double_star_matches_one_or_more_trailing_segments() {
    assert_eq!(
        reached(
            "chat.**",
            &["chat.a", "chat.a.b", "chat", "chat.a.b.c", "other.a"]
        ),
        ["chat.a", "chat.a.b", "chat.a.b.c"]
    );
    assert_eq!(reached("**", &["a", "a.b.c"]), ["a", "a.b.c"]);
}

#[test]
fn connection_with_two_matching_patterns_gets_the_message_once() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    for p in ["chat.*", "chat.**", "chat.a", "*.a"] {
        h.subscribe(sub, p);
    }
    let publisher = h.open_with_token("pub", None);
    h.publish(publisher, "chat.a", "1");
    assert_eq!(h.sent_to(sub).len(), 1);
}

#[test]
fn sender_receives_its_own_message_through_its_subscription() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.subscribe(conn, "chat.*");
    let replies = h.ask(
        conn,
        r#"{"type":"message","topic":"chat.a","data":"hi","id":"7"}"#,
    );
    assert_eq!(
        replies,
        vec![
            json!({"type":"ack","id":"7","timestamp":TS0}),
            json!({"type":"message","topic":"chat.a","data":"hi",
                   "metadata":{"senderId":"alice"},"timestamp":TS0}),
        ]
    );
}

#[test]
fn message_metadata_sender_id_is_set_by_the_server_overriding_the_clients() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, "chat.a");
    let alice = h.open_with_token("alice", None);
    h.frame(
        alice,
        r#"{"type":"message","topic":"chat.a","data":{"n":1.50,"big":12345678901234567890},"metadata":{"senderId":"mallory","k":[1, 2]}}"#,
    );
    let got = h.sent_raw(sub);
    assert_eq!(got.len(), 1);
    let msg: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(msg["metadata"], json!({"k":[1,2],"senderId":"alice"}));
    // Numbers exactly as sent.
    assert!(
        got[0].contains(r#""data":{"n":1.50,"big":12345678901234567890}"#),
        "{}",
        got[0]
    );
    assert_eq!(got[0].matches("senderId").count(), 1);
    // Without client metadata, the server's senderId alone.
    h.publish(alice, "chat.a", "null");
    let msg = &h.sent_to(sub)[0];
    assert_eq!(msg["metadata"], json!({"senderId":"alice"}));
    assert_eq!(msg["data"], Value::Null);
}

#[test]
fn client_id_is_not_forwarded_to_subscribers() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, "chat.a");
    let alice = h.open_with_token("alice", None);
    h.frame(
        alice,
        r#"{"type":"message","topic":"chat.a","data":1,"id":"secret-id"}"#,
    );
    let msg = &h.sent_to(sub)[0];
    assert_eq!(msg["type"], "message");
    assert!(msg.get("id").is_none(), "{msg}");
}

#[test]
fn ack_is_sent_only_when_the_message_has_an_id() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    assert!(h
        .ask(alice, r#"{"type":"message","topic":"chat.a","data":1}"#)
        .is_empty());
    let reply = h.ask1(
        alice,
        r#"{"type":"message","topic":"chat.a","data":1,"id":"9"}"#,
    );
    assert_eq!(reply, json!({"type":"ack","id":"9","timestamp":TS0}));
}

#[test]
fn publishing_to_a_wildcard_topic_is_error_400() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    h.subscribe(alice, "**");
    for topic in ["chat.*", "chat.**", "**"] {
        let frame = json!({"type":"message","topic":topic,"data":1,"id":"w"}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_error(&reply, 400, "wildcard");
        assert_eq!(reply["id"], "w");
    }
    assert!(matches!(
        h.sb.publish(h.now, "chat.*", &raw("1"), None),
        Err(PublishError::InvalidTopic(_))
    ));
}

#[test]
fn invalid_topic_is_error_400_naming_the_problem() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let seventeen = vec!["s"; 17].join(".");
    let long_segment = "x".repeat(129);
    let cases = [
        ("", "empty"),
        ("chat..a", "segment 2 is empty"),
        ("chat.a b", "invalid character ' '"),
        (seventeen.as_str(), "17 segments"),
        (long_segment.as_str(), "at most 128"),
        ("chat.a*", "`*` must be a whole segment"),
        ("chat.**.a", "`**` is only allowed as the last segment"),
    ];
    for (topic, names) in cases {
        for ty in ["subscribe", "unsubscribe"] {
            let frame = json!({"type":ty,"topic":topic}).to_string();
            assert_error(&h.ask1(alice, &frame), 400, names);
        }
        let frame = json!({"type":"message","topic":topic,"data":1}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_eq!(reply["code"], 400, "{topic}: {reply}");
    }
    // Exactly 16 segments and 128 characters are fine.
    h.subscribe(alice, &vec!["s"; 16].join("."));
    h.subscribe(alice, &"x".repeat(128));
}

#[test]
fn unsubscribing_a_pattern_not_held_is_error_404() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.a","id":"u"}"#);
    assert_error(&reply, 404, "not subscribed");
    assert_eq!(reply["id"], "u");
    // A matching but different pattern is not the one held.
    h.subscribe(alice, "chat.*");
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.a"}"#);
    assert_error(&reply, 404, "not subscribed");
}

#[test]
fn unsubscribe_replies_unsubscribed_and_stops_delivery() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    h.subscribe(alice, "chat.*");
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*","id":"u"}"#);
    assert_eq!(
        reply,
        json!({"type":"unsubscribed","topic":"chat.*","id":"u","timestamp":TS0})
    );
    assert_eq!(h.sb.publish(h.now, "chat.a", &raw("1"), None), Ok(0));
    assert!(h.sent_to(alice).is_empty());
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*"}"#);
    assert_error(&reply, 404, "not subscribed");
}

#[test]
fn resubscribing_a_held_pattern_replies_subscribed_again_without_duplicate_delivery() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let first = h.ask1(alice, r#"{"type":"subscribe","topic":"chat.*","id":"1"}"#);
    let again = h.ask1(alice, r#"{"type":"subscribe","topic":"chat.*","id":"2"}"#);
    assert_eq!(
        first,
        json!({"type":"subscribed","topic":"chat.*","id":"1","timestamp":TS0})
    );
    assert_eq!(
        again,
        json!({"type":"subscribed","topic":"chat.*","id":"2","timestamp":TS0})
    );
    assert_eq!(h.sb.publish(h.now, "chat.a", &raw("1"), None), Ok(1));
    assert_eq!(h.sent_to(alice).len(), 1);
    assert_eq!(h.sb.stats().subscriptions, 1);
    // One unsubscribe drops it.
    h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*"}"#);
    assert_eq!(h.sb.publish(h.now, "chat.a", &raw("1"), None), Ok(0));
}

fn topics_claims(user: &str, topics: &[&str]) -> Claims {
    Claims {
        topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        ..claims(user)
    }
}

#[test]
fn token_topics_claim_refuses_a_subscribe_outside_it_with_403() {
    let mut h = Harness::new();
    let alice = h.open_with_claims(&topics_claims("alice", &["chat.*"]), None);
    for pattern in ["news.a", "chat.**", "**", "chat.a.b", "presence.bob"] {
        let frame = json!({"type":"subscribe","topic":pattern,"id":"s"}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_error(&reply, 403, "not allowed");
        assert_eq!(reply["id"], "s");
    }
    assert!(h
        .sb
        .connection(alice)
        .unwrap()
        .subscriptions()
        .next()
        .is_none());
}

#[test]
fn token_topics_claim_refuses_a_publish_outside_it_with_403() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "news.**");
    h.subscribe(watcher, "chat.**");
    let alice = h.open_with_claims(&topics_claims("alice", &["chat.*"]), None);
    let reply = h.ask1(
        alice,
        r#"{"type":"message","topic":"news.a","data":1,"id":"m"}"#,
    );
    assert_error(&reply, 403, "not allowed");
    assert_eq!(reply["id"], "m");
    let reply = h.ask1(alice, r#"{"type":"message","topic":"chat.a.b","data":1}"#);
    assert_error(&reply, 403, "not allowed");
    assert!(h.sent_to(watcher).is_empty(), "nothing was published");
    h.publish(alice, "chat.a", "1");
    assert_eq!(h.sent_to(watcher).len(), 1);
}

#[test]
fn token_topics_claim_allows_covered_wildcards() {
    let mut h = Harness::new();
    let claims = topics_claims("alice", &["chat.**", "presence.*", "a.*.c"]);
    let alice = h.open_with_claims(&claims, None);
    for pattern in [
        "chat.a",
        "chat.*",
        "chat.**",
        "chat.a.**",
        "chat.*.b",
        "presence.bob",
        "presence.*",
        "a.b.c",
        "a.*.c",
    ] {
        let frame = json!({"type":"subscribe","topic":pattern}).to_string();
        let replies = h.ask(alice, &frame);
        assert_eq!(replies[0]["type"], "subscribed", "{pattern}: {replies:?}");
    }
    for pattern in ["chat", "**", "a.*.*", "a.b.**"] {
        let frame = json!({"type":"subscribe","topic":pattern}).to_string();
        assert_error(&h.ask1(alice, &frame), 403, "not allowed");
    }
    let replies = h.ask(
        alice,
        r#"{"type":"message","topic":"chat.x.y","data":1,"id":"1"}"#,
    );
    assert_eq!(replies[0]["type"], "ack");
}

#[test]
fn max_subscriptions_allows_exactly_the_limit_then_refuses_with_429() {
    let mut h = Harness::with(Config {
        max_subscriptions: 3,
        ..Config::default()
    });
    let alice = h.open_with_token("alice", None);
    for p in ["a", "b", "c"] {
        h.subscribe(alice, p);
    }
    let reply = h.ask1(alice, r#"{"type":"subscribe","topic":"d","id":"4"}"#);
    assert_error(&reply, 429, "too many subscriptions");
    assert_eq!(reply["id"], "4");
    // Re-subscribing a held pattern at the limit is still fine.
    h.subscribe(alice, "b");
    assert_eq!(h.sb.connection(alice).unwrap().subscriptions().count(), 3);
    // Freeing one makes room for one.
    h.ask1(alice, r#"{"type":"unsubscribe","topic":"a"}"#);
    h.subscribe(alice, "d");
    assert_error(
        &h.ask1(alice, r#"{"type":"subscribe","topic":"e"}"#),
        429,
        "too many",
    );
    // The limit is per connection.
    let other = h.open_with_token("alice", None);
    h.subscribe(other, "e");
}

#[test]
fn all_recipients_of_one_message_share_the_same_payload_bytes() {
    let mut h = Harness::new();
    let conns: Vec<ConnId> = (0..4)
        .map(|i| {
            let c = h.open_with_token(&format!("u{i}"), None);
            h.subscribe(c, if i % 2 == 0 { "chat.*" } else { "chat.**" });
            c
        })
        .collect();
    h.drain();
    let check = |actions: Vec<Action>, expected: usize| {
        let payloads: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(payloads.len(), expected);
        assert!(payloads.iter().all(|p| p.as_ptr() == payloads[0].as_ptr()));
    };
    h.publish(conns[0], "chat.a", r#"{"x":1}"#);
    check(h.drain(), 4);
    h.sb.publish(h.now, "chat.a", &raw("1"), None).unwrap();
    check(h.drain(), 4);
    h.sb.broadcast(h.now, &raw("1"));
    check(h.drain(), 4);
    h.sb.send_to_users(h.now, ["u0", "u1", "u2"], &raw("1"));
    check(h.drain(), 3);
}

// ---- protocol errors ----------------------------------------------------------------------

#[test]
fn binary_frame_is_error_400_and_the_connection_stays_open() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    h.sb.handle_frame(h.now, conn, Frame::Binary(br#"{"type":"ping"}"#));
    let replies = h.sent_to(conn);
    assert_eq!(replies.len(), 1);
    assert_error(&replies[0], 400, "binary");
    assert!(h.drain().is_empty());
    assert!(h.is_open(conn));
}

#[test]
fn invalid_json_is_error_400() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    for frame in ["{", "not json", r#"{"type":"ping",}"#, ""] {
        assert_error(&h.ask1(conn, frame), 400, "invalid JSON");
    }
    assert!(h.is_open(conn));
}

#[test]
fn non_object_json_is_error_400() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    for frame in ["[1,2]", r#""ping""#, "null", "42", "true"] {
        assert_error(&h.ask1(conn, frame), 400, "JSON object");
    }
    assert!(h.is_open(conn));
}

#[test]
fn unknown_type_is_error_400_naming_it() {
    let mut h = Harness::new();
    for authenticated in [false, true] {
        let conn = if authenticated {
            h.open_with_token("alice", None)
        } else {
            h.open_anonymous()
        };
        let reply = h.ask1(conn, r#"{"type":"teleport","id":"t"}"#);
        assert_error(&reply, 400, "teleport");
        assert_eq!(reply["id"], "t");
    }
}

#[test]
fn missing_or_mistyped_field_is_error_400_naming_it() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    let cases = [
        (r#"{"id":"1"}"#, "type"),
        (r#"{"type":7}"#, "type"),
        (r#"{"type":"subscribe"}"#, "topic"),
        (r#"{"type":"subscribe","topic":3}"#, "topic"),
        (r#"{"type":"unsubscribe"}"#, "topic"),
        (r#"{"type":"message","topic":"a"}"#, "data"),
        (r#"{"type":"message","data":1}"#, "topic"),
        (
            r#"{"type":"message","topic":"a","data":1,"metadata":[]}"#,
            "metadata",
        ),
        (
            r#"{"type":"message","topic":"a","data":1,"metadata":null}"#,
            "metadata",
        ),
    ];
    for (frame, field) in cases {
        let reply = h.ask1(conn, frame);
        assert_error(&reply, 400, field);
    }
    assert!(h.is_open(conn));
}

#[test]
fn id_of_64_bytes_is_echoed_and_65_bytes_is_error_400_without_id() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    let id64 = "i".repeat(64);
    let reply = h.ask1(conn, &json!({"type":"ping","id":id64}).to_string());
    assert_eq!(reply, json!({"type":"pong","id":id64,"timestamp":TS0}));
    // Bytes, not characters: 32 two-byte characters are 64 bytes.
    let wide64 = "é".repeat(32);
    let reply = h.ask1(conn, &json!({"type":"ping","id":wide64}).to_string());
    assert_eq!(reply["id"], wide64.as_str());
    let wide66 = "é".repeat(33);
    let reply = h.ask1(conn, &json!({"type":"ping","id":wide66}).to_string());
    assert_error(&reply, 400, "id");
    assert!(reply.get("id").is_none(), "{reply}");
    let id65 = "i".repeat(65);
    let reply = h.ask1(conn, &json!({"type":"ping","id":id65}).to_string());
    assert_error(&reply, 400, "id");
    assert!(reply.get("id").is_none(), "{reply}");
    // Not a string: refused the same way.
    for bad in [r#"{"type":"ping","id":5}"#, r#"{"type":"ping","id":null}"#] {
        let reply = h.ask1(conn, bad);
        assert_error(&reply, 400, "id");
        assert!(reply.get("id").is_none(), "{reply}");
    }
}

#[test]
fn every_direct_reply_echoes_the_id() {
    let mut h = Harness::with(Config {
        max_subscriptions: 1,
        ..Config::default()
    });
    let anon = h.open_anonymous();
    let alice = h.open_with_token("alice", None);
    let cases: Vec<(ConnId, String, &str)> = vec![
        (anon, r#"{"type":"ping","id":"X"}"#.into(), "pong"),
        (
            anon,
            r#"{"type":"subscribe","topic":"a","id":"X"}"#.into(),
            "error",
        ),
        (
            anon,
            r#"{"type":"auth","token":"bad","id":"X"}"#.into(),
            "auth_error",
        ),
        (anon, r#"{"type":"auth","id":"X"}"#.into(), "error"),
        (
            anon,
            json!({"type":"auth","token":token("bob"),"id":"X"}).to_string(),
            "auth_success",
        ),
        (
            alice,
            json!({"type":"auth","token":token("alice"),"id":"X"}).to_string(),
            "error",
        ),
        (
            alice,
            r#"{"type":"subscribe","topic":"a","id":"X"}"#.into(),
            "subscribed",
        ),
        (
            alice,
            r#"{"type":"subscribe","topic":"b","id":"X"}"#.into(),
            "error",
        ),
        (
            alice,
            r#"{"type":"subscribe","topic":"a..b","id":"X"}"#.into(),
            "error",
        ),
        (
            alice,
            r#"{"type":"unsubscribe","topic":"b","id":"X"}"#.into(),
            "error",
        ),
        (
            alice,
            r#"{"type":"unsubscribe","topic":"a","id":"X"}"#.into(),
            "unsubscribed",
        ),
        (
            alice,
            r#"{"type":"message","topic":"a","data":1,"id":"X"}"#.into(),
            "ack",
        ),
        (
            alice,
            r#"{"type":"message","topic":"a.*","data":1,"id":"X"}"#.into(),
            "error",
        ),
        (
            alice,
            r#"{"type":"message","topic":"presence.a","data":1,"id":"X"}"#.into(),
            "error",
        ),
        (alice, r#"{"type":"message","id":"X"}"#.into(), "error"),
        (alice, r#"{"type":"nope","id":"X"}"#.into(), "error"),
    ];
    for (conn, frame, ty) in cases {
        let reply = h.ask1(conn, &frame);
        assert_eq!(reply["type"], ty, "{frame}: {reply}");
        assert_eq!(reply["id"], "X", "{frame}: {reply}");
        assert_timestamp_format(reply["timestamp"].as_str().unwrap());
    }
}

#[test]
fn every_server_message_carries_a_millisecond_utc_timestamp() {
    let mut h = Harness::new();
    h.set_time(Duration::from_millis(61_877)); // wall 10:01:02.000
    let conn = h.open_with_token("alice", None);
    let reply = h.ask1(conn, r#"{"type":"ping"}"#);
    assert_eq!(reply["timestamp"], "2026-11-23T10:01:02.000Z");
    h.set_time(Duration::from_millis(61_877 + 7));
    let reply = h.ask1(conn, r#"{"type":"ping"}"#);
    assert_eq!(reply["timestamp"], "2026-11-23T10:01:02.007Z");
}

// ---- limits -------------------------------------------------------------------------------

/// A ping frame padded with whitespace to exactly `len` bytes.
fn ping_of_len(len: usize) -> String {
    let base = r#"{"type":"ping"}"#;
    format!("{base}{}", " ".repeat(len - base.len()))
}

#[test]
fn message_of_exactly_max_message_bytes_is_accepted_and_one_byte_more_closes_1009() {
    let mut h = Harness::with(Config {
        max_message_bytes: 256,
        ..Config::default()
    });
    let conn = h.open_with_token("alice", None);
    h.drain();
    let frame = ping_of_len(256);
    assert_eq!(frame.len(), 256);
    assert_eq!(h.ask1(conn, &frame)["type"], "pong");
    h.frame(conn, &ping_of_len(257));
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 1009, "message too big".to_string())]
    );
    assert!(!h.is_open(conn));
    // Binary frames are measured the same way.
    let other = h.open_with_token("bob", None);
    h.drain();
    h.sb.handle_frame(h.now, other, Frame::Binary(&[0; 257]));
    assert_eq!(closes(&h.drain())[0].1, 1009);
}

#[test]
fn message_too_big_violation_closes_1009() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    h.sb.handle_violation(h.now, conn, Violation::MessageTooBig);
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 1009, "message too big".to_string())]
    );
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
}

#[test]
fn invalid_utf8_violation_closes_1007() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    h.sb.handle_violation(h.now, conn, Violation::InvalidUtf8);
    assert_eq!(
        closes(&h.drain()),
        vec![(conn, 1007, "invalid utf-8".to_string())]
    );
    assert!(!h.is_open(conn));
}

fn rate_config() -> Config {
    Config {
        max_messages_per_sec: 2,
        message_burst: 5,
        ..Config::default()
    }
}

#[test]
fn rate_limit_allows_exactly_burst_frames_at_one_instant_then_closes_4029() {
    let mut h = Harness::with(rate_config());
    let conn = h.open_with_token("alice", None);
    h.drain();
    for _ in 0..5 {
        assert_eq!(h.ask1(conn, r#"{"type":"ping"}"#)["type"], "pong");
    }
    h.frame(conn, r#"{"type":"ping"}"#);
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 4029, "rate limit exceeded".to_string())]
    );
    assert_eq!(actions.len(), 2, "close and presence only: {actions:?}");
    assert!(!h.is_open(conn));
}

#[test]
fn every_data_frame_counts_toward_the_rate_limit_even_unauthenticated_ones() {
    let mut h = Harness::with(rate_config());
    let conn = h.open_anonymous();
    h.frame(conn, "garbage");
    h.sb.handle_frame(h.now, conn, Frame::Binary(b"x"));
    h.frame(conn, r#"{"type":"subscribe","topic":"a"}"#);
    h.frame(conn, r#"{"type":"auth","token":"bad"}"#);
    h.frame(conn, r#"{"type":"ping"}"#);
    assert!(closes(&h.drain()).is_empty());
    h.frame(conn, r#"{"type":"ping"}"#);
    assert_eq!(closes(&h.drain())[0].1, 4029);
}

#[test]
fn websocket_pongs_do_not_count_toward_the_rate_limit() {
    let mut h = Harness::with(rate_config());
    let conn = h.open_with_token("alice", None);
    for _ in 0..100 {
        h.sb.handle_pong(h.now, conn);
    }
    for _ in 0..5 {
        assert_eq!(h.ask1(conn, r#"{"type":"ping"}"#)["type"], "pong");
    }
}

#[test]
fn rate_limit_tokens_refill_at_max_messages_per_sec() {
    let mut h = Harness::with(rate_config());
    let early = h.open_with_token("early", None);
    let on_time = h.open_with_token("on-time", None);
    h.drain();
    for conn in [early, on_time] {
        for _ in 0..5 {
            h.frame(conn, r#"{"type":"ping"}"#);
        }
    }
    h.drain();
    // At 2 per second, one token comes back after 500 ms, not a nanosecond sooner.
    h.set_time(ms(500) - Duration::from_nanos(1));
    h.frame(early, r#"{"type":"ping"}"#);
    assert_eq!(
        closes(&h.drain())[0],
        (early, 4029, "rate limit exceeded".into())
    );
    h.set_time(ms(500));
    assert_eq!(h.ask1(on_time, r#"{"type":"ping"}"#)["type"], "pong");
    h.frame(on_time, r#"{"type":"ping"}"#);
    assert_eq!(closes(&h.drain())[0].0, on_time);
}

#[test]
fn rate_limit_refill_never_exceeds_the_burst() {
    let mut h = Harness::with(rate_config());
    let conn = h.open_with_token("alice", None);
    h.drain();
    h.set_time(secs(3600));
    for _ in 0..5 {
        assert_eq!(h.ask1(conn, r#"{"type":"ping"}"#)["type"], "pong");
    }
    h.frame(conn, r#"{"type":"ping"}"#);
    assert_eq!(closes(&h.drain())[0].1, 4029);
}

#[test]
fn max_messages_per_sec_of_zero_disables_the_rate_limit() {
    let mut h = Harness::with(Config {
        max_messages_per_sec: 0,
        message_burst: 1,
        ..Config::default()
    });
    let conn = h.open_with_token("alice", None);
    for _ in 0..1000 {
        h.frame(conn, r#"{"type":"ping"}"#);
    }
    assert!(closes(&h.drain()).is_empty());
    assert!(h.is_open(conn));
}

#[test]
fn backlog_of_exactly_max_outbound_bytes_is_ok_and_one_more_closes_4009() {
    let mut h = Harness::with(Config {
        max_outbound_bytes: 4096,
        ..Config::default()
    });
    let conn = h.open_with_token("alice", None);
    h.drain();
    h.sb.handle_backlog(h.now, conn, 0);
    h.sb.handle_backlog(h.now, conn, 4096);
    assert!(h.drain().is_empty());
    assert!(h.is_open(conn));
    h.sb.handle_backlog(h.now, conn, 4097);
    let actions = h.drain();
    assert_eq!(
        closes(&actions),
        vec![(conn, 4009, "slow consumer".to_string())]
    );
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
    assert!(!h.is_open(conn));
}

// ---- application commands -----------------------------------------------------------------

#[test]
fn send_to_connection_pushes_data_and_a_closed_connection_is_gone() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    assert_eq!(
        h.sb.send_to_connection(h.now, conn, &raw(r#"{"n":1.0}"#)),
        Ok(())
    );
    assert_eq!(
        h.sent_raw(conn),
        vec![format!(
            r#"{{"type":"push","data":{{"n":1.0}},"timestamp":"{TS0}"}}"#
        )]
    );
    h.close(conn);
    h.drain();
    assert_eq!(h.sb.send_to_connection(h.now, conn, &raw("1")), Err(Gone));
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_device_reaches_only_that_devices_connections() {
    let mut h = Harness::with(Config {
        session_policy: SessionPolicy::Multi { max_per_user: 16 },
        ..Config::default()
    });
    let p1 = h.open_with_token("alice", Some("phone"));
    let p2 = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    let bobs = h.open_with_token("bob", Some("phone"));
    h.drain();
    assert_eq!(h.sb.send_to_device(h.now, "alice", "phone", &raw("1")), 2);
    assert_eq!(h.sent_to(p1).len(), 1);
    assert_eq!(h.sent_to(p2).len(), 1);
    assert!(h.sent_to(laptop).is_empty());
    assert!(h.sent_to(bobs).is_empty());
    assert_eq!(h.sb.send_to_device(h.now, "alice", "tablet", &raw("1")), 0);
    assert_eq!(h.sb.send_to_device(h.now, "carol", "phone", &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_user_reaches_every_authenticated_connection_of_the_user() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", Some("phone"));
    let b = h.open_with_token("alice", None);
    let bob = h.open_with_token("bob", None);
    h.drain();
    assert_eq!(h.sb.send_to_user(h.now, "alice", &raw(r#""hi""#)), 2);
    for conn in [a, b] {
        assert_eq!(
            h.sent_to(conn),
            vec![json!({"type":"push","data":"hi","timestamp":TS0})]
        );
    }
    assert!(h.sent_to(bob).is_empty());
    assert_eq!(h.sb.send_to_user(h.now, "nobody", &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn send_to_users_reaches_a_user_listed_twice_once_and_counts_connections() {
    let mut h = Harness::new();
    let a1 = h.open_with_token("alice", Some("phone"));
    let a2 = h.open_with_token("alice", Some("laptop"));
    let b = h.open_with_token("bob", None);
    let c = h.open_with_token("carol", None);
    h.drain();
    let n =
        h.sb.send_to_users(h.now, ["alice", "bob", "alice", "nobody"], &raw("1"));
    assert_eq!(n, 3);
    for conn in [a1, a2, b] {
        assert_eq!(h.sent_to(conn).len(), 1);
    }
    assert!(h.sent_to(c).is_empty());
    assert_eq!(h.sb.send_to_users(h.now, [], &raw("1")), 0);
    assert!(h.drain().is_empty());
}

#[test]
fn broadcast_reaches_authenticated_connections_only() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("bob", None);
    let anon = h.open_anonymous();
    assert_eq!(h.sb.broadcast(h.now, &raw("[1]")), 2);
    for conn in [a, b] {
        assert_eq!(
            h.sent_to(conn),
            vec![json!({"type":"push","data":[1],"timestamp":TS0})]
        );
    }
    assert!(h.sent_to(anon).is_empty());
}

#[test]
fn app_publish_sets_sender_id_server_keeps_metadata_and_counts_recipients() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    h.subscribe(a, "chat.*");
    let b = h.open_with_token("bob", None);
    h.subscribe(b, "chat.room");
    let c = h.open_with_token("carol", None);
    h.subscribe(c, "news.*");
    let n =
        h.sb.publish(
            h.now,
            "chat.room",
            &raw(r#"{"x":1}"#),
            Some(&raw(r#"{"senderId":"spoof","m":true}"#)),
        )
        .unwrap();
    assert_eq!(n, 2);
    let expected = json!({"type":"message","topic":"chat.room","data":{"x":1},
        "metadata":{"m":true,"senderId":"server"},"timestamp":TS0});
    assert_eq!(h.sent_to(a), vec![expected.clone()]);
    assert_eq!(h.sent_to(b), vec![expected]);
    assert!(h.sent_to(c).is_empty());
    assert_eq!(h.sb.publish(h.now, "empty.topic", &raw("1"), None), Ok(0));
    assert_eq!(
        h.sb.publish(h.now, "chat.room", &raw("1"), Some(&raw("[]"))),
        Err(PublishError::InvalidMetadata)
    );
    assert!(matches!(
        h.sb.publish(h.now, "chat..room", &raw("1"), None),
        Err(PublishError::InvalidTopic(_))
    ));
}

#[test]
fn disconnect_refuses_codes_other_than_1000_1008_and_4000_to_4999() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.drain();
    for code in [0, 999, 1001, 1007, 1009, 1011, 3999, 5000, u16::MAX] {
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "x"),
            Err(DisconnectError::InvalidCode(code))
        );
        assert_eq!(
            h.sb.disconnect_user(h.now, "alice", None, CloseCode(code), "x"),
            Err(DisconnectError::InvalidCode(code))
        );
    }
    assert!(h.drain().is_empty());
    assert!(h.is_open(conn));
}

#[test]
fn disconnect_accepts_1000_1008_4000_and_4999() {
    let mut h = Harness::new();
    for code in [1000, 1008, 4000, 4999] {
        let conn = h.open_with_token("alice", None);
        h.drain();
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "bye now"),
            Ok(())
        );
        let actions = h.drain();
        assert_eq!(closes(&actions), vec![(conn, code, "bye now".to_string())]);
        assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
        assert!(!h.is_open(conn));
        assert_eq!(
            h.sb.disconnect_connection(h.now, conn, CloseCode(code), "again"),
            Err(DisconnectError::Gone(Gone))
        );
    }
}

#[test]
fn disconnect_user_closes_every_connection_or_one_devices_and_counts_them() {
    let mut h = Harness::new();
    let phone = h.open_with_token("alice", Some("phone"));
    let laptop = h.open_with_token("alice", Some("laptop"));
    let nodev = h.open_with_token("alice", None);
    let bob = h.open_with_token("bob", None);
    h.drain();
    let n =
        h.sb.disconnect_user(h.now, "alice", Some("phone"), CloseCode(4000), "kicked")
            .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        closes(&h.drain()),
        vec![(phone, 4000, "kicked".to_string())]
    );
    let n =
        h.sb.disconnect_user(h.now, "alice", None, CloseCode::POLICY, "banned")
            .unwrap();
    assert_eq!(n, 2);
    let actions = h.drain();
    let mut closed: Vec<_> = closes(&actions).into_iter().map(|c| c.0).collect();
    closed.sort();
    assert_eq!(closed, vec![laptop, nodev]);
    assert_eq!(presences(&actions), vec![("alice".to_string(), false, 0)]);
    assert!(h.is_open(bob));
    assert_eq!(
        h.sb.disconnect_user(h.now, "alice", None, CloseCode::NORMAL, "x"),
        Ok(0)
    );
}

#[test]
fn connection_query_reports_its_metadata() {
    let mut h = Harness::new();
    h.set_time(ms(5_000));
    let conn = h
        .open_from(
            ip("2001:db8::7"),
            Handshake {
                token: Some(token("alice")),
                device: Some("phone-1".into()),
                device_name: Some("Alice's phone".into()),
                user_agent: Some("TestAgent/1.0".into()),
            },
        )
        .unwrap();
    assert_eq!(h.sent_to(conn)[0]["type"], "auth_success");
    h.subscribe(conn, "chat.*");
    h.subscribe(conn, "news.**");
    let info = h.sb.connection(conn).unwrap();
    assert_eq!(info.id(), conn);
    assert_eq!(info.user(), Some("alice"));
    assert!(info.is_authenticated());
    assert_eq!(info.device(), Some("phone-1"));
    assert_eq!(info.device_name(), Some("Alice's phone"));
    assert_eq!(info.user_agent(), Some("TestAgent/1.0"));
    assert_eq!(info.ip(), ip("2001:db8::7"));
    assert_eq!(info.connected_at_unix_millis(), WALL0 + 5_000);
    let mut subs: Vec<&str> = info.subscriptions().collect();
    subs.sort_unstable();
    assert_eq!(subs, ["chat.*", "news.**"]);

    let anon = h.open_anonymous();
    let info = h.sb.connection(anon).unwrap();
    assert_eq!(info.user(), None);
    assert_eq!(info.device(), None);
    assert!(!info.is_authenticated());
    assert_eq!(info.device_name(), None);
    assert_eq!(info.user_agent(), None);
}

#[test]
fn user_connections_are_oldest_first_and_device_connections_filter_by_device() {
    let mut h = Harness::with(Config {
        session_policy: SessionPolicy::Multi { max_per_user: 16 },
        ..Config::default()
    });
    let a = h.open_with_token("alice", Some("phone"));
    let b = h.open_with_token("alice", Some("laptop"));
    let c = h.open_with_token("alice", Some("phone"));
    let d = h.open_with_token("alice", None);
    assert_eq!(h.sb.user_connections("alice"), &[a, b, c, d]);
    h.close(b);
    let e = h.open_with_token("alice", Some("laptop"));
    assert_eq!(h.sb.user_connections("alice"), &[a, c, d, e]);
    let phones: Vec<ConnId> = h.sb.device_connections("alice", "phone").collect();
    assert_eq!(phones, vec![a, c]);
    assert_eq!(h.sb.device_connections("alice", "tv").count(), 0);
    assert_eq!(h.sb.device_connections("bob", "phone").count(), 0);
    assert!(h.sb.user_connections("bob").is_empty());
}

#[test]
fn user_of_is_online_and_online_users_follow_authenticated_connections() {
    let mut h = Harness::new();
    let anon = h.open_anonymous();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("bob@example.com", None);
    assert_eq!(h.sb.user_of(anon), None);
    assert_eq!(h.sb.user_of(a), Some("alice"));
    assert_eq!(h.sb.user_of(b), Some("bob@example.com"));
    assert!(h.sb.is_online("alice"));
    assert!(!h.sb.is_online("carol"));
    let mut users: Vec<&str> = h.sb.online_users().collect();
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob@example.com"]);
    h.close(a);
    assert!(!h.sb.is_online("alice"));
    assert_eq!(h.sb.online_users().collect::<Vec<_>>(), ["bob@example.com"]);
    assert_eq!(h.sb.user_of(a), None);
}

#[test]
fn stats_count_connections_users_subscriptions_and_totals() {
    let mut h = Harness::with(Config {
        max_connections_per_ip: 5,
        ..Config::default()
    });
    let a = h.open_with_token("alice", Some("phone"));
    let a2 = h.open_with_token("alice", Some("laptop"));
    let b = h.open_with_token("bob", None);
    let anon = h.open_anonymous();
    h.subscribe(a, "chat.*");
    h.subscribe(a2, "chat.*");
    h.subscribe(b, "news.**");
    h.open_with_token("alice", Some("phone")); // replaces `a`
    h.open(Handshake {
        token: Some("bad".into()),
        ..Handshake::default()
    })
    .unwrap_err();
    h.frame(anon, r#"{"type":"ping"}"#);
    h.drain();
    let s = h.sb.stats();
    assert_eq!(s.connections, 4);
    assert_eq!(s.authenticated, 3);
    assert_eq!(s.users, 2);
    assert_eq!(s.subscriptions, 2);
    assert_eq!(s.topics, 2);
    assert_eq!(s.opened_total, 5);
    assert_eq!(s.rejected_total, 1);
    assert_eq!(s.replaced_total, 1);
    assert_eq!(s.evicted_total, 0);
    assert_eq!(s.frames_in_total, 4);
    // auth_success x4, subscribed x3, pong x1
    assert_eq!(s.sends_total, 8);
}

// ---- shutdown -----------------------------------------------------------------------------

#[test]
fn shutdown_closes_every_connection_with_1001() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", None);
    let b = h.open_with_token("bob", None);
    let anon = h.open_anonymous();
    h.subscribe(a, "presence.*");
    h.drain();
    h.sb.shutdown(h.now, Instant::ZERO + secs(10));
    assert!(h.sb.is_draining());
    let actions = h.drain();
    let mut closed = closes(&actions);
    closed.sort();
    assert_eq!(
        closed,
        vec![
            (a, 1001, "server shutting down".to_string()),
            (b, 1001, "server shutting down".to_string()),
            (anon, 1001, "server shutting down".to_string()),
        ]
    );
    assert!(
        actions.iter().all(|x| !matches!(x, Action::Send { .. })),
        "no presence pushes to closing subscribers: {actions:?}"
    );
    assert_eq!(h.sb.stats().connections, 0);
    assert_eq!(h.sb.send_to_connection(h.now, a, &raw("1")), Err(Gone));
}

#[test]
fn shutdown_refuses_new_opens_with_draining() {
    let mut h = Harness::new();
    h.open_with_token("alice", None);
    h.sb.shutdown(h.now, Instant::ZERO + secs(10));
    assert_eq!(h.open(Handshake::default()), Err(OpenError::Draining));
    h.advance(secs(20));
    assert_eq!(h.open(Handshake::default()), Err(OpenError::Draining));
}

#[test]
fn shutdown_reports_every_online_user_offline() {
    let mut h = Harness::new();
    h.open_with_token("alice", Some("phone"));
    h.open_with_token("alice", Some("laptop"));
    h.open_with_token("bob", None);
    h.open_anonymous();
    h.drain();
    h.sb.shutdown(h.now, Instant::ZERO + secs(10));
    let mut offline = presences(&h.drain());
    offline.sort();
    assert_eq!(
        offline,
        vec![
            ("alice".to_string(), false, 0),
            ("bob".to_string(), false, 0)
        ]
    );
    assert_eq!(h.sb.online_users().count(), 0);
}

#[test]
fn shutdown_emits_stop_once_after_the_drain_deadline_which_poll_timeout_returns() {
    let mut h = Harness::with(heartbeat_config());
    h.open_with_token("alice", None);
    h.drain();
    let deadline = Instant::ZERO + secs(5);
    h.sb.shutdown(h.now, deadline);
    h.sb.shutdown(h.now, Instant::ZERO + secs(1)); // idempotent: the first deadline holds
    h.drain();
    assert_eq!(h.sb.poll_timeout(), Some(deadline));
    h.advance_to(secs(5) - Duration::from_nanos(1));
    assert!(
        h.drain().is_empty(),
        "no pings, no stop before the deadline"
    );
    h.advance_to(secs(5));
    assert_eq!(h.drain(), vec![Action::Stop]);
    assert_eq!(h.sb.poll_timeout(), None);
    h.advance_to(secs(6));
    assert!(h.drain().is_empty(), "Stop is emitted once");
}

// ---- determinism --------------------------------------------------------------------------

/// A scripted session touching every kind of output; returns every action in order.
fn scripted_run() -> Vec<Action> {
    let mut h = Harness::with(Config {
        ping_interval: secs(1),
        pong_timeout: ms(2500),
        auth_timeout: ms(1500),
        ..Config::default()
    });
    let mut log = Vec::new();
    let mut conns = Vec::new();
    for (i, user) in ["alice", "bob", "carol", "dave", "erin", "frank"]
        .iter()
        .enumerate()
    {
        let device = if i % 2 == 0 { Some("phone") } else { None };
        let conn = h
            .open(Handshake {
                token: Some(token(user)),
                device: device.map(Into::into),
                ..Handshake::default()
            })
            .unwrap();
        conns.push(conn);
    }
    let anon = h.open(Handshake::default()).unwrap();
    for (i, &conn) in conns.iter().enumerate() {
        h.frame(conn, r#"{"type":"subscribe","topic":"chat.*"}"#);
        h.frame(conn, r#"{"type":"subscribe","topic":"presence.*"}"#);
        if i % 2 == 1 {
            h.frame(conn, r#"{"type":"subscribe","topic":"chat.**"}"#);
        }
    }
    h.frame(
        conns[0],
        r#"{"type":"message","topic":"chat.a","data":{"x":1},"id":"1"}"#,
    );
    h.sb.publish(h.now, "chat.b", &raw("2"), None).unwrap();
    h.sb.broadcast(h.now, &raw("3"));
    h.sb.send_to_users(h.now, ["alice", "bob", "alice"], &raw("4"));
    h.open(Handshake {
        token: Some(token("alice")),
        device: Some("phone".into()),
        ..Handshake::default()
    })
    .unwrap();
    h.frame(anon, r#"{"type":"ping"}"#);
    log.extend(h.drain());
    for step in 1..=12 {
        h.advance_to(ms(250 * step));
        if step % 4 == 0 {
            // Odd ones answer and stay online until the shutdown; even ones become zombies.
            for &conn in conns.iter().skip(1).step_by(2) {
                h.sb.handle_pong(h.now, conn);
            }
        }
        log.extend(h.drain());
    }
    h.sb.shutdown(h.now, h.now.instant + secs(1));
    h.advance(secs(2));
    log.extend(h.drain());
    log
}

#[test]
fn the_same_inputs_give_byte_identical_actions() {
    let first = scripted_run();
    let second = scripted_run();
    assert!(first.len() > 50, "the script exercises the core");
    assert_eq!(first, second);
}
