//! `idle`: open N authenticated connections and hold them; connections established, failures,
//! ramp time, and the server's RSS per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{progress, round2, rss_kib, Common, Failures, Target};

#[derive(Args, Debug)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Connections to open.
    #[arg(short = 'n', long)]
    pub(crate) connections: usize,
    /// Server process to sample VmRSS from (before the ramp and after the hold).
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) hold: Duration,
    /// Subscribe every connection to this topic, and count the messages they receive while
    /// held (`messages_received`): to see a publish made elsewhere, e.g. on another node,
    /// reach them all.
    #[arg(long)]
    pub(crate) topic: Option<String>,
}

/// Runs the scenario; the JSON report.
pub(crate) async fn run(args: IdleArgs) -> Result<Value, String> {
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
