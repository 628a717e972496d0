//! Recovery with `since`: exactly the missed frames after a lost connection, no gap and no
//! duplicate at the seam with live messages, and every reason for `recovered: false`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{
    api_publish, expect_frames, expect_message_at, publish, subscribe_at, subscribe_since, Pos,
};
use crate::util::token;
use crate::ws::{Client, RawWs};
use crate::{Adapter, Settings};

/// The text of the next data frame of a raw client, which must be a text frame.
async fn raw_text(ws: &mut RawWs) -> String {
    let frame = ws.recv_data().await;
    assert_eq!(
        frame.opcode,
        1,
        "raw client: expected a text frame, got opcode {} (close code {:?})",
        frame.opcode,
        frame.close_code()
    );
    String::from_utf8(frame.payload).expect("UTF-8 text")
}

/// A client whose TCP connection dies (a reset: no close handshake, unread frames lost) while
/// messages are published, by a client and by `POST /api/publish`, reconnects with `since` =
/// the last position it saw: `subscribed` with `recovered: true` and where the stream stands,
/// then exactly the missed frames (the very frames first sent) in order, then live messages.
pub async fn history_a_client_that_dropped_its_tcp_connection_recovers_every_missed_message<
    A: Adapter,
>() {
    let server = A::start(Settings::default());
    let topic = "chat.room1";
    let (mut witness, _) = Client::authed(&server, "witness").await;
    let start = subscribe_at(&mut witness, topic).await;
    assert_eq!(start.offset, 0, "a stream starts at offset 0");
    let (mut bob, _) = Client::authed(&server, "bob").await;

    let target = format!("/ws?token={}", token(&server.jwt_secret, "alice"));
    let mut phone = RawWs::connect(server.addr, &target, &[], None).await;
    assert_eq!(phone.recv_json().await["type"], json!("auth_success"));
    phone
        .send_json(&json!({"type": "subscribe", "topic": topic, "id": "s"}))
        .await;
    let reply = phone.recv_json().await;
    assert_eq!(
        (reply["type"].as_str(), reply["id"].as_str()),
        (Some("subscribed"), Some("s")),
        "{reply}"
    );
    assert_eq!(Pos::of(&reply), start, "one stream, one position: {reply}");

    // Every frame of the topic, as the witness got them: sent[i] has offset i + 1.
    let mut sent: Vec<String> = Vec::new();
    // Two messages the phone sees.
    assert_eq!(publish(&mut bob, topic, json!({"n": 1})).await, start.at(1));
    let (delivered, at) = api_publish(&server, topic, json!({"n": 2, "via": "api"})).await;
    assert_eq!((delivered, at), (2, start.at(2)), "POST /api/publish");
    for offset in 1..=2 {
        let (text, _) = expect_message_at(&mut witness, topic, &start.at(offset)).await;
        assert_eq!(
            raw_text(&mut phone).await,
            text,
            "every subscriber gets the same frame"
        );
        sent.push(text);
    }
    let last_seen = start.at(2);

    // Two more sent to the phone that it never reads; then its connection dies.
    assert_eq!(publish(&mut bob, topic, json!({"n": 3})).await, start.at(3));
    let (delivered, at) = api_publish(&server, topic, json!({"n": 4, "via": "api"})).await;
    assert_eq!((delivered, at), (2, start.at(4)), "POST /api/publish");
    phone.reset();
    // Two published while it is gone.
    assert_eq!(publish(&mut bob, topic, json!({"n": 5})).await, start.at(5));
    let (_, at) = api_publish(&server, topic, json!({"n": 6, "via": "api"})).await;
    assert_eq!(at, start.at(6), "POST /api/publish");
    for offset in 3..=6 {
        let (text, _) = expect_message_at(&mut witness, topic, &start.at(offset)).await;
        sent.push(text);
    }

    let (mut alice, _) = Client::authed(&server, "alice").await;
    let now = subscribe_since(&mut alice, topic, &last_seen, true).await;
    assert_eq!(
        now,
        start.at(6),
        "`subscribed` gives where the stream stands"
    );
    expect_frames(&mut alice, &sent[2..]).await;

    // Then live messages, continuing from the offset `subscribed` gave.
    assert_eq!(publish(&mut bob, topic, json!({"n": 7})).await, start.at(7));
    let (live, _) = expect_message_at(&mut witness, topic, &start.at(7)).await;
    let (got, _) = expect_message_at(&mut alice, topic, &start.at(7)).await;
    assert_eq!(got, live, "a live message after the replay");
    alice.expect_nothing_pending().await;
    witness.expect_nothing_pending().await;
}

