//! PROTOCOL.md "Topics": subscribe, unsubscribe, publish, wildcards, errors, token claims.

use serde_json::{json, Value};
use switchboard_core::auth::sign_hs256;

use crate::util::claims;
use crate::ws::Client;
use crate::{Adapter, Settings, TestServer};

/// Sends `subscribe` and expects `subscribed` for `topic` (echoing the id).
async fn subscribe(client: &mut Client, topic: &str) {
    let id = format!("sub-{}", topic.len());
    let reply = client
        .request(&json!({"type": "subscribe", "topic": topic, "id": id}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["topic"].as_str()),
        (Some("subscribed"), Some(topic)),
        "{}: subscribe {topic}: {reply}",
        client.label
    );
    assert_eq!(reply["id"], json!(id), "{reply}");
}

/// Publishes `data` on `topic` with an id and expects the `ack` (the publisher holds no
/// matching subscription).
async fn publish_acked(client: &mut Client, topic: &str, data: Value) {
    let id = format!("pub-{}", topic.len());
    let reply = client
        .request(&json!({"type": "message", "topic": topic, "data": data, "id": id}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["id"].as_str()),
        (Some("ack"), Some(id.as_str())),
        "{}: publish to {topic}: {reply}",
        client.label
    );
}

/// Expects a `message` on `topic`; returns it.
async fn expect_message(client: &mut Client, topic: &str) -> Value {
    let msg = client.recv_json().await;
    assert_eq!(
        (msg["type"].as_str(), msg["topic"].as_str()),
        (Some("message"), Some(topic)),
        "{}: expected a message on {topic}, got {msg}",
        client.label
    );
    msg
}

async fn two_users(server: &TestServer) -> (Client, Client) {
    let (a, _) = Client::authed(server, "alice").await;
    let (b, _) = Client::authed(server, "bob").await;
    (a, b)
}

/// Subscribe, receive a publish (data byte-exact, metadata with `senderId` overridden, no id),
/// unsubscribe, and receive nothing more.
pub async fn topics_subscribe_publish_unsubscribe<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, mut bob) = two_users(&server).await;
    subscribe(&mut alice, "chat.*").await;

    let publish = r#"{"type":"message","topic":"chat.room1","data":{"text":"hi é","n":1.50,"big":12345678901234567890,"list":[true,null]},"metadata":{"k":"v","senderId":"forged"},"id":"7"}"#;
    bob.send_text(publish).await;
    let ack = bob.recv_json().await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some("7")),
        "{ack}"
    );

    let raw = alice.recv_text().await;
    assert!(
        raw.contains("1.50"),
        "numbers must be passed on exactly as sent: {raw}"
    );
    assert!(
        raw.contains("12345678901234567890"),
        "numbers must be passed on exactly as sent: {raw}"
    );
    let msg: Value = serde_json::from_str(&raw).expect("JSON");
    crate::util::assert_timestamp(&msg);
    assert_eq!(msg["type"], json!("message"), "{msg}");
    assert_eq!(msg["topic"], json!("chat.room1"), "{msg}");
    assert_eq!(msg["data"]["text"], json!("hi é"), "{msg}");
    assert_eq!(msg["data"]["list"], json!([true, null]), "{msg}");
    assert_eq!(msg["metadata"]["k"], json!("v"), "{msg}");
    assert_eq!(
        msg["metadata"]["senderId"],
        json!("bob"),
        "the server sets senderId: {msg}"
    );
    assert!(
        msg.get("id").is_none(),
        "the publisher's id is not passed on: {msg}"
    );

    // `data` may be null; `metadata` is optional.
    publish_acked(&mut bob, "chat.room2", Value::Null).await;
    let msg = expect_message(&mut alice, "chat.room2").await;
    assert!(msg.get("data").is_some_and(Value::is_null), "{msg}");
    assert_eq!(msg["metadata"], json!({"senderId": "bob"}), "{msg}");

    let reply = alice
        .request(&json!({"type": "unsubscribe", "topic": "chat.*", "id": "u"}))
        .await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["topic"].as_str(),
            reply["id"].as_str()
        ),
        (Some("unsubscribed"), Some("chat.*"), Some("u")),
        "{reply}"
    );
    publish_acked(&mut bob, "chat.room1", json!("after")).await;
    alice.expect_nothing_pending().await;
}

