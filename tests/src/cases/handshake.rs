//! PROTOCOL.md "Endpoint": the upgrade request and every way it is refused.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{exchange, exchange_then_closed, get_request, upgrade_request};
use crate::util::{eventually, expired_token, query_encode, token, WAIT};
use crate::ws::{Client, RawWs};
use crate::{Adapter, Settings};

/// `?token=` authenticates at the handshake: `auth_success` is the first frame.
pub async fn handshake_token_in_query_authenticates<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut client, first) = Client::authed(&server, "alice").await;
    let conn_id = first["connId"].as_str().unwrap_or_default();
    assert!(
        conn_id.split('.').count() == 4,
        "connId should look like <node>.<boot>.<index>.<generation>: {first}"
    );
    client.expect_nothing_pending().await;
}

/// `Authorization: Bearer <jwt>` is accepted like `?token=`.
pub async fn handshake_bearer_header_authenticates<A: Adapter>() {
    let server = A::start(Settings::default());
    let bearer = format!("Bearer {}", token(&server.jwt_secret, "bob"));
    let mut client = Client::try_connect(server.addr, "/ws", &[("Authorization", &bearer)], "bob")
        .await
        .expect("upgrade with a Bearer header");
    let first = client.recv_type("auth_success").await;
    assert_eq!(first["userId"], json!("bob"));
    client.expect_nothing_pending().await;
}

/// `device`, `deviceName` and `User-Agent` from the upgrade request are recorded (seen through
/// `GET /api/presence/{userId}`), with the peer IP.
pub async fn handshake_device_and_device_name_are_recorded<A: Adapter>() {
    let server = A::start(Settings::default());
    let target = format!(
        "/ws?token={}&device=phone-1&deviceName={}",
        token(&server.jwt_secret, "carol@example.com"),
        query_encode("Carol's phone ☎")
    );
    let mut client = Client::try_connect(
        server.addr,
        &target,
        &[("User-Agent", "e2e-agent/1.0")],
        "carol",
    )
    .await
    .expect("upgrade");
    let first = client.recv_type("auth_success").await;
    let presence = server.presence("carol@example.com").await;
    assert_eq!(presence["userId"], json!("carol@example.com"), "{presence}");
    assert_eq!(presence["online"], json!(true), "{presence}");
    let conns = presence["connections"]
        .as_array()
        .expect("connections array");
    assert_eq!(conns.len(), 1, "{presence}");
    let c = &conns[0];
    assert_eq!(c["connId"], first["connId"], "{presence}");
    assert_eq!(c["deviceId"], json!("phone-1"), "{presence}");
    assert_eq!(c["deviceName"], json!("Carol's phone ☎"), "{presence}");
    assert_eq!(c["userAgent"], json!("e2e-agent/1.0"), "{presence}");
    assert_eq!(c["ip"], json!("127.0.0.1"), "{presence}");
    assert!(
        !c["connectedAt"].is_null(),
        "connectedAt missing: {presence}"
    );
}

/// A handshake token that fails verification (garbage, wrong secret, expired, `alg: none`)
/// rejects the upgrade with HTTP 401, and the server keeps serving.
pub async fn handshake_bad_token_is_401<A: Adapter>() {
    let server = A::start(Settings::default());
    let wrong_secret = token(b"another secret", "mallory");
    let expired = expired_token(&server.jwt_secret, "mallory");
    let none = crate::util::alg_none_token("mallory");
    for (what, tok) in [
        ("garbage", "not-a-jwt"),
        ("wrong secret", wrong_secret.as_str()),
        ("expired", expired.as_str()),
        ("alg none", none.as_str()),
    ] {
        let r = exchange_then_closed(
            server.addr,
            &upgrade_request(&format!("/ws?token={}", query_encode(tok)), &[]),
        )
        .await;
        r.assert_status(401, what);
        let bearer = format!("Bearer {tok}");
        let r = exchange_then_closed(
            server.addr,
            &upgrade_request("/ws", &[("Authorization", &bearer)]),
        )
        .await;
        r.assert_status(401, &format!("{what} (Bearer)"));
    }
    let (mut ok, _) = Client::authed(&server, "alice").await;
    ok.expect_nothing_pending().await;
}

/// A malformed `device` or an over-long `deviceName` rejects the upgrade with HTTP 400.
pub async fn handshake_malformed_device_is_400<A: Adapter>() {
    let server = A::start(Settings::default());
    let tok = token(&server.jwt_secret, "dave");
    let long_device = "d".repeat(65);
    let long_name = "n".repeat(129);
    for (what, query) in [
        (
            "device with a space",
            format!("token={tok}&device=bad%20id"),
        ),
        ("device with a slash", format!("token={tok}&device=a%2Fb")),
        ("empty device", format!("token={tok}&device=")),
        (
            "65-char device",
            format!("token={tok}&device={long_device}"),
        ),
        (
            "129-byte deviceName",
            format!("token={tok}&deviceName={long_name}"),
        ),
        ("unauthenticated bad device", "device=bad!".to_string()),
    ] {
        let r =
            exchange_then_closed(server.addr, &upgrade_request(&format!("/ws?{query}"), &[])).await;
        r.assert_status(400, what);
    }
    // The limits themselves are accepted.
    let ok = format!(
        "/ws?token={tok}&device={}&deviceName={}",
        "d".repeat(64),
        "n".repeat(128)
    );
    let mut client = Client::try_connect(server.addr, &ok, &[], "dave")
        .await
        .expect("64-char device and 128-byte deviceName are allowed");
    client.recv_type("auth_success").await;
}

