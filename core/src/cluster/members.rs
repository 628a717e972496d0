//! What this node knows of the others: their runs, when each was last heard, and the
//! connections each holds, indexed by user.

use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use crate::cluster::wire::ConnRecord;
use crate::hashing::{hasher, Map};
use crate::time::Instant;

/// A connection held by another node, as it announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteConn {
    pub(crate) user: Arc<str>,
    pub(crate) device: Option<Arc<str>>,
    pub(crate) device_name: Option<Box<str>>,
    pub(crate) user_agent: Option<Box<str>>,
    pub(crate) ip: Box<str>,
    pub(crate) connected_at: u64,
    pub(crate) authenticated_at: u64,
    pub(crate) epoch: u64,
    pub(crate) info: Option<crate::claims::Info>,
}

/// One other node's run.
pub(crate) struct RemoteNode {
    pub(crate) boot: u32,
    pub(crate) last_heard: Instant,
    /// The highest publish number delivered from this run.
    pub(crate) publish_seq: u64,
    pub(crate) conns: Map<Arc<str>, RemoteConn>,
}

/// A connection on another node, borrowed from what this node knows of it.
#[derive(Clone, Copy, Debug)]
pub struct RemoteConnection<'a> {
    pub(crate) node: &'a str,
    pub(crate) id: &'a str,
    pub(crate) conn: &'a RemoteConn,
}

impl<'a> RemoteConnection<'a> {
    /// The node that holds it.
    pub fn node(&self) -> &'a str {
        self.node
    }
    /// Its id, as its node wrote it.
    pub fn id(&self) -> &'a str {
        self.id
    }
    /// Its user.
    pub fn user(&self) -> &'a str {
        &self.conn.user
    }
    /// Its device, if it has one.
    pub fn device(&self) -> Option<&'a str> {
        self.conn.device.as_deref()
    }
    /// The device's display name, if given.
    pub fn device_name(&self) -> Option<&'a str> {
        self.conn.device_name.as_deref()
    }
    /// The client's user agent, if given.
    pub fn user_agent(&self) -> Option<&'a str> {
        self.conn.user_agent.as_deref()
    }
    /// The client's IP address, as its node saw it.
    pub fn ip(&self) -> &'a str {
        &self.conn.ip
    }
    /// The token's `info` claim, if it had one.
    pub fn info(&self) -> Option<&'a serde_json::value::RawValue> {
        self.conn.info.as_ref().map(|i| i.raw())
    }

    /// When it connected (Unix milliseconds).
    pub fn connected_at_unix_millis(&self) -> u64 {
        self.conn.connected_at
    }
}

/// Each user's connections on other nodes: (node, connection id).
type UserIndex = Map<Arc<str>, SmallVec<[(Arc<str>, Arc<str>); 2]>>;

/// The other nodes and their connections.
pub(crate) struct Members {
    pub(crate) nodes: Map<Arc<str>, RemoteNode>,
    users: UserIndex,
    /// Nodes expired without a goodbye, each with its run and the highest publish number
    /// delivered from it: if it lived after all (its messages were late), the copies of a
    /// publish still on their way are not delivered again. One small entry per node that died.
    expired: Map<Arc<str>, (u32, u64)>,
    seed: u64,
}

impl Members {
    pub(crate) fn new(seed: u64) -> Self {
        Members {
            nodes: Map::with_hasher(hasher(seed)),
            users: Map::with_hasher(hasher(seed)),
            expired: Map::with_hasher(hasher(seed)),
            seed,
        }
    }

    /// The run of `node` known here, if any.
    pub(crate) fn run_of(&self, node: &str) -> Option<u32> {
        self.nodes.get(node).map(|n| n.boot)
    }

    /// The node's entry (created for a node not known yet), heard from now. The caller has
    /// dropped an entry of another run first.
    pub(crate) fn heard(&mut self, now: Instant, node: &str, boot: u32) -> &mut RemoteNode {
        if !self.nodes.contains_key(node) {
            // The same run, expired while it lived: its publishes go on from where they were.
            let publish_seq = match self.expired.remove(node) {
                Some((run, seq)) if run == boot => seq,
                _ => 0,
            };
            let entry = RemoteNode {
                boot,
                last_heard: now,
                publish_seq,
                conns: Map::with_hasher(hasher(self.seed)),
            };
            self.nodes.insert(node.into(), entry);
        }
        let entry = self.nodes.get_mut(node).expect("inserted above");
        entry.last_heard = entry.last_heard.max(now);
        entry
    }

    /// Forgets every connection of `node`, keeping the node.
    pub(crate) fn clear_node(&mut self, node: &str) {
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        for (id, conn) in std::mem::take(&mut entry.conns) {
            unindex(&mut self.users, &conn.user, node, &id);
        }
        entry.conns = Map::with_hasher(hasher(self.seed));
    }

