//! The `auth` message: its errors, what is refused before it, auth timeout, device precedence.

use std::time::Duration;

use serde_json::json;
use switchboard_core::auth::sign_hs256;
use switchboard_core::{Config, Handshake};

use crate::harness::*;

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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.auth_timeout = secs(5);
        config
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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.auth_timeout = secs(5);
        config
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

fn claims_with_info(user: &str, info: serde_json::Value) -> switchboard_core::auth::Claims {
    let mut claims = claims(user);
    claims.info = match info {
        serde_json::Value::Object(map) => Some(map),
        _ => unreachable!("the tests give objects"),
    };
    claims
}

#[test]
fn the_info_claim_is_kept_with_the_connection_as_given() {
    let mut h = Harness::new();
    let info = json!({"role":"admin","name":"Alice A.","n":[1,2]});
    let conn = h.open_with_claims(&claims_with_info("alice", info.clone()), None);
    let kept =
        h.sb.connection(conn)
            .unwrap()
            .info()
            .map(|i| i.get().to_owned());
    let kept: serde_json::Value = serde_json::from_str(&kept.unwrap()).unwrap();
    assert_eq!(kept, info);
}

#[test]
fn an_info_claim_of_1_kib_is_accepted_and_one_byte_more_is_refused() {
    // {"p":"xxx…"} serialized: 8 bytes around the string.
    let at_limit = json!({"p": "x".repeat(1024 - 8)});
    assert_eq!(at_limit.to_string().len(), 1024);
    let over = json!({"p": "x".repeat(1024 - 7)});
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    let frame = |c: &switchboard_core::auth::Claims| {
        json!({"type":"auth","token":token_with(c)}).to_string()
    };
    let reply = h.ask1(conn, &frame(&claims_with_info("alice", over)));
    assert_eq!(
        (reply["type"].as_str(), reply["message"].as_str()),
        (
            Some("auth_error"),
            Some("claim `info` must be a JSON object of at most 1 KiB")
        )
    );
    let reply = h.ask1(conn, &frame(&claims_with_info("alice", at_limit)));
    assert_eq!(reply["type"], "auth_success");
}

#[test]
fn an_info_claim_that_is_not_an_object_is_refused_like_an_invalid_token() {
    let mut h = Harness::new();
    let conn = h.open_anonymous();
    for info in [json!("admin"), json!([1]), json!(null), json!(3)] {
        let mut payload = serde_json::to_value(claims("alice")).unwrap();
        payload["info"] = info.clone();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let reply = h.ask1(conn, &json!({"type":"auth","token":token}).to_string());
        assert_eq!(reply["type"], "auth_error", "info {info}");
        assert_eq!(
            reply["message"],
            "claim `info` must be a JSON object of at most 1 KiB"
        );
    }
}