/// Paths other than `/ws`: HTTP 404.
pub async fn handshake_unknown_path_is_404<A: Adapter>() {
    let server = A::start(Settings::default());
    for path in ["/", "/wss", "/ws/extra", "/nothing-here"] {
        let r = exchange_then_closed(server.addr, &upgrade_request(path, &[])).await;
        r.assert_status(404, &format!("upgrade at {path}"));
    }
    let r = exchange(server.addr, &get_request("/nothing-here", &[])).await;
    r.assert_status(404, "plain GET of an unknown path");
}

/// A method other than GET on `/ws`: HTTP 405.
pub async fn handshake_post_is_405<A: Adapter>() {
    let server = A::start(Settings::default());
    let request = "POST /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n";
    exchange_then_closed(server.addr, request.as_bytes())
        .await
        .assert_status(405, "POST /ws");
}

/// A request to `/ws` that is not a valid upgrade (no `Sec-WebSocket-Key`, or no upgrade at
/// all): HTTP 400.
pub async fn handshake_missing_key_is_400<A: Adapter>() {
    let server = A::start(Settings::default());
    let no_key = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    exchange_then_closed(server.addr, no_key.as_bytes())
        .await
        .assert_status(400, "upgrade without Sec-WebSocket-Key");
    let plain = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    exchange_then_closed(server.addr, plain.as_bytes())
        .await
        .assert_status(400, "plain GET /ws without any upgrade header");
}

/// `Sec-WebSocket-Version` other than 13: HTTP 426 with `Sec-WebSocket-Version: 13`.
pub async fn handshake_version_12_is_426<A: Adapter>() {
    let server = A::start(Settings::default());
    let request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n";
    let r = exchange_then_closed(server.addr, request.as_bytes()).await;
    r.assert_status(426, "Sec-WebSocket-Version: 12");
    assert_eq!(
        r.header("Sec-WebSocket-Version").map(str::trim),
        Some("13"),
        "426 must name the supported version: {:?}",
        r.headers
    );
}

