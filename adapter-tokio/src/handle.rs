//! The application's handle on a running server.

use serde_json::value::RawValue;
use switchboard_core::{
    CloseCode, Commands, ConnId, ConnectionSnapshot, DisconnectError, Gone, PublishError,
    Published, Stats, Stopped,
};
use tokio::sync::{mpsc, oneshot};

use crate::driver::Control;

/// Sends commands to the driver that owns the core. Cheap to clone; usable from any thread.
/// Every call answers `Err(Stopped)` once the server has stopped, never a made-up zero.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

impl Handle {
    /// Runs `f` on the core's [`Commands`], in the driver, and returns its result; the actions
    /// it causes are executed right after. Every other method is built on this one.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Commands<'_>) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (reply, answer) = oneshot::channel();
        let command = Box::new(move |commands: &mut Commands<'_>| {
            let _ = reply.send(f(commands));
        });
        self.control
            .send(Control::Command(command))
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Pushes `data` to one connection.
    pub async fn send_to_connection(
        &self,
        conn: ConnId,
        data: Box<RawValue>,
    ) -> Result<Result<(), Gone>, Stopped> {
        self.with(move |c| c.send_to_connection(conn, &data)).await
    }

    /// Pushes `data` to a user's connections on one device; returns how many it reached.
    pub async fn send_to_device(
        &self,
        user: &str,
        device: &str,
        data: Box<RawValue>,
    ) -> Result<usize, Stopped> {
        let (user, device) = (user.to_owned(), device.to_owned());
        self.with(move |c| c.send_to_device(&user, &device, &data))
            .await
    }

    /// Pushes `data` to every connection of a user; returns how many it reached.
    pub async fn send_to_user(&self, user: &str, data: Box<RawValue>) -> Result<usize, Stopped> {
        let user = user.to_owned();
        self.with(move |c| c.send_to_user(&user, &data)).await
    }

    /// Pushes `data` to every connection of these users; returns how many it reached.
    pub async fn send_to_users(
        &self,
        users: Vec<String>,
        data: Box<RawValue>,
    ) -> Result<usize, Stopped> {
        self.with(move |c| c.send_to_users(users.iter().map(String::as_str), &data))
            .await
    }

    /// Pushes `data` to every authenticated connection; returns how many it reached.
    pub async fn broadcast(&self, data: Box<RawValue>) -> Result<usize, Stopped> {
        self.with(move |c| c.broadcast(&data)).await
    }

    /// Publishes to a topic as the server; returns how many connections it reached.
    pub async fn publish(
        &self,
        topic: &str,
        data: Box<RawValue>,
        metadata: Option<Box<RawValue>>,
    ) -> Result<Result<Published, PublishError>, Stopped> {
        let topic = topic.to_owned();
        self.with(move |c| c.publish(&topic, &data, metadata.as_deref()))
            .await
    }

    /// Closes one connection with an application close code.
    pub async fn disconnect_connection(
        &self,
        conn: ConnId,
        code: CloseCode,
        reason: &str,
    ) -> Result<Result<(), DisconnectError>, Stopped> {
        let reason = reason.to_owned();
        self.with(move |c| c.disconnect_connection(conn, code, &reason))
            .await
    }

    /// Closes every connection of a user, or of one of its devices; returns how many.
    pub async fn disconnect_user(
        &self,
        user: &str,
        device: Option<&str>,
        code: CloseCode,
        reason: &str,
    ) -> Result<Result<usize, DisconnectError>, Stopped> {
        let (user, device, reason) = (
            user.to_owned(),
            device.map(str::to_owned),
            reason.to_owned(),
        );
        self.with(move |c| c.disconnect_user(&user, device.as_deref(), code, &reason))
            .await
    }

    /// Whether a user has an authenticated connection.
    pub async fn is_online(&self, user: &str) -> Result<bool, Stopped> {
        let user = user.to_owned();
        self.with(move |c| c.core().is_online(&user)).await
    }

    /// A user's connections, oldest first.
    pub async fn connections_of(&self, user: &str) -> Result<Vec<ConnectionSnapshot>, Stopped> {
        let user = user.to_owned();
        self.with(move |c| {
            let sb = c.core();
            sb.user_connections(&user)
                .iter()
                .filter_map(|&id| sb.connection(id))
                .map(|c| c.snapshot())
                .collect()
        })
        .await
    }

    /// Every online user.
    pub async fn online_users(&self) -> Result<Vec<String>, Stopped> {
        self.with(move |c| c.core().online_users().map(str::to_owned).collect())
            .await
    }

    /// Counts and totals.
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        self.with(move |c| c.core().stats()).await
    }

    /// Starts the graceful drain: every client gets close 1001, new upgrades 503, `/healthz`
    /// 503; `Server::run` returns once everyone left or the drain deadline passed.
    pub fn shutdown(&self) -> Result<(), Stopped> {
        self.control.send(Control::Shutdown).map_err(|_| Stopped)
    }
}
