//! The history flags of a server binary, and what a restart does to the streams: real
//! processes, real sockets.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{command, free_port, wait_exit, wait_until_serving};
use crate::http::{exchange, get_request, post_request, HttpResponse};
use crate::ws::Client;
use crate::{TEST_API_KEY, TEST_SECRET};

/// Flags and environment variables of one start.
type Start<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// A server process with the suite's secret and API key on 127.0.0.1:`port`, up (its
/// `/healthz` answered); killed with SIGKILL when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    fn start(binary: &str, port: u16, args: &[&str], env: &[(&str, &str)]) -> Process {
        let secret = std::str::from_utf8(TEST_SECRET).expect("an ASCII secret");
        let listen = format!("127.0.0.1:{port}");
        let mut child = command(binary)
            .args(["--jwt-secret", secret, "--api-key", TEST_API_KEY])
            .args(["--listen", &listen])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let what = format!("{binary} {args:?} {env:?}");
        wait_until_serving(port, &mut child, &what);
        Process {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    async fn api_get(&self, path: &str) -> HttpResponse {
        let auth = format!("apikey {TEST_API_KEY}");
        exchange(self.addr, &get_request(path, &[("Authorization", &auth)])).await
    }

    /// `POST /api/publish` of `data` on `topic`, expecting 200; the body.
    async fn publish(&self, topic: &str, data: Value) -> Value {
        let auth = format!("apikey {TEST_API_KEY}");
        let body = json!({"topic": topic, "data": data}).to_string();
        let r = exchange(
            self.addr,
            &post_request("/api/publish", &[("Authorization", &auth)], body.as_bytes()),
        )
        .await;
        r.assert_status(200, "POST /api/publish");
        r.json()
    }

    async fn client(&self, user: &str) -> Client {
        Client::authed_at(self.addr, TEST_SECRET, user, None, "")
            .await
            .0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subscribes `topic` with `since`; the `subscribed` reply.
async fn subscribe_since(client: &mut Client, topic: &str, since: &Value) -> Value {
    let reply = client
        .request(&json!({"type": "subscribe", "topic": topic, "since": since, "id": "s"}))
        .await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["topic"].as_str(),
            reply["id"].as_str()
        ),
        (Some("subscribed"), Some(topic), Some("s")),
        "{reply}"
    );
    reply
}

/// A server killed and started again on the same port draws new epochs: a client's position
/// from before the restart gets `recovered: false` and the new stream's position (offset 0,
/// another epoch); `GET /api/history` with it answers 410. `--history-size 2` keeps the
/// latest two messages.
pub fn a_restarted_server_draws_new_epochs_so_an_old_position_is_not_recovered(binary: &str) {
    let port = free_port();
    let args = ["--history-size", "2"];
    let topic = "chat.restart";
    crate::run(|| async {
        let server = Process::start(binary, port, &args, &[]);
        let mut before = None;
        for n in 1..=3u64 {
            let body = server.publish(topic, json!(n)).await;
            assert_eq!(body["offset"], json!(n), "{body}");
            let epoch = body["epoch"].as_str().expect("an epoch").to_owned();
            assert_eq!(*before.get_or_insert(epoch.clone()), epoch, "{body}");
        }
        let old_epoch = before.expect("an epoch");
        let page = server.api_get(&format!("/api/history/{topic}")).await;
        page.assert_status(200, "GET /api/history");
        let page = page.json();
        let offsets: Vec<&Value> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| &m["offset"])
            .collect();
        assert_eq!(
            offsets,
            [2, 3],
            "--history-size 2 keeps the latest two: {page}"
        );
        let old = json!({"offset": 3, "epoch": old_epoch});
        let mut client = server.client("alice").await;
        let reply = subscribe_since(&mut client, topic, &old).await;
        assert_eq!(
            (&reply["recovered"], &reply["offset"], &reply["epoch"]),
            (&json!(true), &json!(3), &json!(old_epoch)),
            "before the restart the position holds: {reply}"
        );
        client.close().await;

        drop(server); // SIGKILL
        let server = Process::start(binary, port, &args, &[]);
        let mut client = server.client("alice").await;
        let reply = subscribe_since(&mut client, topic, &old).await;
        assert_eq!(
            (&reply["recovered"], &reply["offset"]),
            (&json!(false), &json!(0)),
            "after the restart: {reply}"
        );
        let new_epoch = reply["epoch"].as_str().expect("an epoch").to_owned();
        assert_ne!(new_epoch, old_epoch, "a new run draws a new epoch");
        client.expect_nothing_pending().await;
        server
            .api_get(&format!("/api/history/{topic}?since=3&epoch={old_epoch}"))
            .await
            .assert_api_error(410, "GET /api/history with the old epoch");
        let body = server.publish(topic, json!(4)).await;
        assert_eq!(
            body,
            json!({"delivered": 1, "offset": 1, "epoch": new_epoch}),
            "the new stream"
        );
        let msg = client.recv_type("message").await;
        assert_eq!(
            (&msg["offset"], &msg["epoch"]),
            (&json!(1), &json!(new_epoch)),
            "{msg}"
        );
    });
}

