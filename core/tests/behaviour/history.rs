//! PROTOCOL.md "History and recovery": stream positions on every frame, recovery with
//! `since`, the `history` request, and the bounds in count, age and bytes.

use serde_json::{json, Value};

use crate::harness::*;
use switchboard_core::auth::Claims;
use switchboard_core::{Config, Now};

fn config(size: usize) -> Config {
    let mut c = Config::default();
    c.history_size = size;
    c
}

/// Publishes `{"n": n}` on `topic` from `conn` and returns the position its ack carries (what
/// else `conn` was sent, e.g. the message itself, is dropped).
fn publish_acked(
    h: &mut Harness,
    conn: switchboard_core::ConnId,
    topic: &str,
    n: u64,
) -> (u64, String) {
    let replies = h.ask(
        conn,
        &json!({"type":"message","topic":topic,"data":{"n":n},"id":"p"}).to_string(),
    );
    let ack = replies.iter().find(|r| r["type"] == "ack").expect("an ack");
    (
        ack["offset"].as_u64().unwrap(),
        ack["epoch"].as_str().unwrap().to_owned(),
    )
}

fn subscribe_since(
    h: &mut Harness,
    conn: switchboard_core::ConnId,
    topic: &str,
    offset: u64,
    epoch: &str,
) -> Vec<Value> {
    h.ask(
        conn,
        &json!({"type":"subscribe","topic":topic,"since":{"offset":offset,"epoch":epoch},"id":"s"})
            .to_string(),
    )
}

/// The length of the frame of `{"n":1}` published on a 7-byte topic (`topic.x`) at offset 1.
fn one_frame_len() -> usize {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let publisher = h.open_with_token("p", None);
    h.subscribe(c, "topic.a");
    publish_acked(&mut h, publisher, "topic.a", 1);
    h.sent_raw(c)[0].len()
}

