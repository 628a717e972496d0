//! `loadgen`: drives any server that speaks Switchboard's wire protocol over real sockets.
//!
//! Three modes, each bounded in time and count, each ending with one JSON line of figures on
//! stdout (progress goes to stderr):
//!
//! - `idle`: open N authenticated connections and hold them; connections established, failures,
//!   ramp time, and the server's RSS per connection (from `/proc/PID/status`).
//! - `fanout`: S subscribers on one topic, P publishers at R messages/s each; deliveries per
//!   second, latency percentiles (HDR histogram), messages lost.
//! - `churn`: C workers doing connect / auth / subscribe / close cycles; cycles per second.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, Claims};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const AFTER_HELP: &str = "\
Limits: one process holds at most (open-file hard limit - 64) connections; loadgen raises its
soft limit to the hard limit at start. For more connections than that, run several loadgen
processes, each with its own --shard (user ids stay distinct), e.g. 100,000 idle connections
with a 20,000 hard limit: 6 processes of -n 16667 --shard 0..5 (and, if the server has the same
limit, one server process per loadgen process, on different ports).

Source addresses: towards a loopback server, client sockets are bound to 127.0.0.2 ..
127.0.0.251 in turn (--source-addrs), so that the ephemeral port range (about 28,000 ports per
source address) is not what limits the connection count, and a server's per-IP limit sees
N/250 connections per address.";

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for servers speaking the Switchboard wire protocol",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Open N authenticated connections, hold them, report ramp time and server RSS per connection.
    Idle(IdleArgs),
    /// S subscribers on one topic, P publishers at R msg/s each: deliveries/s, latency, loss.
    Fanout(FanoutArgs),
    /// C concurrent connect/auth/subscribe/close cycles: cycles per second.
    Churn(ChurnArgs),
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// WebSocket endpoint, e.g. ws://127.0.0.1:9001/ws.
    #[arg(long)]
    url: String,
    /// HS256 secret shared with the server (tokens are signed here, one distinct user each).
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// Limit on TCP connect + WebSocket upgrade + first server frame, per connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Connection attempts in flight at once while ramping up.
    #[arg(long, default_value_t = 256)]
    ramp_concurrency: usize,
    /// Loopback source addresses to spread connections over (127.0.0.2 and up); 0: let the
    /// kernel choose.
    #[arg(long, default_value_t = 250)]
    source_addrs: u8,
    /// This process's number when several loadgen processes run at once: keeps user ids distinct.
    #[arg(long, default_value_t = 0)]
    shard: u32,
    /// Hard limit on the whole run; by default derived from the mode's own durations and sizes.
    /// When it passes, loadgen prints a JSON line with `"error"` and exits with status 2.
    #[arg(long, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
}

#[derive(Args, Debug)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open.
    #[arg(short = 'n', long)]
    connections: usize,
    /// Server process to sample VmRSS from (before the ramp and after the hold).
    #[arg(long)]
    server_pid: Option<u32>,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Subscribe every connection to this topic, and count the messages they receive while
    /// held (`messages_received`): to see a publish made elsewhere, e.g. on another node,
    /// reach them all.
    #[arg(long)]
    topic: Option<String>,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Subscribing connections.
    #[arg(long)]
    subscribers: usize,
    /// Publishing connections.
    #[arg(long)]
    publishers: usize,
    /// Messages per second per publisher.
    #[arg(long)]
    rate: f64,
    /// How long the publishers publish.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Topic to subscribe and publish to.
    #[arg(long, default_value = "bench.fanout")]
    topic: String,
    /// After the last publish, how long to wait for deliveries still in flight.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// Server process to sample VmRSS from (reported, not divided).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Cluster mode: spread the subscribers over these WebSocket endpoints (comma-separated,
    /// round-robin) instead of --url.
    #[arg(long, value_delimiter = ',')]
    subscriber_urls: Vec<String>,
    /// Cluster mode: connect the publishers to this endpoint instead of --url.
    #[arg(long)]
    publisher_url: Option<String>,
}

