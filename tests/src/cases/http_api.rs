//! SPEC.md "HTTP API of the reference server", on the same port as `/ws`.

use serde_json::{json, Value};

use crate::http::{exchange, get_request, post_request};
use crate::ws::Client;
use crate::{Adapter, Settings};

fn assert_push(msg: &Value, data: &Value) {
    assert_eq!(
        (msg["type"].as_str(), &msg["data"]),
        (Some("push"), data),
        "expected a push of {data}, got {msg}"
    );
}

/// `/api/*` without the key, with a wrong key or another scheme: 401 with an error body; a
/// server without a key answers 401 to everyone.
pub async fn http_api_requires_key<A: Adapter>() {
    let server = A::start(Settings::default());
    let key = server.api_key.clone().expect("key");
    let body = json!({"data": 1}).to_string();
    for (what, auth) in [
        ("no key", None),
        ("wrong key", Some("apikey wrong".to_string())),
        ("bearer scheme", Some(format!("Bearer {key}"))),
        ("bare key", Some(key.clone())),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        exchange(server.addr, &get_request("/api/stats", &headers))
            .await
            .assert_api_error(401, &format!("GET /api/stats, {what}"));
        exchange(
            server.addr,
            &post_request("/api/broadcast", &headers, body.as_bytes()),
        )
        .await
        .assert_api_error(401, &format!("POST /api/broadcast, {what}"));
    }
    server
        .api_get("/api/stats")
        .await
        .assert_status(200, "with the key");

    let keyless = A::start(Settings {
        api_key: None,
        ..Settings::default()
    });
    let auth = format!("apikey {key}");
    exchange(
        keyless.addr,
        &get_request("/api/stats", &[("Authorization", &auth)]),
    )
    .await
    .assert_api_error(401, "a server without a key");
}

/// `POST /api/publish` reaches subscribers like a client publish, `senderId` = `"server"`.
pub async fn http_api_publish_delivers_message<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut alice, _) = Client::authed(&server, "alice").await;
    let (mut bob, _) = Client::authed(&server, "bob").await;
    for (c, p) in [(&mut alice, "news.*"), (&mut bob, "news.**")] {
        let r = c.request(&json!({"type": "subscribe", "topic": p})).await;
        assert_eq!(r["type"], json!("subscribed"), "{r}");
    }
    let r = server
        .api_post(
            "/api/publish",
            &json!({"topic": "news.a", "data": {"h": 1}, "metadata": {"src": "cms", "senderId": "x"}}),
        )
        .await;
    r.assert_status(200, "publish");
    assert_eq!(r.json()["delivered"], json!(2), "{}", r.text());
    for c in [&mut alice, &mut bob] {
        let msg = c.recv_json().await;
        assert_eq!(
            (msg["type"].as_str(), msg["topic"].as_str()),
            (Some("message"), Some("news.a")),
            "{msg}"
        );
        assert_eq!(msg["data"], json!({"h": 1}), "{msg}");
        assert_eq!(msg["metadata"]["src"], json!("cms"), "{msg}");
        assert_eq!(msg["metadata"]["senderId"], json!("server"), "{msg}");
    }
    let r = server
        .api_post("/api/publish", &json!({"topic": "news.a.b", "data": null}))
        .await;
    r.assert_status(200, "publish without metadata");
    assert_eq!(r.json()["delivered"], json!(1), "{}", r.text());
    let msg = bob.recv_json().await;
    assert_eq!(msg["metadata"]["senderId"], json!("server"), "{msg}");
    alice.expect_nothing_pending().await;

    let r = server
        .api_post("/api/publish", &json!({"topic": "other.x", "data": 1}))
        .await;
    r.assert_status(200, "publish to nobody");
    assert_eq!(r.json()["delivered"], json!(0), "{}", r.text());
    server
        .api_post("/api/publish", &json!({"topic": "news.*", "data": 1}))
        .await
        .assert_api_error(400, "publish to a wildcard");
}

