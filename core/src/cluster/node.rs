//! This node in the cluster: the state it keeps beside the registry, and what each bus event
//! does to it.

use std::borrow::Cow;
use std::sync::Arc;

use crate::action::CloseCode;
use crate::cluster::bus::{BusAction, BusEvent, Channel, Subscription};
use crate::cluster::members::{Members, RemoteConnection};
use crate::cluster::routing::Routing;
use crate::cluster::wire::{self, Header, Target};
use crate::cluster::{ClusterConfig, ClusterStatus, NodeIdentity};
use crate::hashing::{hasher, Map};
use crate::payload::Payload;
use crate::presence::PresenceChange;
use crate::registry::ConnId;
use crate::switchboard::{Leave, Switchboard};
use crate::time::{Instant, Now};
use crate::topics::Topic;

/// A local connection's place in the session order: when this node authenticated it, and the
/// user's epoch it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) authenticated_at: u64,
    pub(crate) epoch: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bus {
    Down,
    /// Connected; `joined` once the membership and command channels are confirmed and this
    /// node has announced itself.
    Up {
        members: bool,
        commands: bool,
        joined: bool,
    },
}

/// What a node in cluster mode keeps beside the registry.
pub(crate) struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(super) bus: Bus,
    pub(crate) members: Members,
    pub(crate) routing: Routing,
    /// Local connections that took their epoch, and were announced with it.
    pub(crate) claims: Map<ConnId, Claim>,
    /// Epoch requests in flight: request -> (connection, when it was authenticated).
    pub(super) awaiting: Map<u64, (ConnId, u64)>,
    pub(super) next_request: u64,
    pub(super) publish_seq: u64,
    pub(super) next_heartbeat: Instant,
    /// Set by `shutdown`: this node said goodbye and announces nothing more.
    pub(super) departed: bool,
    /// Bus messages that could not be decoded (another program or version on the channels).
    pub(crate) undecodable_total: u64,
}

impl Cluster {
    pub(crate) fn new(config: ClusterConfig, seed: u64) -> Self {
        Cluster {
            config,
            bus: Bus::Down,
            members: Members::new(seed),
            routing: Routing::new(seed),
            claims: Map::with_hasher(hasher(seed)),
            awaiting: Map::with_hasher(hasher(seed)),
            next_request: 0,
            publish_seq: 0,
            next_heartbeat: Instant::NEVER,
            departed: false,
            undecodable_total: 0,
        }
    }

    pub(crate) fn joined(&self) -> bool {
        matches!(self.bus, Bus::Up { joined: true, .. }) && !self.departed
    }

    /// Connected to the bus, joined or not yet: what it publishes reaches the others.
    pub(super) fn on_bus(&self) -> bool {
        matches!(self.bus, Bus::Up { .. }) && !self.departed
    }

    pub(super) fn me(&self) -> (&str, u32) {
        let id = &self.config.identity;
        (id.node.as_str(), id.boot)
    }

    pub(super) fn heartbeat_interval(&self) -> std::time::Duration {
        self.config.ttl / 3
    }

    /// When the cluster next has work: a heartbeat, or a node that expires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if !self.joined() {
            return None;
        }
        let expiry = self.members.next_expiry(self.config.ttl);
        Some(expiry.map_or(self.next_heartbeat, |e| e.min(self.next_heartbeat)))
    }
}

/// Where the connection an id names is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnLocation<'a> {
    /// On this node, live.
    Here(ConnId),
    /// On this other node, as it announced.
    Elsewhere(&'a str),
    /// Nowhere: it left, or never existed.
    Nowhere,
}

impl Switchboard {
    // ---- setting up -------------------------------------------------------------------------

    /// Names this node, so that connection ids are unique across nodes and restarts:
    /// `<node>.<boot>.<index>.<generation>`. Without it ids read `c-<index>-<generation>`.
    pub fn with_node(mut self, identity: NodeIdentity) -> Self {
        self.node = Some(identity);
        self
    }

    /// Joins a cluster: from now on the core emits [`Action::Bus`](crate::Action::Bus) and takes [`BusEvent`]s
    /// through [`handle_bus`](Self::handle_bus). It serves its own clients alone until the
    /// first [`BusEvent::Up`].
    ///
    /// History stays on this node's side of the bus for now: streams are not shared between
    /// nodes yet, so cluster mode keeps none (frames carry no position).
    pub fn with_cluster(mut self, config: ClusterConfig) -> Self {
        self.node = Some(config.identity.clone());
        self.history = None;
        self.cluster = Some(Box::new(Cluster::new(config, self.registry.seed())));
        self
    }

