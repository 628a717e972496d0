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

mod browser;
mod history;
mod metrics_listen;
mod quick_start;
mod refusal_logs;
mod tls;

pub use browser::browser_client_in_headless_chromium;
pub use history::{
    a_restarted_server_draws_new_epochs_so_an_old_position_is_not_recovered,
    bad_history_flags_fail_with_a_message_naming_the_flag, history_size_0_serves_with_history_off,
};
pub use metrics_listen::{
    busy_metrics_port_is_named_with_its_flag,
    metrics_listen_serves_metrics_alone_and_the_main_port_no_longer_does,
};
pub use quick_start::readme_quick_start_works_as_written;
pub use refusal_logs::refusals_are_logged_as_json_with_ip_code_and_reason;
pub use tls::{
    tls_carries_large_frames_both_ways_and_the_drain_close_arrives,
    tls_file_errors_stop_the_start_naming_the_flag_and_the_file,
    tls_serves_wss_and_https_on_one_port_and_closes_plain_clients,
    tls_sighup_reloads_the_certificate_for_new_connections_only,
};

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

/// One `POST` with `Authorization: apikey <key>` and a JSON body; the whole answer.
fn http_post(port: u16, path: &str, key: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: apikey {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
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

/// A `--redis` that is not a Redis URL, a bad `--node-id` or a too short `--cluster-ttl` stops
/// the start with a message naming the flag (and never echoes a URL, which may hold a password).
pub fn bad_cluster_flags_fail_with_a_message_naming_the_flag(binary: &str) {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--redis", "http://user:hunter2@127.0.0.1:6379"],
            "--redis",
        ),
        (&["--node-id", "a.b"], "--node-id"),
        (
            &["--redis", "redis://127.0.0.1:1/", "--cluster-ttl", "10ms"],
            "--cluster-ttl",
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["--jwt-secret", "s"];
        args.extend_from_slice(flags);
        let out = run(binary, &args);
        assert_eq!(out.status.code(), Some(2), "exit status for {flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(named),
            "the message names {named}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "no password in: {stderr}");
    }
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
    wait_until_serving(port, &mut child, "the server");

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

/// `--help` opens with what the binary is (its name, then what it serves), and tells how to
/// choose what is logged.
pub fn help_says_what_the_binary_is_and_names_rust_log(binary: &str) {
    let out = run(binary, &["--help"]);
    assert!(out.status.success(), "--help: {out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    let name = std::path::Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a binary name");
    let first = help.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{name}: ")) && first.contains("WebSocket"),
        "the first line says what {name} is: {first:?}"
    );
    assert!(help.contains("RUST_LOG"), "--help names RUST_LOG: {help}");
    assert!(
        help.contains("--log-format"),
        "--help names --log-format: {help}"
    );
}

/// A port another process holds: the server names the address, says what to do, and exits 2.
pub fn busy_port_is_named_with_what_to_do(binary: &str) {
    let holder = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let addr = holder.local_addr().expect("its address");
    let out = run(
        binary,
        &["--jwt-secret", "s", "--listen", &addr.to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "exit status: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("--listen"),
        "the message names {addr} and --listen: {stderr}"
    );
}

/// `--listen localhost:PORT` resolves the host name and serves there.
pub fn listen_resolves_a_host_name(binary: &str) {
    let port = free_port();
    let mut child = command(binary)
        .args([
            "--jwt-secret",
            "s",
            "--listen",
            &format!("localhost:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let start = Instant::now();
    let served = loop {
        if let Ok(mut stream) = TcpStream::connect(("localhost", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            break answer;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break String::new();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        served.starts_with("HTTP/1.1 200"),
        "/healthz on localhost:{port}: {served:?}"
    );
}

/// `--log-format json`: every line on stderr is one JSON object with a level and a message;
/// a start without `--api-key` says that the HTTP API is disabled.
pub fn json_logs_are_one_object_a_line_and_say_the_api_is_disabled(binary: &str) {
    let (mut child, lines) = start_logging_json(binary, free_port());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|l: &String| l.contains("ready")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("ready")),
        "no ready line: {seen:?}"
    );
    for line in &seen {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "a level and a message: {line}"
        );
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("HTTP API is disabled") && l.contains("--api-key")),
        "the start says the HTTP API is disabled: {seen:?}"
    );
}

/// The server on `port` with `--log-format json` at level info, and its stderr's lines.
pub(crate) fn start_logging_json(
    binary: &str,
    port: u16,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = command(binary)
        .env("RUST_LOG", "info")
        .args(["--jwt-secret", "s", "--log-format", "json"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let lines = stderr_lines(&mut child);
    (child, lines)
}

/// The lines the piped stderr of `child` writes, as they come (read on a thread of their own).
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;

    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// Waits until the server `child` answers `/healthz` 200 on `port`; panics, naming `what`,
/// if it exits first or is not up within 10 s (and then kills it).
pub(crate) fn wait_until_serving(port: u16, child: &mut std::process::Child, what: &str) {
    let start = Instant::now();
    loop {
        if let Some((status, _)) = http_get(port, "/healthz") {
            assert_eq!(status, 200, "/healthz");
            return;
        }
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            panic!("{what} exited with {status} before serving");
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not come up on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
