//! PROTOCOL.md "Limits": inbound rate limit and slow consumers (per-IP: see handshake).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{token, WAIT};
use crate::ws::{Client, RawEnd, RawWs};
use crate::{Adapter, Settings};

/// Over `max_messages_per_sec` (burst included): close 4029. Every data frame counts,
/// `{"type":"ping"}` included; WebSocket ping control frames do not.
pub async fn limits_rate_limit_closes_4029<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_messages_per_sec = 5;
    settings.core.message_burst = 10;
    let server = A::start(settings);

    // WebSocket pings do not count.
    let mut pinger = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "pinger")),
        &[],
        None,
    )
    .await;
    pinger.recv_json().await;
    for _ in 0..40 {
        pinger.send_frame(true, 9, b"ws-ping").await;
    }
    pinger
        .send_json(&json!({"type": "ping", "id": "still"}))
        .await;
    loop {
        let f = pinger.recv_data().await;
        if f.opcode == 1 {
            let v: serde_json::Value = serde_json::from_slice(&f.payload).expect("JSON");
            assert_eq!(
                (v["type"].as_str(), v["id"].as_str()),
                (Some("pong"), Some("still")),
                "{v}"
            );
            break;
        }
        assert_ne!(
            f.opcode,
            8,
            "WebSocket pings must not count against the rate limit (close {:?})",
            f.close_code()
        );
    }

    // Application pings do.
    let (mut flooder, _) = Client::authed(&server, "flooder").await;
    for i in 0..60 {
        if flooder
            .try_send_text(&json!({"type": "ping", "id": format!("{i}")}).to_string())
            .await
            .is_err()
        {
            break;
        }
    }
    flooder.expect_close_skipping(4029, &["pong"]).await;

    let (mut calm, _) = Client::authed(&server, "calm").await;
    calm.expect_nothing_pending().await;
}

/// A client that stops reading while the server pushes to it is closed with 4009 once its
/// backlog passes `max_outbound_bytes`; meanwhile the server keeps serving others promptly.
pub async fn limits_slow_consumer_closes_4009<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_outbound_bytes = 256 * 1024;
    // The slow client answers nothing while it does not read: keep it from being a zombie.
    settings.core.pong_timeout = Duration::from_secs(60);
    let server = A::start(settings);
    let mut slow = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "slow")),
        &[],
        Some(4096),
    )
    .await;
    slow.recv_json().await;
    let (mut fast, _) = Client::authed(&server, "fast").await;

    let chunk = "x".repeat(64 * 1024);
    let body = json!({"userId": "slow", "data": {"blob": chunk}});
    let start = Instant::now();
    let mut sent_bytes = 0usize;
    let mut pushes = 0usize;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the slow consumer was not closed after {sent_bytes} bytes pushed in 40 s"
        );
        let r = server.api_post("/api/send", &body).await;
        r.assert_status(200, "POST /api/send to the slow consumer");
        match r.json()["delivered"].as_u64() {
            Some(0) => break,
            Some(1) => sent_bytes += chunk.len(),
            other => panic!("unexpected delivered {other:?}: {}", r.text()),
        }
        pushes += 1;
        if pushes.is_multiple_of(16) {
            // While the slow consumer's backlog grows, the server answers others promptly.
            let t = Instant::now();
            fast.expect_nothing_pending().await;
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "a healthy client waited {:?} for a pong",
                t.elapsed()
            );
            // The server's memory for the stalled client stays bounded: its backlog never
            // exceeds the limit by more than one message.
            let metrics = server.get("/metrics").await.text();
            let backlog: u64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix("switchboard_outbound_backlog_bytes "))
                .and_then(|v| v.trim().parse().ok())
                .expect("/metrics reports switchboard_outbound_backlog_bytes");
            let bound = (256 * 1024 + chunk.len() + 1024) as u64;
            assert!(
                backlog <= bound,
                "outbound backlog {backlog} B over {bound} B"
            );
        }
    }

    // Reading again at once (the transport is dropped at most 1 s after the 4009 decision):
    // whatever the kernel held, then the 4009 close frame.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match slow.read_frame(left).await {
            Ok(f) if f.opcode == 8 => {
                assert_eq!(
                    f.close_code(),
                    Some(4009),
                    "slow consumer closed with {:?}",
                    f.close_code()
                );
                break;
            }
            Ok(f) if matches!(f.opcode, 0 | 1 | 9) => {}
            Ok(f) => panic!("unexpected opcode {}", f.opcode),
            Err(RawEnd::Timeout) => {
                panic!("no 4009 close frame within {WAIT:?} of reading again")
            }
            Err(end) => panic!(
                "the slow consumer's transport ended without a 4009 close frame ({end:?}) after {sent_bytes} bytes pushed"
            ),
        }
    }

    // The server still serves the others, over WebSocket and HTTP, and counted the close.
    fast.expect_nothing_pending().await;
    let scrape = server.scrape().await;
    assert_eq!(scrape.value("switchboard_closes", &["4009"]), Some(1.0));
    let (mut fresh, _) = Client::authed(&server, "fresh").await;
    fresh.expect_nothing_pending().await;
    eprintln!("slow consumer closed after {sent_bytes} bytes pushed");
    let stats = server.stats().await;
    assert_eq!(
        stats["users"],
        json!(2),
        "slow is gone, fast and fresh remain: {stats}"
    );
}

/// A connection the core has closed (here: replaced, 4001) lives at most about a second more,
/// even when its client stopped reading with frames still queued for it: a stalled peer cannot
/// keep a closed connection, and its memory, alive.
pub async fn limits_closed_connection_with_a_stalled_client_is_dropped_within_a_second<
    A: Adapter,
>() {
    let mut settings = Settings::default();
    // Big enough that the pushes below stall the client without making it a slow consumer.
    settings.core.max_outbound_bytes = 64 * 1024 * 1024;
    settings.core.pong_timeout = Duration::from_secs(60);
    let server = A::start(settings);
    let query = format!("token={}&device=d", token(&server.jwt_secret, "stalled"));
    let mut stalled = RawWs::connect(server.addr, &format!("/ws?{query}"), &[], Some(4096)).await;
    stalled.recv_json().await;

    // Push until frames stay queued in the server: the kernel buffers are full.
    let chunk = "x".repeat(64 * 1024);
    let body = json!({"userId": "stalled", "data": {"blob": chunk}});
    let backlog = || async {
        let metrics = server.get("/metrics").await.text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("switchboard_outbound_backlog_bytes "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("/metrics reports switchboard_outbound_backlog_bytes")
    };
    let start = Instant::now();
    while backlog().await < 1024 * 1024 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "could not stall the client"
        );
        for _ in 0..8 {
            server
                .api_post("/api/send", &body)
                .await
                .assert_status(200, "push");
        }
    }

    // A newer connection on the same device replaces it: the server decides close 4001.
    let mut newer = Client::connect(&server, &query, "newer").await;
    assert_eq!(newer.recv_json().await["type"], "auth_success");
    let decided = Instant::now();
    let websockets = || async {
        let metrics = server.get("/metrics").await.text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("switchboard_websockets "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("/metrics reports switchboard_websockets")
    };
    while websockets().await > 1 {
        assert!(
            decided.elapsed() < Duration::from_secs(3),
            "the replaced, stalled connection is still held {:?} after its close",
            decided.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backlog().await, 0, "its queued frames were released");
    drop(stalled);
}
