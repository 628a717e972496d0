//! `switchboard-tests`: the end-to-end suite of Switchboard, over real sockets on 127.0.0.1.
//!
//! The suite is generic over the server under test: an [`Adapter`] starts a server with given
//! [`Settings`] and hands back a [`TestServer`]. Every case in [`cases`] is an
//! `async fn case<A: Adapter>()` that starts its own server(s), so cases are independent and
//! may run in parallel. [`suite!`] instantiates one `#[test]` per case for one adapter:
//!
//! ```ignore
//! switchboard_tests::suite!(switchboard_tests::adapters::Tokio);
//! ```
//!
//! The server binaries' command-line contract is in [`binary`], run as processes;
//! [`binary_suite!`] instantiates it for one binary, in the tests of the binary's package:
//!
//! ```ignore
//! switchboard_tests::binary_suite!(env!("CARGO_BIN_EXE_switchboard"));
//! ```
//!
//! Cluster mode runs as processes too: [`cluster`] starts nodes over a throwaway Redis, and
//! [`cluster_suite!`] instantiates [`cases::cluster`] for one binary (three nodes of it);
//! [`mixed_cluster_suite!`] runs the publish and session cases on a cluster of both binaries:
//!
//! ```ignore
//! switchboard_tests::cluster_suite!(env!("CARGO_BIN_EXE_switchboard"));
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub mod adapters;
pub mod binary;
pub mod cases;
pub mod cluster;
pub mod http;
pub mod metrics;
pub mod util;
pub mod ws;

/// How long a single case may take before it fails as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a test may configure on a server under test.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Session policy, timers and limits of the core.
    pub core: switchboard_core::Config,
    /// HS256 shared secret.
    pub jwt_secret: Vec<u8>,
    /// Key of the HTTP API (`Authorization: apikey <key>`); `None`: `/api/*` answers 401.
    pub api_key: Option<String>,
    /// Graceful drain deadline.
    pub drain_timeout: Duration,
    /// TCP accept -> upgrade request complete.
    pub handshake_timeout: Duration,
    /// WebSocket connections (open or in their handshake) before upgrades get 503.
    pub max_connections: usize,
    /// `--allowed-origins` (comma-separated); `None`: any origin.
    pub allowed_origins: Option<String>,
    /// `--trusted-proxies` (comma-separated CIDRs); `None`: no proxy is trusted.
    pub trusted_proxies: Option<String>,
    /// The server's clock: the system's, or a manual one the test moves forward.
    pub clock: switchboard_adapter_kit::Clock,
}

/// The secret every default test server verifies tokens with.
pub const TEST_SECRET: &[u8] = b"switchboard-e2e-secret";
/// The HTTP API key of every default test server.
pub const TEST_API_KEY: &str = "e2e-api-key";

impl Default for Settings {
    /// Short timers suitable for tests, with generous margins for a loaded 2-core machine:
    /// ping every 250 ms, zombie after 1.5 s of silence, 1 s to authenticate.
    fn default() -> Self {
        let core = {
            let mut config = switchboard_core::Config::default();
            config.ping_interval = Duration::from_millis(250);
            config.pong_timeout = Duration::from_millis(1500);
            config.auth_timeout = Duration::from_millis(1000);
            config
        };
        Settings {
            core,
            jwt_secret: TEST_SECRET.to_vec(),
            api_key: Some(TEST_API_KEY.to_string()),
            drain_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(2),
            max_connections: 1000,
            allowed_origins: None,
            trusted_proxies: None,
            clock: switchboard_adapter_kit::Clock::system(),
        }
    }
}

impl Settings {
    /// The configuration of a server on 127.0.0.1 (any free port) with these settings: the
    /// one type every adapter takes.
    pub fn server_config(&self) -> switchboard_core::ServerConfig {
        use switchboard_core::http::{OriginPolicy, TrustedProxies};

        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = switchboard_core::ServerConfig::new(listen, self.jwt_secret.clone());
        config.core = self.core.clone();
        config.api_key = self.api_key.clone();
        config.drain_timeout = self.drain_timeout;
        config.handshake_timeout = self.handshake_timeout;
        config.max_connections = self.max_connections;
        if let Some(origins) = &self.allowed_origins {
            config.allowed_origins = OriginPolicy::parse(origins).expect("allowed origins");
        }
        if let Some(proxies) = &self.trusted_proxies {
            config.trusted_proxies = TrustedProxies::parse(proxies).expect("trusted proxies");
        }
        config
    }
}

/// One server implementation under test.
pub trait Adapter: 'static {
    /// A short name for messages.
    const NAME: &'static str;
    /// Whether the server reads request heads from sockets of its own, and so answers a head
    /// that does not arrive within `handshake_timeout` with 408. A mount in an application's
    /// HTTP server does not: the head is that server's to read.
    const HEAD_TIMEOUT: bool = true;
    /// Starts a server on 127.0.0.1:0 with these settings on its own thread(s), returning once
    /// it accepts connections.
    fn start(settings: Settings) -> TestServer;
}

