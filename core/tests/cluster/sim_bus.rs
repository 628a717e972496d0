//! A simulated Redis bus with the semantics the bridge gives the core (`cluster/bus.rs`), and
//! `Cluster`, a driver of N nodes on it whose clients are simulated too.
//!
//! The bus acts on an action at once (Redis processed the command) and queues what it reports,
//! per node and in order; the driver hands a node its next event only when a test (or proptest)
//! says so, which is how races between nodes are staged. After every input to a node the driver
//! drains `poll_action()` to `None`: `Bus` actions go to the bus, `Send`/`Close`/`Evict` to the
//! simulated clients, `Presence` to the node's record of application events.
//!
//! Whatever a test does, the driver checks on every frame what holds at every instant and
//! records any breach in `Cluster::violations`: nothing reaches a connection after its close, a
//! connection is closed at most once, a message reaches only connections with a pattern that
//! matches its topic and at most once, and `subscribed` is answered only once the bus
//! confirmed the glob (while the node is on the bus).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
use switchboard_core::cluster::{
    BusAction, BusEvent, Channel, ClusterConfig, NodeId, NodeIdentity, Subscription,
};
use switchboard_core::{Action, Config, ConnId, Frame, Handshake, Instant, Now, Switchboard};

pub(crate) const SECRET: &[u8] = b"cluster-secret";
/// Wall clock at the start: 2026-11-23T10:00:00.000Z.
pub(crate) const WALL0: u64 = 1_795_428_000_000;
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

// ---- the bus -----------------------------------------------------------------------------------

/// Redis `PSUBSCRIBE` matching, for the only metacharacter the core writes: `*` matches any run
/// of characters (dots included, possibly none); every other character matches itself.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t) = (glob.as_bytes(), text.as_bytes());
    let (mut gi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at: backtrack there on a mismatch.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] == b'*' {
            star = Some((gi, ti));
            gi += 1;
        } else if gi < g.len() && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&b| b == b'*')
}

fn carries(sub: &Subscription, channel: &Channel) -> bool {
    match (sub, channel) {
        (Subscription::Members, Channel::Members) => true,
        (Subscription::Commands, Channel::Commands) => true,
        (Subscription::Topics(glob), Channel::Topic(topic)) => glob_matches(glob, topic),
        _ => false,
    }
}

/// One node's connection to the bus.
#[derive(Default)]
pub(crate) struct Port {
    pub(crate) connected: bool,
    /// Killed: it will never connect again (a restart takes a new port state).
    pub(crate) dead: bool,
    /// What it listens to, in the order subscribed.
    pub(crate) subs: Vec<Subscription>,
    pub(crate) queue: VecDeque<BusEvent>,
    /// How many times this port lost the bus: what was queued before a loss is gone.
    pub(crate) losses: u64,
}

/// The bus: a port per node and the shared per-user session counters (Redis `INCR`).
#[derive(Default)]
pub(crate) struct SimBus {
    pub(crate) ports: Vec<Port>,
    pub(crate) counters: BTreeMap<String, u64>,
}

impl SimBus {
    pub(crate) fn add_port(&mut self) -> usize {
        self.ports.push(Port::default());
        self.ports.len() - 1
    }

    /// What Redis does with a node's command. A node that is not connected reaches no one.
    pub(crate) fn act(&mut self, node: usize, action: BusAction) {
        if !self.ports[node].connected {
            return;
        }
        match action {
            BusAction::Subscribe(sub) => {
                let port = &mut self.ports[node];
                if !port.subs.contains(&sub) {
                    port.subs.push(sub.clone());
                }
                port.queue.push_back(BusEvent::Subscribed(sub));
            }
            BusAction::Unsubscribe(sub) => self.ports[node].subs.retain(|s| *s != sub),
            BusAction::Publish { channel, message } => {
                for port in self.ports.iter_mut().filter(|p| p.connected) {
                    // pmessage semantics: once per subscription that matches.
                    let copies = port.subs.iter().filter(|s| carries(s, &channel)).count();
                    for _ in 0..copies {
                        port.queue.push_back(BusEvent::Message {
                            channel: channel.clone(),
                            message: message.clone(),
                        });
                    }
                }
            }
            BusAction::NextEpoch { user, request } => {
                let counter = self.counters.entry(user.to_string()).or_insert(0);
                *counter += 1;
                let epoch = *counter;
                self.ports[node]
                    .queue
                    .push_back(BusEvent::Epoch { request, epoch });
            }
            other => panic!("a bus action the simulation does not know: {other:?}"),
        }
    }

