//! `switchboard-tokio`: a thin tokio + tokio-tungstenite adapter for `switchboard-core`.
//!
//! It accepts sockets, reads request heads, upgrades WebSockets, moves frames between sockets
//! and the core, executes the core's actions and owns the clock. Every decision (routing and
//! HTTP statuses, the protocol, session policy, liveness, limits, the HTTP API) is the core's.
//!
//! One task, the driver, owns the core (no lock around it); one task per connection reads
//! frames and writes what the driver queued for it, batched per wake-up. Outbound queues are
//! bounded in bytes by the core, which closes a slow consumer with 4009.
//!
//! ```no_run
//! # async fn serve() -> std::io::Result<()> {
//! use switchboard_tokio::{Server, ServerConfig};
//!
//! let config = ServerConfig::new("127.0.0.1:9001".parse().unwrap(), "secret");
//! let server = Server::bind(config).await?;
//! let handle = server.handle();
//! tokio::spawn(server.run());
//! let data = serde_json::value::RawValue::from_string("{\"hello\":1}".into()).unwrap();
//! let delivered = handle.send_to_user("alice", data).await; // Err(Stopped) once it stopped
//! # Ok(()) }
//! ```
//!
//! With the cargo feature `axum`, [`Gateway`] mounts the same endpoint and HTTP API in an
//! application's own axum `Router`, on the application's port, with the same handshake rules.

mod cap;
mod connection;
mod driver;
mod front;
mod handle;
#[cfg(feature = "axum")]
mod mount;
mod outbound;
mod server;
mod stream;
mod sync;

pub use handle::Handle;
#[cfg(feature = "axum")]
pub use mount::Gateway;
pub use server::Server;
pub use switchboard_adapter_kit::tls::{Tls, TlsError};
pub use switchboard_adapter_kit::{Clock, ClockHand};
pub use switchboard_core::http::TlsFiles;
pub use switchboard_core::ConnectionSnapshot;
pub use switchboard_core::ServerConfig;
pub use switchboard_core::{Commands, Stopped};

use std::time::Duration;

use switchboard_core::http::{Listener, OriginPolicy, TrustedProxies};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::cap::ConnectionCap;
use crate::driver::{ConnEvent, Control};
use crate::sync::Arc;

/// What every socket task needs, shared.
pub(crate) struct Context {
    pub(crate) events: mpsc::Sender<ConnEvent>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) cap: Arc<ConnectionCap>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) allowed_origins: OriginPolicy,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) websocket: WebSocketConfig,
    /// What `--listen` serves (`/metrics` or not).
    pub(crate) main_listener: Listener,
    /// TLS in front of every socket; `None`: plain.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}
