//! Wildcard matching of one published topic against 10, 1,000 and 100,000 subscribed patterns:
//! the core's `TopicTrie::for_each_match` against a linear scan of `Vec<Pattern>` calling
//! `Pattern::matches` (what a server without an index does on every publish).
//!
//! Both sides hold the same patterns (see `fixtures::patterns` for the mix: literals, `*`, `**`,
//! 2 to 5 segments) and match the same 256 topics in turn; each side counts its matches, and the
//! counts are checked equal before timing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use switchboard_benches::fixtures::{patterns, topics};
use switchboard_benches::summary::{print_ratio, time_per_iter};
use switchboard_core::topics::{Pattern, Topic, TopicTrie};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const TOPICS: usize = 256;

fn trie_count(trie: &TopicTrie<u32>, topic: &Topic) -> usize {
    let mut n = 0;
    trie.for_each_match(topic, |k| {
        black_box(k);
        n += 1;
    });
    n
}

fn scan_count(all: &[Pattern], topic: &Topic) -> usize {
    all.iter().filter(|p| p.matches(topic)).count()
}

fn topic_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_match");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let mut ratios = Vec::new();
    for n in SIZES {
        let all = patterns(n, 42);
        let mut trie = TopicTrie::new();
        for (key, pattern) in all.iter().enumerate() {
            trie.insert(pattern, key as u32);
        }
        let published = topics(TOPICS, n, 7);
        let matches: usize = published.iter().map(|t| trie_count(&trie, t)).sum();
        let expected: usize = published.iter().map(|t| scan_count(&all, t)).sum();
        assert_eq!(matches, expected, "the trie and the scan disagree");
        println!(
            "topic_match/{n}: {:.2} matches per topic on average",
            matches as f64 / TOPICS as f64
        );

        // One element = one topic matched against all `n` patterns.
        group.throughput(Throughput::Elements(1));
        if n >= 100_000 {
            // A scan of 100,000 patterns takes milliseconds: fewer samples keep the run short.
            group.sample_size(20);
        }
        let mut i = 0;
        group.bench_function(BenchmarkId::new("ours", n), |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                black_box(trie_count(&trie, &published[i]))
            })
        });
        group.bench_function(BenchmarkId::new("baseline", n), |b| {
            b.iter(|| {
                i = (i + 1) % TOPICS;
                black_box(scan_count(&all, &published[i]))
            })
        });
        let scan_iters = (20_000_000 / n as u64).clamp(50, 200_000);
        let ours = time_per_iter(200_000, || {
            i = (i + 1) % TOPICS;
            black_box(trie_count(&trie, &published[i]));
        });
        let base = time_per_iter(scan_iters, || {
            i = (i + 1) % TOPICS;
            black_box(scan_count(&all, &published[i]));
        });
        ratios.push((n, ours, base));
    }
    group.finish();
    for (n, ours, base) in ratios {
        print_ratio("topic_match", &format!("{n} patterns"), ours, base);
    }
}

criterion_group!(benches, topic_match);
criterion::criterion_main!(benches);
