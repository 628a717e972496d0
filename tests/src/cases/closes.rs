//! A close that the core decides reaches the client: after the close frame the server stops
//! writing and reads (and discards) what the client still sends, so that unread input cannot
//! make the kernel reset the connection and destroy the close frame. Each case repeats, since
//! a reset loses the race most of the time, not always.

use serde_json::json;

use crate::util::token;
use crate::ws::{masked_frame, RawEnd, RawWs};
use crate::{Adapter, Settings, TestServer};

/// How many times each close is tried: all must arrive.
const ROUNDS: usize = 20;

async fn authed_raw(server: &TestServer, user: &str) -> RawWs {
    let target = format!("/ws?token={}", token(&server.jwt_secret, user));
    let mut raw = RawWs::connect(server.addr, &target, &[], None).await;
    raw.recv_json().await; // auth_success
    raw
}

/// After the close frame the server's side ends cleanly: EOF, not a reset.
async fn expect_clean_end(raw: &mut RawWs, round: usize) {
    match raw.read_frame(crate::util::WAIT).await {
        Err(RawEnd::Eof) => {}
        other => panic!("round {round}: after the close frame, expected EOF, got {other:?}"),
    }
}

/// A 70,000-byte message in one frame, written at once, to a 65,536-byte limit: close 1009
/// with its reason, every time.
pub async fn closes_oversize_message_in_one_write_gets_1009_every_time<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_message_bytes = 65_536;
    let server = A::start(settings);
    let message = json!({"type": "ping", "pad": "x".repeat(70_000 - 24)}).to_string();
    assert_eq!(message.len(), 70_000);
    let frame = masked_frame(true, 1, message.as_bytes());
    for round in 0..ROUNDS {
        let mut raw = authed_raw(&server, "big").await;
        raw.send_bytes(&frame).await;
        let reason = raw.expect_close(1009).await;
        assert_eq!(reason, "message too big", "round {round}");
        expect_clean_end(&mut raw, round).await;
    }
}

/// A text frame that is not UTF-8 in the middle of a stream of frames written at once: close
/// 1007 with its reason, every time.
pub async fn closes_invalid_utf8_mid_stream_gets_1007_every_time<A: Adapter>() {
    let server = A::start(Settings::default());
    let ping = json!({"type": "ping", "pad": "y".repeat(1000)}).to_string();
    let mut burst = masked_frame(true, 1, ping.as_bytes());
    burst.extend(masked_frame(
        true,
        1,
        b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}",
    ));
    for _ in 0..60 {
        burst.extend(masked_frame(true, 1, ping.as_bytes()));
    }
    for round in 0..ROUNDS {
        let mut raw = authed_raw(&server, "utf").await;
        raw.send_bytes(&burst).await;
        let reason = raw.expect_close_skipping_data(1007).await;
        assert_eq!(reason, "invalid utf-8", "round {round}");
        expect_clean_end(&mut raw, round).await;
    }
}

/// Frames over the inbound rate limit, written at once with more behind them: close 4029 with
/// its reason, every time.
pub async fn closes_rate_limited_mid_stream_gets_4029_every_time<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_messages_per_sec = 5;
    settings.core.message_burst = 10;
    let server = A::start(settings);
    let ping = json!({"type": "ping", "pad": "z".repeat(500)}).to_string();
    let burst: Vec<u8> = (0..120)
        .flat_map(|_| masked_frame(true, 1, ping.as_bytes()))
        .collect();
    for round in 0..ROUNDS {
        let mut raw = authed_raw(&server, "fast").await;
        raw.send_bytes(&burst).await;
        let reason = raw.expect_close_skipping_data(4029).await;
        assert_eq!(reason, "rate limit exceeded", "round {round}");
        expect_clean_end(&mut raw, round).await;
    }
}
