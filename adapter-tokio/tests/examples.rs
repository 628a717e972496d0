//! examples/chat.rs, run: two real WebSocket clients on 127.0.0.1 join a room, one is told
//! that the other came online, and a post reaches both. With the feature `axum`,
//! examples/axum.rs too: a WebSocket client and HTTP requests through the application's port.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[allow(dead_code)] // its `main`
#[path = "../examples/chat.rs"]
mod chat;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next text message as JSON, skipping pings; at most 5 s.
async fn next_json(ws: &mut Client) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Connects `user`, waits for `auth_success` and joins every room.
async fn join(addr: std::net::SocketAddr, user: &str) -> Client {
    let url = format!("ws://{addr}/ws?token={}", chat::token(user));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["userId"], user);
    let subscribe = r#"{"type":"subscribe","topic":"chat.*"}"#;
    ws.send(Message::text(subscribe)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

#[tokio::test]
async fn chat_round_trip() {
    let server = chat::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let served = tokio::spawn(server.run());

    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    // The announcer's system message about bob (one about alice may come first).
    loop {
        let m = next_json(&mut alice).await;
        if m["data"]["system"] == "bob is online" {
            assert_eq!(m["topic"], "chat.lobby");
            break;
        }
    }

    let post = r#"{"type":"message","topic":"chat.rust","data":{"text":"hi"}}"#;
    bob.send(Message::text(post)).await.unwrap();
    for ws in [&mut alice, &mut bob] {
        let m = loop {
            let m = next_json(ws).await;
            if m["topic"] == "chat.rust" {
                break m;
            }
        };
        assert_eq!(
            (
                m["data"]["text"].as_str(),
                m["metadata"]["senderId"].as_str()
            ),
            (Some("hi"), Some("bob"))
        );
    }

    // Outside the token's rooms: refused with 403.
    let outside = r#"{"type":"subscribe","topic":"admin.logs","id":"x"}"#;
    alice.send(Message::text(outside)).await.unwrap();
    let refused = next_json(&mut alice).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_u64()),
        (Some("error"), Some(403))
    );

    handle.shutdown().unwrap();
    drop((alice, bob));
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[cfg(feature = "axum")]
#[allow(dead_code)] // its `main`
#[path = "../examples/axum.rs"]
mod axum_app;

/// One HTTP/1.1 request on a connection of its own; the status and the body (the server
/// closes the connection after its answer, `Connection: close`).
#[cfg(feature = "axum")]
async fn http(addr: std::net::SocketAddr, request: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// examples/axum.rs: the application's own routes and the mounted gateway on one port; a
/// WebSocket authenticates and subscribes through it, a publish over the HTTP API and a push
/// from the application's own route reach it, and a shutdown stops both the gateway and axum.
#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_mount_round_trip() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, gateway) = axum_app::mount(addr).unwrap();
    let handle = gateway.handle();
    let served = tokio::spawn(axum_app::serve(listener, app, gateway));

    let (status, page) = http(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("an axum application"), "{page}");

    let url = format!("ws://{addr}/ws?token={}", axum_app::token("alice"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(
        (welcome["type"].as_str(), welcome["userId"].as_str()),
        (Some("auth_success"), Some("alice"))
    );
    ws.send(Message::text(r#"{"type":"subscribe","topic":"news"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");

    let publish = r#"{"topic":"news","data":{"text":"hi"}}"#;
    let (status, answer) = http(
        addr,
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: {addr}\r\nAuthorization: apikey {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{publish}",
            axum_app::API_KEY,
            publish.len()
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["delivered"], 1, "{answer}");
    let message = next_json(&mut ws).await;
    assert_eq!(
        (message["topic"].as_str(), message["data"]["text"].as_str()),
        (Some("news"), Some("hi")),
        "{message}"
    );

    let (status, answer) = http(
        addr,
        format!("POST /notify/alice HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 7\r\n\r\nshipped"),
    )
    .await;
    assert_eq!(
        (status, answer.as_str()),
        (200, "reached 1 connection(s)\n")
    );
    let push = next_json(&mut ws).await;
    assert_eq!(push["data"]["notice"], "shipped", "{push}");

    handle.shutdown().unwrap();
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close within 5 s");
    assert_eq!(close, Some(1001));
    drop(ws);
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("axum and the gateway stopped within 10 s")
        .unwrap()
        .unwrap();
}
