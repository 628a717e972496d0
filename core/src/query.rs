//! Read-only views of the switchboard: connection info, a user's connections, stats.

use core::net::IpAddr;

use crate::registry::{ConnId, Connection};
use crate::switchboard::Switchboard;
use crate::topics::Pattern;

/// Counts for `/metrics` and `/api/stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections, authenticated or not.
    pub connections: usize,
    /// Authenticated connections.
    pub authenticated: usize,
    /// Online users.
    pub users: usize,
    /// (pattern, connection) subscriptions.
    pub subscriptions: usize,
    /// Distinct subscribed patterns.
    pub topics: usize,
    /// Connections opened since start.
    pub opened_total: u64,
    /// `open` calls refused (per-IP limit, draining, bad handshake or token).
    pub rejected_total: u64,
    /// Zombies evicted since start.
    pub evicted_total: u64,
    /// Connections replaced by the session policy since start.
    pub replaced_total: u64,
    /// Data frames received since start.
    pub frames_in_total: u64,
    /// `Send` actions emitted since start.
    pub sends_total: u64,
    /// Live nodes of the cluster, this one included (1 when standalone).
    pub nodes: usize,
    /// Topic streams held for history (idle ones included).
    pub history_streams: usize,
    /// Messages kept over all streams.
    pub history_messages: usize,
    /// Bytes of the kept frames (what `history_max_bytes` bounds).
    pub history_bytes: usize,
}

/// What the core knows of one connection, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionInfo<'a> {
    id: ConnId,
    conn: &'a Connection,
}

impl<'a> ConnectionInfo<'a> {
    /// The token's `info` claim (a JSON object), if it had one.
    pub fn info(&self) -> Option<&'a serde_json::value::RawValue> {
        self.conn.session()?.info.as_ref().map(|i| i.raw())
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// The user, once authenticated.
    pub fn user(&self) -> Option<&'a str> {
        self.conn.session().map(|s| &*s.user)
    }
    /// The device id it is known by (auth message, handshake or token), once authenticated.
    pub fn device(&self) -> Option<&'a str> {
        self.conn.session().and_then(|s| s.device.as_deref())
    }
    /// Whether it has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.conn.session().is_some()
    }
    /// The `deviceName` given at the handshake.
    pub fn device_name(&self) -> Option<&'a str> {
        self.conn.device_name.as_deref()
    }
    /// The `User-Agent` given at the handshake.
    pub fn user_agent(&self) -> Option<&'a str> {
        self.conn.user_agent.as_deref()
    }
    /// The client's IP address.
    pub fn ip(&self) -> IpAddr {
        self.conn.ip
    }
    /// Wall-clock time of `open`, milliseconds since the Unix epoch.
    pub fn connected_at_unix_millis(&self) -> u64 {
        self.conn.connected_at_unix_millis
    }
    /// An owned copy of its metadata.
    pub fn snapshot(&self) -> ConnectionSnapshot {
        ConnectionSnapshot {
            id: self.id,
            device: self.device().map(str::to_owned),
            device_name: self.device_name().map(str::to_owned),
            user_agent: self.user_agent().map(str::to_owned),
            ip: self.ip(),
            connected_at_unix_millis: self.connected_at_unix_millis(),
        }
    }

    /// The patterns it is subscribed to, in no particular order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.conn.subscriptions.iter().map(Pattern::as_str)
    }
}

/// Slots [`Switchboard::connections_page`] examines per connection it may return.
pub const PAGE_BUDGET_PER_ITEM: usize = 8;

/// One page of [`Switchboard::connections_page`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionPage<'a> {
    /// The connections, in slot order.
    pub connections: Vec<ConnectionInfo<'a>>,
    /// The cursor of the next page (the last slot examined), or `None` at the end.
    pub next: Option<u32>,
}