#[derive(Args, Debug)]
struct ChurnArgs {
    #[command(flatten)]
    common: Common,
    /// Workers, each running cycles back to back.
    #[arg(long)]
    concurrency: usize,
    /// How long to run cycles.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Topic each cycle subscribes to (suffixed with the worker number).
    #[arg(long, default_value = "bench.churn")]
    topic: String,
}

type Ws = WebSocketStream<TcpStream>;

/// Where to connect and how.
struct Target {
    addr: SocketAddr,
    /// The URL as given, to which `?token=` is appended.
    url: String,
    common: Common,
    /// Token expiry, seconds since the Unix epoch.
    exp: u64,
}

impl Target {
    async fn new(common: Common) -> Result<Self, String> {
        let rest = common
            .url
            .strip_prefix("ws://")
            .ok_or("--url must start with ws:// (wss is not supported)")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{authority} has no IPv4 address"))?;
        let exp = unix_secs() + 24 * 3600;
        Ok(Target {
            addr,
            url: common.url.clone(),
            common,
            exp,
        })
    }

    fn token(&self, user: &str) -> String {
        let claims = Claims {
            sub: user.to_owned(),
            exp: self.exp,
            device: None,
            topics: None,
            info: None,
        };
        sign_hs256(self.common.secret.as_bytes(), &claims)
    }

    /// A user id unique to this process (`--shard`), mode and index.
    fn user(&self, role: &str, i: usize) -> String {
        format!("lg{}-{role}-{i}", self.common.shard)
    }

    /// The source address for connection number `i`, when spreading over loopback addresses.
    fn source(&self, i: usize) -> Option<IpAddr> {
        let n = usize::from(self.common.source_addrs);
        (n > 0 && self.addr.ip().is_loopback()).then(|| {
            let last = 2 + (i % n) as u8;
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
        })
    }

    /// TCP connect, WebSocket upgrade with `?token=`, and the `auth_success` frame, all within
    /// `--connect-timeout`.
    async fn connect(&self, i: usize, user: &str) -> Result<Ws, String> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}token={}", self.url, self.token(user));
        let attempt = async {
            let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            if let Some(ip) = self.source(i) {
                // Ports in TIME_WAIT from earlier cycles may be reused for new connections.
                socket
                    .set_reuseaddr(true)
                    .map_err(|e| format!("reuseaddr: {e}"))?;
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .map_err(|e| format!("bind {ip}: {e}"))?;
            }
            let stream = socket
                .connect(self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("nodelay: {e}"))?;
            let (mut ws, _) =
                tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
                    .await
                    .map_err(|e| format!("upgrade: {e}"))?;
            expect_type(&mut ws, "auth_success").await?;
            Ok(ws)
        };
        tokio::time::timeout(self.common.connect_timeout, attempt)
            .await
            .map_err(|_| "connect timeout".to_owned())?
    }

    /// Sends `subscribe` and waits for `subscribed`, within `--connect-timeout`.
    async fn subscribe(&self, ws: &mut Ws, topic: &str) -> Result<(), String> {
        let frame = json!({"type": "subscribe", "topic": topic, "id": "s"}).to_string();
        let attempt = async {
            ws.send(Message::text(frame))
                .await
                .map_err(|e| format!("send subscribe: {e}"))?;
            expect_type(ws, "subscribed").await
        };
        tokio::time::timeout(self.common.connect_timeout, attempt)
            .await
            .map_err(|_| "subscribe timeout".to_owned())?
    }
}

/// Small client buffers: tungstenite's default read buffer (128 KiB, filled on every read)
/// would cost gigabytes across tens of thousands of connections.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// The type and data of a server message; every other field is skipped.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    data: Option<Stamp>,
}

/// What publishers put in `data`: who, which message, when (µs after the run's epoch).
#[derive(Deserialize)]
struct Stamp {
    t: u64,
}