/// The sender's own subscription gets its message too: `ack` first, then the `message`.
pub async fn topics_sender_gets_ack_then_own_message<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, _) = Client::authed(&server, "alice").await;
    subscribe(&mut alice, "chat.*").await;
    let ack = alice
        .request(&json!({"type": "message", "topic": "chat.a", "data": {"x": 1}, "id": "7"}))
        .await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some("7")),
        "{ack}"
    );
    let msg = expect_message(&mut alice, "chat.a").await;
    assert_eq!(msg["data"], json!({"x": 1}), "{msg}");
    assert_eq!(msg["metadata"]["senderId"], json!("alice"), "{msg}");
    // Without an id: no ack, just the message.
    alice
        .send_json(&json!({"type": "message", "topic": "chat.b", "data": 2}))
        .await;
    expect_message(&mut alice, "chat.b").await;
    alice.expect_nothing_pending().await;
}

/// `*` matches exactly one segment, `**` one or more (last position only), neither matches
/// the bare prefix.
pub async fn topics_single_and_double_wildcards<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut single, mut double) = two_users(&server).await;
    let (mut middle, _) = Client::authed(&server, "carol").await;
    let (mut publisher, _) = Client::authed(&server, "dave").await;
    subscribe(&mut single, "chat.*").await;
    subscribe(&mut double, "chat.**").await;
    subscribe(&mut middle, "a.*.c").await;

    for topic in ["chat.a", "chat.a.b", "chat", "a.b.c", "a.b.c.d", "a.c"] {
        publish_acked(&mut publisher, topic, json!(topic)).await;
    }
    expect_message(&mut single, "chat.a").await;
    single.expect_nothing_pending().await;
    expect_message(&mut double, "chat.a").await;
    expect_message(&mut double, "chat.a.b").await;
    double.expect_nothing_pending().await;
    expect_message(&mut middle, "a.b.c").await;
    middle.expect_nothing_pending().await;
}

/// A connection subscribed through several matching patterns gets each message once; a
/// repeated subscribe answers `subscribed` again without a duplicate.
pub async fn topics_overlapping_patterns_deliver_once<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, mut bob) = two_users(&server).await;
    for pattern in ["chat.*", "chat.**", "chat.room1", "*.room1", "chat.room1"] {
        subscribe(&mut alice, pattern).await;
    }
    publish_acked(&mut bob, "chat.room1", json!("once")).await;
    let msg = expect_message(&mut alice, "chat.room1").await;
    assert_eq!(msg["data"], json!("once"));
    alice.expect_nothing_pending().await;

    // Dropping one of the overlapping patterns keeps the others.
    let reply = alice
        .request(&json!({"type": "unsubscribe", "topic": "chat.room1"}))
        .await;
    assert_eq!(reply["type"], json!("unsubscribed"), "{reply}");
    publish_acked(&mut bob, "chat.room1", json!("still")).await;
    expect_message(&mut alice, "chat.room1").await;
    alice.expect_nothing_pending().await;
}

/// Error codes over the wire: 400 (wildcard publish, invalid topics/patterns), 404
/// (unsubscribing a pattern not held), 403 (publishing to presence).
pub async fn topics_error_codes_over_the_wire<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, _) = Client::authed(&server, "alice").await;
    for topic in ["chat.*", "chat.**"] {
        alice
            .expect_error(
                &json!({"type": "message", "topic": topic, "data": 1, "id": "w"}),
                400,
            )
            .await;
    }
    let seventeen = vec!["s"; 17].join(".");
    let too_long_segment = "x".repeat(129);
    for pattern in [
        "",
        "chat..a",
        ".chat",
        "chat.",
        "a.**.b",
        "chat room",
        "chat.a/b",
        seventeen.as_str(),
        too_long_segment.as_str(),
    ] {
        alice
            .expect_error(
                &json!({"type": "subscribe", "topic": pattern, "id": "bad"}),
                400,
            )
            .await;
    }
    alice
        .expect_error(
            &json!({"type": "message", "topic": "chat..a", "data": 1, "id": "bad-topic"}),
            400,
        )
        .await;
    alice
        .expect_error(
            &json!({"type": "unsubscribe", "topic": "never.held", "id": "nh"}),
            404,
        )
        .await;
    alice
        .expect_error(
            &json!({"type": "message", "topic": "presence.alice", "data": 1, "id": "pr"}),
            403,
        )
        .await;
    // 16 segments and 128-char segments are fine.
    let sixteen = vec!["s"; 16].join(".");
    subscribe(&mut alice, &sixteen).await;
    subscribe(&mut alice, &"x".repeat(128)).await;
    subscribe(&mut alice, "a_b:c@d+e=f~g%h-i.j").await;
    alice.expect_nothing_pending().await;
}

