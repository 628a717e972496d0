//! Topics: matching, delivery and metadata, acks, (un)subscribe, the `topics` claim, the limit.

use serde_json::{json, Value};
use switchboard_core::auth::Claims;
use switchboard_core::{Action, Config, ConnId, PublishError};

use crate::harness::*;

/// Subscribes a fresh connection to `pattern` and reports which of `topics` reach it.
fn reached(pattern: &str, topics: &[&str]) -> Vec<String> {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, pattern);
    let publisher = h.open_with_token("pub", None);
    for topic in topics {
        h.publish(publisher, topic, "1");
    }
    h.sent_to(sub)
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| m["topic"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn single_star_matches_exactly_one_segment() {
    assert_eq!(
        reached(
            "chat.*",
            &["chat.a", "chat.a.b", "chat", "other.a", "chat.b"]
        ),
        ["chat.a", "chat.b"]
    );
    assert_eq!(
        reached("*.x", &["a.x", "b.x", "a.y", "x", "a.b.x"]),
        ["a.x", "b.x"]
    );
}

#[test]
fn double_star_matches_one_or_more_trailing_segments() {
    assert_eq!(
        reached(
            "chat.**",
            &["chat.a", "chat.a.b", "chat", "chat.a.b.c", "other.a"]
        ),
        ["chat.a", "chat.a.b", "chat.a.b.c"]
    );
    assert_eq!(reached("**", &["a", "a.b.c"]), ["a", "a.b.c"]);
}

#[test]
fn connection_with_two_matching_patterns_gets_the_message_once() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    for p in ["chat.*", "chat.**", "chat.a", "*.a"] {
        h.subscribe(sub, p);
    }
    let publisher = h.open_with_token("pub", None);
    h.publish(publisher, "chat.a", "1");
    assert_eq!(h.sent_to(sub).len(), 1);
}

#[test]
fn sender_receives_its_own_message_through_its_subscription() {
    let mut h = Harness::new();
    let conn = h.open_with_token("alice", None);
    h.subscribe(conn, "chat.*");
    let replies = h.ask(
        conn,
        r#"{"type":"message","topic":"chat.a","data":"hi","id":"7"}"#,
    );
    let epoch = replies[0]["epoch"].clone();
    assert_eq!(
        replies,
        vec![
            json!({"type":"ack","id":"7","offset":1,"epoch":epoch,"timestamp":TS0}),
            json!({"type":"message","topic":"chat.a","data":"hi",
                   "metadata":{"senderId":"alice"},"offset":1,"epoch":epoch,"timestamp":TS0}),
        ]
    );
}

#[test]
fn message_metadata_sender_id_is_set_by_the_server_overriding_the_clients() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, "chat.a");
    let alice = h.open_with_token("alice", None);
    h.frame(
        alice,
        r#"{"type":"message","topic":"chat.a","data":{"n":1.50,"big":12345678901234567890},"metadata":{"senderId":"mallory","k":[1, 2]}}"#,
    );
    let got = h.sent_raw(sub);
    assert_eq!(got.len(), 1);
    let msg: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(msg["metadata"], json!({"k":[1,2],"senderId":"alice"}));
    // Numbers exactly as sent.
    assert!(
        got[0].contains(r#""data":{"n":1.50,"big":12345678901234567890}"#),
        "{}",
        got[0]
    );
    assert_eq!(got[0].matches("senderId").count(), 1);
    // Without client metadata, the server's senderId alone.
    h.publish(alice, "chat.a", "null");
    let msg = &h.sent_to(sub)[0];
    assert_eq!(msg["metadata"], json!({"senderId":"alice"}));
    assert_eq!(msg["data"], Value::Null);
}

#[test]
fn client_id_is_not_forwarded_to_subscribers() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    h.subscribe(sub, "chat.a");
    let alice = h.open_with_token("alice", None);
    h.frame(
        alice,
        r#"{"type":"message","topic":"chat.a","data":1,"id":"secret-id"}"#,
    );
    let msg = &h.sent_to(sub)[0];
    assert_eq!(msg["type"], "message");
    assert!(msg.get("id").is_none(), "{msg}");
}

#[test]
fn ack_is_sent_only_when_the_message_has_an_id() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    assert!(h
        .ask(alice, r#"{"type":"message","topic":"chat.a","data":1}"#)
        .is_empty());
    let reply = h.ask1(
        alice,
        r#"{"type":"message","topic":"chat.a","data":1,"id":"9"}"#,
    );
    let epoch = reply["epoch"].clone();
    assert!(epoch.is_string(), "{reply}");
    assert_eq!(
        reply,
        json!({"type":"ack","id":"9","offset":2,"epoch":epoch,"timestamp":TS0}),
        "the ack carries the position the message got: the second on the topic"
    );
}

