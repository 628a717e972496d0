//! The browser client (`GET /client.js`) and the pages (`GET /admin`, `GET /demo`) in a real
//! headless Chromium against a server process: tests/browser/run.mjs and then
//! tests/browser/pages.mjs (Node, puppeteer-core) run the cases in the pages; this side starts
//! the server, mints the tokens, and kills and restarts the server when a script asks.
//!
//! `SWITCHBOARD_SCREENSHOTS=1` makes pages.mjs write core/src/http/assets/admin.png and
//! demo.png (the README's pictures) again; nothing is written without it.
//!
//! Needs `node` (and `npm`, for `npm ci` when tests/browser/node_modules is missing) and
//! Chromium (`CHROMIUM`, default /usr/bin/chromium). Without them the test is skipped with a
//! printed reason, or fails when `CI` is `true`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{command, free_port, http_get, run, wait_until_serving};
use crate::{TEST_API_KEY, TEST_SECRET};

/// How long one script may take (run.mjs takes about 10 s, pages.mjs 3 s): a guard against a
/// hang.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The cases of tests/browser/run.mjs, in headless Chromium against `binary`: the module loads
/// cross-origin; connects with the token from `token()` and gets a push; a wildcard
/// subscription gets publishes from the HTTP API and from another client; presence of another
/// user; pings only while visible, and replaces a connection whose pings go unanswered; a
/// dropped connection recovers what was published meanwhile (`since` on a topic, `history` for
/// a pattern); reconnects with backoff and full jitter while the server is down, and after the
/// restart resubscribes and reports `recovered: false`; stops after 4003 when `token()` returns
/// the same token; never reconnects after 4001.
///
/// Then, without `--demo`, `/admin` is 200 and `/demo` 404; and pages.mjs, against a server
/// with the demo on (`SWITCHBOARD_DEMO`): the admin page loads without a key, refuses a wrong
/// one with an error and keeps the right one in `sessionStorage`; lists the connections the
/// test opened (user, device, ip, subscriptions; users and topics; counts); its publish form
/// reaches a subscriber; a row's disconnect button closes that connection (the client sees
/// 1008) and no other; the demo page connects with a pasted token, subscribes, shows a message
/// published through the API and its own, and shows a watched user come online and go offline.
pub fn browser_client_in_headless_chromium(binary: &str) {
    let Some(browser_dir) = browser_prerequisites() else {
        return;
    };
    let token = |sub: &str, ttl: &str| mint(binary, sub, ttl);
    let tokens = serde_json::json!({
        "alice": token("alice", "1h"),
        "alice2": token("alice", "2h"),
        "bob": token("bob", "1h"),
        "carol": token("carol", "1h"),
    });
    let port = free_port();
    let client = drive(&browser_dir, "run.mjs", binary, port, &tokens, Demo::Off);
    // The server without `--demo`: the admin page is there, the demo page is not.
    let server = start(binary, port, Demo::Off);
    let admin = http_get(port, "/admin").map(|(status, _)| status);
    let demo = http_get(port, "/demo").map(|(status, _)| status);
    stop(server);
    assert_eq!(
        (admin, demo),
        (Some(200), Some(404)),
        "/admin and /demo without --demo"
    );

    let tokens = serde_json::json!({
        "dana": token("dana", "1h"),
        "erin": token("erin", "1h"),
        "frank": token("frank", "1h"),
        "bob": token("bob", "1h"),
    });
    let pages = drive(
        &browser_dir,
        "pages.mjs",
        binary,
        free_port(),
        &tokens,
        Demo::On,
    );
    eprintln!("{client}\n{pages}");
}

/// The token `binary token` prints for user `sub`, valid for `ttl`.
fn mint(binary: &str, sub: &str, ttl: &str) -> String {
    let secret = std::str::from_utf8(TEST_SECRET).expect("an ASCII secret");
    let out = run(
        binary,
        &["token", "--sub", sub, "--ttl", ttl, "--jwt-secret", secret],
    );
    assert!(out.status.success(), "token subcommand: {out:?}");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 token")
        .trim()
        .to_owned()
}

/// Whether the server serves `/demo`.
#[derive(Clone, Copy, Debug)]
enum Demo {
    Off,
    /// Turned on by its environment variable, `SWITCHBOARD_DEMO` (the flag and the file key
    /// are unit-tested in the command line's crate).
    On,
}

/// Runs `script` (in tests/browser) against `binary` on `port` until it exits, killing and
/// restarting the server when it asks; panics with its output unless it passed. Returns the
/// report: the script's output and how long it took.
fn drive(
    dir: &Path,
    script: &str,
    binary: &str,
    port: u16,
    tokens: &serde_json::Value,
    demo: Demo,
) -> String {
    let mut server = Some(start(binary, port, demo));
    let started = Instant::now();
    let mut node = Command::new("node")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(TEST_API_KEY)
        .current_dir(dir)
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
                if let Some(child) = server.take() {
                    stop(child);
                }
            }
            "@@start" => server = Some(start(binary, port, demo)),
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
    if let Some(child) = server {
        stop(child);
    }
    let stderr = stderr.join().unwrap_or_default();
    let took = started.elapsed();
    let report = format!(
        "{binary}: tests/browser/{script} {status} after {took:.1?}\n--- stdout\n{}\n--- stderr\n{stderr}",
        output.join("\n")
    );
    assert!(!timed_out, "killed after {SCRIPT_TIMEOUT:?}: {report}");
    assert!(status.success(), "{report}");
    report
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
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
fn start(binary: &str, port: u16, demo: Demo) -> Child {
    let secret = std::str::from_utf8(TEST_SECRET).expect("an ASCII secret");
    let mut command = command(binary);
    if let Demo::On = demo {
        command.env("SWITCHBOARD_DEMO", "true");
    }
    let mut child = command
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
