//! Settings of the state machine, with the defaults from the field.

use std::time::Duration;

use crate::policy::SessionPolicy;

/// Everything the core can be told; `Config::default()` gives SPEC.md's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Who replaces whom when a user connects again.
    pub session_policy: SessionPolicy,
    /// How often each connection is sent a WebSocket ping.
    pub ping_interval: Duration,
    /// Silence (no pong, no frame) after which a connection is a zombie and is evicted.
    pub pong_timeout: Duration,
    /// Time a connection has to authenticate before it is closed with 4008.
    pub auth_timeout: Duration,
    /// Open connections allowed from one IP address, authenticated or not.
    pub max_connections_per_ip: u32,
    /// Largest client message accepted (reassembled size); larger closes with 1009.
    pub max_message_bytes: usize,
    /// Unwritten outbound backlog beyond which a connection is closed with 4009.
    pub max_outbound_bytes: usize,
    /// Patterns one connection may hold; the next subscribe gets `error` 429.
    pub max_subscriptions: usize,
    /// Sustained inbound data frames per second per connection; 0 disables the limit.
    pub max_messages_per_sec: u32,
    /// Inbound frames a connection may send in a burst (the token bucket's size).
    pub message_burst: u32,
    /// Clock-skew allowance when checking a token's `exp`.
    pub jwt_leeway: Duration,
    /// Messages kept per topic for recovery; 0 turns history off.
    pub history_size: usize,
    /// Age at which a kept message is dropped.
    pub history_ttl: Duration,
    /// Bytes of kept frames over all topics; beyond it the streams least recently published
    /// to are dropped first.
    pub history_max_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_policy: SessionPolicy::default(),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            max_connections_per_ip: 100,
            max_message_bytes: 1024 * 1024,
            max_outbound_bytes: 1024 * 1024,
            max_subscriptions: 1000,
            max_messages_per_sec: 100,
            message_burst: 200,
            jwt_leeway: Duration::ZERO,
            history_size: 100,
            history_ttl: Duration::from_secs(5 * 60),
            history_max_bytes: 64 * 1024 * 1024,
        }
    }
}
