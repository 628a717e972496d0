//! `recover`: a reconnect storm with history. N clients subscribe to one topic and keep the
//! stream position of the last message they saw; all drop their TCP connections; M messages are
//! published; then all reconnect at once, each subscribing with `since` its position, and each
//! must get `subscribed` with `recovered: true` and exactly the M missed messages, in order.
//! Meanwhile live subscribers on another topic time a steady publisher, before and during the
//! storm.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{
    cpu_micros, listen_overflows, progress, round2, rss_kib, Common, Failures, Latencies, Target,
    Ws,
};

mod live;

use live::{live_subscribers, Live, Mark};

#[derive(Args, Debug)]
pub(crate) struct RecoverArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Recovering clients.
    #[arg(short = 'n', long, default_value_t = 5000)]
    pub(crate) clients: usize,
    /// Messages published while they are away (the server keeps `--history-size`, default
    /// 100, per topic: beyond that the answer is `recovered: false`).
    #[arg(short = 'm', long, default_value_t = 50)]
    pub(crate) missed: u64,
    /// Topic the recovering clients subscribe to.
    #[arg(long, default_value = "bench.recover")]
    pub(crate) topic: String,
    /// Reconnections in flight at once during the storm; 0: all at once. All at once, the SYNs
    /// that find the server's listen queue full are dropped and retried about 1 s later
    /// (`listen_overflows` in the report counts them).
    #[arg(long, default_value_t = 0)]
    pub(crate) storm_concurrency: usize,
    /// After the drop, how long to wait before publishing, so that the server has seen every
    /// connection go.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) settle: Duration,
    /// Live subscribers on their own topic, timing the live publisher through the storm.
    #[arg(long, default_value_t = 100)]
    pub(crate) live_subscribers: usize,
    /// The live publisher's messages per second.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) live_rate: f64,
    /// The live subscribers' topic.
    #[arg(long, default_value = "bench.live")]
    pub(crate) live_topic: String,
    /// How long live latency is measured before the drop: the quiet baseline.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) quiet: Duration,
    /// Server process to sample: VmRSS before and after the storm, CPU time (utime + stime)
    /// during it.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
}

/// A position in a topic's stream.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Pos {
    offset: u64,
    epoch: String,
}

/// The fields of a server frame this scenario reads; every other field is skipped.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default, borrow)]
    epoch: Option<Cow<'a, str>>,
    #[serde(default)]
    recovered: Option<bool>,
}

impl Frame<'_> {
    fn pos(&self) -> Option<Pos> {
        Some(Pos {
            offset: self.offset?,
            epoch: self.epoch.as_deref()?.to_owned(),
        })
    }
}

/// The next text frame; a close, a read error or the end of the stream is an error.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| format!("read: {e}"))? {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Close(frame) => return Err(format!("closed by server: {frame:?}")),
            _ => {}
        }
    }
    Err("connection ended".to_owned())
}

/// Sends `subscribe` (with `since` when given) and reads until `subscribed`: its position and
/// `recovered`. An `error` frame ends the wait.
async fn subscribe(
    ws: &mut Ws,
    topic: &str,
    since: Option<&Pos>,
) -> Result<(Pos, Option<bool>), String> {
    let mut request = json!({"type": "subscribe", "topic": topic, "id": "s"});
    if let Some(since) = since {
        request["since"] = json!({"offset": since.offset, "epoch": since.epoch});
    }
    ws.send(Message::text(request.to_string()))
        .await
        .map_err(|e| format!("send subscribe: {e}"))?;
    loop {
        let text = next_text(ws).await?;
        let frame: Frame<'_> =
            serde_json::from_str(&text).map_err(|e| format!("bad server frame: {e}"))?;
        match &*frame.kind {
            "subscribed" => {
                let pos = frame
                    .pos()
                    .ok_or_else(|| format!("subscribed without offset/epoch: {text}"))?;
                return Ok((pos, frame.recovered));
            }
            "error" => return Err(format!("server: {text}")),
            _ => {}
        }
    }
}

/// Reads until the message at `pos.offset + 1`; the position of the last message seen.
async fn read_next_message(ws: &mut Ws, pos: &Pos) -> Result<Pos, String> {
    loop {
        let text = next_text(ws).await?;
        let frame: Frame<'_> =
            serde_json::from_str(&text).map_err(|e| format!("bad server frame: {e}"))?;
        if frame.kind == "message" {
            let at = frame
                .pos()
                .ok_or_else(|| format!("message without offset/epoch: {text}"))?;
            if at.epoch == pos.epoch && at.offset == pos.offset + 1 {
                return Ok(at);
            }
            return Err(format!(
                "expected offset {} first, got {text}",
                pos.offset + 1
            ));
        }
    }
}