fn offsets(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn messages_of_a_topic_are_numbered_1_2_3_in_one_epoch_and_the_ack_names_the_position() {
    let mut h = Harness::new();
    let sub = h.open_with_token("sub", None);
    let publisher = h.open_with_token("pub", None);
    let reply = h.ask1(sub, r#"{"type":"subscribe","topic":"chat.a"}"#);
    assert_eq!(reply["offset"], 0, "a new stream stands at 0: {reply}");
    let epoch = reply["epoch"].as_str().unwrap().to_owned();
    assert!(
        reply.get("recovered").is_none(),
        "no since, no recovered: {reply}"
    );
    for n in 1..=3 {
        assert_eq!(
            publish_acked(&mut h, publisher, "chat.a", n),
            (n, epoch.clone())
        );
    }
    let got = h.sent_to(sub);
    assert_eq!(offsets(&got), vec![1, 2, 3]);
    assert!(got.iter().all(|m| m["epoch"] == epoch.as_str()));
    let reply = h.ask1(sub, r#"{"type":"subscribe","topic":"chat.a"}"#);
    assert_eq!(
        (reply["offset"].as_u64(), reply["epoch"].as_str()),
        (Some(3), Some(&*epoch))
    );
}

#[test]
fn streams_are_per_topic_and_patterns_and_presence_topics_carry_no_position() {
    let mut h = Harness::new();
    let c = h.open_with_token("alice", None);
    let sub = h.ask1(c, r#"{"type":"subscribe","topic":"chat.*"}"#);
    assert!(
        sub.get("offset").is_none() && sub.get("epoch").is_none(),
        "{sub}"
    );
    let presence = h.ask(c, r#"{"type":"subscribe","topic":"presence.bob"}"#);
    assert!(presence[0].get("offset").is_none(), "{presence:?}");
    let (a1, ea) = publish_acked(&mut h, c, "chat.a", 1);
    let (b1, eb) = publish_acked(&mut h, c, "chat.b", 1);
    let (a2, _) = publish_acked(&mut h, c, "chat.a", 2);
    assert_eq!((a1, b1, a2), (1, 1, 2));
    assert_ne!(ea, eb, "each stream has its own epoch");
}

#[test]
fn since_replays_exactly_the_missed_frames_in_order_before_any_live_message() {
    let mut h = Harness::new();
    let publisher = h.open_with_token("pub", None);
    let first = h.open_with_token("sub", Some("d1"));
    h.subscribe(first, "chat.a");
    let (_, epoch) = publish_acked(&mut h, publisher, "chat.a", 1);
    h.sent_to(first);
    h.close(first);
    for n in 2..=4 {
        publish_acked(&mut h, publisher, "chat.a", n);
    }
    let originals = {
        let watcher = h.open_with_token("watch", None);
        let page = h.ask1(watcher, r#"{"type":"history","topic":"chat.a"}"#);
        page["messages"].as_array().unwrap().clone()
    };
    let again = h.open_with_token("sub", Some("d1"));
    let replies = subscribe_since(&mut h, again, "chat.a", 1, &epoch);
    assert_eq!(replies[0]["type"], "subscribed");
    assert_eq!(replies[0]["recovered"], true);
    assert_eq!(replies[0]["offset"], 4);
    assert_eq!(replies[0]["id"], "s");
    assert_eq!(offsets(&replies[1..]), vec![2, 3, 4]);
    for (replayed, kept) in replies[1..].iter().zip(&originals[1..]) {
        assert_eq!(replayed["data"], kept["data"]);
        assert_eq!(
            replayed["timestamp"], kept["timestamp"],
            "sent as first sent"
        );
    }
    publish_acked(&mut h, publisher, "chat.a", 5);
    assert_eq!(
        offsets(&h.sent_to(again)),
        vec![5],
        "live continues after the replay"
    );
}

#[test]
fn a_replayed_message_is_the_very_frame_its_subscribers_were_sent() {
    let mut h = Harness::new();
    let live = h.open_with_token("live", None);
    h.subscribe(live, "t");
    let publisher = h.open_with_token("pub", None);
    h.frame(
        publisher,
        r#"{"type":"message","topic":"t","data":{"x":1.50,"s":"é"}}"#,
    );
    let sent = h.sent_raw(live);
    let epoch = serde_json::from_str::<Value>(&sent[0]).unwrap()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    h.set_time(secs(3));
    let late = h.open_with_token("late", None);
    subscribe_since(&mut h, late, "t", 0, &epoch);
    // `ask` took the replies; replay them again to compare the raw bytes.
    h.frame(
        late,
        &json!({"type":"subscribe","topic":"t","since":{"offset":0,"epoch":epoch}}).to_string(),
    );
    let replay = h.sent_raw(late);
    assert_eq!(replay[1], sent[0], "byte for byte, timestamp included");
}

#[test]
fn recovery_with_nothing_missed_is_recovered_with_no_replay() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let (offset, epoch) = publish_acked(&mut h, c, "t", 1);
    let replies = subscribe_since(&mut h, c, "t", offset, &epoch);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["recovered"], true);
    assert_eq!(replies[0]["offset"], 1);
}

#[test]
fn subscribing_again_to_a_held_topic_with_since_answers_again_and_replays_as_asked() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let publisher = h.open_with_token("p", None);
    h.subscribe(c, "t");
    let (_, epoch) = publish_acked(&mut h, publisher, "t", 1);
    publish_acked(&mut h, publisher, "t", 2);
    h.sent_to(c);
    let replies = subscribe_since(&mut h, c, "t", 0, &epoch);
    assert_eq!(replies[0]["recovered"], true);
    assert_eq!(offsets(&replies), vec![1, 2]);
    publish_acked(&mut h, publisher, "t", 3);
    assert_eq!(offsets(&h.sent_to(c)), vec![3], "still one subscription");
}

#[test]
fn another_epoch_or_an_offset_ahead_is_not_recovered_and_nothing_is_replayed() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let (_, epoch) = publish_acked(&mut h, c, "t", 1);
    let other = subscribe_since(&mut h, c, "t", 0, "not-the-epoch");
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0]["recovered"], false);
    assert_eq!(
        (other[0]["offset"].as_u64(), other[0]["epoch"].as_str()),
        (Some(1), Some(&*epoch))
    );
    let ahead = subscribe_since(&mut h, c, "t", 2, &epoch);
    assert_eq!(ahead.len(), 1);
    assert_eq!(ahead[0]["recovered"], false);
    let huge = h.ask(
        c,
        &format!(
            r#"{{"type":"subscribe","topic":"t","since":{{"offset":123456789012345678901234567890,"epoch":"{epoch}"}}}}"#
        ),
    );
    assert_eq!(
        huge[0]["recovered"], false,
        "an integer beyond u64 is ahead: {huge:?}"
    );
}

