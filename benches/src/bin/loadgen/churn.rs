//! `churn`: C workers doing connect / auth / subscribe / close cycles; cycles per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::{round2, Common, Failures, Latencies, Target};

#[derive(Args, Debug)]
pub(crate) struct ChurnArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Workers, each running cycles back to back.
    #[arg(long)]
    pub(crate) concurrency: usize,
    /// How long to run cycles.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Topic each cycle subscribes to (suffixed with the worker number).
    #[arg(long, default_value = "bench.churn")]
    pub(crate) topic: String,
}

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

/// Runs the scenario; the JSON report.
pub(crate) async fn run(args: ChurnArgs) -> Result<Value, String> {
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
