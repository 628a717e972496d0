//! Cluster mode: several nodes share one set of users over a bus (Redis, through the bridge).
//!
//! The rules live here, decided the same way on every node from the same messages; the bytes
//! on the wire to Redis and the reconnects are the bridge's.
//!
//! - **Publish**: a node delivers to its own subscribers at once and publishes the frame on the
//!   topic's channel; the others deliver what arrives through their own trie. A node listens
//!   only to globs its connections' patterns need, from the first holder to the last, and
//!   answers `subscribed` once the bus confirmed the glob. Each node numbers its publishes, so a
//!   message that arrives once per matching glob is delivered once.
//! - **Membership**: each node announces the connections it holds (with their session rank),
//!   withdraws them when they leave, sends a snapshot when it joins or the bus returns, and a
//!   heartbeat every `ttl / 3`. A node unheard of for `ttl` is expired: its users leave presence.
//!   One heard again after that (it lived; its messages were late) is asked for its snapshot.
//! - **Sessions**: every authenticated connection takes a rank (when its node authenticated it,
//!   then a per-user epoch from the bus's counter); under the session policy, the higher rank
//!   wins on every node, and each node closes its own losers with 4001. Presence counts the
//!   winners only: a loser counts no more even before its node closes it (or if it died).
//! - **Commands**: sends, broadcasts and disconnects reach the user's connections on every node.
//! - **Bus lost**: each node serves its own clients alone; when the bus returns it subscribes,
//!   announces and claims again, and any session conflict of the outage is settled by rank.

mod bus;
mod local;
mod members;
mod node;
mod routing;
mod sessions;
pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use bus::{BusAction, BusEvent, Channel, Subscription};
pub use members::RemoteConnection;
pub(crate) use node::Cluster;
pub use node::ConnLocation;

/// A node's name: 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

/// A string that cannot be a [`NodeId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 1 to 64 characters of [A-Za-z0-9_-]")]
pub struct InvalidNodeId;

impl NodeId {
    /// Checks and takes a node's name.
    pub fn new(name: &str) -> Result<NodeId, InvalidNodeId> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(NodeId(name.into()))
        } else {
            Err(InvalidNodeId)
        }
    }

    /// A name made of a random number: `n` and 8 hex digits.
    pub fn from_random(random: u64) -> NodeId {
        NodeId(format!("n{:08x}", random as u32).into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Who this switchboard is among its peers: its node's name and this run of it.
///
/// Connection ids carry both (`<node>.<boot>.<index>.<generation>`), so an id is unique across
/// nodes and restarts, and any node can tell which node holds a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node's name.
    pub node: NodeId,
    /// A random number drawn at start, different on each run of the node.
    pub boot: u32,
}

impl NodeIdentity {
    /// The identity of a node's run.
    pub fn new(node: NodeId, boot: u32) -> Self {
        NodeIdentity { node, boot }
    }
}

/// Settings of cluster mode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// This node.
    pub identity: NodeIdentity,
    /// A node unheard of for this long is dead: its connections leave presence. Each node
    /// sends a heartbeat every `ttl / 3`.
    pub ttl: Duration,
}

impl ClusterConfig {
    /// Cluster settings for this node, with SPEC.md's ttl of 15 s.
    pub fn new(identity: NodeIdentity) -> Self {
        ClusterConfig {
            identity,
            ttl: Duration::from_secs(15),
        }
    }
}

/// Where this node stands with the cluster, for `/healthz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterStatus {
    /// Not in cluster mode.
    Standalone,
    /// In the cluster: the bus is up and this node has subscribed and announced.
    Joined,
    /// The bus is down or not joined yet: this node serves its own clients alone.
    Degraded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_short_names_of_safe_characters() {
        assert!(NodeId::new("node-1_a").is_ok());
        assert_eq!(NodeId::new(""), Err(InvalidNodeId));
        assert_eq!(NodeId::new("a.b"), Err(InvalidNodeId));
        assert_eq!(NodeId::new(&"a".repeat(65)), Err(InvalidNodeId));
        assert_eq!(
            NodeId::from_random(0xdead_beef_0000_0001).as_str(),
            "n00000001"
        );
    }
}
