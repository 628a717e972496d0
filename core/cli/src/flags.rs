//! The flags: every setting of SPEC.md with a `SWITCHBOARD_*` environment fallback, and the
//! `token` subcommand's, parsed by clap and turned into a [`ServerConfig`].

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use switchboard_core::auth::PublicKeyVerifier;
use switchboard_core::cluster::NodeId;
use switchboard_core::http::{ClusterSettings, OriginPolicy, TlsFiles, TrustedProxies};
use switchboard_core::{Config, ServerConfig, SessionPolicy};

use crate::{config_file, Binary};

/// Parses the process's arguments as `binary`'s command line, exiting on `--help`, `--version`
/// and errors: what `Cli::parse()` does, with the binary's name, version and about line.
pub(crate) fn parse(binary: Binary) -> Cli {
    match parse_from(binary, std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(ParseFailure::Flags(e)) => e.exit(),
        Err(ParseFailure::ConfigFile(message)) => {
            eprintln!("{}: {message}", binary.name);
            std::process::exit(2)
        }
    }
}

/// Why a command line does not parse.
#[derive(Debug)]
pub(crate) enum ParseFailure {
    /// clap's own answer: a bad flag, or `--help` / `--version` to print.
    Flags(clap::Error),
    /// The `--config` file is unreadable or holds an unknown key or a bad value.
    ConfigFile(String),
}

/// The command line `argv` (program name first) with the `--config` file's keys below it.
pub(crate) fn parse_from(binary: Binary, argv: Vec<OsString>) -> Result<Cli, ParseFailure> {
    let command = command(binary);
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(ParseFailure::Flags)?;
    let argv = match (
        matches.subcommand_name(),
        matches.get_one::<PathBuf>("config"),
    ) {
        (None, Some(path)) => {
            config_file::apply(&command, path, argv, &matches).map_err(ParseFailure::ConfigFile)?
        }
        _ => argv,
    };
    let mut matches = command
        .clone()
        .try_get_matches_from(argv)
        .map_err(ParseFailure::Flags)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| ParseFailure::Flags(e.with_cmd(&command)))
}

/// The command line of `binary`, with its name, version and about line.
pub(crate) fn command(binary: Binary) -> clap::Command {
    Cli::command()
        .name(binary.name)
        .version(binary.version)
        .about(binary.about)
        .after_help(LOGGING_HELP)
}

