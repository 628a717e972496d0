//! Positions on every frame, the `history` message and `GET /api/history`, malformed input,
//! and history turned off.

use serde_json::{json, Value};
use switchboard_core::auth::sign_hs256;

use super::{
    api_publish, assert_no_position, expect_message_at, keys, next_id, publish, subscribe,
    subscribe_at, Pos,
};
use crate::util::claims;
use crate::ws::Client;
use crate::{Adapter, Settings, TestServer};

/// Sends a `history` request for `topic` with these extra members (`limit`, `since`) and an
/// id; expects the `history` reply (exactly its members, the id echoed); returns it.
async fn history(client: &mut Client, topic: &str, extra: Value) -> Value {
    let id = next_id("h");
    let mut request = json!({"type": "history", "topic": topic, "id": id});
    for (key, value) in extra.as_object().expect("members") {
        request[key] = value.clone();
    }
    let reply = client.request(&request).await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["topic"].as_str(),
            reply["id"].as_str()
        ),
        (Some("history"), Some(topic), Some(id.as_str())),
        "{}: {request} should be answered `history`, got {reply}",
        client.label
    );
    assert_eq!(
        keys(&reply),
        [
            "epoch",
            "id",
            "messages",
            "offset",
            "timestamp",
            "topic",
            "type"
        ],
        "the members of a `history` reply: {reply}"
    );
    reply
}

/// The offsets of a `history` reply's (or `/api/history` body's) messages.
fn offsets(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("`messages` is an array: {page}"))
        .iter()
        .map(|m| {
            m["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("a listed message has an offset: {m}"))
        })
        .collect()
}

/// A listed message as a `message` frame gives it: its offset, data, metadata and timestamp.
fn listed(frame: &Value) -> Value {
    json!({
        "offset": frame["offset"],
        "data": frame["data"],
        "metadata": frame["metadata"],
        "timestamp": frame["timestamp"],
    })
}

/// The listed messages `from..=to` (offsets) of these frames (`frames[i]` has offset i + 1).
fn listing(frames: &[Value], from: u64, to: u64) -> Value {
    let (from, to) = (from as usize, to as usize);
    Value::Array(frames[from - 1..to].iter().map(listed).collect())
}

/// Five messages on `topic`, three by a client (with metadata, one with data `1.50` as sent)
/// and two by `POST /api/publish`, as a subscriber got them (text and JSON), offsets 1..=5.
async fn five_messages(server: &TestServer, topic: &str) -> (Pos, Vec<String>, Vec<Value>) {
    let (mut witness, _) = Client::authed(server, "witness").await;
    let start = subscribe_at(&mut witness, topic).await;
    let (mut bob, _) = Client::authed(server, "bob").await;
    let raw = format!(
        r#"{{"type":"message","topic":"{topic}","data":{{"x":1.50}},"metadata":{{"k":"v"}},"id":"raw"}}"#
    );
    bob.send_text(&raw).await;
    let ack = bob.recv_type("ack").await;
    assert_eq!(Pos::of(&ack), start.at(1), "{ack}");
    assert_eq!(publish(&mut bob, topic, json!([2])).await, start.at(2));
    for n in 3..=4 {
        let (delivered, at) = api_publish(server, topic, json!({"n": n})).await;
        assert_eq!((delivered, at), (1, start.at(n)), "POST /api/publish");
    }
    assert_eq!(publish(&mut bob, topic, json!(null)).await, start.at(5));
    let (mut texts, mut frames) = (Vec::new(), Vec::new());
    for n in 1..=5 {
        let (text, frame) = expect_message_at(&mut witness, topic, &start.at(n)).await;
        texts.push(text);
        frames.push(frame);
    }
    assert!(texts[0].contains("1.50"), "data as sent: {}", texts[0]);
    (start, texts, frames)
}

