//! What every scenario shares: the common flags, connecting and authenticating a client, reading
//! the server's frames, counting failures, latency histograms, and the server's RSS.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::auth::{sign_hs256, Claims};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The flags every scenario takes.
#[derive(Args, Debug, Clone)]
pub(crate) struct Common {
    /// WebSocket endpoint, e.g. ws://127.0.0.1:9001/ws.
    #[arg(long)]
    pub(crate) url: String,
    /// HS256 secret shared with the server (tokens are signed here, one distinct user each).
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// Limit on TCP connect + WebSocket upgrade + first server frame, per connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// Connection attempts in flight at once while ramping up.
    #[arg(long, default_value_t = 256)]
    pub(crate) ramp_concurrency: usize,
    /// Loopback source addresses to spread connections over (127.0.0.2 and up); 0: let the
    /// kernel choose.
    #[arg(long, default_value_t = 250)]
    pub(crate) source_addrs: u8,
    /// This process's number when several loadgen processes run at once: keeps user ids distinct.
    #[arg(long, default_value_t = 0)]
    pub(crate) shard: u32,
    /// Hard limit on the whole run; by default derived from the mode's own durations and sizes.
    /// When it passes, loadgen prints a JSON line with `"error"` and exits with status 2.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) deadline: Option<Duration>,
}

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Where to connect and how.
pub(crate) struct Target {
    addr: SocketAddr,
    /// The URL as given, to which `?token=` is appended.
    url: String,
    pub(crate) common: Common,
    /// Token expiry, seconds since the Unix epoch.
    exp: u64,
}

impl Target {
    pub(crate) async fn new(common: Common) -> Result<Self, String> {
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

    pub(crate) fn token(&self, user: &str) -> String {
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
    pub(crate) fn user(&self, role: &str, i: usize) -> String {
        format!("lg{}-{role}-{i}", self.common.shard)
    }

    /// The source address for connection number `i`, when spreading over loopback addresses.
    pub(crate) fn source(&self, i: usize) -> Option<IpAddr> {
        let n = usize::from(self.common.source_addrs);
        (n > 0 && self.addr.ip().is_loopback()).then(|| {
            let last = 2 + (i % n) as u8;
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
        })
    }

    /// TCP connect, WebSocket upgrade with `?token=`, and the `auth_success` frame, all within
    /// `--connect-timeout`.
    pub(crate) async fn connect(&self, i: usize, user: &str) -> Result<Ws, String> {
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
    pub(crate) async fn subscribe(&self, ws: &mut Ws, topic: &str) -> Result<(), String> {
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
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// The type and data of a server message; every other field is skipped.
#[derive(Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(default)]
    pub(crate) data: Option<Stamp>,
}

/// What publishers put in `data`: who, which message, when (µs after the run's epoch).
#[derive(Deserialize)]
pub(crate) struct Stamp {
    pub(crate) t: u64,
}

/// Reads frames until one of type `kind`; an `error`, `auth_error` or close ends the wait.
pub(crate) async fn expect_type(ws: &mut Ws, kind: &str) -> Result<(), String> {
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

/// Reads `ws` until `stop` changes, calling `on_message(sent_at, now)` for every stamped
/// `message` (both in µs after `epoch`); a read error or a close is recorded in `failures`
/// (named by `who`) and ends it.
pub(crate) async fn read_stamped(
    ws: &mut Ws,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    epoch: std::time::Instant,
    failures: &Failures,
    who: &str,
    mut on_message: impl FnMut(u64, u64),
) {
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => return,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return failures.record(format!("{who} read: {e}")),
            None => return failures.record(format!("{who} closed by server")),
        };
        let now = epoch.elapsed().as_micros() as u64;
        if let Ok(Incoming {
            kind,
            data: Some(stamp),
        }) = serde_json::from_str::<Incoming<'_>>(text.as_str())
        {
            if kind == "message" {
                on_message(stamp.t, now);
            }
        }
    }
}

/// Failure counts, and the first error message (the usual cause of all the others).
#[derive(Default)]
pub(crate) struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Failures {
    pub(crate) fn record(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn first(&self) -> Value {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.clone().map_or(Value::Null, Value::String)
    }
}

/// Latencies in microseconds, sharded so that many tasks record without contending.
pub(crate) struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    pub(crate) fn new() -> Self {
        let shards = (0..32)
            .map(|_| Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds")))
            .collect();
        Latencies { shards }
    }

    pub(crate) fn record(&self, shard: usize, micros: u64) {
        let mut h = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        h.saturating_record(micros.max(1));
    }

    pub(crate) fn summary(&self) -> Value {
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

pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Raises the open-file soft limit to the hard limit; returns the limit now in force.
pub(crate) fn raise_nofile_limit() -> u64 {
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
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (utime + stime) a process has used so far, in microseconds (clock-tick resolution,
/// usually 10 ms).
pub(crate) fn cpu_micros(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces: the
    // state (field 3) first, utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&hz| hz > 0)?;
    Some((utime + stime) * 1_000_000 / hz)
}

/// The kernel's count of connections dropped because a listen queue was full
/// (`TcpExt: ListenOverflows` in `/proc/net/netstat`, every socket of this network namespace);
/// each such client retries its SYN about 1 s later.
pub(crate) fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
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
pub(crate) fn check_fd_budget(wanted: usize, limit: u64) {
    if wanted as u64 + 64 > limit {
        eprintln!(
            "loadgen: warning: {wanted} connections need more than the open-file limit ({limit}) \
             allows in one process; split the run over several processes with --shard"
        );
    }
}

/// Ends the process with a JSON error line if the run outlives its deadline, however stuck.
pub(crate) fn arm_watchdog(mode: &'static str, deadline: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        println!(
            "{}",
            json!({"mode": mode, "error": "deadline exceeded", "deadline_secs": deadline.as_secs_f64()})
        );
        std::process::exit(2);
    });
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
