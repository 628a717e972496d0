//! examples/embed.rs, run: the WebSocket server and the application's control port in one
//! `Poll`; a real WebSocket client on 127.0.0.1 sees a line of the control port published.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::auth;
use tungstenite::{Message, WebSocket};

#[allow(dead_code)] // its `main`
#[path = "../examples/embed.rs"]
mod embed;

/// The next text message as JSON, skipping pings.
fn next_json(ws: &mut WebSocket<impl std::io::Read + Write>) -> serde_json::Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn embed_round_trip() {
    let (ready, addrs) = std::sync::mpsc::channel();
    let any = "127.0.0.1:0".parse().unwrap();
    let server = std::thread::spawn(move || {
        embed::run(any, any, "secret", |ws, control| {
            ready.send((ws, control)).unwrap();
        })
    });
    let (ws_addr, control_addr) = addrs.recv_timeout(Duration::from_secs(10)).unwrap();

    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = auth::Claims {
        sub: "alice".into(),
        exp,
        device: None,
        topics: None,
        info: None,
    };
    let token = auth::sign_hs256(b"secret", &claims);
    let tcp = TcpStream::connect(ws_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{ws_addr}/ws?token={token}"), tcp).unwrap();
    assert_eq!(next_json(&mut ws)["type"], "auth_success");
    ws.send(Message::text(r#"{"type":"subscribe","topic":"chat.*"}"#))
        .unwrap();
    assert_eq!(next_json(&mut ws)["type"], "subscribed");

    // The application's own source: a line on the control port is published.
    let mut control = TcpStream::connect(control_addr).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    control
        .write_all(b"chat.lobby {\"text\":\"hi\"}\n")
        .unwrap();
    let mut replies = BufReader::new(control.try_clone().unwrap());
    let mut line = String::new();
    replies.read_line(&mut line).unwrap();
    assert_eq!(line, "queued\n");
    let message = next_json(&mut ws);
    assert_eq!(
        (message["type"].as_str(), message["topic"].as_str()),
        (Some("message"), Some("chat.lobby"))
    );
    assert_eq!(message["data"]["text"], "hi");

    // `shutdown` drains: the client is closed with 1001, and `run` returns.
    control.write_all(b"shutdown\n").unwrap();
    let close = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(close, Some(1001));
    while ws.read().is_ok() {} // finish the close handshake
    server.join().unwrap().unwrap();
}
