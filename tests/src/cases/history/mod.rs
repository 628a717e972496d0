//! PROTOCOL.md "History and recovery": every message's position in its topic's stream,
//! recovery with `since` after a lost connection, the `history` request, `GET /api/history`,
//! and history turned off.
//!
//! - `recovery`: what `since` replays (exactly the missed frames, no gap and no duplicate at
//!   the seam) and every reason it does not (`recovered: false`);
//! - `requests`: positions on every frame, the `history` message and `GET /api/history`,
//!   malformed input, history off.

mod recovery;
mod requests;

pub use recovery::{
    history_a_client_that_dropped_its_tcp_connection_recovers_every_missed_message,
    history_a_position_of_another_epoch_or_ahead_of_the_stream_is_not_recovered,
    history_a_replay_over_max_outbound_bytes_is_not_recovered,
    history_a_stream_dropped_by_history_max_bytes_starts_again_under_a_new_epoch,
    history_messages_dropped_by_history_size_are_not_recovered,
    history_messages_older_than_history_ttl_are_not_recovered,
    history_recovery_while_a_publisher_publishes_has_no_gap_and_no_duplicate_at_the_seam,
};
pub use requests::{
    history_api_history_lists_like_the_history_message_and_refuses_bad_parameters,
    history_every_publish_gets_the_next_offset_of_its_topics_stream,
    history_malformed_history_requests_get_the_first_error_that_applies,
    history_malformed_since_is_400_and_subscribes_to_nothing,
    history_off_frames_carry_no_position_and_since_history_and_api_history_are_400,
    history_the_history_message_lists_kept_messages_oldest_first_within_limit_and_since,
};

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::ws::Client;
use crate::TestServer;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A fresh request id: `{prefix}-{n}`.
fn next_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// A place in a topic's stream, as frames carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pos {
    offset: u64,
    epoch: String,
}

impl Pos {
    /// The position `msg` carries: an integer `offset` and an `epoch` of 1..=32 bytes of
    /// `[A-Za-z0-9_-]`; panics naming `msg` otherwise.
    fn of(msg: &Value) -> Pos {
        let offset = msg["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("no integer `offset` in {msg}"));
        let epoch = msg["epoch"]
            .as_str()
            .unwrap_or_else(|| panic!("no string `epoch` in {msg}"));
        assert!(
            (1..=32).contains(&epoch.len())
                && epoch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "an epoch is 1..=32 bytes of [A-Za-z0-9_-]: {msg}"
        );
        Pos {
            offset,
            epoch: epoch.to_owned(),
        }
    }

    /// The same epoch at another offset.
    fn at(&self, offset: u64) -> Pos {
        Pos {
            offset,
            epoch: self.epoch.clone(),
        }
    }

    /// As a `since` member.
    fn since(&self) -> Value {
        json!({"offset": self.offset, "epoch": self.epoch})
    }
}

/// Panics if `msg` carries a stream position (or `recovered`).
fn assert_no_position(msg: &Value) {
    for key in ["offset", "epoch", "recovered"] {
        assert!(msg.get(key).is_none(), "no `{key}` expected in {msg}");
    }
}

/// Sends `subscribe` for `topic`, with `since` as given (any JSON value) unless `None`, and
/// expects `subscribed` for it echoing the id; returns the reply.
async fn subscribe(client: &mut Client, topic: &str, since: Option<Value>) -> Value {
    let id = next_id("sub");
    let mut request = json!({"type": "subscribe", "topic": topic, "id": id});
    if let Some(since) = since {
        request["since"] = since;
    }
    let reply = client.request(&request).await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["topic"].as_str(),
            reply["id"].as_str()
        ),
        (Some("subscribed"), Some(topic), Some(id.as_str())),
        "{}: {request} should be answered `subscribed`, got {reply}",
        client.label
    );
    reply
}

/// Subscribes to the concrete `topic` without `since`: `subscribed` carries the stream's
/// position and no `recovered`; returns the position.
async fn subscribe_at(client: &mut Client, topic: &str) -> Pos {
    let reply = subscribe(client, topic, None).await;
    assert!(
        reply.get("recovered").is_none(),
        "`recovered` answers a `since` only: {reply}"
    );
    Pos::of(&reply)
}

/// Subscribes to `topic` with `since`; `subscribed` must say `recovered: recovered`; returns
/// the stream's position it gives.
async fn subscribe_since(client: &mut Client, topic: &str, since: &Pos, recovered: bool) -> Pos {
    let reply = subscribe(client, topic, Some(since.since())).await;
    assert_eq!(
        reply["recovered"],
        json!(recovered),
        "{}: subscribe to {topic} since {since:?}: expected recovered: {recovered}, got {reply}",
        client.label
    );
    Pos::of(&reply)
}

/// Publishes `data` on `topic` with an id (the publisher holds no matching subscription);
/// the position its `ack` gives.
async fn publish(client: &mut Client, topic: &str, data: Value) -> Pos {
    let id = next_id("pub");
    let request = json!({"type": "message", "topic": topic, "data": data, "id": id});
    let ack = client.request(&request).await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some(id.as_str())),
        "{}: {request} should be acked, got {ack}",
        client.label
    );
    Pos::of(&ack)
}

/// `POST /api/publish` of `data` on `topic`: 200 `{"delivered","offset","epoch"}` (exactly
/// those keys); the number delivered and the position.
async fn api_publish(server: &TestServer, topic: &str, data: Value) -> (u64, Pos) {
    let r = server
        .api_post("/api/publish", &json!({"topic": topic, "data": data}))
        .await;
    r.assert_status(200, &format!("POST /api/publish to {topic}"));
    let body = r.json();
    assert_eq!(
        keys(&body),
        ["delivered", "epoch", "offset"],
        "POST /api/publish answers delivered, offset and epoch: {body}"
    );
    let delivered = body["delivered"]
        .as_u64()
        .unwrap_or_else(|| panic!("delivered is a count: {body}"));
    (delivered, Pos::of(&body))
}

/// The next frame must be a `message` on `topic` at `at`; its text as sent, and its JSON.
async fn expect_message_at(client: &mut Client, topic: &str, at: &Pos) -> (String, Value) {
    let text = client.recv_text().await;
    let msg: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", client.label));
    crate::util::assert_timestamp(&msg);
    assert_eq!(
        (msg["type"].as_str(), msg["topic"].as_str()),
        (Some("message"), Some(topic)),
        "{}: expected a message on {topic} at {at:?}, got {msg}",
        client.label
    );
    assert_eq!(
        Pos::of(&msg),
        *at,
        "{}: a message on {topic} at another position: {msg}",
        client.label
    );
    (text, msg)
}

/// The next frames must be exactly these `message` frames (texts, byte for byte), in order.
async fn expect_frames(client: &mut Client, frames: &[String]) {
    for (i, frame) in frames.iter().enumerate() {
        let got = client.recv_text().await;
        assert_eq!(
            &got,
            frame,
            "{}: frame {i} of {} should be the very frame first sent",
            client.label,
            frames.len()
        );
    }
}

/// An object's keys, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
