//! Settings of the state machine, with the defaults from the field.

use core::net::SocketAddr;
use std::time::Duration;

use crate::http::{OriginPolicy, TrustedProxies};
use crate::policy::SessionPolicy;

/// Everything the core can be told; `Config::default()` gives SPEC.md's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Seed of the core's hash maps. Part of the input: the same seed and inputs give the same
    /// outputs, in the same order. Servers should pick it at random (0: the adapters do), since
    /// clients choose the keys and a known seed would let them collide on purpose.
    pub hash_seed: u64,
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
            hash_seed: 0,
        }
    }
}

/// Settings of a server that drives a [`Switchboard`](crate::Switchboard): the core's, plus what
/// every adapter needs around it. Both adapters take this one type, so they are interchangeable.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Session policy, timers and limits of the core.
    pub core: Config,
    /// Shared HS256 secret for client tokens.
    pub jwt_secret: Vec<u8>,
    /// Key of the HTTP API; `None`: `/api/*` answers 401 to everyone.
    pub api_key: Option<String>,
    /// How long a graceful shutdown waits for clients to finish their close handshake.
    pub drain_timeout: Duration,
    /// Time from TCP accept to a complete request head; slower clients are dropped.
    pub handshake_timeout: Duration,
    /// WebSocket connections (open or in their handshake) beyond which upgrades get 503.
    pub max_connections: usize,
    /// Browser origins allowed to connect.
    pub allowed_origins: OriginPolicy,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl ServerConfig {
    /// SPEC.md's defaults, listening on `listen` with this token secret.
    pub fn new(listen: SocketAddr, jwt_secret: impl Into<Vec<u8>>) -> Self {
        ServerConfig {
            listen,
            core: Config::default(),
            jwt_secret: jwt_secret.into(),
            api_key: None,
            drain_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            allowed_origins: OriginPolicy::any(),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}
