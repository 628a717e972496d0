//! Opening a connection: handshake auth and checks, the per-IP limit, draining, slot reuse.

use serde_json::json;
use switchboard_core::auth::{sign_hs256, AuthError};
use switchboard_core::{
    Action, CloseCode, Config, DisconnectError, Frame, Gone, Handshake, HandshakeError, Instant,
    OpenError, Violation,
};

use crate::harness::*;

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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_connections_per_ip = 3;
        config
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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_connections_per_ip = 2;
        config
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