    /// The node's connection drops: what was queued for it is gone, and so are its
    /// subscriptions. Whether it was connected.
    pub(crate) fn lose(&mut self, node: usize) -> bool {
        let port = &mut self.ports[node];
        if !port.connected {
            return false;
        }
        port.connected = false;
        port.queue.clear();
        port.subs.clear();
        port.losses += 1;
        true
    }

    /// A new connection, with no subscriptions. Whether it was down (and is now up).
    pub(crate) fn restore(&mut self, node: usize) -> bool {
        let port = &mut self.ports[node];
        if port.connected || port.dead {
            return false;
        }
        port.connected = true;
        true
    }

    /// SIGKILL: the node's connection and all it had vanish for good.
    pub(crate) fn kill(&mut self, node: usize) {
        self.lose(node);
        self.ports[node].dead = true;
    }

    pub(crate) fn pop(&mut self, node: usize) -> Option<BusEvent> {
        self.ports[node].queue.pop_front()
    }

    pub(crate) fn quiet(&self) -> bool {
        self.ports.iter().all(|p| p.queue.is_empty())
    }

    pub(crate) fn topic_globs(&self, node: usize) -> BTreeSet<String> {
        self.ports[node]
            .subs
            .iter()
            .filter_map(|s| match s {
                Subscription::Topics(g) => Some(g.to_string()),
                _ => None,
            })
            .collect()
    }
}

// ---- reference helpers, written independently of the core ---------------------------------

/// The reference matcher of patterns (`*` one segment, trailing `**` one or more).
pub(crate) fn naive_match(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if p.last() == Some(&"**") {
        let prefix = &p[..p.len() - 1];
        return t.len() > prefix.len() && prefix.iter().zip(&t).all(|(a, b)| *a == "*" || a == b);
    }
    p.len() == t.len() && p.iter().zip(&t).all(|(a, b)| *a == "*" || a == b)
}

/// The bus glob that must carry a pattern's topics: `None` for `presence.<one segment>`.
pub(crate) fn glob_for(pattern: &str) -> Option<String> {
    let segments: Vec<&str> = pattern.split('.').collect();
    if segments.len() == 2 && segments[0] == "presence" {
        return None;
    }
    let glob: Vec<&str> = segments
        .iter()
        .map(|s| if s.starts_with('*') { "*" } else { s })
        .collect();
    Some(glob.join("."))
}

pub(crate) fn token(user: &str) -> String {
    sign_hs256(
        SECRET,
        &Claims {
            sub: user.into(),
            exp: WALL0 / 1000 + 10_000_000,
            device: None,
            topics: None,
            info: None,
        },
    )
}

// ---- the driver ----------------------------------------------------------------------------

/// A simulated client: every frame it received, parsed, and how it ended.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) node: usize,
    pub(crate) run: u32,
    pub(crate) conn: ConnId,
    pub(crate) user: String,
    pub(crate) device: Option<String>,
    /// Its id as `auth_success` named it.
    pub(crate) conn_text: String,
    /// Wall-clock ms of its node when it authenticated.
    pub(crate) authenticated_at: u64,
    pub(crate) frames: Vec<Value>,
    /// Close codes the core sent it (more than one is a violation).
    pub(crate) closes: Vec<u16>,
    pub(crate) evicted: bool,
    /// The client went away itself (closed, or its node died).
    pub(crate) gone: bool,
    /// Patterns it asked for and has not given up.
    pub(crate) patterns: BTreeSet<String>,
    /// Patterns it got `subscribed` for (and still holds), with the generation of that holding.
    pub(crate) subscribed: BTreeMap<String, u64>,
    pub(crate) generation: u64,
    /// `type` + `data` of every message and push received, for duplicates.
    seen: BTreeSet<String>,
}

