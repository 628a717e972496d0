//! `/metrics`: the switchboard's counts in the Prometheus text exposition format 0.0.4.

use std::fmt::Write as _;

use crate::http::HttpResponse;
use crate::Switchboard;

/// `Content-Type` of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// `/metrics` in Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): gauges
/// switchboard_connections, switchboard_authenticated_connections, switchboard_online_users,
/// switchboard_subscriptions, switchboard_topics, switchboard_draining; counters
/// switchboard_connections_opened_total, _rejected_total, _evicted_total, _replaced_total,
/// switchboard_frames_received_total, switchboard_messages_sent_total — each with # HELP and
/// # TYPE lines. `extra` lets an adapter append its own samples (name, help, value) as gauges.
///
/// An `extra` sample whose name is not a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or
/// repeats a name already written is skipped, so the output always parses.
pub fn metrics(sb: &Switchboard, extra: &[(&str, &str, u64)]) -> HttpResponse {
    metrics_text(sb, extra)
}

/// The gauges every adapter adds to `/metrics`, named alike in both: the bytes queued for
/// clients and not yet written to their sockets, and the WebSocket connections it holds (in
/// their upgrade or open: what `--max-connections` caps).
pub fn adapter_gauges(
    outbound_backlog_bytes: u64,
    websockets: u64,
) -> [(&'static str, &'static str, u64); 2] {
    [
        (
            "switchboard_outbound_backlog_bytes",
            "Bytes queued for clients and not yet written to their sockets.",
            outbound_backlog_bytes,
        ),
        (
            "switchboard_websockets",
            "WebSocket connections held by the adapter, in their handshake or open.",
            websockets,
        ),
    ]
}

fn metrics_text(sb: &Switchboard, extra: &[(&str, &str, u64)]) -> HttpResponse {
    let s = sb.stats();
    let gauges: [(&str, &str, u64); 9] = [
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
            u64::from(sb.is_draining()),
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
    ];
    let counters: [(&str, &str, u64); 6] = [
        (
            "switchboard_connections_opened_total",
            "Connections opened since start.",
            s.opened_total,
        ),
        (
            "switchboard_connections_rejected_total",
            "Connections refused at open (per-IP limit, draining, bad handshake or token).",
            s.rejected_total,
        ),
        (
            "switchboard_connections_evicted_total",
            "Zombie connections evicted for not answering pings.",
            s.evicted_total,
        ),
        (
            "switchboard_connections_replaced_total",
            "Connections replaced by the session policy (close 4001).",
            s.replaced_total,
        ),
        (
            "switchboard_frames_received_total",
            "Data frames received from clients.",
            s.frames_in_total,
        ),
        (
            "switchboard_messages_sent_total",
            "Messages queued for clients.",
            s.sends_total,
        ),
    ];

    let mut out = String::with_capacity(2048);
    let mut written: Vec<&str> = Vec::with_capacity(12 + extra.len());
    for (name, help, value) in gauges {
        write_sample(&mut out, name, help, "gauge", value);
        written.push(name);
    }
    for (name, help, value) in counters {
        write_sample(&mut out, name, help, "counter", value);
        written.push(name);
    }
    for &(name, help, value) in extra {
        if is_metric_name(name) && !written.contains(&name) {
            write_sample(&mut out, name, help, "gauge", value);
            written.push(name);
        }
    }
    HttpResponse::with_body(200, PROMETHEUS_TEXT, out)
}

