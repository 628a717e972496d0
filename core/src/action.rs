//! What the core asks its adapter to do.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::BusAction;
use crate::payload::Payload;
use crate::registry::ConnId;

/// How long a transport may live once the core decided to close it: to write what is queued
/// and the close frame, and to hear the peer's close. A stalled peer cannot keep it longer.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What happens to a connection's unwritten frames when the core closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseMode {
    /// Write what is queued, then the close frame.
    Flush,
    /// Drop what is not written yet, then write the close frame at once (a slow consumer:
    /// the backlog is what it could not take).
    Discard,
}

/// A WebSocket close code (RFC 6455 and PROTOCOL.md's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// Normal close.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// Server shutting down (graceful drain).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// Invalid UTF-8 in a text frame.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// Policy violation, e.g. disconnected by the application without a code.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// A message larger than `max_message_bytes`.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// Internal error.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// A newer connection took this one's place.
    pub const SESSION_REPLACED: CloseCode = CloseCode(4001);
    /// The token expired while connected, or was revoked.
    pub const TOKEN_EXPIRED: CloseCode = CloseCode(4003);
    /// Not authenticated within `auth_timeout`.
    pub const AUTH_TIMEOUT: CloseCode = CloseCode(4008);
    /// Outbound backlog over `max_outbound_bytes`.
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4009);
    /// Inbound rate limit exceeded.
    pub const RATE_LIMITED: CloseCode = CloseCode(4029);

    /// Whether the application may close a connection with this code: 1000, 1008 or 4000..=4999.
    pub fn is_application_code(self) -> bool {
        matches!(self.0, 1000 | 1008 | 4000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One instruction for the adapter, drained with [`Switchboard::poll_action`](crate::Switchboard::poll_action).
///
/// Once `Close` or `Evict` names a connection, the core has forgotten it: no later action names it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write this text frame. The payload is shared by every recipient of the same message.
    Send {
        /// The recipient.
        conn: ConnId,
        /// One encoded JSON message.
        payload: Payload,
    },
    /// Write a WebSocket ping.
    Ping {
        /// The connection to ping.
        conn: ConnId,
    },
    /// Close the connection: per `mode`, write or drop what is queued; write a close frame
    /// with this code and reason; then stop writing and read (and discard) until the peer
    /// closes, so that unread input cannot make the kernel reset the connection and destroy
    /// the close frame. Drop the transport at most [`CLOSE_GRACE`] after this action.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// The close code.
        code: CloseCode,
        /// A short English phrase.
        reason: Cow<'static, str>,
        /// What becomes of the frames not written yet.
        mode: CloseMode,
    },
    /// Drop the transport without a close handshake (a zombie that stopped answering).
    Evict {
        /// The zombie.
        conn: ConnId,
    },
    /// A user came online (first authenticated connection) or went offline (last one left).
    Presence {
        /// The user.
        user: Arc<str>,
        /// Online after this change.
        online: bool,
        /// Authenticated connections the user has now.
        connections: usize,
    },
    /// The drain deadline given to `shutdown` has passed: drop whatever transports remain and stop.
    Stop,
    /// Cluster mode: something for the bus (the bridge carries it to the other nodes).
    Bus(BusAction),
}

impl Action {
    /// The connection this action is about, if it is about one.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Action::Send { conn, .. }
            | Action::Ping { conn }
            | Action::Close { conn, .. }
            | Action::Evict { conn } => Some(*conn),
            Action::Presence { .. } | Action::Stop | Action::Bus(_) => None,
        }
    }
}