#[test]
fn publishing_to_a_wildcard_topic_is_error_400() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    h.subscribe(alice, "**");
    for topic in ["chat.*", "chat.**", "**"] {
        let frame = json!({"type":"message","topic":topic,"data":1,"id":"w"}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_error(&reply, 400, "wildcard");
        assert_eq!(reply["id"], "w");
    }
    assert!(matches!(
        h.sb.publish(h.now, "chat.*", &raw("1"), None),
        Err(PublishError::InvalidTopic(_))
    ));
}

#[test]
fn invalid_topic_is_error_400_naming_the_problem() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let seventeen = vec!["s"; 17].join(".");
    let long_segment = "x".repeat(129);
    let cases = [
        ("", "empty"),
        ("chat..a", "segment 2 is empty"),
        ("chat.a b", "invalid character ' '"),
        (seventeen.as_str(), "17 segments"),
        (long_segment.as_str(), "at most 128"),
        ("chat.a*", "`*` must be a whole segment"),
        ("chat.**.a", "`**` is only allowed as the last segment"),
    ];
    for (topic, names) in cases {
        for ty in ["subscribe", "unsubscribe"] {
            let frame = json!({"type":ty,"topic":topic}).to_string();
            assert_error(&h.ask1(alice, &frame), 400, names);
        }
        let frame = json!({"type":"message","topic":topic,"data":1}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_eq!(reply["code"], 400, "{topic}: {reply}");
    }
    // Exactly 16 segments and 128 characters are fine.
    h.subscribe(alice, &vec!["s"; 16].join("."));
    h.subscribe(alice, &"x".repeat(128));
}

#[test]
fn unsubscribing_a_pattern_not_held_is_error_404() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.a","id":"u"}"#);
    assert_error(&reply, 404, "not subscribed");
    assert_eq!(reply["id"], "u");
    // A matching but different pattern is not the one held.
    h.subscribe(alice, "chat.*");
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.a"}"#);
    assert_error(&reply, 404, "not subscribed");
}

#[test]
fn unsubscribe_replies_unsubscribed_and_stops_delivery() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    h.subscribe(alice, "chat.*");
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*","id":"u"}"#);
    assert_eq!(
        reply,
        json!({"type":"unsubscribed","topic":"chat.*","id":"u","timestamp":TS0})
    );
    assert_eq!(
        h.sb.publish(h.now, "chat.a", &raw("1"), None)
            .map(|p| p.delivered),
        Ok(0)
    );
    assert!(h.sent_to(alice).is_empty());
    let reply = h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*"}"#);
    assert_error(&reply, 404, "not subscribed");
}