#[test]
fn messages_dropped_by_history_size_make_recovery_from_before_them_fail_at_the_edge() {
    let mut h = Harness::with(config(3));
    let c = h.open_with_token("a", None);
    let (_, epoch) = publish_acked(&mut h, c, "t", 1);
    for n in 2..=5 {
        publish_acked(&mut h, c, "t", n);
    }
    // Kept: 3, 4, 5. From 2 everything missed is there; from 1, offset 2 is gone.
    let from_2 = subscribe_since(&mut h, c, "t", 2, &epoch);
    assert_eq!(from_2[0]["recovered"], true);
    assert_eq!(offsets(&from_2), vec![3, 4, 5]);
    let from_1 = subscribe_since(&mut h, c, "t", 1, &epoch);
    assert_eq!(from_1.len(), 1);
    assert_eq!(from_1[0]["recovered"], false);
    assert_eq!(from_1[0]["offset"], 5);
}

#[test]
fn a_message_is_kept_until_just_before_history_ttl_and_gone_at_it() {
    let mut c = Config::default();
    c.history_ttl = secs(60);
    let mut h = Harness::with(c);
    let conn = h.open_with_token("a", None);
    let (_, epoch) = publish_acked(&mut h, conn, "t", 1);
    h.set_time(secs(60) - std::time::Duration::from_nanos(1));
    let before = subscribe_since(&mut h, conn, "t", 0, &epoch);
    assert_eq!(before[0]["recovered"], true);
    assert_eq!(offsets(&before), vec![1]);
    h.set_time(secs(60));
    let at = subscribe_since(&mut h, conn, "t", 0, &epoch);
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(at[0]["recovered"], false);
    assert_eq!(
        (at[0]["offset"].as_u64(), at[0]["epoch"].as_str()),
        (Some(1), Some(&*epoch)),
        "the subscribed stream keeps its position when its messages expire"
    );
}

#[test]
fn a_replay_over_max_outbound_bytes_is_not_recovered_and_one_that_fits_exactly_is() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let publisher = h.open_with_token("p", None);
    h.subscribe(c, "t");
    publish_acked(&mut h, publisher, "t", 1);
    publish_acked(&mut h, publisher, "t", 2);
    let frames: usize = h.sent_raw(c).iter().map(String::len).sum();
    for (limit, recovered) in [(frames, true), (frames - 1, false)] {
        let mut config = Config::default();
        config.max_outbound_bytes = limit;
        let mut h2 = Harness::with(config);
        let c2 = h2.open_with_token("a", None);
        let publisher = h2.open_with_token("p", None);
        let (_, epoch2) = publish_acked(&mut h2, publisher, "t", 1);
        publish_acked(&mut h2, publisher, "t", 2);
        let replies = subscribe_since(&mut h2, c2, "t", 0, &epoch2);
        assert_eq!(
            replies[0]["recovered"], recovered,
            "limit {limit} for {frames} bytes"
        );
        assert_eq!(replies.len(), if recovered { 3 } else { 1 });
    }
}

