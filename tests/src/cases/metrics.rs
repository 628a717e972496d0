//! `/metrics` over real sockets: each handshake result and close code is counted once the
//! matching case has happened.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::http::{exchange_then_closed, post_request, upgrade_request};
use crate::metrics::Scrape;
use crate::util::{eventually, token, WAIT};
use crate::ws::{Client, RawWs};
use crate::{Adapter, Settings, TestServer};

/// Waits until `/metrics` shows `family{labels}` at `expected` (the count of an answer may
/// reach the core just after the answer reached the client).
async fn until_counted(server: &TestServer, family: &str, labels: &[&str], expected: f64) {
    let what = format!("{family}{labels:?} == {expected}");
    eventually(&what, WAIT, || async {
        let scrape: Scrape = server.scrape().await;
        scrape.value(family, labels) == Some(expected)
    })
    .await;
}

/// Every way an upgrade request ends is counted under its status: 101, 400, 401, 403, 405,
/// 408 (where the server reads request heads itself: [`Adapter::HEAD_TIMEOUT`]), 426, 429, 431
/// and 503.
pub async fn metrics_count_every_handshake_result_by_status<A: Adapter>() {
    let mut settings = Settings {
        allowed_origins: Some("https://app.example".into()),
        handshake_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    settings.core.max_connections_per_ip = 2;
    let server = A::start(settings);
    let addr = server.addr;
    let (_alice, _) = Client::authed(&server, "alice").await;
    let refusals: [(u16, Vec<u8>); 6] = [
        (401, upgrade_request("/ws?token=not-a-jwt", &[])),
        (405, post_request("/ws", &[], b"")),
        (400, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (426, {
            let req = String::from_utf8(upgrade_request("/ws", &[])).unwrap();
            req.replace("Version: 13", "Version: 12").into_bytes()
        }),
        (
            403,
            upgrade_request("/ws", &[("Origin", "https://evil.example")]),
        ),
        (
            431,
            upgrade_request("/ws", &[("X-Pad", &"a".repeat(17 * 1024))]),
        ),
    ];
    for (status, request) in &refusals {
        exchange_then_closed(addr, request)
            .await
            .assert_status(*status, "refused upgrade");
    }
    // 408: a socket that never completes its request head (a server that reads its own).
    if A::HEAD_TIMEOUT {
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, silent.read_to_end(&mut answer)).await;
        assert!(answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
    }
    // 429: a second connection is allowed from 127.0.0.1, the third is not.
    let _bob = Client::anon(&server, "bob").await;
    exchange_then_closed(addr, &upgrade_request("/ws", &[]))
        .await
        .assert_status(429, "third connection from one IP");

    for (status, _) in &refusals {
        until_counted(
            &server,
            "switchboard_handshakes",
            &[&status.to_string()],
            1.0,
        )
        .await;
    }
    if A::HEAD_TIMEOUT {
        until_counted(&server, "switchboard_handshakes", &["408"], 1.0).await;
    }
    until_counted(&server, "switchboard_handshakes", &["101"], 2.0).await;
    until_counted(&server, "switchboard_handshakes", &["429"], 1.0).await;
    let scrape = server.scrape().await;
    assert_eq!(scrape.value("switchboard_handshakes", &["503"]), Some(0.0));
    assert_eq!(scrape.value("switchboard_auth_failures", &[]), Some(1.0));
    let timed = scrape.value("switchboard_handshake_duration_seconds", &[]);
    let answers = if A::HEAD_TIMEOUT { 10.0 } else { 9.0 };
    assert_eq!(
        timed,
        Some(answers),
        "one duration per answer:\n{}",
        scrape.text()
    );

    // 503: at --max-connections, before the core is asked.
    let capped = A::start(Settings {
        max_connections: 1,
        ..Settings::default()
    });
    let (_held, _) = Client::authed(&capped, "held").await;
    exchange_then_closed(capped.addr, &upgrade_request("/ws", &[]))
        .await
        .assert_status(503, "over the connection cap");
    until_counted(&capped, "switchboard_handshakes", &["503"], 1.0).await;
}

/// Closes the server decides are counted under their close code: 4001 (replaced), 4029 (rate
/// limit), 1009 (too big), 1007 (not UTF-8), 1008 (disconnected by the API), 4008 (no auth
/// in time); the frames refused with them count as dropped. (4009: limits_slow_consumer.)
pub async fn metrics_count_closes_by_code_and_dropped_frames_by_reason<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_messages_per_sec = 1;
    settings.core.message_burst = 2;
    settings.core.max_message_bytes = 1024;
    let server = A::start(settings);

    let (mut first, _) = Client::authed_device(&server, "carol", Some("phone")).await;
    let (_second, _) = Client::authed_device(&server, "carol", Some("phone")).await;
    first.expect_close(4001).await;

    let (mut chatty, _) = Client::authed(&server, "chatty").await;
    for n in 0..3 {
        let _ = chatty
            .try_send_text(&json!({"type": "ping", "id": n.to_string()}).to_string())
            .await;
    }
    chatty.expect_close_skipping(4029, &["pong"]).await;

    let (mut big, _) = Client::authed(&server, "big").await;
    big.send_text(&"x".repeat(2048)).await;
    big.expect_close(1009).await;

    let query = format!("token={}", token(&server.jwt_secret, "utf"));
    let mut raw = RawWs::connect(server.addr, &format!("/ws?{query}"), &[], None).await;
    raw.recv_json().await;
    raw.send_frame(true, 1, b"\xff\xfe").await;
    raw.expect_close(1007).await;

    let (mut kicked, _) = Client::authed(&server, "kicked").await;
    server
        .api_post("/api/disconnect", &json!({"userId": "kicked"}))
        .await
        .assert_status(200, "disconnect");
    kicked.expect_close(1008).await;

    // Never authenticates: closed 4008 after `auth_timeout` (1 s in the test settings).
    let mut silent = Client::anon(&server, "silent").await;
    silent.expect_close(4008).await;

    until_counted(&server, "switchboard_closes", &["4001"], 1.0).await;
    until_counted(&server, "switchboard_closes", &["4029"], 1.0).await;
    for code in ["1009", "1007", "1008", "4008"] {
        until_counted(&server, "switchboard_closes", &[code], 1.0).await;
    }
    let scrape = server.scrape().await;
    assert_eq!(
        scrape.value("switchboard_dropped", &["rate_limited"]),
        Some(1.0)
    );
    assert_eq!(scrape.value("switchboard_dropped", &["too_big"]), Some(1.0));
    assert_eq!(
        scrape.value("switchboard_dropped", &["invalid_utf8"]),
        Some(1.0)
    );
    assert_eq!(scrape.value("switchboard_closes", &["4009"]), Some(0.0));
}
