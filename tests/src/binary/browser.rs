//! The browser client (`GET /client.js`) in a real headless Chromium against a server
//! process: tests/browser/run.mjs (Node, puppeteer-core) runs the cases in the page; this side
//! starts the server, mints the tokens, and kills and restarts the server when the script asks.
//!
//! Needs `node` (and `npm`, for `npm ci` when tests/browser/node_modules is missing) and
//! Chromium (`CHROMIUM`, default /usr/bin/chromium). Without them the test is skipped with a
//! printed reason, or fails when `CI` is `true`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{command, free_port, run, wait_until_serving};
use crate::{TEST_API_KEY, TEST_SECRET};

/// How long the whole script may take (it takes about 10 s): a guard against a hang.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The cases of tests/browser/run.mjs, in headless Chromium against `binary`: the module loads
/// cross-origin; connects with the token from `token()` and gets a push; a wildcard
/// subscription gets publishes from the HTTP API and from another client; presence of another
/// user; pings only while visible, and replaces a connection whose pings go unanswered; a
/// dropped connection recovers what was published meanwhile (`since` on a topic, `history` for
/// a pattern); reconnects with backoff and full jitter while the server is down, and after the
/// restart resubscribes and reports `recovered: false`; stops after 4003 when `token()` returns
/// the same token; never reconnects after 4001.
pub fn browser_client_in_headless_chromium(binary: &str) {
    let Some(browser_dir) = browser_prerequisites() else {
        return;
    };
    let secret = std::str::from_utf8(TEST_SECRET).expect("an ASCII secret");
    let token = |sub: &str, ttl: &str| {
        let out = run(
            binary,
            &["token", "--sub", sub, "--ttl", ttl, "--jwt-secret", secret],
        );
        assert!(out.status.success(), "token subcommand: {out:?}");
        String::from_utf8(out.stdout)
            .expect("a UTF-8 token")
            .trim()
            .to_owned()
    };
    let tokens = serde_json::json!({
        "alice": token("alice", "1h"),
        "alice2": token("alice", "2h"),
        "bob": token("bob", "1h"),
        "carol": token("carol", "1h"),
    });

    let port = free_port();
    let mut server = Some(start(binary, port));
    let started = Instant::now();
    let mut node = Command::new("node")
        .arg("run.mjs")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(TEST_API_KEY)
        .current_dir(&browser_dir)
        .env("SB_TOKENS", tokens.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdin = node.stdin.take().expect("piped stdin");
    let lines = lines_of(node.stdout.take().expect("piped stdout"));
    let mut stderr = node.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut output = Vec::new();
    let mut timed_out = false;
    loop {
        let left = SCRIPT_TIMEOUT.saturating_sub(started.elapsed());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = node.kill();
                break;
            }
        };
        match line.trim() {
            "@@kill" => {
                if let Some(mut child) = server.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            "@@start" => server = Some(start(binary, port)),
            _ => {
                output.push(line);
                continue;
            }
        }
        output.push(format!("(driver: {line} done)"));
        // A script that already failed no longer reads: its exit is reported below.
        let _ = writeln!(stdin, "@@ok");
    }
    let status = node.wait().expect("node can be waited on");
    if let Some(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = stderr.join().unwrap_or_default();
    let took = started.elapsed();
    let report = format!(
        "{binary}: tests/browser/run.mjs {status} after {took:.1?}\n--- stdout\n{}\n--- stderr\n{stderr}",
        output.join("\n")
    );
    assert!(!timed_out, "killed after {SCRIPT_TIMEOUT:?}: {report}");
    assert!(status.success(), "{report}");
    eprintln!("{report}");
}

/// Every line of `stream` on a channel (closed at its end).
fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A server with the suite's secret and API key on 127.0.0.1:`port`, serving.
fn start(binary: &str, port: u16) -> Child {
    let secret = std::str::from_utf8(TEST_SECRET).expect("an ASCII secret");
    let mut child = command(binary)
        .args(["--jwt-secret", secret, "--api-key", TEST_API_KEY])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    wait_until_serving(port, &mut child, binary);
    child
}

/// tests/browser with its `node_modules` (installed with `npm ci` if missing), or `None` when
/// node or Chromium is missing (a skip, printed; a failure when `CI` is `true`).
fn browser_prerequisites() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = if !runs("node", &["--version"]) {
        Some("node is not installed (Node 18 or later)".to_owned())
    } else if !Path::new(&chromium).exists() {
        Some(format!(
            "Chromium is not at {chromium} (apt-get install chromium, or set CHROMIUM)"
        ))
    } else {
        None
    };
    if let Some(missing) = missing {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "the browser test needs what CI installs: {missing}");
        eprintln!("skipped: the browser client test: {missing}");
        return None;
    }
    if !dir.join("node_modules").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "npm ci in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(dir)
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
