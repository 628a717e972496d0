//! What the cluster does when things go away: a node killed, Redis killed and restarted, a
//! node draining.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{assert_presence, conn_id, expect_close_once, expect_presence, subscribe, watch};
use crate::cluster::{Cluster, ClusterNode, SETTLE, TTL};
use crate::util::token;
use crate::ws::{Client, Incoming, RawWs};
use crate::TEST_SECRET;

/// Collects the presence pushes `watcher` gets until it got one for each of `want` (user,
/// connections left: 0 = offline), in any order, before `deadline`; panics naming what came
/// instead or what is missing.
async fn expect_pushes_by(
    watcher: &mut Client,
    want: &[(&str, u64)],
    deadline: Instant,
    why: &str,
) {
    let mut got: Vec<&str> = Vec::new();
    while got.len() < want.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match watcher.try_next_within(left).await {
            Some(Incoming::Text(text)) => serde_json::from_str::<Value>(&text).expect("JSON"),
            Some(other) => panic!("{}: expected presence, got {other:?}", watcher.label),
            None => panic!(
                "{}: {why}: of the pushes {want:?} only those of {got:?} came in time",
                watcher.label
            ),
        };
        let user = msg["userId"].as_str().unwrap_or_default();
        let &(user, count) = want
            .iter()
            .find(|(u, _)| *u == user && !got.contains(u))
            .unwrap_or_else(|| {
                panic!(
                    "{}: {why}: expected one push for each of {want:?}, got {msg}",
                    watcher.label
                )
            });
        assert_presence(&msg, user, count > 0, count);
        got.push(user);
    }
}

/// [`expect_pushes_by`] with each of `users` going offline.
async fn expect_offline_by(watcher: &mut Client, users: &[&str], deadline: Instant, why: &str) {
    let want: Vec<(&str, u64)> = users.iter().map(|u| (*u, 0)).collect();
    expect_pushes_by(watcher, &want, deadline, why).await;
}

/// Node C holds two users' only connections, and one of a third user who has another on B,
/// and is killed with SIGKILL: a watcher of their presence on A gets one offline push for each
/// of the two and a push of 1 for the third, within the ttl (and a margin); `/api/presence` on
/// A and B says offline (and lists the third's B connection alone), the live nodes drop to 2,
/// and a user that connects again on B counts only that new connection.
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
    let (_kim_phone, auth) = cluster.nodes[2].connect("kim", Some("phone")).await;
    let kim_phone_id = conn_id(&auth);
    let (_kim_laptop, auth) = cluster.nodes[1].connect("kim", Some("laptop")).await;
    let kim_laptop_id = conn_id(&auth);
    cluster
        .wait_presence("kim", &[&kim_phone_id, &kim_laptop_id])
        .await;
    let (mut watcher, _) = cluster.nodes[0].connect("watcher", None).await;
    for user in users {
        assert_presence(&watch(&mut watcher, user).await, user, true, 1);
    }
    assert_presence(&watch(&mut watcher, "kim").await, "kim", true, 2);

    cluster.nodes[2].sigkill();
    let deadline = Instant::now() + TTL + Duration::from_secs(3);
    let want = [("kip", 0), ("kai", 0), ("kim", 1)];
    expect_pushes_by(&mut watcher, &want, deadline, "after SIGKILL of node C").await;
    cluster.wait_nodes_on(&[0, 1], 2).await;
    for user in users {
        cluster.wait_presence_on(&[0, 1], user, &[]).await;
        for node in &cluster.nodes[..2] {
            assert_eq!(node.presence(user).await["online"], false, "{}", node.id());
        }
    }
    cluster
        .wait_presence_on(&[0, 1], "kim", &[&kim_laptop_id])
        .await;
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

