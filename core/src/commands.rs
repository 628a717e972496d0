//! What an application may do to the switchboard its adapter drives.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::value::RawValue;
use smallvec::SmallVec;

use crate::action::{Action, CloseCode};
use crate::cluster::wire::Target;
use crate::cluster::ConnLocation;
use crate::error::{DisconnectError, Gone, PublishError};
use crate::history::Published;
use crate::protocol::{server, Metadata};
use crate::registry::ConnId;
use crate::switchboard::{Leave, Switchboard};
use crate::time::{Instant, Now};
use crate::topics::Topic;

/// The application's commands and queries on a running switchboard, at the time the adapter
/// read: what an adapter's `Handle::with` lends to the application's closure.
///
/// It has no transport inputs (`open`, frames, pongs, closes, timeouts): those belong to the
/// adapter, which alone knows the sockets. Queries go through [`Commands::core`], read-only.
#[derive(Debug)]
pub struct Commands<'a> {
    sb: &'a mut Switchboard,
    now: Now,
}

impl<'a> Commands<'a> {
    /// Lends `sb` to the application at `now`. For adapters: the application gets a
    /// `Commands`, never the `Switchboard` itself.
    pub fn new(sb: &'a mut Switchboard, now: Now) -> Self {
        Commands { sb, now }
    }

    /// The time the adapter read for this command.
    pub fn now(&self) -> Now {
        self.now
    }

    /// The switchboard, read-only: connections, users, presence, stats.
    pub fn core(&self) -> &Switchboard {
        self.sb
    }

    /// Pushes `{"type":"push","data":…}` to one connection.
    pub fn send_to_connection(&mut self, id: ConnId, data: &RawValue) -> Result<(), Gone> {
        self.sb.send_to_connection(self.now, id, data)
    }

    /// Pushes to a user's connections on one device; returns how many it reached.
    pub fn send_to_device(&mut self, user: &str, device: &str, data: &RawValue) -> usize {
        self.sb.send_to_device(self.now, user, device, data)
    }

    /// Pushes to every connection of a user; returns how many it reached.
    pub fn send_to_user(&mut self, user: &str, data: &RawValue) -> usize {
        self.sb.send_to_user(self.now, user, data)
    }

    /// Pushes to every connection of each listed user; returns how many it reached.
    pub fn send_to_users<'u>(
        &mut self,
        users: impl IntoIterator<Item = &'u str>,
        data: &RawValue,
    ) -> usize {
        self.sb.send_to_users(self.now, users, data)
    }

    /// Pushes to every authenticated connection; returns how many it reached.
    pub fn broadcast(&mut self, data: &RawValue) -> usize {
        self.sb.broadcast(self.now, data)
    }

    /// Publishes to a concrete topic as the server; returns how many connections it reached.
    pub fn publish(
        &mut self,
        topic: &str,
        data: &RawValue,
        metadata: Option<&RawValue>,
    ) -> Result<Published, PublishError> {
        self.sb.publish(self.now, topic, data, metadata)
    }

    /// Closes one connection with an application close code (1000, 1008 or 4000..=4999).
    pub fn disconnect_connection(
        &mut self,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DisconnectError> {
        self.sb.disconnect_connection(self.now, id, code, reason)
    }

    /// Closes every connection of a user, or of one of its devices; returns how many.
    pub fn disconnect_user(
        &mut self,
        user: &str,
        device: Option<&str>,
        code: CloseCode,
        reason: &str,
    ) -> Result<usize, DisconnectError> {
        self.sb
            .disconnect_user(self.now, user, device, code, reason)
    }
}

/// The application commands, on the switchboard itself (an embedder calls them directly;
/// an adapter's application reaches them through [`Commands`]).
impl Switchboard {
    /// Pushes `{"type":"push","data":…}` to one connection.
    pub fn send_to_connection(
        &mut self,
        now: Now,
        id: ConnId,
        data: &RawValue,
    ) -> Result<(), Gone> {
        if self.registry.get(id).is_none() {
            return Err(Gone);
        }
        let payload = server::push(data, now.unix_millis);
        self.push_send(id, payload);
        Ok(())
    }

