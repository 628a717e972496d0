//! Protocol errors: each malformed frame is an error naming the problem; ids and timestamps.

use std::time::Duration;

use serde_json::json;
use switchboard_core::{Config, ConnId, Frame};

use crate::harness::*;

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
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_subscriptions = 1;
        config
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
