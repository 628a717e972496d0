//! Typed errors of the core's inputs and commands.

use crate::auth::AuthError;
use crate::protocol::HandshakeError;
use crate::topics::TopicError;

/// Why `open` refused a connection; [`OpenError::http_status`] is the answer to the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The server is draining and takes no new connections (HTTP 503).
    #[error("server is shutting down")]
    Draining,
    /// The peer's IP address already holds `max_connections_per_ip` connections (HTTP 429).
    #[error("too many connections from this address")]
    TooManyFromIp,
    /// The handshake's parameters are malformed (HTTP 400).
    #[error("{0}")]
    InvalidHandshake(#[from] HandshakeError),
    /// The handshake carried a token that failed verification (HTTP 401).
    #[error("{0}")]
    InvalidToken(#[from] AuthError),
}

impl OpenError {
    /// The HTTP status with which the adapter answers the upgrade request.
    pub fn http_status(&self) -> u16 {
        match self {
            OpenError::Draining => 503,
            OpenError::TooManyFromIp => 429,
            OpenError::InvalidHandshake(e) => e.http_status(),
            OpenError::InvalidToken(_) => 401,
        }
    }
}

/// A command addressed to one connection found it gone (closed, evicted, replaced, or never
/// existed): the equivalent of API Gateway's 410.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection is gone")]
pub struct Gone;

/// Why a disconnect command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectError {
    /// The code is not one the application may use (1000, 1008 or 4000..=4999).
    #[error("close code {0} is not allowed: use 1000, 1008 or 4000-4999")]
    InvalidCode(u16),
    /// The connection is gone.
    #[error(transparent)]
    Gone(#[from] Gone),
}

/// Why an application publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not a valid concrete topic.
    #[error("{0}")]
    InvalidTopic(#[from] TopicError),
    /// `presence.*` topics are written by the server alone.
    #[error("presence topics are reserved")]
    ReservedTopic,
    /// `metadata` was given but is not a JSON object.
    #[error("metadata must be a JSON object")]
    InvalidMetadata,
}

/// The server that drove the core has stopped: the command was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server has stopped")]
pub struct Stopped;
