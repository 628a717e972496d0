//! The examples, run: each one serves on 127.0.0.1 and a real WebSocket client goes through
//! one round trip (auth, subscribe, publish), a replacement (4001) and a refusal (401).

use std::net::TcpListener;

use tungstenite::{Message, WebSocket};

#[allow(dead_code)] // its `main`
#[path = "../examples/event_loop.rs"]
mod event_loop;

/// The next text message's `type`, skipping pings.
fn next_type<S: std::io::Read + std::io::Write>(
    ws: &mut WebSocket<S>,
) -> (String, serde_json::Value) {
    loop {
        match ws.read().expect("a message") {
            Message::Text(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                return (v["type"].as_str().unwrap_or_default().to_owned(), v);
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn event_loop_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || event_loop::run(listener, event_loop::SECRET));

    let token = event_loop::token(event_loop::SECRET, "alice");
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/ws?token={token}&device=laptop")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
    }
    let (kind, auth) = next_type(&mut ws);
    assert_eq!(
        (kind.as_str(), auth["userId"].as_str()),
        ("auth_success", Some("alice"))
    );

    ws.send(Message::text(
        r#"{"type":"subscribe","topic":"chat.*","id":"1"}"#,
    ))
    .unwrap();
    assert_eq!(next_type(&mut ws).0, "subscribed");

    ws.send(Message::text(
        r#"{"type":"message","topic":"chat.lobby","data":{"text":"hi"},"id":"2"}"#,
    ))
    .unwrap();
    let mut got = [next_type(&mut ws), next_type(&mut ws)];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got[0].0, "ack");
    assert_eq!(got[1].0, "message");
    assert_eq!(got[1].1["data"]["text"], "hi");
    assert_eq!(got[1].1["metadata"]["senderId"], "alice");

    // A second connection of the same device replaces the first: close 4001 (the core's
    // decision, written by the example's transport).
    let url = format!("ws://{addr}/ws?token={token}&device=laptop");
    let (mut newer, _) = tungstenite::connect(url).unwrap();
    assert_eq!(next_type(&mut newer).0, "auth_success");
    let code = loop {
        match ws.read().expect("the close frame") {
            Message::Close(frame) => break frame.map(|f| u16::from(f.code)),
            _ => continue,
        }
    };
    assert_eq!(code, Some(4001));

    // A refused upgrade is answered with the core's status: a bad token is 401.
    let refused = tungstenite::connect(format!("ws://{addr}/ws?token=nope")).unwrap_err();
    match refused {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}