/// Every message on a topic (by a client, with or without an id, or by `POST /api/publish`)
/// gets the next offset of that topic's stream, in one epoch; `ack` and `message` carry it
/// (before `timestamp`), `POST /api/publish` answers it; every topic has its own stream,
/// started by a subscribe, a publish or a `history` request; `subscribed` to a concrete topic
/// gives where the stream stands, to a pattern or a presence topic no position.
pub async fn history_every_publish_gets_the_next_offset_of_its_topics_stream<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, _) = Client::authed(&server, "alice").await;
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let (mut carol, _) = Client::authed(&server, "carol").await;

    assert_no_position(&subscribe(&mut alice, "news.*", None).await);
    assert_no_position(&subscribe(&mut alice, "presence.bob", None).await);
    let snapshot = alice.recv_type("presence").await;
    assert_no_position(&snapshot);
    let a = subscribe_at(&mut carol, "news.a").await;
    assert_eq!(a.offset, 0, "a stream started by a subscribe stands at 0");

    // By a client, with an id: the ack and both subscribers' messages carry offset 1.
    let ack = bob
        .request(&json!({"type": "message", "topic": "news.a", "data": 1, "id": "p1"}))
        .await;
    assert_eq!(
        keys(&ack),
        ["epoch", "id", "offset", "timestamp", "type"],
        "{ack}"
    );
    assert_eq!(
        (ack["type"].as_str(), Pos::of(&ack)),
        (Some("ack"), a.at(1)),
        "{ack}"
    );
    let (text, msg) = expect_message_at(&mut carol, "news.a", &a.at(1)).await;
    assert_eq!(
        keys(&msg),
        [
            "data",
            "epoch",
            "metadata",
            "offset",
            "timestamp",
            "topic",
            "type"
        ],
        "{msg}"
    );
    let tail = format!(r#","offset":1,"epoch":"{}","timestamp":""#, a.epoch);
    assert!(
        text.contains(&tail),
        "offset and epoch come right before the timestamp: {text}"
    );
    let (through_pattern, _) = expect_message_at(&mut alice, "news.a", &a.at(1)).await;
    assert_eq!(through_pattern, text, "one frame for every subscriber");

    // By the HTTP API, and by a client without an id: the next offsets.
    let (delivered, at) = api_publish(&server, "news.a", json!(2)).await;
    assert_eq!((delivered, at), (2, a.at(2)), "POST /api/publish");
    bob.send_json(&json!({"type": "message", "topic": "news.a", "data": 3}))
        .await;
    for offset in 2..=3 {
        expect_message_at(&mut carol, "news.a", &a.at(offset)).await;
        expect_message_at(&mut alice, "news.a", &a.at(offset)).await;
    }

    // Another topic: its own stream, from offset 1, in its own epoch.
    let b = publish(&mut bob, "news.b", json!("b1")).await;
    assert_eq!(b.offset, 1, "a stream started by a publish: {b:?}");
    assert_ne!(b.epoch, a.epoch, "each topic has its own stream");
    let (delivered, at) = api_publish(&server, "news.b", json!("b2")).await;
    assert_eq!((delivered, at), (1, b.at(2)), "POST /api/publish");
    for offset in 1..=2 {
        expect_message_at(&mut alice, "news.b", &b.at(offset)).await;
    }

    // A later subscriber is told where the stream stands; the sender's own subscription gets
    // the ack, then the message, at the same position.
    let (mut dave, _) = Client::authed(&server, "dave").await;
    assert_eq!(subscribe_at(&mut dave, "news.a").await, a.at(3));
    assert_eq!(publish(&mut carol, "news.a", json!(4)).await, a.at(4));
    for client in [&mut carol, &mut dave, &mut alice] {
        expect_message_at(client, "news.a", &a.at(4)).await;
    }

    // A stream started by a `history` request: the subscribe and the publish that follow
    // continue it.
    let page = history(&mut bob, "news.fresh", json!({})).await;
    let fresh = Pos::of(&page);
    assert_eq!(fresh.offset, 0, "{page}");
    assert_eq!(page["messages"], json!([]), "{page}");
    assert_eq!(subscribe_at(&mut dave, "news.fresh").await, fresh);
    assert_eq!(publish(&mut bob, "news.fresh", json!(1)).await, fresh.at(1));
    expect_message_at(&mut dave, "news.fresh", &fresh.at(1)).await;
    expect_message_at(&mut alice, "news.fresh", &fresh.at(1)).await;

    for client in [&mut alice, &mut bob, &mut carol, &mut dave] {
        client.expect_nothing_pending().await;
    }
}

