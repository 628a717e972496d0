//! Cluster mode as it runs: server binaries as processes, nodes of one cluster over one
//! throwaway `redis-server`.
//!
//! A [`ClusterNode`] is one server process in cluster mode on a free port, its log in a file
//! of its own (shown when a test fails); a [`Cluster`] is a [`RedisServer`] and N nodes, each
//! maybe a different binary. Every wait here is a bounded poll that fails with what it saw
//! last. The cases are in [`cases::cluster`](crate::cases::cluster); [`cluster_suite!`]
//! instantiates them for one binary:
//!
//! ```ignore
//! switchboard_tests::cluster_suite!(env!("CARGO_BIN_EXE_switchboard"));
//! ```
//!
//! [`cluster_suite!`]: crate::cluster_suite

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchboard_redis::test_server::RedisServer;

use crate::http::{get_request, post_request, try_exchange, HttpResponse};
use crate::ws::Client;
use crate::{TEST_API_KEY, TEST_SECRET};

/// The ttl every node gets unless a case asks for another (`--cluster-ttl`).
pub const TTL: Duration = Duration::from_secs(3);

/// The bound of every wait for the cluster to settle (a node to join, presence to spread).
pub const SETTLE: Duration = Duration::from_secs(10);

/// How many times a node is started again when its free port was taken meanwhile.
const LAUNCH_ATTEMPTS: usize = 3;

/// How many lines of a node's log a failure shows.
const LOG_TAIL_LINES: usize = 80;

static NEXT_LOG: AtomicU64 = AtomicU64::new(0);

/// How long a cluster case may take before it fails as hung.
pub const CLUSTER_CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one cluster case on a fresh current-thread tokio runtime, failing it if it takes
/// longer than [`CLUSTER_CASE_TIMEOUT`]. Unlike [`crate::run`], the timeout panics while the
/// case is still alive, so its nodes are dropped during the panic and show their logs.
pub fn run<Fut: Future<Output = ()>>(case: impl FnOnce() -> Fut) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        let case = case();
        tokio::pin!(case);
        tokio::select! {
            () = &mut case => {}
            () = tokio::time::sleep(CLUSTER_CASE_TIMEOUT) => {
                panic!("the case did not finish within {CLUSTER_CASE_TIMEOUT:?} (hung)")
            }
        }
    });
}

