//! `Switchboard::handle_timeout(now)` with 1,000,000 idle, authenticated connections and nothing
//! due, against the cleanup loop users write: every tick, look at every connection
//! (`if now - last_seen > timeout { … }`), over a `HashMap` (the usual registry) and over a `Vec`
//! (the most cache-friendly scan there is).
//!
//! The million connections are built once, outside the timed loops (in `--test` smoke mode, a
//! hundredth of them). They open 20 µs apart over 20 s; the timed calls happen at 20 s, when the
//! earliest deadline (the first ping, 30 s after the first open) is still 10 s away.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use switchboard_benches::fixtures::{bench_config, now_at, scaled, PlainVerifier};
use switchboard_benches::summary::{print_ratio, time_per_iter};
use switchboard_core::{Handshake, Switchboard};

const OPEN_SPACING_NANOS: u64 = 20_000;
const PONG_TIMEOUT_NANOS: u64 = 60_000_000_000;
const PING_INTERVAL_NANOS: u64 = 30_000_000_000;

/// What a hand-written registry typically keeps per connection for its cleanup loop.
struct Conn {
    #[allow(dead_code)] // held like the real thing would, never read by the scan
    user: Box<str>,
    last_seen: u64,
    last_ping: u64,
}

/// The hand-written tick: finds zombies to drop and connections to ping.
fn scan<'a>(
    conns: impl Iterator<Item = (u64, &'a Conn)>,
    now: u64,
    evict: &mut Vec<u64>,
    ping: &mut Vec<u64>,
) {
    for (id, conn) in conns {
        if now.saturating_sub(conn.last_seen) > PONG_TIMEOUT_NANOS {
            evict.push(id);
        } else if now.saturating_sub(conn.last_ping) >= PING_INTERVAL_NANOS {
            ping.push(id);
        }
    }
}

fn handle_timeout(c: &mut Criterion) {
    let n = scaled(1_000_000);
    let last_open = (n as u64 - 1) * OPEN_SPACING_NANOS;
    let now = now_at(last_open + 1);

    let mut sb = Switchboard::new(bench_config(), PlainVerifier, 1);
    let mut map = HashMap::with_capacity(n);
    let mut vec = Vec::with_capacity(n);
    for i in 0..n {
        let at = i as u64 * OPEN_SPACING_NANOS;
        let user = format!("user-{i}@example.com");
        let i32 = i as u32;
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            (i32 >> 16) as u8,
            (i32 >> 8) as u8,
            i32 as u8,
        ));
        let handshake = Handshake {
            token: Some(user.clone()),
            ..Handshake::default()
        };
        sb.open(now_at(at), ip, handshake).expect("open");
        while sb.poll_action().is_some() {}
        let conn = || Conn {
            user: user.clone().into_boxed_str(),
            last_seen: at,
            last_ping: at,
        };
        map.insert(i as u64, conn());
        vec.push((i as u64, conn()));
    }
    // Nothing is due: the call must find that out without looking at the connections.
    sb.handle_timeout(now);
    assert!(sb.poll_action().is_none());
    assert_eq!(sb.stats().connections, n);

    let (mut evict, mut ping) = (Vec::new(), Vec::new());
    let mut group = c.benchmark_group("handle_timeout");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("ours", n), |b| {
        b.iter(|| {
            sb.handle_timeout(black_box(now));
            black_box(sb.poll_action())
        })
    });
    // Scans take milliseconds: fewer samples keep the run short.
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("baseline_hashmap", n), |b| {
        b.iter(|| {
            evict.clear();
            ping.clear();
            let conns = map.iter().map(|(id, c)| (*id, c));
            scan(
                conns,
                black_box(now.instant.as_nanos()),
                &mut evict,
                &mut ping,
            );
            black_box((evict.len(), ping.len()))
        })
    });
    group.bench_function(BenchmarkId::new("baseline_vec", n), |b| {
        b.iter(|| {
            evict.clear();
            ping.clear();
            let conns = vec.iter().map(|(id, c)| (*id, c));
            scan(
                conns,
                black_box(now.instant.as_nanos()),
                &mut evict,
                &mut ping,
            );
            black_box((evict.len(), ping.len()))
        })
    });
    group.finish();

    let ours = time_per_iter(10_000_000, || {
        sb.handle_timeout(black_box(now));
        black_box(sb.poll_action());
    });
    let hashmap = time_per_iter(30, || {
        evict.clear();
        ping.clear();
        let conns = map.iter().map(|(id, c)| (*id, c));
        scan(
            conns,
            black_box(now.instant.as_nanos()),
            &mut evict,
            &mut ping,
        );
    });
    let linear = time_per_iter(30, || {
        evict.clear();
        ping.clear();
        let conns = vec.iter().map(|(id, c)| (*id, c));
        scan(
            conns,
            black_box(now.instant.as_nanos()),
            &mut evict,
            &mut ping,
        );
    });
    print_ratio(
        "handle_timeout",
        &format!("{n} idle vs HashMap scan"),
        ours,
        hashmap,
    );
    print_ratio(
        "handle_timeout",
        &format!("{n} idle vs Vec scan"),
        ours,
        linear,
    );
}

criterion_group!(benches, handle_timeout);
criterion::criterion_main!(benches);
