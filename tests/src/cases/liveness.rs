//! PROTOCOL.md "Liveness": server pings, zombie eviction, application pings.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{eventually, token, WAIT};
use crate::ws::{Client, RawEnd, RawWs};
use crate::{Adapter, Settings};

fn liveness_settings() -> Settings {
    let mut settings = Settings::default();
    settings.core.ping_interval = Duration::from_millis(200);
    settings.core.pong_timeout = Duration::from_millis(600);
    settings
}

/// A client that stops answering pings is dropped without a close frame at about
/// `pong_timeout` after its last sign of life (bounded by pong_timeout + ping_interval + 2 s),
/// not before; a client that answers stays; the zombie goes offline.
pub async fn liveness_zombie_is_evicted_without_close_frame<A: Adapter>() {
    let settings = liveness_settings();
    let (ping_interval, pong_timeout) = (settings.core.ping_interval, settings.core.pong_timeout);
    let server = A::start(settings);
    let mut zombie = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "zombie")),
        &[],
        None,
    )
    .await;
    let last_sign_of_life = Instant::now();
    zombie.answer_pings = false;
    let first = zombie.recv_json().await;
    assert_eq!(first["type"], json!("auth_success"), "{first}");
    let (mut healthy, _) = Client::authed(&server, "healthy").await;

    let bound = pong_timeout + ping_interval + Duration::from_secs(2);
    let mut pings = 0;
    let end = loop {
        let left = bound.saturating_sub(last_sign_of_life.elapsed());
        match zombie.read_frame(left).await {
            Ok(f) if f.opcode == 9 => pings += 1,
            Ok(f) if f.opcode == 8 => panic!(
                "a zombie gets no close frame, got close {:?}",
                f.close_code()
            ),
            Ok(f) => panic!(
                "unexpected frame to the zombie: opcode {} {:?}",
                f.opcode,
                String::from_utf8_lossy(&f.payload)
            ),
            Err(RawEnd::Timeout) => panic!(
                "the zombie was not dropped within {bound:?} (pong_timeout {pong_timeout:?}, ping_interval {ping_interval:?})"
            ),
            Err(end) => break end,
        }
    };
    let elapsed = last_sign_of_life.elapsed();
    assert!(
        elapsed + Duration::from_millis(150) >= pong_timeout,
        "the zombie was dropped after {elapsed:?} ({end:?}), before pong_timeout {pong_timeout:?}"
    );
    assert!(
        pings >= 1,
        "the server sent no WebSocket ping before evicting"
    );

    // The healthy client answered its pings (tungstenite does) and is still here.
    healthy.expect_nothing_pending().await;
    let server = &server;
    eventually("the zombie is offline", WAIT, || async move {
        server.presence("zombie").await["online"] == json!(false)
    })
    .await;
    assert_eq!(server.presence("healthy").await["online"], json!(true));
}

/// Any frame counts as a sign of life: a client that never answers WebSocket pings but sends
/// `{"type":"ping"}` regularly is kept for several pong timeouts; once silent, it is dropped.
pub async fn liveness_any_frame_is_a_sign_of_life<A: Adapter>() {
    let settings = liveness_settings();
    let pong_timeout = settings.core.pong_timeout;
    let server = A::start(settings);
    let mut client = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "chatty")),
        &[],
        None,
    )
    .await;
    client.answer_pings = false;
    client.recv_json().await;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < pong_timeout * 3 {
        let id = format!("{n}");
        client.send_json(&json!({"type": "ping", "id": id})).await;
        let pong = client.recv_json().await;
        assert_eq!(
            (pong["type"].as_str(), pong["id"].as_str()),
            (Some("pong"), Some(id.as_str())),
            "{pong}"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Now silent: dropped without a close frame.
    let silent_since = Instant::now();
    let bound = pong_timeout + Duration::from_secs(3);
    loop {
        match client
            .read_frame(bound.saturating_sub(silent_since.elapsed()))
            .await
        {
            Ok(f) if f.opcode == 9 => {}
            Ok(f) => panic!(
                "unexpected frame: opcode {} {:?}",
                f.opcode,
                String::from_utf8_lossy(&f.payload)
            ),
            Err(RawEnd::Timeout) => panic!("not dropped within {bound:?} of going silent"),
            Err(_) => break,
        }
    }
    assert!(silent_since.elapsed() <= bound);
}

/// The server reads time from its clock only: moved past `ping_interval`, the next wake-up
/// pings a silent client; moved past `pong_timeout`, it evicts it, long before the system
/// clock would get there.
pub async fn liveness_pings_and_evictions_follow_the_servers_clock<A: Adapter>() {
    let (clock, hand) = switchboard_adapter_kit::Clock::manual();
    let mut settings = Settings::default();
    settings.core.ping_interval = Duration::from_secs(60);
    settings.core.pong_timeout = Duration::from_secs(120);
    settings.core.auth_timeout = Duration::from_secs(60);
    settings.clock = clock;
    let server = A::start(settings);
    let target = format!("/ws?token={}", token(&server.jwt_secret, "silent"));
    let mut silent = RawWs::connect(server.addr, &target, &[], None).await;
    silent.answer_pings = false;
    silent.recv_json().await; // auth_success
    let started = Instant::now();

    hand.advance(Duration::from_secs(61));
    // Any event wakes the server; it then finds the ping due on its clock.
    let (_nudge, _) = Client::authed(&server, "nudge").await;
    let frame = silent.read_frame(WAIT).await.expect("a frame");
    assert_eq!(frame.opcode, 9, "a ping, 61 s later on the server's clock");

    hand.advance(Duration::from_secs(60));
    let (_nudge, _) = Client::authed(&server, "nudge-2").await;
    match silent.read_frame(WAIT).await {
        Err(RawEnd::Eof | RawEnd::Error(_)) => {}
        other => panic!("the silent client should be evicted, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the system clock did not have to pass pong_timeout"
    );
}
