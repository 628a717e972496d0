//! PROTOCOL.md "Authentication".

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::auth::sign_hs256;

use crate::util::{alg_none_token, claims, expired_token, token, WAIT};
use crate::ws::Client;
use crate::{Adapter, Settings};

/// `{"type":"auth","token":…}` authenticates: `auth_success` with userId, connId and the id.
pub async fn auth_by_message_succeeds<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut client = Client::anon(&server, "anon").await;
    let reply = client
        .request(&json!({"type": "auth", "token": token(&server.jwt_secret, "alice"), "id": "a1"}))
        .await;
    assert_eq!(reply["type"], json!("auth_success"), "{reply}");
    assert_eq!(reply["userId"], json!("alice"), "{reply}");
    assert_eq!(reply["id"], json!("a1"), "{reply}");
    assert!(
        reply["connId"]
            .as_str()
            .is_some_and(|c| c.split('.').count() == 4),
        "{reply}"
    );
    // Authenticated now: subscribing works.
    let sub = client
        .request(&json!({"type": "subscribe", "topic": "chat.x"}))
        .await;
    assert_eq!(sub["type"], json!("subscribed"), "{sub}");
    assert_eq!(server.presence("alice").await["online"], json!(true));
}

/// After `auth_error` the connection stays open and may authenticate.
pub async fn auth_error_then_success<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut client = Client::anon(&server, "anon").await;
    let reply = client
        .request(&json!({"type": "auth", "token": "garbage", "id": "x"}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_u64()),
        (Some("auth_error"), Some(401)),
        "{reply}"
    );
    assert_eq!(reply["id"], json!("x"), "{reply}");
    assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));

    let reply = client
        .request(&json!({"type": "auth", "token": expired_token(&server.jwt_secret, "alice")}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_u64()),
        (Some("auth_error"), Some(401)),
        "{reply}"
    );
    assert_eq!(reply["message"], json!("token expired"), "{reply}");

    let reply = client
        .request(&json!({"type": "auth", "token": token(&server.jwt_secret, "alice")}))
        .await;
    assert_eq!(reply["type"], json!("auth_success"), "{reply}");
    assert_eq!(reply["userId"], json!("alice"), "{reply}");
}

/// The algorithm is pinned (`none` refused) and the signature checked.
pub async fn auth_refuses_alg_none_and_wrong_secret<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut client = Client::anon(&server, "anon").await;
    for bad in [alg_none_token("root"), token(b"not the secret", "root")] {
        let reply = client.request(&json!({"type": "auth", "token": bad})).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_u64()),
            (Some("auth_error"), Some(401)),
            "{reply}"
        );
    }
    assert_eq!(server.presence("root").await["online"], json!(false));
}

/// A second `auth` on an authenticated connection: `error` 409.
pub async fn auth_second_auth_is_409<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut client, _) = Client::authed(&server, "alice").await;
    client
        .expect_error(
            &json!({"type": "auth", "token": token(&server.jwt_secret, "bob"), "id": "again"}),
            409,
        )
        .await;
    let presence = server.presence("bob").await;
    assert_eq!(presence["online"], json!(false), "{presence}");
    client.expect_nothing_pending().await;
}

/// An `auth` without a string `token`: `error` 400.
pub async fn auth_without_string_token_is_400<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut client = Client::anon(&server, "anon").await;
    client
        .expect_error(&json!({"type": "auth", "id": "t1"}), 400)
        .await;
    client
        .expect_error(&json!({"type": "auth", "token": 42, "id": "t2"}), 400)
        .await;
    // Still usable.
    let reply = client
        .request(&json!({"type": "auth", "token": token(&server.jwt_secret, "alice")}))
        .await;
    assert_eq!(reply["type"], json!("auth_success"), "{reply}");
}

/// Before authentication only `auth` and `ping` are allowed; every other type gets `error` 401.
pub async fn auth_required_before_other_types_401<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut client = Client::anon(&server, "anon").await;
    client
        .expect_error(
            &json!({"type": "subscribe", "topic": "chat.a", "id": "s"}),
            401,
        )
        .await;
    client
        .expect_error(
            &json!({"type": "unsubscribe", "topic": "chat.a", "id": "u"}),
            401,
        )
        .await;
    client
        .expect_error(
            &json!({"type": "message", "topic": "chat.a", "data": 1, "id": "m"}),
            401,
        )
        .await;
    let pong = client.request(&json!({"type": "ping", "id": "p"})).await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("p")),
        "{pong}"
    );
}

/// `{"type":"ping"}` gets `{"type":"pong"}` with the id echoed, authenticated or not.
pub async fn auth_app_ping_gets_pong<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut client, _) = Client::authed(&server, "alice").await;
    let pong = client.request(&json!({"type": "ping", "id": "42"})).await;
    assert_eq!(pong["type"], json!("pong"), "{pong}");
    assert_eq!(pong["id"], json!("42"), "{pong}");
    let pong = client.request(&json!({"type": "ping"})).await;
    assert_eq!(pong["type"], json!("pong"), "{pong}");
    assert!(pong.get("id").is_none(), "no id given, none echoed: {pong}");
}

