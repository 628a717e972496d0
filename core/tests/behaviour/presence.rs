//! Presence: online/offline actions, presence-topic pushes and snapshots, presence topic encoding.

use serde_json::json;
use switchboard_core::topics::presence_topic;
use switchboard_core::PublishError;

use crate::harness::*;

#[test]
fn presence_action_on_first_connection_and_on_last_disconnect_only() {
    let mut h = Harness::new();
    let a = h.open_with_token("alice", Some("phone"));
    assert_eq!(presences(&h.drain()), vec![("alice".to_string(), true, 1)]);
    let b = h.open_with_token("alice", Some("laptop"));
    assert!(presences(&h.drain()).is_empty());
    // An unauthenticated connection is no presence.
    let anon = h.open_anonymous();
    h.close(anon);
    h.close(a);
    assert!(presences(&h.drain()).is_empty());
    h.close(b);
    assert_eq!(presences(&h.drain()), vec![("alice".to_string(), false, 0)]);
}

#[test]
fn presence_subscriber_gets_a_push_on_every_count_change() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "presence.alice");
    h.sent_to(watcher);
    let push = |online: bool, n: usize| json!({"type":"presence","userId":"alice","online":online,"connections":n,"timestamp":TS0});
    let a = h.open_with_token("alice", Some("phone"));
    assert_eq!(h.sent_to(watcher), vec![push(true, 1)]);
    let b = h.open_with_token("alice", Some("laptop"));
    assert_eq!(h.sent_to(watcher), vec![push(true, 2)]);
    h.close(a);
    assert_eq!(h.sent_to(watcher), vec![push(true, 1)]);
    h.close(b);
    assert_eq!(h.sent_to(watcher), vec![push(false, 0)]);
    // Other users' changes are not pushed to it.
    h.open_with_token("bob", None);
    assert!(h.sent_to(watcher).is_empty());
}

#[test]
fn presence_wildcard_subscriber_gets_pushes_but_no_snapshot() {
    let mut h = Harness::new();
    h.open_with_token("alice", None);
    let watcher = h.open_with_token("watcher", None);
    h.drain();
    let replies = h.ask(watcher, r#"{"type":"subscribe","topic":"presence.*"}"#);
    assert_eq!(
        replies,
        vec![json!({"type":"subscribed","topic":"presence.*","timestamp":TS0})]
    );
    h.open_with_token("bob", None);
    assert_eq!(
        h.sent_to(watcher),
        vec![
            json!({"type":"presence","userId":"bob","online":true,"connections":1,"timestamp":TS0})
        ]
    );
}

#[test]
fn subscribing_to_a_concrete_presence_topic_sends_a_snapshot_right_after_subscribed() {
    let mut h = Harness::new();
    h.open_with_token("alice", Some("phone"));
    h.open_with_token("alice", Some("laptop"));
    let watcher = h.open_with_token("watcher", None);
    h.drain();
    let replies = h.ask(
        watcher,
        r#"{"type":"subscribe","topic":"presence.alice","id":"s"}"#,
    );
    assert_eq!(
        replies,
        vec![
            json!({"type":"subscribed","topic":"presence.alice","id":"s","timestamp":TS0}),
            json!({"type":"presence","userId":"alice","online":true,"connections":2,"timestamp":TS0}),
        ]
    );
}

#[test]
fn snapshot_of_an_offline_user_says_offline_with_zero_connections() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(watcher, r#"{"type":"subscribe","topic":"presence.nobody"}"#);
    assert_eq!(
        replies,
        vec![
            json!({"type":"subscribed","topic":"presence.nobody","timestamp":TS0}),
            json!({"type":"presence","userId":"nobody","online":false,"connections":0,"timestamp":TS0}),
        ]
    );
}

#[test]
fn presence_topic_percent_encodes_the_user_id() {
    assert_eq!(
        presence_topic("alice@example.com").as_str(),
        "presence.alice@example%2Ecom"
    );
    assert_eq!(presence_topic("a b/c").as_str(), "presence.a%20b%2Fc");
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(
        watcher,
        r#"{"type":"subscribe","topic":"presence.alice@example%2Ecom"}"#,
    );
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1]["userId"], "alice@example.com");
    h.open_with_token("alice@example.com", None);
    let pushes = h.sent_to(watcher);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["userId"], "alice@example.com", "plain, unencoded");
    assert_eq!(pushes[0]["online"], true);
}

#[test]
fn presence_topic_of_a_128_byte_user_id_made_of_escaped_bytes_can_be_subscribed() {
    let mut h = Harness::new();
    let user = ".".repeat(128);
    let topic = presence_topic(&user);
    assert_eq!(topic.as_str().len(), "presence.".len() + 384);
    let watcher = h.open_with_token("watcher", None);
    let replies = h.ask(
        watcher,
        &json!({"type":"subscribe","topic":topic.as_str()}).to_string(),
    );
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0]["type"], "subscribed");
    assert_eq!(replies[1]["userId"], user.as_str());
    h.open_with_token(&user, None);
    let pushes = h.sent_to(watcher);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["online"], true);
}

#[test]
fn publishing_to_a_presence_topic_is_error_403() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.subscribe(conn, "presence.*");
    h.drain();
    let reply = h.ask1(
        conn,
        r#"{"type":"message","topic":"presence.alice","data":{"online":false},"id":"p"}"#,
    );
    assert_error(&reply, 403, "presence");
    assert_eq!(reply["id"], "p");
    assert_eq!(
        h.sb.publish(h.now, "presence.alice", &raw("1"), None),
        Err(PublishError::ReservedTopic)
    );
    assert!(h.drain().is_empty());
}
