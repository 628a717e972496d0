//! What a server around the core is configured with, and the core it drives.

use core::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{Hs256Verifier, PublicKeyVerifier};
use crate::cluster::{ClusterConfig, NodeId, NodeIdentity};
use crate::config::Config;
use crate::http::{Listener, OriginPolicy, TrustedProxies};
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
    /// An identity provider's public key: tokens are then verified with it (RS256, ES256 or
    /// ES384, as the key's type says) instead of the shared secret.
    pub jwt_public_key: Option<PublicKeyVerifier>,
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
    /// This node's name (in connection ids, `/api/stats` and the cluster); `None`: a random
    /// one drawn at start.
    pub node_id: Option<NodeId>,
    /// Cluster mode; `None`: a standalone server on its in-memory registry.
    pub cluster: Option<ClusterSettings>,
    /// A listener of its own for `/metrics` (and `/healthz`); `None`: `/metrics` is served on
    /// `listen`. When set, `listen` answers `/metrics` with 404.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS on the one port (`wss://` and `https://`); `None`: plain `ws://` and `http://`.
    /// Only the files' paths: the adapter reads them (and again on a reload).
    pub tls: Option<TlsFiles>,
    /// Whether `listen` serves the demo page at `/demo` (`--demo`); off: `/demo` is a 404.
    pub demo: bool,
}

/// Where a server's TLS certificate and key are: PEM files, read by the adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain (PEM `CERTIFICATE` blocks, the server's own first): `--tls-cert`.
    pub certificate: PathBuf,
    /// The certificate's private key (PEM, PKCS#8, RSA or SEC1): `--tls-key`.
    pub private_key: PathBuf,
}

impl TlsFiles {
    /// The certificate chain at `certificate` and its key at `private_key`.
    pub fn new(certificate: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            certificate: certificate.into(),
            private_key: private_key.into(),
        }
    }
}

/// How a server joins its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterSettings {
    /// The Redis every node shares, e.g. `redis://127.0.0.1:6379/`.
    pub redis_url: String,
    /// A node unheard of for this long is dead; each node refreshes every `ttl / 3`.
    pub ttl: Duration,
}

impl ClusterSettings {
    /// Cluster mode over this Redis, with SPEC.md's ttl of 15 s.
    pub fn new(redis_url: impl Into<String>) -> Self {
        ClusterSettings {
            redis_url: redis_url.into(),
            ttl: Duration::from_secs(15),
        }
    }
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
            jwt_public_key: None,
            node_id: None,
            cluster: None,
            metrics_listen: None,
            tls: None,
            demo: false,
        }
    }

    /// The listener `--listen` is, given whether `/metrics` has its own and whether the demo
    /// page is on.
    pub fn main_listener(&self) -> Listener {
        Listener::Main {
            metrics: self.metrics_listen.is_none(),
            demo: self.demo,
        }
    }

    /// The core this server drives: its settings, an HS256 verifier of the configured secret,
    /// the hash seed (`hash_seed`, else a number from `random`, which the adapter draws), and
    /// its node identity (`node_id`, else a random name; a random run number either way), in
    /// a cluster when `cluster` says so.
    pub fn switchboard(&self, mut random: impl FnMut() -> u64) -> Switchboard {
        let seed = self.hash_seed.unwrap_or_else(&mut random);
        let node = match &self.node_id {
            Some(node) => node.clone(),
            None => NodeId::from_random(random()),
        };
        let identity = NodeIdentity::new(node, random() as u32);
        // Each run draws its own epochs: a stream started again after a restart never has the
        // epoch it had before, whatever the hash seed.
        let sb = match &self.jwt_public_key {
            Some(verifier) => Switchboard::new(self.core.clone(), verifier.clone(), seed),
            None => Switchboard::new(
                self.core.clone(),
                Hs256Verifier::new(&self.jwt_secret),
                seed,
            ),
        }
        .with_epoch_seed(random());
        match &self.cluster {
            Some(settings) => {
                let mut cluster = ClusterConfig::new(identity);
                cluster.ttl = settings.ttl;
                sb.with_cluster(cluster)
            }
            None => sb.with_node(identity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_listener_serves_demo_only_with_demo_on() {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "s");
        let main = |c: &ServerConfig| c.main_listener();
        assert_eq!(
            main(&config),
            Listener::Main {
                metrics: true,
                demo: false
            }
        );
        config.demo = true;
        config.metrics_listen = Some("127.0.0.1:1".parse().unwrap());
        assert_eq!(
            main(&config),
            Listener::Main {
                metrics: false,
                demo: true
            }
        );
    }
}
