//! The servers under test.

use std::sync::mpsc;
use std::time::Duration;

use crate::{Adapter, Settings, TestServer};

/// `switchboard-tokio`, on a dedicated thread with its own multi-threaded tokio runtime.
pub struct Tokio;

impl Adapter for Tokio {
    const NAME: &'static str = "tokio";

    fn start(settings: Settings) -> TestServer {
        use switchboard_tokio::Server;

        let config = settings.server_config();
        let clock = settings.clock.clone();

        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<crate::StopSignal>();
        std::thread::Builder::new()
            .name("switchboard-tokio-under-test".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                runtime.block_on(async move {
                    let server = match Server::bind_with_clock(config, clock).await {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((server.local_addr(), server.handle())));
                    let Ok(signal) = stop_rx.recv() else { return };
                    let result = server.run().await.map_err(|e| e.to_string());
                    signal.stopped(result);
                });
                // Dropping the runtime here ends whatever tasks the server left behind.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn the server thread");

        let (addr, handle) = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("{}: Server::bind failed: {e}", Self::NAME),
            Err(_) => panic!("{}: the server did not bind within 10 s", Self::NAME),
        };
        let (server, signal) = TestServer::new(addr, &settings, move || {
            // A server that stopped already has nothing left to drain.
            let _ = handle.shutdown();
        });
        stop_tx
            .send(signal)
            .expect("the server thread is waiting for its stop signal");
        server
    }
}

/// `switchboard-tokio`'s axum mount: an application's own axum `Router` (one route of its
/// own, `GET /hello`) with the [`Gateway`](switchboard_tokio::Gateway) merged in and as its
/// fallback, served by `axum::serve` on 127.0.0.1:0 with the peers' addresses, on a dedicated
/// thread with its own multi-threaded tokio runtime. Stopped: when the gateway's driver ended
/// (after the drain); `axum::serve` then shuts down gracefully.
pub struct Axum;

/// What the application under test answers on its own route, beside the gateway.
pub const AXUM_APP_HELLO: &str = "hello from the app";

impl Adapter for Axum {
    const NAME: &'static str = "axum";
    const HEAD_TIMEOUT: bool = false;

    fn start(settings: Settings) -> TestServer {
        use std::future::IntoFuture;
        use std::net::SocketAddr;

        use axum::routing::get;
        use axum::Router;
        use switchboard_tokio::Gateway;

        let config = settings.server_config();
        let clock = settings.clock.clone();

        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<crate::StopSignal>();
        std::thread::Builder::new()
            .name("switchboard-axum-under-test".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                runtime.block_on(async move {
                    let listen = config.listen;
                    let bound = match Gateway::with_clock(config, clock) {
                        Ok(gateway) => tokio::net::TcpListener::bind(listen)
                            .await
                            .map(|listener| (gateway, listener)),
                        Err(e) => Err(e),
                    };
                    let (gateway, listener) = match bound {
                        Ok(bound) => bound,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let addr = listener.local_addr().expect("a bound listener's address");
                    let app = Router::new()
                        .route("/hello", get(|| async { AXUM_APP_HELLO }))
                        .merge(gateway.router())
                        .fallback_service(gateway.fallback());
                    let _ = ready_tx.send(Ok((addr, gateway.handle())));
                    let Ok(signal) = stop_rx.recv() else { return };
                    let (ended, on_end) = tokio::sync::oneshot::channel::<()>();
                    let driver = tokio::spawn(async move {
                        let result = gateway.run().await;
                        drop(ended);
                        result
                    });
                    let service = app.into_make_service_with_connect_info::<SocketAddr>();
                    let served = tokio::spawn(
                        axum::serve(listener, service)
                            .with_graceful_shutdown(async move {
                                let _ = on_end.await;
                            })
                            .into_future(),
                    );
                    let result = match driver.await {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(e) => Err(format!("the gateway's driver panicked: {e}")),
                    };
                    signal.stopped(result);
                    // Connections still open keep axum::serve waiting: briefly, then the
                    // runtime ends them.
                    let _ = tokio::time::timeout(Duration::from_secs(1), served).await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn the server thread");

        let (addr, handle) = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("{}: Gateway::new or the bind failed: {e}", Self::NAME),
            Err(_) => panic!("{}: the app did not bind within 10 s", Self::NAME),
        };
        let (server, signal) = TestServer::new(addr, &settings, move || {
            // A gateway that stopped already has nothing left to drain.
            let _ = handle.shutdown();
        });
        stop_tx
            .send(signal)
            .expect("the server thread is waiting for its stop signal");
        server
    }
}

/// `switchboard-mio`, its poll loop on a dedicated thread.
pub struct Mio;

impl Adapter for Mio {
    const NAME: &'static str = "mio";

    fn start(settings: Settings) -> TestServer {
        use switchboard_mio::Server;

        let config = settings.server_config();
        let clock = settings.clock.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<crate::StopSignal>();
        std::thread::Builder::new()
            .name("switchboard-mio-under-test".into())
            .spawn(move || {
                let server = match Server::bind_with_clock(config, clock) {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((server.local_addr(), server.handle())));
                let Ok(signal) = stop_rx.recv() else { return };
                let result = server.run().map_err(|e| e.to_string());
                signal.stopped(result);
            })
            .expect("spawn the server thread");

        let (addr, handle) = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("{}: Server::bind failed: {e}", Self::NAME),
            Err(_) => panic!("{}: the server did not bind within 10 s", Self::NAME),
        };
        let (server, signal) = TestServer::new(addr, &settings, move || {
            // A server that stopped already has nothing left to drain.
            let _ = handle.shutdown();
        });
        stop_tx
            .send(signal)
            .expect("the server thread is waiting for its stop signal");
        server
    }
}
