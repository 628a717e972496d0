//! A token expiring while connected closes the connection at `exp`, shifted by `jwt_leeway`.

use std::time::Duration;

use switchboard_core::auth::AuthError;
use switchboard_core::{Config, Handshake, Instant, OpenError};

use crate::harness::*;

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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.jwt_leeway = secs(2);
        config
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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.jwt_leeway = secs(2);
        config
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