/// Request line and headers over 16 KiB, or over 100 header lines: HTTP 431.
pub async fn handshake_oversized_headers_are_431<A: Adapter>() {
    let server = A::start(Settings::default());
    let pad = "a".repeat(17 * 1024);
    let r = exchange_then_closed(server.addr, &upgrade_request("/ws", &[("X-Pad", &pad)])).await;
    r.assert_status(431, "17 KiB header");

    let names: Vec<String> = (0..101).map(|i| format!("X-Line-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let r = exchange_then_closed(server.addr, &upgrade_request("/ws", &many)).await;
    r.assert_status(431, "over 100 header lines");

    let (mut ok, _) = Client::authed(&server, "after").await;
    ok.expect_nothing_pending().await;
}

/// An `Origin` outside `--allowed-origins`: HTTP 403; no `Origin` is allowed; origins compare
/// as `scheme://host[:port]` with the host case-insensitive.
pub async fn handshake_disallowed_origin_is_403<A: Adapter>() {
    let server = A::start(Settings {
        allowed_origins: Some("https://a.example,http://localhost:3000".into()),
        ..Settings::default()
    });
    for origin in [
        "https://evil.example",
        "http://a.example",
        "https://a.example:8443",
        "http://localhost:3001",
        "null",
    ] {
        let r =
            exchange_then_closed(server.addr, &upgrade_request("/ws", &[("Origin", origin)])).await;
        r.assert_status(403, &format!("Origin {origin}"));
    }
    for origin in [
        None,
        Some("https://a.example"),
        Some("https://A.Example"),
        Some("http://localhost:3000"),
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let tok = format!("/ws?token={}", token(&server.jwt_secret, "web"));
        let mut raw = RawWs::connect(server.addr, &tok, &headers, None).await;
        let first = raw.recv_json().await;
        assert_eq!(
            first["type"],
            json!("auth_success"),
            "Origin {origin:?}: {first}"
        );
    }
}

/// At `--max-connections` WebSocket connections, upgrades get HTTP 503 while `/healthz`,
/// `/metrics` and `/api/*` are still served; a freed slot is usable again.
pub async fn handshake_max_connections_is_503_while_http_answers<A: Adapter>() {
    let server = A::start(Settings {
        max_connections: 2,
        ..Settings::default()
    });
    let (mut a, _) = Client::authed(&server, "a").await;
    let b = Client::anon(&server, "b").await;
    let tok = token(&server.jwt_secret, "c");
    let r = exchange_then_closed(
        server.addr,
        &upgrade_request(&format!("/ws?token={tok}"), &[]),
    )
    .await;
    r.assert_status(503, "third upgrade at max_connections 2");
    server
        .get("/healthz")
        .await
        .assert_status(200, "/healthz at the cap");
    server
        .get("/metrics")
        .await
        .assert_status(200, "/metrics at the cap");
    let stats = server.stats().await;
    assert_eq!(stats["connections"], json!(2), "{stats}");
    a.expect_nothing_pending().await;

    b.close().await;
    let addr = server.addr;
    let target = format!("/ws?token={tok}");
    eventually("a slot frees up after a client leaves", WAIT, || {
        let target = target.clone();
        async move { Client::try_connect(addr, &target, &[], "c").await.is_ok() }
    })
    .await;
}

/// The per-IP connection limit (every open socket, authenticated or not): HTTP 429.
pub async fn handshake_per_ip_limit_is_429<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.max_connections_per_ip = 2;
    let server = A::start(settings);
    let (mut a, _) = Client::authed(&server, "a").await;
    let b = Client::anon(&server, "b").await;
    let r = exchange_then_closed(server.addr, &upgrade_request("/ws", &[])).await;
    r.assert_status(429, "third connection from 127.0.0.1 with a limit of 2");
    let tok = token(&server.jwt_secret, "c");
    let r = exchange_then_closed(
        server.addr,
        &upgrade_request(&format!("/ws?token={tok}"), &[]),
    )
    .await;
    r.assert_status(429, "authenticated third connection");
    a.expect_nothing_pending().await;
    server.get("/healthz").await.assert_status(200, "/healthz");

    b.close().await;
    let addr = server.addr;
    eventually("the per-IP slot frees up", WAIT, || async move {
        Client::try_connect(addr, "/ws", &[], "again").await.is_ok()
    })
    .await;
}

/// Behind a trusted proxy, the client IP is the right-most `X-Forwarded-For` address that is
/// not itself trusted: it is recorded and the per-IP limit counts it. From an untrusted peer
/// the header is ignored.
pub async fn handshake_trusted_proxy_gives_forwarded_ip<A: Adapter>() {
    let mut settings = Settings {
        trusted_proxies: Some("127.0.0.1/32".into()),
        ..Settings::default()
    };
    settings.core.max_connections_per_ip = 1;
    let server = A::start(settings);
    let target = |user: &str| format!("/ws?token={}", token(&server.jwt_secret, user));

    let mut one = RawWs::connect(
        server.addr,
        &target("u1"),
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.7")],
        None,
    )
    .await;
    one.recv_json().await;
    let mut two = RawWs::connect(
        server.addr,
        &target("u2"),
        &[("X-Forwarded-For", "203.0.113.8, 127.0.0.1")],
        None,
    )
    .await;
    two.recv_json().await;
    let p1 = server.presence("u1").await;
    assert_eq!(p1["connections"][0]["ip"], json!("203.0.113.7"), "{p1}");
    let p2 = server.presence("u2").await;
    assert_eq!(p2["connections"][0]["ip"], json!("203.0.113.8"), "{p2}");

    let r = exchange_then_closed(
        server.addr,
        &upgrade_request(&target("u3"), &[("X-Forwarded-For", "203.0.113.7")]),
    )
    .await;
    r.assert_status(
        429,
        "second connection from forwarded IP 203.0.113.7 (limit 1)",
    );

    // Untrusted peer: the header is ignored.
    let plain = A::start(Settings::default());
    let mut c = RawWs::connect(
        plain.addr,
        &format!("/ws?token={}", token(&plain.jwt_secret, "u4")),
        &[("X-Forwarded-For", "203.0.113.9")],
        None,
    )
    .await;
    c.recv_json().await;
    let p4 = plain.presence("u4").await;
    assert_eq!(p4["connections"][0]["ip"], json!("127.0.0.1"), "{p4}");
}

/// A client that does not complete its request within `handshake_timeout` (slowloris) is
/// disconnected (with a 408 or without a response); others are served meanwhile.
pub async fn handshake_slowloris_is_disconnected<A: Adapter>() {
    let timeout = Duration::from_millis(500);
    let server = A::start(Settings {
        handshake_timeout: timeout,
        ..Settings::default()
    });
    let start = Instant::now();
    let mut partial = TcpStream::connect(server.addr).await.expect("connect");
    partial
        .write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        .await
        .expect("write a partial request");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");

    // Others are served while the two hang.
    let (mut ok, _) = Client::authed(&server, "patient").await;
    ok.expect_nothing_pending().await;

    let bound = timeout + Duration::from_millis(2500);
    for (what, stream) in [("partial request", &mut partial), ("silent", &mut silent)] {
        let mut got = Vec::new();
        let ended = tokio::time::timeout(bound.saturating_sub(start.elapsed()), async {
            let mut chunk = [0u8; 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "{what}: not disconnected within {bound:?} of connecting (handshake_timeout {timeout:?})"
        );
        let text = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{what}: only a 408 (or nothing) may be sent, got {text:?}"
        );
    }
    ok.expect_nothing_pending().await;
}
