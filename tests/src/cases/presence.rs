//! PROTOCOL.md "Presence", and the session policy (replacement with 4001).

use serde_json::json;

use crate::util::{assert_presence, eventually, WAIT};
use crate::ws::Client;
use crate::{Adapter, Settings};

/// Subscribing to a concrete presence topic sends the user's state right after `subscribed`;
/// every change follows: 0->1, count changes, 1->0.
pub async fn presence_snapshot_and_pushes_across_users<A: Adapter>() {
    let server = A::start(Settings::default());
    let alice = "alice@example.com";
    let (alice_phone, _) = Client::authed_device(&server, alice, Some("phone")).await;
    let (mut bob, _) = Client::authed(&server, "bob").await;

    let topic = "presence.alice@example%2Ecom";
    let reply = bob
        .request(&json!({"type": "subscribe", "topic": topic, "id": "p"}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["topic"].as_str()),
        (Some("subscribed"), Some(topic)),
        "{reply}"
    );
    let snapshot = bob.recv_json().await;
    assert_presence(&snapshot, alice, true, 1);
    assert!(
        snapshot.get("id").is_none() || snapshot["id"] == json!("p"),
        "{snapshot}"
    );

    let (alice_laptop, _) = Client::authed_device(&server, alice, Some("laptop")).await;
    assert_presence(&bob.recv_json().await, alice, true, 2);
    // An unauthenticated connection does not count.
    let _anon = Client::anon(&server, "anon").await;
    alice_phone.close().await;
    assert_presence(&bob.recv_json().await, alice, true, 1);
    alice_laptop.close().await;
    assert_presence(&bob.recv_json().await, alice, false, 0);
    bob.expect_nothing_pending().await;

    // Back online by message authentication.
    let mut again = Client::anon(&server, "alice-again").await;
    let r = again
        .request(&json!({"type": "auth", "token": crate::util::token(&server.jwt_secret, alice)}))
        .await;
    assert_eq!(r["type"], json!("auth_success"), "{r}");
    assert_presence(&bob.recv_json().await, alice, true, 1);

    // A snapshot of an offline user.
    let reply = bob
        .request(&json!({"type": "subscribe", "topic": "presence.nobody"}))
        .await;
    assert_eq!(reply["type"], json!("subscribed"), "{reply}");
    assert_presence(&bob.recv_json().await, "nobody", false, 0);
}

/// A pattern (`presence.*`) sends no snapshot, but every matching change is pushed.
pub async fn presence_pattern_sends_no_snapshot<A: Adapter>() {
    let server = A::start(Settings::default());
    let (_alice, _) = Client::authed(&server, "alice").await;
    let (mut watcher, _) = Client::authed(&server, "watcher").await;
    let reply = watcher
        .request(&json!({"type": "subscribe", "topic": "presence.*"}))
        .await;
    assert_eq!(reply["type"], json!("subscribed"), "{reply}");
    watcher.expect_nothing_pending().await;

    let (carol, _) = Client::authed(&server, "carol").await;
    assert_presence(&watcher.recv_json().await, "carol", true, 1);
    carol.close().await;
    assert_presence(&watcher.recv_json().await, "carol", false, 0);
    watcher.expect_nothing_pending().await;
}

/// Session replacement (per-device policy): the old connection gets close 4001 "session
/// replaced", the new one works, and presence sees no change (no push).
pub async fn presence_session_replacement_closes_4001<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut old, _) = Client::authed_device(&server, "erin", Some("tablet")).await;
    let (mut watcher, _) = Client::authed(&server, "watcher").await;
    let r = watcher
        .request(&json!({"type": "subscribe", "topic": "presence.erin"}))
        .await;
    assert_eq!(r["type"], json!("subscribed"), "{r}");
    assert_presence(&watcher.recv_json().await, "erin", true, 1);
    let r = old
        .request(&json!({"type": "subscribe", "topic": "chat.*"}))
        .await;
    assert_eq!(r["type"], json!("subscribed"), "{r}");

    let (mut new, first) = Client::authed_device(&server, "erin", Some("tablet")).await;
    let reason = old.expect_close(4001).await;
    assert_eq!(reason, "session replaced");
    new.expect_nothing_pending().await;
    // No presence push for the replacement.
    watcher.expect_nothing_pending().await;

    let presence = server.presence("erin").await;
    let conns = presence["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1, "{presence}");
    assert_eq!(conns[0]["connId"], first["connId"], "{presence}");

    // The old connection's subscription is gone with it.
    let (mut publisher, _) = Client::authed(&server, "pub").await;
    let ack = publisher
        .request(&json!({"type": "message", "topic": "chat.x", "data": 1, "id": "1"}))
        .await;
    assert_eq!(ack["type"], json!("ack"), "{ack}");
    new.expect_nothing_pending().await;

    // Another device of the same user does not replace.
    let (mut other_device, _) = Client::authed_device(&server, "erin", Some("phone")).await;
    assert_presence(&watcher.recv_json().await, "erin", true, 2);
    new.expect_nothing_pending().await;
    other_device.expect_nothing_pending().await;
}

/// With the `single` policy, a new connection replaces every other of the user.
pub async fn presence_single_policy_replaces_other_devices<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.session_policy = switchboard_core::SessionPolicy::Single;
    let server = A::start(settings);
    let (mut a, _) = Client::authed_device(&server, "frank", Some("a")).await;
    let (mut b, _) = Client::authed(&server, "frank").await;
    assert_eq!(a.expect_close(4001).await, "session replaced");
    b.expect_nothing_pending().await;
    let server = &server;
    eventually("one connection listed for frank", WAIT, || async move {
        server.presence("frank").await["connections"]
            .as_array()
            .map(Vec::len)
            == Some(1)
    })
    .await;
}

/// With the `multi` policy, over `max_per_user` the oldest connection is replaced (4001).
pub async fn presence_multi_policy_replaces_oldest_over_cap<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.session_policy = switchboard_core::SessionPolicy::Multi { max_per_user: 2 };
    let server = A::start(settings);
    let (mut first, _) = Client::authed_device(&server, "gina", Some("same")).await;
    let (mut second, _) = Client::authed_device(&server, "gina", Some("same")).await;
    // Same device, but multi allows two.
    first.expect_nothing_pending().await;
    let (mut third, _) = Client::authed(&server, "gina").await;
    assert_eq!(first.expect_close(4001).await, "session replaced");
    second.expect_nothing_pending().await;
    third.expect_nothing_pending().await;
    let presence = server.presence("gina").await;
    assert_eq!(
        presence["connections"].as_array().map(Vec::len),
        Some(2),
        "{presence}"
    );
}