    /// Records a connection of `node` (known already); returns its user.
    pub(crate) fn add(&mut self, node: &str, record: ConnRecord) -> Option<Arc<str>> {
        let (node_key, entry) = self.nodes.get_key_value_mut(node)?;
        let id: Arc<str> = record.id.into();
        let user: Arc<str> = match self.users.get_key_value(record.user.as_str()) {
            Some((user, _)) => user.clone(),
            None => record.user.into(),
        };
        let conn = RemoteConn {
            user: user.clone(),
            device: record.device.map(Into::into),
            device_name: record.device_name.map(Into::into),
            user_agent: record.user_agent.map(Into::into),
            ip: record.ip.into(),
            connected_at: record.connected_at,
            authenticated_at: record.authenticated_at,
            epoch: record.epoch,
            info: record.info,
        };
        if let Some(old) = entry.conns.insert(id.clone(), conn) {
            unindex(&mut self.users, &old.user, node, &id);
        }
        self.users
            .entry(user.clone())
            .or_default()
            .push((node_key.clone(), id));
        Some(user)
    }

    /// Forgets a connection of `node`; returns its user.
    pub(crate) fn remove(&mut self, node: &str, conn: &str) -> Option<Arc<str>> {
        let old = self.nodes.get_mut(node)?.conns.remove(conn)?;
        unindex(&mut self.users, &old.user, node, conn);
        Some(old.user)
    }

    /// Forgets `node` and every connection it held (it said goodbye, or a new run replaced it).
    pub(crate) fn remove_node(&mut self, node: &str) {
        self.clear_node(node);
        self.nodes.remove(node);
        self.expired.remove(node);
    }

    /// Forgets `node`, unheard of for the ttl, and every connection it held, but for the
    /// number of the last publish delivered from its run.
    pub(crate) fn expire(&mut self, node: &str) {
        let last = self.nodes.get(node).map(|n| (n.boot, n.publish_seq));
        self.remove_node(node);
        if let Some(last) = last {
            self.expired.insert(node.into(), last);
        }
    }

    /// Whether `node` announced a connection with this id.
    pub(crate) fn holds(&self, node: &str, conn: &str) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| n.conns.contains_key(conn))
    }

    /// The users of `node`'s connections, once per connection.
    pub(crate) fn users_of(&self, node: &str) -> Vec<Arc<str>> {
        self.nodes
            .get(node)
            .map(|n| n.conns.values().map(|c| c.user.clone()).collect())
            .unwrap_or_default()
    }

    /// How many connections `user` has on other nodes.
    pub(crate) fn user_count(&self, user: &str) -> usize {
        self.users.get(user).map_or(0, |c| c.len())
    }

    /// The shared key of a user known here, to avoid a copy of the name per connection.
    pub(crate) fn user_key(&self, user: &str) -> Option<&Arc<str>> {
        self.users.get_key_value(user).map(|(k, _)| k)
    }

    /// `user`'s connections on other nodes.
    pub(crate) fn user_conns<'a>(
        &'a self,
        user: &str,
    ) -> impl Iterator<Item = RemoteConnection<'a>> + 'a {
        let refs = self.users.get(user).map(|c| c.as_slice()).unwrap_or(&[]);
        refs.iter().filter_map(move |(node, id)| {
            let conn = self.nodes.get(node)?.conns.get(id)?;
            Some(RemoteConnection { node, id, conn })
        })
    }

    /// The users online on other nodes.
    pub(crate) fn users(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.users.keys()
    }

    /// Nodes unheard of for `ttl` at `now`.
    pub(crate) fn expired(&self, now: Instant, ttl: Duration) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = self
            .nodes
            .iter()
            .filter(|(_, n)| now >= n.last_heard + ttl)
            .map(|(k, _)| k.clone())
            .collect();
        // The map's order depends on the seed; the outputs must not depend on more than inputs.
        out.sort_unstable();
        out
    }

    /// When the first of the known nodes expires.
    pub(crate) fn next_expiry(&self, ttl: Duration) -> Option<Instant> {
        self.nodes.values().map(|n| n.last_heard + ttl).min()
    }

    /// Every node is given a full `ttl` from `now` to be heard again (after the bus returns).
    pub(crate) fn grace_all(&mut self, now: Instant) {
        for n in self.nodes.values_mut() {
            n.last_heard = n.last_heard.max(now);
        }
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl Members {
    /// A connection of another node by its id (which starts with its node's name).
    pub(crate) fn connection<'a>(&'a self, id: &str) -> Option<RemoteConnection<'a>> {
        let node = id.split('.').next()?;
        let (node, entry) = self.nodes.get_key_value(node)?;
        let (id, conn) = entry.conns.get_key_value(id)?;
        Some(RemoteConnection { node, id, conn })
    }
}

fn unindex(users: &mut UserIndex, user: &str, node: &str, conn: &str) {
    if let Some(list) = users.get_mut(user) {
        list.retain(|(n, c)| !(&**n == node && &**c == conn));
        if list.is_empty() {
            users.remove(user);
        }
    }
}
