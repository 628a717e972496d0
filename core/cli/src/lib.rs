//! `switchboard-cli`: the command line of the Switchboard server binaries (`switchboard` and
//! `switchboard-mio` both start through [`start`]): every setting of SPEC.md as a flag with a
//! `SWITCHBOARD_*` environment fallback, the `token` subcommand, and the process setup both
//! need (logging, the open-file limit).
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! const BINARY: switchboard_cli::Binary = switchboard_cli::Binary {
//!     name: "switchboard",
//!     version: "0.1.0",
//!     about: "A WebSocket connection manager",
//! };
//!
//! fn main() -> ExitCode {
//!     let config = match switchboard_cli::start(BINARY) {
//!         Ok(config) => config,
//!         Err(exit) => return exit,
//!     };
//!     // ... bind a server on `config` and run it
//! #   let _ = config;
//!     ExitCode::SUCCESS
//! }
//! ```

#![warn(missing_docs)]

mod config_file;
mod flags;
mod limits;
mod token;

use std::io;

use std::net::SocketAddr;
use std::process::ExitCode;
use switchboard_adapter_kit::ListenError;

use switchboard_adapter_kit::tls::TlsError;
use switchboard_core::ServerConfig;
use tracing::warn;

use crate::flags::{Command, ConfigAction, LogFormat};

/// The binary being started: what `--help` and `--version` show, and the name error messages
/// begin with.
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    /// The binary's name (`env!("CARGO_BIN_NAME")`): the command's name, the prefix of the
    /// messages printed before exiting with status 2.
    pub name: &'static str,
    /// What `--version` prints after the name (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// The first line of `--help`.
    pub about: &'static str,
}

/// Parses the command line and prepares the process: runs the `token` subcommand, or sets up
/// logging, raises the open-file limit and returns the server's configuration. `Err` carries
/// the exit status when there is nothing (more) to serve.
///
/// Exits the process itself (as clap does) on `--help`, `--version` and flags it cannot parse.
pub fn start(binary: Binary) -> Result<ServerConfig, ExitCode> {
    let cli = flags::parse(binary);
    if let Some(Command::Config {
        action: ConfigAction::Example,
    }) = cli.command
    {
        print!("{}", config_file::example(&flags::command(binary)));
        return Err(ExitCode::SUCCESS);
    }
    if let Some(Command::Token {
        sub,
        ttl,
        device,
        topics,
        jwt_secret,
    }) = cli.command
    {
        return Err(token::print_token(
            binary.name,
            sub,
            ttl,
            device,
            topics,
            jwt_secret,
        ));
    }
    init_logging(cli.server.log_format);
    let limit = match limits::raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            None
        }
    };
    let config = cli.server.into_config(limit).map_err(|message| {
        eprintln!("{}: {message}", binary.name);
        ExitCode::from(2)
    })?;
    if config.api_key.is_none() {
        warn!(
            "no API key (--api-key or SWITCHBOARD_API_KEY): the HTTP API is disabled, \
             every /api/* request is answered 401"
        );
    }
    Ok(config)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as lines for people or as JSON.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    match format {
        LogFormat::Pretty => builder
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Says why the server cannot listen on `addr` and what to do, and gives the exit status.
/// A bind that failed on the TLS files (a [`TlsError`] inside the error) says which flag and
/// file instead.
pub fn cannot_listen(binary: Binary, addr: SocketAddr, error: &io::Error) -> ExitCode {
    if let Some(other) = ListenError::of(error) {
        let flag = other.flag;
        let advice = match other.source.kind() {
            io::ErrorKind::AddrInUse => "another process is listening there: choose a free port",
            io::ErrorKind::PermissionDenied => "ports below 1024 need privileges: choose another",
            _ => "check the address",
        };
        eprintln!(
            "{}: cannot listen on {} ({flag}): {}; {advice} with {flag} HOST:PORT",
            binary.name, other.addr, other.source
        );
        return ExitCode::from(2);
    }
    if let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
        eprintln!("{}: {tls}", binary.name);
        return ExitCode::from(2);
    }
    if error.kind() == io::ErrorKind::InvalidInput {
        // Not the address: the one setting a server refuses as it binds, the Redis URL.
        eprintln!(
            "{}: {error}; check --redis (or SWITCHBOARD_REDIS)",
            binary.name
        );
        return ExitCode::from(2);
    }
    let advice = match error.kind() {
        io::ErrorKind::AddrInUse => {
            "another process is listening there: stop it, or choose a free port with \
             --listen HOST:PORT (or SWITCHBOARD_LISTEN)"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: choose a port above 1023 with --listen HOST:PORT"
        }
        io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address: listen on one it has, e.g. \
             --listen 127.0.0.1:9001 or --listen 0.0.0.0:9001"
        }
        _ => "check --listen HOST:PORT (or SWITCHBOARD_LISTEN)",
    };
    eprintln!(
        "{}: cannot listen on {addr}: {error}; {advice}",
        binary.name
    );
    ExitCode::from(2)
}
