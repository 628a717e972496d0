//! `/metrics`: the core's counts and the adapter's gauges in the OpenMetrics text format,
//! rendered by `prometheus-client` from a snapshot taken between inputs.
//!
//! The core counts (its [`Stats`] and [`Telemetry`]); this module only renders, so that both
//! binaries expose the same families with the same names, and adds the standard `process_*`
//! figures and a build-info gauge.

mod process;

pub use process::ProcessStats;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use switchboard_core::http::HttpResponse;
use switchboard_core::telemetry::{DropReason, Histogram, Telemetry};
use switchboard_core::{Stats, Switchboard};

/// `Content-Type` of the OpenMetrics text format, which Prometheus scrapes natively.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Handshake results always present (at 0 until seen), so that `rate()` over them works
/// from the first scrape.
const HANDSHAKE_RESULTS: [u16; 10] = [101, 400, 401, 403, 405, 408, 426, 429, 431, 503];

/// Close codes always present: the ones PROTOCOL.md's table gives the server.
const CLOSE_CODES: [u16; 11] = [
    1000, 1001, 1007, 1008, 1009, 1011, 4001, 4003, 4008, 4009, 4029,
];

/// What only the adapter knows, named alike in both.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct AdapterGauges {
    /// Which adapter serves: `tokio` or `mio` (the build-info label).
    pub adapter: &'static str,
    /// Bytes queued for clients and not yet written to their sockets.
    pub outbound_backlog_bytes: u64,
    /// WebSocket connections held, in their upgrade or open (what `--max-connections` caps).
    pub websockets: u64,
}

impl AdapterGauges {
    /// The gauges of adapter `adapter` (`tokio` or `mio`).
    pub fn new(adapter: &'static str, outbound_backlog_bytes: u64, websockets: u64) -> Self {
        AdapterGauges {
            adapter,
            outbound_backlog_bytes,
            websockets,
        }
    }
}

/// The `/metrics` answer: every family with HELP and TYPE, counters ending in `_total`.
pub fn metrics_response(sb: &Switchboard, adapter: AdapterGauges) -> HttpResponse {
    HttpResponse::with_body(200, OPENMETRICS_TEXT, render(sb, adapter))
}

