//! The command-line contract of a server binary, the same for `switchboard` and
//! `switchboard-mio`: flags and `SWITCHBOARD_*` fallbacks, the refusals at start, the `token`
//! subcommand, serving, and the drain on SIGTERM. Real processes, real sockets.
//!
//! Each function takes the path of the binary under test. [`binary_suite!`](crate::binary_suite)
//! instantiates one `#[test]` per function, in the integration tests of the binary's package
//! (where Cargo gives the path as `CARGO_BIN_EXE_<name>`):
//!
//! ```ignore
//! switchboard_tests::binary_suite!(env!("CARGO_BIN_EXE_switchboard"));
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to completion with a clean `SWITCHBOARD_*` environment.
fn run(binary: &str, args: &[&str]) -> Output {
    command(binary)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn command(binary: &str) -> Command {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHBOARD_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// One HTTP/1.1 request; the status code and the whole answer.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((status, answer))
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Without a secret the server refuses to start, and says which flag or variable to give.
pub fn refuses_to_start_without_a_secret_naming_the_flag(binary: &str) {
    let out = run(binary, &[]);
    assert_eq!(out.status.code(), Some(2), "exit status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--jwt-secret") && stderr.contains("SWITCHBOARD_JWT_SECRET"),
        "the refusal names the flag and the variable: {stderr}"
    );
}

/// Cluster mode is not built yet: `--redis` fails with a clear message instead of half-working.
pub fn redis_flag_fails_with_a_clear_message(binary: &str) {
    let out = run(
        binary,
        &["--jwt-secret", "s", "--redis", "redis://127.0.0.1:6379"],
    );
    assert_eq!(out.status.code(), Some(2), "exit status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--redis"),
        "the message names --redis: {stderr}"
    );
}

/// Settings from the environment; a token from the `token` subcommand is accepted at the
/// handshake; SIGTERM closes the client with 1001 and the process exits 0 by the drain deadline.
pub fn serves_from_environment_settings_and_drains_on_sigterm(binary: &str) {
    let token = run(
        binary,
        &["token", "--sub", "alice", "--jwt-secret", "env-secret"],
    );
    assert!(token.status.success(), "token subcommand: {token:?}");
    let token = String::from_utf8(token.stdout).expect("a UTF-8 token");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let port = free_port();
    let mut child = command(binary)
        .env("SWITCHBOARD_JWT_SECRET", "env-secret")
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DRAIN_TIMEOUT", "2s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let start = Instant::now();
    loop {
        if let Some((status, _)) = http_get(port, "/healthz") {
            assert_eq!(status, 200, "/healthz");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut ws = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    ws.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        ws,
        "GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        ws.read_exact(&mut byte).expect("the upgrade answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade answer: {head}");
    let auth_success = read_frame(&mut ws);
    assert_eq!(auth_success.0, 0x1, "a text frame first");
    assert!(
        String::from_utf8_lossy(&auth_success.1).contains("\"auth_success\""),
        "auth_success first"
    );

    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with a child's pid and a plain signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM sent");
    let close = read_frame(&mut ws);
    assert_eq!(close.0, 0x8, "a close frame after SIGTERM");
    assert_eq!(
        close.1.get(..2),
        Some(&1001u16.to_be_bytes()[..]),
        "close code 1001"
    );
    drop(ws);
    let status = wait_exit(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status after the drain"
    );
}

/// Reads one unmasked server frame: (opcode, payload).
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).expect("a frame header");
    let len = match header[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).expect("length");
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).expect("length");
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("a small frame")];
    stream.read_exact(&mut payload).expect("the payload");
    (header[0] & 0x0f, payload)
}