/// While a publisher publishes without pause, a client subscribes with `since`: it gets every
/// offset after `since` exactly once, each the next (no gap, no duplicate where the replay
/// meets the live messages), each the very frame a subscriber that stayed got.
pub async fn history_recovery_while_a_publisher_publishes_has_no_gap_and_no_duplicate_at_the_seam<
    A: Adapter,
>() {
    let mut settings = Settings::default();
    settings.core.history_size = 100_000;
    settings.core.max_messages_per_sec = 1_000_000;
    settings.core.message_burst = 1_000_000;
    settings.core.max_outbound_bytes = 64 << 20;
    let server = A::start(settings);
    let topic = "ticker.seam";
    let (mut witness, _) = Client::authed(&server, "witness").await;
    let start = subscribe_at(&mut witness, topic).await;
    let (mut publisher, _) = Client::authed(&server, "publisher").await;

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let message = json!({"type": "message", "topic": topic, "data": {"n": n}});
                publisher.send_json(&message).await;
                tokio::task::yield_now().await;
            }
            // The last one with an id: its ack says where the publisher ended.
            publish(&mut publisher, topic, json!({"n": n + 1})).await
        }
    });

    // What the witness got: frames[i] has offset i + 1.
    let mut frames: Vec<String> = Vec::new();
    async fn witness_through(witness: &mut Client, start: &Pos, frames: &mut Vec<String>, to: u64) {
        while (frames.len() as u64) < to {
            let at = start.at(frames.len() as u64 + 1);
            let (text, _) = expect_message_at(witness, "ticker.seam", &at).await;
            frames.push(text);
        }
    }
    witness_through(&mut witness, &start, &mut frames, 40).await;

    // A client that saw offsets up to 10 comes back while the publisher goes on.
    let last_seen = start.at(10);
    let (mut back, _) = Client::authed(&server, "back").await;
    let at = subscribe_since(&mut back, topic, &last_seen, true).await;
    assert_eq!(at.epoch, start.epoch, "the stream's epoch: {at:?}");
    assert!(
        at.offset >= 40,
        "the stream stood at 40 or later when the subscription came: {at:?}"
    );
    // The replay, the seam, and 200 live messages past it; then the publisher stops.
    let mut received: Vec<String> = Vec::new();
    let mut next = last_seen.offset + 1;
    while next <= at.offset + 200 {
        let (text, _) = expect_message_at(&mut back, topic, &start.at(next)).await;
        received.push(text);
        next += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let last = crate::util::within("the publisher to stop", crate::util::WAIT, publishing)
        .await
        .expect("the publisher task");
    assert_eq!(last.epoch, start.epoch, "{last:?}");
    while next <= last.offset {
        let (text, _) = expect_message_at(&mut back, topic, &start.at(next)).await;
        received.push(text);
        next += 1;
    }
    back.expect_nothing_pending().await;
    witness_through(&mut witness, &start, &mut frames, last.offset).await;
    witness.expect_nothing_pending().await;

    let stayed = &frames[last_seen.offset as usize..];
    assert_eq!(received.len(), stayed.len());
    for (i, (got, want)) in received.iter().zip(stayed).enumerate() {
        assert_eq!(
            got,
            want,
            "offset {}: the client that came back got another frame than the one that stayed \
             (the seam was at {})",
            last_seen.offset + 1 + i as u64,
            at.offset
        );
    }
}

