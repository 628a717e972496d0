//! `Switchboard::publish` to one topic with 1, 1,000 and 100,000 subscribers, draining every
//! `Send` through `poll_action()`, against a naive server that serializes the message once per
//! subscriber (`serde_json::to_vec` per recipient) into its outbox.
//!
//! Throughput is in actions (deliveries) per second. A counting global allocator measures the
//! allocations and bytes allocated per publish on both sides; its two relaxed atomic adds per
//! allocation apply to both sides alike.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use serde::Serialize;
use serde_json::value::RawValue;
use switchboard_benches::fixtures::{bench_config, now_at, scaled, PlainVerifier};
use switchboard_benches::summary::{fmt, print_ratio, time_per_iter};
use switchboard_core::topics::{Pattern, Topic, TopicTrie};
use switchboard_core::{Action, Frame, Handshake, Switchboard};

/// Counts every allocation (and reallocation) made by this process.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TOPIC: &str = "chat.room1";
const DATA: &str = r#"{"text":"hello, room","n":42,"tags":["a","b"]}"#;

/// The ours side: a switchboard whose `subscribers` connections hold `chat.room1`.
fn build_ours(subscribers: usize) -> Switchboard {
    let mut sb = Switchboard::new(bench_config(), PlainVerifier, 1);
    let subscribe = format!(r#"{{"type":"subscribe","topic":"{TOPIC}"}}"#);
    for i in 0..subscribers {
        let i32 = i as u32;
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            (i32 >> 16) as u8,
            (i32 >> 8) as u8,
            i32 as u8,
        ));
        let handshake = Handshake {
            token: Some(format!("user-{i}")),
            ..Handshake::default()
        };
        let id = sb.open(now_at(0), ip, handshake).expect("open");
        sb.handle_frame(now_at(0), id, Frame::Text(&subscribe));
        while sb.poll_action().is_some() {}
    }
    sb
}

fn publish_ours(sb: &mut Switchboard, data: &RawValue) -> usize {
    let n = sb
        .publish(now_at(1), TOPIC, data, None)
        .expect("publish")
        .delivered;
    let mut sent = 0;
    while let Some(action) = sb.poll_action() {
        if let Action::Send { payload, .. } = &action {
            black_box(payload.len());
            sent += 1;
        }
    }
    assert_eq!(sent, n);
    sent
}

/// The naive server: topic -> subscriber ids, an outbox of serialized frames.
struct Naive {
    topics: HashMap<String, Vec<u64>>,
    outbox: VecDeque<(u64, Vec<u8>)>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(rename = "senderId")]
    sender_id: &'a str,
}

/// The same JSON the core sends, built per recipient.
#[derive(Serialize)]
struct OutMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    topic: &'a str,
    data: &'a RawValue,
    metadata: Metadata<'a>,
    timestamp: &'a str,
}

impl Naive {
    fn new(subscribers: usize) -> Self {
        let ids = (0..subscribers as u64).collect();
        Naive {
            topics: HashMap::from([(TOPIC.to_owned(), ids)]),
            outbox: VecDeque::new(),
        }
    }

    fn publish(&mut self, data: &RawValue) -> usize {
        // Formatted once per publish, favouring the baseline (many format it per recipient).
        let timestamp = "2026-11-23T10:00:00.001Z";
        let Some(ids) = self.topics.get(TOPIC) else {
            return 0;
        };
        for &id in ids {
            let msg = OutMessage {
                kind: "message",
                topic: TOPIC,
                data,
                metadata: Metadata {
                    sender_id: "server",
                },
                timestamp,
            };
            let frame = serde_json::to_vec(&msg).expect("serialize");
            self.outbox.push_back((id, frame));
        }
        let mut sent = 0;
        while let Some((id, frame)) = self.outbox.pop_front() {
            black_box((id, frame.len()));
            sent += 1;
        }
        sent
    }
}

/// Allocations and bytes allocated per call of `f`, over `iters` calls.
fn allocs_per_call(iters: u64, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm: capacities reached once are kept
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..iters {
        f();
    }
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let iters = iters as f64;
    ((a1 - a0) as f64 / iters, (b1 - b0) as f64 / iters)
}