/// One connection's metadata, owned: what a query hands across threads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionSnapshot {
    /// Its id.
    pub id: ConnId,
    /// Its device id, if it has one.
    pub device: Option<String>,
    /// Its device name from the handshake.
    pub device_name: Option<String>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: IpAddr,
    /// When it connected, milliseconds since the Unix epoch.
    pub connected_at_unix_millis: u64,
}

impl Switchboard {
    // ---- queries ------------------------------------------------------------------------------

    /// A live connection and its metadata.
    pub fn connection(&self, id: ConnId) -> Option<ConnectionInfo<'_>> {
        self.registry
            .get(id)
            .map(|conn| ConnectionInfo { id, conn })
    }

    /// A page of this node's connections (authenticated or not), in the order of their slots:
    /// those after slot `after` (from the first when `None`), at most `limit`, with
    /// [`ConnectionPage::next`] to ask for the next page. Bounded: it examines at most
    /// [`PAGE_BUDGET_PER_ITEM`] × `limit` slots, so a slab with many free slots may give a
    /// short (even empty) page that still has a `next`. A connection that stays open for the
    /// whole walk is listed exactly once; one that opens or closes meanwhile, at most once.
    pub fn connections_page(&self, after: Option<u32>, limit: usize) -> ConnectionPage<'_> {
        let limit = limit.max(1);
        let budget = limit.saturating_mul(PAGE_BUDGET_PER_ITEM);
        let (ids, next) = self.registry.page(after, limit, budget);
        ConnectionPage {
            connections: ids
                .into_iter()
                .filter_map(|id| self.connection(id))
                .collect(),
            next,
        }
    }

    /// The user of a live, authenticated connection.
    pub fn user_of(&self, id: ConnId) -> Option<&str> {
        self.registry.get(id)?.session().map(|s| &*s.user)
    }

    /// A user's authenticated connections, oldest first.
    pub fn user_connections(&self, user: &str) -> &[ConnId] {
        self.registry.user_conns(user)
    }

    /// A user's authenticated connections on one device.
    pub fn device_connections<'a>(
        &'a self,
        user: &str,
        device: &'a str,
    ) -> impl Iterator<Item = ConnId> + 'a {
        let registry = &self.registry;
        registry
            .user_conns(user)
            .iter()
            .copied()
            .filter(move |&id| {
                registry
                    .get(id)
                    .and_then(Connection::session)
                    .is_some_and(|s| s.device.as_deref() == Some(device))
            })
    }

    /// Whether a user has at least one authenticated connection (on any node, in cluster mode).
    pub fn is_online(&self, user: &str) -> bool {
        self.presence_count(user) > 0
    }

    /// How many authenticated connections a user has (on every node, in cluster mode): the
    /// count presence reports.
    pub fn connection_count(&self, user: &str) -> usize {
        self.presence_count(user)
    }

    /// Every online user (on any node, in cluster mode), once each, in no particular order.
    pub fn online_users(&self) -> impl Iterator<Item = &str> + '_ {
        let local = self.registry.users().map(|u| &**u);
        let remote = self
            .cluster
            .iter()
            .flat_map(|c| c.members.users())
            .filter(|u| self.registry.user_conns(u).is_empty())
            .map(|u| &**u);
        local.chain(remote)
    }

    /// A connection held by another node of the cluster, by its id, as that node announced it.
    pub fn remote_connection(&self, id: &str) -> Option<crate::cluster::RemoteConnection<'_>> {
        self.cluster.as_ref()?.members.connection(id)
    }

    /// Whether `shutdown` was called.
    pub fn is_draining(&self) -> bool {
        self.draining.is_some()
    }

    /// Current counts and totals.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.registry.len(),
            authenticated: self.registry.authenticated_count(),
            users: self.registry.user_count(),
            subscriptions: self.topics.subscription_count(),
            topics: self.topics.pattern_count(),
            nodes: self.node_count(),
            history_streams: self.history.as_ref().map_or(0, |h| h.len()),
            history_messages: self.history.as_ref().map_or(0, |h| h.messages()),
            history_bytes: self.history.as_ref().map_or(0, |h| h.bytes()),
            ..self.stats
        }
    }
}