/// A `since` whose epoch is not the stream's (any string of 1..=32 bytes, even one that no
/// server draws), or whose offset is ahead of the stream (up to beyond `u64`): `subscribed`
/// with `recovered: false` and where the stream stands, no replay, live messages from there.
/// Subscribing again to the held topic with a good `since` then replays as asked.
pub async fn history_a_position_of_another_epoch_or_ahead_of_the_stream_is_not_recovered<
    A: Adapter,
>() {
    let server = A::start(Settings::default());
    let topic = "chat.epochs";
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let first = publish(&mut bob, topic, json!(1)).await;
    assert_eq!(
        first.offset, 1,
        "the first message of a stream has offset 1"
    );
    for n in 2..=3 {
        assert_eq!(publish(&mut bob, topic, json!(n)).await, first.at(n));
    }
    let now = first.at(3);

    let (mut alice, _) = Client::authed(&server, "alice").await;
    let other = if now.epoch == "AAAAAAAAAAA" {
        "BBBBBBBBBBB"
    } else {
        "AAAAAAAAAAA"
    };
    let other_epochs = [
        other.to_owned(),
        "e".repeat(32),
        "not.an.epoch".to_owned(),
        "é".to_owned(),
    ];
    for epoch in &other_epochs {
        for offset in [0, 1, 3] {
            let since = Pos {
                offset,
                epoch: epoch.clone(),
            };
            let at = subscribe_since(&mut alice, topic, &since, false).await;
            assert_eq!(at, now, "since {since:?}");
            alice.expect_nothing_pending().await;
        }
    }
    for ahead in [4, 1000, u64::MAX] {
        let at = subscribe_since(&mut alice, topic, &now.at(ahead), false).await;
        assert_eq!(at, now, "since offset {ahead}");
        alice.expect_nothing_pending().await;
    }
    // Beyond u64: a JSON integer >= 0 all the same, and ahead of every stream.
    let huge = format!(
        r#"{{"type":"subscribe","topic":"{topic}","since":{{"offset":123456789012345678901234567890,"epoch":"{}"}},"id":"huge"}}"#,
        now.epoch
    );
    alice.send_text(&huge).await;
    let reply = alice.recv_json().await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["id"].as_str(),
            reply["recovered"].as_bool()
        ),
        (Some("subscribed"), Some("huge"), Some(false)),
        "an offset beyond u64 is ahead of the stream: {reply}"
    );
    assert_eq!(Pos::of(&reply), now, "{reply}");
    alice.expect_nothing_pending().await;

    // Held already: subscribing again with `since` replays as asked, and live messages still
    // come once.
    let at = subscribe_since(&mut alice, topic, &now.at(1), true).await;
    assert_eq!(at, now);
    for n in 2..=3 {
        let (_, msg) = expect_message_at(&mut alice, topic, &now.at(n)).await;
        assert_eq!(msg["data"], json!(n), "{msg}");
    }
    alice.expect_nothing_pending().await;
    let at = subscribe_since(&mut alice, topic, &now, true).await;
    assert_eq!(at, now, "nothing missed: recovered, nothing replayed");
    alice.expect_nothing_pending().await;
    assert_eq!(publish(&mut bob, topic, json!(4)).await, now.at(4));
    let (_, msg) = expect_message_at(&mut alice, topic, &now.at(4)).await;
    assert_eq!(msg["data"], json!(4), "{msg}");
    alice.expect_nothing_pending().await;
}

/// `history_size` 3: a `since` older than the 3 kept messages is `recovered: false` (no
/// replay); one at the oldest kept message's predecessor or later replays what follows it.
pub async fn history_messages_dropped_by_history_size_are_not_recovered<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.history_size = 3;
    let server = A::start(settings);
    let topic = "chat.size";
    let (mut witness, _) = Client::authed(&server, "witness").await;
    let start = subscribe_at(&mut witness, topic).await;
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let mut sent = Vec::new();
    for n in 1..=5 {
        assert_eq!(publish(&mut bob, topic, json!(n)).await, start.at(n));
        sent.push(expect_message_at(&mut witness, topic, &start.at(n)).await.0);
    }
    let now = start.at(5);

    let (mut alice, _) = Client::authed(&server, "alice").await;
    for dropped in [1, 0] {
        let at = subscribe_since(&mut alice, topic, &start.at(dropped), false).await;
        assert_eq!(at, now, "message {} is no longer kept", dropped + 1);
        alice.expect_nothing_pending().await;
    }
    let at = subscribe_since(&mut alice, topic, &start.at(2), true).await;
    assert_eq!(at, now);
    expect_frames(&mut alice, &sent[2..]).await;
    alice.expect_nothing_pending().await;
    let at = subscribe_since(&mut alice, topic, &now, true).await;
    assert_eq!(at, now);
    alice.expect_nothing_pending().await;
}