fn publish(c: &mut Criterion) {
    let data = RawValue::from_string(DATA.to_owned()).expect("valid json");
    let sizes = [1, scaled(1_000), scaled(100_000)];
    let mut summary = Vec::new();
    let mut group = c.benchmark_group("publish");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in sizes {
        let mut sb = build_ours(n);
        let mut naive = Naive::new(n);
        assert_eq!(publish_ours(&mut sb, &data), n);
        assert_eq!(naive.publish(&data), n);
        group.throughput(Throughput::Elements(n as u64));
        if n >= 10_000 {
            group.sample_size(20);
        }
        group.bench_function(BenchmarkId::new("ours", n), |b| {
            b.iter(|| publish_ours(&mut sb, &data))
        });
        group.bench_function(BenchmarkId::new("baseline", n), |b| {
            b.iter(|| naive.publish(&data))
        });

        let iters = (2_000_000 / n as u64).clamp(20, 200_000);
        let ours = time_per_iter(iters, || {
            publish_ours(&mut sb, &data);
        });
        let base = time_per_iter(iters, || {
            naive.publish(&data);
        });
        let alloc_iters = (1_000_000 / n as u64).clamp(5, 10_000);
        let ours_alloc = allocs_per_call(alloc_iters, || {
            publish_ours(&mut sb, &data);
        });
        let base_alloc = allocs_per_call(alloc_iters, || {
            naive.publish(&data);
        });
        summary.push((n, ours, base, ours_alloc, base_alloc));
    }
    group.finish();

    for &(n, ours, base, (oa, ob), (ba, bb)) in &summary {
        print_ratio("publish", &format!("{n} subscribers"), ours, base);
        println!(
            "ALLOC publish/{n} subscribers: ours {oa:.1} allocs {ob:.0} bytes per publish; \
             baseline {ba:.1} allocs {bb:.0} bytes per publish"
        );
        let per = |d: Duration| d.as_secs_f64() * 1e9 / n as f64;
        println!(
            "RATE publish/{n} subscribers: ours {:.1} M actions/s ({:.1} ns each), \
             baseline {:.1} M/s ({:.1} ns each)",
            1e3 / per(ours),
            per(ours),
            1e3 / per(base),
            per(base)
        );
    }
    breakdown(*sizes.last().unwrap_or(&1));
    if let (Some(first), Some(last)) = (summary.first(), summary.last()) {
        let extra = (last.0 - first.0).max(1) as f64;
        let marginal = |a: Duration, b: Duration| (b.as_secs_f64() - a.as_secs_f64()) * 1e9 / extra;
        println!(
            "MARGINAL publish: cost per extra subscriber (1 -> {}): ours {:.1} ns, baseline {:.1} ns \
             (publish to 1 subscriber: ours {}, baseline {})",
            last.0,
            marginal(first.1, last.1),
            marginal(first.2, last.2),
            fmt(first.1),
            fmt(first.2)
        );
    }
}

/// Where the per-subscriber time goes: the trie walk alone, and the queue of shared payloads
/// alone (push a `Bytes` clone, pop, drop); the rest of ours is the per-recipient registry
/// lookup (slot, generation, once-per-publish stamp) and the larger `Action` entries.
fn breakdown(n: usize) {
    let pattern = Pattern::parse(TOPIC).expect("pattern");
    let topic = Topic::parse(TOPIC).expect("topic");
    let mut trie = TopicTrie::new();
    for key in 0..n as u32 {
        trie.insert(&pattern, key);
    }
    let walk = time_per_iter((2_000_000 / n as u64).max(20), || {
        let mut count = 0u32;
        trie.for_each_match(&topic, |k| count = count.wrapping_add(black_box(k)));
        black_box(count);
    });
    let payload = Bytes::from(vec![b'x'; 120]);
    let mut queue: VecDeque<(u64, Bytes)> = VecDeque::with_capacity(n);
    let enqueue = time_per_iter((2_000_000 / n as u64).max(20), || {
        for id in 0..n as u64 {
            queue.push_back((id, payload.clone()));
        }
        while let Some(item) = queue.pop_front() {
            black_box(&item);
        }
    });
    let per = |d: Duration| d.as_secs_f64() * 1e9 / n as f64;
    println!(
        "BREAKDOWN publish/{n} subscribers, per subscriber: trie walk {:.1} ns, \
         Bytes clone + queue push/pop {:.1} ns (the rest: registry lookup and stamp)",
        per(walk),
        per(enqueue)
    );
}

criterion_group!(benches, publish);
criterion::criterion_main!(benches);
