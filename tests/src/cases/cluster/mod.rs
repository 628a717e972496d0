//! Cluster mode end to end: three server processes (each maybe a different binary) over one
//! real Redis, clients on different nodes. One `pub async fn case(binaries: [&Path; 3])` per
//! behaviour; [`cluster_suite!`](crate::cluster_suite) instantiates them. The harness is in
//! [`crate::cluster`].
//!
//! - `publish`: topic messages across nodes, wildcards, exactly once and in order;
//! - `sessions`: the session policy across nodes (4001);
//! - `presence`: cluster-wide counts, `/api/presence` and `/api/stats`; application commands
//!   (`send`, `broadcast`, `disconnect`) reaching other nodes;
//! - `failures`: a killed node, a node restarted, a Redis restart, a draining node.

mod failures;
mod presence;
mod publish;
mod sessions;

pub use failures::{
    cluster_a_draining_node_withdraws_its_presence_at_once,
    cluster_a_killed_node_leaves_no_ghosts_within_the_ttl,
    cluster_a_restarted_node_replaces_its_old_run_at_once,
    cluster_survives_redis_restart_without_duplicates,
};
pub use presence::{
    cluster_presence_counts_are_cluster_wide,
    cluster_send_broadcast_and_disconnect_reach_other_nodes,
};
pub use publish::{
    cluster_publish_with_wildcards_reaches_every_node_exactly_once_in_order,
    cluster_subscribing_twice_is_answered_once_the_bus_confirmed,
    cluster_unsubscribe_and_subscribe_again_across_nodes,
};
pub use sessions::{
    cluster_a_replacement_on_another_node_is_one_step_for_presence,
    cluster_newer_login_on_another_node_closes_the_older_4001_once,
    cluster_simultaneous_logins_on_two_nodes_leave_one_winner,
    cluster_single_and_multi_policies_hold_across_nodes,
};

pub(crate) use crate::util::assert_presence;
use serde_json::{json, Value};

use crate::ws::{Client, Incoming};

/// The presence topic of `user` (PROTOCOL.md "Presence": bytes outside
/// `[A-Za-z0-9_:@+=~-]` percent-encoded).
pub(crate) fn presence_topic(user: &str) -> String {
    let mut topic = String::from("presence.");
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"_:@+=~-".contains(&b) {
            topic.push(char::from(b));
        } else {
            topic.push_str(&format!("%{b:02X}"));
        }
    }
    topic
}

/// Subscribes `client` to `topic` and waits for its `subscribed`.
pub(crate) async fn subscribe(client: &mut Client, topic: &str) {
    let id = format!("sub-{topic}");
    let reply = client
        .request(&json!({"type": "subscribe", "topic": topic, "id": id}))
        .await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["topic"].as_str(),
            reply["id"].as_str()
        ),
        (Some("subscribed"), Some(topic), Some(id.as_str())),
        "{}: subscribe to {topic}: {reply}",
        client.label
    );
}

/// Subscribes `client` to `user`'s presence; the snapshot that follows `subscribed`.
pub(crate) async fn watch(client: &mut Client, user: &str) -> Value {
    subscribe(client, &presence_topic(user)).await;
    let snapshot = client.recv_json().await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["userId"].as_str()),
        (Some("presence"), Some(user)),
        "{}: the snapshot after subscribing to {user}'s presence: {snapshot}",
        client.label
    );
    snapshot
}

/// The next message of `client` must be `user`'s presence with this state.
pub(crate) async fn expect_presence(client: &mut Client, user: &str, online: bool, count: u64) {
    let msg = client.recv_json().await;
    assert!(
        msg["type"] == "presence",
        "{}: expected presence of {user} ({count}), got {msg}",
        client.label
    );
    assert_presence(&msg, user, online, count);
}

/// The `connId` of an `auth_success`.
pub(crate) fn conn_id(auth_success: &Value) -> String {
    auth_success["connId"]
        .as_str()
        .unwrap_or_else(|| panic!("auth_success without a connId: {auth_success}"))
        .to_owned()
}

/// `client` must get a close frame with `code` next, and then nothing: the connection ends.
pub(crate) async fn expect_close_once(client: &mut Client, code: u16) {
    client.expect_close(code).await;
    match client.next().await {
        Incoming::Ended(_) => {}
        other => panic!(
            "{}: after close {code} expected the end of the connection, got {other:?}",
            client.label
        ),
    }
}