#[test]
fn over_history_max_bytes_the_least_recently_published_stream_is_dropped_and_restarts_under_a_new_epoch(
) {
    // Allow exactly three frames.
    let probe = one_frame_len();
    let mut c = Config::default();
    c.history_max_bytes = 3 * probe;
    let mut h = Harness::with(c);
    let conn = h.open_with_token("a", None);
    let (_, epoch_a) = publish_acked(&mut h, conn, "topic.a", 1);
    let (_, epoch_b) = publish_acked(&mut h, conn, "topic.b", 1);
    publish_acked(&mut h, conn, "topic.c", 1);
    assert_eq!(
        h.sb.stats().history_bytes,
        3 * probe,
        "at the bound, all is kept"
    );
    let kept_a = subscribe_since(&mut h, conn, "topic.a", 0, &epoch_a);
    assert_eq!(kept_a[0]["recovered"], true);
    h.frame(conn, r#"{"type":"unsubscribe","topic":"topic.a"}"#);
    h.sent_to(conn);
    publish_acked(&mut h, conn, "topic.d", 1);
    // a was published to least recently: dropped, and asked again it starts anew.
    let lost = subscribe_since(&mut h, conn, "topic.a", 0, &epoch_a);
    assert_eq!(lost[0]["recovered"], false);
    assert_eq!(lost[0]["offset"], 0);
    assert_ne!(lost[0]["epoch"], epoch_a.as_str());
    let b = subscribe_since(&mut h, conn, "topic.b", 0, &epoch_b);
    assert_eq!(b[0]["recovered"], true, "the others stay");
    assert!(h.sb.stats().history_bytes <= 3 * probe);
}

#[test]
fn a_lost_stream_with_subscribers_starts_again_under_a_new_epoch_from_offset_1() {
    let probe = one_frame_len();
    let mut c = Config::default();
    c.history_max_bytes = probe;
    let mut h = Harness::with(c);
    let conn = h.open_with_token("a", None);
    h.subscribe(conn, "topic.a");
    let (_, old) = publish_acked(&mut h, conn, "topic.a", 1);
    publish_acked(&mut h, conn, "topic.b", 1);
    h.sent_to(conn);
    let (offset, new) = publish_acked(&mut h, conn, "topic.a", 2);
    assert_eq!(offset, 1);
    assert_ne!(new, old);
}

#[test]
fn one_stream_alone_over_history_max_bytes_loses_its_oldest_messages_but_keeps_its_position() {
    let mut c = Config::default();
    c.history_max_bytes = 300;
    let mut h = Harness::with(c);
    let conn = h.open_with_token("a", None);
    let mut epoch = String::new();
    for n in 1..=20 {
        epoch = publish_acked(&mut h, conn, "t", n).1;
        assert!(h.sb.stats().history_bytes <= 300);
    }
    let page = h.ask1(conn, r#"{"type":"history","topic":"t"}"#);
    assert_eq!(page["offset"], 20);
    assert_eq!(page["epoch"], epoch.as_str());
    let kept: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    assert!(!kept.is_empty() && kept.len() < 20, "{kept:?}");
    assert_eq!(*kept.last().unwrap(), 20);
}

#[test]
fn every_malformed_since_is_error_400_echoing_the_id_and_the_connection_stays_open() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    for since in [
        "1",
        "{}",
        r#"{"offset":1.0,"epoch":"e"}"#,
        r#"{"offset":-1,"epoch":"e"}"#,
        r#"{"offset":"1","epoch":"e"}"#,
        r#"{"offset":1,"epoch":""}"#,
        r#"{"offset":1,"epoch":"012345678901234567890123456789012"}"#,
        r#"{"offset":1,"epoch":7}"#,
        r#"{"offset":1,"epoch":"e","more":1}"#,
    ] {
        let reply = h.ask1(
            c,
            &format!(r#"{{"type":"subscribe","topic":"t","since":{since},"id":"x"}}"#),
        );
        assert_error(&reply, 400, "since");
        assert_eq!(reply["id"], "x");
    }
    assert!(h.is_open(c));
    let null = h.ask1(c, r#"{"type":"subscribe","topic":"t","since":null}"#);
    assert_eq!(null["type"], "subscribed");
    assert!(null.get("recovered").is_none(), "null is no since: {null}");
}

#[test]
fn since_on_a_pattern_or_a_presence_topic_is_error_400() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let since = r#""since":{"offset":0,"epoch":"e"}"#;
    let reply = h.ask1(
        c,
        &format!(r#"{{"type":"subscribe","topic":"chat.*",{since}}}"#),
    );
    assert_error(&reply, 400, "pattern");
    let reply = h.ask1(
        c,
        &format!(r#"{{"type":"subscribe","topic":"presence.bob",{since}}}"#),
    );
    assert_error(&reply, 400, "presence");
    assert_eq!(
        h.sb.stats().subscriptions,
        0,
        "a refused subscribe holds nothing"
    );
}

#[test]
fn history_lists_the_latest_limit_or_what_came_after_since_oldest_first() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let mut epoch = String::new();
    for n in 1..=5 {
        epoch = publish_acked(&mut h, c, "t", n).1;
    }
    let listed = |v: &Value| -> Vec<u64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect()
    };
    let latest = h.ask1(c, r#"{"type":"history","topic":"t","limit":2,"id":"h"}"#);
    assert_eq!(latest["type"], "history");
    assert_eq!(latest["id"], "h");
    assert_eq!(
        (latest["offset"].as_u64(), latest["epoch"].as_str()),
        (Some(5), Some(&*epoch))
    );
    assert_eq!(listed(&latest), vec![4, 5]);
    assert_eq!(latest["messages"][0]["data"], json!({"n":4}));
    assert_eq!(latest["messages"][0]["metadata"], json!({"senderId":"a"}));
    assert_timestamp_format(latest["messages"][0]["timestamp"].as_str().unwrap());
    let all = h.ask1(c, r#"{"type":"history","topic":"t"}"#);
    assert_eq!(listed(&all), vec![1, 2, 3, 4, 5]);
    let after = h.ask1(
        c,
        &json!({"type":"history","topic":"t","limit":2,"since":{"offset":1,"epoch":epoch}})
            .to_string(),
    );
    assert_eq!(listed(&after), vec![2, 3], "the first `limit` after since");
    let none = h.ask1(
        c,
        &json!({"type":"history","topic":"t","since":{"offset":5,"epoch":epoch}}).to_string(),
    );
    assert_eq!(listed(&none), Vec::<u64>::new());
    let empty = h.ask1(c, r#"{"type":"history","topic":"never.used"}"#);
    assert_eq!(empty["offset"], 0, "asking starts the stream: {empty}");
    let started = empty["epoch"].clone();
    let sub = h.ask1(c, r#"{"type":"subscribe","topic":"never.used"}"#);
    assert_eq!(
        sub["epoch"], started,
        "and it stays for the subscriber that follows"
    );
}

#[test]
fn history_since_another_epoch_or_ahead_is_error_410() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let (_, epoch) = publish_acked(&mut h, c, "t", 1);
    let other = h.ask1(
        c,
        r#"{"type":"history","topic":"t","since":{"offset":0,"epoch":"zzz"},"id":"q"}"#,
    );
    assert_error(&other, 410, "epoch");
    assert_eq!(other["id"], "q");
    let ahead = h.ask1(
        c,
        &json!({"type":"history","topic":"t","since":{"offset":2,"epoch":epoch}}).to_string(),
    );
    assert_error(&ahead, 410, "ahead");
}

#[test]
fn history_checks_authentication_then_topic_then_claim_then_limit() {
    let mut h = Harness::new();
    let anon = h.open_anonymous();
    let reply = h.ask1(anon, r#"{"type":"history","topic":"t"}"#);
    assert_error(&reply, 401, "not authenticated");
    let reply = h.ask1(anon, r#"{"type":"history","topic":"t","limit":0}"#);
    assert_error(&reply, 401, "not authenticated");
    let limited = h.open_with_claims(
        &Claims {
            topics: Some(vec!["chat.*".into()]),
            ..claims("lim")
        },
        None,
    );
    for (frame, code, names) in [
        (r#"{"type":"history","topic":"chat.*"}"#, 400, "topic"),
        (
            r#"{"type":"history","topic":"presence.bob"}"#,
            400,
            "presence",
        ),
        (r#"{"type":"history","topic":"other"}"#, 403, "not allowed"),
        (
            r#"{"type":"history","topic":"chat.a","limit":0}"#,
            400,
            "limit",
        ),
        (
            r#"{"type":"history","topic":"chat.a","limit":1001}"#,
            400,
            "limit",
        ),
        (
            r#"{"type":"history","topic":"chat.a","limit":1.5}"#,
            400,
            "limit",
        ),
        (
            r#"{"type":"history","topic":"chat.a","limit":"5"}"#,
            400,
            "limit",
        ),
        (r#"{"type":"history","limit":5}"#, 400, "topic"),
    ] {
        let reply = h.ask1(limited, frame);
        assert_error(&reply, code, names);
    }
    let ok = h.ask1(
        limited,
        r#"{"type":"history","topic":"chat.a","limit":1000}"#,
    );
    assert_eq!(ok["type"], "history");
    let ok = h.ask1(limited, r#"{"type":"history","topic":"chat.a","limit":1}"#);
    assert_eq!(ok["type"], "history");
}

#[test]
fn with_history_size_0_no_frame_carries_a_position_and_since_and_history_are_400() {
    let mut h = Harness::with(config(0));
    let c = h.open_with_token("a", None);
    let sub = h.ask1(c, r#"{"type":"subscribe","topic":"t"}"#);
    assert!(sub.get("offset").is_none(), "{sub}");
    let replies = h.ask(c, r#"{"type":"message","topic":"t","data":1,"id":"m"}"#);
    assert_eq!(replies.len(), 2);
    for r in &replies {
        assert!(r.get("offset").is_none() && r.get("epoch").is_none(), "{r}");
    }
    let reply = h.ask1(
        c,
        r#"{"type":"subscribe","topic":"t","since":{"offset":0,"epoch":"e"}}"#,
    );
    assert_error(&reply, 400, "history is off");
    let reply = h.ask1(c, r#"{"type":"history","topic":"t"}"#);
    assert_error(&reply, 400, "history is off");
    let ok = h.ask1(c, r#"{"type":"subscribe","topic":"t","since":null}"#);
    assert_eq!(ok["type"], "subscribed");
    assert_eq!(h.sb.stats().history_streams, 0);
}

#[test]
fn a_stream_with_a_subscriber_keeps_its_epoch_after_its_messages_expire_and_an_idle_one_goes() {
    let mut c = Config::default();
    c.history_ttl = secs(10);
    let mut h = Harness::with(c);
    let holder = h.open_with_token("a", None);
    h.subscribe(holder, "held");
    let (_, held) = publish_acked(&mut h, holder, "held", 1);
    let (_, idle) = publish_acked(&mut h, holder, "idle", 1);
    h.sent_to(holder);
    h.advance(secs(30));
    let replies = subscribe_since(&mut h, holder, "held", 1, &held);
    assert_eq!(
        replies[0]["recovered"], true,
        "nothing was missed: {replies:?}"
    );
    assert_eq!(
        h.sb.stats().history_messages,
        0,
        "the sweep freed the expired messages"
    );
    // Idle (nothing kept, no subscriber) for a ttl more: dropped.
    h.advance(secs(11));
    let replies = subscribe_since(&mut h, holder, "idle", 1, &idle);
    assert_eq!(replies[0]["recovered"], false);
    assert_ne!(
        replies[0]["epoch"],
        idle.as_str(),
        "without a subscriber the stream went"
    );
}

#[test]
fn idle_streams_asked_about_are_bounded_whatever_a_client_asks() {
    let mut c = Config::default();
    c.max_messages_per_sec = 0;
    let mut h = Harness::with(c);
    let conn = h.open_with_token("a", None);
    for i in 0..12_000 {
        h.frame(conn, &format!(r#"{{"type":"history","topic":"t{i}"}}"#));
        h.drain();
        assert!(h.sb.stats().history_streams <= 10_000, "at every step");
    }
    assert_eq!(
        h.sb.stats().history_streams,
        10_000,
        "the oldest went first"
    );
}

#[test]
fn the_same_epoch_seed_draws_the_same_epochs_and_another_seed_others() {
    let epoch_of = |seed: u64| {
        let mut h = Harness::new();
        h.sb = std::mem::replace(
            &mut h.sb,
            switchboard_core::Switchboard::new(
                Config::default(),
                switchboard_core::auth::Hs256Verifier::new(SECRET),
                HASH_SEED,
            ),
        )
        .with_epoch_seed(seed);
        let c = h.open_with_token("a", None);
        publish_acked(&mut h, c, "t", 1).1
    };
    assert_eq!(epoch_of(1), epoch_of(1));
    assert_ne!(epoch_of(1), epoch_of(2));
}

#[test]
fn the_application_publish_returns_the_position_it_got() {
    let mut h = Harness::new();
    let c = h.open_with_token("a", None);
    let (_, epoch) = publish_acked(&mut h, c, "t", 1);
    let now: Now = h.now;
    let published = h.sb.publish(now, "t", &raw("2"), None).unwrap();
    let position = published.position.expect("history is on");
    assert_eq!((position.offset, position.epoch.as_str()), (2, &*epoch));
    let page = h.sb.history(now, "t", 10, None).unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[1].offset(), 2);
}
