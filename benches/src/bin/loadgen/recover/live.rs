//! The live side of `recover`: subscribers on another topic that time a steady publisher's
//! messages, before the drop and during the storm.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{read_stamped, Failures, Latencies, Target};

/// Microseconds after the run's epoch; `u64::MAX` until set.
pub(super) struct Mark(AtomicU64);

impl Mark {
    pub(super) fn new() -> Self {
        Mark(AtomicU64::new(u64::MAX))
    }
    pub(super) fn set(&self, micros: u64) {
        self.0.store(micros, Ordering::Relaxed);
    }
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Live latency, by when each message was sent: in the quiet window before the drop, or
/// during the storm (from its start until every client finished); others are not timed.
pub(super) struct Live {
    pub(super) received: AtomicU64,
    pub(super) quiet_from: Mark,
    pub(super) storm_from: Mark,
    pub(super) storm_until: Mark,
    pub(super) quiet: Latencies,
    pub(super) storm: Latencies,
}

impl Live {
    fn record(&self, shard: usize, sent_at: u64, now: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let latency = now.saturating_sub(sent_at);
        let window = if sent_at < self.quiet_from.get() {
            None
        } else if sent_at < self.storm_from.get() {
            Some(&self.quiet)
        } else if sent_at <= self.storm_until.get() {
            Some(&self.storm)
        } else {
            None
        };
        if let Some(window) = window {
            window.record(shard, latency);
        }
    }
}

/// Connects and subscribes `n` live subscribers to `topic` (at most `concurrency` at once);
/// each then times every stamped message until `stop`. Returns how many are ready.
pub(super) async fn live_subscribers(
    target: &Arc<Target>,
    n: usize,
    topic: &str,
    live: &Arc<Live>,
    epoch: Instant,
    stop: &watch::Receiver<bool>,
    failures: &Arc<Failures>,
) -> (u64, Vec<JoinHandle<()>>) {
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n.max(1));
    for i in 0..n {
        let (target, live, ready, failures, ready_tx) = (
            target.clone(),
            live.clone(),
            ready.clone(),
            failures.clone(),
            ready_tx.clone(),
        );
        let topic = topic.to_owned();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let user = target.user("live", i);
            let result = match target.connect(i, &user).await {
                Ok(mut ws) => target.subscribe(&mut ws, &topic).await.map(|()| ws),
                Err(e) => Err(e),
            };
            let mut ws = match result {
                Ok(ws) => {
                    ready.fetch_add(1, Ordering::Relaxed);
                    drop(ready_tx);
                    ws
                }
                Err(e) => {
                    drop(ready_tx);
                    return failures.record(format!("live subscriber: {e}"));
                }
            };
            read_stamped(
                &mut ws,
                &mut stop,
                epoch,
                &failures,
                "live subscriber",
                |sent, now| live.record(i, sent, now),
            )
            .await;
        }));
    }
    // Every task drops its sender once connected or failed: the channel closes when all have.
    drop(ready_tx);
    while ready_rx.recv().await.is_some() {}
    (ready.load(Ordering::Relaxed), tasks)
}