    /// Pushes to a connection named by its id as written on any node (in cluster mode, one on
    /// another node is reached through the bus). Returns whether it is on this node.
    pub fn send_to_conn_id(&mut self, now: Now, id: &str, data: &RawValue) -> Result<bool, Gone> {
        match self.locate_conn(id) {
            ConnLocation::Here(id) => self.send_to_connection(now, id, data).map(|()| true),
            ConnLocation::Elsewhere(_) => {
                let payload = server::push(data, now.unix_millis);
                self.cluster_forward_send(Target::Connection(id.to_owned()), &payload);
                Ok(false)
            }
            ConnLocation::Nowhere => Err(Gone),
        }
    }

    /// Pushes one frame to each listed connection, wherever it is (an id listed twice is
    /// reached once). Returns how many are on this node, and the ids that reached nobody:
    /// connections that left, or never existed.
    pub fn send_to_conn_ids<'i>(
        &mut self,
        now: Now,
        ids: impl IntoIterator<Item = &'i str>,
        data: &RawValue,
    ) -> (usize, Vec<String>) {
        let mut ids: Vec<&str> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let payload = server::push(data, now.unix_millis);
        let (mut here, mut gone) = (0, Vec::new());
        for id in ids {
            let location = match self.locate_conn(id) {
                ConnLocation::Here(conn) => Some(Some(conn)),
                ConnLocation::Elsewhere(_) => Some(None),
                ConnLocation::Nowhere => None,
            };
            match location {
                Some(Some(conn)) => {
                    self.push_send(conn, payload.clone());
                    here += 1;
                }
                Some(None) => self.cluster_forward_send(Target::Connection(id.into()), &payload),
                None => gone.push(id.to_owned()),
            }
        }
        (here, gone)
    }

    /// Pushes to every connection of a user on one device, on every node in cluster mode;
    /// returns how many it reached on this node.
    pub fn send_to_device(&mut self, now: Now, user: &str, device: &str, data: &RawValue) -> usize {
        let targets: SmallVec<[ConnId; 4]> = self.device_connections(user, device).collect();
        let to = || Target::User {
            user: user.to_owned(),
            device: Some(device.to_owned()),
        };
        self.push_here_and_there(now, targets, data, to)
    }

    /// Pushes to every connection of a user, on every node in cluster mode; returns how many
    /// it reached on this node.
    pub fn send_to_user(&mut self, now: Now, user: &str, data: &RawValue) -> usize {
        let targets: SmallVec<[ConnId; 4]> = self.registry.user_conns(user).into();
        let to = || Target::User {
            user: user.to_owned(),
            device: None,
        };
        self.push_here_and_there(now, targets, data, to)
    }

    /// Pushes to every connection of each listed user (a user listed twice is reached once),
    /// on every node in cluster mode; returns how many connections it reached on this node.
    pub fn send_to_users<'u>(
        &mut self,
        now: Now,
        users: impl IntoIterator<Item = &'u str>,
        data: &RawValue,
    ) -> usize {
        let users: Vec<&str> = users.into_iter().collect();
        let mut targets: Vec<ConnId> = Vec::new();
        for user in &users {
            targets.extend_from_slice(self.registry.user_conns(user));
        }
        targets.sort_unstable();
        targets.dedup();
        let to = || Target::Users(users.iter().map(|u| u.to_string()).collect());
        self.push_here_and_there(now, targets, data, to)
    }

    /// Pushes to the local `targets`, and in cluster mode to `to` on the other nodes.
    fn push_here_and_there(
        &mut self,
        now: Now,
        targets: impl IntoIterator<Item = ConnId>,
        data: &RawValue,
        to: impl FnOnce() -> Target,
    ) -> usize {
        if self.cluster.is_none() {
            return self.push_to(now, targets, data);
        }
        let payload = server::push(data, now.unix_millis);
        self.cluster_forward_send(to(), &payload);
        let mut n = 0;
        for id in targets {
            self.push_send(id, payload.clone());
            n += 1;
        }
        n
    }

    /// Pushes to every authenticated connection, on every node in cluster mode; returns how
    /// many it reached on this node.
    pub fn broadcast(&mut self, now: Now, data: &RawValue) -> usize {
        let payload = server::push(data, now.unix_millis);
        self.cluster_forward_send(Target::Everyone, &payload);
        let Self {
            registry, actions, ..
        } = self;
        let mut n = 0;
        for (id, conn) in registry.iter() {
            if conn.session().is_some() {
                actions.push_back(Action::Send {
                    conn: id,
                    payload: payload.clone(),
                });
                n += 1;
            }
        }
        n
    }

    /// Publishes to a concrete topic as the server (`metadata.senderId` = `"server"`); returns
    /// how many connections it reached on this node (in cluster mode every node delivers it).
    pub fn publish(
        &mut self,
        now: Now,
        topic: &str,
        data: &RawValue,
        metadata: Option<&RawValue>,
    ) -> Result<Published, PublishError> {
        let topic = Topic::parse(topic)?;
        if topic.is_presence() {
            return Err(PublishError::ReservedTopic);
        }
        let metadata = metadata
            .map(Metadata::from_json)
            .transpose()
            .map_err(|_| PublishError::InvalidMetadata)?;
        let (frame, position) =
            self.encode_published(now, &topic, data, metadata.as_ref(), "server");
        Ok(self.deliver_published(&topic, frame, position))
    }

    /// Closes one connection with an application close code (1000, 1008 or 4000..=4999).
    pub fn disconnect_connection(
        &mut self,
        now: Now,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DisconnectError> {
        if !code.is_application_code() {
            return Err(DisconnectError::InvalidCode(code.0));
        }
        if self.registry.get(id).is_none() {
            return Err(Gone.into());
        }
        self.leave(now, id, Leave::Close(code, reason.to_owned().into()));
        Ok(())
    }

    /// Closes every connection of a user, or of one of its devices, on every node in cluster
    /// mode; returns how many it closed on this node.
    pub fn disconnect_user(
        &mut self,
        now: Now,
        user: &str,
        device: Option<&str>,
        code: CloseCode,
        reason: &str,
    ) -> Result<usize, DisconnectError> {
        if !code.is_application_code() {
            return Err(DisconnectError::InvalidCode(code.0));
        }
        let targets: SmallVec<[ConnId; 4]> = match device {
            Some(device) => self.device_connections(user, device).collect(),
            None => self.registry.user_conns(user).into(),
        };
        let to = Target::User {
            user: user.to_owned(),
            device: device.map(Into::into),
        };
        self.cluster_forward_disconnect(to, code, reason);
        let reason: Cow<'static, str> = reason.to_owned().into();
        for &id in &targets {
            self.leave(now, id, Leave::Close(code, reason.clone()));
        }
        Ok(targets.len())
    }

    /// Starts a graceful drain: every connection is closed with 1001, new ones are refused, and
    /// once `drain_deadline` passes `handle_timeout` emits [`Action::Stop`]. Idempotent.
    pub fn shutdown(&mut self, now: Now, drain_deadline: Instant) {
        if self.draining.is_some() {
            return;
        }
        self.draining = Some(drain_deadline);
        self.cluster_shutdown();
        let online: Vec<Arc<str>> = self.registry.users().cloned().collect();
        for id in self.registry.ids() {
            self.leave(now, id, Leave::Drain);
        }
        // Everyone is leaving at once: no presence pushes to subscribers that are closing too,
        // but the application hears that each user went offline.
        for user in online {
            self.actions.push_back(Action::Presence {
                user,
                online: false,
                connections: 0,
            });
        }
        self.timers.clear();
        self.stale_timers = 0;
    }
}
