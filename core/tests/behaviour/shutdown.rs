//! Shutdown: close 1001 for all, opens refused, users offline, one `Stop` after the drain.

use std::time::Duration;

use switchboard_core::{Action, Gone, Handshake, Instant, OpenError};

use crate::harness::*;

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
