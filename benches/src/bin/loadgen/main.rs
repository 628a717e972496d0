//! `loadgen`: drives any server that speaks Switchboard's wire protocol over real sockets.
//!
//! Four modes, each bounded in time and count, each ending with one JSON line of figures on
//! stdout (progress goes to stderr):
//!
//! - `idle`: open N authenticated connections and hold them; connections established, failures,
//!   ramp time, and the server's RSS per connection (from `/proc/PID/status`).
//! - `fanout`: S subscribers on one topic, P publishers at R messages/s each; deliveries per
//!   second, latency percentiles (HDR histogram), messages lost.
//! - `churn`: C workers doing connect / auth / subscribe / close cycles; cycles per second.
//! - `recover`: N clients drop their connections, M messages are published on their topic, and
//!   all reconnect at once with `since`; time until all recovered, errors (not recovered, gaps,
//!   duplicates, connect failures), server RSS and CPU per client, live latency meanwhile.
//!
//! One scenario a file; what they share (flags, connecting, failures, histograms, `/proc`
//! samples) is in `common.rs`.

mod churn;
mod common;
mod fanout;
mod idle;
mod recover;

use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use churn::ChurnArgs;
use common::{arm_watchdog, check_fd_budget, raise_nofile_limit};
use fanout::FanoutArgs;
use idle::IdleArgs;
use recover::RecoverArgs;

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
    /// N clients drop their connections, M messages are published, all reconnect at once with
    /// `since`: recovery time and errors, server RSS and CPU, live latency during the storm.
    Recover(RecoverArgs),
}

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
        Mode::Recover(a) => {
            check_fd_budget(a.clients + a.live_subscribers + 2, limit);
            let d = a.quiet
                + a.settle
                + a.common.connect_timeout * 3
                + ramp_allowance(2 * a.clients + a.live_subscribers);
            ("recover", a.common.deadline.unwrap_or(d))
        }
    };
    arm_watchdog(mode, deadline);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.mode {
            Mode::Idle(a) => idle::run(a).await,
            Mode::Fanout(a) => fanout::run(a).await,
            Mode::Churn(a) => churn::run(a).await,
            Mode::Recover(a) => recover::run(a).await,
        }
    });
    match result {
        Ok(report) => {
            println!("{report}");
            // Nothing achieved at all is a failed run, whatever the cause.
            let achieved = ["established", "received", "cycles", "recovered"]
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