/// `history`: without `since` the latest `limit` kept messages (default 100), with `since`
/// the kept messages after it (at most `limit`), oldest first, each as its `message` frame
/// gave it (data as sent); a `since` of another epoch or ahead: `error` 410. A `since` older
/// than what is kept lists what is kept. Reading history subscribes to nothing.
pub async fn history_the_history_message_lists_kept_messages_oldest_first_within_limit_and_since<
    A: Adapter,
>() {
    let server = A::start(Settings::default());
    let topic = "feed.a";
    let (start, texts, frames) = five_messages(&server, topic).await;
    let now = start.at(5);
    let (mut alice, _) = Client::authed(&server, "alice").await;

    let page = history(&mut alice, topic, json!({})).await;
    assert_eq!(Pos::of(&page), now, "{page}");
    assert_eq!(
        page["messages"],
        listing(&frames, 1, 5),
        "all, oldest first"
    );
    for message in page["messages"].as_array().expect("messages") {
        assert_eq!(
            keys(message),
            ["data", "metadata", "offset", "timestamp"],
            "{message}"
        );
    }
    let cases = [
        (json!({"limit": 2}), 4, 5),
        (json!({"limit": 1}), 5, 5),
        (json!({"limit": 1000}), 1, 5),
        (json!({"since": null}), 1, 5),
        (json!({"since": start.at(0).since()}), 1, 5),
        (json!({"since": start.at(1).since()}), 2, 5),
        (json!({"since": start.at(1).since(), "limit": 2}), 2, 3),
        (json!({"since": start.at(4).since(), "limit": 2}), 5, 5),
        (json!({"since": now.since()}), 6, 5),
    ];
    for (extra, from, to) in cases {
        let page = history(&mut alice, topic, extra.clone()).await;
        assert_eq!(Pos::of(&page), now, "{extra}: {page}");
        let want: Vec<u64> = (from..=to).collect();
        assert_eq!(offsets(&page), want, "{extra}: {page}");
        if from <= to {
            assert_eq!(page["messages"], listing(&frames, from, to), "{extra}");
        }
    }
    // Data as sent: the listing quotes the frame.
    alice
        .send_json(&json!({"type": "history", "topic": topic, "limit": 5, "id": "raw"}))
        .await;
    let raw = alice.recv_text().await;
    assert!(
        raw.contains(r#""data":{"x":1.50},"metadata":{"k":"v","senderId":"bob"}"#),
        "a listed message quotes its frame: {raw} (the frame was {})",
        texts[0]
    );

    let other = if now.epoch == "AAAAAAAAAAA" {
        "BBBBBBBBBBB"
    } else {
        "AAAAAAAAAAA"
    };
    for since in [
        now.at(6),
        now.at(u64::MAX),
        Pos {
            offset: 1,
            epoch: other.into(),
        },
        Pos {
            offset: 0,
            epoch: other.into(),
        },
    ] {
        let request = json!({"type": "history", "topic": topic, "since": since.since(), "id": "g"});
        alice.expect_error(&request, 410).await;
    }

    // Reading is not subscribing.
    assert_eq!(
        api_publish(&server, topic, json!(6)).await.1,
        now.at(6),
        "POST /api/publish"
    );
    alice.expect_nothing_pending().await;

    // A `since` older than what is kept (history_size 3): what is kept, no 410.
    let mut settings = Settings::default();
    settings.core.history_size = 3;
    let small = A::start(settings);
    let (start, _, frames) = five_messages(&small, topic).await;
    let (mut carol, _) = Client::authed(&small, "carol").await;
    for (extra, from, to) in [
        (json!({}), 3, 5),
        (json!({"limit": 2}), 4, 5),
        (json!({"since": start.at(0).since()}), 3, 5),
        (json!({"since": start.at(1).since(), "limit": 2}), 3, 4),
    ] {
        let page = history(&mut carol, topic, extra.clone()).await;
        assert_eq!(Pos::of(&page), start.at(5), "{extra}: {page}");
        assert_eq!(
            page["messages"],
            listing(&frames, from, to),
            "{extra}: {page}"
        );
    }
    carol.expect_nothing_pending().await;
}

/// `GET /api/history/{topic}` lists what the `history` message lists, in a body of `topic`,
/// `offset`, `epoch`, `messages` and `timestamp`; 410 for another epoch or an offset ahead;
/// 400 for bad parameters (a `since` without `epoch` or the reverse included) and topics
/// without history; 401 without the API key.
pub async fn history_api_history_lists_like_the_history_message_and_refuses_bad_parameters<
    A: Adapter,
>() {
    let server = A::start(Settings::default());
    let topic = "feed.b";
    let (start, _, frames) = five_messages(&server, topic).await;
    let now = start.at(5);
    let epoch = now.epoch.as_str();
    let (mut alice, _) = Client::authed(&server, "alice").await;

    let same = [
        ("", json!({})),
        ("?limit=2", json!({"limit": 2})),
        ("?limit=1000", json!({"limit": 1000})),
        (
            "?since=0&epoch=EPOCH",
            json!({"since": start.at(0).since()}),
        ),
        (
            "?since=1&epoch=EPOCH",
            json!({"since": start.at(1).since()}),
        ),
        (
            "?epoch=EPOCH&limit=2&since=1",
            json!({"since": start.at(1).since(), "limit": 2}),
        ),
        ("?since=5&epoch=EPOCH", json!({"since": now.since()})),
    ];
    for (query, extra) in same {
        let query = query.replace("EPOCH", epoch);
        let r = server
            .api_get(&format!("/api/history/{topic}{query}"))
            .await;
        r.assert_status(200, &format!("GET /api/history/{topic}{query}"));
        let body = r.json();
        assert_eq!(
            keys(&body),
            ["epoch", "messages", "offset", "timestamp", "topic"],
            "{query}: {body}"
        );
        assert_eq!(body["topic"], json!(topic), "{query}: {body}");
        assert_eq!(Pos::of(&body), now, "{query}: {body}");
        let page = history(&mut alice, topic, extra).await;
        assert_eq!(body["messages"], page["messages"], "{query}");
    }
    let body = server
        .api_get(&format!(
            "/api/history/{topic}?since=1&epoch={epoch}&limit=2"
        ))
        .await
        .json();
    assert_eq!(body["messages"], listing(&frames, 2, 3), "{body}");
    let body = server
        .api_get(&format!("/api/history/{topic}?limit=2"))
        .await
        .json();
    assert_eq!(body["messages"], listing(&frames, 4, 5), "{body}");
    let body = server.api_get("/api/history/feed%2Eb").await;
    body.assert_status(200, "a percent-encoded topic");
    assert_eq!(offsets(&body.json()), [1, 2, 3, 4, 5]);
    let body = server.api_get("/api/history/feed.never").await;
    body.assert_status(200, "a topic with nothing published");
    let body = body.json();
    assert_eq!(body["messages"], json!([]), "{body}");
    assert_eq!(Pos::of(&body).offset, 0, "{body}");

    let other = if epoch == "AAAAAAAAAAA" {
        "BBBBBBBBBBB"
    } else {
        "AAAAAAAAAAA"
    };
    for query in [
        format!("?since=6&epoch={epoch}"),
        format!("?since=18446744073709551615&epoch={epoch}"),
        format!("?since=1&epoch={other}"),
        format!("?since=0&epoch={other}"),
    ] {
        server
            .api_get(&format!("/api/history/{topic}{query}"))
            .await
            .assert_api_error(410, &format!("GET /api/history/{topic}{query}"));
    }
    let long = "e".repeat(33);
    for query in [
        "?since=1".to_owned(),
        format!("?epoch={epoch}"),
        "?limit=0".to_owned(),
        "?limit=1001".to_owned(),
        "?limit=1.5".to_owned(),
        "?limit=-1".to_owned(),
        "?limit=abc".to_owned(),
        "?limit=".to_owned(),
        format!("?since=-1&epoch={epoch}"),
        format!("?since=1.0&epoch={epoch}"),
        format!("?since=x&epoch={epoch}"),
        "?since=1&epoch=".to_owned(),
        format!("?since=1&epoch={long}"),
    ] {
        server
            .api_get(&format!("/api/history/{topic}{query}"))
            .await
            .assert_api_error(400, &format!("GET /api/history/{topic}{query}"));
    }
    for path in [
        "/api/history/feed.*",
        "/api/history/feed.%2A",
        "/api/history/feed.**",
        "/api/history/presence.bob",
        "/api/history/feed..b",
    ] {
        server
            .api_get(path)
            .await
            .assert_api_error(400, &format!("GET {path}"));
    }
    server
        .get(&format!("/api/history/{topic}"))
        .await
        .assert_api_error(401, "GET /api/history without the API key");
    alice.expect_nothing_pending().await;
}

/// Every malformed `since` on `subscribe` (not an object; `offset` missing or not a JSON
/// integer >= 0, `1.0` and `1e3` included; `epoch` missing or not a string of 1..=32 bytes;
/// other keys), and a `since` on a pattern or a presence topic: `error` 400 echoing the id,
/// no subscription made, the connection open. `"since": null` is no `since`.
pub async fn history_malformed_since_is_400_and_subscribes_to_nothing<A: Adapter>() {
    let server = A::start(Settings::default());
    let topic = "chat.m";
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let at = publish(&mut bob, topic, json!(1)).await;
    let e = at.epoch.as_str();
    let (mut alice, _) = Client::authed(&server, "alice").await;

    let malformed = [
        json!(1),
        json!("since"),
        json!(true),
        json!([]),
        json!([1, e]),
        json!({}),
        json!({"offset": 1}),
        json!({"epoch": e}),
        json!({"offset": 1.0, "epoch": e}),
        json!({"offset": 1.5, "epoch": e}),
        json!({"offset": -1, "epoch": e}),
        json!({"offset": "1", "epoch": e}),
        json!({"offset": null, "epoch": e}),
        json!({"offset": 1, "epoch": ""}),
        json!({"offset": 1, "epoch": "e".repeat(33)}),
        json!({"offset": 1, "epoch": 1}),
        json!({"offset": 1, "epoch": null}),
        json!({"offset": 1, "epoch": [e]}),
        json!({"offset": 1, "epoch": e, "extra": true}),
        json!({"offset": 1, "epoch": e, "recovered": true}),
    ];
    for (i, since) in malformed.into_iter().enumerate() {
        let request =
            json!({"type": "subscribe", "topic": topic, "since": since, "id": format!("m{i}")});
        let reply = alice.expect_error(&request, 400).await;
        assert!(
            reply["message"]
                .as_str()
                .is_some_and(|m| m.contains("since")),
            "the error names `since`: {reply}"
        );
    }
    // Numbers that are not JSON integers, written as a client may write them.
    for offset in ["1.0", "1e3", "1E3", "-0", "0.0"] {
        let text = format!(
            r#"{{"type":"subscribe","topic":"{topic}","since":{{"offset":{offset},"epoch":"{e}"}},"id":"n"}}"#
        );
        alice.send_text(&text).await;
        let reply = alice.recv_json().await;
        assert_eq!(
            (
                reply["type"].as_str(),
                reply["code"].as_u64(),
                reply["id"].as_str()
            ),
            (Some("error"), Some(400), Some("n")),
            "offset {offset} is not a JSON integer: {reply}"
        );
    }
    // A well-formed since where none can apply.
    for pattern in ["chat.*", "chat.**", "*.m", "presence.bob", "presence.*"] {
        let request =
            json!({"type": "subscribe", "topic": pattern, "since": at.since(), "id": "p"});
        alice.expect_error(&request, 400).await;
    }
    alice.expect_nothing_pending().await;

    // None of these subscribed: a message on the topic does not reach alice.
    assert_eq!(publish(&mut bob, topic, json!(2)).await, at.at(2));
    alice.expect_nothing_pending().await;

    // `"since": null` is a plain subscribe.
    let reply = subscribe(&mut alice, topic, Some(Value::Null)).await;
    assert!(reply.get("recovered").is_none(), "no since: {reply}");
    assert_eq!(Pos::of(&reply), at.at(2), "{reply}");
    alice.expect_nothing_pending().await;
    assert_eq!(publish(&mut bob, topic, json!(3)).await, at.at(3));
    expect_message_at(&mut alice, topic, &at.at(3)).await;
    alice.expect_nothing_pending().await;
}

/// A `history` request is refused with the first error that applies, echoing its id, the
/// connection staying open: unauthenticated 401; a bad `limit` (0, 1001, 1.5, "5", -1) or
/// `since` 400; a pattern, a presence topic or an invalid topic 400; outside the token's
/// `topics` 403.
pub async fn history_malformed_history_requests_get_the_first_error_that_applies<A: Adapter>() {
    let server = A::start(Settings::default());
    let topic = "chat.h";
    let (mut alice, _) = Client::authed(&server, "alice").await;
    let at = publish(&mut alice, topic, json!(1)).await;

    let limits = [json!(0), json!(1001), json!(1.5), json!("5"), json!(-1)];
    for (i, limit) in limits.iter().enumerate() {
        let request =
            json!({"type": "history", "topic": topic, "limit": limit, "id": format!("l{i}")});
        let reply = alice.expect_error(&request, 400).await;
        assert!(
            reply["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit")),
            "the error names `limit`: {reply}"
        );
    }
    for since in [
        json!({"offset": 1.0, "epoch": at.epoch}),
        json!({"offset": 1, "epoch": ""}),
        json!({"offset": 1, "epoch": at.epoch, "extra": 1}),
        json!(1),
    ] {
        let request = json!({"type": "history", "topic": topic, "since": since, "id": "s"});
        alice.expect_error(&request, 400).await;
    }
    for bad in [
        json!("chat.*"),
        json!("chat.**"),
        json!("presence.bob"),
        json!("presence.*"),
        json!("chat..h"),
        json!(""),
        json!(5),
    ] {
        let request = json!({"type": "history", "topic": bad, "id": "t"});
        alice.expect_error(&request, 400).await;
    }
    alice
        .expect_error(&json!({"type": "history", "id": "no-topic"}), 400)
        .await;
    alice.expect_nothing_pending().await;

    // Unauthenticated: 401 comes first, whatever else is wrong.
    let mut anon = Client::anon(&server, "anon").await;
    for request in [
        json!({"type": "history", "topic": topic, "id": "a1"}),
        json!({"type": "history", "topic": "chat.*", "id": "a2"}),
        json!({"type": "history", "topic": topic, "limit": 0, "id": "a3"}),
    ] {
        anon.expect_error(&request, 401).await;
    }
    anon.expect_nothing_pending().await;

    // The token's `topics` claim: 403 outside it, after the topic checks.
    let mut c = claims("limited");
    c.topics = Some(vec!["chat.*".into()]);
    let token = sign_hs256(&server.jwt_secret, &c);
    let mut limited = Client::connect(&server, &format!("token={token}"), "limited").await;
    limited.recv_type("auth_success").await;
    limited
        .expect_error(
            &json!({"type": "history", "topic": "news.a", "id": "f"}),
            403,
        )
        .await;
    for (bad, why) in [
        ("news.*", "a pattern"),
        ("presence.bob", "a presence topic"),
    ] {
        let reply = limited
            .expect_error(&json!({"type": "history", "topic": bad, "id": "f2"}), 400)
            .await;
        assert_eq!(
            reply["code"],
            json!(400),
            "{why} outside the claim: {reply}"
        );
    }
    let page = history(&mut limited, topic, json!({})).await;
    assert_eq!(offsets(&page), [1], "within the claim: {page}");
    limited.expect_nothing_pending().await;
}