    /// This node's identity, if it was given one.
    pub fn node(&self) -> Option<&NodeIdentity> {
        self.node.as_ref()
    }

    /// Where this node stands with its cluster.
    pub fn cluster_status(&self) -> ClusterStatus {
        match &self.cluster {
            None => ClusterStatus::Standalone,
            Some(c) if c.joined() => ClusterStatus::Joined,
            Some(_) => ClusterStatus::Degraded,
        }
    }

    /// Live nodes of the cluster this node knows of, itself included (1 when standalone).
    pub fn node_count(&self) -> usize {
        1 + self.cluster.as_ref().map_or(0, |c| c.members.node_count())
    }

    /// `user`'s connections on other nodes, as they announced them.
    pub fn remote_connections<'a>(
        &'a self,
        user: &'a str,
    ) -> impl Iterator<Item = RemoteConnection<'a>> + 'a {
        self.cluster
            .iter()
            .flat_map(move |c| c.members.user_conns(user))
    }

    /// How a connection id is written: with this node's name and run when it has them.
    pub fn conn_id_text(&self, id: ConnId) -> String {
        match &self.node {
            Some(n) => format!(
                "{}.{:08x}.{}.{}",
                n.node,
                n.boot,
                id.index(),
                id.generation()
            ),
            None => id.to_string(),
        }
    }

    /// Where the connection that `text` names is (an id as [`conn_id_text`](Self::conn_id_text)
    /// writes it, on any node).
    pub fn locate_conn<'a>(&'a self, text: &'a str) -> ConnLocation<'a> {
        let local = |id: ConnId| match self.registry.get(id) {
            Some(_) => ConnLocation::Here(id),
            None => ConnLocation::Nowhere,
        };
        let Some(me) = &self.node else {
            return text.parse().map_or(ConnLocation::Nowhere, local);
        };
        let mut parts = text.split('.');
        let (Some(node), Some(boot), Some(index), Some(generation), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return ConnLocation::Nowhere;
        };
        if node == me.node.as_str() && boot == format!("{:08x}", me.boot) {
            let digits =
                |p: &str| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit());
            if !digits(index) || !digits(generation) {
                return ConnLocation::Nowhere;
            }
            match (index.parse(), generation.parse()) {
                (Ok(i), Ok(g)) => return local(ConnId::new(i, g)),
                _ => return ConnLocation::Nowhere,
            }
        }
        match &self.cluster {
            Some(c) if c.members.holds(node, text) => ConnLocation::Elsewhere(node),
            _ => ConnLocation::Nowhere,
        }
    }

    // ---- the bus's input ----------------------------------------------------------------------

    /// The bus reports something. Ignored when not in cluster mode.
    pub fn handle_bus(&mut self, now: Now, event: BusEvent) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.departed {
            return;
        }
        match event {
            BusEvent::Up => {
                cluster.bus = Bus::Up {
                    members: false,
                    commands: false,
                    joined: false,
                };
                let globs = cluster.routing.globs();
                for glob in &globs {
                    cluster.routing.sent(glob);
                }
                self.bus(BusAction::Subscribe(Subscription::Members));
                self.bus(BusAction::Subscribe(Subscription::Commands));
                for glob in globs {
                    self.bus(BusAction::Subscribe(Subscription::Topics(glob)));
                }
            }
            BusEvent::Lost => {
                cluster.bus = Bus::Down;
                cluster.awaiting.clear();
                let due = cluster.routing.unconfirm_all();
                self.reply_subscribed(now, due);
            }
            BusEvent::Subscribed(Subscription::Topics(glob)) => {
                let due = cluster.routing.confirm(&glob);
                self.reply_subscribed(now, due);
            }
            BusEvent::Subscribed(sub) => {
                if let Bus::Up {
                    members,
                    commands,
                    joined: false,
                } = &mut cluster.bus
                {
                    match sub {
                        Subscription::Members => *members = true,
                        Subscription::Commands => *commands = true,
                        _ => {}
                    }
                    if *members && *commands {
                        self.join(now);
                    }
                }
            }
            BusEvent::Message { channel, message } => self.on_bus_message(now, channel, &message),
            BusEvent::Epoch { request, epoch } => self.on_epoch(now, request, epoch),
        }
    }

    /// The bus is confirmed both ways: announce what this node holds and ask the others for
    /// theirs, then claim the connections authenticated while the bus was away.
    fn join(&mut self, now: Now) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if let Bus::Up { joined, .. } = &mut cluster.bus {
            *joined = true;
        }
        // The others could not speak while this node was away: each gets a full ttl again.
        cluster.members.grace_all(now.instant);
        cluster.next_heartbeat = now.instant + cluster.heartbeat_interval();
        self.publish_snapshot(true);
        let unclaimed: Vec<ConnId> = self
            .registry
            .iter()
            .filter(|(id, c)| c.session().is_some() && !self.claimed(*id))
            .map(|(id, _)| id)
            .collect();
        for id in unclaimed {
            let at = self
                .registry
                .get(id)
                .and_then(|c| c.session())
                .map_or(0, |s| s.authenticated_at_unix_millis);
            self.request_epoch(id, at);
        }
    }

    fn on_bus_message(&mut self, now: Now, channel: Channel, message: &bytes::Bytes) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let (header, frame) = match wire::decode(message) {
            Ok(decoded) => decoded,
            Err(_) => {
                cluster.undecodable_total += 1;
                return;
            }
        };
        let (node, boot) = header.sender();
        if (node, boot) == cluster.me() {
            return; // our own, delivered locally already
        }
        let node: Arc<str> = node.into();
        if cluster.members.run_of(&node).is_some_and(|b| b != boot) {
            // A new run of that node: the old one is over, and so are its connections.
            self.forget_node(now, &node, false);
        }
        if let Header::Bye { .. } = header {
            self.forget_node(now, &node, false);
            return;
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        // A node heard of anew but by its snapshot was taken for dead while it lived (its
        // messages were late): ask it for its connections, which nothing else would announce.
        if cluster.members.run_of(&node).is_none()
            && !matches!(header, Header::Snapshot { .. })
            && cluster.joined()
        {
            let (me, my_boot) = cluster.me();
            let ask = Header::Ask {
                node: me.into(),
                boot: my_boot,
                of: node.to_string(),
            };
            self.publish_header(Channel::Members, &ask, None);
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let entry = cluster.members.heard(now.instant, &node, boot);
        match header {
            Header::Publish { seq, .. } => {
                // Once per matching glob on the bus, once here: each run numbers its publishes.
                if seq <= entry.publish_seq {
                    return;
                }
                entry.publish_seq = seq;
                let (Channel::Topic(topic), Some(frame)) = (channel, frame) else {
                    return;
                };
                if let Ok(topic) = Topic::parse(&topic) {
                    if !topic.is_presence() {
                        self.fan_out(&topic, frame);
                    }
                }
            }
            Header::On { conn, .. } => {
                let users = [conn.user.clone()];
                self.change_remote(now, &users, |sb| {
                    if let Some(c) = sb.cluster.as_mut() {
                        c.members.add(&node, conn);
                    }
                });
            }
            Header::Off { conn, .. } => {
                let user = cluster
                    .members
                    .nodes
                    .get(&*node)
                    .and_then(|n| n.conns.get(conn.as_str()))
                    .map(|c| c.user.to_string());
                if let Some(user) = user {
                    self.change_remote(now, &[user], |sb| {
                        if let Some(c) = sb.cluster.as_mut() {
                            c.members.remove(&node, &conn);
                        }
                    });
                }
            }
            Header::Snapshot { hello, conns, .. } => {
                let mut users: Vec<String> = cluster
                    .members
                    .users_of(&node)
                    .iter()
                    .map(|u| u.to_string())
                    .collect();
                users.extend(conns.iter().map(|c| c.user.clone()));
                self.change_remote(now, &users, |sb| {
                    if let Some(c) = sb.cluster.as_mut() {
                        c.members.clear_node(&node);
                        for conn in conns {
                            c.members.add(&node, conn);
                        }
                    }
                });
                if hello && self.cluster.as_ref().is_some_and(|c| c.joined()) {
                    self.publish_snapshot(false);
                }
            }
            Header::Ask { of, .. } => {
                if of == cluster.me().0 && cluster.joined() {
                    self.publish_snapshot(false);
                }
            }
            Header::Heartbeat { .. } | Header::Bye { .. } => {}
            Header::Send { to, .. } => {
                if let Some(frame) = frame {
                    self.deliver_forwarded(to, frame);
                }
            }
            Header::Disconnect {
                to, code, reason, ..
            } => {
                let code = CloseCode(code);
                if code.is_application_code() {
                    self.disconnect_forwarded(now, to, code, reason.into());
                }
            }
        }
    }

    /// Applies a change to other nodes' connections, then announces how each affected user's
    /// cluster-wide count moved and settles their sessions.
    pub(super) fn change_remote(
        &mut self,
        now: Now,
        users: &[String],
        change: impl FnOnce(&mut Self),
    ) {
        // Sorted, so that a snapshot of many users costs O(n log n) and the pushes come out in
        // an order that depends on the inputs only.
        let mut users: Vec<&String> = users.iter().collect();
        users.sort_unstable();
        users.dedup();
        let before: Vec<(String, usize)> = users
            .into_iter()
            .map(|user| (user.clone(), self.presence_count(user)))
            .collect();
        change(self);
        for (user, count) in before {
            self.settle_sessions(now, &user);
            let after = self.presence_count(&user);
            let key: Arc<str> = match self.user_key(&user) {
                Some(k) => k,
                None => user.as_str().into(),
            };
            self.presence_changed(
                now,
                &key,
                PresenceChange {
                    before: count,
                    after,
                },
            );
        }
    }

    /// A node is gone (`expired`, or it said goodbye, or restarted): its users leave presence.
    fn forget_node(&mut self, now: Now, node: &str, expired: bool) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let users: Vec<String> = cluster
            .members
            .users_of(node)
            .iter()
            .map(|u| u.to_string())
            .collect();
        self.change_remote(now, &users, |sb| {
            if let Some(c) = sb.cluster.as_mut() {
                if expired {
                    c.members.expire(node);
                } else {
                    c.members.remove_node(node);
                }
            }
        });
    }

    fn deliver_forwarded(&mut self, to: Target, frame: Payload) {
        let targets: Vec<ConnId> = match to {
            Target::User { user, device } => match device {
                Some(device) => self.device_connections(&user, &device).collect(),
                None => self.registry.user_conns(&user).to_vec(),
            },
            Target::Users(users) => {
                let mut t: Vec<ConnId> = users
                    .iter()
                    .flat_map(|u| self.registry.user_conns(u).iter().copied())
                    .collect();
                t.sort_unstable();
                t.dedup();
                t
            }
            Target::Connection(id) => match self.locate_conn(&id) {
                ConnLocation::Here(id) => vec![id],
                _ => Vec::new(),
            },
            Target::Everyone => self
                .registry
                .iter()
                .filter(|(_, c)| c.session().is_some())
                .map(|(id, _)| id)
                .collect(),
        };
        for id in targets {
            self.push_send(id, frame.clone());
        }
    }

    fn disconnect_forwarded(
        &mut self,
        now: Now,
        to: Target,
        code: CloseCode,
        reason: Cow<'static, str>,
    ) {
        let targets: Vec<ConnId> = match to {
            Target::User { user, device } => match device {
                Some(device) => self.device_connections(&user, &device).collect(),
                None => self.registry.user_conns(&user).to_vec(),
            },
            Target::Connection(id) => match self.locate_conn(&id) {
                ConnLocation::Here(id) => vec![id],
                _ => Vec::new(),
            },
            Target::Users(_) | Target::Everyone => Vec::new(),
        };
        for id in targets {
            self.leave(now, id, Leave::Close(code, reason.clone()));
        }
    }

    // ---- the clock ------------------------------------------------------------------------------

    /// Heartbeats due and nodes unheard of for the ttl (only while joined: while the bus is
    /// away nobody can be heard, and nobody is judged).
    pub(crate) fn cluster_timeout(&mut self, now: Now) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if !cluster.joined() {
            return;
        }
        if now.instant >= cluster.next_heartbeat {
            cluster.next_heartbeat = now.instant + cluster.heartbeat_interval();
            let (node, boot) = cluster.me();
            let header = Header::Heartbeat {
                node: node.into(),
                boot,
            };
            self.publish_header(Channel::Members, &header, None);
        }
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        for node in cluster.members.expired(now.instant, cluster.config.ttl) {
            self.forget_node(now, &node, true);
        }
    }
}
