//! History and recovery (PROTOCOL.md): each concrete topic's stream of what was published on
//! it, so that a client that lost its connection continues where it left off.
//!
//! A stream has an [`Epoch`] and an offset: the n-th message of an epoch has offset n, and
//! every `message` frame carries its [`Position`]. The store keeps at most `history_size`
//! messages a stream, none older than `history_ttl`, at most `history_max_bytes` over all
//! streams (the least recently published to are dropped first, and start again under a new
//! epoch). What it keeps is the very frame that was delivered, shared: a replay to a thousand
//! clients copies nothing. Appending is O(1); epochs are drawn from a seed, an input like the
//! time, so the core stays deterministic.

mod position;
mod requests;
mod store;
mod stream;

pub use position::{Epoch, Position, MAX_EPOCH_BYTES};
pub(crate) use store::{Bounds, Store};
pub use stream::HistoryMessage;

use crate::topics::TopicError;

/// A topic's kept messages, as a `history` request lists them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The topic.
    pub topic: String,
    /// Where the stream stands.
    pub position: Position,
    /// The messages listed, oldest first.
    pub messages: Vec<HistoryMessage>,
}

/// What an application publish did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Connections here that were sent the message.
    pub delivered: usize,
    /// Its position in the topic's stream; `None` while history is off.
    pub position: Option<Position>,
}

/// Why a history request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// `history_size` is 0 (400).
    #[error("history is off")]
    Off,
    /// Not a valid concrete topic (400).
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
    /// Presence topics keep no stream (400).
    #[error("presence topics have no history")]
    PresenceTopic,
    /// The position names another epoch: the stream was lost and started again (410).
    #[error("the stream's epoch changed")]
    OtherEpoch,
    /// The position is past the stream's offset (410).
    #[error("the offset is ahead of the stream")]
    Ahead,
}

impl HistoryError {
    /// The status an HTTP API or an `error` reply gives it.
    pub fn status(&self) -> u16 {
        match self {
            HistoryError::OtherEpoch | HistoryError::Ahead => 410,
            _ => 400,
        }
    }
}