/// With history on, `--history-ttl 0s` and `--history-max-bytes 0` (or their variables) would
/// keep nothing: the start fails (exit 2) with a message naming the flag; so do values that do
/// not parse.
pub fn bad_history_flags_fail_with_a_message_naming_the_flag(binary: &str) {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 6] = [
        (&["--history-ttl", "0s"], &[], "--history-ttl"),
        (&["--history-max-bytes", "0"], &[], "--history-max-bytes"),
        (&[], &[("SWITCHBOARD_HISTORY_TTL", "0s")], "--history-ttl"),
        (
            &[],
            &[("SWITCHBOARD_HISTORY_MAX_BYTES", "0")],
            "--history-max-bytes",
        ),
        (&["--history-size", "lots"], &[], "--history-size"),
        (&["--history-ttl", "soon"], &[], "--history-ttl"),
    ];
    for (flags, env, named) in cases {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut child = command(binary)
            .args(["--jwt-secret", "s", "--listen", &listen])
            .args(flags)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let status = wait_exit(&mut child, Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("its output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(2),
            "{flags:?} {env:?} must stop the start (exit 2); stderr: {stderr}"
        );
        assert!(
            stderr.contains(named),
            "{flags:?} {env:?}: the message names {named}: {stderr}"
        );
    }
}

/// `--history-size 0` serves with history off: no position on `subscribed` or from
/// `POST /api/publish`, `GET /api/history` 400; with history off a ttl or byte bound of 0
/// does not matter.
pub fn history_size_0_serves_with_history_off(binary: &str) {
    crate::run(|| async {
        let starts: [Start<'_>; 2] = [
            (&["--history-size", "0"], &[]),
            (
                &[],
                &[
                    ("SWITCHBOARD_HISTORY_SIZE", "0"),
                    ("SWITCHBOARD_HISTORY_TTL", "0s"),
                    ("SWITCHBOARD_HISTORY_MAX_BYTES", "0"),
                ],
            ),
        ];
        for (args, env) in starts {
            let server = Process::start(binary, free_port(), args, env);
            let mut client = server.client("alice").await;
            let reply = client
                .request(&json!({"type": "subscribe", "topic": "chat.off"}))
                .await;
            assert_eq!(reply["type"], json!("subscribed"), "{reply}");
            assert!(
                reply.get("offset").is_none() && reply.get("epoch").is_none(),
                "{args:?} {env:?}: history off: {reply}"
            );
            let body = server.publish("chat.off", json!(1)).await;
            assert_eq!(body, json!({"delivered": 1}), "{args:?} {env:?}");
            let msg = client.recv_type("message").await;
            assert!(msg.get("offset").is_none(), "{args:?} {env:?}: {msg}");
            server
                .api_get("/api/history/chat.off")
                .await
                .assert_api_error(400, "GET /api/history with history off");
        }
    });
}
