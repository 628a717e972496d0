//! `fanout`: S subscribers on one topic, P publishers at R messages/s each; deliveries per
//! second, latency percentiles, messages lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{progress, read_stamped, round2, rss_kib, Common, Failures, Latencies, Target};

#[derive(Args, Debug)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Subscribing connections.
    #[arg(long)]
    pub(crate) subscribers: usize,
    /// Publishing connections.
    #[arg(long)]
    pub(crate) publishers: usize,
    /// Messages per second per publisher.
    #[arg(long)]
    pub(crate) rate: f64,
    /// How long the publishers publish.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Topic to subscribe and publish to.
    #[arg(long, default_value = "bench.fanout")]
    pub(crate) topic: String,
    /// After the last publish, how long to wait for deliveries still in flight.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub(crate) grace: Duration,
    /// Server process to sample VmRSS from (reported, not divided).
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Cluster mode: spread the subscribers over these WebSocket endpoints (comma-separated,
    /// round-robin) instead of --url.
    #[arg(long, value_delimiter = ',')]
    pub(crate) subscriber_urls: Vec<String>,
    /// Cluster mode: connect the publishers to this endpoint instead of --url.
    #[arg(long)]
    pub(crate) publisher_url: Option<String>,
}

/// Runs the scenario; the JSON report.
pub(crate) async fn run(args: FanoutArgs) -> Result<Value, String> {
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
            read_stamped(
                &mut ws,
                &mut stop,
                epoch,
                &failures,
                "subscriber",
                |sent, now| {
                    received.fetch_add(1, Ordering::Relaxed);
                    last_rx.fetch_max(now, Ordering::Relaxed);
                    latencies.record(i, now.saturating_sub(sent));
                },
            )
            .await;
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