/// The exposition text (OpenMetrics, ending in `# EOF`).
pub fn render(sb: &Switchboard, adapter: AdapterGauges) -> String {
    let snapshot = Snapshot {
        stats: sb.stats(),
        draining: sb.is_draining(),
        telemetry: sb.telemetry().clone(),
        adapter,
        process: ProcessStats::of_self(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail, and every name below is valid.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Everything one scrape shows, owned (a collector outlives the borrow of the core).
#[derive(Debug)]
struct Snapshot {
    stats: Stats,
    draining: bool,
    telemetry: Telemetry,
    adapter: AdapterGauges,
    process: Option<ProcessStats>,
}

impl Collector for Snapshot {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let t = &self.telemetry;
        let gauges: [(&str, &str, u64); 12] = [
            (
                "switchboard_connections",
                "Open WebSocket connections, authenticated or not.",
                s.connections as u64,
            ),
            (
                "switchboard_authenticated_connections",
                "Authenticated WebSocket connections.",
                s.authenticated as u64,
            ),
            (
                "switchboard_online_users",
                "Users with at least one authenticated connection.",
                s.users as u64,
            ),
            (
                "switchboard_subscriptions",
                "Topic subscriptions (pattern, connection).",
                s.subscriptions as u64,
            ),
            (
                "switchboard_topics",
                "Distinct subscribed topic patterns.",
                s.topics as u64,
            ),
            (
                "switchboard_draining",
                "1 while the server drains for shutdown, else 0.",
                u64::from(self.draining),
            ),
            (
                "switchboard_nodes",
                "Live nodes of the cluster, this one included (1 standalone).",
                s.nodes as u64,
            ),
            (
                "switchboard_history_streams",
                "Topic streams held for history and recovery.",
                s.history_streams as u64,
            ),
            (
                "switchboard_history_messages",
                "Messages kept for history and recovery over all topics.",
                s.history_messages as u64,
            ),
            (
                "switchboard_history_bytes",
                "Bytes of the kept message frames (bounded by --history-max-bytes).",
                s.history_bytes as u64,
            ),
            (
                "switchboard_outbound_backlog_bytes",
                "Bytes queued for clients and not yet written to their sockets.",
                self.adapter.outbound_backlog_bytes,
            ),
            (
                "switchboard_websockets",
                "WebSocket connections held by the adapter, in their handshake or open.",
                self.adapter.websockets,
            ),
        ];
        for (name, help, value) in &gauges {
            out.encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(value)?;
        }
        let counters: [(&str, &str, u64); 8] = [
            (
                "switchboard_connections_opened",
                "Connections opened since start.",
                s.opened_total,
            ),
            (
                "switchboard_connections_rejected",
                "Upgrades refused at open (per-IP limit, draining, bad handshake or token).",
                s.rejected_total,
            ),
            (
                "switchboard_connections_evicted",
                "Zombie connections evicted for not answering pings.",
                s.evicted_total,
            ),
            (
                "switchboard_connections_replaced",
                "Connections replaced by the session policy (close 4001).",
                s.replaced_total,
            ),
            (
                "switchboard_frames_received",
                "Data frames received from clients.",
                s.frames_in_total,
            ),
            (
                "switchboard_deliveries",
                "Messages handed to connections' outbound queues.",
                s.sends_total,
            ),
            (
                "switchboard_auth_failures",
                "Authentications refused, at the upgrade (401) or in-band (auth_error).",
                t.auth_failures(),
            ),
            (
                "switchboard_tls_handshake_failures",
                "TLS handshakes that failed or timed out (no HTTP answer was possible).",
                t.tls_failures(),
            ),
        ];
        for (name, help, value) in counters {
            counter(&mut out, name, help, value)?;
        }

        let mut family = out.encode_descriptor(
            "switchboard_handshakes",
            "Upgrade requests by the status they were answered with (101: opened).",
            None,
            MetricType::Counter,
        )?;
        for status in with_seen(&HANDSHAKE_RESULTS, t.handshakes()) {
            let result = status.to_string();
            family
                .encode_family(&[("result", result.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&t.handshakes_with(status), None)?;
        }

        let mut family = out.encode_descriptor(
            "switchboard_closes",
            "Connections closed by the server, by close code (evictions are not closes).",
            None,
            MetricType::Counter,
        )?;
        for code in with_seen(&CLOSE_CODES, t.closes()) {
            let n = t.closes_with(code);
            let code = code.to_string();
            family
                .encode_family(&[("code", code.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }

        let mut family = out.encode_descriptor(
            "switchboard_dropped",
            "Messages not delivered, by reason.",
            None,
            MetricType::Counter,
        )?;
        for reason in DropReason::ALL {
            family
                .encode_family(&[("reason", reason.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&t.dropped(reason), None)?;
        }

        histogram(
            &mut out,
            "switchboard_handshake_duration_seconds",
            "Time from accepting a socket to answering its upgrade request.",
            t.handshake_micros(),
            1e-6,
        )?;
        histogram(
            &mut out,
            "switchboard_fanout_recipients",
            "Recipients per topic publish (presence pushes and other nodes' publishes included).",
            t.fan_out(),
            1.0,
        )?;
        histogram(
            &mut out,
            "switchboard_connection_backlog_bytes",
            "A connection's outbound backlog, observed each time a frame is queued for it.",
            t.backlog_bytes(),
            1.0,
        )?;

        let version = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("adapter", self.adapter.adapter),
        ];
        out.encode_descriptor(
            "switchboard_build",
            "Always 1; its labels name the version and the adapter.",
            None,
            MetricType::Info,
        )?
        .encode_info(&version)?;

        if let Some(p) = &self.process {
            process(&mut out, p)?;
        }
        Ok(())
    }
}

/// The labels always written, and those seen besides, in order and once each.
fn with_seen(always: &[u16], seen: &[(u16, u64)]) -> Vec<u16> {
    let mut labels: Vec<u16> = always
        .iter()
        .copied()
        .chain(seen.iter().map(|&(l, _)| l))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

fn counter(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    out.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A core histogram of whole units, each worth `scale` of the exposed unit.
fn histogram(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &Histogram,
    scale: f64,
) -> Result<(), std::fmt::Error> {
    let buckets: Vec<(f64, u64)> = h
        .bounds()
        .iter()
        .map(|&bound| bound as f64 * scale)
        // prometheus-client writes `f64::MAX` as `+Inf`.
        .chain(std::iter::once(f64::MAX))
        .zip(h.counts().iter().copied())
        .collect();
    out.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(h.sum() as f64 * scale, h.count(), &buckets, None)
}

fn process(out: &mut DescriptorEncoder<'_>, p: &ProcessStats) -> Result<(), std::fmt::Error> {
    let gauge = |out: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64| {
        out.encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&v)
    };
    gauge(
        out,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        p.resident_memory_bytes as f64,
    )?;
    gauge(
        out,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        p.virtual_memory_bytes as f64,
    )?;
    gauge(
        out,
        "process_open_fds",
        "Number of open file descriptors.",
        p.open_fds as f64,
    )?;
    gauge(
        out,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        p.max_fds as f64,
    )?;
    gauge(
        out,
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.",
        p.start_time_seconds,
    )?;
    out.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        None,
        MetricType::Counter,
    )?
    .encode_counter::<NoLabelSet, _, u64>(&p.cpu_seconds, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
    use std::time::Duration;
    use switchboard_core::auth::{sign_hs256, Claims, Hs256Verifier};
    use switchboard_core::{Config, Frame, Handshake, Instant, Now};

    const SECRET: &[u8] = b"metrics-secret";

    type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

    fn now() -> Now {
        Now::new(Instant::ZERO, 1_795_428_000_000)
    }

    fn token(sub: &str) -> String {
        let claims = Claims {
            sub: sub.into(),
            exp: 1_795_431_600,
            device: None,
            topics: None,
            info: None,
        };
        sign_hs256(SECRET, &claims)
    }

    fn scrape(sb: &Switchboard) -> (String, Exposition) {
        let text = render(sb, AdapterGauges::new("test", 7, 2));
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{text}"));
        (text, parsed)
    }

    /// The sample of `family` with these label values, as a number.
    fn value(m: &Exposition, family: &str, labels: &[&str]) -> f64 {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let sample = m.families[family]
            .get_sample_by_label_values(&labels)
            .unwrap_or_else(|| panic!("no {family}{labels:?}"));
        match &sample.value {
            OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or_default() as f64,
            other => panic!("{family}: unexpected {other:?}"),
        }
    }

    #[test]
    fn every_family_has_help_and_a_type_and_counters_end_in_total() {
        let sb = Switchboard::new(Config::default(), Hs256Verifier::new(SECRET), 1);
        let (text, m) = scrape(&sb);
        assert!(text.ends_with("# EOF\n"));
        for (name, family) in &m.families {
            assert!(!family.help.is_empty(), "{name} has no HELP");
            let type_line = format!("# TYPE {name} ");
            assert!(text.contains(&type_line), "{name} has no TYPE line");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = m
                .families
                .keys()
                .find(|f| name.starts_with(f.as_str()))
                .unwrap();
            if m.families[family].family_type == OpenMetricsType::Counter {
                assert_eq!(name, format!("{family}_total"), "{line}");
            }
        }
        for family in [
            "switchboard_connections",
            "switchboard_handshakes",
            "switchboard_closes",
            "switchboard_dropped",
            "switchboard_deliveries",
            "switchboard_handshake_duration_seconds",
            "switchboard_fanout_recipients",
            "switchboard_connection_backlog_bytes",
            "switchboard_build",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_cpu_seconds",
        ] {
            assert!(m.families.contains_key(family), "no {family} in\n{text}");
        }
        assert_eq!(value(&m, "switchboard_outbound_backlog_bytes", &[]), 7.0);
        assert_eq!(value(&m, "switchboard_websockets", &[]), 2.0);
        assert!(value(&m, "process_resident_memory_bytes", &[]) > 1e6);
        assert!(text.contains(r#"switchboard_build_info{version="0.1.0",adapter="test"} 1"#));
    }

    #[test]
    fn handshake_results_close_codes_drops_and_fan_out_are_counted_with_their_labels() {
        let mut sb = Switchboard::new(Config::default(), Hs256Verifier::new(SECRET), 1);
        let (_, m) = scrape(&sb);
        // Every expected result is there from the start, at zero.
        for result in [
            "101", "400", "401", "403", "405", "408", "426", "429", "431", "503",
        ] {
            assert_eq!(
                value(&m, "switchboard_handshakes", &[result]),
                0.0,
                "{result}"
            );
        }
        let ip = "127.0.0.1".parse().unwrap();
        let alice = Handshake {
            token: Some(token("alice")),
            device: Some("phone".into()),
            ..Handshake::default()
        };
        let c = sb.open(now(), ip, alice.clone()).unwrap();
        sb.handshake_answered(101, Duration::from_millis(2));
        let bad = Handshake {
            token: Some("nope".into()),
            ..Handshake::default()
        };
        let refused = sb.open(now(), ip, bad).unwrap_err();
        sb.handshake_answered(refused.http_status(), Duration::from_millis(1));
        sb.handshake_answered(418, Duration::from_secs(30));
        let subscribe = r#"{"type":"subscribe","topic":"news"}"#;
        sb.handle_frame(now(), c, Frame::Text(subscribe));
        while sb.poll_action().is_some() {}
        let publish = r#"{"type":"message","topic":"news","data":1}"#;
        sb.handle_frame(now(), c, Frame::Text(publish));
        while sb.poll_action().is_some() {}
        // A second connection of alice's replaces the first: close 4001.
        sb.open(now(), ip, alice).unwrap();
        while sb.poll_action().is_some() {}

        let (_, m) = scrape(&sb);
        assert_eq!(value(&m, "switchboard_handshakes", &["101"]), 1.0);
        assert_eq!(value(&m, "switchboard_handshakes", &["401"]), 1.0);
        assert_eq!(value(&m, "switchboard_handshakes", &["418"]), 1.0);
        assert_eq!(
            value(&m, "switchboard_handshake_duration_seconds", &[]),
            3.0
        );
        assert_eq!(value(&m, "switchboard_closes", &["4001"]), 1.0);
        assert_eq!(value(&m, "switchboard_auth_failures", &[]), 1.0);
        assert_eq!(value(&m, "switchboard_dropped", &["slow_consumer"]), 0.0);
        assert_eq!(value(&m, "switchboard_fanout_recipients", &[]), 1.0);
        let OpenMetricsValue::Histogram(h) = &m.families["switchboard_handshake_duration_seconds"]
            .get_sample_by_label_values(&[])
            .unwrap()
            .value
        else {
            panic!("not a histogram")
        };
        // 1 ms and 2 ms at or under 2.5 ms; 30 s only in +Inf.
        let le = |bound: f64| h.buckets.iter().find(|b| b.upper_bound == bound).unwrap();
        assert_eq!(le(0.0025).count.as_f64(), 2.0);
        assert_eq!(le(5.0).count.as_f64(), 2.0);
        assert_eq!(le(f64::INFINITY).count.as_f64(), 3.0);
    }
}