// `//` rather than `///` where clap would turn a doc comment into help text. The about line
// `--help` shows is the `Binary`'s (see `parse`), not this doc comment.
/// Switchboard: a WebSocket connection manager.
#[derive(Debug, Parser)]
pub(crate) struct Cli {
    // `token`, or none: serve.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    // The server's settings.
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a client token (HS256, signed with the server's secret), for trying things out.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// How long the token is valid.
        #[arg(long, default_value = "1h", value_parser = duration)]
        ttl: Duration,
        /// A device id claim.
        #[arg(long)]
        device: Option<String>,
        /// Topic patterns the token allows (comma-separated); absent: any topic.
        #[arg(long, value_delimiter = ',')]
        topics: Option<Vec<String>>,
        /// The shared secret the server verifies tokens with.
        #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
    /// The configuration file.
    Config {
        // What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

// What `config` does.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigAction {
    /// Print a configuration file with every key, commented out at its default.
    Example,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PolicyArg {
    Single,
    PerDevice,
    Multi,
}

/// What `--help` says last: how to choose what is logged, and how.
const LOGGING_HELP: &str = "Logging: RUST_LOG chooses what is logged (default: info; e.g. \
RUST_LOG=debug, or RUST_LOG=warn,switchboard_tokio=debug), to stderr; --log-format json writes \
one JSON object a line, with the fields conn, user, device, ip, code and reason where they apply.";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line, for a log pipeline.
    Json,
}

// The server's settings, as flags.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// A TOML file of settings: each key a flag's name with _ for - (`config example` prints
    /// them all); a flag or its environment variable overrides the file.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (a host name is resolved; WebSocket at /ws and the HTTP
    /// API on the same port).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:9001")]
    listen: String,
    /// Serve /metrics (and /healthz) on this address of its own, HOST:PORT, for a scraper on
    /// a private network; --listen then answers /metrics with 404.
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// How log lines are written: pretty (for people) or json (one object a line).
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub(crate) log_format: LogFormat,
    /// Shared HS256 secret for client tokens (required; there is no default).
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// An identity provider's public key (PEM file) to verify tokens with instead of a secret:
    /// RSA keys take RS256, EC P-256 keys ES256, P-384 keys ES384 (the algorithm is pinned).
    #[arg(long, env = "SWITCHBOARD_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
    /// HTTP API key; without it /api/* answers 401 to everyone.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Serve the demo page at /demo (connects with a pasted token, subscribes, publishes);
    /// without it /demo is a 404. The admin page (/admin) is always served.
    #[arg(long, env = "SWITCHBOARD_DEMO", value_parser = clap::builder::BoolishValueParser::new())]
    demo: bool,
    /// Session policy: who a new connection replaces.
    #[arg(
        long,
        env = "SWITCHBOARD_SESSION_POLICY",
        value_enum,
        default_value = "per-device"
    )]
    session_policy: PolicyArg,
    /// Connections per user under the multi policy.
    #[arg(long, env = "SWITCHBOARD_MAX_PER_USER", default_value_t = 16)]
    max_per_user: usize,
    /// Interval between WebSocket pings.
    #[arg(long, env = "SWITCHBOARD_PING_INTERVAL", default_value = "30s", value_parser = duration)]
    ping_interval: Duration,
    /// Silence after which a connection is a zombie and is dropped.
    #[arg(long, env = "SWITCHBOARD_PONG_TIMEOUT", default_value = "60s", value_parser = duration)]
    pong_timeout: Duration,
    /// Time to authenticate before close 4008.
    #[arg(long, env = "SWITCHBOARD_AUTH_TIMEOUT", default_value = "10s", value_parser = duration)]
    auth_timeout: Duration,
    /// Open connections per client IP.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP",
        default_value_t = 100
    )]
    max_connections_per_ip: u32,
    /// Largest client message (reassembled) before close 1009.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_MESSAGE_BYTES",
        default_value_t = 1_048_576
    )]
    max_message_bytes: usize,
    /// Unwritten outbound backlog per connection before close 4009.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_OUTBOUND_BYTES",
        default_value_t = 1_048_576
    )]
    max_outbound_bytes: usize,
    /// Subscriptions per connection.
    #[arg(long, env = "SWITCHBOARD_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    max_subscriptions: usize,
    /// Inbound messages per second per connection (burst: twice that); 0 disables.
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGES_PER_SEC", default_value_t = 100)]
    max_messages_per_sec: u32,
    /// How long a graceful shutdown waits for clients.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", default_value = "10s", value_parser = duration)]
    drain_timeout: Duration,
    /// Clock-skew allowance for token expiry.
    #[arg(long, env = "SWITCHBOARD_JWT_LEEWAY", default_value = "0s", value_parser = duration)]
    jwt_leeway: Duration,
    /// Time from TCP accept to a complete upgrade request.
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = duration)]
    handshake_timeout: Duration,
    /// WebSocket connections before upgrades get 503 (default: open-file limit minus 64).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Comma-separated origins browsers may connect from (default: any).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS")]
    allowed_origins: Option<String>,
    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// Cluster mode: the Redis every node shares, e.g. redis://127.0.0.1:6379/ (absent: a
    /// standalone node on its embedded in-memory registry).
    #[arg(long, env = "SWITCHBOARD_REDIS")]
    redis: Option<String>,
    /// This node's name, 1 to 64 of [A-Za-z0-9_-], in connection ids and /api/stats (default:
    /// random).
    #[arg(long, env = "SWITCHBOARD_NODE_ID")]
    node_id: Option<String>,
    /// Cluster mode: a node refreshes its presence every ttl/3; a dead node's connections leave
    /// presence within the ttl.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_TTL", default_value = "15s", value_parser = duration)]
    cluster_ttl: Duration,
    /// Messages kept per topic for recovery and history; 0 turns history off.
    #[arg(long, env = "SWITCHBOARD_HISTORY_SIZE", default_value_t = 100)]
    history_size: usize,
    /// No message older than this is kept or replayed.
    #[arg(long, env = "SWITCHBOARD_HISTORY_TTL", default_value = "5m", value_parser = duration)]
    history_ttl: Duration,
    /// Bytes of kept messages over all topics; beyond it the streams least recently
    /// published to are dropped first.
    #[arg(
        long,
        env = "SWITCHBOARD_HISTORY_MAX_BYTES",
        default_value_t = 67_108_864
    )]
    history_max_bytes: usize,
    /// TLS: the certificate chain (PEM, the server's certificate first); the port then serves
    /// wss:// and https:// only. With --tls-key; SIGHUP reads both files again.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS: the certificate's private key (PEM: PKCS#8, RSA or SEC1). With --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

