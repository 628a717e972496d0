//! What an operator reads in the log when clients are refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{free_port, start_logging_json, wait_until_serving};

/// A refused upgrade (401 at the handshake) and a refused in-band `auth` are each logged as a
/// JSON line with the client's `ip`, the `code` and the `reason`.
pub fn refusals_are_logged_as_json_with_ip_code_and_reason(binary: &str) {
    let port = free_port();
    let (mut child, lines) = start_logging_json(binary, port);
    wait_until_serving(port, &mut child, binary);

    let upgrade = |target: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).expect("a status line");
        (stream, String::from_utf8_lossy(&head).into_owned())
    };
    let (_refused, status) = upgrade("/ws?token=not-a-jwt");
    assert_eq!(status, "HTTP/1.1 401", "a bad token at the upgrade");
    let (mut ws, status) = upgrade("/ws");
    assert_eq!(status, "HTTP/1.1 101", "an upgrade without a token");
    // One masked text frame (a client's frames are masked): {"type":"auth","token":"bad"}.
    let text = br#"{"type":"auth","token":"bad"}"#;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    ws.write_all(&frame).unwrap();

    let mut found = (None, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while found.0.is_none() || found.1.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        let value: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        match value["message"].as_str() {
            Some("handshake refused") => found.0 = Some(value),
            Some("authentication refused") => found.1 = Some(value),
            _ => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for (what, line) in [
        ("handshake refused", found.0),
        ("authentication refused", found.1),
    ] {
        let line = line.unwrap_or_else(|| panic!("no {what:?} line"));
        assert_eq!(line["ip"], "127.0.0.1", "{what}: {line}");
        assert_eq!(line["code"], 401, "{what}: {line}");
        let reason = line["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{what} gives a reason: {line}");
    }
}