impl Client {
    pub(crate) fn live(&self) -> bool {
        self.closes.is_empty() && !self.evicted && !self.gone
    }

    pub(crate) fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["type"] == kind).collect()
    }

    /// The `data` of every `message` received, in order.
    pub(crate) fn messages(&self) -> Vec<&Value> {
        self.of_type("message")
            .into_iter()
            .map(|f| &f["data"])
            .collect()
    }

    /// The tags (`data.n`) of every `message` received, in order.
    pub(crate) fn tags(&self) -> Vec<u64> {
        self.messages()
            .into_iter()
            .filter_map(|d| d["n"].as_u64())
            .collect()
    }

    /// The `connections` of every `presence` push about `user`, in order.
    pub(crate) fn presence_counts(&self, user: &str) -> Vec<u64> {
        self.of_type("presence")
            .into_iter()
            .filter(|f| f["userId"] == user)
            .map(|f| f["connections"].as_u64().unwrap())
            .collect()
    }

    pub(crate) fn subscribed_to(&self, pattern: &str) -> bool {
        self.subscribed.contains_key(pattern)
    }
}

/// One node: its core (`None` once killed), its run, and what it told its application.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) boot: u32,
    pub(crate) run: u32,
    pub(crate) sb: Option<Switchboard>,
    /// Wall clock offset from the shared clock (skew).
    pub(crate) skew_ms: u64,
    /// `Action::Presence` events: (user, online, connections).
    pub(crate) presence: Vec<(String, bool, usize)>,
    /// Every bus action it emitted, in order.
    pub(crate) bus_log: Vec<BusAction>,
    /// Whether it was told `Up` and no `Lost` since.
    pub(crate) on_bus: bool,
    /// Per glob: `Subscribe`s sent since the last `Up` and not yet answered by `Subscribed`.
    outstanding: BTreeMap<String, u32>,
    pub(crate) stopped: bool,
}

impl Node {
    pub(crate) fn alive(&self) -> bool {
        self.sb.is_some()
    }

    pub(crate) fn sb(&self) -> &Switchboard {
        self.sb.as_ref().expect("a live node")
    }
}

pub(crate) struct Cluster {
    pub(crate) bus: SimBus,
    pub(crate) nodes: Vec<Node>,
    pub(crate) clients: Vec<Client>,
    index: BTreeMap<(usize, u32, ConnId), usize>,
    /// The shared clock, in ms since the start.
    pub(crate) t_ms: u64,
    pub(crate) config: Config,
    pub(crate) ttl: Duration,
    /// Every breach of what must hold at every instant, described.
    pub(crate) violations: Vec<String>,
    next_tag: u64,
}

impl Cluster {
    /// The config every node runs with: per-device sessions, no inbound rate limit.
    pub(crate) fn config() -> Config {
        let mut config = Config::default();
        config.max_messages_per_sec = 0;
        config
    }

    /// `n` nodes, not on the bus yet.
    pub(crate) fn new(n: usize, ttl: Duration) -> Self {
        Self::with(n, ttl, Self::config())
    }

    pub(crate) fn with(n: usize, ttl: Duration, config: Config) -> Self {
        let mut c = Cluster {
            bus: SimBus::default(),
            nodes: Vec::new(),
            clients: Vec::new(),
            index: BTreeMap::new(),
            t_ms: 0,
            config,
            ttl,
            violations: Vec::new(),
            next_tag: 0,
        };
        for (i, &name) in NAMES.iter().enumerate().take(n) {
            c.bus.add_port();
            c.nodes.push(Node {
                name,
                boot: 0,
                run: 0,
                sb: None,
                skew_ms: 0,
                presence: Vec::new(),
                bus_log: Vec::new(),
                on_bus: false,
                outstanding: BTreeMap::new(),
                stopped: false,
            });
            c.boot_node(i);
        }
        c
    }