/// The message for a missing secret, naming both ways to give it.
pub(crate) const NO_SECRET: &str =
    "no JWT secret: pass --jwt-secret SECRET or set SWITCHBOARD_JWT_SECRET \
     (there is no built-in default), or --jwt-public-key FILE to verify an identity \
     provider's RS256 or ES256 tokens";

impl ServerArgs {
    /// The server's configuration, or why these flags cannot start one.
    pub(crate) fn into_config(self, open_file_limit: Option<u64>) -> Result<ServerConfig, String> {
        let secret = self.jwt_secret.filter(|s| !s.is_empty());
        let public_key = match &self.jwt_public_key {
            None => None,
            Some(path) => Some(read_public_key(path)?),
        };
        let secret = match (secret, &public_key) {
            (Some(_), Some(_)) => {
                return Err(
                    "--jwt-secret and --jwt-public-key: give one of them (HS256 with \
                            a shared secret, or an identity provider's public key)"
                        .into(),
                )
            }
            (Some(secret), None) => secret,
            (None, Some(_)) => String::new(),
            (None, None) => return Err(NO_SECRET.into()),
        };
        let session_policy = match self.session_policy {
            PolicyArg::Single => SessionPolicy::Single,
            PolicyArg::PerDevice => SessionPolicy::PerDevice,
            PolicyArg::Multi if self.max_per_user == 0 => {
                return Err("--max-per-user must be at least 1".into())
            }
            PolicyArg::Multi => SessionPolicy::Multi {
                max_per_user: self.max_per_user,
            },
        };
        let allowed_origins = match self.allowed_origins.as_deref() {
            None => OriginPolicy::any(),
            Some(list) => {
                OriginPolicy::parse(list).map_err(|e| format!("--allowed-origins: {e}"))?
            }
        };
        let trusted_proxies = match self.trusted_proxies.as_deref() {
            None => TrustedProxies::default(),
            Some(list) => {
                TrustedProxies::parse(list).map_err(|e| format!("--trusted-proxies: {e}"))?
            }
        };
        let max_connections = self.max_connections.unwrap_or_else(|| {
            let limit = open_file_limit.unwrap_or(1024);
            usize::try_from(limit.saturating_sub(64))
                .unwrap_or(usize::MAX)
                .max(1)
        });
        let mut config = ServerConfig::new(resolve_listen(&self.listen)?, secret);
        config.metrics_listen = match self.metrics_listen.as_deref().filter(|a| !a.is_empty()) {
            Some(addr) => Some(resolve("--metrics-listen", addr, "9090")?),
            None => None,
        };
        if config.metrics_listen == Some(config.listen) && config.listen.port() != 0 {
            return Err(format!(
                "--metrics-listen {}: the same address as --listen; give another port, or leave \
                 it out to serve /metrics on --listen",
                config.listen
            ));
        }
        config.jwt_public_key = public_key;
        config.core = {
            let mut config = Config::default();
            config.session_policy = session_policy;
            config.ping_interval = self.ping_interval;
            config.pong_timeout = self.pong_timeout;
            config.auth_timeout = self.auth_timeout;
            config.max_connections_per_ip = self.max_connections_per_ip;
            config.max_message_bytes = self.max_message_bytes;
            config.max_outbound_bytes = self.max_outbound_bytes;
            config.max_subscriptions = self.max_subscriptions;
            config.max_messages_per_sec = self.max_messages_per_sec;
            config.message_burst = self.max_messages_per_sec.saturating_mul(2);
            config.jwt_leeway = self.jwt_leeway;
            config.history_size = self.history_size;
            config.history_ttl = self.history_ttl;
            config.history_max_bytes = self.history_max_bytes;
            config
        };
        if self.history_size > 0 && self.history_ttl.is_zero() {
            return Err(
                "--history-ttl 0s: would keep nothing; give a duration, e.g. 5m \
                        (--history-size 0 turns history off)"
                    .into(),
            );
        }
        if self.history_size > 0 && self.history_max_bytes == 0 {
            return Err(
                "--history-max-bytes 0: would keep nothing; give a size in bytes \
                        (--history-size 0 turns history off)"
                    .into(),
            );
        }
        config.api_key = self.api_key.filter(|k| !k.is_empty());
        config.demo = self.demo;
        config.drain_timeout = self.drain_timeout;
        config.handshake_timeout = self.handshake_timeout;
        config.max_connections = max_connections;
        config.allowed_origins = allowed_origins;
        config.trusted_proxies = trusted_proxies;
        config.node_id = match self.node_id.as_deref().filter(|n| !n.is_empty()) {
            Some(node) => Some(NodeId::new(node).map_err(|e| format!("--node-id {node:?}: {e}"))?),
            None => None,
        };
        config.cluster = match self.redis.filter(|u| !u.is_empty()) {
            Some(url) => Some(cluster_settings(url, self.cluster_ttl)?),
            None => None,
        };
        config.tls = tls_files(self.tls_cert, self.tls_key)?;
        Ok(config)
    }
}