/// More than `max_subscriptions` patterns: `error` 429.
pub async fn topics_max_subscriptions_is_429<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_subscriptions = 3;
    let server = A::start(settings);
    let (mut alice, _) = Client::authed(&server, "alice").await;
    for t in ["t.1", "t.2", "t.3"] {
        subscribe(&mut alice, t).await;
    }
    alice
        .expect_error(
            &json!({"type": "subscribe", "topic": "t.4", "id": "over"}),
            429,
        )
        .await;
    // Re-subscribing a held pattern at the cap is not a new subscription.
    subscribe(&mut alice, "t.2").await;
    let reply = alice
        .request(&json!({"type": "unsubscribe", "topic": "t.1"}))
        .await;
    assert_eq!(reply["type"], json!("unsubscribed"), "{reply}");
    subscribe(&mut alice, "t.4").await;
}

/// The token's `topics` claim bounds subscriptions (claim coverage) and publishes (claim
/// match): outside it, `error` 403.
pub async fn topics_token_claim_restricts_topics<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut c = claims("limited");
    c.topics = Some(vec!["chat.*".into(), "news.**".into(), "presence.*".into()]);
    let token = sign_hs256(&server.jwt_secret, &c);
    let mut limited = Client::connect(&server, &format!("token={token}"), "limited").await;
    limited.recv_type("auth_success").await;

    for ok in [
        "chat.*",
        "chat.a",
        "news.**",
        "news.x.y",
        "news.*",
        "presence.bob",
    ] {
        subscribe(&mut limited, ok).await;
        if ok == "presence.bob" {
            // Concrete presence topic: the snapshot follows.
            let snap = limited.recv_type("presence").await;
            assert_eq!(snap["userId"], json!("bob"), "{snap}");
        }
    }
    for forbidden in ["chat.**", "chat.a.b", "*.a", "sports.x", "news", "**"] {
        limited
            .expect_error(
                &json!({"type": "subscribe", "topic": forbidden, "id": "f"}),
                403,
            )
            .await;
    }
    limited
        .expect_error(
            &json!({"type": "message", "topic": "sports.x", "data": 1, "id": "p"}),
            403,
        )
        .await;
    publish_and_get_own(&mut limited, "chat.b").await;
    publish_and_get_own(&mut limited, "news.a.b.c").await;

    // A claim without presence patterns forbids presence topics.
    let mut c = claims("chatonly");
    c.topics = Some(vec!["chat.*".into()]);
    let token = sign_hs256(&server.jwt_secret, &c);
    let mut chat_only = Client::connect(&server, &format!("token={token}"), "chatonly").await;
    chat_only.recv_type("auth_success").await;
    chat_only
        .expect_error(
            &json!({"type": "subscribe", "topic": "presence.bob", "id": "p"}),
            403,
        )
        .await;
}

/// Publishes to `topic`, which the publisher itself is subscribed to through a claim-covered
/// pattern: `ack`, then its own message.
async fn publish_and_get_own(client: &mut Client, topic: &str) {
    let ack = client
        .request(&json!({"type": "message", "topic": topic, "data": 1, "id": "own"}))
        .await;
    assert_eq!(ack["type"], json!("ack"), "publish to {topic}: {ack}");
    expect_message(client, topic).await;
    client.expect_nothing_pending().await;
}