/// A connection not authenticated within `auth_timeout` is closed with 4008, including one that
/// got an `auth_error`; an authenticated one is not.
pub async fn auth_timeout_closes_4008<A: Adapter>() {
    let auth_timeout = Duration::from_millis(500);
    let mut settings = Settings::default();
    settings.core.auth_timeout = auth_timeout;
    let server = A::start(settings);
    let start = Instant::now();
    let mut silent = Client::anon(&server, "silent").await;
    let mut failed = Client::anon(&server, "failed").await;
    let (mut authed, _) = Client::authed(&server, "alice").await;
    let reply = failed
        .request(&json!({"type": "auth", "token": "garbage"}))
        .await;
    assert_eq!(reply["type"], json!("auth_error"), "{reply}");

    for client in [&mut silent, &mut failed] {
        client.expect_close(4008).await;
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= auth_timeout - Duration::from_millis(100),
        "closed after {elapsed:?}, before auth_timeout {auth_timeout:?}"
    );
    assert!(
        elapsed <= auth_timeout + Duration::from_secs(2) + WAIT,
        "closed only after {elapsed:?}"
    );
    authed.expect_nothing_pending().await;
}

/// Device id precedence: auth message `deviceId`, then handshake `device`, then token `device`.
pub async fn auth_device_id_precedence<A: Adapter>() {
    let server = A::start(Settings::default());
    let secret = server.jwt_secret.clone();
    let with_device = |device: &str| {
        let mut c = claims("dora");
        c.device = Some(device.into());
        sign_hs256(&secret, &c)
    };
    // Message deviceId beats handshake device and token device.
    let mut a = Client::connect(&server, "device=hs-a", "a").await;
    let r = a
        .request(&json!({"type": "auth", "token": with_device("tok-a"), "deviceId": "msg-a"}))
        .await;
    assert_eq!(r["type"], json!("auth_success"), "{r}");
    // Handshake device beats token device.
    let mut b = Client::connect(&server, "device=hs-b", "b").await;
    let r = b
        .request(&json!({"type": "auth", "token": with_device("tok-b")}))
        .await;
    assert_eq!(r["type"], json!("auth_success"), "{r}");
    // Token device alone.
    let mut c = Client::connect(&server, &format!("token={}", with_device("tok-c")), "c").await;
    c.recv_type("auth_success").await;

    let presence = server.presence("dora").await;
    let mut devices: Vec<String> = presence["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["deviceId"].as_str().unwrap_or("<none>").to_string())
        .collect();
    devices.sort();
    assert_eq!(devices, ["hs-b", "msg-a", "tok-c"], "{presence}");
    for client in [&mut a, &mut b, &mut c] {
        client.expect_nothing_pending().await;
    }
}

/// A token that expires while connected: close 4003.
pub async fn auth_token_expiry_closes_4003<A: Adapter>() {
    let server = A::start(Settings::default());
    let mut c = claims("ephemeral");
    c.exp = crate::util::unix_now() + 2;
    let token = sign_hs256(&server.jwt_secret, &c);
    let mut client = Client::connect(&server, &format!("token={token}"), "ephemeral").await;
    client.recv_type("auth_success").await;
    let (mut other, _) = Client::authed(&server, "lasting").await;
    // Expiry is at most 2 s away (exp has whole seconds): wait for it, with a margin.
    let closed = tokio::time::timeout(Duration::from_secs(5), client.expect_close(4003)).await;
    assert!(
        closed.is_ok(),
        "no 4003 within 5 s of a token expiring in at most 2 s"
    );
    other.expect_nothing_pending().await;
    assert_eq!(server.presence("ephemeral").await["online"], json!(false));
}

/// `jwt_leeway` accepts a token that expired less than the leeway ago.
pub async fn auth_jwt_leeway_accepts_recently_expired<A: Adapter>() {
    let mut settings = Settings::default();
    settings.core.jwt_leeway = Duration::from_secs(600);
    let server = A::start(settings);
    let recently = expired_token(&server.jwt_secret, "skewed"); // expired 60 s ago
    let mut client = Client::connect(&server, &format!("token={recently}"), "skewed").await;
    client.recv_type("auth_success").await;
    let mut c = claims("old");
    c.exp = crate::util::unix_now() - 3600;
    let reply = client
        .request(&json!({"type": "auth", "token": sign_hs256(&server.jwt_secret, &c)}))
        .await;
    assert_eq!(reply["code"], json!(409), "already authenticated: {reply}");
    let mut anon = Client::anon(&server, "anon").await;
    let reply = anon
        .request(&json!({"type": "auth", "token": sign_hs256(&server.jwt_secret, &c)}))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["message"].as_str()),
        (Some("auth_error"), Some("token expired")),
        "expired beyond the leeway: {reply}"
    );
}
