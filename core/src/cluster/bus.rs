//! The bus between nodes as the core sees it: what it asks the bus to do ([`BusAction`]) and
//! what the bus reports ([`BusEvent`]). The channel names, the key layout and the Redis bytes
//! are the bridge's; the core names channels by what they carry.

use std::sync::Arc;

use bytes::Bytes;

/// A channel a message is published on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// Messages published to this concrete topic (the topic's text, e.g. `chat.lobby`).
    Topic(Arc<str>),
    /// Membership: which connections each node holds (announcements, withdrawals, snapshots,
    /// heartbeats). Every node listens.
    Members,
    /// Commands for connections anywhere: sends, broadcasts, disconnects. Every node listens.
    Commands,
}

/// What a node listens to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subscription {
    /// Every [`Channel::Topic`] whose topic matches this glob (Redis `PSUBSCRIBE` syntax over
    /// the topic's text: `*` matches any run of characters, dots included). The core only ever
    /// writes literal topic characters (`[A-Za-z0-9_:@+=~%.-]`) and `*` into it, and filters
    /// what arrives through its own trie, so a glob may match more than the patterns need.
    Topics(Arc<str>),
    /// [`Channel::Members`].
    Members,
    /// [`Channel::Commands`].
    Commands,
}

/// What the core asks of the bus. Actions made while the bus is down may be dropped: the core
/// subscribes and announces again after [`BusEvent::Up`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusAction {
    /// Publish `message` on `channel`, in order after every earlier `Publish` of this node.
    Publish {
        /// Where.
        channel: Channel,
        /// The bytes, opaque to the bus.
        message: Bytes,
    },
    /// Listen to a channel (or channels); answer [`BusEvent::Subscribed`] once the bus confirmed.
    Subscribe(Subscription),
    /// Stop listening.
    Unsubscribe(Subscription),
    /// Take the next number of `user`'s session counter, shared by every node (Redis `INCR`);
    /// answer [`BusEvent::Epoch`] with the same `request`.
    NextEpoch {
        /// Whose counter.
        user: Arc<str>,
        /// The core's tag for the answer.
        request: u64,
    },
}

/// What the bus reports to the core, through [`Switchboard::handle_bus`](crate::Switchboard::handle_bus).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusEvent {
    /// The bus is connected, with no subscriptions (a new connection): subscribe and announce.
    Up,
    /// The bus is gone: what was published since may be lost, and nothing arrives until `Up`.
    Lost,
    /// The bus confirmed a [`BusAction::Subscribe`]: messages published from now on arrive.
    Subscribed(Subscription),
    /// A message arrived (possibly once per subscription that matched it, and possibly one this
    /// node published itself).
    Message {
        /// The channel it was published on.
        channel: Channel,
        /// The bytes as published.
        message: Bytes,
    },
    /// The answer to [`BusAction::NextEpoch`].
    Epoch {
        /// The request answered.
        request: u64,
        /// The counter's new value.
        epoch: u64,
    },
}
