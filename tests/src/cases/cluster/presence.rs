//! Presence across nodes, what `/api/presence` and `/api/stats` say of the cluster, and the
//! application's commands reaching other nodes' connections.

use std::path::Path;

use serde_json::{json, Value};

use super::{assert_presence, conn_id, expect_close_once, expect_presence, subscribe, watch};
use crate::cluster::Cluster;
use crate::util::{is_protocol_timestamp, token};
use crate::ws::Client;
use crate::TEST_SECRET;

/// The next message of `client` must be a push of `data`.
async fn expect_push(client: &mut Client, data: &Value) {
    let msg = client.recv_json().await;
    assert_eq!(
        (msg["type"].as_str(), &msg["data"]),
        (Some("push"), data),
        "{}: expected a push of {data}, got {msg}",
        client.label
    );
}

/// A watcher on A sees one user's connections come on B, C and A (1, 2, 3) and go (2, 1, 0),
/// like a `presence.*` subscriber on B (no snapshot, every user), and one subscribing on C
/// later gets the cluster-wide count in its snapshot; `/api/presence` on every node lists
/// every connection with the node that holds it, its device, name, user agent, IP and the
/// same `connectedAt`;
/// `/api/stats` names the node and counts the live nodes.
pub async fn cluster_presence_counts_are_cluster_wide(binaries: [&Path; 3]) {
    let cluster = Cluster::start(&binaries).await;
    let user = "pat@example.com";
    // A pattern: no snapshot, and every user's changes anywhere.
    let (mut star, _) = cluster.nodes[1].connect("star", None).await;
    subscribe(&mut star, "presence.*").await;
    let (mut watcher_a, _) = cluster.nodes[0].connect("watcher-a", None).await;
    let snapshot = watch(&mut watcher_a, user).await;
    assert_presence(&snapshot, user, false, 0);
    expect_presence(&mut star, "watcher-a", true, 1).await;

    let mut pats = Vec::new();
    for (count, (node, device)) in [(1, "d-b"), (2, "d-c"), (0, "d-a")].into_iter().enumerate() {
        let target = format!(
            "/ws?token={}&device={device}&deviceName=Pat%27s%20{device}",
            token(TEST_SECRET, user)
        );
        let agent = format!("e2e-agent/{device}");
        let (client, auth) = cluster.nodes[node]
            .connect_to(&target, &[("User-Agent", &agent)], &format!("pat/{device}"))
            .await;
        expect_presence(&mut watcher_a, user, true, count as u64 + 1).await;
        expect_presence(&mut star, user, true, count as u64 + 1).await;
        pats.push((node, device, conn_id(&auth), client));
    }
    let ids: Vec<&str> = pats.iter().map(|(_, _, id, _)| id.as_str()).collect();
    cluster.wait_presence(user, &ids).await;

    let (mut watcher_c, _) = cluster.nodes[2].connect("watcher-c", None).await;
    let snapshot = watch(&mut watcher_c, user).await;
    assert_presence(&snapshot, user, true, 3);
    expect_presence(&mut star, "watcher-c", true, 1).await;

    let mut connected = std::collections::HashMap::new();
    for node in &cluster.nodes {
        let body = node.presence(user).await;
        assert_eq!(body["userId"], user, "{}: {body}", node.id());
        assert_eq!(body["online"], true, "{}: {body}", node.id());
        let listed = body["connections"].as_array().expect("connections");
        assert_eq!(listed.len(), 3, "{}: {body}", node.id());
        for (holder, device, id, _) in &pats {
            let entry = listed
                .iter()
                .find(|c| c["connId"] == id.as_str())
                .unwrap_or_else(|| panic!("{}: {id} not listed: {body}", node.id()));
            let holder = cluster.nodes[*holder].id();
            let name = format!("Pat's {device}");
            let agent = format!("e2e-agent/{device}");
            assert_eq!(
                (
                    entry["nodeId"].as_str(),
                    entry["deviceId"].as_str(),
                    entry["deviceName"].as_str(),
                    entry["userAgent"].as_str(),
                    entry["ip"].as_str(),
                ),
                (
                    Some(holder),
                    Some(*device),
                    Some(name.as_str()),
                    Some(agent.as_str()),
                    Some("127.0.0.1")
                ),
                "{}: the entry of {id}: {entry}",
                node.id()
            );
            let connected_at = entry["connectedAt"].as_str().unwrap_or_default();
            assert!(
                is_protocol_timestamp(connected_at),
                "{}: connectedAt of {id}: {entry}",
                node.id()
            );
            let first_seen = connected
                .entry(id.clone())
                .or_insert_with(|| connected_at.to_owned());
            assert_eq!(
                first_seen.as_str(),
                connected_at,
                "{}: every node says the same connectedAt for {id}",
                node.id()
            );
            assert!(
                id.starts_with(&format!("{holder}.")) && id.split('.').count() == 4,
                "a connId is <node>.<boot>.<index>.<gen>: {id}"
            );
        }
        let stats = node.stats().await;
        assert_eq!(
            (stats["nodeId"].as_str(), stats["nodes"].as_u64()),
            (Some(node.id()), Some(3)),
            "/api/stats on {}: {stats}",
            node.id()
        );
    }

    for (left, (_, _, _, client)) in (0..3u64).rev().zip(std::mem::take(&mut pats)) {
        client.close().await;
        expect_presence(&mut watcher_a, user, left > 0, left).await;
        expect_presence(&mut watcher_c, user, left > 0, left).await;
        expect_presence(&mut star, user, left > 0, left).await;
    }
    cluster.wait_presence(user, &[]).await;
    for node in &cluster.nodes {
        assert_eq!(node.presence(user).await["online"], false, "{}", node.id());
    }
    watcher_a.expect_nothing_pending().await;
    watcher_c.expect_nothing_pending().await;
    star.expect_nothing_pending().await;
}