/// Redis is killed for longer than the ttl: every node says degraded and still serves its own
/// clients (connect, auth, subscribe, publish, presence), nobody is judged (a watcher of a
/// user on another node gets no push), and a node started meanwhile serves degraded. Redis
/// comes back empty: every node says ok again within ~10 s and knows the 4 nodes, what each
/// did alone is known everywhere (who came, who left), publishes cross nodes again (to
/// subscriptions made during the outage too), no message reaches anyone twice over the whole
/// test, and the session conflicts of the outage are settled by time: a user+device on A and
/// later on B (both during the outage, or A's from before it) keeps B's (A's gets 4001 once),
/// and the other way round.
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
    // Announced before the outage: `early` on A (connected again on B during it), `ghost`
    // on C (gone during it, when C can tell nobody).
    let (mut early_on_a, auth) = cluster.nodes[0].connect("early", Some("phone")).await;
    cluster.wait_presence("early", &[&conn_id(&auth)]).await;
    let (ghost, auth) = cluster.nodes[2].connect("ghost", None).await;
    cluster.wait_presence("ghost", &[&conn_id(&auth)]).await;
    let (mut ghost_watcher, _) = cluster.nodes[0].connect("ghost-watcher", None).await;
    assert_presence(&watch(&mut ghost_watcher, "ghost").await, "ghost", true, 1);
    // On C throughout: while nobody can be heard nobody is judged, so its watcher on A gets
    // no push, however long the outage.
    let (_steady, auth) = cluster.nodes[2].connect("steady", None).await;
    let steady_id = conn_id(&auth);
    cluster.wait_presence("steady", &[&steady_id]).await;
    let (mut steady_watcher, _) = cluster.nodes[0].connect("steady-watcher", None).await;
    assert_presence(
        &watch(&mut steady_watcher, "steady").await,
        "steady",
        true,
        1,
    );

    cluster.kill_redis();
    let killed_at = Instant::now();
    let all = [0, 1, 2];
    cluster.wait_health_on(&all, "degraded", SETTLE).await;

    // Alone, each node still serves its own clients: connect, authenticate, subscribe,
    // publish, presence.
    let mut locals = Vec::new();
    let mut outage = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let (mut local, auth) = node.connect(&format!("local-{i}"), None).await;
        subscribe(&mut local, "solo.*").await;
        let (mut watcher, _) = node.connect(&format!("watcher-{i}"), None).await;
        let seen = format!("seen-{i}");
        assert_presence(&watch(&mut watcher, &seen).await, &seen, false, 0);
        let (seen_client, _) = node.connect(&seen, None).await;
        expect_presence(&mut watcher, &seen, true, 1).await;
        let id = format!("solo-{i}");
        let msg = json!({"type": "message", "topic": "solo.x", "data": {"id": id}, "id": "m"});
        local.send_json(&msg).await;
        let ack = local.recv_json().await;
        assert_eq!(ack["type"], "ack", "{}: {ack}", local.label);
        let msg = local.recv_type("message").await;
        assert_eq!(msg["data"]["id"], id.as_str(), "{}: {msg}", local.label);
        let body = json!({"topic": "feed.solo", "data": {"id": format!("api-solo-{i}")}});
        let answer = node.api_post_ok("/api/publish", &body).await;
        assert_eq!(answer, json!({"delivered": 1}), "publish on {}", node.id());
        outage.push(format!("api-solo-{i}"));
        locals.push((local, conn_id(&auth), watcher, seen_client));
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        sub.take_all(&outage[i..=i], "during the outage").await;
    }
    // A node started while Redis is away serves its own clients, degraded.
    let binary = cluster.nodes[0].binary().to_owned();
    let url = cluster.redis_url();
    cluster
        .nodes
        .push(ClusterNode::launch(&binary, &url, "node-d", &[]));
    cluster.wait_health_on(&[3], "degraded", SETTLE).await;
    let (mut on_d, auth) = cluster.nodes[3].connect("on-d", None).await;
    let on_d_id = conn_id(&auth);
    on_d.expect_nothing_pending().await;
    let all = [0, 1, 2, 3];
    ghost.close().await;
    // Session conflicts, settled by the clock: `early` on A before the outage and on B
    // during it (B's is the newest); `during` on A and then on B during it (B's); `late` on B
    // and then on A during it (A's).
    let (mut during_on_a, _) = cluster.nodes[0].connect("during", Some("phone")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut early_on_b, auth) = cluster.nodes[1].connect("early", Some("phone")).await;
    let early_id = conn_id(&auth);
    let (mut during_on_b, auth) = cluster.nodes[1].connect("during", Some("phone")).await;
    let during_id = conn_id(&auth);
    let (mut late_on_b, _) = cluster.nodes[1].connect("late", Some("phone")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut late_on_a, auth) = cluster.nodes[0].connect("late", Some("phone")).await;
    let late_id = conn_id(&auth);

    // Longer than the ttl: the nodes' reconnect backoff reaches its 2 s cap, and a node that
    // judged the silent others would expire them.
    tokio::time::sleep_until(killed_at + TTL + Duration::from_secs(1)).await;
    cluster.wait_health_on(&all, "degraded", SETTLE).await;
    steady_watcher.expect_nothing_pending().await;
    cluster.restart_redis();
    cluster.wait_health_on(&all, "ok", SETTLE).await;
    expect_close_once(&mut early_on_a, 4001).await;
    expect_close_once(&mut during_on_a, 4001).await;
    expect_close_once(&mut late_on_b, 4001).await;
    cluster.wait_presence("early", &[&early_id]).await;
    cluster.wait_presence("during", &[&during_id]).await;
    cluster.wait_presence("late", &[&late_id]).await;
    early_on_b.expect_nothing_pending().await;
    during_on_b.expect_nothing_pending().await;
    late_on_a.expect_nothing_pending().await;
    cluster.wait_nodes(4).await;
    // What each node did alone is known everywhere again: who came, who left.
    for (i, (_, id, _, _)) in locals.iter().enumerate() {
        cluster.wait_presence(&format!("local-{i}"), &[id]).await;
    }
    cluster.wait_presence("on-d", &[&on_d_id]).await;
    on_d.expect_nothing_pending().await;
    expect_presence(&mut ghost_watcher, "ghost", false, 0).await;
    cluster.wait_presence("ghost", &[]).await;

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
    // A subscription made during the outage hears the other nodes too, once.
    let msg = json!({"type": "message", "topic": "solo.after", "data": {"id": "solo-after"}});
    publisher.send_json(&msg).await;
    for (local, _, watcher, _) in &mut locals {
        let msg = local.recv_type("message").await;
        assert_eq!(msg["data"]["id"], "solo-after", "{}: {msg}", local.label);
        local.expect_nothing_pending().await;
        watcher.expect_nothing_pending().await;
    }
    ghost_watcher.expect_nothing_pending().await;
    steady_watcher.expect_nothing_pending().await;
    cluster.wait_presence("steady", &[&steady_id]).await;
}

