//! The adapter over real sockets, with raw `std` clients that do the upgrade by hand, so that
//! the tests control exactly how fast they read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use switchboard_core::auth::{sign_hs256, Claims};
use switchboard_mio::{Handle, Server, ServerConfig, Stopped};

const SECRET: &[u8] = b"test secret";

struct Running {
    addr: SocketAddr,
    handle: Handle,
    thread: JoinHandle<std::io::Result<()>>,
}

fn start(configure: impl FnOnce(&mut ServerConfig)) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().expect("address"), SECRET);
    config.drain_timeout = Duration::from_secs(3);
    configure(&mut config);
    let server = Server::bind(config).expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    Running {
        addr,
        handle,
        thread,
    }
}

impl Running {
    /// Shuts down and waits for `run` to return, within `within`.
    fn stop(self, within: Duration) {
        let _ = self.handle.shutdown();
        let deadline = Instant::now() + within;
        while !self.thread.is_finished() {
            assert!(Instant::now() < deadline, "the server did not stop in time");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.thread
            .join()
            .expect("server thread")
            .expect("run returned an error");
    }
}

fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    sign_hs256(
        SECRET,
        &Claims {
            sub: sub.into(),
            exp: now + 3600,
            device: None,
            topics: None,
            info: None,
        },
    )
}

/// Reads until the end of the response head; returns it.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read head");
        assert_eq!(n, 1, "connection closed inside the head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// Upgrades by hand; returns the socket right after the 101 head.
fn upgrade(addr: SocketAddr, user: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /ws?token={} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token(user)
    )
    .expect("write upgrade");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    stream
}

/// Reads one unmasked server frame: (opcode, payload), through `read`.
fn read_frame(read: &mut impl FnMut(&mut [u8])) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    read(&mut header);
    assert_eq!(header[0] & 0x80, 0x80, "a final frame");
    assert_eq!(header[1] & 0x80, 0, "server frames are unmasked");
    let len = match header[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            read(&mut ext);
            usize::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            read(&mut ext);
            usize::try_from(u64::from_be_bytes(ext)).expect("length")
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    read(&mut payload);
    (header[0] & 0x0f, payload)
}

fn exact(stream: &mut TcpStream) -> impl FnMut(&mut [u8]) + '_ {
    move |buf| stream.read_exact(buf).expect("read frame")
}