/// `history_ttl` 60 s on the server's (manual) clock: a `since` followed by an expired
/// message is `recovered: false`; one followed only by messages younger than the ttl replays
/// them. A stream held by a subscriber keeps its epoch and offset when all has expired.
pub async fn history_messages_older_than_history_ttl_are_not_recovered<A: Adapter>() {
    let (clock, hand) = switchboard_adapter_kit::Clock::manual();
    let mut settings = Settings::default();
    settings.core.history_ttl = Duration::from_secs(60);
    // Nobody may look silent or unauthenticated when the clock jumps.
    settings.core.ping_interval = Duration::from_secs(600);
    settings.core.pong_timeout = Duration::from_secs(1200);
    settings.core.auth_timeout = Duration::from_secs(600);
    settings.clock = clock;
    let server = A::start(settings);
    let topic = "chat.ttl";
    let (mut witness, _) = Client::authed(&server, "witness").await;
    let start = subscribe_at(&mut witness, topic).await;
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let mut sent = Vec::new();
    for n in 1..=4 {
        if n == 3 {
            hand.advance(Duration::from_secs(40)); // 1 and 2 at t = 0, 3 and 4 at t = 40 s
        }
        assert_eq!(publish(&mut bob, topic, json!(n)).await, start.at(n));
        sent.push(expect_message_at(&mut witness, topic, &start.at(n)).await.0);
    }
    hand.advance(Duration::from_secs(30)); // t = 70 s: 1 and 2 have expired, 3 and 4 not
    let now = start.at(4);

    let (mut alice, _) = Client::authed(&server, "alice").await;
    for expired in [1, 0] {
        let at = subscribe_since(&mut alice, topic, &start.at(expired), false).await;
        assert_eq!(at, now, "message {} has expired", expired + 1);
        alice.expect_nothing_pending().await;
    }
    let at = subscribe_since(&mut alice, topic, &start.at(2), true).await;
    assert_eq!(at, now);
    expect_frames(&mut alice, &sent[2..]).await;
    alice.expect_nothing_pending().await;

    hand.advance(Duration::from_secs(31)); // t = 101 s: all have expired
    let at = subscribe_since(&mut alice, topic, &start.at(3), false).await;
    assert_eq!(
        at, now,
        "held streams keep their position when all has expired"
    );
    alice.expect_nothing_pending().await;
    let at = subscribe_since(&mut alice, topic, &now, true).await;
    assert_eq!(at, now, "nothing after 4 was dropped");
    alice.expect_nothing_pending().await;
    let page = server.api_get(&format!("/api/history/{topic}")).await;
    page.assert_status(200, "GET /api/history");
    let page = page.json();
    assert_eq!(page["messages"], json!([]), "nothing kept: {page}");
    assert_eq!(Pos::of(&page), now, "{page}");
}

/// `history_max_bytes` 3000 with messages of about 1150 bytes: a publish to topic B that
/// takes the total over drops topic A (the least recently published to). A's old epoch then
/// gets `recovered: false` and a stream started again under a new epoch at offset 0, whether
/// A had no subscriber (it went) or one (it starts again at once); B still recovers.
pub async fn history_a_stream_dropped_by_history_max_bytes_starts_again_under_a_new_epoch<
    A: Adapter,
