//! Limits, each at its edge: message size, UTF-8, the rate limit and the outbound backlog.

use std::time::Duration;

use switchboard_core::{Config, Frame, Violation};

use crate::harness::*;

/// A ping frame padded with whitespace to exactly `len` bytes.
fn ping_of_len(len: usize) -> String {
    let base = r#"{"type":"ping"}"#;
    format!("{base}{}", " ".repeat(len - base.len()))
}

#[test]
fn message_of_exactly_max_message_bytes_is_accepted_and_one_byte_more_closes_1009() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_message_bytes = 256;
        config
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
    let mut config = Config::default();
    config.max_messages_per_sec = 2;
    config.message_burst = 5;
    config
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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_messages_per_sec = 0;
        config.message_burst = 1;
        config
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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_outbound_bytes = 4096;
        config
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
