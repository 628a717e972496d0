//! What the cluster does when things go away: a node killed, Redis killed and restarted, a
//! node draining.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{assert_presence, conn_id, expect_close_once, expect_presence, subscribe, watch};
use crate::cluster::{Cluster, SETTLE, TTL};
use crate::ws::{Client, Incoming};

/// Collects the presence pushes `watcher` gets until each of `users` went offline, before
/// `deadline`; panics naming what came instead or what is missing.
async fn expect_offline_by(watcher: &mut Client, users: &[&str], deadline: Instant, why: &str) {
    let mut offline: Vec<&str> = Vec::new();
    while offline.len() < users.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match watcher.try_next_within(left).await {
            Some(Incoming::Text(text)) => serde_json::from_str::<Value>(&text).expect("JSON"),
            Some(other) => panic!("{}: expected presence, got {other:?}", watcher.label),
            None => panic!(
                "{}: {why}: only {offline:?} of {users:?} went offline in time",
                watcher.label
            ),
        };
        let user = msg["userId"].as_str().unwrap_or_default();
        let user = users
            .iter()
            .copied()
            .find(|u| *u == user && !offline.contains(u))
            .unwrap_or_else(|| {
                panic!(
                    "{}: {why}: expected one offline push for each of {users:?}, got {msg}",
                    watcher.label
                )
            });
        assert_presence(&msg, user, false, 0);
        offline.push(user);
    }
}

/// Node C holds two users and is killed with SIGKILL: a watcher of their presence on A gets
/// one offline push for each within the ttl (and a margin), `/api/presence` on A and B says
/// offline, the live nodes drop to 2, and a user that connects again on B counts only that
/// new connection.
pub async fn cluster_a_killed_node_leaves_no_ghosts_within_the_ttl(binaries: [&Path; 3]) {
    let mut cluster = Cluster::start(&binaries).await;
    let users = ["kip", "kai"];
    let mut held = Vec::new();
    for user in users {
        let (client, auth) = cluster.nodes[2].connect(user, Some("phone")).await;
        cluster.wait_presence(user, &[&conn_id(&auth)]).await;
        held.push(client);
    }
    let (_stays, auth) = cluster.nodes[1].connect("stays", None).await;
    let stays_id = conn_id(&auth);
    let (mut watcher, _) = cluster.nodes[0].connect("watcher", None).await;
    for user in users {
        assert_presence(&watch(&mut watcher, user).await, user, true, 1);
    }

    cluster.nodes[2].sigkill();
    let deadline = Instant::now() + TTL + Duration::from_secs(3);
    expect_offline_by(&mut watcher, &users, deadline, "after SIGKILL of node C").await;
    cluster.wait_nodes_on(&[0, 1], 2).await;
    for user in users {
        cluster.wait_presence_on(&[0, 1], user, &[]).await;
        for node in &cluster.nodes[..2] {
            assert_eq!(node.presence(user).await["online"], false, "{}", node.id());
        }
    }
    cluster
        .wait_presence_on(&[0, 1], "stays", &[&stays_id])
        .await;

    let (mut again, auth) = cluster.nodes[1].connect("kip", Some("phone")).await;
    expect_presence(&mut watcher, "kip", true, 1).await;
    cluster
        .wait_presence_on(&[0, 1], "kip", &[&conn_id(&auth)])
        .await;
    watcher.expect_nothing_pending().await;
    again.expect_nothing_pending().await;
}

/// A subscriber that records every message it gets, by its `data.id`, and fails on a second
/// copy of any.
struct Tracked {
    client: Client,
    seen: HashMap<String, usize>,
}

impl Tracked {
    fn record(&mut self, text: &str) {
        let msg: Value = serde_json::from_str(text).expect("JSON from the server");
        assert_eq!(msg["type"], "message", "{}: {msg}", self.client.label);
        let id = msg["data"]["id"].as_str().unwrap_or_default().to_owned();
        let copies = self.seen.entry(id.clone()).or_default();
        *copies += 1;
        assert_eq!(
            *copies, 1,
            "{}: message {id} delivered twice: {msg}",
            self.client.label
        );
    }