/// Reads frames until one of type `kind`; an `error`, `auth_error` or close ends the wait.
async fn expect_type(ws: &mut Ws, kind: &str) -> Result<(), String> {
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| format!("read: {e}"))? {
            Message::Text(text) => {
                let incoming: Incoming<'_> = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("bad server frame: {e}"))?;
                if incoming.kind == kind {
                    return Ok(());
                }
                if incoming.kind == "error" || incoming.kind == "auth_error" {
                    return Err(format!("server: {}", text.as_str()));
                }
            }
            Message::Close(frame) => return Err(format!("closed by server: {frame:?}")),
            _ => {}
        }
    }
    Err(format!("connection ended before {kind}"))
}

/// Failure counts, and the first error message (the usual cause of all the others).
#[derive(Default)]
struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Failures {
    fn record(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn first(&self) -> Value {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.clone().map_or(Value::Null, Value::String)
    }
}

/// Latencies in microseconds, sharded so that many tasks record without contending.
struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    fn new() -> Self {
        let shards = (0..32)
            .map(|_| Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds")))
            .collect();
        Latencies { shards }
    }

    fn record(&self, shard: usize, micros: u64) {
        let mut h = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        h.saturating_record(micros.max(1));
    }

    fn summary(&self) -> Value {
        let mut all = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("bounds");
        for shard in &self.shards {
            let h = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).expect("same bounds");
        }
        json!({
            "count": all.len(),
            "p50": all.value_at_quantile(0.50),
            "p99": all.value_at_quantile(0.99),
            "p999": all.value_at_quantile(0.999),
            "max": all.max(),
            "mean": (all.mean() * 10.0).round() / 10.0,
        })
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Raises the open-file soft limit to the hard limit; returns the limit now in force.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn progress(len: u64, what: &str) -> ProgressBar {
    // Drawn on stderr, and only when stderr is a terminal (CI logs stay clean).
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Warns when the connection count cannot fit under the open-file limit.
fn check_fd_budget(wanted: usize, limit: u64) {
    if wanted as u64 + 64 > limit {
        eprintln!(
            "loadgen: warning: {wanted} connections need more than the open-file limit ({limit}) \
             allows in one process; split the run over several processes with --shard"
        );
    }
}

/// Ends the process with a JSON error line if the run outlives its deadline, however stuck.
fn arm_watchdog(mode: &'static str, deadline: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        println!(
            "{}",
            json!({"mode": mode, "error": "deadline exceeded", "deadline_secs": deadline.as_secs_f64()})
        );
        std::process::exit(2);
    });
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---- idle ---------------------------------------------------------------------------------

async fn idle(args: IdleArgs) -> Result<Value, String> {
    let target = Arc::new(Target::new(args.common.clone()).await?);
    let n = args.connections;
    let rss_before = args.server_pid.and_then(rss_kib);
    let established = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Failures::default());
    let messages = Arc::new(AtomicU64::new(0));
    let topic: Option<Arc<str>> = args.topic.as_deref().map(Into::into);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ramp = Arc::new(Semaphore::new(args.common.ramp_concurrency.max(1)));
    let bar = progress(n as u64, "connecting");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = ramp
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (target, established, dropped, failures, bar, messages, topic) = (
            target.clone(),
            established.clone(),
            dropped.clone(),
            failures.clone(),
            bar.clone(),
            messages.clone(),
            topic.clone(),
        );
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let user = target.user("idle", i);
            let result = match (target.connect(i, &user).await, &topic) {
                (Ok(mut ws), Some(topic)) => target.subscribe(&mut ws, topic).await.map(|()| ws),
                (result, _) => result,
            };
            // Counted before the permit goes back: the ramp ends when all permits are back.
            let mut ws = match result {
                Ok(ws) => {
                    established.fetch_add(1, Ordering::Relaxed);
                    ws
                }
                Err(e) => {
                    failures.record(e);
                    return bar.inc(1);
                }
            };
            drop(permit);
            bar.inc(1);
            // Hold: keep reading so that pings are answered, until told to stop.
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(text))) => {
                            if text.as_str().starts_with(r#"{"type":"message""#) {
                                messages.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    },
                }
            }
        }));
    }
    // Every attempt holds a permit until it has succeeded or failed: taking them all back
    // means the ramp is over.
    let all = u32::try_from(args.common.ramp_concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = ramp.acquire_many(all).await.map_err(|e| e.to_string())?;
    let ramp_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let est = established.load(Ordering::Relaxed);
    eprintln!(
        "loadgen idle: {est}/{n} established in {ramp_secs:.2}s ({} failed); holding {:?}",
        failures.count(),
        args.hold
    );
    let rss_ramped = args.server_pid.and_then(rss_kib);
    tokio::time::sleep(args.hold).await;
    let rss_after = args.server_pid.and_then(rss_kib);
    let still_open = est - dropped.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) if est > 0 => {
            json!(round2(
                (after.saturating_sub(before) * 1024) as f64 / est as f64
            ))
        }
        _ => Value::Null,
    };
    Ok(json!({
        "mode": "idle",
        "target": n,
        "established": est,
        "failed": failures.count(),
        "dropped_during_hold": dropped.load(Ordering::Relaxed),
        "open_at_end_of_hold": still_open,
        "ramp_secs": round2(ramp_secs),
        "connects_per_sec": round2(est as f64 / ramp_secs.max(1e-9)),
        "hold_secs": args.hold.as_secs_f64(),
        "server_rss_before_kib": rss_before,
        "server_rss_ramped_kib": rss_ramped,
        "server_rss_after_kib": rss_after,
        "server_rss_per_conn_bytes": per_conn,
        "messages_received": messages.load(Ordering::Relaxed),
        "first_error": failures.first(),
    }))
}

