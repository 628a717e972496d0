//! `switchboard`: the reference server. WebSocket at `/ws`, the HTTP API on the same port.

mod cli;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use switchboard_core::auth::{sign_hs256, Claims};
use switchboard_tokio::{raise_open_file_limit, Server, ServerConfig};
use tracing::{error, info, warn};

use crate::cli::{Cli, Command, NO_SECRET};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Token {
        sub,
        ttl,
        device,
        topics,
        jwt_secret,
    }) = cli.command
    {
        return print_token(sub, ttl, device, topics, jwt_secret);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let limit = match raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            None
        }
    };
    let config = match cli.server.into_config(limit) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("switchboard: {message}");
            return ExitCode::from(2);
        }
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
        Err(e) => {
            error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServerConfig) -> std::io::Result<()> {
    let max_connections = config.max_connections;
    let server = Server::bind(config).await?;
    info!(addr = %server.local_addr(), max_connections, "switchboard ready: ws://{}/ws", server.local_addr());
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("signal received: draining");
        handle.shutdown();
    });
    server.run().await
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

fn print_token(
    sub: String,
    ttl: Duration,
    device: Option<String>,
    topics: Option<Vec<String>>,
    secret: Option<String>,
) -> ExitCode {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        eprintln!("switchboard: {NO_SECRET}");
        return ExitCode::from(2);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        sub,
        exp: (now + ttl).as_secs(),
        device,
        topics,
    };
    println!("{}", sign_hs256(secret.as_bytes(), &claims));
    ExitCode::SUCCESS
}