    /// `n` nodes on the bus, each having joined and heard the others.
    pub(crate) fn joined(n: usize, ttl: Duration) -> Self {
        let mut c = Self::new(n, ttl);
        for i in 0..n {
            c.restore(i);
        }
        c.deliver_all();
        c.assert_ok();
        c
    }

    fn boot_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.run += 1;
        node.boot = 0xb007_0000 + ((i as u32) << 8) + node.run;
        let identity = NodeIdentity::new(NodeId::new(node.name).unwrap(), node.boot);
        let mut cluster = ClusterConfig::new(identity);
        cluster.ttl = self.ttl;
        let seed = 0x5eed + 977 * i as u64 + node.run as u64;
        let sb = Switchboard::new(self.config.clone(), Hs256Verifier::new(SECRET), seed)
            .with_cluster(cluster);
        node.sb = Some(sb);
        node.presence.clear();
        node.bus_log.clear();
        node.on_bus = false;
        node.outstanding.clear();
        node.stopped = false;
    }

    pub(crate) fn now(&self, node: usize) -> Now {
        Now::new(
            Instant::from_millis(self.t_ms),
            WALL0 + self.t_ms + self.nodes[node].skew_ms,
        )
    }

    pub(crate) fn sb(&self, node: usize) -> &Switchboard {
        self.nodes[node].sb()
    }

    fn sb_mut(&mut self, node: usize) -> &mut Switchboard {
        self.nodes[node].sb.as_mut().expect("a live node")
    }

    /// Runs `f` on a live node's core at its `now`, then drains what it decided.
    pub(crate) fn input<R>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut Switchboard, Now) -> R,
    ) -> R {
        let now = self.now(node);
        let r = f(self.sb_mut(node), now);
        self.drain(node);
        r
    }

    /// Drains the node's actions to `None` and carries them out; clients answer pings.
    pub(crate) fn drain(&mut self, node: usize) {
        loop {
            let Some(sb) = self.nodes[node].sb.as_mut() else {
                return;
            };
            let actions: Vec<Action> = std::iter::from_fn(|| sb.poll_action()).collect();
            let mut pings = Vec::new();
            for action in actions {
                if let Action::Ping { conn } = action {
                    pings.push(conn);
                } else {
                    self.dispatch(node, action);
                }
            }
            if pings.is_empty() {
                return;
            }
            let now = self.now(node);
            let sb = self.sb_mut(node);
            for conn in pings {
                sb.handle_pong(now, conn);
            }
        }
    }

    fn client_of(&mut self, node: usize, conn: ConnId, what: &str) -> Option<usize> {
        let run = self.nodes[node].run;
        let found = self.index.get(&(node, run, conn)).copied();
        if found.is_none() {
            let name = self.nodes[node].name;
            self.violations.push(format!(
                "node {name}: {what} for {conn}, which no client holds"
            ));
        }
        found
    }

    fn dispatch(&mut self, node: usize, action: Action) {
        let name = self.nodes[node].name;
        match action {
            Action::Send { conn, payload } => {
                let Some(c) = self.client_of(node, conn, "a send") else {
                    return;
                };
                let frame: Value = serde_json::from_slice(&payload).expect("frames are JSON");
                self.received(node, c, frame);
            }
            Action::Close { conn, code, .. } => {
                let Some(c) = self.client_of(node, conn, "a close") else {
                    return;
                };
                let client = &mut self.clients[c];
                if !client.live() {
                    self.violations.push(format!(
                        "node {name}: close {code} for client {c} ({}), which was closed already: {:?} evicted {} gone {}",
                        client.conn_text, client.closes, client.evicted, client.gone
                    ));
                }
                client.closes.push(code.0);
            }
            Action::Evict { conn } => {
                let Some(c) = self.client_of(node, conn, "an eviction") else {
                    return;
                };
                if !self.clients[c].live() {
                    self.violations.push(format!(
                        "node {name}: eviction of client {c}, closed already"
                    ));
                }
                self.clients[c].evicted = true;
            }
            Action::Presence {
                user,
                online,
                connections,
            } => self.nodes[node]
                .presence
                .push((user.to_string(), online, connections)),
            Action::Stop => self.nodes[node].stopped = true,
            Action::Bus(bus) => {
                if let BusAction::Subscribe(Subscription::Topics(glob)) = &bus {
                    if self.bus.ports[node].connected {
                        *self.nodes[node]
                            .outstanding
                            .entry(glob.to_string())
                            .or_insert(0) += 1;
                    }
                }
                self.nodes[node].bus_log.push(bus.clone());
                self.bus.act(node, bus);
            }
            other => panic!("an action the driver does not know: {other:?}"),
        }
    }

    /// A frame reaches client `c`: checked, then recorded.
    fn received(&mut self, node: usize, c: usize, frame: Value) {
        let name = self.nodes[node].name;
        let client = &mut self.clients[c];
        let kind = frame["type"].as_str().unwrap_or("").to_owned();
        if !client.live() {
            self.violations.push(format!(
                "node {name}: client {c} ({}) got {frame} after its close {:?} (gone {}, evicted {})",
                client.conn_text, client.closes, client.gone, client.evicted
            ));
        }
        match kind.as_str() {
            "message" | "push" => {
                if kind == "message" {
                    let topic = frame["topic"].as_str().unwrap();
                    if !client.patterns.iter().any(|p| naive_match(p, topic)) {
                        self.violations.push(format!(
                            "node {name}: client {c} got a message on {topic}, which none of {:?} matches",
                            client.patterns
                        ));
                    }
                }
                let key = format!("{kind} {}", frame["data"]);
                if !client.seen.insert(key.clone()) {
                    self.violations.push(format!(
                        "node {name}: client {c} ({}) got {key} twice",
                        client.conn_text
                    ));
                }
            }
            "subscribed" => {
                let pattern = frame["topic"].as_str().unwrap().to_owned();
                // (A `subscribed` held for a pattern given up since is answered just before
                // its `unsubscribed`: it promises nothing.)
                let held = client.patterns.contains(&pattern);
                if let Some(glob) = glob_for(&pattern).filter(|_| held) {
                    let n = &self.nodes[node];
                    let waiting = n.outstanding.get(&glob).copied().unwrap_or(0);
                    let listening = self.bus.topic_globs(node).contains(&glob);
                    if n.on_bus && (waiting > 0 || !listening) {
                        self.violations.push(format!(
                            "node {name}: client {c} told subscribed to {pattern} with {waiting} \
                             Subscribe({glob}) unanswered (listening: {listening})"
                        ));
                    }
                }
                if held {
                    let generation = client.generation;
                    client.subscribed.insert(pattern, generation);
                }
            }
            _ => {}
        }
        client.frames.push(frame);
    }

    // ---- clients ------------------------------------------------------------------------------

    /// Opens a connection on `node` authenticated at the handshake as `user` on `device`.
    pub(crate) fn open(&mut self, node: usize, user: &str, device: Option<&str>) -> usize {
        let c = self.clients.len();
        let handshake = Handshake {
            token: Some(token(user)),
            device: device.map(Into::into),
            ..Handshake::default()
        };
        let ip = IpAddr::from([10, (c >> 16) as u8, (c >> 8) as u8, c as u8]);
        let now = self.now(node);
        let conn = self
            .sb_mut(node)
            .open(now, ip, handshake)
            .expect("open with a valid token");
        let run = self.nodes[node].run;
        self.clients.push(Client {
            node,
            run,
            conn,
            user: user.into(),
            device: device.map(Into::into),
            conn_text: String::new(),
            authenticated_at: now.unix_millis,
            frames: Vec::new(),
            closes: Vec::new(),
            evicted: false,
            gone: false,
            patterns: BTreeSet::new(),
            subscribed: BTreeMap::new(),
            generation: 0,
            seen: BTreeSet::new(),
        });
        self.index.insert((node, run, conn), c);
        self.drain(node);
        let client = &mut self.clients[c];
        let first = client.frames.first().expect("auth_success");
        assert_eq!(first["type"], "auth_success", "{first}");
        client.conn_text = first["connId"].as_str().unwrap().to_owned();
        c
    }

    /// Client `c` sends a text frame (nothing happens if it is gone).
    pub(crate) fn frame(&mut self, c: usize, text: &str) {
        let client = &self.clients[c];
        if !client.live() || !self.nodes[client.node].alive() {
            return;
        }
        let (node, conn) = (client.node, client.conn);
        self.input(node, |sb, now| {
            sb.handle_frame(now, conn, Frame::Text(text))
        });
    }

    pub(crate) fn subscribe(&mut self, c: usize, pattern: &str) {
        if self.clients[c].live() {
            self.clients[c].patterns.insert(pattern.into());
        }
        self.frame(c, &json!({"type":"subscribe","topic":pattern}).to_string());
    }

    pub(crate) fn unsubscribe(&mut self, c: usize, pattern: &str) {
        let client = &mut self.clients[c];
        if client.live() {
            client.patterns.remove(pattern);
            client.subscribed.remove(pattern);
            client.generation += 1;
        }
        self.frame(
            c,
            &json!({"type":"unsubscribe","topic":pattern}).to_string(),
        );
    }

    /// A fresh tag for a publish's data: `{"n": tag}`.
    pub(crate) fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    /// Client `c` publishes `{"n": tag}` on `topic`; returns the tag.
    pub(crate) fn publish(&mut self, c: usize, topic: &str) -> u64 {
        let tag = self.tag();
        let msg = json!({"type":"message","topic":topic,"data":{"n":tag}});
        self.frame(c, &msg.to_string());
        tag
    }

    /// The application on `node` publishes `{"n": tag}` on `topic`; returns the tag.
    pub(crate) fn app_publish(&mut self, node: usize, topic: &str) -> u64 {
        let tag = self.tag();
        let data =
            serde_json::value::RawValue::from_string(json!({ "n": tag }).to_string()).unwrap();
        self.input(node, |sb, now| sb.publish(now, topic, &data, None))
            .expect("publish");
        tag
    }

    /// The client closes its connection.
    pub(crate) fn close(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if !client.live() {
            return;
        }
        client.gone = true;
        let (node, conn) = (client.node, client.conn);
        if self.nodes[node].alive() {
            self.input(node, |sb, now| sb.handle_closed(now, conn));
        }
    }

    /// Live clients of `user` across the live nodes.
    pub(crate) fn live_of(&self, user: &str) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&c| self.clients[c].live() && self.clients[c].user == user)
            .collect()
    }

    // ---- the bus and the clock ----------------------------------------------------------------

    /// Hands node `node` the next event the bus queued for it; whether there was one.
    pub(crate) fn deliver(&mut self, node: usize) -> bool {
        let Some(event) = self.bus.pop(node) else {
            return false;
        };
        if let BusEvent::Subscribed(Subscription::Topics(glob)) = &event {
            if let Some(n) = self.nodes[node].outstanding.get_mut(&**glob) {
                *n = n.saturating_sub(1);
            }
        }
        if self.nodes[node].alive() {
            self.input(node, |sb, now| sb.handle_bus(now, event));
        }
        true
    }

    /// Delivers until every queue is empty, one event per node in turn.
    pub(crate) fn deliver_all(&mut self) {
        for _ in 0..1_000_000 {
            let mut any = false;
            for node in 0..self.nodes.len() {
                any |= self.deliver(node);
            }
            if !any {
                assert!(self.bus.quiet());
                return;
            }
        }
        panic!("the bus never went quiet");
    }

    /// Moves the shared clock forward and runs every live node's timers.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.t_ms += u64::try_from(d.as_millis()).unwrap();
        for node in 0..self.nodes.len() {
            if self.nodes[node].alive() {
                self.input(node, |sb, now| sb.handle_timeout(now));
            }
        }
    }

    /// Moves time forward by `d` in small steps, delivering everything after each.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let step = (self.ttl / 6).max(Duration::from_millis(1));
        let mut left = d;
        while !left.is_zero() {
            let s = step.min(left);
            self.advance(s);
            self.deliver_all();
            left -= s;
        }
    }

    /// The bus drops the node's connection; the node hears `Lost` at once.
    pub(crate) fn lose(&mut self, node: usize) {
        if !self.bus.lose(node) {
            return;
        }
        let n = &mut self.nodes[node];
        n.outstanding.clear();
        n.on_bus = false;
        if n.alive() {
            self.input(node, |sb, now| sb.handle_bus(now, BusEvent::Lost));
        }
    }

    pub(crate) fn lose_all(&mut self) {
        for node in 0..self.nodes.len() {
            self.lose(node);
        }
    }

    /// The node's bridge connects again; the node hears `Up` at once.
    pub(crate) fn restore(&mut self, node: usize) {
        if !self.nodes[node].alive() || !self.bus.restore(node) {
            return;
        }
        self.nodes[node].on_bus = true;
        self.input(node, |sb, now| sb.handle_bus(now, BusEvent::Up));
    }

    pub(crate) fn restore_all(&mut self) {
        for node in 0..self.nodes.len() {
            self.restore(node);
        }
    }

    /// SIGKILL: the node's core is dropped, its clients lose their connections, and its bus
    /// connection vanishes.
    pub(crate) fn kill(&mut self, node: usize) {
        self.nodes[node].sb = None;
        self.nodes[node].on_bus = false;
        self.bus.kill(node);
        let run = self.nodes[node].run;
        for client in &mut self.clients {
            if client.node == node && client.run == run {
                client.gone = true;
            }
        }
    }

    /// A new run of a killed node (a new boot), on the bus again.
    pub(crate) fn restart(&mut self, node: usize) {
        assert!(!self.nodes[node].alive(), "kill it first");
        self.bus.ports[node] = Port::default();
        self.boot_node(node);
        self.restore(node);
    }

    /// The bus comes back for every live node, everything queued is delivered, and time moves
    /// past the ttl (heartbeats delivered as they go), so that dead nodes expire.
    pub(crate) fn settle(&mut self) {
        self.restore_all();
        self.deliver_all();
        self.run_for(self.ttl + self.ttl / 2);
    }

    /// Fails the test with every violation recorded so far.
    pub(crate) fn assert_ok(&self) {
        assert!(
            self.violations.is_empty(),
            "violations:\n{}",
            self.violations.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_glob_is_redis_star_only() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "a.b.c"));
        assert!(glob_matches("chat.*", "chat.lobby"));
        assert!(glob_matches("chat.*", "chat.a.b"));
        assert!(glob_matches("chat.*", "chat."));
        assert!(!glob_matches("chat.*", "chat"));
        assert!(!glob_matches("chat.*", "chatx.lobby"));
        assert!(glob_matches("a.*.c", "a.b.c"));
        assert!(glob_matches("a.*.c", "a.b.x.c"));
        assert!(!glob_matches("a.*.c", "a.b.c.d"));
        assert!(glob_matches("a*b*c", "aXbYbZc"));
        assert!(!glob_matches("a*b*c", "aXbYbZ"));
        assert!(glob_matches("a.b", "a.b"));
        assert!(!glob_matches("a.b", "a.bc"));
        assert!(glob_matches("**", "x"));
    }

    #[test]
    fn the_reference_glob_of_a_pattern() {
        assert_eq!(glob_for("chat.**").as_deref(), Some("chat.*"));
        assert_eq!(glob_for("**").as_deref(), Some("*"));
        assert_eq!(glob_for("a.*.c").as_deref(), Some("a.*.c"));
        assert_eq!(glob_for("presence.u0"), None);
        assert_eq!(glob_for("presence.*"), None);
    }
}