// ---- fanout -------------------------------------------------------------------------------

async fn fanout(args: FanoutArgs) -> Result<Value, String> {
    let target = Arc::new(Target::new(args.common.clone()).await?);
    let at = |url: &str| {
        let mut common = args.common.clone();
        common.url = url.to_owned();
        Target::new(common)
    };
    let mut sub_targets = Vec::new();
    for url in &args.subscriber_urls {
        sub_targets.push(Arc::new(at(url).await?));
    }
    if sub_targets.is_empty() {
        sub_targets.push(target.clone());
    }
    let pub_target = match &args.publisher_url {
        Some(url) => Arc::new(at(url).await?),
        None => target.clone(),
    };
    let topic: Arc<str> = args.topic.clone().into();
    let epoch = Instant::now();
    let failures = Arc::new(Failures::default());
    let received = Arc::new(AtomicU64::new(0));
    let last_rx_micros = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Latencies::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    // Subscribers: connect, subscribe, then count and time every message until told to stop.
    let ramp = Arc::new(Semaphore::new(args.common.ramp_concurrency.max(1)));
    let ready = Arc::new(AtomicU64::new(0));
    let bar = progress(args.subscribers as u64, "subscribing");
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let permit = ramp
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (target, topic, failures, received, last_rx, latencies, ready, bar) = (
            sub_targets[i % sub_targets.len()].clone(),
            topic.clone(),
            failures.clone(),
            received.clone(),
            last_rx_micros.clone(),
            latencies.clone(),
            ready.clone(),
            bar.clone(),
        );
        let mut stop = stop_rx.clone();
        subscribers.push(tokio::spawn(async move {
            let user = target.user("sub", i);
            let result = match target.connect(i, &user).await {
                Ok(mut ws) => target.subscribe(&mut ws, &topic).await.map(|()| ws),
                Err(e) => Err(e),
            };
            // Counted before the permit goes back: the ramp ends when all permits are back.
            let mut ws = match result {
                Ok(ws) => {
                    ready.fetch_add(1, Ordering::Relaxed);
                    ws
                }
                Err(e) => {
                    failures.record(e);
                    return bar.inc(1);
                }
            };
            drop(permit);
            bar.inc(1);
            loop {
                let msg = tokio::select! {
                    _ = stop.changed() => return,
                    msg = ws.next() => msg,
                };
                let text = match msg {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return failures.record(format!("subscriber read: {e}")),
                    None => return failures.record("subscriber closed by server".to_owned()),
                };
                let now = epoch.elapsed().as_micros() as u64;
                if let Ok(Incoming {
                    kind,
                    data: Some(stamp),
                }) = serde_json::from_str::<Incoming<'_>>(text.as_str())
                {
                    if kind == "message" {
                        received.fetch_add(1, Ordering::Relaxed);
                        last_rx.fetch_max(now, Ordering::Relaxed);
                        latencies.record(i, now.saturating_sub(stamp.t));
                    }
                }
            }
        }));
    }
    let all = u32::try_from(args.common.ramp_concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = ramp.acquire_many(all).await.map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let ready = ready.load(Ordering::Relaxed);
    eprintln!(
        "loadgen fanout: {ready}/{} subscribers ready; publishing",
        args.subscribers
    );

    // Publishers: connect all, then publish from one common start at a steady pace.
    let mut publishers = Vec::with_capacity(args.publishers);
    for j in 0..args.publishers {
        let i = args.subscribers + j;
        match pub_target.connect(i, &pub_target.user("pub", j)).await {
            Ok(ws) => publishers.push(ws),
            Err(e) => failures.record(format!("publisher: {e}")),
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + args.duration;
    let period = Duration::from_secs_f64(1.0 / args.rate.max(1e-3));
    let mut tasks = Vec::new();
    for (j, ws) in publishers.into_iter().enumerate() {
        let (topic, sent, failures) = (topic.clone(), sent.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            // Drain whatever the server sends (pings are answered as a side effect of reading).
            let reader = tokio::spawn(async move { while stream.next().await.is_some() {} });
            // Stagger the publishers over one period so their messages do not arrive in pairs.
            let offset = period.mul_f64(j as f64 / 16.0).min(period);
            for seq in 0u64.. {
                let due = start + offset + period.mul_f64(seq as f64);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let t = epoch.elapsed().as_micros() as u64;
                let frame = format!(
                    r#"{{"type":"message","topic":"{topic}","data":{{"p":{j},"s":{seq},"t":{t}}}}}"#
                );
                if let Err(e) = sink.send(Message::text(frame)).await {
                    failures.record(format!("publisher send: {e}"));
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            reader.abort();
            sink
        }));
    }
    let mut sinks = Vec::new();
    for task in tasks {
        if let Ok(sink) = task.await {
            sinks.push(sink);
        }
    }
    let publish_secs = start.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let expected = sent * ready;
    // Wait for deliveries in flight: until all arrived, or the grace period is over.
    let grace_end = Instant::now() + args.grace;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss = args.server_pid.and_then(rss_kib);
    let _ = stop_tx.send(true);
    for task in subscribers {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    drop(sinks);
    let received = received.load(Ordering::Relaxed);
    // Deliveries per second over the time from the first publish to the last delivery.
    let start_micros = start.duration_since(epoch).as_micros() as u64;
    let last = last_rx_micros.load(Ordering::Relaxed);
    let window = (last.saturating_sub(start_micros) as f64 / 1e6).max(publish_secs);
    Ok(json!({
        "mode": "fanout",
        "subscribers": ready,
        "subscribers_wanted": args.subscribers,
        "publishers": args.publishers,
        "rate_per_publisher": args.rate,
        "publish_secs": round2(publish_secs),
        "sent": sent,
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "duplicates_or_extra": received.saturating_sub(expected),
        "delivered_per_sec": round2(received as f64 / window.max(1e-9)),
        "latency_us": latencies.summary(),
        "failed": failures.count(),
        "server_rss_kib": rss,
        "first_error": failures.first(),
    }))
}

// ---- churn --------------------------------------------------------------------------------

/// One cycle: connect with a token, wait for `auth_success`, subscribe, close cleanly.
async fn cycle(target: &Target, worker: usize, topic: &str) -> Result<(), String> {
    let user = target.user("churn", worker);
    let mut ws = target.connect(worker, &user).await?;
    target.subscribe(&mut ws, topic).await?;
    let close = async {
        ws.close(None).await.map_err(|e| format!("close: {e}"))?;
        // Read until the server's close frame ends the stream.
        while let Some(msg) = ws.next().await {
            if msg.is_err() {
                break;
            }
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(target.common.connect_timeout, close)
        .await
        .map_err(|_| "close timeout".to_owned())?
}

async fn churn(args: ChurnArgs) -> Result<Value, String> {
    let target = Arc::new(Target::new(args.common.clone()).await?);
    let cycles = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Failures::default());
    let latencies = Arc::new(Latencies::new());
    let start = Instant::now();
    let end = start + args.duration;
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (target, cycles, failures, latencies) = (
            target.clone(),
            cycles.clone(),
            failures.clone(),
            latencies.clone(),
        );
        let topic = format!("{}.w{w}", args.topic);
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let t0 = Instant::now();
                match cycle(&target, w, &topic).await {
                    Ok(()) => {
                        cycles.fetch_add(1, Ordering::Relaxed);
                        latencies.record(w, t0.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        failures.record(e);
                        // Do not spin on a refusing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cycles = cycles.load(Ordering::Relaxed);
    Ok(json!({
        "mode": "churn",
        "concurrency": args.concurrency,
        "duration_secs": round2(secs),
        "cycles": cycles,
        "failed": failures.count(),
        "cycles_per_sec": round2(cycles as f64 / secs.max(1e-9)),
        "cycle_latency_us": latencies.summary(),
        "first_error": failures.first(),
    }))
}

// ---- main ---------------------------------------------------------------------------------

fn main() {
    let cli = Cli::parse();
    let limit = raise_nofile_limit();
    // Deadlines cover a slow ramp (2 ms per connection on top of the mode's own durations).
    let ramp_allowance = |n: usize| Duration::from_millis(2 * n as u64) + Duration::from_secs(60);
    let (mode, deadline) = match &cli.mode {
        Mode::Idle(a) => {
            check_fd_budget(a.connections, limit);
            let d = a.hold + ramp_allowance(a.connections);
            ("idle", a.common.deadline.unwrap_or(d))
        }
        Mode::Fanout(a) => {
            check_fd_budget(a.subscribers + a.publishers, limit);
            let d = a.duration + a.grace + ramp_allowance(a.subscribers + a.publishers);
            ("fanout", a.common.deadline.unwrap_or(d))
        }
        Mode::Churn(a) => {
            check_fd_budget(a.concurrency, limit);
            let d = a.duration + a.common.connect_timeout * 3 + Duration::from_secs(30);
            ("churn", a.common.deadline.unwrap_or(d))
        }
    };
    arm_watchdog(mode, deadline);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.mode {
            Mode::Idle(a) => idle(a).await,
            Mode::Fanout(a) => fanout(a).await,
            Mode::Churn(a) => churn(a).await,
        }
    });
    match result {
        Ok(report) => {
            println!("{report}");
            // Nothing achieved at all is a failed run, whatever the cause.
            let achieved = ["established", "received", "cycles"]
                .iter()
                .filter_map(|k| report.get(*k).and_then(Value::as_u64))
                .any(|v| v > 0);
            // Leave without waiting for thousands of sockets to be torn down one by one.
            std::process::exit(if achieved { 0 } else { 1 });
        }
        Err(e) => {
            println!("{}", json!({"mode": mode, "error": e}));
            std::process::exit(1);
        }
    }
}
