//! What an application may do to the switchboard its adapter drives.

use serde_json::value::RawValue;

use crate::action::CloseCode;
use crate::error::{DisconnectError, Gone, PublishError};
use crate::registry::ConnId;
use crate::switchboard::Switchboard;
use crate::time::Now;

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
    ) -> Result<usize, PublishError> {
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