    /// Takes what has arrived, for at most `within`.
    async fn take_for(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.try_next_within(left).await {
                Some(Incoming::Text(text)) => self.record(&text),
                Some(other) => panic!("{}: expected messages, got {other:?}", self.client.label),
                None => return,
            }
        }
    }

    /// Takes messages until every one of `ids` arrived (bounded by [`SETTLE`]).
    async fn take_all(&mut self, ids: &[String], phase: &str) {
        let deadline = Instant::now() + SETTLE;
        while let Some(missing) = ids.iter().find(|id| !self.seen.contains_key(*id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.try_next_within(left).await {
                Some(Incoming::Text(text)) => self.record(&text),
                Some(other) => panic!("{}: expected messages, got {other:?}", self.client.label),
                None => panic!(
                    "{}: {phase}: message {missing} (and maybe more of {ids:?}) not received \
                     within {SETTLE:?}",
                    self.client.label
                ),
            }
        }
    }
}

/// `count` messages on `feed.<phase>` from the client `publisher` (`pub-<phase>-<n>`) and
/// as many through `POST /api/publish` on `api_node` (`api-<phase>-<n>`); their ids.
async fn publish_both(
    cluster: &Cluster,
    publisher: &mut Client,
    api_node: usize,
    phase: &str,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let id = format!("pub-{phase}-{n}");
        let msg = json!({"type": "message", "topic": format!("feed.{phase}"), "data": {"id": id}});
        publisher.send_json(&msg).await;
        ids.push(id);
        let id = format!("api-{phase}-{n}");
        let body = json!({"topic": format!("feed.{phase}.api"), "data": {"id": id}});
        cluster.nodes[api_node]
            .api_post_ok("/api/publish", &body)
            .await;
        ids.push(id);
    }
    ids
}

/// Redis is killed: every node says degraded and still serves its own clients (connect, auth,
/// publish, presence). Redis comes back empty: every node says ok again within ~10 s,
/// publishes cross nodes again, no message reaches anyone twice over the whole test, and a
/// user+device that connected on A and later on B while Redis was away keeps the B
/// connection, the A one closed with 4001 once.
pub async fn cluster_survives_redis_restart_without_duplicates(binaries: [&Path; 3]) {
    let mut cluster = Cluster::start(&binaries).await;
    let mut subs = Vec::new();
    for node in &cluster.nodes {
        let (mut client, _) = node.connect(&format!("sub-{}", node.id()), None).await;
        subscribe(&mut client, "feed.**").await;
        subs.push(Tracked {
            client,
            seen: HashMap::new(),
        });
    }
    let (mut publisher, _) = cluster.nodes[0].connect("pub-a", None).await;
    let before = publish_both(&cluster, &mut publisher, 1, "before", 10).await;
    for sub in &mut subs {
        sub.take_all(&before, "before the outage").await;
    }
    // Announced before the outage on A, connected again on B during it.
    let (mut early_on_a, auth) = cluster.nodes[0].connect("early", Some("phone")).await;
    cluster.wait_presence("early", &[&conn_id(&auth)]).await;

    cluster.kill_redis();
    let all = [0, 1, 2];
    cluster.wait_health_on(&all, "degraded", SETTLE).await;

    // Alone, each node still serves its own clients.
    let (mut late_on_a, _) = cluster.nodes[0].connect("late", Some("phone")).await;
    let mut outage = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let (mut local, _) = node.connect(&format!("local-{i}"), None).await;
        subscribe(&mut local, "solo.*").await;
        let (mut watcher, _) = node.connect(&format!("watcher-{i}"), None).await;
        let seen = format!("seen-{i}");
        assert_presence(&watch(&mut watcher, &seen).await, &seen, false, 0);
        let (_seen_client, _) = node.connect(&seen, None).await;
        expect_presence(&mut watcher, &seen, true, 1).await;
        let id = format!("solo-{i}");
        local
            .send_json(
                &json!({"type": "message", "topic": "solo.x", "data": {"id": id}, "id": "m"}),
            )
            .await;
        let ack = local.recv_json().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let msg = local.recv_type("message").await;
        assert_eq!(msg["data"]["id"], id.as_str(), "{msg}");
        let answer = node
            .api_post_ok(
                "/api/publish",
                &json!({"topic": "feed.solo", "data": {"id": format!("api-solo-{i}")}}),
            )
            .await;
        assert_eq!(
            answer,
            json!({"delivered": 1}),
            "local publish on {}",
            node.id()
        );
        outage.push(format!("api-solo-{i}"));
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        sub.take_all(&outage[i..=i], "during the outage").await;
    }
    // Later than A's by the clock: B's are the newest.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut early_on_b, auth) = cluster.nodes[1].connect("early", Some("phone")).await;
    let early_id = conn_id(&auth);
    let (mut late_on_b, auth) = cluster.nodes[1].connect("late", Some("phone")).await;
    let late_id = conn_id(&auth);

    cluster.restart_redis();
    cluster.wait_health_on(&all, "ok", SETTLE).await;
    expect_close_once(&mut early_on_a, 4001).await;
    expect_close_once(&mut late_on_a, 4001).await;
    cluster.wait_presence("early", &[&early_id]).await;
    cluster.wait_presence("late", &[&late_id]).await;
    early_on_b.expect_nothing_pending().await;
    late_on_b.expect_nothing_pending().await;
    cluster.wait_nodes(3).await;

    // Publishes cross nodes again (the nodes subscribe again after they joined: probe until
    // each node's subscriber hears from A).
    let deadline = Instant::now() + SETTLE;
    for probe in 0.. {
        let id = format!("probe-{probe}");
        let msg = json!({"type": "message", "topic": "feed.probe", "data": {"id": id}});
        publisher.send_json(&msg).await;
        for sub in &mut subs {
            sub.take_for(Duration::from_millis(100)).await;
        }
        let heard: Vec<bool> = subs.iter().map(|s| s.seen.contains_key(&id)).collect();
        if heard.iter().all(|h| *h) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a publish on A did not reach every node again within {SETTLE:?} of the restart: \
             {id} heard on A, B, C: {heard:?}"
        );
    }
    let after = publish_both(&cluster, &mut publisher, 2, "after", 10).await;
    for sub in &mut subs {
        sub.take_all(&after, "after the outage").await;
        sub.client.expect_nothing_pending().await;
    }
}

