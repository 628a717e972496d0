//! What the core counts for operators: handshakes by result, closes by code, messages dropped
//! by reason, and histograms of handshake time, fan-out size and outbound backlog.
//!
//! Counting is the core's (deterministic, no clock read: durations come in as inputs);
//! rendering is the exporter's (`switchboard-adapter-kit` writes `/metrics` from
//! [`Switchboard::telemetry`](crate::Switchboard::telemetry) and [`Stats`](crate::Stats)).

mod histogram;

pub use histogram::Histogram;

use std::time::Duration;

use crate::Switchboard;

/// Upper bounds of the handshake-duration histogram, in microseconds (0.5 ms to 5 s).
const HANDSHAKE_MICROS: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Upper bounds of the fan-out histogram, in recipients of one topic publish.
const FAN_OUT_RECIPIENTS: &[u64] = &[
    0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000,
];

/// Upper bounds of the outbound-backlog histogram, in bytes queued for a connection after a
/// frame was queued (1 MiB is the default `max_outbound_bytes`).
const BACKLOG_BYTES: &[u64] = &[
    256, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304,
];

/// Why a message was not delivered, as `switchboard_dropped_total{reason}` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Queued for a connection after its backlog crossed `max_outbound_bytes` (closed 4009).
    SlowConsumer,
    /// Queued for a connection whose transport had already gone.
    ConnectionGone,
    /// A client frame over the inbound rate limit (the connection is closed 4029).
    RateLimited,
    /// A client frame over `max_message_bytes` (the connection is closed 1009).
    TooBig,
    /// A client text frame that is not UTF-8 (the connection is closed 1007).
    InvalidUtf8,
}

impl DropReason {
    /// Every reason, in the order the exporter writes them.
    pub const ALL: [DropReason; 5] = [
        DropReason::SlowConsumer,
        DropReason::ConnectionGone,
        DropReason::RateLimited,
        DropReason::TooBig,
        DropReason::InvalidUtf8,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::ConnectionGone => "connection_gone",
            DropReason::RateLimited => "rate_limited",
            DropReason::TooBig => "too_big",
            DropReason::InvalidUtf8 => "invalid_utf8",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The core's counters and histograms since start. Read-only outside the core.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// (status, count), sorted by status: a handful of distinct statuses.
    handshakes: Vec<(u16, u64)>,
    /// (close code, count), sorted by code: bounded by the close codes that exist.
    closes: Vec<(u16, u64)>,
    dropped: [u64; DropReason::ALL.len()],
    auth_failures: u64,
    tls_failures: u64,
    handshake_micros: Histogram,
    fan_out: Histogram,
    backlog_bytes: Histogram,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            handshakes: Vec::new(),
            closes: Vec::new(),
            dropped: [0; DropReason::ALL.len()],
            auth_failures: 0,
            tls_failures: 0,
            handshake_micros: Histogram::new(HANDSHAKE_MICROS),
            fan_out: Histogram::new(FAN_OUT_RECIPIENTS),
            backlog_bytes: Histogram::new(BACKLOG_BYTES),
        }
    }
}

impl Telemetry {
    /// Upgrade requests by the status they were answered with (101 for an opened WebSocket).
    pub fn handshakes(&self) -> &[(u16, u64)] {
        &self.handshakes
    }

    /// How many upgrade requests were answered with `status`.
    pub fn handshakes_with(&self, status: u16) -> u64 {
        lookup(&self.handshakes, status)
    }

    /// Close frames decided by the core, by close code (evictions are not closes).
    pub fn closes(&self) -> &[(u16, u64)] {
        &self.closes
    }

    /// How many connections the core closed with `code`.
    pub fn closes_with(&self, code: u16) -> u64 {
        lookup(&self.closes, code)
    }

    /// Messages not delivered for this reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Authentications refused in-band (`auth_error`) or at the upgrade (401).
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures
    }

    /// TLS handshakes that failed or timed out (a plain-HTTP client on the TLS port, an
    /// unknown certificate authority, a client too slow): no HTTP answer was possible.
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures
    }

    /// Time from accepting a socket to answering its upgrade request, in microseconds.
    pub fn handshake_micros(&self) -> &Histogram {
        &self.handshake_micros
    }

    /// Recipients per topic publish (presence pushes and remote publishes included).
    pub fn fan_out(&self) -> &Histogram {
        &self.fan_out
    }

    /// A connection's outbound backlog in bytes, observed each time a frame is queued for it.
    pub fn backlog_bytes(&self) -> &Histogram {
        &self.backlog_bytes
    }

    pub(crate) fn handshake(&mut self, status: u16, took: Duration) {
        bump(&mut self.handshakes, status);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.handshake_micros.observe(micros);
    }

    pub(crate) fn close(&mut self, code: u16) {
        bump(&mut self.closes, code);
    }

    pub(crate) fn drop_message(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    pub(crate) fn auth_failed(&mut self) {
        self.auth_failures += 1;
    }

    pub(crate) fn published(&mut self, recipients: usize) {
        self.fan_out.observe(recipients as u64);
    }

    pub(crate) fn queued(&mut self, backlog: usize) {
        self.backlog_bytes.observe(backlog as u64);
    }
}

impl Switchboard {
    /// The counters and histograms since start, for the exporter.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The adapter's TLS handshake with a client failed or timed out (the socket is closed:
    /// no HTTP answer can reach it).
    pub fn tls_handshake_failed(&mut self) {
        self.telemetry.tls_failures += 1;
    }

    /// The adapter answered an upgrade request with `status` (101 once the WebSocket is open,
    /// or the refusal it wrote, whoever decided it), `took` after accepting its socket.
    ///
    /// Every answer to a request for `/ws` counts, and so does every request whose head never
    /// completed (408) or was too large (431), since its path is unknown then.
    pub fn handshake_answered(&mut self, status: u16, took: Duration) {
        self.telemetry.handshake(status, took);
    }
}

fn lookup(counts: &[(u16, u64)], key: u16) -> u64 {
    counts
        .binary_search_by_key(&key, |&(k, _)| k)
        .map_or(0, |i| counts[i].1)
}

fn bump(counts: &mut Vec<(u16, u64)>, key: u16) {
    match counts.binary_search_by_key(&key, |&(k, _)| k) {
        Ok(i) => counts[i].1 += 1,
        Err(i) => counts.insert(i, (key, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_and_closes_are_counted_per_label_in_label_order() {
        let mut t = Telemetry::default();
        t.handshake(401, Duration::from_millis(3));
        t.handshake(101, Duration::from_micros(400));
        t.handshake(401, Duration::from_secs(9));
        t.close(4009);
        t.close(1000);
        assert_eq!(t.handshakes(), &[(101, 1), (401, 2)]);
        assert_eq!(t.handshakes_with(503), 0);
        assert_eq!(t.closes(), &[(1000, 1), (4009, 1)]);
        // 400 µs in the first bucket, 3 ms in the 5 ms one, 9 s over every bound.
        let h = t.handshake_micros();
        assert_eq!((h.counts()[0], h.counts()[3], h.counts()[13]), (1, 1, 1));
    }
}