/// Polls `check` every 50 ms until it gives `Ok`, for at most `within`; panics with `what` and
/// the last `Err` (what was seen instead).
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One server process in cluster mode.
pub struct ClusterNode {
    id: String,
    binary: PathBuf,
    redis_url: String,
    extra_flags: Vec<String>,
    addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl ClusterNode {
    /// Starts `binary` as node `node_id` of the cluster on `redis_url`, on a free port, with
    /// `--cluster-ttl 3s` (unless `extra_flags` gives one) and the suite's secret and API key,
    /// and waits (bounded) until its `/healthz` says it joined.
    pub async fn spawn(
        binary: &Path,
        redis_url: &str,
        node_id: &str,
        extra_flags: &[&str],
    ) -> ClusterNode {
        let mut node = ClusterNode::launch(binary, redis_url, node_id, extra_flags);
        node.wait_joined().await;
        node
    }

    /// Starts the process without waiting for it; [`wait_joined`](Self::wait_joined) waits.
    pub fn launch(
        binary: &Path,
        redis_url: &str,
        node_id: &str,
        extra_flags: &[&str],
    ) -> ClusterNode {
        assert!(
            binary.is_file(),
            "no server binary at {}: build it first (cargo build -p switchboard-server \
             -p switchboard-mio-server, with the same profile as the tests)",
            binary.display()
        );
        let log = std::env::temp_dir().join(format!(
            "switchboard-cluster-{}-{}-{node_id}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let mut node = ClusterNode {
            id: node_id.to_owned(),
            binary: binary.to_owned(),
            redis_url: redis_url.to_owned(),
            extra_flags: extra_flags.iter().map(|f| f.to_string()).collect(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
            log,
        };
        node.start_process();
        node
    }

    fn start_process(&mut self) {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        self.addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listen = self.addr.to_string();
        let given = |flag: &str| self.extra_flags.iter().any(|f| f == flag);
        let defaults = [
            (
                "--jwt-secret",
                std::str::from_utf8(TEST_SECRET).expect("an ASCII secret"),
            ),
            ("--api-key", TEST_API_KEY),
            ("--listen", listen.as_str()),
            ("--redis", self.redis_url.as_str()),
            ("--node-id", self.id.as_str()),
            ("--cluster-ttl", "3s"),
            ("--drain-timeout", "2s"),
        ];
        let mut command = Command::new(&self.binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("SWITCHBOARD_") {
                command.env_remove(key);
            }
        }
        for (flag, value) in defaults {
            if !given(flag) {
                command.args([flag, value]);
            }
        }
        let log = std::fs::File::create(&self.log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.log.display()));
        let child = command
            .args(&self.extra_flags)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Waits (up to [`SETTLE`]) until `/healthz` answers 200 `{"status":"ok"}`: the node is
    /// up and joined the cluster. A node whose port was taken meanwhile is started again.
    pub async fn wait_joined(&mut self) {
        for attempt in 1..=LAUNCH_ATTEMPTS {
            let deadline = tokio::time::Instant::now() + SETTLE;
            loop {
                if let Some(status) = self.try_exit_status() {
                    let log = self.log_tail();
                    if log.contains("cannot listen") && attempt < LAUNCH_ATTEMPTS {
                        self.start_process();
                        break;
                    }
                    panic!(
                        "node {} ({}) exited with {status} before it joined; its log:\n{log}",
                        self.id,
                        self.binary.display()
                    );
                }
                let last = match self.healthz().await {
                    Ok((200, status)) if status == "ok" => return,
                    Ok((code, status)) => format!("HTTP {code} {status:?}"),
                    Err(e) => e,
                };
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "node {} ({}) did not join within {SETTLE:?}: /healthz last said {last}; \
                         its log:\n{}",
                        self.id,
                        self.binary.display(),
                        self.log_tail()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Its name (`--node-id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The binary it runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Whether its process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exit_status().is_none()
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("the child can be waited on")
    }

    /// Kills the process with SIGKILL (no goodbye to anyone) and reaps it.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (the node drains); returns at once.
    pub fn sigterm(&mut self) {
        let child = self.child.as_ref().expect("the node runs");
        let pid = i32::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) with our child's pid and a plain signal number.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM sent");
    }

    /// Waits (polling, up to `within`) for the process to exit; its status.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} did not exit within {within:?}; its log:\n{}",
                self.id,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        lines[start..].join("\n")
    }

    // ---- clients --------------------------------------------------------------------------------

    /// A WebSocket connection authenticated at the handshake as `user` (on `device` if given);
    /// it and its `auth_success`.
    pub async fn connect(&self, user: &str, device: Option<&str>) -> (Client, Value) {
        let suffix = format!("@{}", self.id);
        Client::authed_at(self.addr, TEST_SECRET, user, device, &suffix).await
    }

    /// A WebSocket connection to `target` (e.g. `/ws?token=…&deviceName=…`) with extra request
    /// headers, authenticated at the handshake; it and its `auth_success`.
    pub async fn connect_to(
        &self,
        target: &str,
        headers: &[(&str, &str)],
        label: &str,
    ) -> (Client, Value) {
        let label = format!("{label}@{}", self.id);
        let mut client = Client::try_connect(self.addr, target, headers, &label)
            .await
            .unwrap_or_else(|e| panic!("{label}: upgrade to {target} failed: {e}"));
        let first = client.recv_type("auth_success").await;
        (client, first)
    }

    /// `GET /healthz`: the status code and the `status` field.
    pub async fn healthz(&self) -> Result<(u16, String), String> {
        let r = try_exchange(self.addr, &get_request("/healthz", &[]))
            .await
            .map_err(|e| e.to_string())?;
        let status = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
            .unwrap_or_else(|| r.text());
        Ok((r.status, status))
    }

    /// GET `path` with the API key.
    pub async fn api_get(&self, path: &str) -> HttpResponse {
        let auth = format!("apikey {TEST_API_KEY}");
        self.exchange(&get_request(path, &[("Authorization", &auth)]))
            .await
    }

    /// POST `body` to `path` with the API key.
    pub async fn api_post(&self, path: &str, body: &Value) -> HttpResponse {
        let auth = format!("apikey {TEST_API_KEY}");
        let request = post_request(
            path,
            &[("Authorization", &auth)],
            body.to_string().as_bytes(),
        );
        self.exchange(&request).await
    }

    async fn exchange(&self, request: &[u8]) -> HttpResponse {
        try_exchange(self.addr, request).await.unwrap_or_else(|e| {
            panic!(
                "HTTP exchange with node {} failed: {e}; its log:\n{}",
                self.id,
                self.log_tail()
            )
        })
    }

    /// POST `body` to `path`, expecting 200; the JSON answer.
    pub async fn api_post_ok(&self, path: &str, body: &Value) -> Value {
        let r = self.api_post(path, body).await;
        r.assert_status(200, &format!("POST {path} {body} on {}", self.id));
        r.json()
    }

    /// `GET /api/stats`, expecting 200.
    pub async fn stats(&self) -> Value {
        let r = self.api_get("/api/stats").await;
        r.assert_status(200, &format!("GET /api/stats on {}", self.id));
        r.json()
    }

    /// `GET /api/presence/{user}`, expecting 200.
    pub async fn presence(&self, user: &str) -> Value {
        let path = format!("/api/presence/{}", crate::util::query_encode(user));
        let r = self.api_get(&path).await;
        r.assert_status(200, &format!("GET {path} on {}", self.id));
        r.json()
    }

    /// The ids of `user`'s connections `/api/presence` lists here, sorted.
    pub async fn presence_ids(&self, user: &str) -> Vec<String> {
        let body = self.presence(user).await;
        let mut ids: Vec<String> = body["connections"]
            .as_array()
            .unwrap_or_else(|| panic!("presence without connections on {}: {body}", self.id))
            .iter()
            .map(|c| c["connId"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.sigkill();
        if std::thread::panicking() {
            eprintln!(
                "---- log of node {} ({}), kept at {} ----\n{}",
                self.id,
                self.binary.display(),
                self.log.display(),
                self.log_tail()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The names of a cluster's nodes, in order.
pub const NODE_IDS: [&str; 5] = ["node-a", "node-b", "node-c", "node-d", "node-e"];

/// A `redis-server` and nodes over it.
///
/// Dropped, it kills the nodes first, then Redis (the fields' order).
pub struct Cluster {
    /// The nodes, named [`NODE_IDS`] in order.
    pub nodes: Vec<ClusterNode>,
    /// The Redis they share.
    pub redis: RedisServer,
}

impl Cluster {
    /// A fresh Redis and one node per binary (named `node-a`, `node-b`, ...), each joined, and
    /// every node knowing every other.
    pub async fn start(binaries: &[&Path]) -> Cluster {
        Cluster::start_with(binaries, &[]).await
    }

    /// Like [`Cluster::start`], every node with `extra_flags`.
    pub async fn start_with(binaries: &[&Path], extra_flags: &[&str]) -> Cluster {
        assert!(binaries.len() <= NODE_IDS.len(), "too many nodes");
        let redis = RedisServer::start();
        let url = redis.url();
        // Launched together, waited for together: the starts overlap.
        let mut nodes: Vec<ClusterNode> = binaries
            .iter()
            .zip(NODE_IDS)
            .map(|(binary, id)| ClusterNode::launch(binary, &url, id, extra_flags))
            .collect();
        for node in &mut nodes {
            node.wait_joined().await;
        }
        let cluster = Cluster { nodes, redis };
        cluster.wait_nodes(binaries.len()).await;
        cluster
    }

    /// The Redis URL.
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// Waits (up to [`SETTLE`]) until every node in `nodes` (indexes) says in `/api/stats`
    /// that the cluster has `n` live nodes.
    pub async fn wait_nodes_on(&self, nodes: &[usize], n: usize) {
        for &i in nodes {
            let node = &self.nodes[i];
            wait_for(
                &format!("/api/stats nodes = {n} on {}", node.id()),
                SETTLE,
                || async move {
                    let stats = node.stats().await;
                    match stats["nodes"].as_u64() {
                        Some(got) if got == n as u64 => Ok(()),
                        _ => Err(stats.to_string()),
                    }
                },
            )
            .await;
        }
    }

    /// [`wait_nodes_on`](Self::wait_nodes_on) every node.
    pub async fn wait_nodes(&self, n: usize) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_nodes_on(&all, n).await;
    }

    /// Waits (up to `within`) until `/healthz` on each node in `nodes` answers 200 with this
    /// `status` (`ok` or `degraded`).
    pub async fn wait_health_on(&self, nodes: &[usize], status: &str, within: Duration) {
        for &i in nodes {
            let node = &self.nodes[i];
            wait_for(
                &format!("/healthz 200 {status:?} on {}", node.id()),
                within,
                || async move {
                    match node.healthz().await {
                        Ok((200, got)) if got == status => Ok(()),
                        Ok((code, got)) => Err(format!("HTTP {code} {got:?}")),
                        Err(e) => Err(e),
                    }
                },
            )
            .await;
        }
    }

    /// Waits (up to [`SETTLE`]) until `/api/presence/{user}` on each node in `nodes` lists
    /// exactly the connections `ids` (in any order).
    pub async fn wait_presence_on(&self, nodes: &[usize], user: &str, ids: &[&str]) {
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        for &i in nodes {
            let node = &self.nodes[i];
            let want = &want;
            wait_for(
                &format!("/api/presence/{user} on {} to list {want:?}", node.id()),
                SETTLE,
                || async move {
                    let got = node.presence_ids(user).await;
                    if &got == want {
                        Ok(())
                    } else {
                        Err(format!("{got:?}"))
                    }
                },
            )
            .await;
        }
    }

    /// [`wait_presence_on`](Self::wait_presence_on) every node.
    pub async fn wait_presence(&self, user: &str, ids: &[&str]) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_presence_on(&all, user, ids).await;
    }

    /// Kills Redis with SIGKILL.
    pub fn kill_redis(&mut self) {
        self.redis.kill();
    }

    /// Starts Redis again on the same port, empty.
    pub fn restart_redis(&mut self) {
        self.redis.restart();
    }
}

/// The binary `name` in the same directory as `beside` (another binary of the workspace,
/// built into the same target directory); panics saying how to build it if it is not there.
pub fn sibling_binary(beside: &str, name: &str) -> PathBuf {
    let path = Path::new(beside).with_file_name(name);
    assert!(
        path.is_file(),
        "the mixed cluster needs the `{name}` binary next to {beside}, and it is not built: \
         run `cargo build -p switchboard-server` (same profile and target directory as the \
         tests; `--release` if the tests run with `--release`) first"
    );
    path
}
