//! `--metrics-listen`: `/metrics` on an address of its own.

use std::net::TcpListener;
use std::process::Stdio;

use super::{command, free_port, http_get, run, wait_until_serving};
use crate::metrics::Scrape;

/// With `--metrics-listen`, that address serves `/metrics` (valid OpenMetrics) and `/healthz`
/// and nothing else, and `--listen` answers `/metrics` with 404 but serves the rest.
pub fn metrics_listen_serves_metrics_alone_and_the_main_port_no_longer_does(binary: &str) {
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = command(binary)
        .args(["--jwt-secret", "s", "--api-key", "k"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    wait_until_serving(port, &mut child, binary);
    let get = http_get;

    let (status, answer) = get(metrics_port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{answer}");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let scrape = Scrape::parse(body.to_owned());
    assert!(scrape.value("switchboard_connections", &[]).is_some());
    assert_eq!(get(metrics_port, "/healthz").map(|a| a.0), Some(200));
    for path in ["/ws", "/api/stats", "/client.js"] {
        assert_eq!(get(metrics_port, path).map(|a| a.0), Some(404), "{path}");
    }
    assert_eq!(get(port, "/metrics").map(|a| a.0), Some(404));
    assert_eq!(get(port, "/healthz").map(|a| a.0), Some(200));
    let _ = child.kill();
    let _ = child.wait();
}

/// A busy `--metrics-listen` address stops the start with exit status 2, naming the address
/// and the flag.
pub fn busy_metrics_port_is_named_with_its_flag(binary: &str) {
    let holder = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let addr = holder.local_addr().expect("its address");
    let listen = format!("127.0.0.1:{}", free_port());
    let out = run(
        binary,
        &[
            "--jwt-secret",
            "s",
            "--listen",
            &listen,
            "--metrics-listen",
            &addr.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "exit status: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("--metrics-listen"),
        "the message names {addr} and --metrics-listen: {stderr}"
    );
}