/// `POST /api/send` (by user, device and connId), `/api/broadcast` (to users and to everyone)
/// and `/api/disconnect` on one node reach the connections on the others: they get the push,
/// or the close code; the answer counts only the recipients on the node asked.
pub async fn cluster_send_broadcast_and_disconnect_reach_other_nodes(binaries: [&Path; 3]) {
    let cluster = Cluster::start(&binaries).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let (mut sam_phone, auth) = b.connect("sam", Some("phone")).await;
    let sam_phone_id = conn_id(&auth);
    let (mut sam_laptop, auth) = c.connect("sam", Some("laptop")).await;
    let sam_laptop_id = conn_id(&auth);
    let (mut kim, _) = c.connect("kim", None).await;
    let (mut lee, _) = a.connect("lee", None).await;
    cluster
        .wait_presence("sam", &[&sam_phone_id, &sam_laptop_id])
        .await;

    let data = json!({"to": "sam"});
    let answer = a
        .api_post_ok("/api/send", &json!({"userId": "sam", "data": data}))
        .await;
    assert_eq!(
        answer,
        json!({"delivered": 0}),
        "send on A, sam is on B and C"
    );
    expect_push(&mut sam_phone, &data).await;
    expect_push(&mut sam_laptop, &data).await;

    let data = json!({"to": "sam's laptop"});
    let body = json!({"userId": "sam", "deviceId": "laptop", "data": data});
    let answer = b.api_post_ok("/api/send", &body).await;
    assert_eq!(
        answer,
        json!({"delivered": 0}),
        "send on B to the laptop on C"
    );
    expect_push(&mut sam_laptop, &data).await;

    let data = json!({"to": "sam's phone by id"});
    let body = json!({"userId": "sam", "connId": sam_phone_id, "data": data});
    let answer = a.api_post_ok("/api/send", &body).await;
    assert_eq!(
        answer,
        json!({"delivered": 0}),
        "send on A to B's connection"
    );
    expect_push(&mut sam_phone, &data).await;

    let data = json!({"to": ["sam", "lee"]});
    let body = json!({"userIds": ["sam", "lee"], "data": data});
    let answer = c.api_post_ok("/api/broadcast", &body).await;
    assert_eq!(
        answer,
        json!({"delivered": 1}),
        "broadcast on C: sam's laptop"
    );
    for client in [&mut sam_phone, &mut sam_laptop, &mut lee] {
        expect_push(client, &data).await;
    }

    let data = json!({"to": "everyone"});
    let answer = a
        .api_post_ok("/api/broadcast", &json!({"data": data}))
        .await;
    assert_eq!(answer, json!({"delivered": 1}), "broadcast on A: lee");
    for client in [&mut sam_phone, &mut sam_laptop, &mut kim, &mut lee] {
        expect_push(client, &data).await;
    }
    for client in [&mut sam_phone, &mut sam_laptop, &mut kim, &mut lee] {
        client.expect_nothing_pending().await;
    }

    let body = json!({"userId": "sam", "deviceId": "phone", "code": 4000});
    let answer = a.api_post_ok("/api/disconnect", &body).await;
    assert_eq!(
        answer,
        json!({"closed": 0}),
        "disconnect on A, the phone is on B"
    );
    expect_close_once(&mut sam_phone, 4000).await;
    cluster.wait_presence("sam", &[&sam_laptop_id]).await;
    sam_laptop.expect_nothing_pending().await;
    let body = json!({"userId": "sam", "connId": sam_phone_id, "data": 1});
    a.api_post("/api/send", &body)
        .await
        .assert_api_error(410, "send on A to B's connection that is gone");

    let answer = b
        .api_post_ok("/api/disconnect", &json!({"userId": "sam"}))
        .await;
    assert_eq!(
        answer,
        json!({"closed": 0}),
        "disconnect on B, the laptop is on C"
    );
    expect_close_once(&mut sam_laptop, 1008).await;
    cluster.wait_presence("sam", &[]).await;
    kim.expect_nothing_pending().await;
    lee.expect_nothing_pending().await;
}
