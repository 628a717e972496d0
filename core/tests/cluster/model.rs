//! Model-based test of cluster mode: random steps over 2 or 3 nodes on the simulated bus, their
//! wall clocks a little apart (clients open, close, subscribe, publish; applications publish;
//! the bus delivers the next events to a node chosen at random, so nodes race; the clock moves;
//! the bus or one node's connection to it is lost and returns; a node dies, once at most), with
//! the invariants checked after every step and, once the bus is quiet, the settled state.
//!
//! After every step:
//! - (a) no connection got the same publish twice, nor a message on a topic none of its
//!   patterns matches (the driver checks each frame);
//! - (d) nothing reaches a connection after its close, and it is closed (4001 included) at
//!   most once (the driver too); each node's own connections keep the per-device policy, and
//!   each node's application hears a user online and offline alternately.
//!
//! Once the bus is quiet (every queue delivered, the bus up, time moved past the ttl):
//! - (b) per (user, device) at most one live connection across the live nodes, the newest
//!   login of it still live if its client is; every node's `connection_count(user)` is the
//!   user's live connections across the live nodes, its presence subscribers heard that count
//!   last, its application heard the user online exactly when the count is not zero, and it
//!   knows every live node;
//! - (c) every connection that got `subscribed` for a pattern before a publish it matches
//!   (made while both nodes' bus connections were up, and the receiver's stayed up) got it.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use crate::sim_bus::{naive_match, Cluster};

const TTL_MS: u64 = 3_000;
const USERS: [&str; 3] = ["u0", "u1", "u2"];
const DEVICES: [&str; 2] = ["d0", "d1"];
const PATTERNS: [&str; 8] = [
    "chat.*",
    "chat.**",
    "**",
    "chat.lobby",
    "*.lobby",
    "news.*",
    "presence.u0",
    "presence.*",
];
const TOPICS: [&str; 4] = ["chat.lobby", "chat.lobby.x", "news.a", "x.lobby"];

#[derive(Clone, Debug)]
enum Op {
    Open {
        node: usize,
        user: usize,
        device: Option<usize>,
    },
    Close {
        client: usize,
    },
    Subscribe {
        client: usize,
        pattern: usize,
    },
    Unsubscribe {
        client: usize,
        pattern: usize,
    },
    Publish {
        client: usize,
        topic: usize,
    },
    /// The application on a node publishes.
    AppPublish {
        node: usize,
        topic: usize,
    },
    /// The next `count` events of one node's queue.
    Deliver {
        node: usize,
        count: usize,
    },
    Advance {
        ms: u64,
    },
    /// One node's bus connection drops, or (`None`) the bus itself.
    Lose {
        node: Option<usize>,
    },
    Restore {
        node: Option<usize>,
    },
    Kill {
        node: usize,
    },
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0usize..64;
    let node = 0usize..3;
    prop_oneof![
        4 => (node.clone(), 0..USERS.len(), proptest::option::weighted(0.6, 0..DEVICES.len()))
            .prop_map(|(node, user, device)| Op::Open { node, user, device }),
        1 => client.clone().prop_map(|client| Op::Close { client }),
        4 => (client.clone(), 0..PATTERNS.len())
            .prop_map(|(client, pattern)| Op::Subscribe { client, pattern }),
        1 => (client.clone(), 0..PATTERNS.len())
            .prop_map(|(client, pattern)| Op::Unsubscribe { client, pattern }),
        5 => (client, 0..TOPICS.len()).prop_map(|(client, topic)| Op::Publish { client, topic }),
        1 => (node.clone(), 0..TOPICS.len()).prop_map(|(node, topic)| Op::AppPublish { node, topic }),
        10 => (node.clone(), 1usize..8).prop_map(|(node, count)| Op::Deliver { node, count }),
        3 => (0u64..1_500).prop_map(|ms| Op::Advance { ms }),
        1 => proptest::option::of(node.clone()).prop_map(|node| Op::Lose { node }),
        1 => proptest::option::of(node.clone()).prop_map(|node| Op::Restore { node }),
        1 => node.prop_map(|node| Op::Kill { node }),
        1 => Just(Op::Settle),
    ]
}

/// A publish a connection must get: it matched a pattern the connection was told `subscribed`
/// for (with that holding's generation), and the bus could carry it.
#[derive(Debug)]
struct Owed {
    client: usize,
    tag: u64,
    /// The matching patterns it held, each with its generation.
    holdings: Vec<(String, u64)>,
    /// The receiver's bus losses when it was published (`None`: published on its own node).
    losses: Option<u64>,
}

struct Run {
    cl: Cluster,
    killed: bool,
    owed: Vec<Owed>,
}

