//! Every live connection in a generational slab, with the indexes user -> connections and
//! IP -> count kept in step with it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use core::net::IpAddr;
use smallvec::SmallVec;

use crate::hashing::{hasher, Map, Set};
use crate::limits::TokenBucket;
use crate::time::Instant;
use crate::topics::Pattern;

/// A connection's identity: slab index plus generation, so that a stale id never reaches a newer
/// connection that reuses the slot. Written `c-<index>-<generation>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// An id from its parts (for adapters that store ids compactly, and for tests).
    pub const fn new(index: u32, generation: u32) -> Self {
        ConnId { index, generation }
    }

    /// The slab index; reused by later connections.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The generation of the slot when this connection took it.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c-{}-{}", self.index, self.generation)
    }
}

/// A string that is not a connection id of the form `c-<index>-<generation>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection id")]
pub struct InvalidConnId;

impl FromStr for ConnId {
    type Err = InvalidConnId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("c-").ok_or(InvalidConnId)?;
        let (index, generation) = rest.split_once('-').ok_or(InvalidConnId)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(index) || !digits(generation) {
            return Err(InvalidConnId);
        }
        Ok(ConnId {
            index: index.parse().map_err(|_| InvalidConnId)?,
            generation: generation.parse().map_err(|_| InvalidConnId)?,
        })
    }
}

/// Who an authenticated connection belongs to.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) user: Arc<str>,
    /// `None`: a device of its own, never replaced by device.
    pub(crate) device: Option<Arc<str>>,
    /// The token's `topics` claim; `None` = any topic.
    pub(crate) allowed_topics: Option<Arc<[Pattern]>>,
    pub(crate) expires_at: Instant,
    /// Wall-clock time of authentication: the first part of its rank across nodes.
    pub(crate) authenticated_at_unix_millis: u64,
    /// The token's `info` claim, as the queries return it.
    pub(crate) info: Option<crate::claims::Info>,
}

/// Where a connection stands with authentication.
#[derive(Debug)]
pub(crate) enum AuthState {
    /// Must authenticate by this instant or be closed with 4008.
    Pending {
        deadline: Instant,
    },
    Authenticated(Session),
}

/// One live connection and what the core knows of it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) ip: IpAddr,
    pub(crate) connected_at_unix_millis: u64,
    pub(crate) handshake_device: Option<Box<str>>,
    pub(crate) device_name: Option<Box<str>>,
    pub(crate) user_agent: Option<Box<str>>,
    pub(crate) auth: AuthState,
    pub(crate) subscriptions: Set<Pattern>,
    /// Last sign of life (pong or frame).
    pub(crate) last_seen: Instant,
    pub(crate) next_ping: Instant,
    /// The deadline of this connection's live entry in the timer queue.
    pub(crate) timer_at: Instant,
    pub(crate) inbound: TokenBucket,
}

impl Connection {
    pub(crate) fn session(&self) -> Option<&Session> {
        match &self.auth {
            AuthState::Authenticated(s) => Some(s),
            AuthState::Pending { .. } => None,
        }
    }
}

struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

/// The connections, indexed by id, by user and by IP.
pub(crate) struct Registry {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    authenticated: usize,
    /// Each user's authenticated connections, oldest first.
    users: Map<Arc<str>, SmallVec<[ConnId; 2]>>,
    per_ip: Map<IpAddr, u32>,
    seed: u64,
}

impl Registry {
    pub(crate) fn new(seed: u64) -> Self {
        Registry {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            authenticated: 0,
            users: Map::with_hasher(hasher(seed)),
            per_ip: Map::with_hasher(hasher(seed)),
            seed,
        }
    }

    /// An empty subscription set for a new connection.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn new_subscription_set(&self) -> Set<Pattern> {
        Set::with_hasher(hasher(self.seed))
    }

    pub(crate) fn insert(&mut self, conn: Connection) -> ConnId {
        *self.per_ip.entry(conn.ip).or_insert(0) += 1;
        self.len += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.conn = Some(conn);
                ConnId::new(index, slot.generation)
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                });
                ConnId::new(index, 0)
            }
        }
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Connection> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    /// Removes a connection from the slab and every index; its id is dead from now on.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Connection> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        if let Some(count) = self.per_ip.get_mut(&conn.ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        if let Some(session) = conn.session() {
            self.authenticated -= 1;
            if let Some(conns) = self.users.get_mut(&session.user) {
                conns.retain(|c| *c != id);
                if conns.is_empty() {
                    self.users.remove(&session.user);
                }
            }
        }
        Some(conn)
    }

    /// Marks a pending connection authenticated and adds it to its user's connections.
    pub(crate) fn authenticate(&mut self, id: ConnId, session: Session) {
        let Some(conn) = self.get_mut(id) else { return };
        debug_assert!(conn.session().is_none());
        let user = session.user.clone();
        conn.auth = AuthState::Authenticated(session);
        self.authenticated += 1;
        self.users.entry(user).or_default().push(id);
    }

    /// A user's authenticated connections, oldest first.
    pub(crate) fn user_conns(&self, user: &str) -> &[ConnId] {
        self.users.get(user).map_or(&[], |c| c.as_slice())
    }

    /// The interned user id, if the user is online.
    pub(crate) fn user_key(&self, user: &str) -> Option<&Arc<str>> {
        self.users.get_key_value(user).map(|(k, _)| k)
    }

    pub(crate) fn users(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.users.keys()
    }

    pub(crate) fn user_count(&self) -> usize {
        self.users.len()
    }

    pub(crate) fn ip_count(&self, ip: IpAddr) -> u32 {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn authenticated_count(&self) -> usize {
        self.authenticated
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Connection)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let conn = slot.conn.as_ref()?;
            Some((ConnId::new(i as u32, slot.generation), conn))
        })
    }

    /// The live connections in slab order after slot `after` (from slot 0 when `None`): at
    /// most `limit` of them, examining at most `budget` slots; and the last slot examined when
    /// slots are left beyond it. O(slots examined), whatever the number of connections.
    pub(crate) fn page(
        &self,
        after: Option<u32>,
        limit: usize,
        budget: usize,
    ) -> (Vec<ConnId>, Option<u32>) {
        let from = after.map_or(0, |a| a as usize + 1).min(self.slots.len());
        let end = from.saturating_add(budget).min(self.slots.len());
        let mut ids = Vec::with_capacity(limit.min(end - from));
        let mut at = from;
        while at < end && ids.len() < limit {
            let slot = &self.slots[at];
            if slot.conn.is_some() {
                ids.push(ConnId::new(at as u32, slot.generation));
            }
            at += 1;
        }
        // `at > from` whenever slots are left: limit and budget are at least 1.
        let next = (at < self.slots.len() && at > from).then(|| (at - 1) as u32);
        (ids, next)
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.iter().map(|(id, _)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_id_round_trips_through_its_string_form() {
        let id = ConnId::new(42, 7);
        assert_eq!(id.to_string(), "c-42-7");
        assert_eq!("c-42-7".parse::<ConnId>(), Ok(id));
    }

    #[test]
    fn malformed_conn_id_strings_are_refused() {
        for s in [
            "",
            "c-",
            "c-1",
            "c-1-",
            "c--1",
            "x-1-2",
            "c-1-2-3",
            "c-+1-2",
            "c-99999999999-0",
        ] {
            assert_eq!(s.parse::<ConnId>(), Err(InvalidConnId), "{s:?}");
        }
    }
}
