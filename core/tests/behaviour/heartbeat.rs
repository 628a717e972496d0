//! Heartbeat: pings every interval, eviction at the pong timeout, signs of life, timer deadlines.

use std::time::Duration;

use switchboard_core::{Config, Frame, Instant};

use crate::harness::*;

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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.ping_interval = secs(1);
        config.pong_timeout = ms(2500);
        config.auth_timeout = ms(700);
        config
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