/// `POST /api/send` to a user, a device and a connection: `push` frames and the count.
pub async fn http_api_send_delivers_push<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut d1, _) = Client::authed_device(&server, "ursula", Some("d1")).await;
    let (mut d2, d2_auth) = Client::authed_device(&server, "ursula", Some("d2")).await;
    let (mut other, _) = Client::authed(&server, "victor").await;

    let r = server
        .api_post("/api/send", &json!({"userId": "ursula", "data": {"n": 1}}))
        .await;
    r.assert_status(200, "send to a user");
    assert_eq!(r.json()["delivered"], json!(2), "{}", r.text());
    assert_push(&d1.recv_json().await, &json!({"n": 1}));
    assert_push(&d2.recv_json().await, &json!({"n": 1}));

    let r = server
        .api_post(
            "/api/send",
            &json!({"userId": "ursula", "deviceId": "d1", "data": "dev"}),
        )
        .await;
    r.assert_status(200, "send to a device");
    assert_eq!(r.json()["delivered"], json!(1), "{}", r.text());
    assert_push(&d1.recv_json().await, &json!("dev"));

    let r = server
        .api_post(
            "/api/send",
            &json!({"userId": "ursula", "connId": d2_auth["connId"], "data": [1, 2]}),
        )
        .await;
    r.assert_status(200, "send to a connection");
    assert_eq!(r.json()["delivered"], json!(1), "{}", r.text());
    assert_push(&d2.recv_json().await, &json!([1, 2]));

    let r = server
        .api_post("/api/send", &json!({"userId": "nobody", "data": 1}))
        .await;
    r.assert_status(200, "send to an offline user");
    assert_eq!(r.json()["delivered"], json!(0), "{}", r.text());

    for c in [&mut d1, &mut d2, &mut other] {
        c.expect_nothing_pending().await;
    }
}

/// `POST /api/broadcast` to everyone, or to a list of users.
pub async fn http_api_broadcast_delivers_push<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut a, _) = Client::authed(&server, "a").await;
    let (mut b, _) = Client::authed(&server, "b").await;
    let (mut c, _) = Client::authed(&server, "c").await;
    let r = server
        .api_post("/api/broadcast", &json!({"data": {"all": true}}))
        .await;
    r.assert_status(200, "broadcast");
    assert_eq!(r.json()["delivered"], json!(3), "{}", r.text());
    for client in [&mut a, &mut b, &mut c] {
        assert_push(&client.recv_json().await, &json!({"all": true}));
    }
    let r = server
        .api_post(
            "/api/broadcast",
            &json!({"data": "some", "userIds": ["a", "c", "nobody"]}),
        )
        .await;
    r.assert_status(200, "broadcast to users");
    assert_eq!(r.json()["delivered"], json!(2), "{}", r.text());
    assert_push(&a.recv_json().await, &json!("some"));
    assert_push(&c.recv_json().await, &json!("some"));
    for client in [&mut a, &mut b, &mut c] {
        client.expect_nothing_pending().await;
    }
}

/// `GET /api/presence/{userId}`: online with every connection's details; unknown: offline, [].
pub async fn http_api_presence_json<A: Adapter>() {
    let server = A::start(Settings::default());
    let offline = server.presence("nobody").await;
    assert_eq!(
        offline,
        json!({"userId": "nobody", "online": false, "connections": []}),
        "an unknown user"
    );
    let (_p, p_auth) = Client::authed_device(&server, "wanda", Some("phone")).await;
    let (_l, l_auth) = Client::authed_device(&server, "wanda", Some("laptop")).await;
    let presence = server.presence("wanda").await;
    assert_eq!(presence["userId"], json!("wanda"), "{presence}");
    assert_eq!(presence["online"], json!(true), "{presence}");
    let conns = presence["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 2, "{presence}");
    let mut ids: Vec<&Value> = conns.iter().map(|c| &c["connId"]).collect();
    ids.sort_by_key(|v| v.to_string());
    let mut expected = vec![&p_auth["connId"], &l_auth["connId"]];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(ids, expected, "{presence}");
    for c in conns {
        for field in [
            "connId",
            "deviceId",
            "deviceName",
            "userAgent",
            "ip",
            "connectedAt",
        ] {
            assert!(c.get(field).is_some(), "field {field} missing: {presence}");
        }
        assert_eq!(c["ip"], json!("127.0.0.1"), "{presence}");
    }
}

/// `POST /api/disconnect`: default close 1008; a custom 4000..=4999 code and reason; codes
/// outside 1000, 1008, 4000..=4999 refused with 400.
pub async fn http_api_disconnect_codes<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut plain, _) = Client::authed(&server, "xavier").await;
    let (mut d1, _) = Client::authed_device(&server, "yara", Some("d1")).await;
    let (mut d2, _) = Client::authed_device(&server, "yara", Some("d2")).await;

    let r = server
        .api_post("/api/disconnect", &json!({"userId": "xavier"}))
        .await;
    r.assert_status(200, "disconnect");
    assert_eq!(r.json()["closed"], json!(1), "{}", r.text());
    plain.expect_close(1008).await;

    let r = server
        .api_post(
            "/api/disconnect",
            &json!({"userId": "yara", "deviceId": "d1", "code": 4000, "reason": "bye"}),
        )
        .await;
    r.assert_status(200, "disconnect a device with a code");
    assert_eq!(r.json()["closed"], json!(1), "{}", r.text());
    assert_eq!(d1.expect_close(4000).await, "bye");
    d2.expect_nothing_pending().await;

    for code in [1001, 1011, 3000, 5000] {
        server
            .api_post("/api/disconnect", &json!({"userId": "yara", "code": code}))
            .await
            .assert_api_error(400, &format!("code {code}"));
    }
    d2.expect_nothing_pending().await;
    let r = server
        .api_post("/api/disconnect", &json!({"userId": "nobody"}))
        .await;
    r.assert_status(200, "disconnect nobody");
    assert_eq!(r.json()["closed"], json!(0), "{}", r.text());

    let r = server
        .api_post("/api/disconnect", &json!({"userId": "yara", "code": 1000}))
        .await;
    assert_eq!(r.json()["closed"], json!(1), "{}", r.text());
    d2.expect_close(1000).await;
    assert_eq!(server.presence("yara").await["online"], json!(false));
}

