//! Inputs shared by the benches: a fixed clock, a verifier that costs nothing, a deterministic
//! random source and a realistic mix of topic patterns.

use switchboard_core::auth::{AuthError, Claims, Verifier};
use switchboard_core::topics::{Pattern, Topic};
use switchboard_core::{Config, Instant, Now};

/// Wall-clock milliseconds of every bench's `Now` (2026-11-23); tokens expire an hour later.
pub const UNIX_MILLIS: u64 = 1_795_428_000_000;

/// The moment `at_nanos` after the benches' epoch, on both clocks.
#[must_use]
pub fn now_at(at_nanos: u64) -> Now {
    Now::new(
        Instant::from_nanos(at_nanos),
        UNIX_MILLIS + at_nanos / 1_000_000,
    )
}

/// The core's defaults, with the per-IP cap and the inbound rate limit lifted: the benches open
/// many connections from few addresses and are not measuring the limiter.
#[must_use]
pub fn bench_config() -> Config {
    let mut config = Config::default();
    config.max_connections_per_ip = u32::MAX;
    config.max_messages_per_sec = 0;
    config
}

/// A verifier whose "token" is the user id itself.
///
/// The registry and timer benches use it so that they measure the switchboard, not HMAC-SHA256
/// and base64 (a real HS256 check costs a few microseconds and would hide everything else; the
/// baselines they are compared with do no token check at all).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainVerifier;

impl Verifier for PlainVerifier {
    fn verify(&self, token: &str, _now_unix_millis: u64) -> Result<Claims, AuthError> {
        Ok(Claims {
            sub: token.to_owned(),
            exp: UNIX_MILLIS / 1000 + 3600,
            device: None,
            topics: None,
            info: None,
        })
    }
}

/// xorshift64*: deterministic, dependency-free inputs (same patterns on every run and machine).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// First segments: the namespaces an application typically has.
const NAMESPACES: [&str; 8] = [
    "chat", "orders", "prices", "users", "games", "iot", "alerts", "feeds",
];

/// A literal segment. Its vocabulary grows with the pattern count, as a real application with
/// more subscriptions has more rooms, symbols and devices.
fn literal(rng: &mut Rng, vocabulary: u64) -> String {
    format!("s{}", rng.below(vocabulary))
}

/// `n` distinct subscription patterns, a realistic mix: 2 to 5 segments under one of eight
/// namespaces; about 70 % literals only (`chat.s12.s7`), 20 % with a `*` in one middle or last
/// position (`prices.*.s3`), 10 % ending in `**` (`iot.s40.**`).
#[must_use]
pub fn patterns(n: usize, seed: u64) -> Vec<Pattern> {
    let mut rng = Rng::new(seed);
    // Enough literals per position that `n` distinct patterns exist, few enough that topics
    // drawn from the same vocabulary match some of them.
    let vocabulary = ((n as f64).sqrt() as u64).max(4);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let depth = 2 + rng.below(4) as usize;
        let mut segs: Vec<String> = Vec::with_capacity(depth);
        segs.push(NAMESPACES[rng.below(NAMESPACES.len() as u64) as usize].to_owned());
        for _ in 1..depth {
            segs.push(literal(&mut rng, vocabulary));
        }
        match rng.below(10) {
            0 => {
                let last = segs.len() - 1;
                segs[last] = "**".to_owned();
            }
            1 | 2 => {
                let at = 1 + rng.below(depth as u64 - 1) as usize;
                segs[at] = "*".to_owned();
            }
            _ => {}
        }
        let text = segs.join(".");
        if seen.insert(text.clone()) {
            out.push(Pattern::parse(&text).expect("generated patterns are valid"));
        }
    }
    out
}

/// `n` concrete topics drawn like [`patterns`] (same seed space, different stream), so that a
/// typical topic matches a handful of the patterns.
#[must_use]
pub fn topics(n: usize, pattern_count: usize, seed: u64) -> Vec<Topic> {
    let mut rng = Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    let vocabulary = ((pattern_count as f64).sqrt() as u64).max(4);
    (0..n)
        .map(|_| {
            let depth = 2 + rng.below(4) as usize;
            let mut segs = vec![NAMESPACES[rng.below(NAMESPACES.len() as u64) as usize].to_owned()];
            for _ in 1..depth {
                segs.push(literal(&mut rng, vocabulary));
            }
            Topic::parse(&segs.join(".")).expect("generated topics are valid")
        })
        .collect()
}

/// Whether criterion runs in smoke mode (`cargo bench -- --test`): each bench once, for CI.
/// The big fixtures (a million connections) are then built at a hundredth of their size, since
/// building them is what would take the time, and nothing is measured in that mode.
#[must_use]
pub fn smoke_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// `full`, or `full / 100` (at least 1) in [`smoke_mode`].
#[must_use]
pub fn scaled(full: usize) -> usize {
    if smoke_mode() {
        (full / 100).max(1)
    } else {
        full
    }
}
