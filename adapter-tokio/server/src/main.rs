//! `switchboard`: the reference server. WebSocket at `/ws`, the HTTP API on the same port.

use std::process::ExitCode;

use switchboard_cli::Binary;
use switchboard_tokio::{Server, ServerConfig, Tls};
use tracing::{error, info};

const BINARY: Binary = Binary {
    name: env!("CARGO_BIN_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    // `--help`'s first line: what the binary is.
    about: "switchboard: the reference Switchboard server (tokio). A WebSocket gateway: \
            connections at /ws, the HTTP API, /healthz and /metrics, on one port.",
};

fn main() -> ExitCode {
    let config = match switchboard_cli::start(BINARY) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => exit,
    }
}

async fn serve(config: ServerConfig) -> Result<(), ExitCode> {
    let (addr, max_connections) = (config.listen, config.max_connections);
    let server = Server::bind(config)
        .await
        .map_err(|e| switchboard_cli::cannot_listen(BINARY, addr, &e))?;
    let scheme = if server.tls().is_some() { "wss" } else { "ws" };
    info!(addr = %server.local_addr(), max_connections, "switchboard ready: {scheme}://{}/ws", server.local_addr());
    if let Some(tls) = server.tls() {
        // Listening before the server serves: a SIGHUP from then on reloads, never kills.
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangup) => {
                tokio::spawn(reload_on_sighup(hangup, tls));
            }
            Err(e) => error!(error = %e, "cannot listen for SIGHUP: no TLS certificate reload"),
        }
    }
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("signal received: draining");
        // A server that stopped already has nothing left to drain.
        let _ = handle.shutdown();
    });
    server.run().await.map_err(|e| {
        error!(error = %e, "server failed");
        ExitCode::FAILURE
    })
}

/// Reads the certificate and key again on every SIGHUP; a reload that fails keeps the
/// certificate in use. (Without TLS, SIGHUP keeps its default: it ends the process.)
async fn reload_on_sighup(mut hangup: tokio::signal::unix::Signal, tls: Tls) {
    while hangup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => info!("SIGHUP: TLS certificate reloaded"),
            Err(e) => error!(error = %e, "SIGHUP: TLS certificate not reloaded, the old one stays"),
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
