//! Connect/auth/close cycles and user lookups on a switchboard holding 10,000 users, against the
//! registry users commonly write: `Arc<RwLock<HashMap<UserId, Vec<Sender>>>>`.
//!
//! Tokens: the switchboard verifies with [`PlainVerifier`] (the token is the user id), so the
//! figures are the registry's, not HMAC-SHA256's; the baseline checks no token either.
//!
//! What one "cycle" does on each side:
//! - ours: `open` with a handshake token (slab insert, per-IP count, user index, session policy,
//!   timer entry, `auth_success` frame serialized, presence online), drain the actions,
//!   `handle_closed` (indexes, presence offline), drain again;
//! - baseline: write-lock, push a `Sender` under the user id; write-lock, find it again with
//!   `same_channel`, remove it, drop the user's entry when empty. The channel itself is created
//!   once outside the loop (the cycle registers a clone), since every server, ours included,
//!   pays for a per-connection queue in its transport layer, not in its registry.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, BenchmarkId, Criterion};
use switchboard_benches::fixtures::{bench_config, now_at, PlainVerifier};
use switchboard_benches::summary::{fmt, print_ratio, time_per_iter};
use switchboard_core::{Handshake, Switchboard};
use tokio::sync::mpsc;

/// Users online while the cycles and lookups run.
const USERS: usize = 10_000;
/// Distinct users that the cycles connect and disconnect (not among the online ones).
const CHURN_USERS: usize = 10_000;

type Baseline = Arc<RwLock<HashMap<String, Vec<mpsc::Sender<Bytes>>>>>;

fn ip(i: usize) -> IpAddr {
    let i = i as u32;
    IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8))
}

fn online_ids() -> Vec<String> {
    (0..USERS)
        .map(|i| format!("user-{i}@example.com"))
        .collect()
}

fn churn_ids() -> Vec<String> {
    (0..CHURN_USERS)
        .map(|i| format!("churn-{i}@example.com"))
        .collect()
}

fn build_ours(users: &[String]) -> Switchboard {
    let mut sb = Switchboard::new(bench_config(), PlainVerifier, 1);
    for (i, user) in users.iter().enumerate() {
        let handshake = Handshake {
            token: Some(user.clone()),
            ..Handshake::default()
        };
        sb.open(now_at(0), ip(i), handshake).expect("open");
        while sb.poll_action().is_some() {}
    }
    sb
}

/// The baseline, with its 10,000 users, and the receivers it must keep alive.
fn build_baseline(users: &[String]) -> (Baseline, Vec<mpsc::Receiver<Bytes>>) {
    let mut map = HashMap::new();
    let mut receivers = Vec::new();
    for user in users {
        let (tx, rx) = mpsc::channel(64);
        map.insert(user.clone(), vec![tx]);
        receivers.push(rx);
    }
    (Arc::new(RwLock::new(map)), receivers)
}

fn cycle_ours(sb: &mut Switchboard, user: &str, ip: IpAddr) {
    let handshake = Handshake {
        token: Some(user.to_owned()),
        ..Handshake::default()
    };
    let id = sb.open(now_at(0), ip, handshake).expect("open");
    while let Some(action) = sb.poll_action() {
        black_box(action);
    }
    sb.handle_closed(now_at(0), id);
    while let Some(action) = sb.poll_action() {
        black_box(action);
    }
}

fn cycle_baseline(registry: &Baseline, user: &str, tx: &mpsc::Sender<Bytes>) {
    registry
        .write()
        .expect("lock")
        .entry(user.to_owned())
        .or_default()
        .push(tx.clone());
    let mut map = registry.write().expect("lock");
    if let Some(senders) = map.get_mut(user) {
        senders.retain(|s| !s.same_channel(tx));
        if senders.is_empty() {
            map.remove(user);
        }
    }
}

fn registry(c: &mut Criterion) {
    let online = online_ids();
    let churn = churn_ids();
    let mut sb = build_ours(&online);
    let (baseline, _receivers) = build_baseline(&online);
    let (churn_tx, _churn_rx) = mpsc::channel::<Bytes>(64);

    let mut group = c.benchmark_group("registry");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    let mut i = 0;
    group.bench_function(BenchmarkId::new("ours", "cycle"), |b| {
        b.iter(|| {
            i = (i + 1) % CHURN_USERS;
            cycle_ours(&mut sb, &churn[i], ip(USERS + i));
        })
    });
    group.bench_function(BenchmarkId::new("baseline", "cycle"), |b| {
        b.iter(|| {
            i = (i + 1) % CHURN_USERS;
            cycle_baseline(&baseline, &churn[i], &churn_tx);
        })
    });
    group.bench_function(BenchmarkId::new("ours", "user_connections"), |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(sb.user_connections(black_box(&online[i])).len())
        })
    });
    group.bench_function(BenchmarkId::new("baseline", "user_connections"), |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            let map = baseline.read().expect("lock");
            black_box(map.get(black_box(&online[i])).map_or(0, Vec::len))
        })
    });
    group.bench_function(BenchmarkId::new("ours", "is_online"), |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(sb.is_online(black_box(&online[i])))
        })
    });
    group.bench_function(BenchmarkId::new("baseline", "is_online"), |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            let map = baseline.read().expect("lock");
            black_box(
                map.get(black_box(&online[i]))
                    .is_some_and(|v| !v.is_empty()),
            )
        })
    });
    group.finish();

    let ours = time_per_iter(200_000, || {
        i = (i + 1) % CHURN_USERS;
        cycle_ours(&mut sb, &churn[i], ip(USERS + i));
    });
    let base = time_per_iter(200_000, || {
        i = (i + 1) % CHURN_USERS;
        cycle_baseline(&baseline, &churn[i], &churn_tx);
    });
    print_ratio("registry", "cycle", ours, base);
    // Where the cycle's time goes: the same cycle without a token (no session, no user index,
    // no presence, no `auth_success` frame) leaves the slab, per-IP count and timer entry.
    let anonymous = time_per_iter(200_000, || {
        i = (i + 1) % CHURN_USERS;
        let id = sb
            .open(now_at(0), ip(USERS + i), Handshake::default())
            .expect("open");
        while let Some(action) = sb.poll_action() {
            black_box(action);
        }
        sb.handle_closed(now_at(0), id);
        while let Some(action) = sb.poll_action() {
            black_box(action);
        }
    });
    println!(
        "BREAKDOWN registry/cycle: ours without a token (slab, per-IP count, timer entry) {}; \
         authentication, user index, presence and the auth_success frame add {}",
        fmt(anonymous),
        fmt(ours.saturating_sub(anonymous))
    );
    let ours = time_per_iter(1_000_000, || {
        i = (i + 1) % USERS;
        black_box(sb.user_connections(black_box(&online[i])).len());
    });
    let base = time_per_iter(1_000_000, || {
        i = (i + 1) % USERS;
        let map = baseline.read().expect("lock");
        black_box(map.get(black_box(&online[i])).map_or(0, Vec::len));
    });
    print_ratio("registry", "user_connections", ours, base);
    let ours = time_per_iter(1_000_000, || {
        i = (i + 1) % USERS;
        black_box(sb.is_online(black_box(&online[i])));
    });
    let base = time_per_iter(1_000_000, || {
        i = (i + 1) % USERS;
        let map = baseline.read().expect("lock");
        black_box(
            map.get(black_box(&online[i]))
                .is_some_and(|v| !v.is_empty()),
        );
    });
    print_ratio("registry", "is_online", ours, base);
}

criterion_group!(benches, registry);
criterion::criterion_main!(benches);