/// `GET /api/stats` counts connections, authenticated ones, users, subscriptions, topics.
pub async fn http_api_stats<A: Adapter>() {
    let server = A::start(Settings::default());
    let (mut a, _) = Client::authed(&server, "a").await;
    let (mut b, _) = Client::authed(&server, "b").await;
    let mut anon = Client::anon(&server, "anon").await;
    for (c, p) in [(0, "x.*"), (0, "y"), (1, "x.*")] {
        let client = if c == 0 { &mut a } else { &mut b };
        let r = client
            .request(&json!({"type": "subscribe", "topic": p}))
            .await;
        assert_eq!(r["type"], json!("subscribed"), "{r}");
    }
    anon.expect_nothing_pending().await;
    let stats = server.stats().await;
    for (field, value) in [
        ("connections", 3),
        ("authenticated", 2),
        ("users", 2),
        ("subscriptions", 3),
        ("topics", 2),
    ] {
        assert_eq!(stats[field], json!(value), "stats.{field}: {stats}");
    }
}

/// A malformed body (not JSON, missing or mistyped fields): 400 with an error body.
pub async fn http_api_malformed_body_is_400<A: Adapter>() {
    let server = A::start(Settings::default());
    for path in [
        "/api/publish",
        "/api/send",
        "/api/broadcast",
        "/api/disconnect",
    ] {
        server
            .api_post_raw(path, b"not json")
            .await
            .assert_api_error(400, &format!("{path} with a non-JSON body"));
        server
            .api_post_raw(path, b"[1,2]")
            .await
            .assert_api_error(400, &format!("{path} with a non-object body"));
    }
    for (path, body) in [
        ("/api/publish", json!({"data": 1})),
        ("/api/publish", json!({"topic": "a.b"})),
        ("/api/publish", json!({"topic": 5, "data": 1})),
        ("/api/send", json!({"data": 1})),
        ("/api/send", json!({"userId": "u"})),
        ("/api/broadcast", json!({})),
        ("/api/broadcast", json!({"data": 1, "userIds": "u"})),
        ("/api/disconnect", json!({})),
        ("/api/disconnect", json!({"userId": "u", "code": "x"})),
    ] {
        server
            .api_post(path, &body)
            .await
            .assert_api_error(400, &format!("{path} {body}"));
    }
    server.get("/healthz").await.assert_status(200, "/healthz");
}

/// `/healthz` is 200 `{"status":"ok"}`; `/metrics` is Prometheus text; neither needs a key.
pub async fn http_healthz_and_metrics<A: Adapter>() {
    let server = A::start(Settings::default());
    let (_c, _) = Client::authed(&server, "m").await;
    let health = server.get("/healthz").await;
    health.assert_status(200, "/healthz");
    assert_eq!(health.json()["status"], json!("ok"), "{}", health.text());
    let metrics = server.get("/metrics").await;
    metrics.assert_status(200, "/metrics");
    let text = metrics.text();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!samples.is_empty(), "no samples in /metrics: {text:?}");
    for line in samples {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "not a Prometheus sample line: {line:?}"
        );
    }
}
