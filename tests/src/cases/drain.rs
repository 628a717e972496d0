//! SPEC.md graceful drain: `shutdown()` closes everyone with 1001, refuses new upgrades (503
//! or a closed listener) and `/healthz` (503 or closed), and the server stops by the deadline.

use std::time::{Duration, Instant};

use crate::http::{get_request, try_exchange, upgrade_request};
use crate::util::token;
use crate::ws::{Client, RawEnd, RawWs};
use crate::{Adapter, Settings, TestServer};

/// Waits (without blocking the client runtime) for the server to stop; the elapsed time since
/// `since` when it did.
async fn wait_stopped(server: &TestServer, since: Instant, bound: Duration) -> Duration {
    loop {
        if server.is_stopped() {
            let elapsed = since.elapsed();
            let result = server.stop_result(Duration::ZERO).expect("stopped");
            assert!(
                result.is_ok(),
                "the server's run() ended with an error: {result:?}"
            );
            return elapsed;
        }
        assert!(
            since.elapsed() < bound,
            "the server did not stop within {bound:?} of shutdown"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// New upgrades during the drain: 503, or the connection refused/reset.
async fn assert_refuses_upgrades(server: &TestServer) {
    let target = format!("/ws?token={}", token(&server.jwt_secret, "late"));
    match try_exchange(server.addr, &upgrade_request(&target, &[])).await {
        Ok(r) => {
            r.assert_status(503, "upgrade while draining");
        }
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::TimedOut,
            "upgrade while draining: no answer at all: {e}"
        ),
    };
    match try_exchange(server.addr, &get_request("/healthz", &[])).await {
        Ok(r) => {
            r.assert_status(503, "/healthz while draining");
        }
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::TimedOut,
            "/healthz while draining: no answer at all: {e}"
        ),
    };
}

/// Every client (authenticated or not) gets close 1001; new upgrades and `/healthz` are
/// refused; well-behaved clients let the server stop within `drain_timeout`.
pub async fn drain_closes_everyone_1001_and_stops<A: Adapter>() {
    let server = A::start(Settings {
        drain_timeout: Duration::from_secs(3),
        ..Settings::default()
    });
    let (mut a, _) = Client::authed(&server, "a").await;
    let (mut b, _) = Client::authed(&server, "b").await;
    let mut anon = Client::anon(&server, "anon").await;
    server
        .get("/healthz")
        .await
        .assert_status(200, "/healthz before the drain");

    let start = Instant::now();
    server.shutdown();
    for client in [&mut a, &mut b, &mut anon] {
        client.expect_close(1001).await;
    }
    assert_refuses_upgrades(&server).await;
    let elapsed = wait_stopped(
        &server,
        start,
        server.drain_timeout + Duration::from_secs(2),
    )
    .await;
    assert!(elapsed <= server.drain_timeout + Duration::from_secs(2));
}

/// A client that never answers the close frame does not hold the server past its drain
/// deadline; until then upgrades get 503 (or a closed listener).
pub async fn drain_deadline_stops_despite_silent_client<A: Adapter>() {
    let drain = Duration::from_millis(1500);
    let server = A::start(Settings {
        drain_timeout: drain,
        ..Settings::default()
    });
    let mut silent = RawWs::connect(
        server.addr,
        &format!("/ws?token={}", token(&server.jwt_secret, "silent")),
        &[],
        None,
    )
    .await;
    silent.recv_json().await;
    let (mut polite, _) = Client::authed(&server, "polite").await;

    let start = Instant::now();
    server.shutdown();
    polite.expect_close(1001).await;
    assert_refuses_upgrades(&server).await;
    wait_stopped(&server, start, drain + Duration::from_secs(3)).await;

    // The silent client was sent 1001 too, then dropped.
    let mut saw_close = false;
    loop {
        match silent.read_frame(Duration::from_secs(2)).await {
            Ok(f) if f.opcode == 8 => {
                assert_eq!(f.close_code(), Some(1001));
                saw_close = true;
            }
            Ok(_) => {}
            Err(RawEnd::Timeout) => panic!("the silent client was not dropped by the drain"),
            Err(_) => break,
        }
    }
    assert!(saw_close, "the silent client got no 1001 close frame");
}