/// A publisher on the recovering clients' topic: sends a message with an `id` and waits for
/// its `ack`, which carries the position the message got.
struct Publisher {
    ws: Ws,
    topic: String,
    sent: u64,
}

impl Publisher {
    async fn publish(&mut self) -> Result<Pos, String> {
        self.sent += 1;
        let id = format!("p{}", self.sent);
        let frame = json!({"type": "message", "topic": self.topic, "id": id,
                           "data": {"n": self.sent}});
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("publisher send: {e}"))?;
        loop {
            let text = next_text(&mut self.ws).await?;
            let frame: Frame<'_> =
                serde_json::from_str(&text).map_err(|e| format!("bad server frame: {e}"))?;
            match &*frame.kind {
                "ack" if frame.id.as_deref() == Some(id.as_str()) => {
                    return frame
                        .pos()
                        .ok_or_else(|| format!("ack without offset/epoch (history off?): {text}"));
                }
                "error" => return Err(format!("server: {text}")),
                _ => {}
            }
        }
    }
}

/// What went wrong for a recovering client, one count (and first message) per kind.
#[derive(Default)]
struct Errors {
    /// Connect, upgrade, authentication or `subscribe` failed or timed out.
    connect: Failures,
    /// `subscribed` said `recovered: false` (or nothing).
    not_recovered: Failures,
    /// `subscribed` gave another position than the publisher's last `ack`.
    wrong_position: Failures,
    /// A replayed message skipped an offset (or came in another epoch).
    gaps: Failures,
    /// A replayed message repeated (or went back to) an offset.
    duplicates: Failures,
    /// The replay did not complete: read error, close or timeout.
    replay: Failures,
}

impl Errors {
    fn total(&self) -> u64 {
        [
            &self.connect,
            &self.not_recovered,
            &self.wrong_position,
            &self.gaps,
            &self.duplicates,
            &self.replay,
        ]
        .iter()
        .map(|f| f.count())
        .sum()
    }

    fn first(&self) -> Value {
        [
            &self.connect,
            &self.not_recovered,
            &self.wrong_position,
            &self.gaps,
            &self.duplicates,
            &self.replay,
        ]
        .iter()
        .map(|f| f.first())
        .find(|v| !v.is_null())
        .unwrap_or(Value::Null)
    }
}

/// One recovering client's reconnection: connect, subscribe with `since`, read the replay up
/// to `last`. Every failure is counted in `errors`; the open connection on success.
async fn reconnect(
    target: &Target,
    i: usize,
    topic: &str,
    since: &Pos,
    last: &Pos,
    errors: &Errors,
) -> Option<Ws> {
    let user = target.user("rec", i);
    let subscribed = async {
        let mut ws = target.connect(i, &user).await?;
        let reply = tokio::time::timeout(
            target.common.connect_timeout,
            subscribe(&mut ws, topic, Some(since)),
        )
        .await
        .map_err(|_| "subscribe timeout".to_owned())??;
        Ok::<_, String>((ws, reply))
    };
    let (mut ws, (pos, recovered)) = match subscribed.await {
        Ok(ok) => ok,
        Err(e) => {
            errors.connect.record(e);
            return None;
        }
    };
    if recovered != Some(true) {
        errors.not_recovered.record(format!(
            "client {i}: recovered {recovered:?} from {since:?}"
        ));
        return None;
    }
    if pos != *last {
        errors.wrong_position.record(format!(
            "client {i}: subscribed at {pos:?}, the last publish was {last:?}"
        ));
        return None;
    }
    let replay = async {
        let mut at = since.offset;
        while at < last.offset {
            let text = next_text(&mut ws).await?;
            let frame: Frame<'_> =
                serde_json::from_str(&text).map_err(|e| format!("bad server frame: {e}"))?;
            if frame.kind != "message" {
                continue;
            }
            match frame.pos() {
                Some(p) if p.epoch == since.epoch && p.offset == at + 1 => at = p.offset,
                Some(p) if p.epoch == since.epoch && p.offset <= at => {
                    return Ok(Err(Kind::Duplicate(format!(
                        "client {i}: offset {} after {at}",
                        p.offset
                    ))));
                }
                _ => {
                    return Ok(Err(Kind::Gap(format!(
                        "client {i}: expected offset {}, got {text}",
                        at + 1
                    ))));
                }
            }
        }
        Ok::<_, String>(Ok(()))
    };
    match tokio::time::timeout(target.common.connect_timeout, replay).await {
        Ok(Ok(Ok(()))) => Some(ws),
        Ok(Ok(Err(Kind::Gap(e)))) => {
            errors.gaps.record(e);
            None
        }
        Ok(Ok(Err(Kind::Duplicate(e)))) => {
            errors.duplicates.record(e);
            None
        }
        Ok(Err(e)) => {
            errors.replay.record(format!("client {i}: {e}"));
            None
        }
        Err(_) => {
            errors.replay.record(format!("client {i}: replay timeout"));
            None
        }
    }
}

