//! What a server around the core is configured with, and the core it drives.

use core::net::SocketAddr;
use std::time::Duration;

use crate::auth::Hs256Verifier;
use crate::config::Config;
use crate::http::{OriginPolicy, TrustedProxies};
use crate::switchboard::Switchboard;

/// Settings of a server that drives a [`Switchboard`]: the core's, plus what
/// every adapter needs around it. Both adapters take this one type, so they are interchangeable.
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// Seed of the core's hash maps; `None` (the default): the random number the adapter
    /// draws at start. Clients choose the map keys, so a known seed would let them collide
    /// on purpose; set it only to reproduce a run.
    pub hash_seed: Option<u64>,
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
            hash_seed: None,
        }
    }

    /// The core this server drives: its settings, an HS256 verifier of the configured secret,
    /// and the hash seed (`hash_seed`, else `random_seed`, which the adapter draws).
    pub fn switchboard(&self, random_seed: u64) -> Switchboard {
        let seed = self.hash_seed.unwrap_or(random_seed);
        Switchboard::new(
            self.core.clone(),
            Hs256Verifier::new(&self.jwt_secret),
            seed,
        )
    }
}