#[test]
fn resubscribing_a_held_pattern_replies_subscribed_again_without_duplicate_delivery() {
    let mut h = Harness::new();
    let alice = h.open_with_token("alice", None);
    let first = h.ask1(alice, r#"{"type":"subscribe","topic":"chat.*","id":"1"}"#);
    let again = h.ask1(alice, r#"{"type":"subscribe","topic":"chat.*","id":"2"}"#);
    assert_eq!(
        first,
        json!({"type":"subscribed","topic":"chat.*","id":"1","timestamp":TS0})
    );
    assert_eq!(
        again,
        json!({"type":"subscribed","topic":"chat.*","id":"2","timestamp":TS0})
    );
    assert_eq!(
        h.sb.publish(h.now, "chat.a", &raw("1"), None)
            .map(|p| p.delivered),
        Ok(1)
    );
    assert_eq!(h.sent_to(alice).len(), 1);
    assert_eq!(h.sb.stats().subscriptions, 1);
    // One unsubscribe drops it.
    h.ask1(alice, r#"{"type":"unsubscribe","topic":"chat.*"}"#);
    assert_eq!(
        h.sb.publish(h.now, "chat.a", &raw("1"), None)
            .map(|p| p.delivered),
        Ok(0)
    );
}

fn topics_claims(user: &str, topics: &[&str]) -> Claims {
    Claims {
        topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        ..claims(user)
    }
}

#[test]
fn token_topics_claim_refuses_a_subscribe_outside_it_with_403() {
    let mut h = Harness::new();
    let alice = h.open_with_claims(&topics_claims("alice", &["chat.*"]), None);
    for pattern in ["news.a", "chat.**", "**", "chat.a.b", "presence.bob"] {
        let frame = json!({"type":"subscribe","topic":pattern,"id":"s"}).to_string();
        let reply = h.ask1(alice, &frame);
        assert_error(&reply, 403, "not allowed");
        assert_eq!(reply["id"], "s");
    }
    assert!(h
        .sb
        .connection(alice)
        .unwrap()
        .subscriptions()
        .next()
        .is_none());
}

#[test]
fn token_topics_claim_refuses_a_publish_outside_it_with_403() {
    let mut h = Harness::new();
    let watcher = h.open_with_token("watcher", None);
    h.subscribe(watcher, "news.**");
    h.subscribe(watcher, "chat.**");
    let alice = h.open_with_claims(&topics_claims("alice", &["chat.*"]), None);
    let reply = h.ask1(
        alice,
        r#"{"type":"message","topic":"news.a","data":1,"id":"m"}"#,
    );
    assert_error(&reply, 403, "not allowed");
    assert_eq!(reply["id"], "m");
    let reply = h.ask1(alice, r#"{"type":"message","topic":"chat.a.b","data":1}"#);
    assert_error(&reply, 403, "not allowed");
    assert!(h.sent_to(watcher).is_empty(), "nothing was published");
    h.publish(alice, "chat.a", "1");
    assert_eq!(h.sent_to(watcher).len(), 1);
}

#[test]
fn token_topics_claim_allows_covered_wildcards() {
    let mut h = Harness::new();
    let claims = topics_claims("alice", &["chat.**", "presence.*", "a.*.c"]);
    let alice = h.open_with_claims(&claims, None);
    for pattern in [
        "chat.a",
        "chat.*",
        "chat.**",
        "chat.a.**",
        "chat.*.b",
        "presence.bob",
        "presence.*",
        "a.b.c",
        "a.*.c",
    ] {
        let frame = json!({"type":"subscribe","topic":pattern}).to_string();
        let replies = h.ask(alice, &frame);
        assert_eq!(replies[0]["type"], "subscribed", "{pattern}: {replies:?}");
    }
    for pattern in ["chat", "**", "a.*.*", "a.b.**"] {
        let frame = json!({"type":"subscribe","topic":pattern}).to_string();
        assert_error(&h.ask1(alice, &frame), 403, "not allowed");
    }
    let replies = h.ask(
        alice,
        r#"{"type":"message","topic":"chat.x.y","data":1,"id":"1"}"#,
    );
    assert_eq!(replies[0]["type"], "ack");
}

#[test]
fn max_subscriptions_allows_exactly_the_limit_then_refuses_with_429() {
    let mut h = Harness::with({
        let mut config = Config::default();
        config.max_subscriptions = 3;
        config
    });
    let alice = h.open_with_token("alice", None);
    for p in ["a", "b", "c"] {
        h.subscribe(alice, p);
    }
    let reply = h.ask1(alice, r#"{"type":"subscribe","topic":"d","id":"4"}"#);
    assert_error(&reply, 429, "too many subscriptions");
    assert_eq!(reply["id"], "4");
    // Re-subscribing a held pattern at the limit is still fine.
    h.subscribe(alice, "b");
    assert_eq!(h.sb.connection(alice).unwrap().subscriptions().count(), 3);
    // Freeing one makes room for one.
    h.ask1(alice, r#"{"type":"unsubscribe","topic":"a"}"#);
    h.subscribe(alice, "d");
    assert_error(
        &h.ask1(alice, r#"{"type":"subscribe","topic":"e"}"#),
        429,
        "too many",
    );
    // The limit is per connection.
    let other = h.open_with_token("alice", None);
    h.subscribe(other, "e");
}

#[test]
fn all_recipients_of_one_message_share_the_same_payload_bytes() {
    let mut h = Harness::new();
    let conns: Vec<ConnId> = (0..4)
        .map(|i| {
            let c = h.open_with_token(&format!("u{i}"), None);
            h.subscribe(c, if i % 2 == 0 { "chat.*" } else { "chat.**" });
            c
        })
        .collect();
    h.drain();
    let check = |actions: Vec<Action>, expected: usize| {
        let payloads: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(payloads.len(), expected);
        assert!(payloads.iter().all(|p| p.as_ptr() == payloads[0].as_ptr()));
    };
    h.publish(conns[0], "chat.a", r#"{"x":1}"#);
    check(h.drain(), 4);
    h.sb.publish(h.now, "chat.a", &raw("1"), None).unwrap();
    check(h.drain(), 4);
    h.sb.broadcast(h.now, &raw("1"));
    check(h.drain(), 4);
    h.sb.send_to_users(h.now, ["u0", "u1", "u2"], &raw("1"));
    check(h.drain(), 3);
}