/// Node C is sent SIGTERM: its clients get 1001 (one that does not answer the close holds
/// the drain open, while C's `/healthz` says 503), and the watchers of its users on A and B
/// see them offline at once (well before the ttl could have expired C), C leaves the live
/// nodes at once, and exits 0 by its drain deadline.
pub async fn cluster_a_draining_node_withdraws_its_presence_at_once(binaries: [&Path; 3]) {
    // A longer ttl: an expiry could not come before ttl - ttl/3 = 4 s after the signal, so an
    // offline push within ttl/2 = 3 s is the goodbye's.
    let ttl = Duration::from_secs(6);
    let mut cluster = Cluster::start_with(&binaries, &["--cluster-ttl", "6s"]).await;
    let users = ["dee", "dot", "slow"];
    let mut held = Vec::new();
    for user in &users[..2] {
        let (client, auth) = cluster.nodes[2].connect(user, None).await;
        cluster.wait_presence(user, &[&conn_id(&auth)]).await;
        held.push(client);
    }
    // A client that reads nothing (and so never answers the close) until told.
    let target = format!("/ws?token={}", token(TEST_SECRET, "slow"));
    let mut slow = RawWs::connect(cluster.nodes[2].addr(), &target, &[], None).await;
    let auth = slow.recv_json().await;
    assert_eq!(auth["type"], "auth_success", "{auth}");
    cluster.wait_presence("slow", &[&conn_id(&auth)]).await;
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
    for node in &cluster.nodes[..2] {
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
    let draining = cluster.nodes[2].healthz().await;
    assert_eq!(
        draining
            .as_ref()
            .map(|(code, status)| (*code, status.as_str())),
        Ok((503, "draining")),
        "/healthz on the draining node C"
    );
    assert_eq!(
        slow.expect_close_skipping_data(1001).await,
        "server shutting down",
        "the silent client's close"
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

/// Node C is killed and started again at once under the same name: the new run's hello ends
/// the old run's connections on A and B at once (well before the ttl), the cluster has 3
/// nodes again, and a user connecting on the new run counts once, with a connId of the new
/// run.
pub async fn cluster_a_restarted_node_replaces_its_old_run_at_once(binaries: [&Path; 3]) {
    let ttl = Duration::from_secs(6);
    let flags = ["--cluster-ttl", "6s"];
    let mut cluster = Cluster::start_with(&binaries, &flags).await;
    let (old_client, auth) = cluster.nodes[2].connect("rex", Some("phone")).await;
    let old_id = conn_id(&auth);
    cluster.wait_presence("rex", &[&old_id]).await;
    let (mut watcher, _) = cluster.nodes[0].connect("watcher", None).await;
    assert_presence(&watch(&mut watcher, "rex").await, "rex", true, 1);

    cluster.nodes[2].sigkill();
    drop(old_client);
    let deadline = Instant::now() + ttl / 2;
    let url = cluster.redis_url();
    let (binary, id) = (
        cluster.nodes[2].binary().to_owned(),
        cluster.nodes[2].id().to_owned(),
    );
    cluster.nodes[2] = ClusterNode::spawn(&binary, &url, &id, &flags).await;
    expect_offline_by(&mut watcher, &["rex"], deadline, "after node C restarted").await;
    cluster.wait_nodes(3).await;
    cluster.wait_presence("rex", &[]).await;

    let (mut again, auth) = cluster.nodes[2].connect("rex", Some("phone")).await;
    let new_id = conn_id(&auth);
    let run = |id: &str| id.split('.').take(2).collect::<Vec<_>>().join(".");
    assert_ne!(
        run(&new_id),
        run(&old_id),
        "a new run has a new boot number"
    );
    expect_presence(&mut watcher, "rex", true, 1).await;
    cluster.wait_presence("rex", &[&new_id]).await;
    watcher.expect_nothing_pending().await;
    again.expect_nothing_pending().await;
}
