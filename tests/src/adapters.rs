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
