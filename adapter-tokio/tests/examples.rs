//! examples/chat.rs, run: two real WebSocket clients on 127.0.0.1 join a room, one is told
//! that the other came online, and a post reaches both.

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