impl Run {
    fn node(&self, i: usize) -> usize {
        i % self.cl.nodes.len()
    }

    /// One of the live clients (those gone have nothing left to do).
    fn pick(&self, i: usize) -> Option<usize> {
        let live: Vec<usize> = (0..self.cl.clients.len())
            .filter(|&c| self.cl.clients[c].live())
            .collect();
        (!live.is_empty()).then(|| live[i % live.len()])
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Open { node, user, device } => {
                let node = self.node(node);
                if self.cl.nodes[node].alive() {
                    self.cl.open(node, USERS[user], device.map(|d| DEVICES[d]));
                }
            }
            Op::Close { client } => {
                if let Some(c) = self.pick(client) {
                    self.cl.close(c);
                }
            }
            Op::Subscribe { client, pattern } => {
                if let Some(c) = self.pick(client) {
                    self.cl.subscribe(c, PATTERNS[pattern]);
                }
            }
            Op::Unsubscribe { client, pattern } => {
                if let Some(c) = self.pick(client) {
                    if self.cl.clients[c].patterns.contains(PATTERNS[pattern]) {
                        self.cl.unsubscribe(c, PATTERNS[pattern]);
                    }
                }
            }
            Op::Publish { client, topic } => {
                if let Some(c) = self.pick(client) {
                    self.publish(self.cl.clients[c].node, Some(c), TOPICS[topic]);
                }
            }
            Op::AppPublish { node, topic } => {
                let node = self.node(node);
                if self.cl.nodes[node].alive() {
                    self.publish(node, None, TOPICS[topic]);
                }
            }
            Op::Deliver { node, count } => {
                let node = self.node(node);
                for _ in 0..count {
                    self.cl.deliver(node);
                }
            }
            Op::Advance { ms } => self.cl.advance(Duration::from_millis(ms)),
            Op::Lose { node: None } => self.cl.lose_all(),
            Op::Lose { node: Some(n) } => {
                let n = self.node(n);
                self.cl.lose(n);
            }
            Op::Restore { node: None } => self.cl.restore_all(),
            Op::Restore { node: Some(n) } => {
                let n = self.node(n);
                self.cl.restore(n);
            }
            Op::Kill { node } => {
                let node = self.node(node);
                if !self.killed {
                    self.killed = true;
                    self.cl.kill(node);
                }
            }
            Op::Settle => self.settle(),
        }
        self.check_always(op);
    }

    /// Client `by` (or the application) on node `from` publishes on `topic`; what it owes to
    /// whom is noted first.
    fn publish(&mut self, from: usize, by: Option<usize>, topic: &str) {
        let cl = &self.cl;
        let mut owed = Vec::new();
        for (r, client) in cl.clients.iter().enumerate() {
            if !client.live() || !cl.nodes[client.node].alive() {
                continue;
            }
            let holdings: Vec<(String, u64)> = client
                .subscribed
                .iter()
                .filter(|(p, _)| naive_match(p, topic))
                .map(|(p, g)| (p.clone(), *g))
                .collect();
            if holdings.is_empty() {
                continue;
            }
            let losses = if client.node == from {
                None
            } else {
                let (sender, receiver) = (&cl.bus.ports[from], &cl.bus.ports[client.node]);
                if !(sender.connected && receiver.connected) {
                    continue;
                }
                Some(receiver.losses)
            };
            owed.push((r, holdings, losses));
        }
        let tag = match by {
            Some(c) => self.cl.publish(c, topic),
            None => self.cl.app_publish(from, topic),
        };
        for (client, holdings, losses) in owed {
            let o = Owed {
                client,
                tag,
                holdings,
                losses,
            };
            if o.losses.is_none() {
                // Delivered on its own node in the same step.
                let got = self.cl.clients[client].tags();
                assert!(
                    got.contains(&tag),
                    "client {client} on the publisher's node missed {tag} on {topic}: {o:?}"
                );
            } else {
                self.owed.push(o);
            }
        }
    }

    /// What holds after every step.
    fn check_always(&self, op: &Op) {
        let cl = &self.cl;
        assert!(
            cl.violations.is_empty(),
            "after {op:?}:\n{}",
            cl.violations.join("\n")
        );
        for (n, node) in cl.nodes.iter().enumerate() {
            let Some(sb) = &node.sb else { continue };
            // Each node enforces the policy among its own connections at every instant.
            for user in USERS {
                for device in DEVICES {
                    let here = sb.device_connections(user, device).count();
                    assert!(
                        here <= 1,
                        "after {op:?}: node {n} holds {here} of {user}/{device}"
                    );
                }
                let events: Vec<bool> = node
                    .presence
                    .iter()
                    .filter(|(u, _, _)| u == user)
                    .map(|(_, online, _)| *online)
                    .collect();
                for (i, online) in events.iter().enumerate() {
                    assert_eq!(
                        *online,
                        i % 2 == 0,
                        "after {op:?}: node {n} told its application {user} online/offline out of turn: {:?}",
                        node.presence
                    );
                }
            }
        }
    }

    /// Everything delivered, the bus up, the ttl past: the settled state is checked.
    fn settle(&mut self) {
        self.cl.settle();
        self.check_always(&Op::Settle);
        let cl = &self.cl;
        let live_nodes = cl.nodes.iter().filter(|n| n.alive()).count();
        // (b) sessions, counts, presence, membership.
        let mut per_device: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for (i, c) in cl.clients.iter().enumerate() {
            if let Some(d) = &c.device {
                per_device.entry((&c.user, d)).or_default().push(i);
            }
        }
        for ((user, device), clients) in &per_device {
            let live: Vec<usize> = clients
                .iter()
                .copied()
                .filter(|&c| cl.clients[c].live())
                .collect();
            assert!(
                live.len() <= 1,
                "{user}/{device} has live connections {live:?} across the nodes"
            );
            // The newest login of the device (if alone in its millisecond) was replaced by no one.
            let newest = clients
                .iter()
                .map(|&c| cl.clients[c].authenticated_at)
                .max()
                .unwrap();
            let newest: Vec<usize> = clients
                .iter()
                .copied()
                .filter(|&c| cl.clients[c].authenticated_at == newest)
                .collect();
            if let [w] = newest[..] {
                let client = &cl.clients[w];
                assert!(
                    client.gone || client.live(),
                    "the newest login {w} of {user}/{device} was closed: {:?}",
                    client.closes
                );
            }
        }
        for (i, c) in cl.clients.iter().enumerate() {
            if c.closes.contains(&4001) {
                assert!(
                    c.device.is_some()
                        && cl.clients.iter().enumerate().any(|(j, o)| j != i
                            && o.user == c.user
                            && o.device == c.device
                            && o.authenticated_at >= c.authenticated_at),
                    "client {i} was replaced by no newer login of its device"
                );
            }
        }
        for (n, node) in cl.nodes.iter().enumerate() {
            let Some(sb) = &node.sb else { continue };
            assert_eq!(sb.node_count(), live_nodes, "node {n} knows the live nodes");
            for user in USERS {
                let live = cl.live_of(user).len();
                assert_eq!(
                    sb.connection_count(user),
                    live,
                    "node {n}: {user}'s connections across the nodes"
                );
                let online = node
                    .presence
                    .iter()
                    .rev()
                    .find(|(u, _, _)| u == user)
                    .is_some_and(|(_, online, _)| *online);
                assert_eq!(online, live > 0, "node {n}'s application on {user}");
            }
            let live = cl.live_of("u0").len() as u64;
            for (i, c) in cl.clients.iter().enumerate() {
                if c.node == n && c.live() && c.subscribed_to("presence.u0") {
                    assert_eq!(
                        c.presence_counts("u0").last(),
                        Some(&live),
                        "presence subscriber {i} on node {n}"
                    );
                }
            }
        }
        // (c) what the bus could carry was carried.
        for o in std::mem::take(&mut self.owed) {
            let client = &cl.clients[o.client];
            if !client.live() || cl.bus.ports[client.node].losses != o.losses.unwrap() {
                continue;
            }
            let still = o
                .holdings
                .iter()
                .any(|(p, g)| client.subscribed.get(p) == Some(g));
            if still {
                assert!(
                    client.tags().contains(&o.tag),
                    "client {} on node {} missed publish {}: {o:?}",
                    o.client,
                    client.node,
                    o.tag
                );
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("SWITCHBOARD_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_cluster_keeps_its_invariants_under_races_outages_and_a_death(
        nodes in 2usize..=3,
        skews in proptest::collection::vec(0u64..3, 3),
        ops in proptest::collection::vec(op(), 20..300),
    ) {
        let mut run = Run {
            cl: Cluster::joined(nodes, Duration::from_millis(TTL_MS)),
            killed: false,
            owed: Vec::new(),
        };
        // Each node's wall clock a little ahead of the others (or not): logins on two nodes in
        // the same millisecond, or in an order the clocks disagree on.
        for (node, skew) in run.cl.nodes.iter_mut().zip(skews) {
            node.skew_ms = skew;
        }
        for op in &ops {
            run.step(op);
        }
        run.settle();
    }
}