fn write_sample(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// HELP text escapes backslash and newline (format 0.0.4); a bare CR would end the line for
/// some readers, so it is escaped as well-formed text too.
fn escape_help(help: &str) -> String {
    let mut s = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sign_hs256, Claims, Hs256Verifier};
    use crate::{Config, Frame, Handshake, Instant, Now};
    use std::collections::HashMap;

    const SECRET: &[u8] = b"metrics-secret";

    fn now() -> Now {
        Now::new(Instant::ZERO, 1_795_428_000_000)
    }

    fn switchboard_with_one_user() -> Switchboard {
        let mut sb = Switchboard::new(Config::default(), Hs256Verifier::new(SECRET), 1);
        let token = sign_hs256(
            SECRET,
            &Claims {
                sub: "alice".into(),
                exp: 1_795_431_600,
                device: None,
                topics: None,
                info: None,
            },
        );
        let hs = Handshake {
            token: Some(token),
            ..Handshake::default()
        };
        let c = sb.open(now(), "127.0.0.1".parse().unwrap(), hs).unwrap();
        sb.handle_frame(
            now(),
            c,
            Frame::Text(r#"{"type":"subscribe","topic":"a.*"}"#),
        );
        while sb.poll_action().is_some() {}
        sb
    }

    /// Parses the exposition: every sample has a value and a preceding TYPE line.
    fn parse(text: &str) -> (HashMap<String, u64>, HashMap<String, String>) {
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        let mut helps = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                assert!(rest.split_once(' ').is_some(), "{line}");
                helps += 1;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect(line);
                assert!(matches!(kind, "gauge" | "counter"), "{line}");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
            } else {
                let (name, value) = line.split_once(' ').expect(line);
                assert!(is_metric_name(name), "{line}");
                assert!(types.contains_key(name), "sample without TYPE: {line}");
                assert!(samples
                    .insert(name.to_owned(), value.parse().expect(line))
                    .is_none());
            }
        }
        assert_eq!(helps, types.len());
        assert_eq!(samples.len(), types.len());
        (samples, types)
    }

    #[test]
    fn metrics_text_has_help_and_type_for_every_sample_and_parses() {
        let sb = switchboard_with_one_user();
        let r = metrics(&sb, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "text/plain; version=0.0.4");
        let text = std::str::from_utf8(&r.body).unwrap();
        assert!(text.ends_with('\n'));
        let (samples, types) = parse(text);
        assert_eq!(samples.len(), 15);
        assert_eq!(samples["switchboard_connections"], 1);
        assert_eq!(samples["switchboard_authenticated_connections"], 1);
        assert_eq!(samples["switchboard_online_users"], 1);
        assert_eq!(samples["switchboard_subscriptions"], 1);
        assert_eq!(samples["switchboard_topics"], 1);
        assert_eq!(samples["switchboard_draining"], 0);
        assert_eq!(samples["switchboard_connections_opened_total"], 1);
        assert_eq!(samples["switchboard_connections_rejected_total"], 0);
        assert_eq!(samples["switchboard_connections_evicted_total"], 0);
        assert_eq!(samples["switchboard_connections_replaced_total"], 0);
        assert_eq!(samples["switchboard_frames_received_total"], 1);
        assert!(samples["switchboard_messages_sent_total"] >= 2);
        assert_eq!(types["switchboard_messages_sent_total"], "counter");
        assert_eq!(types["switchboard_connections"], "gauge");
    }

    #[test]
    fn draining_gauge_turns_to_one_after_shutdown() {
        let mut sb = switchboard_with_one_user();
        sb.shutdown(now(), Instant::from_millis(10_000));
        let (samples, _) = parse(std::str::from_utf8(&metrics(&sb, &[]).body).unwrap());
        assert_eq!(samples["switchboard_draining"], 1);
        assert_eq!(samples["switchboard_connections"], 0);
    }

    #[test]
    fn extra_samples_are_appended_as_gauges() {
        let sb = switchboard_with_one_user();
        let r = metrics(
            &sb,
            &[(
                "switchboard_handshakes_pending",
                "Sockets in their handshake.\nMore \\",
                4,
            )],
        );
        let text = std::str::from_utf8(&r.body).unwrap();
        assert!(text.contains(
            "# HELP switchboard_handshakes_pending Sockets in their handshake.\\nMore \\\\\n"
        ));
        let (samples, types) = parse(text);
        assert_eq!(samples["switchboard_handshakes_pending"], 4);
        assert_eq!(types["switchboard_handshakes_pending"], "gauge");
    }

    #[test]
    fn invalid_or_duplicate_extra_names_are_skipped() {
        let sb = switchboard_with_one_user();
        let r = metrics(
            &sb,
            &[
                ("", "empty", 1),
                ("1abc", "digit first", 1),
                ("a b\nc 1", "space", 1),
                ("switchboard_connections", "duplicate of a built-in", 99),
                ("x_ok", "first", 1),
                ("x_ok", "second", 2),
            ],
        );
        let (samples, _) = parse(std::str::from_utf8(&r.body).unwrap());
        assert_eq!(samples.len(), 16);
        assert_eq!(samples["x_ok"], 1);
        assert_eq!(samples["switchboard_connections"], 1);
    }
}