/// Set by the adapter's server thread once the server has stopped.
#[derive(Default)]
struct StopState {
    stopped: Mutex<Option<Result<(), String>>>,
    cond: Condvar,
}

/// Given to the adapter's server thread: report how the server ended. Dropping it without a
/// report (e.g. the thread panicked) counts as stopped with an error.
pub struct StopSignal {
    state: Arc<StopState>,
    reported: bool,
}

impl StopSignal {
    /// The server returned (`Ok`) or failed.
    pub fn stopped(mut self, result: Result<(), String>) {
        self.report(result);
    }

    fn report(&mut self, result: Result<(), String>) {
        self.reported = true;
        let mut stopped = self.state.stopped.lock().unwrap_or_else(|e| e.into_inner());
        if stopped.is_none() {
            *stopped = Some(result);
        }
        self.state.cond.notify_all();
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        if !self.reported {
            self.report(Err("server thread ended without reporting (panic?)".into()));
        }
    }
}

/// A running server under test. Dropping it shuts the server down and waits for it to stop.
pub struct TestServer {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// The HS256 secret it verifies tokens with.
    pub jwt_secret: Vec<u8>,
    /// Its HTTP API key.
    pub api_key: Option<String>,
    /// Its drain deadline.
    pub drain_timeout: Duration,
    shutdown: Box<dyn Fn() + Send + Sync>,
    state: Arc<StopState>,
}

impl TestServer {
    /// For adapters: a server listening on `addr`, started with `settings`; `shutdown` starts
    /// its graceful drain. The adapter's server thread reports the end through the
    /// [`StopSignal`].
    pub fn new(
        addr: SocketAddr,
        settings: &Settings,
        shutdown: impl Fn() + Send + Sync + 'static,
    ) -> (TestServer, StopSignal) {
        let state = Arc::new(StopState::default());
        let server = TestServer {
            addr,
            jwt_secret: settings.jwt_secret.clone(),
            api_key: settings.api_key.clone(),
            drain_timeout: settings.drain_timeout,
            shutdown: Box::new(shutdown),
            state: state.clone(),
        };
        (
            server,
            StopSignal {
                state,
                reported: false,
            },
        )
    }

    /// Starts the graceful drain (like SIGTERM on the binary). Returns at once.
    pub fn shutdown(&self) {
        (self.shutdown)();
    }

    /// Waits (blocking) up to `within` for the server to stop; whether it did.
    pub fn wait_stopped(&self, within: Duration) -> bool {
        self.stop_result(within).is_some()
    }

    /// Waits (blocking) up to `within`; how the server ended, if it did.
    pub fn stop_result(&self, within: Duration) -> Option<Result<(), String>> {
        let guard = self.state.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .state
            .cond
            .wait_timeout_while(guard, within, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// Whether the server has stopped already.
    pub fn is_stopped(&self) -> bool {
        self.state
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
        let within = self.drain_timeout + Duration::from_secs(5);
        if !self.wait_stopped(within) {
            eprintln!(
                "switchboard-tests: the server on {} did not stop within {within:?} of shutdown",
                self.addr
            );
        }
    }
}

/// Runs one case on a fresh current-thread tokio runtime (the client side), failing it if it
/// takes longer than [`CASE_TIMEOUT`].
pub fn run<Fut: Future<Output = ()>>(case: impl FnOnce() -> Fut) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        if tokio::time::timeout(CASE_TIMEOUT, case()).await.is_err() {
            panic!("the case did not finish within {CASE_TIMEOUT:?} (hung)");
        }
    });
}