/// A masked client close frame with this code.
fn client_close(code: u16) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let payload = code.to_be_bytes();
    let mut frame = vec![0x88, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// One HTTP request; returns the whole answer (the server closes after it).
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    let answer = get(addr, "/metrics");
    answer
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

/// One 4 MiB message to a client that reads a few KiB at a time with pauses: the server's
/// writes block and resume on writability many times, and the message arrives whole.
#[test]
fn a_large_message_reaches_a_slow_reader_whole() {
    const SIZE: usize = 4 * 1024 * 1024;
    let server = start(|config| {
        config.core.max_message_bytes = 2 * SIZE;
        config.core.max_outbound_bytes = 2 * SIZE;
    });
    let mut client = upgrade(server.addr, "alice");
    let (opcode, auth) = read_frame(&mut exact(&mut client));
    assert_eq!(opcode, 1);
    assert!(String::from_utf8_lossy(&auth).contains("auth_success"));

    // A string of every printable ASCII character, repeated: a shifted or lost chunk shows.
    let text: String = (0..SIZE)
        .map(|i| char::from(b' ' + (i % 90) as u8))
        .collect();
    let text = text.replace(['"', '\\'], "_");
    let data = RawValue::from_string(serde_json::to_string(&text).expect("json")).expect("raw");
    assert_eq!(server.handle.send_to_user("alice", data), Ok(1));

    // The client has read nothing yet: the socket buffers cannot hold 4 MiB, so a partial
    // write is pending in the server.
    let pending = metric(server.addr, "switchboard_outbound_backlog_bytes");
    assert!(
        pending > 0,
        "expected a pending partial write, backlog {pending}"
    );

    let mut reads = 0usize;
    let (opcode, payload) = read_frame(&mut |buf: &mut [u8]| {
        let mut filled = 0;
        while filled < buf.len() {
            let end = buf.len().min(filled + 4096);
            let n = client.read(&mut buf[filled..end]).expect("slow read");
            assert!(n > 0, "closed mid-message");
            filled += n;
            reads += 1;
            if reads.is_multiple_of(16) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    assert!(reads > 100, "the reader was not slow: {reads} reads");
    assert_eq!(opcode, 1, "a text frame");
    let push: serde_json::Value = serde_json::from_slice(&payload).expect("JSON push");
    assert_eq!(push["type"], "push");
    let got = push["data"].as_str().expect("string data");
    assert_eq!(got.len(), text.len());
    assert!(
        got.as_bytes() == text.as_bytes(),
        "the message arrived altered"
    );
    assert_eq!(metric(server.addr, "switchboard_outbound_backlog_bytes"), 0);

    // The drain: 1001, our close answer, and `run` returns.
    server.handle.shutdown().expect("the server runs");
    let (opcode, close) = read_frame(&mut exact(&mut client));
    assert_eq!(opcode, 8);
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
    client.write_all(&client_close(1001)).expect("close");
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("EOF after the handshake");
    assert!(rest.is_empty());
    server.stop(Duration::from_secs(2));
}

/// `/healthz` is 200, then 503 while draining; a client that never answers the close is
/// dropped after the 1 s grace and the server stops long before the drain deadline.
#[test]
fn health_and_drain() {
    let server = start(|_| {});
    let answer = get(server.addr, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"status":"ok"}"#), "{answer}");
    let mut silent = upgrade(server.addr, "bob");
    let _auth = read_frame(&mut exact(&mut silent));
    let started = Instant::now();
    server.handle.shutdown().expect("the server runs");
    let (opcode, close) = read_frame(&mut exact(&mut silent));
    assert_eq!(
        (opcode, u16::from_be_bytes([close[0], close[1]])),
        (8, 1001)
    );
    let answer = get(server.addr, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // The socket is dropped by the grace, not the 3 s drain deadline.
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_millis(2500));
    server.stop(Duration::from_secs(3));
}

/// The HTTP refusals that the adapter itself carries out: 431, 408, 503 at the cap, and the
/// API through the core.
#[test]
fn http_refusals_and_api() {
    let server = start(|config| {
        config.max_connections = 1;
        config.handshake_timeout = Duration::from_millis(300);
        config.api_key = Some("key".into());
    });
    let huge = format!(
        "GET /ws HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert!(http(server.addr, &huge).starts_with("HTTP/1.1 431"));
    let slow = http(server.addr, "GET /healthz HTTP/1.1\r\n");
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(get(server.addr, "/nowhere").starts_with("HTTP/1.1 404"));

    let mut first = upgrade(server.addr, "carol");
    let _auth = read_frame(&mut exact(&mut first));
    let refused = http(
        server.addr,
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");

    let body = r#"{"userId":"carol","data":{"n":1}}"#;
    let answer = http(
        server.addr,
        &format!(
            "POST /api/send HTTP/1.1\r\nHost: t\r\nAuthorization: apikey key\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"delivered":1}"#), "{answer}");
    let (_, push) = read_frame(&mut exact(&mut first));
    assert!(String::from_utf8_lossy(&push).contains(r#""data":{"n":1}"#));

    first.write_all(&client_close(1000)).expect("close");
    let (opcode, _) = read_frame(&mut exact(&mut first));
    assert_eq!(opcode, 8, "the server answers the close");
    assert!(server.handle.with(|c| c.core().stats()).is_ok());
    server.stop(Duration::from_secs(2));
}

/// Handle calls after the server stopped fail with `Stopped` instead of blocking.
#[test]
fn handle_after_stop() {
    let server = start(|_| {});
    let handle = server.handle.clone();
    server.stop(Duration::from_secs(2));
    assert_eq!(handle.stats(), Err(Stopped));
    assert_eq!(handle.is_online("anyone"), Err(Stopped));
    assert_eq!(handle.shutdown(), Err(Stopped));
}
