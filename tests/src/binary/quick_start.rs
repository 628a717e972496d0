//! README's quick start, run as written: the commands and the messages of its first two shell
//! blocks are read from README.md itself, so the page cannot drift from the binary.

use std::net::TcpStream;
use std::process::Stdio;

use serde_json::Value;
use tungstenite::{Message, WebSocket};

use super::{command, free_port, wait_until_serving};

const README: &str = include_str!("../../../README.md");

/// The `sh` code blocks of the section "Run the reference server", in order.
fn quick_start_blocks() -> Vec<&'static str> {
    let section = README
        .split("\n## Run the reference server\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"Run the reference server\"");
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .collect()
}

/// The arguments after `--` of the first line in `block` that runs `cargo run ... --bin <bin>`.
fn args_after_bin<'a>(block: &'a str, bin: &str) -> Vec<&'a str> {
    let line = block
        .lines()
        .find(|l| l.contains(&format!("--bin {bin} --")))
        .unwrap_or_else(|| panic!("no `cargo run ... --bin {bin} --` line in:\n{block}"));
    let args = line
        .split_once(" -- ")
        .expect("`--` before the arguments")
        .1;
    // The token line is `TOKEN=$(cargo run ... -- token ...)`.
    args.trim_end_matches(')').split_whitespace().collect()
}

/// The JSON after `marker` (`# -> ` or `-d '`) on the first line that has it.
fn json_after(block: &str, marker: &str, end: &str) -> Value {
    let line = block
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in:\n{block}"));
    let json = line.split_once(marker).unwrap().1;
    let json = json.split(end).next().unwrap();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json:?} is not JSON: {e}"))
}

fn next_json(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().expect("a frame from the server") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The quick start works as README shows it: the server command serves, the token command
/// mints a token it accepts, the subscribe message is answered `subscribed`, and the curl
/// publish is delivered to the WebSocket client. README names the reference server; the same
/// arguments are given to the binary under test (`switchboard-mio` takes the same flags).
pub fn readme_quick_start_works_as_written(binary: &str) {
    let blocks = quick_start_blocks();
    assert!(blocks.len() >= 2, "two shell blocks in the quick start");
    let port = free_port();
    let server_args = args_after_bin(blocks[0], "switchboard");
    let mut child = command(binary)
        .args(&server_args)
        // README's address is 127.0.0.1:9001, the default; the test takes a free port.
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    wait_until_serving(port, &mut child, binary);

    let try_it = blocks[1];
    let token_args = args_after_bin(try_it, "switchboard");
    let minted = command(binary).args(&token_args).output().expect("token");
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();

    let url = try_it
        .lines()
        .find_map(|l| l.split_once("websocat \"").map(|(_, url)| url))
        .and_then(|url| url.split('"').next())
        .expect("a websocat line")
        .replace("$TOKEN", &token)
        .replace("127.0.0.1:9001", &format!("127.0.0.1:{port}"));
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).expect("the upgrade");
    let welcome = next_json(&mut ws);
    let shown = json_after(try_it, "# <- ", "\n");
    assert_eq!(welcome["type"], shown["type"], "{welcome}");
    assert_eq!(welcome["userId"], shown["userId"], "{welcome}");

    let subscribe = json_after(try_it, "# -> ", "\n");
    ws.send(Message::text(subscribe.to_string())).unwrap();
    let subscribed = next_json(&mut ws);
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["topic"], subscribe["topic"], "{subscribed}");

    let key = try_it
        .split_once("apikey ")
        .and_then(|(_, rest)| rest.split('\'').next())
        .expect("the curl line's API key");
    let body = json_after(try_it, "-d '", "'").to_string();
    let response = super::http_post(port, "/api/publish", key, &body);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""delivered":1"#), "{response}");
    let message = next_json(&mut ws);
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["metadata"]["senderId"], "server", "{message}");
    let _ = child.kill();
    let _ = child.wait();
}