>() {
    let mut settings = Settings::default();
    settings.core.history_max_bytes = 3000;
    let server = A::start(settings);
    let big = |n: u64| json!({"n": n, "pad": "x".repeat(1000)});
    let (a, b) = ("lru.a", "lru.b");
    let (mut bob, _) = Client::authed(&server, "bob").await;

    // A without a subscriber: two messages (about 2300 bytes), then one on B.
    let a_first = publish(&mut bob, a, big(1)).await;
    assert_eq!(publish(&mut bob, a, big(2)).await, a_first.at(2));
    let b_first = publish(&mut bob, b, big(1)).await;
    assert_ne!(
        b_first.epoch, a_first.epoch,
        "each topic has its own stream"
    );
    let gone = server
        .api_get(&format!("/api/history/{a}?since=2&epoch={}", a_first.epoch))
        .await;
    gone.assert_api_error(410, "A's old epoch after A was dropped");
    let (mut phone, _) = Client::authed(&server, "phone").await;
    let a_second = subscribe_since(&mut phone, a, &a_first.at(2), false).await;
    assert_eq!(a_second.offset, 0, "A started again: {a_second:?}");
    assert_ne!(a_second.epoch, a_first.epoch, "under a new epoch");
    phone.expect_nothing_pending().await;

    // A with a subscriber (the phone): one message on A, then one more on B drops A again.
    assert_eq!(publish(&mut bob, a, big(3)).await, a_second.at(1));
    expect_message_at(&mut phone, a, &a_second.at(1)).await;
    assert_eq!(publish(&mut bob, b, big(2)).await, b_first.at(2));
    let a_third = subscribe_since(&mut phone, a, &a_second.at(1), false).await;
    assert_eq!(a_third.offset, 0, "A started again at once: {a_third:?}");
    assert_ne!(a_third.epoch, a_second.epoch, "under a new epoch");
    assert_ne!(a_third.epoch, a_first.epoch, "under a new epoch");
    phone.expect_nothing_pending().await;

    // B was never dropped: it recovers from its start.
    let (mut alice, _) = Client::authed(&server, "alice").await;
    let at = subscribe_since(&mut alice, b, &b_first.at(0), true).await;
    assert_eq!(at, b_first.at(2));
    for n in 1..=2 {
        let (_, msg) = expect_message_at(&mut alice, b, &b_first.at(n)).await;
        assert_eq!(msg["data"]["n"], json!(n), "{msg}");
    }
    alice.expect_nothing_pending().await;

    // The phone's live messages on A continue in the new epoch.
    assert_eq!(publish(&mut bob, a, big(4)).await, a_third.at(1));
    expect_message_at(&mut phone, a, &a_third.at(1)).await;
    phone.expect_nothing_pending().await;
}

/// `max_outbound_bytes` 4096 with messages of about 1150 bytes: a replay of five would exceed
/// it, `recovered: false` and nothing replayed (the connection stays open); a replay of three
/// fits and is sent.
pub async fn history_a_replay_over_max_outbound_bytes_is_not_recovered<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_outbound_bytes = 4096;
    let server = A::start(settings);
    let topic = "chat.big";
    let (mut bob, _) = Client::authed(&server, "bob").await;
    let big = |n: u64| json!({"n": n, "pad": "x".repeat(1000)});
    let first = publish(&mut bob, topic, big(1)).await;
    for n in 2..=5 {
        assert_eq!(publish(&mut bob, topic, big(n)).await, first.at(n));
    }
    let now = first.at(5);

    let (mut alice, _) = Client::authed(&server, "alice").await;
    let at = subscribe_since(&mut alice, topic, &first.at(0), false).await;
    assert_eq!(at, now);
    alice.expect_nothing_pending().await;
    let at = subscribe_since(&mut alice, topic, &first.at(2), true).await;
    assert_eq!(at, now);
    for n in 3..=5 {
        let (text, msg) = expect_message_at(&mut alice, topic, &first.at(n)).await;
        assert_eq!(msg["data"]["n"], json!(n), "{msg}");
        assert!(text.len() > 1000, "a frame of about 1150 bytes");
    }
    alice.expect_nothing_pending().await;
}