/// `history_size` 0 turns history off: `subscribed`, `message`, `ack` and `POST /api/publish`
/// carry no position; `since` (not null), `history` and `GET /api/history` answer 400
/// "history is off".
pub async fn history_off_frames_carry_no_position_and_since_history_and_api_history_are_400<
    A: Adapter,
>() {
    let mut settings = Settings::default();
    settings.core.history_size = 0;
    let server = A::start(settings);
    let topic = "chat.off";
    let (mut alice, _) = Client::authed(&server, "alice").await;
    let (mut bob, _) = Client::authed(&server, "bob").await;

    let reply = subscribe(&mut alice, topic, None).await;
    assert_eq!(
        keys(&reply),
        ["id", "timestamp", "topic", "type"],
        "history off: {reply}"
    );
    let ack = bob
        .request(&json!({"type": "message", "topic": topic, "data": 1, "id": "p"}))
        .await;
    assert_eq!(
        (ack["type"].as_str(), keys(&ack)),
        (Some("ack"), vec!["id", "timestamp", "type"]),
        "history off: {ack}"
    );
    let msg = alice.recv_type("message").await;
    assert_eq!(
        keys(&msg),
        ["data", "metadata", "timestamp", "topic", "type"],
        "history off: {msg}"
    );
    let r = server
        .api_post("/api/publish", &json!({"topic": topic, "data": 2}))
        .await;
    r.assert_status(200, "POST /api/publish");
    assert_eq!(
        r.json(),
        json!({"delivered": 1}),
        "history off: {}",
        r.text()
    );
    assert_no_position(&alice.recv_type("message").await);

    let is_off = |reply: &Value| {
        assert!(
            reply["message"]
                .as_str()
                .is_some_and(|m| m.contains("history is off")),
            "the error says history is off: {reply}"
        );
    };
    let since = json!({"offset": 0, "epoch": "abc"});
    for request in [
        json!({"type": "subscribe", "topic": topic, "since": since, "id": "s1"}),
        json!({"type": "subscribe", "topic": "chat.other", "since": since, "id": "s2"}),
        json!({"type": "history", "topic": topic, "id": "h1"}),
        json!({"type": "history", "topic": topic, "limit": 5, "since": since, "id": "h2"}),
    ] {
        is_off(&alice.expect_error(&request, 400).await);
    }
    alice
        .expect_error(
            &json!({"type": "subscribe", "topic": "chat.*", "since": since, "id": "s3"}),
            400,
        )
        .await;
    let r = server.api_get(&format!("/api/history/{topic}")).await;
    r.assert_api_error(400, "GET /api/history with history off");
    is_off(&r.json()["error"]);
    server
        .api_get(&format!("/api/history/{topic}?since=0&epoch=abc"))
        .await
        .assert_api_error(400, "GET /api/history with history off");

    // `"since": null` is no `since`: a plain subscribe.
    let reply = subscribe(&mut alice, "chat.null", Some(Value::Null)).await;
    assert_no_position(&reply);
    alice.expect_nothing_pending().await;
    bob.expect_nothing_pending().await;
}