/// `--tls-cert` and `--tls-key`: both or neither (an empty value is none).
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsFiles>, String> {
    let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    match (given(cert), given(key)) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles::new(cert, key))),
        (Some(_), None) => Err(
            "--tls-cert without --tls-key: TLS needs both; give --tls-key \
                                FILE (or SWITCHBOARD_TLS_KEY), the certificate's private key"
                .into(),
        ),
        (None, Some(_)) => Err(
            "--tls-key without --tls-cert: TLS needs both; give --tls-cert \
                                FILE (or SWITCHBOARD_TLS_CERT), the certificate chain"
                .into(),
        ),
    }
}

/// The verifier of the PEM public key at `path`, or what is wrong with it.
fn read_public_key(path: &std::path::Path) -> Result<PublicKeyVerifier, String> {
    let file = path.display();
    let pem =
        std::fs::read(path).map_err(|e| format!("--jwt-public-key {file}: cannot read it: {e}"))?;
    PublicKeyVerifier::from_pem(&pem).map_err(|e| format!("--jwt-public-key {file}: {e}"))
}

/// The address `--listen` names: `HOST:PORT` with an IP address or a host name (the first
/// address it resolves to).
fn resolve_listen(listen: &str) -> Result<SocketAddr, String> {
    resolve("--listen", listen, "9001")
}

/// The address a listening flag names (`flag`, for the message), `HOST:PORT` with an IP
/// address or a host name (the first address it resolves to).
fn resolve(flag: &str, listen: &str, example_port: &str) -> Result<SocketAddr, String> {
    let mut addrs = listen.to_socket_addrs().map_err(|e| {
        format!("{flag} {listen:?}: not an address this machine can listen on ({e}); give HOST:PORT, e.g. 127.0.0.1:{example_port} or localhost:{example_port}")
    })?;
    addrs
        .next()
        .ok_or_else(|| format!("{flag} {listen:?}: the host name resolves to no address"))
}

/// Schemes of the Redis URLs the bridge connects to.
const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "unix://", "redis+unix://"];

fn cluster_settings(url: String, ttl: Duration) -> Result<ClusterSettings, String> {
    if !REDIS_SCHEMES.iter().any(|s| url.starts_with(s)) {
        let message = "--redis: not a Redis URL (it must start with redis://, rediss:// or \
                       unix://), e.g. --redis redis://127.0.0.1:6379/";
        return Err(message.to_owned());
    }
    if ttl < Duration::from_secs(1) {
        return Err(format!(
            "--cluster-ttl {}: at least 1s (nodes refresh every ttl/3)",
            humantime::format_duration(ttl)
        ));
    }
    let mut settings = ClusterSettings::new(url);
    settings.ttl = ttl;
    Ok(settings)
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (e.g. 30s, 500ms, 2m)"))
}