/// A wrong replay.
enum Kind {
    Gap(String),
    Duplicate(String),
}

/// Runs the scenario; the JSON report.
pub(crate) async fn run(args: RecoverArgs) -> Result<Value, String> {
    let target = Arc::new(Target::new(args.common.clone()).await?);
    let n = args.clients;
    let epoch = Instant::now();
    let now_micros = move || epoch.elapsed().as_micros() as u64;
    let rss_start = args.server_pid.and_then(rss_kib);
    let failures = Arc::new(Failures::default());
    let live = Arc::new(Live {
        received: AtomicU64::new(0),
        quiet_from: Mark::new(),
        storm_from: Mark::new(),
        storm_until: Mark::new(),
        quiet: Latencies::new(),
        storm: Latencies::new(),
    });
    // Stops the live subscribers; the live publisher stops first, on its own signal.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_pub_tx, stop_pub_rx) = watch::channel(false);

    // Live subscribers and their publisher, running from now to the end.
    let (live_ready, live_tasks) = live_subscribers(
        &target,
        args.live_subscribers,
        &args.live_topic,
        &live,
        epoch,
        &stop_rx,
        &failures,
    )
    .await;
    let live_sent = Arc::new(AtomicU64::new(0));
    let live_publisher = {
        let ws = target
            .connect(n + args.live_subscribers, &target.user("livepub", 0))
            .await
            .map_err(|e| format!("live publisher: {e}"))?;
        let (topic, sent, failures) =
            (args.live_topic.clone(), live_sent.clone(), failures.clone());
        let period = Duration::from_secs_f64(1.0 / args.live_rate.max(1e-3));
        let mut stop = stop_pub_rx;
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let reader = tokio::spawn(async move { while stream.next().await.is_some() {} });
            let start = tokio::time::Instant::now();
            for seq in 0u64.. {
                tokio::select! {
                    _ = stop.changed() => break,
                    () = tokio::time::sleep_until(start + period.mul_f64(seq as f64)) => {}
                }
                let t = now_micros();
                let frame = format!(
                    r#"{{"type":"message","topic":"{topic}","data":{{"s":{seq},"t":{t}}}}}"#
                );
                if let Err(e) = sink.send(Message::text(frame)).await {
                    failures.record(format!("live publisher send: {e}"));
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            reader.abort();
        })
    };

    // The recovering clients: connect and subscribe, noting the stream position.
    let ramp = Arc::new(Semaphore::new(args.common.ramp_concurrency.max(1)));
    let bar = progress(n as u64, "subscribing");
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = ramp
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (target, topic, bar) = (target.clone(), args.topic.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let user = target.user("rec", i);
            let result = async {
                let mut ws = target.connect(i, &user).await?;
                let (pos, _) = tokio::time::timeout(
                    target.common.connect_timeout,
                    subscribe(&mut ws, &topic, None),
                )
                .await
                .map_err(|_| "subscribe timeout".to_owned())??;
                Ok::<_, String>((ws, pos))
            }
            .await;
            bar.inc(1);
            result
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok(client) => clients.push(client),
            Err(e) => failures.record(format!("initial subscribe: {e}")),
        }
    }
    bar.finish_and_clear();
    let subscribed = clients.len();

    // One message that they all see: each client's position is then the one it carried.
    let pub_ws = target
        .connect(n + args.live_subscribers + 1, &target.user("recpub", 0))
        .await
        .map_err(|e| format!("publisher: {e}"))?;
    let mut publisher = Publisher {
        ws: pub_ws,
        topic: args.topic.clone(),
        sent: 0,
    };
    let first = publisher.publish().await?;
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, (mut ws, pos)) in clients.into_iter().enumerate() {
        let timeout = args.common.connect_timeout;
        tasks.push(tokio::spawn(async move {
            let seen = tokio::time::timeout(timeout, read_next_message(&mut ws, &pos))
                .await
                .map_err(|_| format!("client {i}: no message after subscribing"))??;
            Ok::<_, String>((i, ws, seen))
        }));
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok((i, ws, seen)) if seen == first => clients.push((i, ws, seen)),
            Ok((i, _, seen)) => {
                failures.record(format!("client {i} saw {seen:?}, published {first:?}"));
            }
            Err(e) => failures.record(e),
        }
    }
    eprintln!(
        "loadgen recover: {}/{n} subscribed and saw {first:?}; {live_ready}/{} live; quiet {:?}",
        clients.len(),
        args.live_subscribers,
        args.quiet
    );

    // The quiet baseline, then every recovering client drops its TCP connection.
    live.quiet_from.set(now_micros());
    tokio::time::sleep(args.quiet).await;
    let positions: Vec<(usize, Pos)> = clients
        .into_iter()
        .map(|(i, ws, seen)| {
            drop(ws);
            (i, seen)
        })
        .collect();
    tokio::time::sleep(args.settle).await;

    // The missed messages.
    let mut last = first.clone();
    for _ in 0..args.missed {
        last = publisher.publish().await?;
    }
    if last.epoch != first.epoch || last.offset != first.offset + args.missed {
        return Err(format!(
            "the publisher's acks went from {first:?} to {last:?} over {} messages",
            args.missed
        ));
    }

    // The storm: all reconnect at once (or --storm-concurrency at a time).
    let rss_before = args.server_pid.and_then(rss_kib);
    let cpu_before = args.server_pid.and_then(cpu_micros);
    let overflows_before = listen_overflows();
    let errors = Arc::new(Errors::default());
    let done = Arc::new(Latencies::new());
    let last = Arc::new(last);
    let topic: Arc<str> = args.topic.clone().into();
    let gate =
        (args.storm_concurrency > 0).then(|| Arc::new(Semaphore::new(args.storm_concurrency)));
    let bar = progress(positions.len() as u64, "recovering");
    let storm_start = Instant::now();
    live.storm_from.set(now_micros());
    let mut tasks = Vec::with_capacity(positions.len());
    for (i, since) in positions {
        let (target, topic, last, errors, done, gate, bar) = (
            target.clone(),
            topic.clone(),
            last.clone(),
            errors.clone(),
            done.clone(),
            gate.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = match gate {
                Some(gate) => Some(gate.acquire_owned().await.ok()?),
                None => None,
            };
            let ws = reconnect(&target, i, &topic, &since, &last, &errors).await;
            drop(permit);
            let after = storm_start.elapsed();
            bar.inc(1);
            ws.map(|ws| {
                done.record(i, after.as_micros() as u64);
                (ws, after)
            })
        }));
    }
    let mut recovered = Vec::with_capacity(tasks.len());
    let mut storm_secs = 0.0f64;
    for task in tasks {
        if let Some((ws, after)) = task.await.map_err(|e| e.to_string())? {
            storm_secs = storm_secs.max(after.as_secs_f64());
            recovered.push(ws);
        }
    }
    let storm_wall = storm_start.elapsed().as_secs_f64();
    live.storm_until.set(now_micros());
    let cpu_after = args.server_pid.and_then(cpu_micros);
    let overflows = listen_overflows()
        .zip(overflows_before)
        .map(|(after, before)| after.saturating_sub(before));
    let rss_after = args.server_pid.and_then(rss_kib);
    bar.finish_and_clear();

    // Live messages sent during the storm have a moment to arrive, then everything stops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_pub_tx.send(true);
    let _ = live_publisher.await;
    let live_sent = live_sent.load(Ordering::Relaxed);
    let expected = live_sent * live_ready;
    let grace_end = Instant::now() + Duration::from_secs(3);
    while live.received.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    for task in live_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let live_received = live.received.load(Ordering::Relaxed);
    let storm_cpu = cpu_before.zip(cpu_after).map(|(a, b)| b.saturating_sub(a));
    let count = recovered.len();
    drop(recovered);
    Ok(json!({
        "mode": "recover",
        "clients": n,
        "subscribed": subscribed,
        "missed": args.missed,
        "recovered": count,
        "errors": errors.total(),
        "errors_by_kind": {
            "connect": errors.connect.count(),
            "not_recovered": errors.not_recovered.count(),
            "wrong_position": errors.wrong_position.count(),
            "gaps": errors.gaps.count(),
            "duplicates": errors.duplicates.count(),
            "replay": errors.replay.count(),
        },
        "storm_secs": round2(storm_secs),
        "storm_wall_secs": round2(storm_wall),
        "recovered_after_us": done.summary(),
        "listen_overflows": overflows,
        "server_rss_start_kib": rss_start,
        "server_rss_before_storm_kib": rss_before,
        "server_rss_after_storm_kib": rss_after,
        "server_cpu_storm_ms": storm_cpu.map(|c| round2(c as f64 / 1e3)),
        "server_cpu_per_client_us": storm_cpu
            .filter(|_| count > 0)
            .map(|c| round2(c as f64 / count as f64)),
        "live": {
            "subscribers": live_ready,
            "rate": args.live_rate,
            "sent": live_sent,
            "expected": expected,
            "received": live_received,
            "lost": expected.saturating_sub(live_received),
            "quiet_latency_us": live.quiet.summary(),
            "storm_latency_us": live.storm.summary(),
        },
        "failed": failures.count(),
        "first_error": errors.first(),
        "first_other_error": failures.first(),
    }))
}