/// Node C is sent SIGTERM: its clients get 1001, and the watchers of its users on A and B see
/// them offline at once (well before the ttl could have expired C), C leaves the live nodes
/// at once, and exits 0.
pub async fn cluster_a_draining_node_withdraws_its_presence_at_once(binaries: [&Path; 3]) {
    // A longer ttl: an expiry could not come before ttl - ttl/3 = 4 s after the signal, so an
    // offline push within ttl/2 = 3 s is the goodbye's.
    let ttl = Duration::from_secs(6);
    let mut cluster = Cluster::start_with(&binaries, &["--cluster-ttl", "6s"]).await;
    let users = ["dee", "dot"];
    let mut held = Vec::new();
    for user in users {
        let (client, auth) = cluster.nodes[2].connect(user, None).await;
        cluster.wait_presence(user, &[&conn_id(&auth)]).await;
        held.push(client);
    }
    let mut watchers = Vec::new();
    for node in &cluster.nodes[..2] {
        let (mut watcher, _) = node.connect("watcher", None).await;
        for user in users {
            assert_presence(&watch(&mut watcher, user).await, user, true, 1);
        }
        watchers.push(watcher);
    }

    cluster.nodes[2].sigterm();
    let deadline = Instant::now() + ttl / 2;
    for client in &mut held {
        expect_close_once(client, 1001).await;
    }
    for watcher in &mut watchers {
        expect_offline_by(watcher, &users, deadline, "after SIGTERM of node C").await;
    }
    for &i in &[0, 1] {
        let node = &cluster.nodes[i];
        let stats = node.stats().await;
        assert_eq!(
            stats["nodes"],
            2,
            "{}: node C left the live nodes at once: {stats}",
            node.id()
        );
        for user in users {
            assert_eq!(node.presence(user).await["online"], false, "{}", node.id());
        }
    }
    assert!(
        Instant::now() < deadline,
        "the drain was seen only after ttl/2 ({:?})",
        ttl / 2
    );
    let status = cluster.nodes[2].wait_exit(Duration::from_secs(5)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "node C's exit status after the drain"
    );
    for watcher in &mut watchers {
        watcher.expect_nothing_pending().await;
    }
}
