//! The application's handle on a running server.

use serde_json::value::RawValue;
use switchboard_core::{
    CloseCode, ConnId, ConnectionSnapshot, DisconnectError, Gone, Now, PublishError, Stats,
    Switchboard,
};

use crate::engine::{Command, Commands};
use crate::sync::Arc;

/// The server has stopped: the command was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server has stopped")]
pub struct Stopped;

/// Sends commands to the event loop that owns the core. Cheap to clone; usable from any
/// thread. Every call blocks until the loop has carried it out (except
/// [`shutdown`](Self::shutdown)), so it must not be called from the loop's own thread.
#[derive(Clone)]
pub struct Handle {
    pub(crate) commands: Arc<Commands>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Runs `f` against the core, in the event loop, and returns its result; the actions it
    /// causes are executed right after. Every other method is built on this one.
    pub fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Switchboard, Now) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let command = Box::new(move |sb: &mut Switchboard, now: Now| {
            let _ = reply.send(f(sb, now));
        });
        self.commands
            .push(Command::Run(command))
            .map_err(|_| Stopped)?;
        // A command dropped unrun (the loop stopped) drops `reply`: the receive fails.
        answer.recv().map_err(|_| Stopped)
    }

    /// Pushes `data` to one connection.
    pub fn send_to_connection(&self, conn: ConnId, data: Box<RawValue>) -> Result<(), Gone> {
        self.with(move |sb, now| sb.send_to_connection(now, conn, &data))
            .unwrap_or(Err(Gone))
    }

    /// Pushes `data` to a user's connections on one device; returns how many it reached.
    pub fn send_to_device(&self, user: &str, device: &str, data: Box<RawValue>) -> usize {
        let (user, device) = (user.to_owned(), device.to_owned());
        self.with(move |sb, now| sb.send_to_device(now, &user, &device, &data))
            .unwrap_or(0)
    }

    /// Pushes `data` to every connection of a user; returns how many it reached.
    pub fn send_to_user(&self, user: &str, data: Box<RawValue>) -> usize {
        let user = user.to_owned();
        self.with(move |sb, now| sb.send_to_user(now, &user, &data))
            .unwrap_or(0)
    }

    /// Pushes `data` to every connection of these users; returns how many it reached.
    pub fn send_to_users(&self, users: Vec<String>, data: Box<RawValue>) -> usize {
        self.with(move |sb, now| sb.send_to_users(now, users.iter().map(String::as_str), &data))
            .unwrap_or(0)
    }

    /// Pushes `data` to every authenticated connection; returns how many it reached.
    pub fn broadcast(&self, data: Box<RawValue>) -> usize {
        self.with(move |sb, now| sb.broadcast(now, &data))
            .unwrap_or(0)
    }

    /// Publishes to a topic as the server; returns how many connections it reached.
    pub fn publish(
        &self,
        topic: &str,
        data: Box<RawValue>,
        metadata: Option<Box<RawValue>>,
    ) -> Result<usize, PublishError> {
        let topic = topic.to_owned();
        self.with(move |sb, now| sb.publish(now, &topic, &data, metadata.as_deref()))
            .unwrap_or(Ok(0))
    }

    /// Closes one connection with an application close code.
    pub fn disconnect_connection(
        &self,
        conn: ConnId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DisconnectError> {
        let reason = reason.to_owned();
        self.with(move |sb, now| sb.disconnect_connection(now, conn, code, &reason))
            .unwrap_or(Err(DisconnectError::Gone(Gone)))
    }

    /// Closes every connection of a user, or of one of its devices; returns how many.
    pub fn disconnect_user(
        &self,
        user: &str,
        device: Option<&str>,
        code: CloseCode,
        reason: &str,
    ) -> Result<usize, DisconnectError> {
        let (user, device, reason) = (
            user.to_owned(),
            device.map(str::to_owned),
            reason.to_owned(),
        );
        self.with(move |sb, now| sb.disconnect_user(now, &user, device.as_deref(), code, &reason))
            .unwrap_or(Ok(0))
    }

    /// Whether a user has an authenticated connection.
    pub fn is_online(&self, user: &str) -> bool {
        let user = user.to_owned();
        self.with(move |sb, _| sb.is_online(&user)).unwrap_or(false)
    }

    /// A user's connections, oldest first.
    pub fn connections_of(&self, user: &str) -> Vec<ConnectionSnapshot> {
        let user = user.to_owned();
        self.with(move |sb, _| {
            sb.user_connections(&user)
                .iter()
                .filter_map(|&id| sb.connection(id))
                .map(|c| c.snapshot())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Every online user.
    pub fn online_users(&self) -> Vec<String> {
        self.with(|sb, _| sb.online_users().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Counts and totals.
    pub fn stats(&self) -> Result<Stats, Stopped> {
        self.with(|sb, _| sb.stats())
    }

    /// Starts the graceful drain: every client gets close 1001, new upgrades 503, `/healthz`
    /// 503; `Server::run` returns once everyone left or the drain deadline passed.
    pub fn shutdown(&self) {
        let _ = self.commands.push(Command::Shutdown);
    }
}