/// Instantiates every test of the suite for one adapter:
/// `switchboard_tests::suite!(switchboard_tests::adapters::Tokio);`
///
/// For a server mounted in an application's HTTP server, which reads the request heads and
/// owns the sockets until an upgrade (`switchboard_tests::suite!(mounted:
/// switchboard_tests::adapters::Axum);`), every case except those of a server's own sockets:
///
/// - `handshake_slowloris_is_disconnected`: how long a client may take over its request head
///   is the application's HTTP server's (hyper's `header_read_timeout`), not
///   `handshake_timeout`'s.
///
/// (Within a case, [`Adapter::HEAD_TIMEOUT`] leaves out the 408 of a silent socket in
/// `metrics_count_every_handshake_result_by_status`, for the same reason.)
#[macro_export]
macro_rules! suite {
    (mounted: $adapter:ty) => {
        $crate::__suite_cases! { $adapter;
            handshake::handshake_token_in_query_authenticates,
            handshake::handshake_bearer_header_authenticates,
            handshake::handshake_device_and_device_name_are_recorded,
            handshake::handshake_bad_token_is_401,
            handshake::handshake_malformed_device_is_400,
            handshake::handshake_unknown_path_is_404,
            handshake::handshake_post_is_405,
            handshake::handshake_missing_key_is_400,
            handshake::handshake_version_12_is_426,
            handshake::handshake_oversized_headers_are_431,
            handshake::handshake_disallowed_origin_is_403,
            handshake::handshake_max_connections_is_503_while_http_answers,
            handshake::handshake_per_ip_limit_is_429,
            handshake::handshake_trusted_proxy_gives_forwarded_ip,
            auth::auth_by_message_succeeds,
            auth::auth_error_then_success,
            auth::auth_refuses_alg_none_and_wrong_secret,
            auth::auth_second_auth_is_409,
            auth::auth_without_string_token_is_400,
            auth::auth_required_before_other_types_401,
            auth::auth_app_ping_gets_pong,
            auth::auth_timeout_closes_4008,
            auth::auth_device_id_precedence,
            auth::auth_token_expiry_closes_4003,
            auth::auth_jwt_leeway_accepts_recently_expired,
            frames::frames_malformed_input_gets_400_and_stays_open,
            frames::frames_fragmented_message_is_reassembled,
            frames::frames_oversize_message_closes_1009,
            frames::frames_oversize_fragmented_message_closes_1009,
            frames::frames_invalid_utf8_closes_1007,
            closes::closes_oversize_message_in_one_write_gets_1009_every_time,
            closes::closes_invalid_utf8_mid_stream_gets_1007_every_time,
            closes::closes_rate_limited_mid_stream_gets_4029_every_time,
            frames::frames_timestamps_are_rfc3339_millis,
            topics::topics_subscribe_publish_unsubscribe,
            topics::topics_sender_gets_ack_then_own_message,
            topics::topics_single_and_double_wildcards,
            topics::topics_overlapping_patterns_deliver_once,
            topics::topics_error_codes_over_the_wire,
            topics::topics_max_subscriptions_is_429,
            topics::topics_token_claim_restricts_topics,
            presence::presence_snapshot_and_pushes_across_users,
            presence::presence_pattern_sends_no_snapshot,
            presence::presence_session_replacement_closes_4001,
            presence::presence_single_policy_replaces_other_devices,
            presence::presence_multi_policy_replaces_oldest_over_cap,
            liveness::liveness_zombie_is_evicted_without_close_frame,
            liveness::liveness_pings_and_evictions_follow_the_servers_clock,
            liveness::liveness_any_frame_is_a_sign_of_life,
            limits::limits_rate_limit_closes_4029,
            limits::limits_slow_consumer_closes_4009,
            limits::limits_closed_connection_with_a_stalled_client_is_dropped_within_a_second,
            http_api::http_api_requires_key,
            http_api::http_api_publish_delivers_message,
            http_api::http_api_send_delivers_push,
            http_api::http_api_broadcast_delivers_push,
            http_api::http_api_presence_json,
            http_api::http_api_disconnect_codes,
            http_api::http_api_stats,
            http_api::http_api_malformed_body_is_400,
            http_api::http_healthz_and_metrics,
            metrics::metrics_count_every_handshake_result_by_status,
            metrics::metrics_count_closes_by_code_and_dropped_frames_by_reason,
            history::history_a_client_that_dropped_its_tcp_connection_recovers_every_missed_message,
            history::history_recovery_while_a_publisher_publishes_has_no_gap_and_no_duplicate_at_the_seam,
            history::history_a_position_of_another_epoch_or_ahead_of_the_stream_is_not_recovered,
            history::history_messages_dropped_by_history_size_are_not_recovered,
            history::history_messages_older_than_history_ttl_are_not_recovered,
            history::history_a_stream_dropped_by_history_max_bytes_starts_again_under_a_new_epoch,
            history::history_a_replay_over_max_outbound_bytes_is_not_recovered,
            history::history_every_publish_gets_the_next_offset_of_its_topics_stream,
            history::history_the_history_message_lists_kept_messages_oldest_first_within_limit_and_since,
            history::history_api_history_lists_like_the_history_message_and_refuses_bad_parameters,
            history::history_malformed_since_is_400_and_subscribes_to_nothing,
            history::history_malformed_history_requests_get_the_first_error_that_applies,
            history::history_off_frames_carry_no_position_and_since_history_and_api_history_are_400,
            drain::drain_closes_everyone_1001_and_stops,
            drain::drain_deadline_stops_despite_silent_client,
        }
    };
    ($adapter:ty) => {
        $crate::suite!(mounted: $adapter);
        // A server's own sockets: the request head read within `handshake_timeout`.
        $crate::__suite_cases! { $adapter;
            handshake::handshake_slowloris_is_disconnected,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_cases {
    ($adapter:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($crate::cases::$module::$name::<$adapter>)
            }
        )*
    };
}

/// Instantiates the command-line contract ([`binary`]) as `#[test]` functions for one server
/// binary, given the path of the binary:
/// `switchboard_tests::binary_suite!(env!("CARGO_BIN_EXE_switchboard"));`
#[macro_export]
macro_rules! binary_suite {
    ($binary:expr) => {
        $crate::__binary_cases! { $binary;
            refuses_to_start_without_a_secret_naming_the_flag,
            bad_cluster_flags_fail_with_a_message_naming_the_flag,
            serves_from_environment_settings_and_drains_on_sigterm,
            help_says_what_the_binary_is_and_names_rust_log,
            busy_port_is_named_with_what_to_do,
            listen_resolves_a_host_name,
            json_logs_are_one_object_a_line_and_say_the_api_is_disabled,
            a_restarted_server_draws_new_epochs_so_an_old_position_is_not_recovered,
            bad_history_flags_fail_with_a_message_naming_the_flag,
            history_size_0_serves_with_history_off,
            metrics_listen_serves_metrics_alone_and_the_main_port_no_longer_does,
            busy_metrics_port_is_named_with_its_flag,
            refusals_are_logged_as_json_with_ip_code_and_reason,
            readme_quick_start_works_as_written,
            browser_client_in_headless_chromium,
        }
    };
}

/// Instantiates the TLS cases of the command-line contract (`--tls-cert`, `--tls-key`,
/// SIGHUP) for one server binary, given its path:
/// `switchboard_tests::binary_tls_suite!(env!("CARGO_BIN_EXE_switchboard"));`
#[macro_export]
macro_rules! binary_tls_suite {
    ($binary:expr) => {
        $crate::__binary_cases! { $binary;
            tls_serves_wss_and_https_on_one_port_and_closes_plain_clients,
            tls_file_errors_stop_the_start_naming_the_flag_and_the_file,
            tls_sighup_reloads_the_certificate_for_new_connections_only,
            tls_carries_large_frames_both_ways_and_the_drain_close_arrives,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __binary_cases {
    ($binary:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::binary::$name($binary)
            }
        )*
    };
}

/// Instantiates every cluster case ([`cases::cluster`]) as a `#[test]` on a cluster of three
/// nodes of one server binary, given its path:
/// `switchboard_tests::cluster_suite!(env!("CARGO_BIN_EXE_switchboard"));`
#[macro_export]
macro_rules! cluster_suite {
    ($binary:expr) => {
        $crate::__cluster_cases! { [$binary, $binary, $binary];
            cluster_publish_with_wildcards_reaches_every_node_exactly_once_in_order,
            cluster_unsubscribe_and_subscribe_again_across_nodes,
            cluster_subscribing_twice_is_answered_once_the_bus_confirmed,
            cluster_send_broadcast_and_disconnect_reach_other_nodes,
            cluster_newer_login_on_another_node_closes_the_older_4001_once,
            cluster_simultaneous_logins_on_two_nodes_leave_one_winner,
            cluster_a_replacement_on_another_node_is_one_step_for_presence,
            cluster_single_and_multi_policies_hold_across_nodes,
            cluster_presence_counts_are_cluster_wide,
            cluster_a_killed_node_leaves_no_ghosts_within_the_ttl,
            cluster_a_restarted_node_replaces_its_old_run_at_once,
            cluster_survives_redis_restart_without_duplicates,
            cluster_a_draining_node_withdraws_its_presence_at_once,
        }
    };
}

/// Instantiates the publish and session cluster cases in a module `mixed`, on a cluster of
/// nodes (`tokio`, `mio`, `tokio`): both binaries must agree on the wire between nodes.
/// `tokio` and `mio` are the binaries' paths (anything [`std::path::Path::new`] takes).
#[macro_export]
macro_rules! mixed_cluster_suite {
    ($tokio:expr, $mio:expr) => {
        mod mixed {
            $crate::__cluster_cases! { [$tokio, $mio, $tokio];
                cluster_publish_with_wildcards_reaches_every_node_exactly_once_in_order,
                cluster_newer_login_on_another_node_closes_the_older_4001_once,
                cluster_simultaneous_logins_on_two_nodes_leave_one_winner,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cluster_cases {
    ([$a:expr, $b:expr, $c:expr]; $($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                let (a, b, c) = ($a, $b, $c);
                let binaries = [
                    ::std::path::Path::new(&a),
                    ::std::path::Path::new(&b),
                    ::std::path::Path::new(&c),
                ];
                $crate::cluster::run(|| $crate::cases::cluster::$name(binaries))
            }
        )*
    };
}
