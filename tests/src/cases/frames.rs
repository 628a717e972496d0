//! PROTOCOL.md "Frames": malformed input, fragments, size and UTF-8 violations, timestamps.

use serde_json::json;

use crate::util::{timestamp_unix_millis, token, unix_millis_now};
use crate::ws::{Client, RawWs};
use crate::{Adapter, Settings};

/// Binary frames, non-JSON, non-object JSON, unknown `type`, missing or mistyped fields and a
/// bad `id` get `error` 400 with a message; the connection stays open.
pub async fn frames_malformed_input_gets_400_and_stays_open<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut client, _) = Client::authed(&server, "alice").await;

    client.send_binary(b"\x01\x02binary").await;
    let reply = client.recv_json().await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_u64()),
        (Some("error"), Some(400)),
        "binary frame: {reply}"
    );

    for text in ["not json", "[1,2,3]", "\"a string\"", "42", "{\"type\":"] {
        client.send_text(text).await;
        let reply = client.recv_json().await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_u64()),
            (Some("error"), Some(400)),
            "{text:?}: {reply}"
        );
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
    }

    let unknown = client
        .expect_error(&json!({"type": "dance", "id": "u1"}), 400)
        .await;
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dance"),
        "the message should name the problem: {unknown}"
    );
    client.expect_error(&json!({"id": "no-type"}), 400).await;
    client
        .expect_error(&json!({"type": 7, "id": "t"}), 400)
        .await;
    let missing = client
        .expect_error(&json!({"type": "subscribe", "id": "s"}), 400)
        .await;
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("topic"),
        "the message should name the missing field: {missing}"
    );
    client
        .expect_error(&json!({"type": "subscribe", "topic": 5, "id": "s2"}), 400)
        .await;
    client
        .expect_error(
            &json!({"type": "message", "topic": "chat.a", "id": "no-data"}),
            400,
        )
        .await;
    client
        .expect_error(
            &json!({"type": "message", "topic": "chat.a", "data": 1, "metadata": [1], "id": "md"}),
            400,
        )
        .await;
    // A bad id (not a string, or over 64 bytes): 400; it is not a valid id to echo.
    for bad in [
        json!({"type": "ping", "id": 5}),
        json!({"type": "ping", "id": "x".repeat(65)}),
    ] {
        let reply = client.request(&bad).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_u64()),
            (Some("error"), Some(400)),
            "{bad}: {reply}"
        );
    }
    // A 64-byte id is fine.
    let id = "y".repeat(64);
    let pong = client.request(&json!({"type": "ping", "id": id})).await;
    assert_eq!(pong["id"], json!(id), "{pong}");
    client.expect_nothing_pending().await;
}

/// A message sent in fragments (RFC 6455) is reassembled first.
pub async fn frames_fragmented_message_is_reassembled<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut raw = RawWs::connect(server.addr, "/ws", &[], None).await;
    let text =
        json!({"type": "auth", "token": token(&server.jwt_secret, "frag"), "id": "f1"}).to_string();
    let (a, rest) = text.as_bytes().split_at(10);
    let (b, c) = rest.split_at(rest.len() / 2);
    raw.send_frame(false, 1, a).await;
    raw.send_frame(false, 0, b).await;
    // A control frame may come between fragments.
    raw.send_frame(true, 9, b"hi").await;
    raw.send_frame(true, 0, c).await;
    let reply = raw.recv_json().await;
    assert_eq!(reply["type"], json!("auth_success"), "{reply}");
    assert_eq!(reply["id"], json!("f1"), "{reply}");
}

/// A message larger than `max_message_bytes`: close 1009.
pub async fn frames_oversize_message_closes_1009<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_message_bytes = 1024;
    let server = A::start(settings);
    let (mut client, _) = Client::authed(&server, "big").await;
    // Exactly at the limit is fine.
    let at_limit = {
        let base = json!({"type": "ping", "id": "p", "pad": ""}).to_string();
        json!({"type": "ping", "id": "p", "pad": "x".repeat(1024 - base.len())}).to_string()
    };
    assert_eq!(at_limit.len(), 1024);
    client.send_text(&at_limit).await;
    assert_eq!(client.recv_json().await["type"], json!("pong"));

    let too_big = json!({"type": "ping", "pad": "x".repeat(2000)}).to_string();
    client.send_text(&too_big).await;
    client.expect_close(1009).await;
    let (mut other, _) = Client::authed(&server, "other").await;
    other.expect_nothing_pending().await;
}

/// The limit applies to the reassembled message, whatever its fragments' sizes.
pub async fn frames_oversize_fragmented_message_closes_1009<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_message_bytes = 1024;
    let server = A::start(settings);
    let mut raw = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "frag")),
        &[],
        None,
    )
    .await;
    raw.recv_json().await;
    let piece = vec![b' '; 600];
    raw.send_frame(false, 1, b"{\"type\":\"ping\",").await;
    raw.send_frame(false, 0, &piece).await;
    raw.send_frame(false, 0, &piece).await;
    raw.send_frame(true, 0, b"\"id\":\"x\"}").await;
    raw.expect_close(1009).await;
}

/// A text frame that is not UTF-8: close 1007.
pub async fn frames_invalid_utf8_closes_1007<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut raw = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "utf")),
        &[],
        None,
    )
    .await;
    raw.recv_json().await;
    raw.send_frame(true, 1, b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")
        .await;
    raw.expect_close(1007).await;
    let (mut other, _) = Client::authed(&server, "other").await;
    other.expect_nothing_pending().await;
}

/// Every server message carries `timestamp`: RFC 3339 UTC, three fractional digits, `Z`,
/// and it is the current time.
pub async fn frames_timestamps_are_rfc3339_millis<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut client, first) = Client::authed(&server, "clock").await;
    let before = unix_millis_now();
    let pong = client.request(&json!({"type": "ping"})).await;
    let after = unix_millis_now();
    for msg in [&first, &pong] {
        let ts = msg["timestamp"].as_str().expect("timestamp");
        let millis = timestamp_unix_millis(ts).expect("a protocol timestamp");
        assert!(
            millis + 2000 >= before && millis <= after + 2000,
            "timestamp {ts} is not now (between {before} and {after} ms)"
        );
    }
}
